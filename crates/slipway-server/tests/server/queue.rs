//! The durable queue: runs are stored pending before the reply, start under the global and
//! per-Pipeline limits in priority order, can be held, released, cancelled and re-run, and wait
//! across a restart.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use slipway_server::Limits;

use crate::{Server, reason};

const PIPELINE_RUNS: &str = "/apis/tekton.dev/v1/namespaces/default/pipelineruns";

/// A Task that sleeps `secs`, a Pipeline `nap` of it (optionally limited by annotation), and
/// another Pipeline `other`.
fn definitions(limit: Option<u32>) -> String {
    let annotation = limit
        .map(|l| format!("  annotations:\n    slipway.dev/max-concurrent-runs: \"{l}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {{name: sleep}}\nspec:\n  params: [{{name: secs}}]\n  steps:\n  - name: nap\n    image: busybox\n    script: sleep $(params.secs)\n---\n\
apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: nap\n{annotation}spec:\n  params: [{{name: secs}}]\n  tasks:\n  - name: s\n    taskRef: {{name: sleep}}\n    params: [{{name: secs, value: $(params.secs)}}]\n---\n\
apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: other\nspec:\n  tasks:\n  - name: s\n    taskRef: {{name: sleep}}\n    params: [{{name: secs, value: \"0.2\"}}]\n"
    )
}

fn run(name: &str, pipeline: &str, secs: &str, extra_meta: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata:\n  name: {name}\n{extra_meta}spec:\n  pipelineRef: {{name: {pipeline}}}\n  params: [{{name: secs, value: \"{secs}\"}}]\n{extra_spec}"
    )
}

async fn setup(limits: Limits, annotation: Option<u32>) -> Server {
    let s = Server::start(limits).await;
    let (code, body) = s
        .call("POST", "/api/v1/apply", &definitions(annotation))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    s
}

async fn create(s: &Server, body: &str) -> Value {
    let (code, reply) = s.call("POST", PIPELINE_RUNS, body).await;
    assert_eq!(code, StatusCode::CREATED, "{reply}");
    reply
}

/// Waits until `name` is no longer pending.
async fn wait_started(s: &Server, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while s.reason(name).await == "PipelineRunPending" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn total(n: usize) -> Limits {
    Limits {
        total: Some(n),
        per_group: HashMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_wait_under_the_global_limit_and_start_by_priority() {
    let s = setup(total(1), None).await;
    let reply = create(&s, &run("first", "nap", "1", "", "")).await;
    // Acknowledged means stored, pending.
    assert_eq!(reason(&reply), "PipelineRunPending");
    wait_started(&s, "first").await;
    create(&s, &run("low", "nap", "0.5", "", "")).await;
    let high = "  annotations: {slipway.dev/priority: \"5\"}\n";
    create(&s, &run("high", "nap", "0.5", high, "")).await;
    assert_eq!(s.reason("low").await, "PipelineRunPending");
    assert_eq!(s.reason("high").await, "PipelineRunPending");
    // When `first` ends, the later but higher one starts; `low` still waits for it.
    wait_started(&s, "high").await;
    assert_eq!(reason(&s.wait_done("first").await), "Succeeded");
    assert_eq!(s.reason("low").await, "PipelineRunPending");
    for name in ["high", "low"] {
        assert_eq!(reason(&s.wait_done(name).await), "Succeeded", "{name}");
    }
    // The run keeps its annotations once it has run.
    let high = s.wait_done("high").await;
    assert_eq!(
        high["metadata"]["annotations"]["slipway.dev/priority"], "5",
        "{high}"
    );
    // The dispatcher counts what it ran; the queue is empty again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, metrics) = s.call("GET", "/metrics", "").await;
    let text = metrics.as_str().unwrap_or_default().to_string();
    for line in [
        "slipway_run_duration_seconds_count{kind=\"PipelineRun\",reason=\"Succeeded\"} 3",
        "slipway_queue_wait_seconds_count 3",
        "slipway_queue_depth 0",
        "slipway_runs_running 0",
        "slipway_http_request_duration_seconds_count{method=\"POST\",route=\"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns\",code=\"201\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_limit_holds_its_runs_but_not_others() {
    let s = setup(Limits::default(), Some(1)).await;
    // `a` holds the pipeline's one slot until the test cancels it, however loaded the machine.
    create(&s, &run("a", "nap", "300", "", "")).await;
    wait_started(&s, "a").await;
    create(&s, &run("b", "nap", "0.1", "", "")).await;
    let other = "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: c}\nspec:\n  pipelineRef: {name: other}\n";
    create(&s, other).await;
    assert_eq!(reason(&s.wait_done("c").await), "Succeeded");
    assert_eq!(
        s.reason("b").await,
        "PipelineRunPending",
        "nap allows one run at once"
    );
    assert_eq!(s.reason("a").await, "Running");
    let (code, body) = s.call("POST", "/api/v1/runs/a/cancel", "").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(reason(&s.wait_done("b").await), "Succeeded");
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_and_running_runs_cancel() {
    let s = setup(total(1), None).await;
    create(&s, &run("long", "nap", "30", "", "")).await;
    wait_started(&s, "long").await;
    create(&s, &run("waiting", "nap", "0.1", "", "")).await;
    let (code, body) = s.call("POST", "/api/v1/runs/waiting/cancel", "").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(reason(&body), "Cancelled");
    let waiting = s.store.find_run("waiting").await.expect("run");
    assert!(
        s.store
            .task_runs(&waiting.uid)
            .await
            .expect("taskruns")
            .is_empty(),
        "it never ran"
    );
    // Tekton's own way: patch spec.status.
    let (code, body) = s
        .call(
            "PATCH",
            &format!("{PIPELINE_RUNS}/long"),
            r#"{"spec":{"status":"CancelledRunFinally"}}"#,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(reason(&s.wait_done("long").await), "Cancelled");
    let (code, body) = s.call("POST", "/api/v1/runs/long/cancel", "").await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("already finished")
    );
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_runs_wait_for_release_and_runs_rerun() {
    let s = setup(Limits::default(), None).await;
    create(
        &s,
        &run("held", "nap", "0.1", "", "  status: PipelineRunPending\n"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.reason("held").await, "PipelineRunPending");
    let (code, body) = s
        .call(
            "PATCH",
            &format!("{PIPELINE_RUNS}/held"),
            r#"{"spec":{"status":""}}"#,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body["spec"].get("status").is_none(), "released: {body}");
    let done = s.wait_done("held").await;
    assert_eq!(reason(&done), "Succeeded");
    assert!(done["spec"].get("status").is_none(), "{done}");
    let (code, body) = s.call("POST", "/api/v1/runs/held/rerun", "").await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let name = body["metadata"]["name"].as_str().expect("name").to_string();
    assert!(name.starts_with("held-r-"), "{name}");
    assert_eq!(reason(&s.wait_done(&name).await), "Succeeded");
    // A name in use is a conflict; a bad priority is a 400; a missing Pipeline a 422.
    let (code, _) = s
        .call("POST", PIPELINE_RUNS, &run("held", "nap", "0", "", ""))
        .await;
    assert_eq!(code, StatusCode::CONFLICT);
    let bad = "  annotations: {slipway.dev/priority: high}\n";
    let (code, body) = s
        .call("POST", PIPELINE_RUNS, &run("p", "nap", "0", bad, ""))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["diagnostics"][0]["line"], 5, "{body}");
    let (code, body) = s
        .call("POST", PIPELINE_RUNS, &run("m", "missing", "0", "", ""))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(s.store.find_run("m").await.is_err(), "nothing stored");
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_runs_wait_across_a_restart() {
    let s = setup(total(1), None).await;
    create(&s, &run("r1", "nap", "30", "", "")).await;
    wait_started(&s, "r1").await;
    create(&s, &run("r2", "nap", "0.1", "", "")).await;
    create(&s, &run("r3", "nap", "0.1", "", "")).await;
    let dir = s.shut_down().await;
    let s = Server::start_in(dir, total(1)).await;
    assert_ne!(s.reason("r1").await, "Succeeded");
    for name in ["r2", "r3"] {
        assert_eq!(reason(&s.wait_done(name).await), "Succeeded", "{name}");
    }
    s.shut_down().await;
}

/// A queued run keeps the Secrets and ConfigMaps it binds (they are part of its stored inputs),
/// and their values reach neither its logs nor the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_binds_secrets_and_configmaps_and_masks_them() {
    let s = Server::start(Default::default()).await;
    let defs = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {token: tok-5e1f0a9b}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {region: eu-west-7}\n---\napiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: show}\nspec:\n  workspaces: [{name: creds}, {name: settings}]\n  steps:\n  - name: s\n    image: busybox\n    script: |\n      echo \"token=$(cat $(workspaces.creds.path)/token) region=$(cat $(workspaces.settings.path)/region)\"\n";
    let (code, body) = s.call("POST", "/api/v1/apply", defs).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let run = "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: show-1}\nspec:\n  taskRef: {name: show}\n  workspaces:\n  - {name: creds, secret: {secretName: creds}}\n  - {name: settings, configMap: {name: settings}}\n";
    let (code, body) = s
        .call(
            "POST",
            "/apis/tekton.dev/v1/namespaces/default/taskruns",
            run,
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let done = s.wait_done("show-1").await;
    assert_eq!(reason(&done), "Succeeded", "{done}");
    let (_, logs) = s.call("GET", "/api/v1/runs/show-1/logs", "").await;
    assert_eq!(
        logs.as_str(),
        Some("[show-1/s] token=[MASKED] region=eu-west-7\n")
    );
    let (_, object) = s
        .call(
            "GET",
            "/apis/tekton.dev/v1/namespaces/default/taskruns/show-1",
            "",
        )
        .await;
    assert!(!object.to_string().contains("tok-5e1f0a9b"), "{object}");
    s.shut_down().await;
}

/// A limit from the config file counts each namespace's Pipeline of that name on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_pipeline_limit_counts_per_namespace() {
    let limits = Limits {
        total: None,
        per_group: HashMap::from([("nap".to_string(), 1)]),
    };
    let s = setup(limits, None).await;
    let (code, body) = s
        .call("POST", "/api/v1/apply?namespace=team-b", &definitions(None))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    create(&s, &run("a", "nap", "1", "", "")).await;
    wait_started(&s, "a").await;
    create(&s, &run("b", "nap", "0.1", "", "")).await;
    let (code, body) = s
        .call(
            "POST",
            "/apis/tekton.dev/v1/namespaces/team-b/pipelineruns",
            &run("c", "nap", "0.1", "", ""),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(reason(&s.wait_done("c").await), "Succeeded");
    assert_eq!(
        s.reason("b").await,
        "PipelineRunPending",
        "default/nap allows one at once"
    );
    assert_eq!(reason(&s.wait_done("b").await), "Succeeded");
    s.shut_down().await;
}

/// The first diagnostic of a refusal: its line and message.
fn first_problem(body: &Value) -> (i64, String) {
    let d = &body["diagnostics"][0];
    (
        d["line"].as_i64().unwrap_or(0),
        d["message"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_and_numbers_out_of_range_are_refused_with_positions() {
    let s = setup(Default::default(), None).await;
    // The first overflowed the duration parser (the handler panicked); the second passed and
    // overflowed the deadline when the run started.
    for (name, timeout) in [("huge", "99999999999999999h"), ("far", "3000000000000000h")] {
        let spec = format!("  timeouts: {{pipeline: {timeout}}}\n");
        let (code, body) = s
            .call("POST", PIPELINE_RUNS, &run(name, "nap", "0", "", &spec))
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (line, message) = first_problem(&body);
        assert_eq!(line, 8, "{body}");
        assert!(
            message.contains(&format!(
                "invalid duration `{timeout}`: longer than the longest Go duration"
            )),
            "{body}"
        );
        assert!(s.store.find_run(name).await.is_err(), "nothing stored");
        let task_run = format!(
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {{name: {name}-t}}\nspec:\n  timeout: {timeout}\n  taskRef: {{name: sleep}}\n  params: [{{name: secs, value: '0'}}]\n"
        );
        let (code, body) = s
            .call(
                "POST",
                "/apis/tekton.dev/v1/namespaces/default/taskruns",
                &task_run,
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(first_problem(&body).0, 5, "{body}");
    }
    let big = "  annotations: {slipway.dev/priority: \"99999999999999999999\"}\n";
    let (code, body) = s
        .call("POST", PIPELINE_RUNS, &run("prio", "nap", "0", big, ""))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(first_problem(&body).1.contains("out of range"), "{body}");
    // Go's longest duration itself is accepted, and the run it times starts and ends.
    let longest = "  timeouts: {pipeline: 2562047h47m16.854775807s}\n";
    create(&s, &run("longest", "nap", "0", "", longest)).await;
    assert_eq!(reason(&s.wait_done("longest").await), "Succeeded");
    s.shut_down().await;
}

/// A run submitted to a server may not mount the server machine's directories: a `hostPath`
/// volume (in the Task or the podTemplate) fails the TaskRun before any step runs, with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_path_volumes_are_refused_on_a_server() {
    let s = Server::start(total(2)).await;
    let marker = s.dir.path().join("should-not-exist");
    for (name, volumes) in [
        (
            "in-task",
            "    volumes: [{name: host, hostPath: {path: /}}]\n",
        ),
        ("in-template", ""),
    ] {
        let template = if volumes.is_empty() {
            "  podTemplate:\n    volumes: [{name: host, hostPath: {path: /}}]\n"
        } else {
            ""
        };
        let body = format!(
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {{name: {name}}}\nspec:\n{template}  taskSpec:\n{volumes}    steps:\n    - name: touch\n      image: busybox\n      volumeMounts: [{{name: host, mountPath: /host}}]\n      script: touch /host{}\n",
            marker.display()
        );
        let (code, reply) = s
            .call(
                "POST",
                "/apis/tekton.dev/v1/namespaces/default/taskruns",
                &body,
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{reply}");
        let done = s.wait_done(name).await;
        assert_eq!(reason(&done), "TaskRunValidationFailed", "{done}");
        let message = done["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap_or("");
        assert!(message.contains("hostPath"), "{message}");
    }
    assert!(!marker.exists(), "a step reached the server's files");
    s.shut_down().await;
}
