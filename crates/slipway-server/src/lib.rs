//! slipway's HTTP API: definitions applied and read back, runs started through a durable queue,
//! cancelled and re-run, run history in Tekton's JSON shapes, logs (plain or followed live over
//! Server-Sent Events), health, Prometheus metrics, its OpenAPI document and the web UI.

mod access;
mod auth;
mod body;
mod catalog;
mod connections;
pub mod controller;
mod diagnostics;
pub mod dispatcher;
mod error;
mod guard;
mod health;
mod hooks;
mod launch;
mod logs;
mod metrics;
mod nodes;
mod openapi;
pub mod poll;
mod prewarm;
mod resources;
mod runs;
mod selectors;
mod submit;
mod trigger_defs;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use slipway_store::SqliteStore;

pub use crate::auth::{Mode as AuthMode, generate as generate_token, hash as token_hash};
pub use crate::body::MAX_BODY;
pub use crate::dispatcher::{Dispatcher, Limits};
pub use crate::error::ApiError;
pub use crate::guard::is_host;

/// What every handler reads from.
#[derive(Debug, Clone)]
pub struct AppState {
    store: Arc<SqliteStore>,
    dispatcher: Option<Arc<Dispatcher>>,
    metrics: Arc<metrics::Metrics>,
    catalog: Arc<catalog::Cache>,
    auth: auth::Mode,
    hosts: Arc<guard::HostPolicy>,
    body_timeout: Duration,
}

/// How the server meets the network: the names it answers to, how many connections it keeps,
/// and how long it waits for clients.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Names (`name` or `name:port`) a request's `Host` may give besides the listening address
    /// and `localhost` (a DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Connections open at once; more are answered `503`.
    pub max_connections: usize,
    /// How long a client may take to send a request's head (line and headers).
    pub header_timeout: Duration,
    /// How long a client may pause while sending a request's body.
    pub body_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            allowed_hosts: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

/// The default cap on open connections: room for many browsers and followers, far below the
/// open-file limits `slipway serve` raises itself to.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

impl AppState {
    /// A server that reads the history and stores definitions but starts no runs.
    pub fn read_only(store: Arc<SqliteStore>) -> AppState {
        AppState {
            store,
            dispatcher: None,
            metrics: Default::default(),
            catalog: Default::default(),
            auth: Default::default(),
            hosts: Default::default(),
            body_timeout: ServeOptions::default().body_timeout,
        }
    }

    /// A server that starts runs through `dispatcher`.
    pub fn new(store: Arc<SqliteStore>, dispatcher: Arc<Dispatcher>) -> AppState {
        AppState {
            store,
            metrics: dispatcher.metrics(),
            dispatcher: Some(dispatcher),
            catalog: Default::default(),
            auth: Default::default(),
            hosts: Default::default(),
            body_timeout: ServeOptions::default().body_timeout,
        }
    }

    /// Whether the API asks for tokens ([`AuthMode::Tokens`] unless changed here).
    pub fn with_auth(mut self, mode: AuthMode) -> AppState {
        self.auth = mode;
        self
    }

    /// The `Host` names and the body timeout of a server listening on `listen`.
    fn listening(mut self, listen: Option<SocketAddr>, options: &ServeOptions) -> AppState {
        self.hosts = Arc::new(guard::HostPolicy::new(listen, &options.allowed_hosts));
        self.body_timeout = options.body_timeout;
        self
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
        .route("/api/v1/whoami", get(auth::whoami))
        .route("/api/v1/runs", post(launch::submit_runs))
        .merge(run_routes("/api/v1/runs/{name}"))
        .merge(run_routes("/api/v1/namespaces/{namespace}/runs/{name}"))
        .route("/hooks/{listener}", post(hooks::default_namespace))
        .route("/hooks/{namespace}/{listener}", post(hooks::in_namespace))
        .route("/api/v1/apply", post(resources::apply))
        .route("/api/v1/validate", post(resources::validate))
        .merge(resources::routes())
        .merge(prewarm::routes())
        .merge(nodes::routes())
        .merge(ui::routes())
        .fallback(error::no_route)
        // Outermost last: the guards refuse before a token is looked up, and a body is read
        // only for a request with a valid token.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .layer(axum::middleware::from_fn(error::as_status))
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

/// Serves the API on `listener` until `shutdown` completes, then waits for open requests to
/// end (the caller bounds how long).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = state.listening(listener.local_addr().ok(), &options);
    connections::serve(listener, router(state), options, shutdown).await
}
