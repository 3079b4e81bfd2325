//! kube's mock service answering like an API server, recording every request.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::Value;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) body: Value,
}

/// The recorded requests.
pub(crate) type Log = Arc<Mutex<Vec<Seen>>>;

/// A client whose requests `answer` answers with a status code and a JSON body.
pub(crate) fn client(
    answer: impl Fn(&Seen) -> (u16, Value) + Send + 'static,
) -> (kube::Client, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let bytes = http_body_util::BodyExt::collect(req.into_body())
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            let s = Seen {
                method,
                path,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let (code, body) = answer(&s);
            seen.lock().expect("lock").push(s);
            send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(body.to_string().into_bytes()))
                    .expect("response"),
            );
        }
    });
    (kube::Client::new(service, "default"), log)
}

/// A Status object with `code`.
pub(crate) fn status(code: u16, reason: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                       "code": code, "reason": reason, "message": reason})
}
