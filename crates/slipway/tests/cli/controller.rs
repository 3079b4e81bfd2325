//! `slipway controller` against `../shared/kube-emu`: Tekton's CRDs from `deploy/tekton/`
//! applied, the controller process running, the conformance corpus created as cluster objects
//! (one namespace per file, since several files define a StepAction of the same name), and each
//! run's status, TaskRun children and childReferences read back from the API server.
//!
//! Where the emulator differs from a cluster: no authorization (every verb is allowed, so the
//! RBAC file is checked only for its shape), CRDs without conversion (as Tekton's without its
//! webhook). Under `cargo test` the tests share one emulator, so controllers never run two at a
//! time (`SERIAL`); under nextest each has its own.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::kube::{api, emulator};
use super::prewarm::until;
use super::{bin, examples, text, yaml_files};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &emulator().kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("kubectl ends")
}

fn must(out: Output) -> String {
    assert!(
        out.status.success(),
        "kubectl failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `deploy/tekton/` applied once.
fn crds() {
    static APPLIED: OnceLock<()> = OnceLock::new();
    APPLIED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/tekton");
        must(kubectl(&["apply", "-f", &dir.to_string_lossy()], None));
    });
}

fn namespace(ns: &str) {
    let _ = kubectl(&["create", "namespace", ns], None);
}

/// A running `slipway controller`, killed when dropped.
struct Controller {
    child: Child,
    log: PathBuf,
    _home: tempfile::TempDir,
}

