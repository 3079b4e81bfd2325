//! Reading a Pod's status: where each container stands, and the problems that end a TaskRun
//! (an image that cannot be pulled, a container that cannot be configured, a failed init).

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Where one container stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not reported yet, or waiting (the reason, such as `ContainerCreating`).
    Waiting(String),
    /// Running.
    Running,
    /// Ended.
    Terminated {
        /// Its exit code.
        exit_code: i32,
        /// The kubelet's reason (`Completed`, `Error`, `OOMKilled`, `StartError`).
        reason: String,
        /// The kubelet's message.
        message: String,
    },
}

impl State {
    /// Running or ended: the container has started (or could not).
    pub fn started(&self) -> bool {
        !matches!(self, State::Waiting(_))
    }
}

/// Whether every one of the `sidecars` is ready, or has ended (a sidecar that did its work
/// and exited holds no step back, as in Tekton).
pub fn sidecars_ready(pod: &Pod, sidecars: &[String]) -> bool {
    let all = statuses(pod, false);
    sidecars.iter().all(|name| {
        all.iter()
            .find(|s| s.name == *name)
            .is_some_and(|s| s.ready || s.state.as_ref().is_some_and(|st| st.terminated.is_some()))
    })
}

/// A problem that ends the TaskRun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An image cannot be pulled (`ErrImagePull`, `ImagePullBackOff`, ...).
    ImagePull(String),
    /// A container cannot be configured or created (a missing Secret key, a bad command).
    Config(String),
    /// The init container that copies slipway failed.
    Prepare(String),
    /// The kubelet ended the whole Pod (an eviction, the node shutting down, an admission
    /// refused): its `status.reason` and `message`.
    Ended(String),
}

fn statuses(pod: &Pod, init: bool) -> &[ContainerStatus] {
    pod.status
        .as_ref()
        .and_then(|s| {
            if init {
                s.init_container_statuses.as_deref()
            } else {
                s.container_statuses.as_deref()
            }
        })
        .unwrap_or_default()
}

/// Where container `name` stands.
pub fn container(pod: &Pod, name: &str) -> State {
    let Some(s) = statuses(pod, false).iter().find(|s| s.name == name) else {
        return State::Waiting(String::new());
    };
    let state = s.state.as_ref();
    if let Some(t) = state.and_then(|st| st.terminated.as_ref()) {
        return State::Terminated {
            exit_code: t.exit_code,
            reason: t.reason.clone().unwrap_or_default(),
            message: t.message.clone().unwrap_or_default(),
        };
    }
    if state.and_then(|st| st.running.as_ref()).is_some() {
        return State::Running;
    }
    State::Waiting(
        state
            .and_then(|st| st.waiting.as_ref())
            .and_then(|w| w.reason.clone())
            .unwrap_or_default(),
    )
}

/// A problem in any container of the Pod.
pub fn problem(pod: &Pod) -> Option<Problem> {
    // A Pod failed as a whole says why in its own status; one whose step failed does not.
    if let Some(st) = pod.status.as_ref()
        && st.phase.as_deref() == Some("Failed")
        && let Some(reason) = st.reason.as_deref().filter(|r| !r.is_empty())
    {
        return Some(Problem::Ended(format!(
            "{reason}: {}",
            st.message.as_deref().unwrap_or("the kubelet ended the Pod")
        )));
    }
    for (init, s) in statuses(pod, true)
        .iter()
        .map(|s| (true, s))
        .chain(statuses(pod, false).iter().map(|s| (false, s)))
    {
        let state = s.state.as_ref();
        if let Some(w) = state.and_then(|st| st.waiting.as_ref()) {
            let reason = w.reason.as_deref().unwrap_or_default();
            let message = w.message.clone().unwrap_or_default();
            let text = format!("container `{}`: {reason}: {message}", s.name);
            match reason {
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                    return Some(Problem::ImagePull(text));
                }
                "CreateContainerConfigError" | "CreateContainerError" => {
                    return Some(Problem::Config(text));
                }
                _ => {}
            }
        }
        if init
            && let Some(t) = state.and_then(|st| st.terminated.as_ref())
            && t.exit_code != 0
        {
            return Some(Problem::Prepare(format!(
                "the init container `{}` that copies slipway into the Pod exited with {} ({}){}",
                s.name,
                t.exit_code,
                t.reason.as_deref().unwrap_or("Error"),
                t.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )));
        }
    }
    None
}

