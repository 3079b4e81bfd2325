//! Expands an ImageListPullJob into one ImagePullJob per image (owned by the list, named after
//! it and a hash of the image), keeps their specs in step with the list's, deletes those of
//! images the list dropped, and sums their statuses into the list's.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use slipway_model::kinds::kruise::{FailedImageStatus, ImageListPullJobStatus, ImagePullJobStatus};
use slipway_store::PrewarmObject;

use super::world::{owner, owner_uid};

/// A change to the list's ImagePullJobs.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create this job.
    Create(String, Value),
    /// Replace the spec of this job (its status is kept).
    Respec(String, Value),
    /// Delete this job.
    Delete(String),
}

/// The name of the list's job for `image`.
pub fn child_name(list: &str, image: &str) -> String {
    let digest = Sha256::digest(image.as_bytes());
    let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{list}-{short}")
}

/// The jobs of `all` that `list` owns.
pub fn children<'a>(list: &PrewarmObject, all: &'a [PrewarmObject]) -> Vec<&'a PrewarmObject> {
    all.iter()
        .filter(|j| j.namespace == list.namespace && owned(j, &list.uid))
        .collect()
}

fn owned(job: &PrewarmObject, uid: &str) -> bool {
    job.object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| owner_uid(r, "ImageListPullJob") == Some(uid))
}

/// The changes that make `list`'s jobs one per image, with the list's template.
pub fn expand(list: &PrewarmObject, children: &[&PrewarmObject]) -> Vec<Change> {
    let spec = &list.object["spec"];
    let images: Vec<&str> = spec["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut changes = Vec::new();
    for image in &images {
        let name = child_name(&list.name, image);
        let mut child_spec = spec.clone();
        if let Some(m) = child_spec.as_object_mut() {
            m.remove("images");
            m.insert("image".into(), json!(image));
        }
        match children.iter().find(|c| c.name == name) {
            Some(c) if c.object["spec"] == child_spec => {}
            Some(_) => changes.push(Change::Respec(name, child_spec)),
            None => changes.push(Change::Create(
                name.clone(),
                json!({
                    "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
                    "metadata": {
                        "name": name,
                        "ownerReferences": [owner("ImageListPullJob", &list.name, &list.uid)],
                    },
                    "spec": child_spec,
                }),
            )),
        }
    }
    for c in children {
        let wanted = images.iter().any(|i| child_name(&list.name, i) == c.name);
        if !wanted {
            changes.push(Change::Delete(c.name.clone()));
        }
    }
    changes
}

/// The list's status from its jobs'.
pub fn status(list: &PrewarmObject, children: &[&PrewarmObject]) -> ImageListPullJobStatus {
    let mut s: ImageListPullJobStatus =
        serde_json::from_value(list.object["status"].clone()).unwrap_or_default();
    let desired = list.object["spec"]["images"].as_array().map_or(0, Vec::len);
    s.desired = i32::try_from(desired).unwrap_or(i32::MAX);
    s.active = 0;
    s.completed = 0;
    s.succeeded = 0;
    s.failed_image_statuses.clear();
    let mut earliest: Option<String> = None;
    for c in children {
        let js: ImagePullJobStatus =
            serde_json::from_value(c.object["status"].clone()).unwrap_or_default();
        if let Some(t) = &js.start_time
            && earliest.as_ref().is_none_or(|e| t < e)
        {
            earliest = Some(t.clone());
        }
        if js.completion_time.is_some() {
            s.completed += 1;
            if js.failed == 0 {
                s.succeeded += 1;
            }
        } else if js.start_time.is_some() {
            s.active += 1;
        }
        if js.failed > 0 {
            s.failed_image_statuses.push(FailedImageStatus {
                image_pull_job: Some(c.name.clone()),
                name: c.object["spec"]["image"].as_str().map(str::to_string),
                message: js.message.clone(),
            });
        }
    }
    if s.start_time.is_none() {
        s.start_time = earliest;
    }
    if s.completed == s.desired && s.desired > 0 && s.completion_time.is_none() {
        s.completion_time = Some(super::world::format_time(std::time::SystemTime::now()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, uid: &str, v: Value) -> PrewarmObject {
        PrewarmObject {
            kind: kind.into(),
            namespace: "ns".into(),
            name: name.into(),
            uid: uid.into(),
            object: v,
            resource_version: 1,
            generation: 1,
            created_at: 0,
        }
    }

    #[test]
    fn one_job_per_image_owned_by_the_list() {
        let list = object(
            "ImageListPullJob",
            "l",
            "lu",
            json!({"metadata": {"name": "l"}, "spec": {"images": ["a:1", "b:2"], "parallelism": 2}}),
        );
        let changes = expand(&list, &[]);
        assert_eq!(changes.len(), 2);
        let Change::Create(name, job) = &changes[0] else {
            panic!("{changes:?}");
        };
        assert_eq!(*name, child_name("l", "a:1"));
        assert_eq!(job["spec"], json!({"image": "a:1", "parallelism": 2}));
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "lu");
        // A job whose image left the list goes; one whose spec is behind is re-specced.
        let stale = object(
            "ImagePullJob",
            &child_name("l", "a:1"),
            "c1",
            json!({"spec": {"image": "a:1", "parallelism": 1}}),
        );
        let gone = object(
            "ImagePullJob",
            "l-gone",
            "c2",
            json!({"spec": {"image": "z"}}),
        );
        let changes = expand(&list, &[&stale, &gone]);
        assert!(
            changes.contains(&Change::Delete("l-gone".into())),
            "{changes:?}"
        );
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, Change::Respec(n, _) if *n == stale.name)),
            "{changes:?}"
        );
    }
}
