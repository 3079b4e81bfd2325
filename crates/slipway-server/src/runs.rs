//! PipelineRuns and TaskRuns as Tekton serves them: lists and single objects.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway_store::RunRow;

use crate::access::Access;
use crate::resources::NamespaceQuery;
use crate::{ApiError, AppState};

/// `?limit=`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
}

/// Runs of one kind in the given namespaces (`None`: all), newest first, as a Tekton list. The
/// stored objects are valid JSON written by the store, so they are joined as they are: parsing
/// each only to print it again was most of the cost of a long list.
async fn list(
    state: &AppState,
    kind: &str,
    namespaces: Option<&[String]>,
    limit: Option<i64>,
) -> Result<Response, ApiError> {
    let objects = state
        .store
        .run_objects_of(kind, namespaces, limit.unwrap_or(500).clamp(1, 10_000))
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

async fn one(
    state: &AppState,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Result<RunRow, ApiError> {
    let row = state.store.find_run_in(Some(namespace), name).await?;
    if row.kind != kind {
        return Err(ApiError::NotFound {
            kind,
            name: name.to_string(),
        });
    }
    Ok(row)
}

/// `GET .../namespaces/{namespace}/pipelineruns`.
pub async fn list_pipeline_runs(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    list(&state, "PipelineRun", Some(&[namespace]), q.limit).await
}

/// `GET .../namespaces/{namespace}/taskruns`: TaskRuns started on their own (a PipelineRun's
/// are under `children`).
pub async fn list_task_runs(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    list(&state, "TaskRun", Some(&[namespace]), q.limit).await
}

/// `GET /apis/tekton.dev/v1/pipelineruns`: every namespace's (a limited token's only).
pub async fn list_all_pipeline_runs(
    State(state): State<AppState>,
    access: Access,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    list(&state, "PipelineRun", access.filter(), q.limit).await
}

/// `GET /apis/tekton.dev/v1/taskruns`: every namespace's (a limited token's only).
pub async fn list_all_task_runs(
    State(state): State<AppState>,
    access: Access,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    list(&state, "TaskRun", access.filter(), q.limit).await
}

/// `GET .../pipelineruns/{name}`.
pub async fn get_pipeline_run(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        one(&state, "PipelineRun", &namespace, &name).await?.object,
    ))
}

/// `GET .../taskruns/{name}`.
pub async fn get_task_run(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        one(&state, "TaskRun", &namespace, &name).await?.object,
    ))
}

/// A run named by a path: `/api/v1/namespaces/{namespace}/runs/{name}/…`, or
/// `/api/v1/runs/{name}/…?namespace=` (`default` when not given).
#[derive(Debug, Clone)]
pub struct RunPath {
    /// Namespace.
    pub namespace: String,
    /// Name, uid, or a uid prefix of eight hex digits or more.
    pub name: String,
}

impl RunPath {
    /// The run it names, in its namespace.
    pub async fn find(&self, state: &AppState) -> Result<RunRow, ApiError> {
        Ok(state
            .store
            .find_run_in(Some(&self.namespace), &self.name)
            .await?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RunPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let name = params
            .remove("name")
            .ok_or_else(|| ApiError::BadRequest("the path names no run".into()))?;
        let namespace = match params.remove("namespace") {
            Some(ns) => ns,
            None => Query::<NamespaceQuery>::try_from_uri(&parts.uri)
                .map_err(|e| ApiError::BadRequest(format!("the query is malformed: {e}")))?
                .0
                .namespace()
                .to_string(),
        };
        Ok(RunPath { namespace, name })
    }
}

/// `GET /api/v1/runs/{name}/taskruns`: the TaskRuns of a run, in start order, as a list.
pub async fn children(
    State(state): State<AppState>,
    path: RunPath,
) -> Result<Json<Value>, ApiError> {
    let run = path.find(&state).await?;
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
                    "metadata": {"name": t.name, "uid": t.uid, "namespace": run.namespace},
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

/// `GET /api/v1/namespaces`: the namespaces that hold runs or stored objects (and `default`),
/// as Kubernetes lists them; a limited token sees its own only.
pub async fn namespaces(
    State(state): State<AppState>,
    access: Access,
) -> Result<Json<Value>, ApiError> {
    let mut names = state.store.namespaces().await?;
    names.push(slipway_store::DEFAULT_NAMESPACE.to_string());
    names.sort_unstable();
    names.dedup();
    let items: Vec<Value> = names
        .iter()
        .filter(|n| access.permits(n))
        .map(|n| {
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": n}, "status": {"phase": "Active"},
            })
        })
        .collect();
    Ok(Json(json!({
        "apiVersion": "v1",
        "kind": "NamespaceList",
        "metadata": {},
        "items": items,
    })))
}