/// The scheduler's message while the Pod cannot be placed on a node.
pub fn unschedulable(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
        .map(|c| c.message.clone().unwrap_or_else(|| "no node fits".into()))
}

/// What the Pod waits for, for a timeout's message: the first waiting reason, else its phase.
pub fn pending_reason(pod: &Pod) -> String {
    if let Some(m) = unschedulable(pod) {
        return format!("Unschedulable: {m}");
    }
    for s in statuses(pod, true).iter().chain(statuses(pod, false)) {
        if let Some(w) = s.state.as_ref().and_then(|st| st.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_default();
            let message = w.message.clone().unwrap_or_default();
            if !reason.is_empty() {
                return format!("container `{}` is {reason} {message}", s.name)
                    .trim_end()
                    .to_string();
            }
        }
    }
    // A sidecar whose readiness probe does not pass holds the steps back.
    let unready = statuses(pod, false)
        .iter()
        .find(|s| !s.ready && s.state.as_ref().is_some_and(|st| st.running.is_some()));
    if let Some(s) = unready {
        return format!("container `{}` is running but not ready", s.name);
    }
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .map(|p| format!("phase {p}"))
        .unwrap_or_else(|| "not scheduled yet".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).expect("pod")
    }

    #[test]
    fn sidecars_are_ready_when_ready_or_ended() {
        let status = |db: serde_json::Value| {
            pod(json!({"phase": "Running", "containerStatuses": [
                {"name": "step-a", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"running": {}}},
                {"name": "sidecar-once", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"terminated": {"exitCode": 0}}},
                db
            ]}))
        };
        let names = ["sidecar-once".to_string(), "sidecar-db".to_string()];
        let db = |ready: bool| {
            json!({"name": "sidecar-db", "ready": ready, "restartCount": 0, "image": "x",
                   "imageID": "", "state": {"running": {}}})
        };
        assert!(!sidecars_ready(&status(db(false)), &names));
        assert!(sidecars_ready(&status(db(true)), &names));
        assert!(
            !sidecars_ready(&pod(json!({"phase": "Pending"})), &names),
            "not reported yet"
        );
        assert_eq!(
            pending_reason(&status(db(false))),
            "container `sidecar-db` is running but not ready"
        );
    }

    #[test]
    fn an_evicted_pod_is_a_problem_and_a_failed_step_is_not() {
        let evicted = pod(json!({
            "phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory.",
            "containerStatuses": [
                {"name": "step-a", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"waiting": {"reason": "PodInitializing"}}}
            ]
        }));
        assert_eq!(
            problem(&evicted),
            Some(Problem::Ended(
                "Evicted: The node was low on resource: memory.".into()
            ))
        );
        let failed_step = pod(json!({
            "phase": "Failed",
            "containerStatuses": [
                {"name": "step-a", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
            ]
        }));
        assert_eq!(problem(&failed_step), None);
    }

    #[test]
    fn pull_failures_config_errors_and_states_are_read() {
        let p = pod(json!({
            "phase": "Pending",
            "containerStatuses": [
                {"name": "step-a", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}},
                {"name": "step-b", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"waiting": {"reason": "ImagePullBackOff", "message": "manifest unknown"}}}
            ]
        }));
        assert_eq!(
            container(&p, "step-a"),
            State::Terminated {
                exit_code: 137,
                reason: "OOMKilled".into(),
                message: String::new()
            }
        );
        assert_eq!(
            problem(&p),
            Some(Problem::ImagePull(
                "container `step-b`: ImagePullBackOff: manifest unknown".into()
            ))
        );
        assert_eq!(container(&p, "missing"), State::Waiting(String::new()));
    }

    #[test]
    fn the_schedulers_message_is_kept() {
        let p = pod(json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}]
        }));
        assert!(unschedulable(&p).is_some_and(|m| m.starts_with("0/1 nodes")));
        assert!(pending_reason(&p).starts_with("Unschedulable: 0/1"));
        assert_eq!(problem(&p), None);
    }
}
