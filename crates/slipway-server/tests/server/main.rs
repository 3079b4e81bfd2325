//! The API against a real SQLite history: Tekton-shaped reads, logs as text and as a live
//! event stream that ends with the run, health, metrics, and errors.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use slipway_engine::event::{RunInfo, TaskRunInfo};
use slipway_engine::{RunEvent, Store, Stream};
use slipway_store::SqliteStore;
use tower::ServiceExt;

mod auth;
mod front_door;
mod namespaces;
mod panics;
mod prewarm;
mod queue;
mod resources;
mod triggers;

async fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).await.expect("open");
    (dir, Arc::new(store))
}

/// Records a PipelineRun `build-1` with one TaskRun and one log line, still running.
fn start(store: &SqliteStore) {
    let now = SystemTime::now();
    store.record(&RunEvent::RunStarted {
        run: RunInfo {
            uid: "r1".into(),
            name: "build-1".into(),
            kind: "PipelineRun",
            target: "build".into(),
            parent_uid: None,
            created: now,
        },
        object: json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "build-1"}}),
    });
    store.record(&RunEvent::TaskRunStarted {
        info: TaskRunInfo {
            uid: "t1".into(),
            name: "build-1-compile".into(),
            root_uid: "r1".into(),
            parent_uid: Some("r1".into()),
            pipeline_task: Some("compile".into()),
            steps: vec!["make".into()],
            attempt: 0,
            spec: serde_json::Value::Null,
        },
        at: now,
    });
    log(store, "compiling");
}

fn log(store: &SqliteStore, line: &str) {
    store.record(&RunEvent::Log {
        root: "r1".into(),
        taskrun: "t1".into(),
        step: "make".into(),
        stream: Stream::Stdout,
        line: line.into(),
        continued: false,
        at: SystemTime::now(),
    });
}

fn finish(store: &SqliteStore) {
    store.record(&RunEvent::RunFinished {
        uid: "r1".into(),
        reason: "Succeeded".into(),
        succeeded: true,
        object: json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "build-1"},
                       "status": {"conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]}}),
    });
}

