//! Webhooks through EventListeners: GitHub and GitLab interceptors, CEL filters and overlays,
//! bindings and templates, idempotent deliveries, and refusals that store nothing.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{Server, reason};

const SETUP: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: webhook}
stringData: {token: s3cret}
---
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: show-revision}
spec:
  params: [{name: url}, {name: revision}, {name: branch}]
  steps:
  - name: show
    image: busybox
    script: echo "$(params.url) $(params.revision) $(params.branch)"
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: github-push}
spec:
  params:
  - {name: url, value: $(body.repository.clone_url)}
  - {name: revision, value: $(body.after)}
  - {name: branch, value: $(extensions.branch)}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: build}
spec:
  params: [{name: url}, {name: revision}, {name: branch, default: main}]
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: TaskRun
    metadata: {generateName: build-}
    spec:
      taskRef: {name: show-revision}
      params:
      - {name: url, value: $(tt.params.url)}
      - {name: revision, value: $(tt.params.revision)}
      - {name: branch, value: $(tt.params.branch)}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: ci}
spec:
  triggers:
  - name: github-push
    interceptors:
    - ref: {name: github}
      params:
      - {name: secretRef, value: {secretName: webhook, secretKey: token}}
      - {name: eventTypes, value: [push]}
    - ref: {name: cel}
      params:
      - {name: filter, value: "body.ref.startsWith('refs/heads/')"}
      - {name: overlays, value: [{key: branch, expression: "body.ref.split('/')[2]"}]}
    bindings: [{ref: github-push}]
    template: {ref: build}
  - name: gitlab
    interceptors:
    - gitlab:
        secretRef: {secretName: webhook, secretKey: token}
        eventTypes: [Push Hook, Tag Push Hook, Merge Request Hook]
    bindings:
    - {name: url, value: $(body.project.git_http_url)}
    - {name: revision, value: $(body.checkout_sha)}
    template: {ref: build}
"#;

async fn setup() -> Server {
    let s = Server::start(Default::default()).await;
    let (code, body) = s.call("POST", "/api/v1/apply", SETUP).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    s
}

fn push(reference: &str, after: &str) -> String {
    json!({"ref": reference, "after": after, "repository": {"clone_url": "https://git.example/app.git"}})
        .to_string()
}

async fn github(s: &Server, event: &str, id: &str, body: &str, key: &[u8]) -> (StatusCode, Value) {
    let sig = slipway_triggers::sign_github(key, body.as_bytes());
    s.call_with(
        "POST",
        "/hooks/ci",
        body,
        &[
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", id),
            ("X-Hub-Signature-256", &sig),
            ("content-type", "application/json"),
        ],
    )
    .await
}

async fn run_count(s: &Server) -> usize {
    s.store.list_runs(10_000).await.expect("runs").len()
}

