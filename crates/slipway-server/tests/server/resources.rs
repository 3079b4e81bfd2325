//! Applying definitions: stored as written, read back as YAML or JSON, validated against each
//! other, refused with positions when invalid, and nothing stored then.

use axum::http::StatusCode;
use serde_json::Value;

use crate::Server;

const TASKS: &str = "/apis/tekton.dev/v1/namespaces/default/tasks";

const TASK: &str = "# the greeting task\napiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: greet\nspec:\n  params:\n  - name: who\n    default: world\n  steps:\n  - name: say\n    image: busybox\n    script: echo \"hello $(params.who)\"\n";

const PIPELINE: &str = "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: greetings\nspec:\n  tasks:\n  - name: one\n    taskRef: {name: greet}\n    params: [{name: who, value: one}]\n";

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_created_read_back_as_written_replaced_and_deleted() {
    let s = Server::start(Default::default()).await;
    let (code, body) = s.call("POST", TASKS, TASK).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["metadata"]["namespace"], "default");
    let uid = body["metadata"]["uid"].clone();
    // Created twice is a conflict, as in Kubernetes.
    let (code, body) = s.call("POST", TASKS, TASK).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let (code, yaml) = s
        .call_with(
            "GET",
            &format!("{TASKS}/greet"),
            "",
            &[("accept", "application/yaml")],
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(yaml.as_str(), Some(TASK), "comments and layout survive");
    let changed = TASK.replace("default: world", "default: there");
    let (code, body) = s.call("PUT", &format!("{TASKS}/greet"), &changed).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"]["uid"], uid, "the uid stays across updates");
    assert_eq!(body["spec"]["params"][0]["default"], "there");
    let (_, list) = s.call("GET", TASKS, "").await;
    assert_eq!(names(&list), ["greet"]);
    assert_eq!(list["kind"], "TaskList");
    let (code, _) = s.call("DELETE", &format!("{TASKS}/greet"), "").await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = s.call("GET", &format!("{TASKS}/greet"), "").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["kind"], "Status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_is_all_or_nothing_and_checks_references() {
    let s = Server::start(Default::default()).await;
    // The Pipeline refers to a Task that exists nowhere: nothing is stored.
    let (code, body) = s.call("POST", "/api/v1/apply", PIPELINE).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("greet"),
        "{body}"
    );
    let d = &body["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(8), Some(15)),
        "{body}"
    );
    assert_eq!(d["hint"], "apply it first, or send it in the same body");
    let (_, list) = s
        .call(
            "GET",
            "/apis/tekton.dev/v1/namespaces/default/pipelines",
            "",
        )
        .await;
    assert!(names(&list).is_empty());
    // Together they apply; again, they are unchanged.
    let both = format!("{TASK}---\n{PIPELINE}");
    let (code, body) = s.call("POST", "/api/v1/apply", &both).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let actions: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["action"].as_str())
        .collect();
    assert_eq!(actions, ["created", "created"]);
    let (_, body) = s.call("POST", "/api/v1/apply", &both).await;
    let actions: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["action"].as_str())
        .collect();
    assert_eq!(actions, ["unchanged", "unchanged"]);
    // Each document keeps its own text.
    let (_, yaml) = s
        .call_with(
            "GET",
            "/apis/tekton.dev/v1/namespaces/default/pipelines/greetings",
            "",
            &[("accept", "application/yaml")],
        )
        .await;
    assert_eq!(yaml.as_str(), Some(PIPELINE));
}