async fn get(store: &Arc<SqliteStore>, uri: &str) -> (StatusCode, String) {
    let response = slipway_server::router(open(store))
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A read-only server that asks for no token (these tests are about what it reads).
fn open(store: &Arc<SqliteStore>) -> slipway_server::AppState {
    slipway_server::AppState::read_only(store.clone()).with_auth(slipway_server::AuthMode::Off)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

const NS: &str = "/apis/tekton.dev/v1/namespaces/default";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_read_in_tekton_shapes() {
    let (_dir, store) = store().await;
    start(&store);
    finish(&store);
    store.flush().await;

    let (status, body) = get(&store, &format!("{NS}/pipelineruns")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = json(&body);
    assert_eq!(list["kind"], "PipelineRunList");
    assert_eq!(list["items"][0]["metadata"]["name"], "build-1");
    assert_eq!(
        list["items"][0]["status"]["conditions"][0]["reason"],
        "Succeeded"
    );

    let (status, body) = get(&store, &format!("{NS}/pipelineruns/build-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["metadata"]["name"], "build-1");

    // A PipelineRun is not a TaskRun; a missing name is a Kubernetes-style 404.
    let (status, body) = get(&store, &format!("{NS}/taskruns/build-1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(json(&body)["reason"], "NotFound");
    let (status, body) = get(&store, &format!("{NS}/pipelineruns/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nope")
    );
    let (_, body) = get(&store, &format!("{NS}/taskruns")).await;
    assert_eq!(json(&body)["items"], json!([]));
    // A TaskRun started on its own is listed as a TaskRun, and only there.
    store.record(&RunEvent::RunStarted {
        run: RunInfo {
            uid: "r2".into(),
            name: "lint-1".into(),
            kind: "TaskRun",
            target: "lint".into(),
            parent_uid: None,
            created: SystemTime::now(),
        },
        object: json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "lint-1"}}),
    });
    store.flush().await;
    let (_, body) = get(&store, &format!("{NS}/taskruns")).await;
    let names: Vec<Value> = json(&body)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("lint-1")]);
    let (status, body) = get(&store, &format!("{NS}/pipelineruns?limit=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        json(&body)["items"][0]["metadata"]["name"],
        "build-1",
        "{body}"
    );

    let (status, body) = get(&store, "/api/v1/runs/build-1/taskruns").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json(&body)["items"][0]["metadata"]["name"],
        "build-1-compile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_as_text() {
    let (_dir, store) = store().await;
    start(&store);
    log(&store, "linking");
    finish(&store);
    store.flush().await;
    let (status, body) = get(&store, "/api/v1/runs/build-1/logs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "[compile/make] compiling\n[compile/make] linking\n");
    let (_, body) = get(&store, "/api/v1/runs/build-1/logs?step=other").await;
    assert_eq!(body, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_logs_stream_live_and_end_with_the_run() {
    let (_dir, store) = store().await;
    start(&store);
    store.flush().await;
    let response = slipway_server::router(open(&store))
        .oneshot(
            Request::get("/api/v1/runs/build-1/logs?follow=true")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "{:?}",
        response.headers()
    );
    // Lines written after the request started arrive, then the end event.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            log(&store, "linking");
            store.flush().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            finish(&store);
            store.flush().await;
        })
    };
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the stream ends with the run")
        .expect("body")
        .to_bytes();
    writer.await.expect("writer");
    let text = String::from_utf8_lossy(&body);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("data:")).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("\"line\":\"compiling\""), "{text}");
    assert!(lines[1].contains("\"line\":\"linking\""), "{text}");
    assert!(lines[2].contains("\"reason\":\"Succeeded\""), "{text}");
    assert!(text.contains("event: end"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let (_dir, store) = store().await;
    assert_eq!(get(&store, "/healthz").await, (StatusCode::OK, "ok".into()));
    assert_eq!(get(&store, "/readyz").await.0, StatusCode::OK);
    start(&store);
    finish(&store);
    store.flush().await;
    let (status, body) = get(&store, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(r#"slipway_runs{kind="PipelineRun",status="True",reason="Succeeded"} 1"#),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
}

/// Every operation the document names is routed (none is a route the router lacks), and the
/// main routes are documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let s = Server::start(Default::default()).await;
    start(&s.store);
    finish(&s.store);
    s.store.flush().await;
    let (status, doc) = s.call("GET", "/openapi.json", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns",
        "/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/{name}",
        "/apis/tekton.dev/v1/namespaces/{namespace}/taskruns",
        "/apis/tekton.dev/v1/namespaces/{namespace}/tasks/{name}",
        "/apis/triggers.tekton.dev/v1beta1/namespaces/{namespace}/eventlisteners",
        "/api/v1/runs/{name}/logs",
        "/api/v1/runs/{name}/cancel",
        "/api/v1/apply",
        "/hooks/{listener}",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} is not documented");
    }
    let mut operations = 0;
    for (p, ops) in paths {
        let uri = p
            .replace("{namespace}", "default")
            .replace("{listener}", "none")
            .replace("{name}", "build-1");
        for method in ops.as_object().expect("operations").keys() {
            operations += 1;
            let (status, body) = s.call(&method.to_uppercase(), &uri, "").await;
            // The handler answered (a Status for what is missing or malformed), never the router.
            let answered = status != StatusCode::METHOD_NOT_ALLOWED
                && (status != StatusCode::NOT_FOUND
                    || (body["kind"] == "Status" && body["details"]["kind"] != "route"));
            assert!(answered, "{method} {uri}: {status} {body}");
        }
    }
    assert!(operations > 40, "{operations} operations");
    s.shut_down().await;
}

/// A server that runs runs: a real store, the host executor, a dispatcher, and a way to stop it.
pub struct Server {
    /// Data directory (kept alive with the server).
    pub dir: tempfile::TempDir,
    /// The store.
    pub store: Arc<SqliteStore>,
    /// The state the router serves (tokens asked for).
    pub state: slipway_server::AppState,
    /// A write-scope token (`admin`) that [`Server::call`] sends.
    pub token: String,
    stop: tokio_util::sync::CancellationToken,
    queue: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Starts one over a new data directory.
    pub async fn start(limits: slipway_server::Limits) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        Server::start_in(dir, limits).await
    }

    /// Starts one over `dir` (a restart when another ran there before).
    pub async fn start_in(dir: tempfile::TempDir, limits: slipway_server::Limits) -> Server {
        let executor = slipway_exec_host::HostExecutor::new(dir.path(), Default::default())
            .expect("host executor");
        Server::start_with(dir, limits, Arc::new(executor)).await
    }

    /// Starts one over `dir` running steps on `executor`.
    pub async fn start_with(
        dir: tempfile::TempDir,
        limits: slipway_server::Limits,
        executor: Arc<dyn slipway_engine::Executor>,
    ) -> Server {
        let store = Arc::new(SqliteStore::open(dir.path()).await.expect("open"));
        let engine = slipway_engine::Engine::new(
            executor,
            store.clone(),
            slipway_engine::EngineConfig::default(),
        );
        let dispatcher = slipway_server::Dispatcher::new(store.clone(), engine, limits);
        let stop = tokio_util::sync::CancellationToken::new();
        // Shutting down stops the running runs at once (a restart test wants them cut short).
        let queue = tokio::spawn(dispatcher.clone().run(
            stop.clone().cancelled_owned(),
            std::future::ready(()),
            Duration::ZERO,
        ));
        let state = slipway_server::AppState::new(store.clone(), dispatcher);
        tokio::spawn(slipway_server::poll::run(
            state.clone(),
            stop.clone().cancelled_owned(),
        ));
        let token = slipway_server::generate_token();
        // A restart over the same directory finds the token of the first start.
        store
            .revoke_token("admin")
            .await
            .expect("revoke the old admin token");
        assert!(
            store
                .add_token("admin", "write", &slipway_server::token_hash(&token))
                .await
                .expect("add token")
        );
        Server {
            dir,
            store,
            state,
            token,
            stop,
            queue: Some(queue),
        }
    }

    /// Stops the dispatcher (running runs are stopped) and returns the data directory.
    pub async fn shut_down(mut self) -> tempfile::TempDir {
        self.stop.cancel();
        if let Some(q) = self.queue.take() {
            q.await.expect("dispatcher");
        }
        self.store.flush().await;
        self.dir
    }

    /// Sends a request; returns the status and the body as JSON (or as a JSON string).
    pub async fn call(&self, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
        self.call_with(method, uri, body, &[]).await
    }

    /// Sends a request with extra headers (the admin token unless they name another, a body's
    /// type unless they give one: JSON when it starts with `{`, else YAML).
    pub async fn call_with(
        &self,
        method: &str,
        uri: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        let given = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !given("authorization") {
            req = req.header("authorization", format!("Bearer {}", self.token));
        }
        if !body.is_empty() && !given("content-type") {
            let json = body.trim_start().starts_with('{') || body.trim_start().starts_with('[');
            let patch = method == "PATCH";
            req = req.header(
                "content-type",
                match (patch, json) {
                    (true, _) => "application/merge-patch+json",
                    (false, true) => "application/json",
                    (false, false) => "application/yaml",
                },
            );
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = slipway_server::router(self.state.clone())
            .oneshot(req.body(Body::from(body.to_string())).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Waits until the run has finished; returns its object.
    pub async fn wait_done(&self, name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let row = self.store.find_run(name).await.expect("run");
            if row.status != "Unknown" {
                return row.object;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} did not finish: {}",
                row.reason
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The run's condition reason now.
    pub async fn reason(&self, name: &str) -> String {
        self.store.find_run(name).await.expect("run").reason
    }
}

/// The condition reason of an object.
pub fn reason(o: &Value) -> &str {
    o["status"]["conditions"][0]["reason"]
        .as_str()
        .unwrap_or("")
}