fn runs(reply: &Value) -> Vec<String> {
    reply["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_github_push_starts_a_run_with_params_from_the_payload() {
    let s = setup().await;
    let (code, reply) = github(
        &s,
        "push",
        "d-1",
        &push("refs/heads/main", "abc123"),
        b"s3cret",
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{reply}");
    let names = runs(&reply);
    assert_eq!(names.len(), 1, "{reply}");
    assert!(names[0].starts_with("build-"), "{reply}");
    let done = s.wait_done(&names[0]).await;
    assert_eq!(reason(&done), "Succeeded", "{done}");
    let row = s.store.find_run(&names[0]).await.expect("run");
    let logs = s
        .store
        .logs(&row.uid, None, None, 0, 100)
        .await
        .expect("logs");
    assert_eq!(logs[0].line, "https://git.example/app.git abc123 main");
    let labels = &done["metadata"]["labels"];
    assert_eq!(labels["triggers.tekton.dev/eventlistener"], "ci", "{done}");
    assert_eq!(
        labels["triggers.tekton.dev/triggers-eventid"], "d-1",
        "{done}"
    );
    // The same delivery again creates nothing and answers with the first runs.
    let (code, again) = github(
        &s,
        "push",
        "d-1",
        &push("refs/heads/main", "abc123"),
        b"s3cret",
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(runs(&again), names);
    assert_eq!(run_count(&s).await, 1);
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_deliveries_say_why_and_store_nothing() {
    let s = setup().await;
    let body = push("refs/heads/main", "abc");
    let (code, reply) = github(&s, "push", "d-2", &body, b"wrong").await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not match"),
        "{reply}"
    );
    let (code, reply) = github(&s, "issues", "d-3", &body, b"s3cret").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or("")
            .contains("event type `issues`"),
        "{reply}"
    );
    let (code, reply) = github(&s, "push", "d-4", "{\n  \"ref\": }", b"s3cret").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("payload:2:"),
        "{reply}"
    );
    let (code, reply) = s
        .call_with(
            "POST",
            "/hooks/ci",
            "payload=%7B%7D",
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or("")
            .contains("content type to application/json"),
        "{reply}"
    );
    let (code, reply) = s.call("POST", "/hooks/nope", "{}").await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{reply}");
    // A tag push passes the signature but not the CEL filter: accepted, nothing to run.
    let (code, reply) = github(&s, "push", "d-5", &push("refs/tags/v1", "abc"), b"s3cret").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(runs(&reply), Vec::<String>::new());
    assert_eq!(run_count(&s).await, 0);
    // A refused delivery's ID is not spent: the fixed redelivery goes through.
    let (code, reply) = github(&s, "push", "d-2", &body, b"s3cret").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{reply}");
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_deliveries_check_the_token_and_event_type() {
    let s = setup().await;
    let body = json!({"checkout_sha": "f00d", "ref": "refs/heads/dev", "project": {"git_http_url": "https://gitlab.example/p.git"}}).to_string();
    let send = |token: &'static str, event: &'static str, id: &'static str| {
        let body = body.clone();
        let s = &s;
        async move {
            s.call_with(
                "POST",
                "/hooks/ci",
                &body,
                &[
                    ("X-Gitlab-Token", token),
                    ("X-Gitlab-Event", event),
                    ("X-Gitlab-Event-UUID", id),
                ],
            )
            .await
        }
    };
    let (code, reply) = send("wrong", "Push Hook", "g-1").await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{reply}");
    let (code, reply) = send("s3cret", "Note Hook", "g-2").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{reply}");
    let (code, reply) = send("s3cret", "Push Hook", "g-3").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{reply}");
    let name = runs(&reply).pop().expect("a run");
    assert_eq!(reason(&s.wait_done(&name).await), "Succeeded");
    let row = s.store.find_run(&name).await.expect("run");
    let logs = s
        .store
        .logs(&row.uid, None, None, 0, 100)
        .await
        .expect("logs");
    // No binding gives `branch`: the template's default.
    assert_eq!(logs[0].line, "https://gitlab.example/p.git f00d main");
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_with_missing_parts_is_refused_at_apply() {
    let s = Server::start(Default::default()).await;
    let listener = "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {name: ci}\nspec:\n  triggers:\n  - name: t\n    interceptors:\n    - ref: {name: bitbucket}\n    bindings: [{ref: nope}]\n    template: {ref: missing}\n";
    let (code, reply) = s.call("POST", "/api/v1/apply", listener).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    let found: Vec<(u64, String)> = reply["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap_or(0),
                d["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(found.len(), 3, "{reply}");
    assert_eq!(found[0].0, 8);
    assert!(
        found[0].1.contains("`bitbucket` is not supported"),
        "{found:?}"
    );
    assert_eq!(found[1].0, 9);
    assert!(
        found[1].1.contains("TriggerBinding `nope` not found"),
        "{found:?}"
    );
    assert_eq!(found[2].0, 10);
    assert!(
        found[2].1.contains("TriggerTemplate `missing` not found"),
        "{found:?}"
    );
    s.shut_down().await;
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An EventListener that polls `repo` every `interval` and starts `build` on a push.
fn polled_listener(name: &str, repo: &str, interval: &str) -> String {
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata:\n  name: {name}\n  annotations:\n    slipway.dev/poll-repository: {repo}\n    slipway.dev/poll-interval: {interval}\nspec:\n  triggers:\n  - name: github-push\n    interceptors:\n    - ref: {{name: github}}\n      params:\n      - {{name: secretRef, value: {{secretName: webhook, secretKey: token}}}}\n      - {{name: eventTypes, value: [push]}}\n    - ref: {{name: cel}}\n      params:\n      - {{name: overlays, value: [{{key: branch, expression: \"body.ref.split('/')[2]\"}}]}}\n    bindings: [{{ref: github-push}}]\n    template: {{ref: build}}\n"
    )
}

/// A listener whose polling panics (stored by an older version that let an interval overflow
/// the clock) is logged and set aside; the poller goes on polling the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_polling_panics_does_not_stop_the_others() {
    let repo = tempfile::tempdir().expect("tempdir");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    git(repo.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
    let s = setup().await;
    let path = repo.path().display().to_string();
    // Stored directly, as a database from before intervals were validated holds it; it sorts
    // before the good listener, so every round meets it first.
    let yaml = polled_listener("a-broken", &path, "99999999999999999h");
    let object = json!({
        "apiVersion": "triggers.tekton.dev/v1beta1",
        "kind": "EventListener",
        "metadata": {"name": "a-broken", "namespace": "default", "annotations": {
            "slipway.dev/poll-repository": path,
            "slipway.dev/poll-interval": "99999999999999999h",
        }},
        "spec": {"triggers": []},
    });
    s.store
        .put_resources(&[slipway_store::NewResource {
            kind: "EventListener",
            namespace: "default",
            name: "a-broken",
            yaml: &yaml,
            object: &object,
        }])
        .await
        .expect("stored");
    let listener = polled_listener("polled", &path, "300ms");
    let (code, body) = s.call("POST", "/api/v1/apply", &listener).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    git(repo.path(), &["commit", "-q", "--allow-empty", "-m", "two"]);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while run_count(&s).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "polling stopped: no run from the new commit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    s.shut_down().await;
}

/// Polling: the first look learns the refs; a new commit on a branch then starts a run with
/// the polled revision, through the same listener and interceptors (whose sender checks do not
/// apply), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_repository_triggers_on_a_new_commit() {
    let repo = tempfile::tempdir().expect("tempdir");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    git(repo.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
    let s = setup().await;
    let listener = polled_listener("polled", &repo.path().display().to_string(), "300ms");
    let (code, body) = s.call("POST", "/api/v1/apply", &listener).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        run_count(&s).await,
        0,
        "the first poll only learns the refs"
    );
    git(repo.path(), &["commit", "-q", "--allow-empty", "-m", "two"]);
    let sha = git(repo.path(), &["rev-parse", "HEAD"]);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let run = loop {
        if let Some(r) = s
            .store
            .list_runs(10)
            .await
            .expect("runs")
            .into_iter()
            .next()
        {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no run from the new commit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(reason(&s.wait_done(&run.name).await), "Succeeded");
    let logs = s
        .store
        .logs(&run.uid, None, None, 0, 10)
        .await
        .expect("logs");
    assert_eq!(
        logs[0].line,
        format!("{} {sha} main", repo.path().display())
    );
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(
        run_count(&s).await,
        1,
        "a ref that did not move again triggers nothing"
    );
    s.shut_down().await;
}

/// A listener's runs are created, run and found in the listener's namespace, whatever its
/// template says; deliveries to listeners of one name in two namespaces are told apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_creates_runs_in_its_own_namespace() {
    let s = setup().await;
    let elsewhere = SETUP.replace(
        "metadata: {generateName: build-}",
        "metadata: {generateName: build-, namespace: somewhere-else}",
    );
    let (code, body) = s
        .call("POST", "/api/v1/apply?namespace=ci-team", &elsewhere)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let body = push("refs/heads/main", "abc123");
    let sig = slipway_triggers::sign_github(b"s3cret", body.as_bytes());
    let deliver = |path: &'static str| {
        let (body, sig) = (body.clone(), sig.clone());
        let s = &s;
        async move {
            s.call_with(
                "POST",
                path,
                &body,
                &[
                    ("X-GitHub-Event", "push"),
                    ("X-GitHub-Delivery", "same-id"),
                    ("X-Hub-Signature-256", &sig),
                    ("content-type", "application/json"),
                ],
            )
            .await
        }
    };
    let (code, reply) = deliver("/hooks/ci-team/ci").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply["namespace"], "ci-team");
    let name = runs(&reply)[0].clone();
    let row = s
        .store
        .find_run_in(Some("ci-team"), &name)
        .await
        .expect("run in ci-team");
    assert_eq!(row.namespace, "ci-team");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let r = s.store.run(&row.uid).await.expect("run");
        if r.status != "Unknown" {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(reason(&done.object), "Succeeded", "{}", done.object);
    assert_eq!(done.object["metadata"]["namespace"], "ci-team");
    assert_eq!(done.namespace, "ci-team");
    // The same delivery ID to `default`'s listener `ci` is another listener's delivery.
    let (code, reply) = deliver("/hooks/ci").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{reply}");
    assert_ne!(reply["duplicate"], true, "{reply}");
    assert_eq!(reply["namespace"], "default");
}

/// A listener with no interceptors (anyone may call it) whose payload sets a TaskRun's timeout.
const TIMED: &str = r#"apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: timed}
spec:
  params: [{name: timeout}]
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: TaskRun
    metadata: {generateName: timed-}
    spec:
      timeout: $(tt.params.timeout)
      taskSpec: {steps: [{name: s, image: busybox, script: "true"}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: timed}
spec:
  triggers:
  - name: any
    bindings: [{name: timeout, value: $(body.timeout)}]
    template: {ref: timed}
"#;

async fn hook(s: &Server, timeout: &str) -> (StatusCode, Value) {
    let body = json!({ "timeout": timeout }).to_string();
    s.call_with(
        "POST",
        "/hooks/timed",
        &body,
        &[("content-type", "application/json")],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_timeout_out_of_range_is_refused_not_a_crash() {
    let s = Server::start(Default::default()).await;
    let (code, body) = s.call("POST", "/api/v1/apply", TIMED).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    for timeout in ["99999999999999999h", "3000000000000000h"] {
        let (code, reply) = hook(&s, timeout).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        let message = reply["diagnostics"][0]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("longer than the longest Go duration"),
            "{reply}"
        );
        assert_eq!(run_count(&s).await, 0, "nothing stored");
    }
    let (code, reply) = hook(&s, "30s").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{reply}");
    let name = runs(&reply).pop().expect("a run");
    assert_eq!(reason(&s.wait_done(&name).await), "Succeeded");
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_interval_out_of_range_is_refused_at_apply() {
    let s = setup().await;
    for interval in ["99999999999999999h", "soon"] {
        let listener = format!(
            "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata:\n  name: polled\n  annotations:\n    slipway.dev/poll-repository: /nowhere\n    slipway.dev/poll-interval: {interval}\nspec:\n  triggers:\n  - name: t\n    bindings: [{{ref: github-push}}]\n    template: {{ref: build}}\n"
        );
        let (code, reply) = s.call("POST", "/api/v1/apply", &listener).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        let d = &reply["diagnostics"][0];
        assert_eq!(d["line"], 7, "{reply}");
        assert!(
            d["message"]
                .as_str()
                .unwrap_or("")
                .contains("invalid annotation slipway.dev/poll-interval"),
            "{reply}"
        );
    }
    let (code, reply) = s
        .call(
            "GET",
            "/apis/triggers.tekton.dev/v1beta1/namespaces/default/eventlisteners/polled",
            "",
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "not stored: {reply}");
    s.shut_down().await;
}
