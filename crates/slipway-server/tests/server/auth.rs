//! API tokens: open until the first token exists; then reads need a token, changes the write
//! scope, and health, metrics and webhooks stay open.

use axum::http::StatusCode;

use crate::Server;

const TASKS: &str = "/apis/tekton.dev/v1/namespaces/default/tasks";
const TASK: &str = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps: [{name: s, image: busybox, script: 'true'}]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_gate_reads_and_writes_by_scope() {
    let s = Server::start(Default::default()).await;
    let (code, _) = s.call("GET", TASKS, "").await;
    assert_eq!(code, StatusCode::OK, "open without tokens");
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
    let bearer = |t: &str| format!("Bearer {t}");
    // The server reads tokens again within two seconds.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (code, body) = s.call("GET", TASKS, "").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["kind"], "Status");
    let (code, _) = s
        .call_with("GET", TASKS, "", &[("authorization", &bearer("slw_nope"))])
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s
        .call_with("GET", TASKS, "", &[("authorization", &bearer(&read))])
        .await;
    assert_eq!(code, StatusCode::OK);
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
    for open in ["/healthz", "/metrics", "/openapi.json", "/ui/"] {
        let (code, _) = s.call("GET", open, "").await;
        assert_eq!(code, StatusCode::OK, "{open}");
    }
    // Webhooks carry their own secrets: a missing listener is a 404, not a 401.
    let (code, _) = s.call("POST", "/hooks/none", "{}").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(s.store.revoke_token("ci-write").await.expect("revoke"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (code, _) = s
        .call_with("GET", TASKS, "", &[("authorization", &bearer(&write))])
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "revoked");
    s.shut_down().await;
}
