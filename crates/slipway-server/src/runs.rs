//! PipelineRuns and TaskRuns as Tekton serves them: lists and single objects.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway_store::RunRow;

use crate::{ApiError, AppState};

/// `?limit=`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
}

/// Runs of one kind, newest first, as a Tekton list. The stored objects are valid JSON written
/// by the store, so they are joined as they are: parsing each only to print it again was most
/// of the cost of a long list.
async fn list(state: &AppState, kind: &str, limit: Option<i64>) -> Result<Response, ApiError> {
    let objects = state
        .store
        .run_objects_of(kind, limit.unwrap_or(500).clamp(1, 10_000))
        .await?;
    let mut body = String::with_capacity(objects.iter().map(|o| o.len() + 1).sum::<usize>() + 96);
    body.push_str(r#"{"apiVersion":"tekton.dev/v1","kind":""#);
    body.push_str(kind);
    body.push_str(r#"List","metadata":{},"items":["#);
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(o);
    }
    body.push_str("]}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn one(state: &AppState, kind: &'static str, name: &str) -> Result<RunRow, ApiError> {
    let row = state.store.find_run(name).await?;
    if row.kind != kind {
        return Err(ApiError::NotFound {
            kind,
            name: name.to_string(),
        });
    }
    Ok(row)
}

/// `GET .../pipelineruns`.
pub async fn list_pipeline_runs(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    list(&state, "PipelineRun", q.limit).await
}

/// `GET .../taskruns`: TaskRuns started on their own (a PipelineRun's are under `children`).
pub async fn list_task_runs(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    list(&state, "TaskRun", q.limit).await
}

/// `GET .../pipelineruns/{name}`.
pub async fn get_pipeline_run(
    State(state): State<AppState>,
    Path((_ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(one(&state, "PipelineRun", &name).await?.object))
}

/// `GET .../taskruns/{name}`.
pub async fn get_task_run(
    State(state): State<AppState>,
    Path((_ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(one(&state, "TaskRun", &name).await?.object))
}

/// `GET /api/v1/runs/{name}/taskruns`: the TaskRuns of a run, in start order, as a list.
pub async fn children(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run = state.store.find_run(&name).await?;
    let items: Vec<Value> = state
        .store
        .task_runs(&run.uid)
        .await?
        .into_iter()
        .map(|t| {
            // A TaskRun still running has no final object yet; its identity and status stand in.
            t.object.unwrap_or_else(|| {
                json!({
                    "apiVersion": "tekton.dev/v1",
                    "kind": "TaskRun",
                    "metadata": {"name": t.name, "uid": t.uid},
                    "status": {"conditions": [{
                        "type": "Succeeded", "status": t.status, "reason": t.reason
                    }]},
                })
            })
        })
        .collect();
    Ok(Json(json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRunList",
        "metadata": {},
        "items": items,
    })))
}

/// RFC 3339 seconds from milliseconds since the epoch.
pub fn timestamp(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
