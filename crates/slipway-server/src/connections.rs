//! The accept loop: HTTP/1.1 connections with a deadline for each request's head, an idle
//! timeout between requests, and a cap on how many are open at once.
//!
//! Without them a client that opens connections and sends half a header holds a descriptor
//! each, forever, and a thousand of them exhaust the process's open files (new requests, the
//! store and the steps' pipes then fail). A connection past the cap is answered `503` with a
//! `Status` and closed. A response still being sent (a followed log stream) keeps its
//! connection however long it lasts: only connections with no request in flight are idle.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::ServeOptions;

/// Connections past the cap that are answered at once (more are closed without an answer).
const REFUSERS: usize = 64;
/// How long a refused connection is read before its `503` (so that closing it does not reset
/// the answer away) and then written to.
const REFUSE_WAIT: Duration = Duration::from_millis(500);

/// What a connection's watchdog reads: requests in flight and when the last one ended.
#[derive(Debug)]
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// When the connection will have been idle for `idle`, or `None` while a request is in
    /// flight.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.start + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle)
    }
}

/// Counts a request in flight until its response's body is dropped (sent or abandoned).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(a: &Arc<Activity>) -> InFlight {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.touch();
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`InFlight`].
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections finish
/// their requests (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = u32::try_from(options.max_connections.max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(max as usize));
    let refusers = Arc::new(Semaphore::new(REFUSERS));
    let closing = CancellationToken::new();
    let options = Arc::new(options);
    let mut warned: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors (or memory): wait for some to be freed instead of
                    // spinning, and say so once in a while.
                    if warned.is_none_or(|w| w.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "failed to accept a connection");
                        warned = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let (router, options, closing) = (router.clone(), options.clone(), closing.clone());
                tokio::spawn(async move {
                    connection(stream, router, &options, closing).await;
                    drop(permit);
                });
            }
            Err(_) => refuse(stream, max, &refusers),
        }
    }
    // New connections wait in no backlog: they are refused by the system from now on.
    drop(listener);
    closing.cancel();
    // Every connection holds a permit until it is closed.
    let _all = permits.acquire_many(max).await;
    Ok(())
}

/// One connection, until the client closes it, it idles out, or the server shuts down.
async fn connection(
    stream: TcpStream,
    router: Router,
    options: &ServeOptions,
    closing: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let tracker = activity.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let in_flight = InFlight::begin(&tracker);
        let router = router.clone();
        async move {
            let response = match router.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|inner| Tracked {
                inner,
                _in_flight: in_flight,
            }))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let idle_at = activity
            .idle_deadline(options.idle_timeout)
            .unwrap_or_else(|| Instant::now() + options.idle_timeout);
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            _ = closing.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(idle_at), if !stopping => {
                if activity.idle_deadline(options.idle_timeout).is_some_and(|d| d <= Instant::now()) {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Answers a connection past the cap with a `503` and closes it.
fn refuse(mut stream: TcpStream, max: u32, refusers: &Arc<Semaphore>) {
    let Ok(permit) = refusers.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(REFUSE_WAIT, stream.read(&mut buf)).await;
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure",
            "reason": "ServiceUnavailable", "code": 503,
            "message": format!("the server has {max} connections open, its limit (`slipway serve --max-connections`, `[server] max_connections`); try again shortly"),
        })
        .to_string();
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(REFUSE_WAIT, stream.write_all(response.as_bytes())).await;
        let _ = stream.shutdown().await;
        // Read what is left so that the close is a FIN, not a reset that could drop the answer.
        let _ = tokio::time::timeout(REFUSE_WAIT, async {
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        })
        .await;
    });
}
