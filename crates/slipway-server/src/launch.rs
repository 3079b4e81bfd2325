//! Starting, cancelling, releasing and re-running runs: every start goes through the durable
//! queue, stored before the reply.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use slipway_model::inputs::RunInputs;
use slipway_model::{Library, RunObject};
use slipway_store::{Delivery, Enqueue, Enqueued, PENDING};

use crate::access::Access;
use crate::catalog;
use crate::dispatcher::Cancelled;
use crate::resources::{NamespaceQuery, text};
use crate::runs::RunPath;
use crate::submit;
use crate::{ApiError, AppState};

/// Validates `body` against the namespace's definitions and queues the runs in it. Definitions
/// in the body are used by these runs only; they are not applied. `only` restricts the body to
/// runs of one kind, as a Kubernetes collection does.
pub async fn queue_body(
    state: &AppState,
    namespace: &str,
    body: &str,
    only: Option<&'static str>,
) -> Result<Vec<Enqueue>, ApiError> {
    state.dispatcher()?;
    submit::check_namespace(namespace)?;
    let docs = catalog::documents(body)?;
    let mut replaced = Vec::new();
    for d in &docs {
        match (d.kind(), only) {
            ("PipelineRun" | "TaskRun", Some(k)) if d.kind() != k => {
                return Err(d.problem(
                    format!("a {} was sent to the {k}s endpoint", d.kind()),
                    format!("POST it to .../{}s", d.kind().to_lowercase()),
                ));
            }
            ("PipelineRun" | "TaskRun", _) => {}
            (kind, Some(k)) => {
                return Err(d.problem(
                    format!("a {kind} was sent to the {k}s endpoint"),
                    "apply definitions with PUT or /api/v1/apply first",
                ));
            }
            (kind, None) => {
                if let Some(name) = d.name() {
                    replaced.push((kind.to_string(), name.to_string()));
                }
            }
        }
    }
    let (lib, _) = catalog::library(state, namespace, Some(body), &replaced).await?;
    if lib.runs.is_empty() {
        return Err(ApiError::BadRequest(
            "the body holds no PipelineRun or TaskRun".into(),
        ));
    }
    let mut runs = prepare_all(&lib, &lib.runs, namespace)?;
    store_runs(state, &mut runs, None).await?;
    Ok(runs)
}

/// Prepares each run (names already used are caught when they are stored).
pub fn prepare_all(
    lib: &Library,
    runs: &[RunObject],
    namespace: &str,
) -> Result<Vec<Enqueue>, ApiError> {
    runs.iter()
        .map(|r| submit::prepare(lib, r, namespace))
        .collect()
}

/// Stores prepared runs (with the delivery that made them, if any) and wakes the dispatcher.
/// A generated name that is taken is made again; a chosen one is a conflict.
pub async fn store_runs(
    state: &AppState,
    runs: &mut [Enqueue],
    delivery: Option<Delivery<'_>>,
) -> Result<Enqueued, ApiError> {
    for r in runs.iter_mut() {
        while let Ok(old) = state.store.find_run_in(Some(&r.namespace), &r.name).await
            && old.name == r.name
        {
            let Some(prefix) = &r.generate_name else {
                return Err(ApiError::Conflict(format!(
                    "{} `{}` already exists; use generateName for a fresh name each time",
                    old.kind, r.name
                )));
            };
            r.name = slipway_engine::generate_name(prefix);
            r.object["metadata"]["name"] = json!(r.name);
        }
    }
    let outcome = state.store.enqueue(runs, delivery).await?;
    if let Ok(d) = state.dispatcher() {
        d.wake();
    }
    Ok(outcome)
}

fn created(runs: &[Enqueue]) -> Response {
    (StatusCode::CREATED, Json(submit::reply(runs))).into_response()
}

/// `POST .../pipelineruns`.
pub async fn create_pipeline_run(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    Ok(created(
        &queue_body(&state, &namespace, text(&body)?, Some("PipelineRun")).await?,
    ))
}

/// `POST .../taskruns`.
pub async fn create_task_run(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    Ok(created(
        &queue_body(&state, &namespace, text(&body)?, Some("TaskRun")).await?,
    ))
}

/// `POST /api/v1/runs?namespace=`: the runs in a multi-document body, with the Tasks and
/// Pipelines beside them (what `slipway run -f` sends). Without `?namespace=` they go to the
/// namespace their own metadata names (one for all), else `default`.
pub async fn submit_runs(
    State(state): State<AppState>,
    access: Access,
    Query(q): Query<NamespaceQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = text(&body)?;
    let ns = match q.given() {
        Some(ns) => ns.to_string(),
        None => own_namespace(body)?,
    };
    access.require(&ns)?;
    let runs = queue_body(&state, &ns, body, None).await?;
    let items: Vec<Value> = runs.iter().map(|r| r.object.clone()).collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "kind": "List", "items": items })),
    )
        .into_response())
}

