//! Namespaces end to end: runs are created, run, listed, found, cancelled and re-run in their own
//! namespace; run keys are never patterns; triggers create runs in their listener's namespace;
//! tokens limited to namespaces reach only those.

use axum::http::StatusCode;
use serde_json::Value;
use slipway_engine::Store;

use crate::{Server, reason};

const TASK: &str = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: hello}\nspec:\n  steps:\n  - {name: say, image: busybox, script: 'echo hello from $(context.taskRun.namespace)'}\n---\napiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: greet}\nspec:\n  tasks:\n  - {name: one, taskRef: {name: hello}}\n";

fn pipeline_run(name: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata:\n  name: {name}\n{extra_meta}spec:\n  pipelineRef: {{name: greet}}\n"
    )
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

async fn apply_in(s: &Server, ns: &str) {
    let (code, body) = s
        .call("POST", &format!("/api/v1/apply?namespace={ns}"), TASK)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

/// Waits until the run `name` of `ns` has finished; its object.
async fn done_in(s: &Server, ns: &str, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let row = s.store.find_run_in(Some(ns), name).await.expect("run");
        if row.status != "Unknown" {
            return row.object;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ns}/{name} did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_live_in_their_namespace_from_queue_to_history() {
    let s = Server::start(Default::default()).await;
    apply_in(&s, "team-a").await;
    apply_in(&s, "default").await;
    let team_a = "/apis/tekton.dev/v1/namespaces/team-a";
    let (code, body) = s
        .call(
            "POST",
            &format!("{team_a}/pipelineruns"),
            &pipeline_run("build", ""),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["metadata"]["namespace"], "team-a", "{body}");
    let done = done_in(&s, "team-a", "build").await;
    assert_eq!(reason(&done), "Succeeded", "{done}");
    // The run as it ran, its TaskRuns and what its steps saw all say team-a.
    assert_eq!(done["metadata"]["namespace"], "team-a", "{done}");
    let (code, trs) = s
        .call("GET", "/api/v1/namespaces/team-a/runs/build/taskruns", "")
        .await;
    assert_eq!(code, StatusCode::OK, "{trs}");
    assert_eq!(names(&trs).len(), 1, "{trs}");
    assert!(names(&trs)[0].starts_with("team-a/build-"), "{trs}");
    let (code, logs) = s
        .call("GET", "/api/v1/namespaces/team-a/runs/build/logs", "")
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(logs, "[one/say] hello from team-a\n");
    let (code, _) = s
        .call("GET", "/api/v1/runs/build/logs?namespace=team-a", "")
        .await;
    assert_eq!(code, StatusCode::OK);

    // Other namespaces see none of it.
    for ns in ["kube-system", "default"] {
        let (code, list) = s
            .call(
                "GET",
                &format!("/apis/tekton.dev/v1/namespaces/{ns}/pipelineruns"),
                "",
            )
            .await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(names(&list), Vec::<String>::new(), "{ns}: {list}");
        let (code, _) = s
            .call(
                "GET",
                &format!("/apis/tekton.dev/v1/namespaces/{ns}/pipelineruns/build"),
                "",
            )
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{ns}");
    }
    for path in ["/api/v1/runs/build/logs", "/api/v1/runs/build/taskruns"] {
        let (code, body) = s.call("GET", path, "").await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (code, _) = s.call("POST", "/api/v1/runs/build/rerun", "").await;
    assert_eq!(code, StatusCode::NOT_FOUND, "rerun from default");

    // A name is unique within its namespace only.
    let (code, body) = s
        .call(
            "POST",
            "/apis/tekton.dev/v1/namespaces/default/pipelineruns",
            &pipeline_run("build", ""),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = s
        .call(
            "POST",
            &format!("{team_a}/pipelineruns"),
            &pipeline_run("build", ""),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let done = done_in(&s, "default", "build").await;
    assert_eq!(done["metadata"]["namespace"], "default");

    // A run naming another namespace than its path is refused, as Kubernetes does.
    let (code, body) = s
        .call(
            "POST",
            &format!("{team_a}/pipelineruns"),
            &pipeline_run("stray", "  namespace: team-b\n"),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    // A namespace must be a DNS label.
    let (code, body) = s
        .call(
            "POST",
            "/apis/tekton.dev/v1/namespaces/Not_A_Label/pipelineruns",
            &pipeline_run("odd", ""),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    // `/api/v1/runs` without ?namespace= puts runs where their metadata says.
    let body = format!(
        "{TASK}---\n{}",
        pipeline_run("mine", "  namespace: team-b\n")
    );
    let (code, reply) = s.call("POST", "/api/v1/runs", &body).await;
    assert_eq!(code, StatusCode::CREATED, "{reply}");
    assert_eq!(names(&reply), ["team-b/mine"]);
    assert_eq!(
        done_in(&s, "team-b", "mine").await["metadata"]["namespace"],
        "team-b"
    );

    // Re-run and the lists across namespaces.
    let (code, again) = s
        .call("POST", "/api/v1/namespaces/team-a/runs/build/rerun", "")
        .await;
    assert_eq!(code, StatusCode::CREATED, "{again}");
    assert_eq!(again["metadata"]["namespace"], "team-a", "{again}");
    let rerun = again["metadata"]["name"].as_str().unwrap_or("").to_string();
    assert_eq!(
        done_in(&s, "team-a", &rerun).await["metadata"]["namespace"],
        "team-a"
    );
    let (_, all) = s.call("GET", "/apis/tekton.dev/v1/pipelineruns", "").await;
    let mut all = names(&all);
    all.sort();
    assert_eq!(
        all,
        [
            "default/build".to_string(),
            "team-a/build".into(),
            format!("team-a/{rerun}"),
            "team-b/mine".into()
        ]
    );
    let (code, list) = s.call("GET", "/api/v1/namespaces", "").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list["kind"], "NamespaceList");
    let ns: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(ns, ["default", "team-a", "team-b"]);
    s.shut_down().await;
}

/// `%` and `_` in a run's key are characters, not wildcards: logs, cancel, rerun and children
/// all answer 404 for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_key_is_never_a_pattern() {
    let s = Server::start(Default::default()).await;
    crate::start(&s.store);
    crate::finish(&s.store);
    s.store.flush().await;
    let (code, _) = s.call("GET", "/api/v1/runs/build-1/logs", "").await;
    assert_eq!(code, StatusCode::OK);
    for key in [
        "%25%25%25%25",
        "%25%25%25%25%25%25%25%25",
        "________",
        "build-%25",
        "build_1",
    ] {
        for (method, verb) in [
            ("GET", "logs"),
            ("GET", "taskruns"),
            ("POST", "cancel"),
            ("POST", "rerun"),
        ] {
            let (code, body) = s
                .call(method, &format!("/api/v1/runs/{key}/{verb}"), "")
                .await;
            assert_eq!(code, StatusCode::NOT_FOUND, "{method} {key}/{verb}: {body}");
        }
        let (code, _) = s
            .call(
                "GET",
                &format!("/apis/tekton.dev/v1/namespaces/default/pipelineruns/{key}"),
                "",
            )
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{key}");
    }
    s.shut_down().await;
}

/// A token limited to namespaces reads and changes those only; lists across namespaces are
/// filtered to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limited_to_namespaces_reaches_only_those() {
    let s = Server::start(Default::default()).await;
    // The harness's own token has every namespace.
    let admin = s.token.clone();
    let team = slipway_server::generate_token();
    let reader = slipway_server::generate_token();
    let hash = slipway_server::token_hash;
    let only_a = ["team-a".to_string()];
    assert!(
        s.store
            .add_token_in("team", "write", &hash(&team), &only_a)
            .await
            .expect("add")
    );
    assert!(
        s.store
            .add_token_in("reader", "read", &hash(&reader), &only_a)
            .await
            .expect("add")
    );
    let call = |token: &str, method: &'static str, uri: String, body: String| {
        let auth = format!("Bearer {token}");
        let s = &s;
        async move {
            s.call_with(method, &uri, &body, &[("authorization", auth.as_str())])
                .await
        }
    };
    for ns in ["team-a", "default"] {
        let (code, body) = call(
            &admin,
            "POST",
            format!("/api/v1/apply?namespace={ns}"),
            TASK.into(),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let (code, body) = call(
            &admin,
            "POST",
            format!("/apis/tekton.dev/v1/namespaces/{ns}/pipelineruns"),
            pipeline_run("build", ""),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        done_in(&s, ns, "build").await;
    }

    let forbidden = |code: StatusCode, body: &Value, what: &str| {
        assert_eq!(code, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(body["kind"], "Status", "{what}");
    };
    // Its own namespace: reads and changes.
    let (code, body) = call(
        &team,
        "GET",
        "/apis/tekton.dev/v1/namespaces/team-a/pipelineruns".into(),
        String::new(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["team-a/build"]);
    let (code, _) = call(
        &team,
        "GET",
        "/api/v1/namespaces/team-a/runs/build/logs".into(),
        String::new(),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = call(
        &team,
        "GET",
        "/api/v1/runs/build/logs?namespace=team-a".into(),
        String::new(),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = call(
        &team,
        "POST",
        "/apis/tekton.dev/v1/namespaces/team-a/tasks".into(),
        TASK.replace("name: hello", "name: hello2")
            .split("---")
            .next()
            .unwrap_or("")
            .to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    // Anything of another namespace, by path, query, or the body's own metadata.
    for (method, uri, body) in [
        (
            "GET",
            "/apis/tekton.dev/v1/namespaces/default/pipelineruns",
            String::new(),
        ),
        (
            "GET",
            "/apis/tekton.dev/v1/namespaces/default/pipelineruns/build",
            String::new(),
        ),
        (
            "GET",
            "/apis/tekton.dev/v1/namespaces/default/tasks/hello",
            String::new(),
        ),
        ("GET", "/api/v1/namespaces/default/secrets", String::new()),
        ("GET", "/api/v1/runs/build/logs", String::new()),
        (
            "GET",
            "/api/v1/namespaces/default/runs/build/taskruns",
            String::new(),
        ),
        ("POST", "/api/v1/runs/build/rerun", String::new()),
        (
            "POST",
            "/api/v1/namespaces/default/runs/build/cancel",
            String::new(),
        ),
        ("POST", "/api/v1/apply?namespace=default", TASK.to_string()),
        (
            "POST",
            "/api/v1/apply",
            TASK.replace("name: hello}", "name: hello, namespace: default}"),
        ),
        (
            "POST",
            "/api/v1/runs",
            format!("{TASK}---\n{}", pipeline_run("x", "")),
        ),
        (
            "POST",
            "/api/v1/validate?namespace=kube-system",
            TASK.to_string(),
        ),
    ] {
        let (code, reply) = call(&team, method, uri.to_string(), body).await;
        forbidden(code, &reply, &format!("{method} {uri}"));
    }
    // Lists across namespaces show its namespaces only.
    let (code, all) = call(
        &team,
        "GET",
        "/apis/tekton.dev/v1/pipelineruns".into(),
        String::new(),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(names(&all), ["team-a/build"]);
    let (_, all) = call(
        &admin,
        "GET",
        "/apis/tekton.dev/v1/pipelineruns".into(),
        String::new(),
    )
    .await;
    assert_eq!(names(&all).len(), 2);
    let (_, list) = call(&team, "GET", "/api/v1/namespaces".into(), String::new()).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["items"][0]["metadata"]["name"], "team-a");
    // A limited read token still cannot write in its namespace.
    let (code, _) = call(
        &reader,
        "GET",
        "/api/v1/namespaces/team-a/runs/build/logs".into(),
        String::new(),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = call(
        &reader,
        "POST",
        "/api/v1/namespaces/team-a/runs/build/rerun".into(),
        String::new(),
    )
    .await;
    forbidden(code, &body, "read token rerun");
    s.shut_down().await;
}
