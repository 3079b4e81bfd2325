//! kube's mock service as a tiny API server for request-shape tests: every request is recorded
//! and answered by the test's function; a watch gets an empty stream after a pause (the
//! watcher then asks again). For tests only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::Value;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body, as JSON (`Null` when it is none).
    pub body: Value,
}

impl Seen {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    /// Whether it opens a watch.
    pub fn is_watch(&self) -> bool {
        self.uri.contains("watch=true")
    }
}

/// Requests seen so far.
pub type Log = Arc<Mutex<Vec<Seen>>>;

/// A client whose requests `answer` serves with a status code and a JSON body.
pub fn client(
    mut answer: impl FnMut(&Seen) -> (u16, Value) + Send + 'static,
) -> (kube::Client, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let seen_log = log.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let bytes = http_body_util::BodyExt::collect(req.into_body())
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            let seen = Seen {
                method,
                uri,
                content_type,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            if let Ok(mut log) = seen_log.lock() {
                log.push(seen.clone());
            }
            let respond = |status: u16, text: String| {
                Response::builder()
                    .status(status)
                    .body(Body::from(text.into_bytes()))
                    .expect("a response")
            };
            if seen.is_watch() {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    send.send_response(respond(200, String::new()));
                });
                continue;
            }
            let (status, body) = answer(&seen);
            send.send_response(respond(status, body.to_string()));
        }
    });
    (kube::Client::new(service, "default"), log)
}

/// A list answer of `items`.
pub fn list(items: Vec<Value>) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "10"}, "items": items})
}

/// A `Status` answer with `code`.
pub fn status(code: u16, reason: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
                       "reason": reason, "message": format!("the server says {reason}")})
}