/// What is sent, what comes back: status, words of the message, line and column.
type Case = (
    &'static str,
    &'static str,
    StatusCode,
    &'static str,
    Option<(u64, u64)>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_that_names_the_problem_and_stores_nothing() {
    let s = Server::start(Default::default()).await;
    let cases: &[Case] = &[
        (
            "typo",
            "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  stepz: []\n",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `stepz`",
            Some((5, 3)),
        ),
        (
            "syntax",
            "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t\n",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unclosed bracket",
            Some((3, 11)),
        ),
        (
            "no name",
            "apiVersion: tekton.dev/v1\nkind: Task\nspec:\n  steps: [{name: s, image: x, script: x}]\n",
            StatusCode::UNPROCESSABLE_ENTITY,
            "no metadata.name",
            Some((1, 1)),
        ),
        (
            "a run",
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: r}\nspec:\n  taskRef: {name: t}\n",
            StatusCode::UNPROCESSABLE_ENTITY,
            "is started, not applied",
            Some((1, 1)),
        ),
        (
            "wrong kind",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot be applied",
            Some((1, 1)),
        ),
        (
            "empty",
            "  \n",
            StatusCode::BAD_REQUEST,
            "body is empty",
            None,
        ),
        (
            "binary",
            "\u{0}\u{1}\u{2}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
            None,
        ),
    ];
    for (what, body, code, message, at) in cases {
        let (got, reply) = s.call("POST", "/api/v1/apply", body).await;
        assert_eq!(got, *code, "{what}: {reply}");
        assert_eq!(reply["kind"], "Status", "{what}: {reply}");
        assert!(
            reply["message"].as_str().unwrap_or("").contains(message),
            "{what}: {reply}"
        );
        if let Some((line, col)) = at {
            let d = &reply["diagnostics"][0];
            assert_eq!(
                (d["line"].as_u64(), d["column"].as_u64()),
                (Some(*line), Some(*col)),
                "{what}: {reply}"
            );
        }
    }
    let (_, list) = s.call("GET", TASKS, "").await;
    assert!(names(&list).is_empty(), "nothing was stored: {list}");
    // The editor's check answers 200 with the same diagnostics.
    let (code, reply) = s.call("POST", "/api/v1/validate", cases[0].1).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(reply["diagnostics"][0]["hint"], "did you mean `steps`?");
    let (_, reply) = s.call("POST", "/api/v1/validate", TASK).await;
    assert_eq!(reply["diagnostics"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_never_leave_the_server() {
    let s = Server::start(Default::default()).await;
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData:\n  token: s3cr3t-value\n";
    let (code, body) = s.call("POST", "/api/v1/apply", secret).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let uri = "/api/v1/namespaces/default/secrets/creds";
    for accept in ["application/json", "application/yaml"] {
        let (code, body) = s.call_with("GET", uri, "", &[("accept", accept)]).await;
        assert_eq!(code, StatusCode::OK);
        let text = body.to_string();
        assert!(!text.contains("s3cr3t-value"), "{accept}: {text}");
        assert!(text.contains("token"), "{accept}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_without_a_namespace_puts_each_object_in_its_own() {
    let s = Server::start(Default::default()).await;
    let elsewhere = TASK.replace("  name: greet\n", "  name: greet\n  namespace: team-c\n");
    let body = format!("{elsewhere}---\n{TASK}");
    let (code, reply) = s.call("POST", "/api/v1/apply", &body).await;
    assert_eq!(code, StatusCode::OK, "{reply}");
    let namespaces: Vec<&str> = reply["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["namespace"].as_str())
        .collect();
    assert_eq!(namespaces, ["team-c", "default"]);
    let (_, list) = s
        .call("GET", "/apis/tekton.dev/v1/namespaces/team-c/tasks", "")
        .await;
    assert_eq!(names(&list), ["greet"]);
    // A namespace in the request must agree with the object's.
    let (code, reply) = s
        .call("POST", "/api/v1/apply?namespace=default", &elsewhere)
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_keys_and_paths_are_refused_as_kubernetes_refuses_them() {
    let s = Server::start(Default::default()).await;
    let long = "a".repeat(10_000);
    for name in ["\"\"", "a/b", "\"..\"", "\"a\\nb\"", long.as_str()] {
        let body = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData: {{k: v}}\n"
        );
        let (code, reply) = s.call("POST", "/api/v1/apply", &body).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {reply}");
        let d = &reply["diagnostics"][0];
        assert_eq!(d["line"], 4, "{reply}");
        assert!(
            d["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("invalid Secret name"),
            "{reply}"
        );
        assert!(
            reply.to_string().len() < 2_000,
            "a long name is not echoed whole"
        );
    }
    let key =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata:\n  ../../etc/passwd: x\n";
    let (code, reply) = s.call("POST", "/api/v1/apply", key).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["diagnostics"][0]["line"], 5, "{reply}");
    let (code, reply) = s
        .call(
            "POST",
            "/api/v1/namespaces/Kube_System/configmaps",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
        )
        .await;
    assert!(code.is_client_error(), "{code} {reply}");
    let (code, reply) = s
        .call("GET", "/api/v1/namespaces/default/secrets", "")
        .await;
    assert_eq!(code, StatusCode::OK, "{reply}");
    assert_eq!(names(&reply), Vec::<&str>::new(), "nothing stored");
    // Runs: a name that is a path, and a claim and sub-path that lead out of the data directory.
    let runs = "/apis/tekton.dev/v1/namespaces/default/taskruns";
    let task = "  taskSpec:\n    workspaces: [{name: w}]\n    steps: [{name: s, image: busybox, script: 'true'}]\n";
    for (meta, bind, line) in [
        ("{name: ../../x}", "emptyDir: {}", 3),
        (
            "{name: esc}",
            "persistentVolumeClaim: {claimName: ../../../../etc/x}",
            6,
        ),
        ("{name: esc}", "subPath: ../.., emptyDir: {}", 6),
    ] {
        let body = format!(
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {meta}\nspec:\n  workspaces:\n  - {{name: w, {bind}}}\n{task}"
        );
        let (code, reply) = s.call("POST", runs, &body).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}\n{reply}");
        assert_eq!(reply["diagnostics"][0]["line"], line, "{reply}");
    }
    assert!(
        !s.dir.path().join("../etc").exists() && !s.dir.path().join("claims").exists(),
        "no directory made"
    );
    s.shut_down().await;
}
