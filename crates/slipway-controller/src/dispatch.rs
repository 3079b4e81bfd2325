//! What the controller does with each run it sees: new ones are run, running ones follow
//! `spec.status` (cancellation), and ones left running by a controller that is gone are
//! adopted: run again through the engine, whose Pods have the same names as before, so every
//! Pod that exists is followed rather than made again, and nothing runs twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use slipway_engine::status::{condition, ts};
use slipway_engine::{CancelHandle, Engine, RunOptions, Store, TeeStore};
use slipway_model::{Library, RunObject};

use crate::controller::{Controller, Running, spec_status};
use crate::history::History;
use crate::library::{Needs, namespace_library, run_object};
use crate::resources::RunKind;
use crate::status::{ClusterStore, PipelineTaskInfo, Target, failed_status, patch_status};

/// Where a run stands, from its `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No status yet: nobody has claimed it.
    New,
    /// Claimed and running (`Succeeded` is Unknown).
    Running,
    /// Finished.
    Done,
}

fn stage(object: &Value) -> Stage {
    let conditions = object["status"]["conditions"].as_array();
    match conditions.and_then(|c| c.iter().find(|c| c["type"] == "Succeeded")) {
        None => Stage::New,
        Some(c) if c["status"] == "Unknown" => Stage::Running,
        Some(_) => Stage::Done,
    }
}

/// A TaskRun the controller (or Tekton) created for a PipelineRun: run by its PipelineRun.
fn owned_by_pipeline_run(object: &Value) -> bool {
    let meta = &object["metadata"];
    !meta["labels"]["tekton.dev/pipelineRun"].is_null()
        || meta["ownerReferences"]
            .as_array()
            .is_some_and(|o| o.iter().any(|r| r["kind"] == "PipelineRun"))
}

/// Reacts to one watch event's object.
pub(crate) fn seen(ctl: Arc<Controller>, kind: RunKind, object: Value) {
    if kind == RunKind::TaskRun && owned_by_pipeline_run(&object) {
        return;
    }
    let uid = object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if uid.is_empty() {
        return;
    }
    let wanted = spec_status(&object);
    let how = {
        let Ok(mut runs) = ctl.runs.lock() else {
            return;
        };
        if let Some(r) = runs.get_mut(&uid) {
            if wanted != r.spec_status {
                cancel(kind, wanted.as_deref(), &r.cancel);
                r.spec_status = wanted;
            }
            return;
        }
        let how = match stage(&object) {
            Stage::Done => return,
            Stage::Running => Start::Adopt,
            // Tekton starts a pending run once the field is cleared: a later event.
            Stage::New if wanted.as_deref() == Some("PipelineRunPending") => return,
            Stage::New => Start::New,
        };
        // Registered before anything is written, so that the write's own watch event finds it.
        // An adopted run may have been cancelled while no controller ran it; a new one so
        // cancelled is not started at all.
        let handle = CancelHandle::new();
        cancel(kind, wanted.as_deref(), &handle);
        runs.insert(
            uid.clone(),
            Running {
                cancel: handle,
                spec_status: wanted,
            },
        );
        how
    };
    tokio::spawn(async move {
        start(ctl.clone(), kind, object, how).await;
        if let Ok(mut runs) = ctl.runs.lock() {
            runs.remove(&uid);
        }
    });
}

/// How a run is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Nobody ran it yet.
    New,
    /// A controller that is gone left it running.
    Adopt,
}

/// `spec.status` to the engine: Tekton's `Cancelled` stops everything (finally too); the
/// `...RunFinally` ones and a TaskRun's `TaskRunCancelled` cancel and let finally run.
fn cancel(kind: RunKind, wanted: Option<&str>, handle: &CancelHandle) {
    match (kind, wanted) {
        (RunKind::PipelineRun, Some("Cancelled")) => handle.stop(),
        (RunKind::PipelineRun, Some("CancelledRunFinally" | "StoppedRunFinally"))
        | (RunKind::TaskRun, Some("TaskRunCancelled")) => handle.cancel(),
        _ => {}
    }
}

