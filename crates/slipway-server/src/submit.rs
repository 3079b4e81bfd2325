//! Turning a run document into a queued run: its name and uid, the object shown while it waits,
//! its priority, and the inputs it will start from.

use serde_json::{Value, json};
use slipway_engine::generate_name;
use slipway_model::inputs::RunInputs;
use slipway_model::{Library, RunObject};
use slipway_store::{Enqueue, PENDING};

use crate::ApiError;

/// The annotation that orders the queue: higher starts first (default 0).
pub const PRIORITY: &str = slipway_model::annotations::PRIORITY;

/// A 400 unless `namespace` is a DNS label, as Kubernetes requires of namespaces.
pub fn check_namespace(namespace: &str) -> Result<(), ApiError> {
    if slipway_store::valid_namespace(namespace) {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "`{namespace}` is not a namespace name: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
    )))
}

/// A run ready to be stored in the queue.
pub fn prepare(lib: &Library, run: &RunObject, namespace: &str) -> Result<Enqueue, ApiError> {
    check_namespace(namespace)?;
    let meta = run.meta();
    if let Some(own) = meta.namespace.as_deref().filter(|n| !n.is_empty())
        && own != namespace
    {
        return Err(ApiError::BadRequest(format!(
            "the {} is in namespace `{own}`, the request in `{namespace}`; drop metadata.namespace or send it to its namespace",
            run.kind()
        )));
    }
    let (target, held) = match run {
        RunObject::PipelineRun(pr) => (
            pr.spec
                .pipeline_ref
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default(),
            pr.spec.status.as_deref() == Some(PENDING),
        ),
        RunObject::TaskRun(tr) => (
            tr.spec
                .task_ref
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default(),
            false,
        ),
    };
    let prefix = meta.generate_name.clone().unwrap_or_else(|| {
        if target.is_empty() {
            "run-".to_string()
        } else {
            format!("{target}-run-")
        }
    });
    let (name, generated) = match &meta.name {
        Some(n) => (n.clone(), None),
        None => (generate_name(&prefix), Some(prefix)),
    };
    let priority = match meta.annotations.get(PRIORITY) {
        None => 0,
        Some(p) => slipway_model::annotations::priority(p).map_err(|e| {
            ApiError::BadRequest(format!(
                "annotation {PRIORITY} is `{}`: {e}; {}",
                slipway_model::names::shown(p),
                e.hint(PRIORITY)
            ))
        })?,
    };
    let uid = uuid::Uuid::new_v4().to_string();
    let inputs = RunInputs::capture(lib, run, &name);
    let mut object = inputs.run.clone();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    object["metadata"]["name"] = json!(name);
    object["metadata"]["uid"] = json!(uid);
    object["metadata"]["namespace"] = json!(namespace);
    object["metadata"]["creationTimestamp"] = json!(now);
    if let Some(m) = object["metadata"].as_object_mut() {
        m.remove("generateName");
    }
    if !target.is_empty() {
        let label = match run {
            RunObject::PipelineRun(_) => "tekton.dev/pipeline",
            RunObject::TaskRun(_) => "tekton.dev/task",
        };
        object["metadata"]["labels"][label] = json!(target);
    }
    let message = if held {
        "held by spec.status: PipelineRunPending; clear it to start"
    } else {
        "waiting in the queue for a free slot"
    };
    object["status"] = json!({ "conditions": [{
        "type": "Succeeded", "status": "Unknown", "reason": PENDING,
        "message": message, "lastTransitionTime": now,
    }]});
    // What the API shows of a waiting run carries no secret; the inputs keep the values to run.
    slipway_engine::mask::Masker::for_run(lib, run).value(&mut object);
    Ok(Enqueue {
        uid,
        name,
        generate_name: generated,
        kind: run.kind(),
        namespace: namespace.to_string(),
        target,
        priority,
        held,
        object,
        inputs: inputs.to_json(),
    })
}

/// The reply for queued runs: the first object, or a list when there are several.
pub fn reply(runs: &[Enqueue]) -> Value {
    match runs {
        [one] => one.object.clone(),
        many => json!({
            "apiVersion": "tekton.dev/v1",
            "kind": "List",
            "items": many.iter().map(|r| r.object.clone()).collect::<Vec<_>>(),
        }),
    }
}