impl Controller {
    fn start(args: &[&str]) -> Self {
        let home = tempfile::tempdir().expect("tempdir");
        let log = home.path().join("controller.log");
        let child = Command::new(bin())
            .arg("controller")
            .args(args)
            .env("SLIPWAY_HOME", home.path())
            .env("SLIPWAY_CONFIG", &emulator().config)
            .env(
                "SLIPWAY_LOG",
                "slipway_controller=info,slipway_lease=info,slipway_exec_kube=info",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("the controller starts");
        let c = Controller {
            child,
            log,
            _home: home,
        };
        c.wait_for("became the leader", Duration::from_secs(60));
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, needle: &str, within: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < within,
                "the controller did not say `{needle}`:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then waits for it to exit; what it said.
    fn stop(&mut self) -> String {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: signals our own child process, by its id.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let _ = self.child.wait();
        self.log()
    }

    /// SIGKILL: no chance to clean up, as when a node dies.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

fn list(ns: &str, plural: &str) -> Vec<Value> {
    let (status, body) = api(
        "GET",
        &format!("/apis/tekton.dev/v1/namespaces/{ns}/{plural}"),
    );
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

fn get(ns: &str, plural: &str, name: &str) -> Value {
    api(
        "GET",
        &format!("/apis/tekton.dev/v1/namespaces/{ns}/{plural}/{name}"),
    )
    .1
}

fn succeeded(o: &Value) -> (String, String) {
    let c = o["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Succeeded"))
        .cloned()
        .unwrap_or(Value::Null);
    (
        c["status"].as_str().unwrap_or("").to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
    )
}

/// The runs a user created in `ns`: PipelineRuns, and TaskRuns no PipelineRun owns.
fn top_runs(ns: &str) -> Vec<Value> {
    let mut runs = list(ns, "pipelineruns");
    runs.extend(
        list(ns, "taskruns")
            .into_iter()
            .filter(|t| t["metadata"]["labels"]["tekton.dev/pipelineRun"].is_null()),
    );
    runs
}

fn running(o: &Value) -> bool {
    succeeded(o).0 == "Unknown"
}

fn done(o: &Value) -> bool {
    matches!(succeeded(o).0.as_str(), "True" | "False")
}

fn wait_until(what: &str, within: Duration, ctl: &Controller, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < within,
            "timed out waiting for {what}; controller log:\n{}",
            ctl.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A file's documents: definitions (Tasks, Pipelines, StepActions) and runs, apart, so that
/// a run never starts before what it refers to exists.
fn split(file: &Path) -> (String, String) {
    let body = std::fs::read_to_string(file).expect("read example");
    let (mut defs, mut runs) = (String::new(), String::new());
    for doc in body.split("\n---") {
        let is_run = doc
            .lines()
            .any(|l| l == "kind: PipelineRun" || l == "kind: TaskRun");
        let target = if is_run { &mut runs } else { &mut defs };
        target.push_str(doc);
        target.push_str("\n---\n");
    }
    (defs, runs)
}

fn pods_of(o: &Value) -> Vec<String> {
    let uid = o["metadata"]["uid"].as_str().expect("uid");
    let ns = o["metadata"]["namespace"].as_str().expect("namespace");
    let (_, list) = api(
        "GET",
        &format!("/api/v1/namespaces/{ns}/pods?labelSelector=slipway.dev%2Frun-uid%3D{uid}"),
    );
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Each PipelineRun names its TaskRuns in childReferences; each is a TaskRun object it owns,
/// labelled as Tekton labels them, finished, with its Pod's name.
fn check_children(pr: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let ns = pr["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pr["metadata"]["name"].as_str().unwrap_or_default();
    let refs = pr["status"]["childReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let children: Vec<Value> = list(ns, "taskruns")
        .into_iter()
        .filter(|t| t["metadata"]["labels"]["tekton.dev/pipelineRun"] == name)
        .collect();
    if refs.len() != children.len() {
        problems.push(format!(
            "{ns}/{name}: {} childReferences, {} TaskRuns",
            refs.len(),
            children.len()
        ));
    }
    for r in &refs {
        let Some(child) = children.iter().find(|c| c["metadata"]["name"] == r["name"]) else {
            problems.push(format!("{ns}/{name}: no TaskRun {}", r["name"]));
            continue;
        };
        let labels = &child["metadata"]["labels"];
        let owner = &child["metadata"]["ownerReferences"][0];
        if labels["tekton.dev/pipelineTask"] != r["pipelineTaskName"]
            || labels["tekton.dev/memberOf"].is_null()
            || owner["uid"] != pr["metadata"]["uid"]
            || owner["kind"] != "PipelineRun"
            || !done(child)
            || child["status"]["podName"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            problems.push(format!(
                "{ns}/{name}: TaskRun {} is off: {child}",
                r["name"]
            ));
        }
    }
    problems
}

const BETA: &str = r#"apiVersion: tekton.dev/v1beta1
kind: Task
metadata: {name: beta-echo}
spec:
  params: [{name: word, type: string}]
  results: [{name: said}]
  steps:
    - name: say
      image: mirror.gcr.io/busybox
      resources: {}
      script: printf '$(params.word)' | tee $(results.said.path)
---
apiVersion: tekton.dev/v1beta1
kind: PipelineRun
metadata: {name: beta-run}
spec:
  timeout: 10m
  serviceAccountName: default
  pipelineSpec:
    results: [{name: said, value: $(tasks.one.results.said)}]
    tasks:
      - name: one
        taskRef: {name: beta-echo}
        params: [{name: word, value: hello}]
"#;

/// A ConfigMap workspace and a Secret volume, both the namespace's own objects.
const OBJECTS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello-from-configmap}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: s3cr3t-value-123}
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: objects}
spec:
  workspaces:
    - name: conf
      configMap: {name: settings}
  taskSpec:
    workspaces: [{name: conf}]
    results: [{name: greeting}, {name: token-length}, {name: env-length}]
    volumes:
      - name: creds
        secret: {secretName: creds}
    steps:
      - name: read
        image: mirror.gcr.io/busybox
        volumeMounts: [{name: creds, mountPath: /creds}]
        env:
          - name: TOKEN
            valueFrom: {secretKeyRef: {name: creds, key: token}}
        script: |
          cat $(workspaces.conf.path)/greeting | tee $(results.greeting.path)
          wc -c < /creds/token | tr -d ' \n' > $(results.token-length.path)
          printf %s "$TOKEN" | wc -c | tr -d ' \n' > $(results.env-length.path)
"#;

const SLOW: &str = r#"apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: slow}
spec:
  pipelineSpec:
    tasks:
      - name: sleepy
        taskSpec:
          steps: [{name: s, image: mirror.gcr.io/busybox, script: "sleep 300"}]
    finally:
      - name: fin
        taskSpec:
          steps: [{name: s, image: mirror.gcr.io/busybox, script: "echo finally"}]
"#;

const SLOW_TASKRUN: &str = r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: slow-alone}
spec:
  taskSpec:
    steps: [{name: s, image: mirror.gcr.io/busybox, script: "sleep 300"}]
"#;

/// The corpus, a v1beta1 PipelineRun, a cancelled and a deleted run, all at once under one
/// controller watching every namespace.
#[test]
fn controller_runs_the_corpus_created_as_cluster_objects() {
    let _serial = serial();
    crds();
    let ctl = Controller::start(&[
        "--all-namespaces",
        "--lease-namespace",
        "default",
        "--lease-name",
        "slipway-e2e",
        "--identity",
        "corpus",
    ]);
    let mut files = Vec::new();
    yaml_files(&examples(), &mut files);
    files.retain(|f| !f.to_string_lossy().contains("/no-ci/"));
    files.sort();
    assert_eq!(files.len(), 39, "the corpus has 39 examples outside no-ci/");
    let mut spaces = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let ns = format!("ctl-{i}");
        namespace(&ns);
        let (defs, runs) = split(f);
        if defs.lines().any(|l| l.starts_with("kind:")) {
            must(kubectl(&["create", "-n", &ns, "-f", "-"], Some(&defs)));
        }
        must(kubectl(&["create", "-n", &ns, "-f", "-"], Some(&runs)));
        spaces.push((
            ns,
            f.strip_prefix(examples())
                .unwrap_or(f)
                .display()
                .to_string(),
        ));
    }
    for (ns, body) in [
        ("ctl-beta", BETA),
        ("ctl-objects", OBJECTS),
        ("ctl-cancel", SLOW),
        ("ctl-delete", SLOW_TASKRUN),
    ] {
        namespace(ns);
        must(kubectl(&["create", "-n", ns, "-f", "-"], Some(body)));
        spaces.push((ns.to_string(), ns.to_string()));
    }

    // Cancelled once its first task runs: finally still runs.
    wait_until(
        "the slow PipelineRun's task to start",
        Duration::from_secs(300),
        &ctl,
        || {
            list("ctl-cancel", "taskruns")
                .iter()
                // Its step shows as running while it runs, as Tekton Dashboard reads it.
                .any(|t| {
                    t["metadata"]["name"] == "slow-sleepy"
                        && t["status"]["steps"][0]["running"]["startedAt"].is_string()
                })
        },
    );
    must(kubectl(
        &[
            "patch",
            "-n",
            "ctl-cancel",
            "pipelinerun",
            "slow",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"status":"CancelledRunFinally"}}"#,
        ],
        None,
    ));
    // Deleted while its Pod runs: the run stops and the Pod goes.
    let mut doomed = Value::Null;
    wait_until(
        "the slow TaskRun's Pod",
        Duration::from_secs(300),
        &ctl,
        || {
            doomed = get("ctl-delete", "taskruns", "slow-alone");
            !pods_of(&doomed).is_empty()
        },
    );
    must(kubectl(
        &[
            "delete",
            "-n",
            "ctl-delete",
            "taskrun",
            "slow-alone",
            "--wait=false",
        ],
        None,
    ));
    wait_until(
        "the deleted TaskRun's Pod to go",
        Duration::from_secs(60),
        &ctl,
        || pods_of(&doomed).is_empty(),
    );