fn meta(object: &Value, key: &str) -> String {
    object["metadata"][key]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Loads and runs one run, new or adopted.
async fn start(ctl: Arc<Controller>, kind: RunKind, object: Value, how: Start) {
    let (name, namespace, uid) = (
        meta(&object, "name"),
        meta(&object, "namespace"),
        meta(&object, "uid"),
    );
    let api = ctl.api(kind, Some(&namespace));
    let handle = match ctl.runs.lock() {
        Ok(runs) => runs.get(&uid).map(|r| r.cancel.clone()),
        Err(_) => None,
    };
    let Some(handle) = handle else { return };
    // A run cancelled before it started is not started (as Tekton does).
    if how == Start::New && spec_status(&object).is_some() {
        let reason = match kind {
            RunKind::PipelineRun => "Cancelled",
            RunKind::TaskRun => "TaskRunCancelled",
        };
        let status = failed_status(reason, "cancelled before it started", None);
        let _ = claim(&api, &object, &status).await;
        return;
    }
    let now = SystemTime::now();
    let started = match how {
        // No claim is written first: the run's Pods are made under names derived from its
        // uid, so a second leader (a Lease handover) or a restarted one follows the same Pods.
        // Its first status write comes with its first events.
        Start::New => {
            tracing::info!(run = %name, namespace = %namespace, kind = kind.as_str(), "started");
            json!(ts(now))
        }
        Start::Adopt => {
            let started = object["status"]["startTime"].clone();
            let adopted = json!({
                "conditions": condition(None, "Running", &format!("adopted by {} after the controller running it stopped", ctl.identity), now),
            });
            // Guarded like a claim: two replicas never both adopt it.
            match claim(&api, &object, &adopted).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::info!("left {} {namespace}/{name} alone: {e}", kind.as_str());
                    return;
                }
            }
            tracing::info!(run = %name, namespace = %namespace, kind = kind.as_str(), "adopted");
            started
        }
    };
    let fail = |reason: &'static str, message: String| {
        let api = api.clone();
        let name = name.clone();
        let started = started.clone();
        async move {
            let status = failed_status(reason, &message, Some(&started));
            if let Err(e) = patch_status(&api, &name, &status).await {
                tracing::warn!("failed to write the status of {name}: {e}");
            }
        }
    };
    let run = match run_object(&object, kind.as_str()) {
        Ok(run) => run,
        Err(e) => return fail(e.reason, e.message).await,
    };
    let lib = match namespace_library(
        &ctl.client,
        ctl.cache.get(),
        &namespace,
        Needs::of(&object),
        &object,
    )
    .await
    {
        Ok(lib) => lib,
        Err(e) => {
            let reason = match kind {
                RunKind::PipelineRun => "CouldntGetPipeline",
                RunKind::TaskRun => "CouldntGetTask",
            };
            return fail(
                reason,
                format!("failed to read the namespace's Tekton objects: {e}"),
            )
            .await;
        }
    };
    let target = Target {
        kind,
        name: name.clone(),
        namespace: namespace.clone(),
        uid: uid.clone(),
    };
    let tasks = pipeline_tasks(&lib, &run);
    let store = ClusterStore::start(
        ctl.client.clone(),
        target,
        tasks,
        ctl.settings.status_window,
    );
    let mut config = ctl.settings.engine.clone();
    config.namespace = namespace.clone();
    // The cluster's status first: it is what kubectl and the next leader read.
    let cluster: Arc<dyn Store> = store;
    let store: Arc<dyn Store> = match &ctl.history {
        Some(history) => Arc::new(TeeStore::new(vec![
            cluster,
            Arc::new(History::new(history.clone(), &ctl.server)),
        ])),
        None => cluster,
    };
    let engine = Engine::new(
        Arc::new(ctl.executor.in_namespace(&namespace)),
        store,
        config,
    );
    let created = object["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok());
    let opts = RunOptions {
        name: name.clone(),
        uid,
        created,
        namespace: Some(namespace.clone()),
        started: started
            .as_str()
            .and_then(|t| humantime::parse_rfc3339(t).ok()),
        ..RunOptions::default()
    };
    match engine.run(lib, &run, opts, handle).await {
        Ok(report) => tracing::info!(run = %name, reason = %report.reason, "finished"),
        Err(slipway_engine::EngineError::Invalid { failure, .. }) => {
            let reason: &'static str = match failure.reason.as_str() {
                "CouldntGetPipeline" => "CouldntGetPipeline",
                "CouldntGetTask" => "CouldntGetTask",
                _ => match kind {
                    RunKind::PipelineRun => "PipelineRunValidationFailed",
                    RunKind::TaskRun => "TaskRunValidationFailed",
                },
            };
            fail(reason, failure.message).await;
        }
    }
}

