//! slipway's HTTP API over the run history: runs and TaskRuns in Tekton's JSON shapes, logs
//! (plain or followed live over Server-Sent Events), health, Prometheus metrics, and its OpenAPI
//! document.
//!
//! Reads only, for now: runs are started by `slipway run` processes sharing the data directory.

mod error;
mod health;
mod logs;
mod openapi;
mod runs;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use slipway_store::SqliteStore;

pub use crate::error::ApiError;

/// What every handler reads from.
#[derive(Debug, Clone)]
pub struct AppState {
    store: Arc<SqliteStore>,
}

/// The API's routes over `store`.
pub fn router(store: Arc<SqliteStore>) -> Router {
    let tekton = "/apis/tekton.dev/v1/namespaces/{namespace}";
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::openapi))
        .route(
            &format!("{tekton}/pipelineruns"),
            get(runs::list_pipeline_runs),
        )
        .route(
            &format!("{tekton}/pipelineruns/{{name}}"),
            get(runs::get_pipeline_run),
        )
        .route(&format!("{tekton}/taskruns"), get(runs::list_task_runs))
        .route(
            &format!("{tekton}/taskruns/{{name}}"),
            get(runs::get_task_run),
        )
        .route("/api/v1/runs/{name}/taskruns", get(runs::children))
        .route("/api/v1/runs/{name}/logs", get(logs::logs))
        .with_state(AppState { store })
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<SqliteStore>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown)
        .await
}
