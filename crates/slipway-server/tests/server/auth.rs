//! API tokens: reads need a token, changes the write scope; health, metrics and webhooks stay
//! open; a revoked token stops working at the next request and ends the log streams it opened.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::Server;

const TASKS: &str = "/apis/tekton.dev/v1/namespaces/default/tasks";
const TASK: &str = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps: [{name: s, image: busybox, script: 'true'}]\n";

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_gate_reads_and_writes_by_scope() {
    let s = Server::start(Default::default()).await;
    let read = slipway_server::generate_token();
    let write = slipway_server::generate_token();
    assert!(
        s.store
            .add_token("ci-read", "read", &slipway_server::token_hash(&read))
            .await
            .expect("add")
    );
    assert!(
        s.store
            .add_token("ci-write", "write", &slipway_server::token_hash(&write))
            .await
            .expect("add")
    );
    assert!(
        !s.store
            .add_token("ci-read", "read", "x")
            .await
            .expect("add"),
        "names are unique"
    );
    // A token added a moment ago works at once.
    let (code, _) = s
        .call_with("GET", TASKS, "", &[("authorization", &bearer(&read))])
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = s
        .call_with("GET", TASKS, "", &[("authorization", "")])
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["kind"], "Status");
    let (code, _) = s
        .call_with("GET", TASKS, "", &[("authorization", &bearer("slw_nope"))])
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, body) = s
        .call_with(
            "POST",
            "/api/v1/apply",
            TASK,
            &[("authorization", &bearer(&read))],
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("needs `write`"),
        "{body}"
    );
    let (code, body) = s
        .call_with(
            "POST",
            "/api/v1/apply",
            TASK,
            &[("authorization", &bearer(&write))],
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = s
        .call_with(
            "GET",
            "/api/v1/whoami",
            "",
            &[("authorization", &bearer(&read))],
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        (body["name"].as_str(), body["scope"].as_str()),
        (Some("ci-read"), Some("read"))
    );
    for open in ["/healthz", "/metrics", "/openapi.json", "/ui/"] {
        let (code, _) = s.call_with("GET", open, "", &[("authorization", "")]).await;
        assert_eq!(code, StatusCode::OK, "{open}");
    }
    // Webhooks carry their own secrets: a missing listener is a 404, not a 401.
    let (code, _) = s
        .call_with("POST", "/hooks/none", "{}", &[("authorization", "")])
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // Revoked: refused at the very next request (it used to work for up to 2 s more).
    assert!(s.store.revoke_token("ci-write").await.expect("revoke"));
    let (code, body) = s
        .call_with("GET", TASKS, "", &[("authorization", &bearer(&write))])
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "revoked: {body}");
    s.shut_down().await;
}

/// Revoking every token leaves an API nobody can use, not an open one (it used to open up
/// when the token list became empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_left_is_not_an_open_api() {
    let s = Server::start(Default::default()).await;
    assert!(s.store.revoke_token("admin").await.expect("revoke"));
    assert!(s.store.tokens().await.expect("tokens").is_empty());
    let (code, body) = s
        .call_with("GET", TASKS, "", &[("authorization", "")])
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    let (code, body) = s.call("POST", "/api/v1/apply", TASK).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    s.shut_down().await;
}

/// A log stream followed with a token ends within about a second of the token's revocation,
/// with an `error` event that is a `Status`, while the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_log_streams() {
    let s = Server::start(Default::default()).await;
    let (code, body) = s
        .call(
            "POST",
            "/api/v1/runs",
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: ticking}\nspec:\n  taskSpec:\n    steps:\n    - name: tick\n      image: busybox\n      script: 'for i in $(seq 1 300); do echo tick $i; sleep 0.1; done'\n",
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let follower = slipway_server::generate_token();
    assert!(
        s.store
            .add_token("follower", "read", &slipway_server::token_hash(&follower))
            .await
            .expect("add")
    );
    let response = slipway_server::router(s.state.clone())
        .oneshot(
            Request::get("/api/v1/runs/ticking/logs?follow=true")
                .header("authorization", bearer(&follower))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // Lines arrive while the token is valid.
    let mut text = String::new();
    while !text.contains("tick 3") {
        let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("lines arrive")
            .expect("stream open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(s.store.revoke_token("follower").await.expect("revoke"));
    let revoked = tokio::time::Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("the stream ends after the revocation")
        .expect("body")
        .to_bytes();
    let took = revoked.elapsed();
    // Tokens are checked about once a second; the margin is for a loaded machine.
    assert!(took < Duration::from_millis(4500), "ended after {took:?}");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("event: error"), "{rest}");
    assert!(rest.contains("\"reason\":\"Unauthorized\""), "{rest}");
    assert!(!rest.contains("event: end"), "{rest}");
    // The run was not stopped: only the stream ended.
    assert_eq!(s.reason("ticking").await, "Running");
    s.shut_down().await;
}