/// The claim: the first status, written only if the object is still the version seen (its
/// resourceVersion in the patch makes the API server refuse it with 409 otherwise), so two
/// replicas never both start a run.
pub(crate) async fn claim(
    api: &Api<kube::api::DynamicObject>,
    object: &Value,
    status: &Value,
) -> Result<(), kube::Error> {
    let patch = json!({
        "metadata": { "resourceVersion": object["metadata"]["resourceVersion"] },
        "status": status,
    });
    api.patch_status(
        object["metadata"]["name"].as_str().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map(|_| ())
}

/// What the store needs to know of each pipeline task before it runs.
fn pipeline_tasks(lib: &Library, run: &RunObject) -> HashMap<String, PipelineTaskInfo> {
    let RunObject::PipelineRun(pr) = run else {
        return HashMap::new();
    };
    let spec = match (&pr.spec.pipeline_spec, &pr.spec.pipeline_ref) {
        (Some(s), _) => s.clone(),
        (None, Some(r)) => match r.name.as_ref().and_then(|n| lib.pipelines.get(n)) {
            Some(p) => p.spec.clone(),
            None => return HashMap::new(),
        },
        (None, None) => return HashMap::new(),
    };
    let mut out = HashMap::new();
    for (member_of, tasks) in [("tasks", &spec.tasks), ("finally", &spec.finally)] {
        for pt in tasks {
            let task = pt.task_ref.as_ref().and_then(|r| r.name.clone());
            let spec = match (&task, &pt.task_spec) {
                (Some(t), _) => json!({ "taskRef": { "name": t, "kind": "Task" } }),
                (None, Some(s)) => json!({ "taskSpec": s }),
                (None, None) => json!({}),
            };
            out.insert(
                pt.name.clone(),
                PipelineTaskInfo {
                    task,
                    member_of,
                    spec,
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_the_succeeded_condition() {
        assert_eq!(stage(&json!({})), Stage::New);
        let with =
            |s: &str| json!({"status": {"conditions": [{"type": "Succeeded", "status": s}]}});
        assert_eq!(stage(&with("Unknown")), Stage::Running);
        assert_eq!(stage(&with("True")), Stage::Done);
        assert_eq!(stage(&with("False")), Stage::Done);
    }

    #[test]
    fn taskruns_of_a_pipelinerun_are_not_run_on_their_own() {
        assert!(owned_by_pipeline_run(
            &json!({"metadata": {"labels": {"tekton.dev/pipelineRun": "pr"}}})
        ));
        assert!(owned_by_pipeline_run(
            &json!({"metadata": {"ownerReferences": [{"kind": "PipelineRun", "name": "pr"}]}})
        ));
        assert!(!owned_by_pipeline_run(
            &json!({"metadata": {"labels": {"app": "x"}}})
        ));
    }

    #[test]
    fn spec_status_maps_to_the_cancel_stage() {
        let h = CancelHandle::new();
        cancel(RunKind::PipelineRun, Some("StoppedRunFinally"), &h);
        assert!(h.graceful().is_cancelled() && !h.hard().is_cancelled());
        let h = CancelHandle::new();
        cancel(RunKind::PipelineRun, Some("Cancelled"), &h);
        assert!(h.hard().is_cancelled());
        let h = CancelHandle::new();
        cancel(RunKind::TaskRun, Some("PipelineRunPending"), &h);
        assert!(!h.graceful().is_cancelled());
    }
}

#[cfg(test)]
mod mock_tests {
    use super::*;
    use crate::resources::pipeline_runs;
    use slipway_kube_mock as testkit;

    #[tokio::test]
    async fn the_claim_is_a_status_patch_guarded_by_the_resource_version() {
        let (client, log) =
            testkit::client(|s| match s.body["metadata"]["resourceVersion"].as_str() {
                Some("41") => (200, s.body.clone()),
                _ => (409, testkit::status(409, "Conflict")),
            });
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(client, "ci", &pipeline_runs());
        let status = json!({"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]});
        let fresh = json!({"metadata": {"name": "pr", "resourceVersion": "41"}});
        claim(&api, &fresh, &status).await.expect("claimed");
        let stale = json!({"metadata": {"name": "pr", "resourceVersion": "40"}});
        let lost = claim(&api, &stale, &status)
            .await
            .expect_err("another replica wrote first");
        assert!(matches!(lost, kube::Error::Api(s) if s.code == 409));
        let log = log.lock().expect("lock");
        assert_eq!(log[0].method, "PATCH");
        assert_eq!(
            log[0].path(),
            "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/pr/status"
        );
        assert_eq!(log[0].content_type, "application/merge-patch+json");
        assert_eq!(log[0].body["status"]["conditions"][0]["reason"], "Running");
    }
}
