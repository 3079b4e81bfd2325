//! Expires what is done: an `Always` job (or list) whose `ttlSecondsAfterFinished` has passed
//! since it completed, and a list's jobs whose list is gone.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use slipway_store::PrewarmObject;

use super::world::{owner_uid, parse_time};

/// Whether `o` (an ImagePullJob or ImageListPullJob) is past its TTL at `now`.
pub fn past_ttl(o: &PrewarmObject, now: SystemTime) -> bool {
    let policy = &o.object["spec"]["completionPolicy"];
    if policy["type"].as_str().unwrap_or("Always") != "Always" {
        return false;
    }
    let Some(ttl) = policy["ttlSecondsAfterFinished"].as_u64() else {
        return false;
    };
    o.object["status"]["completionTime"]
        .as_str()
        .and_then(parse_time)
        .is_some_and(|done| now >= done + Duration::from_secs(ttl))
}

/// Whether a job was made by a list that no longer exists.
pub fn orphaned(job: &PrewarmObject, lists: &HashSet<&str>) -> bool {
    job.object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| owner_uid(r, "ImageListPullJob"))
        .any(|uid| !lists.contains(uid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ttl_counts_from_completion_and_only_for_always() {
        let job = |policy: serde_json::Value, done: Option<&str>| PrewarmObject {
            kind: "ImagePullJob".into(),
            namespace: "ns".into(),
            name: "j".into(),
            uid: "u".into(),
            object: json!({"spec": {"completionPolicy": policy}, "status": {"completionTime": done}}),
            resource_version: 1,
            generation: 1,
            created_at: 0,
        };
        let at = parse_time("2026-12-01T10:00:00Z").expect("time");
        let done = Some("2026-12-01T09:59:00Z");
        assert!(past_ttl(
            &job(json!({"ttlSecondsAfterFinished": 30}), done),
            at
        ));
        assert!(!past_ttl(
            &job(json!({"ttlSecondsAfterFinished": 120}), done),
            at
        ));
        assert!(!past_ttl(
            &job(json!({"ttlSecondsAfterFinished": 30}), None),
            at
        ));
        assert!(!past_ttl(
            &job(
                json!({"type": "Never", "ttlSecondsAfterFinished": 30}),
                done
            ),
            at
        ));
    }
}