    let watched: Vec<&(String, String)> =
        spaces.iter().filter(|(ns, _)| ns != "ctl-delete").collect();
    wait_until(
        "every run to finish",
        Duration::from_secs(900),
        &ctl,
        || {
            watched.iter().all(|(ns, _)| {
                let runs = top_runs(ns);
                !runs.is_empty() && runs.iter().all(done)
            })
        },
    );

    let mut problems = Vec::new();
    for (ns, file) in &watched {
        for run in top_runs(ns) {
            let (status, reason) = succeeded(&run);
            let expected = if ns == "ctl-cancel" { "False" } else { "True" };
            if status != expected {
                problems.push(format!(
                    "{file}: {} {status}/{reason}: {}",
                    run["metadata"]["name"], run["status"]["conditions"][0]["message"]
                ));
            }
            if run["status"]["startTime"].is_null() || run["status"]["completionTime"].is_null() {
                problems.push(format!("{file}: no start or completion time"));
            }
            if run["kind"] == "PipelineRun" {
                problems.extend(check_children(&run));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\ncontroller log:\n{}",
        problems.join("\n"),
        ctl.log()
    );

    let slow = get("ctl-cancel", "pipelineruns", "slow");
    assert_eq!(succeeded(&slow).1, "Cancelled", "{slow}");
    let fin = get("ctl-cancel", "taskruns", "slow-fin");
    assert_eq!(
        succeeded(&fin),
        ("True".into(), "Succeeded".into()),
        "finally ran: {fin}"
    );
    let sleepy = get("ctl-cancel", "taskruns", "slow-sleepy");
    assert_eq!(
        succeeded(&sleepy),
        ("False".into(), "TaskRunCancelled".into())
    );

    let objects = get("ctl-objects", "taskruns", "objects");
    assert_eq!(
        objects["status"]["results"][0]["value"], "hello-from-configmap",
        "{objects}"
    );
    assert_eq!(objects["status"]["results"][1]["value"], "16", "{objects}");
    assert_eq!(objects["status"]["results"][2]["value"], "16", "{objects}");

    // What the whole corpus cost the API server, for the benchmark against Tekton.
    let taskruns: usize = spaces
        .iter()
        .map(|(ns, _)| list(ns, "taskruns").len())
        .sum();
    let mut ctl = ctl;
    let said = ctl.stop();
    let sent: u64 = said
        .split("stopped after ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the controller reports its requests:\n{said}"));
    assert!(
        sent > 0 && taskruns > 0,
        "{sent} requests, {taskruns} TaskRuns"
    );
    eprintln!(
        "controller: {sent} API requests for {taskruns} TaskRuns ({:.1} per TaskRun)",
        sent as f64 / taskruns as f64
    );

    let beta = get("ctl-beta", "pipelineruns", "beta-run");
    assert_eq!(beta["status"]["results"][0]["value"], "hello", "{beta}");
    // Nothing was run twice.
    assert_eq!(said.matches("started run=beta-run").count(), 1);
}

/// Two tasks in a row: the first prints a value that is new each time it runs (its result),
/// the second runs long enough to be running when its controller is killed.
const ADOPTED: &str = r#"apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: adopted}
spec:
  pipelineSpec:
    results:
      - {name: first, value: $(tasks.first.results.once)}
      - {name: second, value: $(tasks.second.results.once)}
    tasks:
      - name: first
        taskSpec:
          results: [{name: once}]
          steps: [{name: s, image: mirror.gcr.io/busybox, script: "cat /proc/sys/kernel/random/uuid | tr -d '\\n' | tee $(results.once.path)"}]
      - name: second
        runAfter: [first]
        taskSpec:
          results: [{name: once}]
          steps: [{name: s, image: mirror.gcr.io/busybox, script: "cat /proc/sys/kernel/random/uuid | tr -d '\\n' > $(results.once.path); sleep 20"}]
    finally:
      - name: fin
        taskSpec:
          steps: [{name: s, image: mirror.gcr.io/busybox, script: "echo finally"}]
"#;

/// A TaskRun on its own, running when its controller is killed.
const ADOPTED_ALONE: &str = r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: adopted-alone}
spec:
  taskSpec:
    results: [{name: once}]
    steps: [{name: s, image: mirror.gcr.io/busybox, script: "cat /proc/sys/kernel/random/uuid | tr -d '\\n' > $(results.once.path); sleep 15"}]
