//! A client-side rate limit on API requests: a token bucket of `burst` tokens refilled at `qps`
//! per second, as client-go's flow control does, so a busy controller cannot flood the server.
//! Unlike client-go's, waiting requests are served by class, not in arrival order: Lease
//! renewals first (a leader starved of them loses the Lease), then Pod creations (what starts
//! work), then everything else (status writes, reads, watches). A thousand runs arriving at
//! once thus get their Pods at the rate limit, and their statuses after.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tower::{Layer, Service};

/// Which queue a request waits in; lower first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Lease reads and renewals.
    Lease = 0,
    /// Pod creations.
    PodCreate = 1,
    /// Everything else.
    Other = 2,
}

const CLASSES: usize = 3;

impl Class {
    /// The class of a request, from its method and path.
    pub(crate) fn of<B>(req: &http::Request<B>) -> Self {
        let path = req.uri().path();
        if path.starts_with("/apis/coordination.k8s.io/") {
            Class::Lease
        } else if req.method() == http::Method::POST && path.ends_with("/pods") {
            Class::PodCreate
        } else {
            Class::Other
        }
    }
}

/// The token bucket.
#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Refills, then says how long until a token is there (zero: one is there now).
    fn wait(&mut self) -> Duration {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.qps)
        }
    }
}

type Waiter = oneshot::Sender<()>;

/// Hands out tokens to waiting requests, highest class first, in arrival order within one.
async fn dispense(mut bucket: Bucket, mut arrivals: mpsc::UnboundedReceiver<(Class, Waiter)>) {
    let mut queues: [VecDeque<Waiter>; CLASSES] = Default::default();
    loop {
        while let Ok((class, w)) = arrivals.try_recv() {
            queues[class as usize].push_back(w);
        }
        // Requests given up while waiting (their future dropped) take no token.
        for q in &mut queues {
            while q.front().is_some_and(oneshot::Sender::is_closed) {
                q.pop_front();
            }
        }
        if queues.iter().all(VecDeque::is_empty) {
            match arrivals.recv().await {
                Some((class, w)) => queues[class as usize].push_back(w),
                None => return,
            }
            continue;
        }
        let wait = bucket.wait();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
            continue;
        }
        if let Some(w) = queues.iter_mut().find_map(VecDeque::pop_front)
            && w.send(()).is_ok()
        {
            bucket.tokens -= 1.0;
        }
    }
}

/// The limiter every service of one layer shares.
#[derive(Debug)]
struct Limiter {
    qps: f64,
    burst: f64,
    /// The dispenser's queue, started on first use (it needs the runtime).
    arrivals: OnceLock<mpsc::UnboundedSender<(Class, Waiter)>>,
}

impl Limiter {
    /// Waits for a token for a request of `class`.
    async fn acquire(&self, class: Class) {
        let arrivals = self.arrivals.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let bucket = Bucket {
                qps: self.qps,
                burst: self.burst,
                tokens: self.burst,
                last: Instant::now(),
            };
            tokio::spawn(dispense(bucket, rx));
            tx
        });
        let (tx, rx) = oneshot::channel();
        if arrivals.send((class, tx)).is_ok() {
            // A dispenser gone (its runtime shut down) lets the request through unlimited.
            let _ = rx.await;
        }
    }
}

/// A tower layer limiting requests to `qps` a second with bursts of `burst`.
#[derive(Debug, Clone)]
pub struct QpsLayer {
    limiter: Arc<Limiter>,
    sent: Arc<AtomicU64>,
}

impl QpsLayer {
    /// `qps` requests a second on average, `burst` at once (both at least 1).
    pub fn new(qps: f64, burst: u32) -> Self {
        QpsLayer {
            limiter: Arc::new(Limiter {
                qps: if qps > 0.0 { qps } else { 1.0 },
                burst: f64::from(burst.max(1)),
                arrivals: OnceLock::new(),
            }),
            sent: Arc::default(),
        }
    }

    /// Requests sent so far through every service of this layer (what a run costs the server).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl<S> Layer<S> for QpsLayer {
    type Service = Qps<S>;
    fn layer(&self, inner: S) -> Qps<S> {
        Qps {
            inner,
            limiter: self.limiter.clone(),
            sent: self.sent.clone(),
        }
    }
}

/// The service [`QpsLayer`] makes: each request waits for its token before it is sent.
#[derive(Clone)]
pub struct Qps<S> {
    inner: S,
    limiter: Arc<Limiter>,
    sent: Arc<AtomicU64>,
}

