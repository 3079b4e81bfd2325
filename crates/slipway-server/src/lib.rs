//! slipway's HTTP API: definitions applied and read back, runs started through a durable queue,
//! cancelled and re-run, run history in Tekton's JSON shapes, logs (plain or followed live over
//! Server-Sent Events), health, Prometheus metrics, its OpenAPI document and the web UI.

mod access;
mod auth;
mod catalog;
mod diagnostics;
pub mod dispatcher;
mod error;
mod health;
mod hooks;
mod launch;
mod logs;
mod metrics;
mod openapi;
pub mod poll;
mod resources;
mod runs;
mod submit;
mod trigger_defs;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use slipway_store::SqliteStore;

pub use crate::auth::{generate as generate_token, hash as token_hash};
pub use crate::dispatcher::{Dispatcher, Limits};
pub use crate::error::ApiError;

/// What every handler reads from.
#[derive(Debug, Clone)]
pub struct AppState {
    store: Arc<SqliteStore>,
    dispatcher: Option<Arc<Dispatcher>>,
    tokens: Arc<auth::Tokens>,
    metrics: Arc<metrics::Metrics>,
    catalog: Arc<catalog::Cache>,
}

impl AppState {
    /// A server that reads the history and stores definitions but starts no runs.
    pub fn read_only(store: Arc<SqliteStore>) -> AppState {
        AppState {
            store,
            dispatcher: None,
            tokens: Default::default(),
            metrics: Default::default(),
            catalog: Default::default(),
        }
    }

    /// A server that starts runs through `dispatcher`.
    pub fn new(store: Arc<SqliteStore>, dispatcher: Arc<Dispatcher>) -> AppState {
        AppState {
            store,
            metrics: dispatcher.metrics(),
            dispatcher: Some(dispatcher),
            tokens: Default::default(),
            catalog: Default::default(),
        }
    }

    fn dispatcher(&self) -> Result<&Arc<Dispatcher>, ApiError> {
        self.dispatcher.as_ref().ok_or(ApiError::ReadOnly)
    }
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let tekton = "/apis/tekton.dev/v1/namespaces/{namespace}";
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::openapi))
        .route(
            &format!("{tekton}/pipelineruns"),
            get(runs::list_pipeline_runs).post(launch::create_pipeline_run),
        )
        .route(
            &format!("{tekton}/pipelineruns/{{name}}"),
            get(runs::get_pipeline_run).patch(launch::patch_pipeline_run),
        )
        .route(
            &format!("{tekton}/taskruns"),
            get(runs::list_task_runs).post(launch::create_task_run),
        )
        .route(
            &format!("{tekton}/taskruns/{{name}}"),
            get(runs::get_task_run),
        )
        .route(
            "/apis/tekton.dev/v1/pipelineruns",
            get(runs::list_all_pipeline_runs),
        )
        .route(
            "/apis/tekton.dev/v1/taskruns",
            get(runs::list_all_task_runs),
        )
        .route("/api/v1/namespaces", get(runs::namespaces))
        .route("/api/v1/runs", post(launch::submit_runs))
        .merge(run_routes("/api/v1/runs/{name}"))
        .merge(run_routes("/api/v1/namespaces/{namespace}/runs/{name}"))
        .route("/hooks/{listener}", post(hooks::default_namespace))
        .route("/hooks/{namespace}/{listener}", post(hooks::in_namespace))
        .route("/api/v1/apply", post(resources::apply))
        .route("/api/v1/validate", post(resources::validate))
        .merge(resources::routes())
        .merge(ui::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ))
        // Route layers run after routing, so they see the matched route's pattern.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::time,
        ))
        .with_state(state)
}

/// A run's own routes under `base` (with or without a namespace in the path).
fn run_routes(base: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{base}/taskruns"), get(runs::children))
        .route(&format!("{base}/logs"), get(logs::logs))
        .route(&format!("{base}/cancel"), post(launch::cancel))
        .route(&format!("{base}/rerun"), post(launch::rerun))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
