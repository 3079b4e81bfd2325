//! Tekton-shaped status: conditions, step states, and the TaskRun and PipelineRun objects.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::event::StepEnd;

/// RFC 3339 in UTC to the second, as Kubernetes writes times.
pub fn ts(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A `Succeeded` condition.
pub fn condition(status: Option<bool>, reason: &str, message: &str, at: SystemTime) -> Value {
    let s = match status {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    json!([{ "type": "Succeeded", "status": s, "reason": reason, "message": message, "lastTransitionTime": ts(at) }])
}

/// What is known about one step of a TaskRun.
#[derive(Debug, Clone)]
pub struct StepState {
    /// Step name.
    pub name: String,
    /// When it began.
    pub started: Option<SystemTime>,
    /// How and when it ended.
    pub ended: Option<(StepEnd, SystemTime)>,
}

impl StepState {
    /// A step that has not started.
    pub fn new(name: &str) -> Self {
        StepState {
            name: name.to_string(),
            started: None,
            ended: None,
        }
    }

    /// Tekton's `status.steps[]` entry.
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "name": self.name, "container": format!("step-{}", self.name) });
        match (&self.ended, self.started) {
            (Some((end, at)), started) => {
                v["terminated"] = json!({
                    "exitCode": end.exit_code(),
                    "reason": end.reason(),
                    "startedAt": ts(started.unwrap_or(*at)),
                    "finishedAt": ts(*at),
                });
                v["terminationReason"] = json!(end.reason());
            }
            (None, Some(s)) => v["running"] = json!({ "startedAt": ts(s) }),
            (None, None) => v["waiting"] = json!({ "reason": "PodInitializing" }),
        }
        v
    }
}

impl StepState {
    /// The entry once its TaskRun has ended. A step that never started (the TaskRun failed
    /// before it: an image, a Secret) is left waiting with the TaskRun's reason, as a pod's
    /// container that was never created; one still running is terminated with exit code 1
    /// and the TaskRun's reason, as Tekton marks it, so no step of a finished TaskRun reads
    /// as running.
    pub fn to_final_json(&self, taskrun_reason: &str, at: SystemTime) -> Value {
        let mut v = self.to_json();
        match (&self.ended, self.started) {
            (Some(_), _) => {}
            (None, None) => {
                v["waiting"] = json!({
                    "reason": taskrun_reason,
                    "message": format!("Step {} did not start: the TaskRun ended first ({taskrun_reason})", self.name),
                });
            }
            (None, Some(started)) => {
                if let Some(o) = v.as_object_mut() {
                    o.remove("running");
                }
                v["terminated"] = json!({
                    "exitCode": 1,
                    "reason": taskrun_reason,
                    "message": format!("Step {} did not run to its end: the TaskRun ended ({taskrun_reason})", self.name),
                    "startedAt": ts(started),
                    "finishedAt": ts(at),
                });
                v["terminationReason"] = json!(taskrun_reason);
            }
        }
        v
    }
}

/// Tekton's `results[]` entry.
pub fn result_entry(name: &str, value: &slipway_model::ParamValue) -> Value {
    json!({ "name": name, "type": value.kind().to_string(), "value": value.to_json() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_never_started_waits_with_the_reason() {
        let now = SystemTime::now();
        let never = StepState {
            name: "build".into(),
            started: None,
            ended: None,
        };
        let v = never.to_final_json("TaskRunImagePullFailed", now);
        assert_eq!(v["waiting"]["reason"], "TaskRunImagePullFailed");
        assert!(
            v.get("terminated").is_none() && v.get("running").is_none(),
            "{v}"
        );
        let cut = StepState {
            started: Some(now),
            ..never
        };
        let v = cut.to_final_json("TaskRunTimeout", now);
        assert_eq!(v["terminated"]["reason"], "TaskRunTimeout");
        assert!(
            v.get("running").is_none() && v.get("waiting").is_none(),
            "{v}"
        );
    }
}