impl<S> std::fmt::Debug for Qps<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qps").finish_non_exhaustive()
    }
}

impl<S, B> Service<http::Request<B>> for Qps<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let class = Class::of(&req);
        // The client's futures send nothing until polled: the request leaves once it has its
        // token, and the service stays free for the next (perhaps more urgent) one meanwhile.
        let sending = self.inner.call(req);
        let limiter = self.limiter.clone();
        let sent = self.sent.clone();
        Box::pin(async move {
            limiter.acquire(class).await;
            sent.fetch_add(1, Ordering::Relaxed);
            sending.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    fn request(method: &str, path: &str) -> http::Request<()> {
        http::Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .expect("request")
    }

    type Echo = tower::util::BoxCloneService<
        http::Request<()>,
        (String, Duration),
        std::convert::Infallible,
    >;

    /// A service answering each request with its path and the time it was sent.
    fn echo(start: Instant) -> Echo {
        tower::util::BoxCloneService::new(tower::service_fn(move |req: http::Request<()>| {
            let path = req.uri().path().to_string();
            async move { Ok((path, start.elapsed())) }
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces_requests_at_the_rate() {
        let start = Instant::now();
        let layer = QpsLayer::new(10.0, 3);
        let svc = layer.layer(echo(start));
        let mut at = Vec::new();
        for i in 0..7u32 {
            let (_, sent) = svc
                .clone()
                .oneshot(request("GET", &format!("/api/v1/x/{i}")))
                .await
                .expect("answer");
            at.push(sent);
        }
        // Three at once (the burst), then one every 100 ms.
        assert!(at[2] < Duration::from_millis(1), "{at:?}");
        assert!(at[3] >= Duration::from_millis(99), "{at:?}");
        assert!(at[6] >= Duration::from_millis(399), "{at:?}");
        assert!(at[6] < Duration::from_millis(450), "{at:?}");
        assert_eq!(layer.sent(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_pod_creations_go_before_other_requests_and_leases_before_both() {
        let start = Instant::now();
        let layer = QpsLayer::new(10.0, 1);
        let svc = layer.layer(echo(start));
        let mut calls = tokio::task::JoinSet::new();
        // Status writes queued first, then Pod creations, then a Lease renewal.
        let paths = [
            (
                "PATCH",
                "/apis/tekton.dev/v1/namespaces/a/pipelineruns/p1/status",
            ),
            (
                "PATCH",
                "/apis/tekton.dev/v1/namespaces/a/pipelineruns/p2/status",
            ),
            ("POST", "/api/v1/namespaces/a/pods"),
            ("POST", "/api/v1/namespaces/b/pods"),
            ("PUT", "/apis/coordination.k8s.io/v1/namespaces/a/leases/l"),
        ];
        for (method, path) in paths {
            calls.spawn(svc.clone().oneshot(request(method, path)));
            // Each is waiting before the next arrives.
            tokio::task::yield_now().await;
        }
        let mut order: Vec<(String, Duration)> = calls
            .join_all()
            .await
            .into_iter()
            .map(|r| r.expect("answer"))
            .collect();
        order.sort_by_key(|(_, at)| *at);
        let order: Vec<&str> = order.iter().map(|(p, _)| p.as_str()).collect();
        // The first took the one token at once; the others waited and went by class.
        assert_eq!(
            order,
            [
                "/apis/tekton.dev/v1/namespaces/a/pipelineruns/p1/status",
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
                "/api/v1/namespaces/a/pods",
                "/api/v1/namespaces/b/pods",
                "/apis/tekton.dev/v1/namespaces/a/pipelineruns/p2/status",
            ]
        );
        assert_eq!(layer.sent(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_given_up_while_waiting_takes_no_token() {
        let start = Instant::now();
        let layer = QpsLayer::new(10.0, 1);
        let svc = layer.layer(echo(start));
        svc.clone()
            .oneshot(request("GET", "/first"))
            .await
            .expect("answer");
        let given_up = tokio::time::timeout(
            Duration::from_millis(10),
            svc.clone().oneshot(request("GET", "/given-up")),
        )
        .await;
        assert!(given_up.is_err(), "it waited for a token");
        let (_, at) = svc
            .clone()
            .oneshot(request("GET", "/next"))
            .await
            .expect("answer");
        // The next one takes the token the abandoned one would have had, 100 ms after the first.
        assert!(at <= Duration::from_millis(101), "{at:?}");
        assert_eq!(layer.sent(), 2);
    }
}
