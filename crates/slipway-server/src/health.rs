//! Liveness, readiness, and Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{ApiError, AppState};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the run history can be read.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.list_runs(1).await {
        Ok(_) => "ok".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")).into_response(),
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    status: String,
    reason: String,
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let family = Family::<RunLabels, Gauge>::default();
    for (kind, status, reason, n) in state.store.run_counts().await? {
        family
            .get_or_create(&RunLabels {
                kind,
                status,
                reason,
            })
            .set(n);
    }
    let mut registry = Registry::default();
    registry.register(
        "slipway_runs",
        "Runs in the history by kind, condition status and reason",
        family,
    );
    let depth = Gauge::<i64>::default();
    depth.set(state.store.queue_depth().await?);
    registry.register(
        "slipway_queue_depth",
        "Runs waiting to start (held ones included)",
        depth,
    );
    let running = Gauge::<i64>::default();
    running.set(state.dispatcher.as_ref().map_or(0, |d| d.running() as i64));
    registry.register(
        "slipway_runs_running",
        "Runs this server is running now",
        running,
    );
    state.metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| ApiError::Encode(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