"#;

fn pod_exists(ns: &str, name: &str) -> bool {
    api("GET", &format!("/api/v1/namespaces/{ns}/pods/{name}")).0 == 200
}

/// A controller killed mid-run: the next leader (after the Lease lapses) adopts the run. The
/// task that had finished is not run again (its result, new at every run, is the same), the
/// running one's Pod is followed (the same Pod object), the rest runs, and the run succeeds.
#[test]
fn controller_adopts_runs_left_by_a_killed_controller_and_runs_nothing_twice() {
    let _serial = serial();
    crds();
    let ns = "ctl-restart";
    namespace(ns);
    let args = ["--namespace", ns, "--lease-name", "slipway-restart"];
    let mut first = Controller::start(&[&args[..], &["--identity", "first"]].concat());
    must(kubectl(&["create", "-n", ns, "-f", "-"], Some(ADOPTED)));
    must(kubectl(
        &["create", "-n", ns, "-f", "-"],
        Some(ADOPTED_ALONE),
    ));
    let mut before = Value::Null;
    let mut second_pod = String::new();
    wait_until(
        "the first task done and the second's Pod running",
        Duration::from_secs(300),
        &first,
        || {
            before = get(ns, "taskruns", "adopted-first");
            second_pod = get(ns, "taskruns", "adopted-second")["status"]["podName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let alone = get(ns, "taskruns", "adopted-alone");
            let alone_pod = alone["status"]["podName"].as_str().unwrap_or_default();
            done(&before)
                && !second_pod.is_empty()
                && pod_exists(ns, &second_pod)
                && !alone_pod.is_empty()
                && pod_exists(ns, alone_pod)
        },
    );
    let once = before["status"]["results"][0]["value"].clone();
    assert!(once.as_str().is_some_and(|v| v.len() == 36), "{before}");
    first.kill();

    let second = Controller::start(&[&args[..], &["--identity", "second"]].concat());
    wait_until("the runs to end", Duration::from_secs(180), &second, || {
        done(&get(ns, "pipelineruns", "adopted")) && done(&get(ns, "taskruns", "adopted-alone"))
    });
    let pr = get(ns, "pipelineruns", "adopted");
    let said = format!("first:\n{}\nsecond:\n{}", first.log(), second.log());
    assert_eq!(
        succeeded(&pr),
        ("True".into(), "Succeeded".into()),
        "{pr}\n{said}"
    );
    assert!(said.contains("adopted run=adopted"), "{said}");
    // The first task's value is the one it printed before the restart: read again from its
    // Pod, not printed by a second run of it.
    assert_eq!(pr["status"]["results"][0]["value"], once, "{pr}\n{said}");
    assert_eq!(
        get(ns, "taskruns", "adopted-first")["status"]["results"][0]["value"],
        once
    );
    // The three Pods there at the restart were followed, not made again.
    assert_eq!(
        second
            .log()
            .matches("adopted the Pod made before a restart")
            .count(),
        3,
        "{said}"
    );
    let alone = get(ns, "taskruns", "adopted-alone");
    assert_eq!(succeeded(&alone).0, "True", "{alone}\n{said}");
    assert!(said.contains("adopted run=adopted-alone"), "{said}");
    assert!(
        pr["status"]["results"][1]["value"]
            .as_str()
            .is_some_and(|v| v.len() == 36)
    );
    for t in ["adopted-first", "adopted-second", "adopted-fin"] {
        let tr = get(ns, "taskruns", t);
        assert_eq!(succeeded(&tr).0, "True", "{tr}");
    }
    // Every Pod goes once the end is written.
    wait_until("its Pods to go", Duration::from_secs(60), &second, || {
        pods_of(&pr).is_empty()
    });
}

/// Two tasks, each saying something: logs to find again after the Pods are gone.
const SAYING: &str = r#"apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: saying}
spec:
  pipelineSpec:
    tasks:
      - name: first
        taskSpec:
          steps: [{name: say, image: mirror.gcr.io/busybox, script: "echo said-by-first"}]
      - name: second
        runAfter: [first]
        taskSpec:
          steps: [{name: say, image: mirror.gcr.io/busybox, script: "sleep 4; echo said-by-second"}]
"#;

/// `slipway serve --controller`: a PipelineRun created in the cluster runs there and is in the
/// server's history too (API, `get`, `logs`), with its logs after its Pods are deleted; a
/// cancel through the server is refused, naming the kubectl patch that does it.
#[test]
fn serve_with_the_controller_keeps_the_cluster_runs_and_their_logs() {
    let _serial = serial();
    crds();
    let ns = "ctl-served";
    namespace(ns);
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let config = emulator().config.to_string_lossy().to_string();
    let s = super::server::Served::start_with(
        home.path(),
        &[
            "--controller",
            "--namespace",
            ns,
            "--lease-name",
            "slipway-served",
            "--identity",
            "served",
        ],
        &[("SLIPWAY_CONFIG", &config)],
    );
    assert!(
        s.banner.contains(&format!("watching namespace {ns} on")),
        "{}",
        s.banner
    );
    must(kubectl(&["create", "-n", ns, "-f", "-"], Some(SAYING)));
    must(kubectl(&["create", "-n", ns, "-f", "-"], Some(SLOW)));
    // Followed live through the server while the cluster still runs it.
    let followed = follow(&s, client.path(), ns, "saying");
    // Its status may not be written yet (statuses go out a second after the events, and the
    // first task takes less); that the run has not ended is what makes this live.
    let now = get(ns, "pipelineruns", "saying");
    assert!(
        !done(&now),
        "the first line came only after the run ended: {now}"
    );
    let rest = followed.join().expect("follower");
    assert!(rest.contains("said-by-second"), "{rest}");
    until("saying to finish", Duration::from_secs(300), || {
        done(&get(ns, "pipelineruns", "saying"))
    });
    let pr = get(ns, "pipelineruns", "saying");
    assert_eq!(succeeded(&pr), ("True".into(), "Succeeded".into()), "{pr}");
    let uid = pr["metadata"]["uid"].as_str().expect("uid").to_string();

    // The server's API lists it, as the cluster's uid, with its TaskRuns.
    let (status, body) = s.http(
        "GET",
        &format!("/apis/tekton.dev/v1/namespaces/{ns}/pipelineruns"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).expect("json");
    let ours = listed["items"]
        .as_array()
        .and_then(|i| i.iter().find(|r| r["metadata"]["name"] == "saying"))
        .unwrap_or_else(|| panic!("not in the server's history: {body}"))
        .clone();
    assert_eq!(ours["metadata"]["uid"], uid.as_str(), "{ours}");
    assert_eq!(succeeded(&ours).0, "True", "{ours}");
    let (status, body) = s.http(
        "GET",
        &format!("/api/v1/namespaces/{ns}/runs/saying/taskruns"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let children: Value = serde_json::from_str(&body).expect("json");
    let mut tasks: Vec<String> = children["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| {
            t["metadata"]["labels"]["tekton.dev/pipelineTask"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    tasks.sort();
    assert_eq!(tasks, ["first", "second"], "{body}");
    let out = s.cli(client.path(), &["runs", "-n", ns]);
    assert!(
        text(&out.stdout).contains("saying"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Tekton loses logs with Pods; the server keeps them.
    must(kubectl(
        &[
            "delete",
            "pods",
            "-n",
            ns,
            "-l",
            &format!("slipway.dev/run-uid={uid}"),
        ],
        None,
    ));
    assert!(pods_of(&pr).is_empty());
    let out = s.cli(client.path(), &["logs", "saying", "-n", ns]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let logs = text(&out.stdout);
    assert!(
        logs.contains("said-by-first") && logs.contains("said-by-second"),
        "{logs}"
    );

    // A cancel through the server is the cluster's to do: refused, with the way there.
    until("slow to start", Duration::from_secs(120), || {
        running(&get(ns, "pipelineruns", "slow"))
    });
    let mut refused = String::new();
    for _ in 0..20 {
        let out = s.cli(client.path(), &["cancel", "slow", "-n", ns]);
        refused = text(&out.stderr);
        if refused.contains("kubectl patch") {
            assert_ne!(out.status.code(), Some(0), "{refused}");
            break;
        }
        // Not in the history yet: its first event is a moment behind the cluster's claim.
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        refused.contains("runs in the cluster at")
            && refused.contains(&format!("kubectl patch pipelinerun slow -n {ns}")),
        "{refused}"
    );
    must(kubectl(
        &[
            "patch",
            "pipelinerun",
            "slow",
            "-n",
            ns,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"status":"Cancelled"}}"#,
        ],
        None,
    ));
    until("slow to stop", Duration::from_secs(120), || {
        done(&get(ns, "pipelineruns", "slow"))
    });
}

/// `slipway logs -f RUN` against the server, started again until the run is in its history;
/// returns once the first step's line is out, with the follower's remaining output to join.
fn follow(
    s: &super::server::Served,
    client: &Path,
    ns: &str,
    run: &str,
) -> std::thread::JoinHandle<String> {
    use std::io::{BufRead as _, BufReader};
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(120), "never followed");
        let mut cmd = Command::new(bin());
        cmd.args(["logs", "-f", run, "-n", ns])
            .env("SLIPWAY_HOME", client)
            .env("SLIPWAY_SERVER", &s.url)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(t) = &s.token {
            cmd.env("SLIPWAY_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("slipway logs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        match lines.next() {
            Some(Ok(first)) => {
                assert!(first.contains("said-by-first"), "{first}");
                return std::thread::spawn(move || {
                    let rest: Vec<String> = lines.map_while(Result::ok).collect();
                    let status = child.wait().expect("logs ends");
                    assert!(status.success(), "{rest:?}");
                    rest.join("\n")
                });
            }
            // Not in the history yet, or no line yet.
            _ => {
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
}

/// A controller flag on a server that runs no controller is a mistake, said as such (exit 2).
#[test]
fn serve_refuses_controller_flags_without_the_controller() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--namespace", "ci"])
        .env("SLIPWAY_HOME", home.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("slipway runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("--namespace is a flag of the controller, and this server runs none"),
        "{err}"
    );
    assert!(err.contains("add --controller"), "{err}");
}

/// A server killed mid-run: its history says `Interrupted` once it is back; once the Lease
/// lapses its controller adopts the run, which ends `Succeeded` in the cluster and the history.
#[test]
fn serve_with_the_controller_killed_mid_run_adopts_it_in_both_records() {
    let _serial = serial();
    crds();
    let ns = "ctl-served-kill";
    namespace(ns);
    let home = tempfile::tempdir().expect("tempdir");
    let config = emulator().config.to_string_lossy().to_string();
    let start = |identity: &str| {
        super::server::Served::start_with(
            home.path(),
            &[
                "--controller",
                "-n",
                ns,
                "--lease-name",
                "slipway-served-kill",
                "--identity",
                identity,
            ],
            &[("SLIPWAY_CONFIG", &config)],
        )
    };
    let first = start("first");
    must(kubectl(&["create", "-n", ns, "-f", "-"], Some(ADOPTED)));
    let in_history = |s: &super::server::Served| {
        let (status, body) = s.http(
            "GET",
            &format!("/apis/tekton.dev/v1/namespaces/{ns}/pipelineruns/adopted"),
            "",
        );
        (status == 200).then(|| serde_json::from_str::<Value>(&body).expect("json"))
    };
    until("the second task to start", Duration::from_secs(120), || {
        in_history(&first).is_some() && running(&get(ns, "taskruns", "adopted-second"))
    });
    first.kill();
    let second = start("second");
    // The restarted server says what it knows (the run stopped under it) before the Lease
    // lapses; the adopting controller then records the run again, to its end.
    let run = in_history(&second).expect("still in the history");
    assert_eq!(
        succeeded(&run),
        ("False".into(), "Interrupted".into()),
        "{run}"
    );
    until(
        "the run to end in the cluster",
        Duration::from_secs(180),
        || done(&get(ns, "pipelineruns", "adopted")),
    );
    let pr = get(ns, "pipelineruns", "adopted");
    assert_eq!(succeeded(&pr), ("True".into(), "Succeeded".into()), "{pr}");
    until("the history to say so", Duration::from_secs(30), || {
        in_history(&second).is_some_and(|r| succeeded(&r).0 == "True")
    });
    let run = in_history(&second).expect("in the history");
    assert_eq!(run["metadata"]["uid"], pr["metadata"]["uid"], "{run}");
    assert_eq!(run["status"]["results"], pr["status"]["results"], "{run}");
}
