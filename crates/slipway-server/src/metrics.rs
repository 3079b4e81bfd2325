//! Metrics this process observes as they happen: run durations as runs end, and API request
//! latencies. `/metrics` adds what it reads from the history and the queue at scrape time.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunEnd {
    kind: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: String,
    route: String,
    code: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The observed metrics.
#[derive(Debug)]
pub struct Metrics {
    run_seconds: Histograms<RunEnd>,
    queue_seconds: Histogram,
    request_seconds: Histograms<Request>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            // 1 s to about 9 h.
            run_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 2.0, 16))
            }),
            queue_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 20)),
            // 0.5 ms to about 4 s.
            request_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 14))
            }),
        }
    }
}

impl Metrics {
    /// A run started by this server ended.
    pub fn run_ended(&self, kind: &str, reason: &str, took: Duration) {
        self.run_seconds
            .get_or_create(&RunEnd {
                kind: kind.to_string(),
                reason: reason.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A queued run started after waiting this long.
    pub fn run_waited(&self, waited: Duration) {
        self.queue_seconds.observe(waited.as_secs_f64());
    }

    /// An API request was answered. `route` is the matched pattern, not the path, so that names
    /// do not multiply the series.
    pub fn request(&self, method: &str, route: &str, code: u16, took: Duration) {
        self.request_seconds
            .get_or_create(&Request {
                method: method.to_string(),
                route: route.to_string(),
                code: code.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Adds these metrics to a registry being encoded.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "slipway_run_duration_seconds",
            "Durations of the runs this server ran, by kind and final reason",
            self.run_seconds.clone(),
        );
        registry.register(
            "slipway_queue_wait_seconds",
            "How long runs waited in the queue before they started",
            self.queue_seconds.clone(),
        );
        registry.register(
            "slipway_http_request_duration_seconds",
            "API request latencies by method, route and status code",
            self.request_seconds.clone(),
        );
    }
}

/// Middleware timing every request.
pub async fn time(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let took = started.elapsed();
    let code = response.status().as_u16();
    tracing::debug!(%method, %route, code, ms = took.as_secs_f64() * 1000.0, "request");
    state.metrics.request(&method, &route, code, took);
    response
}
