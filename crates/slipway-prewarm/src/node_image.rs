//! A NodeImage's spec as the engine's desired tags, and the engine's statuses as the NodeImage's
//! status (OpenKruise's shape: per image, per tag, phase, progress, imageID, message, times,
//! version; plus the bytes slipway reads from the content store).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use slipway_model::kinds::kruise::{
    ImagePullPhase, ImagePullPolicy, ImageTagStatus, NodeImageSpec, NodeImageStatus,
    ReferenceObject,
};

use crate::auth::RegistryAuth;
use crate::status::{Phase, PullPolicy, TagSpec, TagStatus};

/// The reference a NodeImage's image name and tag stand for.
pub fn reference(name: &str, tag: &str) -> String {
    if tag.starts_with("sha256:") {
        format!("{name}@{tag}")
    } else {
        format!("{name}:{tag}")
    }
}

/// One tag the NodeImage asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The image name (the NodeImage's key).
    pub name: String,
    /// The tag.
    pub tag: String,
    /// The engine's spec for it (without credentials yet).
    pub spec: TagSpec,
    /// The Secrets its credentials come from.
    pub secrets: Vec<(String, String)>,
}

/// The tags of a NodeImage spec, with OpenKruise's defaults (600 s, 3 retries, `IfNotPresent`).
pub fn wanted(spec: &NodeImageSpec) -> Vec<Wanted> {
    let mut out = Vec::new();
    for (name, image) in &spec.images {
        for t in &image.tags {
            let policy = t.pull_policy.clone().unwrap_or_default();
            let secrets = t
                .pull_secrets
                .iter()
                .chain(&image.pull_secrets)
                .filter_map(|r: &ReferenceObject| Some((r.namespace.clone()?, r.name.clone()?)))
                .collect();
            out.push(Wanted {
                name: name.clone(),
                tag: t.tag.clone(),
                spec: TagSpec {
                    image: reference(name, &t.tag),
                    policy: match t.image_pull_policy {
                        Some(ImagePullPolicy::Always) => PullPolicy::Always,
                        _ => PullPolicy::IfNotPresent,
                    },
                    timeout: Duration::from_secs(
                        u64::try_from(policy.timeout_seconds.unwrap_or(600)).unwrap_or(600),
                    ),
                    backoff_limit: u32::try_from(policy.backoff_limit.unwrap_or(3)).unwrap_or(0),
                    auth: None,
                    version: t.version.unwrap_or(0),
                },
                secrets,
            });
        }
    }
    out
}

/// The first credentials among `configs` (Docker config JSONs) for the image's registry.
pub fn auth_for(image: &str, configs: &[Vec<u8>]) -> Option<RegistryAuth> {
    let registry = slipway_model::reference::Reference::parse(image)
        .ok()?
        .registry;
    configs.iter().find_map(|c| {
        RegistryAuth::from_docker_config(c, &registry)
            .ok()
            .flatten()
    })
}

fn time(t: Option<SystemTime>) -> Option<String> {
    t.map(|t| humantime::format_rfc3339_millis(t).to_string())
}

fn phase(p: Phase) -> ImagePullPhase {
    match p {
        Phase::Waiting => ImagePullPhase::Waiting,
        Phase::Pulling => ImagePullPhase::Pulling,
        Phase::Succeeded => ImagePullPhase::Succeeded,
        Phase::Failed => ImagePullPhase::Failed,
    }
}

/// One tag's status as NodeImage writes it.
pub fn tag_status(tag: &str, s: &TagStatus) -> ImageTagStatus {
    let percent = s
        .progress
        .filter(|p| p.total > 0)
        .map(|p| i32::try_from(p.completed.min(p.total) * 100 / p.total).unwrap_or(100));
    ImageTagStatus {
        tag: tag.to_string(),
        phase: phase(s.phase),
        progress: if s.phase == Phase::Succeeded {
            Some(100)
        } else {
            percent
        },
        start_time: time(s.start_time),
        completion_time: time(s.completion_time),
        version: Some(s.version),
        image_id: s.image_id.clone(),
        message: s.message.clone(),
        completed_bytes: s.progress.map(|p| p.completed),
        total_bytes: s.progress.map(|p| p.total),
    }
}

/// The NodeImage's status from the latest status of each wanted tag.
pub fn status(wanted: &[Wanted], latest: &BTreeMap<String, TagStatus>) -> NodeImageStatus {
    let mut out = NodeImageStatus {
        desired: i32::try_from(wanted.len()).unwrap_or(i32::MAX),
        ..Default::default()
    };
    for w in wanted {
        let Some(s) = latest
            .get(&w.spec.image)
            .filter(|s| s.version == w.spec.version)
        else {
            out.waiting += 1;
            continue;
        };
        match s.phase {
            Phase::Waiting => out.waiting += 1,
            Phase::Pulling => out.pulling += 1,
            Phase::Succeeded => out.succeeded += 1,
            Phase::Failed => out.failed += 1,
        }
        out.image_statuses
            .entry(w.name.clone())
            .or_default()
            .tags
            .push(tag_status(&w.tag, s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Progress;
    use slipway_model::kinds::kruise::{ImageSpec, ImageTagPullPolicy, ImageTagSpec};

    #[test]
    fn tags_become_specs_and_statuses_come_back_per_image() {
        let mut spec = NodeImageSpec::default();
        spec.images.insert(
            "127.0.0.1:5000/app".into(),
            ImageSpec {
                tags: vec![
                    ImageTagSpec {
                        tag: "1".into(),
                        version: Some(3),
                        pull_policy: Some(ImageTagPullPolicy {
                            timeout_seconds: Some(30),
                            backoff_limit: Some(0),
                            ..Default::default()
                        }),
                        pull_secrets: vec![ReferenceObject {
                            namespace: Some("ns".into()),
                            name: Some("reg".into()),
                        }],
                        ..Default::default()
                    },
                    ImageTagSpec {
                        tag: "sha256:ab".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        );
        let w = wanted(&spec);
        assert_eq!(w[0].spec.image, "127.0.0.1:5000/app:1");
        assert_eq!(
            (
                w[0].spec.timeout,
                w[0].spec.backoff_limit,
                w[0].spec.version
            ),
            (Duration::from_secs(30), 0, 3)
        );
        assert_eq!(w[0].secrets, [("ns".to_string(), "reg".to_string())]);
        assert_eq!(w[1].spec.image, "127.0.0.1:5000/app@sha256:ab");
        let mut s = TagStatus::waiting("127.0.0.1:5000/app:1");
        s.version = 3;
        s.phase = Phase::Pulling;
        s.progress = Some(Progress {
            completed: 50,
            total: 200,
        });
        let latest = [(s.image.clone(), s)].into_iter().collect();
        let out = status(&w, &latest);
        assert_eq!((out.desired, out.pulling, out.waiting), (2, 1, 1));
        let t = &out.image_statuses["127.0.0.1:5000/app"].tags[0];
        assert_eq!(
            (t.progress, t.completed_bytes, t.total_bytes),
            (Some(25), Some(50), Some(200))
        );
        assert_eq!(t.version, Some(3));
    }
}