/// The namespace the runs of a body name for themselves: one, or `default` when none does.
fn own_namespace(body: &str) -> Result<String, ApiError> {
    let mut named: Vec<String> = catalog::documents(body)?
        .iter()
        .filter(|d| matches!(d.kind(), "PipelineRun" | "TaskRun"))
        .filter_map(|d| {
            d.object["metadata"]["namespace"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    match named.as_slice() {
        [] => Ok(slipway_store::DEFAULT_NAMESPACE.to_string()),
        [one] => Ok(one.clone()),
        many => Err(ApiError::BadRequest(format!(
            "the runs name several namespaces ({}); send each namespace's runs on their own, or pass ?namespace=",
            many.join(", ")
        ))),
    }
}

/// `POST /api/v1/runs/{name}/cancel[?hard=true]`.
pub async fn cancel(
    State(state): State<AppState>,
    path: RunPath,
    Query(q): Query<CancelQuery>,
) -> Result<Json<Value>, ApiError> {
    cancel_run(&state, &path, q.hard.unwrap_or(false)).await
}

/// `?hard=`.
#[derive(Debug, serde::Deserialize)]
pub struct CancelQuery {
    hard: Option<bool>,
}

async fn cancel_run(state: &AppState, path: &RunPath, hard: bool) -> Result<Json<Value>, ApiError> {
    let dispatcher = state.dispatcher()?;
    let row = path.find(state).await?;
    if row.status != "Unknown" {
        return Err(ApiError::Conflict(format!(
            "{} `{}` has already finished ({})",
            row.kind, row.name, row.reason
        )));
    }
    if let Some(cluster) =
        row.object["metadata"]["annotations"][slipway_model::annotations::CLUSTER_RUN].as_str()
    {
        // The cluster owns it: a cancel here would be undone by nobody and seen by no one there.
        let (plural, value) = match row.kind.as_str() {
            "TaskRun" => ("taskrun", "TaskRunCancelled"),
            _ => (
                "pipelinerun",
                if hard {
                    "Cancelled"
                } else {
                    "CancelledRunFinally"
                },
            ),
        };
        return Err(ApiError::Conflict(format!(
            "{} `{}` runs in the cluster at {cluster}, whose controller this server hosts; cancel it there: kubectl patch {plural} {} -n {} --type merge -p '{{\"spec\":{{\"status\":\"{value}\"}}}}'",
            row.kind, row.name, row.name, row.namespace
        )));
    }
    match dispatcher.cancel(&row.uid, hard).await? {
        Cancelled::Queued | Cancelled::Running => {}
        Cancelled::NotActive => {
            return Err(ApiError::Conflict(format!(
                "{} `{}` was started by another slipway process (pid {}); cancel it with `slipway cancel` on that machine",
                row.kind,
                row.name,
                row.owner_pid.unwrap_or(0)
            )));
        }
    }
    Ok(Json(state.store.run(&row.uid).await?.object))
}

/// `POST /api/v1/runs/{name}/rerun`: a new run from the same inputs, named after the old one.
pub async fn rerun(State(state): State<AppState>, path: RunPath) -> Result<Response, ApiError> {
    state.dispatcher()?;
    let row = path.find(&state).await?;
    let stored =
        state.store.inputs(&row.uid).await?.ok_or_else(|| {
            ApiError::Conflict(format!("run `{}` has no stored inputs", row.name))
        })?;
    let mut inputs = RunInputs::from_json(&stored);
    // A held run's rerun starts at once.
    if let Some(spec) = inputs.run["spec"].as_object_mut() {
        spec.remove("status");
    }
    if let Some(m) = inputs.run["metadata"].as_object_mut() {
        m.remove("name");
        m.insert("generateName".into(), json!(format!("{}-r-", row.name)));
    }
    let lib = inputs
        .load(&format!("stored inputs of {}", row.name))
        .map_err(|d| {
            ApiError::Conflict(format!(
                "the stored inputs are no longer valid: {}",
                d.render_plain()
            ))
        })?;
    let mut runs = prepare_all(&lib, &lib.runs, &row.namespace)?;
    store_runs(&state, &mut runs, None).await?;
    Ok(created(&runs))
}

/// `PATCH .../pipelineruns/{name}` with a merge patch of `spec.status`, as `kubectl patch`
/// cancels and releases PipelineRuns: `Cancelled` stops everything, `CancelledRunFinally` and
/// `StoppedRunFinally` stop the tasks and run finally, an empty value releases a held run.
pub async fn patch_pipeline_run(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let path = RunPath { namespace, name };
    let patch: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the patch is not JSON: {e}")))?;
    let Some(spec) = patch.get("spec").and_then(Value::as_object) else {
        return Err(ApiError::BadRequest(
            "only spec.status can be patched: send {\"spec\":{\"status\":\"Cancelled\"}}".into(),
        ));
    };
    if spec.keys().any(|k| k != "status") {
        return Err(ApiError::BadRequest(
            "only spec.status can be patched; create a new run to change anything else".into(),
        ));
    }
    match spec.get("status").and_then(Value::as_str).unwrap_or("") {
        "Cancelled" | "PipelineRunCancelled" => cancel_run(&state, &path, true).await,
        "CancelledRunFinally" | "StoppedRunFinally" => cancel_run(&state, &path, false).await,
        "" => {
            let d = state.dispatcher()?;
            let row = path.find(&state).await?;
            if row.reason != PENDING || !state.store.release(&row.uid).await? {
                return Err(ApiError::Conflict(format!(
                    "PipelineRun `{}` is not held ({})",
                    row.name, row.reason
                )));
            }
            d.wake();
            Ok(Json(state.store.run(&row.uid).await?.object))
        }
        PENDING => Err(ApiError::Conflict(
            "a run can be held only when it is created".into(),
        )),
        other => Err(ApiError::BadRequest(format!(
            "spec.status `{other}` is not one of Cancelled, CancelledRunFinally, StoppedRunFinally, or empty"
        ))),
    }
}
