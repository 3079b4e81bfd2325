//! A client-side rate limit on API requests: a token bucket of `burst` tokens refilled at `qps`
//! per second, as client-go's flow control does, so a busy controller cannot flood the server.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// The shared bucket.
#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes a token, or says how long until one is there.
    fn take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

/// A tower layer limiting requests to `qps` a second with bursts of `burst`.
#[derive(Debug, Clone)]
pub struct QpsLayer {
    bucket: Arc<Mutex<Bucket>>,
    sent: Arc<AtomicU64>,
}

impl QpsLayer {
    /// `qps` requests a second on average, `burst` at once (both at least 1).
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        QpsLayer {
            bucket: Arc::new(Mutex::new(Bucket {
                qps: if qps > 0.0 { qps } else { 1.0 },
                burst,
                tokens: burst,
                last: Instant::now(),
            })),
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
            bucket: self.bucket.clone(),
            sent: self.sent.clone(),
            sleep: None,
            granted: false,
        }
    }
}

/// The service [`QpsLayer`] makes: ready only once a token is taken.
pub struct Qps<S> {
    inner: S,
    bucket: Arc<Mutex<Bucket>>,
    sent: Arc<AtomicU64>,
    sleep: Option<Pin<Box<Sleep>>>,
    granted: bool,
}

impl<S> std::fmt::Debug for Qps<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qps")
            .field("granted", &self.granted)
            .finish()
    }
}

impl<S, R> Service<R> for Qps<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while !self.granted {
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            // A poisoned lock only means another request panicked mid-update; the bucket is
            // still numbers, so it is used as it is.
            let taken = match self.bucket.lock() {
                Ok(mut b) => b.take(),
                Err(p) => p.into_inner().take(),
            };
            match taken {
                Ok(()) => self.granted = true,
                Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        self.granted = false;
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces_requests_at_the_rate() {
        let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
        let answer = tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                send.send_response(req);
            }
        });
        let layer = QpsLayer::new(10.0, 3);
        let mut svc = layer.layer(mock);
        let start = Instant::now();
        let mut at = Vec::new();
        for i in 0..7u32 {
            let got = svc
                .ready()
                .await
                .expect("ready")
                .call(i)
                .await
                .expect("answer");
            assert_eq!(got, i);
            at.push(start.elapsed());
        }
        // Three at once (the burst), then one every 100 ms.
        assert!(at[2] < Duration::from_millis(1), "{at:?}");
        assert!(at[3] >= Duration::from_millis(99), "{at:?}");
        assert!(at[6] >= Duration::from_millis(399), "{at:?}");
        assert!(at[6] < Duration::from_millis(450), "{at:?}");
        assert_eq!(layer.sent(), 7);
        drop(svc);
        answer.abort();
    }
}
