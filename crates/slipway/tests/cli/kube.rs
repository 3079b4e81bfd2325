//! The Kubernetes executor against `../shared/kube-emu`, an API server and kubelet emulator
//! that runs Pods as containers of the test Docker daemon (`scripts/docker-env.sh`). Slipway's
//! own image (binary, loader, libraries) is built and pushed with `slipway build` itself.
//!
//! Where the emulator differs from a cluster: no `pods/exec`, no probes (a running container
//! is ready at once), no network between Pods (`--network none`), PVCs are plain directories.
//! So readiness probes themselves (sidecar readiness is tested as "running") and anything that
//! dials a Service are not tested here; tests marked `needs cluster` run against a real one
//! (README: the Kubernetes executor).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{bin, condition, conformance, fixtures, objects, slipway_with, text};

/// One emulator for this test process, stopped (its containers removed) when the process ends.
pub(crate) struct Emulator {
    pub(crate) kubeconfig: PathBuf,
    pub(crate) server: String,
    /// The config file for runs: the Docker config's registry rewrites plus `[kubernetes]`.
    pub(crate) config: PathBuf,
    _dir: tempfile::TempDir,
    /// The watchdog shell: it outlives this process on purpose, to stop the emulator.
    _watchdog: Child,
}

pub(crate) fn emulator() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(|| start_emulator(""))
}

/// A second emulator with two nodes, `a` and `b`, for placement.
fn two_nodes() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(|| start_emulator("--node a --node b"))
}

/// Starts an emulator with `args` added to its command line.
fn start_emulator(args: &str) -> Emulator {
    {
        let docker = crate::docker::env();
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let log = dir.path().join("emu.log");
        let emu = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kube-emu/emu.py");
        // A watchdog shell stops the emulator with SIGTERM when this test process is gone
        // (nextest runs each test in its own process; statics are never dropped).
        let script = format!(
            "python3 '{}' --port 0 --kubeconfig '{}' --docker-host '{}' {args} >'{}' 2>&1 & e=$!; \
             while kill -0 {} 2>/dev/null && kill -0 $e 2>/dev/null; do sleep 0.5; done; \
             kill -TERM $e 2>/dev/null; wait $e",
            emu.display(),
            kubeconfig.display(),
            docker.docker.host,
            log.display(),
            std::process::id()
        );
        let watchdog = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the emulator starts");
        let started = Instant::now();
        loop {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if said.contains("kube-emu listening on") && kubeconfig.exists() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "kube-emu did not start (needs PyYAML: Debian's python3-yaml):\n{said}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let server = std::fs::read_to_string(&kubeconfig)
            .expect("kubeconfig")
            .lines()
            .find_map(|l| l.trim().strip_prefix("server:"))
            .map(|s| s.trim().trim_matches('"').to_string())
            .expect("the kubeconfig names the server");
        let config = dir.path().join("slipway.toml");
        write_config(&config, &kubeconfig, "");
        Emulator {
            kubeconfig,
            server,
            config,
            _dir: dir,
            _watchdog: watchdog,
        }
    }
}

/// The Docker config (its registry rewrites) with a `[kubernetes]` section.
fn write_config(path: &Path, kubeconfig: &Path, extra: &str) {
    let base = std::fs::read_to_string(&crate::docker::env().docker.config).expect("config");
    std::fs::write(
        path,
        format!(
            "{base}\n[kubernetes]\nkubeconfig = \"{}\"\nimage = \"{}\"\n{extra}",
            kubeconfig.display(),
            slipway_image()
        ),
    )
    .expect("write config");
}

/// Slipway's image at `127.0.0.1:5000/slipway-test/slipway:HASH`, built with `slipway build`
/// by `scripts/image.sh` from this binary, once per binary.
fn slipway_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        use sha2::Digest as _;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut digest = sha2::Sha256::new();
        for input in [
            PathBuf::from(bin()),
            root.join("scripts/image.sh"),
            root.join("deploy/image/Containerfile"),
        ] {
            digest.update(std::fs::read(input).expect("read an input of the image"));
        }
        let hash = hex::encode(&digest.finalize()[..8]);
        let image = format!("127.0.0.1:5000/slipway-test/slipway:{hash}");
        let probe = http(
            "127.0.0.1:5000",
            "HEAD",
            &format!("/v2/slipway-test/slipway/manifests/{hash}"),
        );
        if probe.0 == 200 {
            return image;
        }
        // The image users deploy (`deploy/image/Containerfile`), staged and built by the same
        // script, from this binary.
        let home = tempfile::tempdir().expect("tempdir");
        let out = Command::new("bash")
            .arg(root.join("scripts/image.sh"))
            .args([image.as_str(), "--mode", "privileged"])
            .env("SLIPWAY_BIN", bin())
            .env("SLIPWAY_HOME", home.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("scripts/image.sh runs");
        assert!(
            out.status.success(),
            "scripts/image.sh (slipway build of its own image) failed:\n{}",
            text(&out.stderr)
        );
        image
    })
}

/// A plain-HTTP request to `host`; the status and the body.
fn http(host: &str, method: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
    );
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = text(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// A request to the emulator's API.
pub(crate) fn api(method: &str, path: &str) -> (u16, Value) {
    api_on(emulator(), method, path)
}

/// A request to `emu`'s API.
fn api_on(emu: &Emulator, method: &str, path: &str) -> (u16, Value) {
    let host = emu.server.trim_start_matches("http://").to_string();
    let (status, body) = http(&host, method, path);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Names of the objects slipway made for run `o` that are still there (`pods`,
/// `persistentvolumeclaims`); tests share the emulator, so each looks at its own run.
fn left(resource: &str, o: &Value) -> Vec<String> {
    let uid = o["metadata"]["uid"].as_str().expect("uid");
    let (_, list) = api(
        "GET",
        &format!("/api/v1/{resource}?labelSelector=slipway.dev%2Frun-uid%3D{uid}"),
    );
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn kube_env(config: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("SLIPWAY_CONFIG", config.to_string_lossy().into_owned()),
        ("SLIPWAY_EXECUTOR", "kubernetes".to_string()),
    ]
}

fn run_with(config: &Path, home: &Path, file: &Path) -> (Output, Value) {
    let env = kube_env(config);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let f = file.to_string_lossy();
    let out = slipway_with(
        home,
        &["run", "-f", &f, "-o", "json", "--plain", "--logs"],
        &env,
    );
    let mut objs = objects(&out);
    assert_eq!(objs.len(), 1, "{}", text(&out.stderr));
    (out, objs.remove(0))
}

fn run(home: &Path, file: &Path) -> (Output, Value) {
    run_with(&emulator().config, home, file)
}

fn yaml(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write yaml");
    p
}

fn message(o: &Value) -> String {
    o["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn kube_taskrun_two_steps_results_and_logs() {
    let home = tempfile::tempdir().expect("tempdir");
    let big = "x".repeat(10_000);
    let file = yaml(
        home.path(),
        "tr.yaml",
        &format!(
            r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: kube-two-steps}}
spec:
  taskSpec:
    results: [{{name: greeting}}, {{name: big}}]
    steps:
      - name: write
        image: mirror.gcr.io/alpine
        script: |
          echo hello from $(echo alpine | cut -c1-3)
          printf hi > $(results.greeting.path)
          printf {big} > $(results.big.path)
      - name: read
        image: mirror.gcr.io/busybox
        command: [cat]
        args: ["$(results.greeting.path)"]
"#
        ),
    );
    let (out, o) = run(home.path(), &file);
    assert_eq!(
        condition(&o),
        ("True".into(), "Succeeded".into()),
        "{}",
        text(&out.stderr)
    );
    let results = &o["status"]["results"];
    assert_eq!(results[0]["value"], "hi");
    // Past Kubernetes' 4 KB termination message: results travel in the log stream.
    assert_eq!(results[1]["value"].as_str().map(str::len), Some(10_000));
    let log = text(&out.stderr);
    assert!(
        log.contains("[kube-two-steps/write] hello from alp"),
        "{log}"
    );
    assert!(log.contains("[kube-two-steps/read] hi"), "{log}");
    assert!(
        !log.contains("slipway-results"),
        "reports stay out of the log:\n{log}"
    );
    assert!(
        left("pods", &o).is_empty(),
        "pods left: {:?}",
        left("pods", &o)
    );
}

#[test]
fn kube_failing_step_fails_the_taskrun_and_skips_the_rest() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = yaml(
        home.path(),
        "tr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: kube-fails}
spec:
  taskSpec:
    steps:
      - {name: ok, image: mirror.gcr.io/busybox, script: "echo fine"}
      - {name: boom, image: mirror.gcr.io/busybox, script: "echo about to fail; exit 3"}
      - {name: never, image: mirror.gcr.io/busybox, script: "echo should not run"}
"#,
    );
    let (out, o) = run(home.path(), &file);
    assert_eq!(condition(&o), ("False".into(), "Failed".into()));
    assert_eq!(out.status.code(), Some(1));
    let steps = &o["status"]["steps"];
    assert_eq!(steps[1]["terminated"]["exitCode"], 3, "{o}");
    assert_eq!(steps[2]["terminated"]["reason"], "Skipped", "{o}");
    assert!(!text(&out.stderr).contains("should not run"));
    assert!(left("pods", &o).is_empty());
}

/// Tekton's example corpus, as under the host and Docker executors: every example reaches its
/// Tekton outcome with each TaskRun a Pod of the emulator, and no Pod or claim is left.
#[test]
fn kube_conformance_examples_reach_their_tekton_outcome() {
    let env = kube_env(&emulator().config);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    conformance(&env);
}

#[test]
fn kube_pipeline_passes_a_workspace_through_a_claim_it_deletes_after() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = yaml(
        home.path(),
        "pr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: kube-ws}
spec:
  workspaces:
    - name: shared
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 16Mi}}
  pipelineSpec:
    workspaces: [{name: shared}]
    tasks:
      - name: write
        workspaces: [{name: data, workspace: shared}]
        taskSpec:
          workspaces: [{name: data}]
          steps:
            - {name: w, image: mirror.gcr.io/busybox, script: "echo carried > $(workspaces.data.path)/note"}
      - name: read
        runAfter: [write]
        workspaces: [{name: data, workspace: shared}]
        taskSpec:
          workspaces: [{name: data}]
          results: [{name: note}]
          steps:
            - {name: r, image: mirror.gcr.io/busybox, script: "cat $(workspaces.data.path)/note | tee $(results.note.path)"}
"#,
    );
    let (out, o) = run(home.path(), &file);
    assert_eq!(
        condition(&o),
        ("True".into(), "Succeeded".into()),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("[read/r] carried"),
        "{}",
        text(&out.stderr)
    );
    assert!(left("pods", &o).is_empty());
    assert!(
        left("persistentvolumeclaims", &o).is_empty(),
        "the run's claim is deleted with it"
    );
}

#[test]
fn kube_image_pull_failure_names_the_image() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = yaml(
        home.path(),
        "tr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: kube-pull}
spec:
  taskSpec:
    steps:
      - {name: s, image: "127.0.0.1:5000/slipway-test/no-such-image:1", command: ["true"]}
"#,
    );
    let (_, o) = run(home.path(), &file);
    assert_eq!(
        condition(&o),
        ("False".into(), "TaskRunImagePullFailed".into())
    );
    assert!(message(&o).contains("no-such-image"), "{}", message(&o));
    assert!(left("pods", &o).is_empty());
}

#[test]
fn kube_unschedulable_pod_fails_after_the_start_timeout_with_the_schedulers_words() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("slipway.toml");
    write_config(&config, &emulator().kubeconfig, "start_timeout = \"3s\"\n");
    let file = yaml(
        home.path(),
        "tr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: kube-unschedulable}
spec:
  podTemplate:
    nodeSelector: {pool: no-such-pool}
  taskSpec:
    steps:
      - {name: s, image: mirror.gcr.io/busybox, command: ["true"]}
"#,
    );
    let (out, o) = run_with(&config, home.path(), &file);
    assert_eq!(condition(&o), ("False".into(), "PodStartTimeout".into()));
    assert!(
        message(&o).contains("did not start within 3s: Unschedulable: 0/1 nodes are available"),
        "{}",
        message(&o)
    );
    assert!(
        text(&out.stderr).contains("Unschedulable"),
        "shown while pending:\n{}",
        text(&out.stderr)
    );
    assert!(left("pods", &o).is_empty());
}

#[test]
fn kube_oom_killed_step_is_step_oom() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_, o) = run(home.path(), &fixtures().join("docker/oom.yaml"));
    assert_eq!(condition(&o), ("False".into(), "StepOOM".into()));
    assert!(left("pods", &o).is_empty());
}

/// `podTemplate.env` over the step's, a `podTemplate` volume only a cluster has (downwardAPI),
/// the step's whole securityContext, `enableServiceLinks` and `topologySpreadConstraints`: seen
/// from inside the step where the emulator applies them, and in the kept Pod's spec.
#[test]
fn kube_pod_template_env_volumes_and_security_context_reach_the_pod() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("slipway.toml");
    write_config(
        &config,
        &emulator().kubeconfig,
        "pod_retention = \"always\"\n",
    );
    let file = yaml(
        home.path(),
        "tr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: kube-pod-fields}
spec:
  workspaces:
    - {name: cache, csi: {driver: inline.storage.example}}
  podTemplate:
    env: [{name: WHO, value: pod}, {name: EXTRA, value: added}]
    enableServiceLinks: false
    topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway}
    volumes:
      - name: info
        downwardAPI:
          items: [{path: name, fieldRef: {fieldPath: metadata.name}}]
  taskSpec:
    workspaces: [{name: cache}]
    steps:
      - name: look
        image: mirror.gcr.io/busybox
        env: [{name: WHO, value: step}]
        volumeMounts: [{name: info, mountPath: /info}]
        securityContext:
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
        script: |
          echo "who=$WHO extra=$EXTRA pod=$(cat /info/name)"
          touch /not-here 2>/dev/null && echo root-writable || echo root-read-only
          grep CapEff /proc/self/status
          echo kept > $(workspaces.cache.path)/f && echo "cache=$(cat $(workspaces.cache.path)/f)"
"#,
    );
    let (out, o) = run_with(&config, home.path(), &file);
    let log = text(&out.stderr);
    assert_eq!(condition(&o), ("True".into(), "Succeeded".into()), "{log}");
    let pods = left("pods", &o);
    assert_eq!(pods.len(), 1, "kept: {pods:?}");
    assert!(
        log.contains(&format!("who=pod extra=added pod={}", pods[0])),
        "{log}"
    );
    assert!(log.contains("root-read-only"), "{log}");
    assert!(log.contains("cache=kept"), "a csi workspace:\n{log}");
    assert!(
        log.contains("CapEff:\t0000000000000000"),
        "every capability dropped:\n{log}"
    );
    let (_, pod) = api(
        "GET",
        &format!("/api/v1/namespaces/default/pods/{}", pods[0]),
    );
    let spec = &pod["spec"];
    assert_eq!(spec["enableServiceLinks"], false, "{spec}");
    assert!(
        spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["csi"]["driver"] == "inline.storage.example"),
        "{spec}"
    );
    assert_eq!(
        spec["topologySpreadConstraints"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    let (status, _) = api(
        "DELETE",
        &format!("/api/v1/namespaces/default/pods/{}", pods[0]),
    );
    assert_eq!(status, 200);
}

/// Tekton's affinity assistant: TaskRuns sharing a ReadWriteOnce claim follow the first Pod
/// that used it. The first task is sent to node `b`; the emulator's scheduler would put the
/// later Pods on `a` (fewest Pods, then by name), as it does the task that uses no claim.
#[test]
fn kube_taskruns_sharing_a_claim_land_on_the_node_of_the_first() {
    let emu = two_nodes();
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("slipway.toml");
    write_config(&config, &emu.kubeconfig, "pod_retention = \"always\"\n");
    let file = yaml(
        home.path(),
        "pr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: kube-coschedule}
spec:
  taskRunSpecs:
    - pipelineTaskName: first
      podTemplate:
        nodeSelector: {kubernetes.io/hostname: b}
  workspaces:
    - name: shared
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 16Mi}}
  pipelineSpec:
    workspaces: [{name: shared}]
    tasks:
      - name: first
        workspaces: [{name: data, workspace: shared}]
        taskSpec:
          workspaces: [{name: data}]
          steps:
            - {name: w, image: mirror.gcr.io/busybox, script: "echo carried > $(workspaces.data.path)/note"}
      - name: left
        runAfter: [first]
        workspaces: [{name: data, workspace: shared}]
        taskSpec:
          workspaces: [{name: data}]
          steps:
            - {name: r, image: mirror.gcr.io/busybox, script: "cat $(workspaces.data.path)/note"}
      - name: right
        runAfter: [first]
        workspaces: [{name: data, workspace: shared}]
        taskSpec:
          workspaces: [{name: data}]
          steps:
            - {name: r, image: mirror.gcr.io/busybox, script: "cat $(workspaces.data.path)/note"}
      - name: free
        runAfter: [first]
        taskSpec:
          steps:
            - {name: s, image: mirror.gcr.io/busybox, script: "true"}
"#,
    );
    let (out, o) = run_with(&config, home.path(), &file);
    assert_eq!(
        condition(&o),
        ("True".into(), "Succeeded".into()),
        "{}",
        text(&out.stderr)
    );
    let uid = o["metadata"]["uid"].as_str().expect("uid");
    let (_, list) = api_on(
        emu,
        "GET",
        &format!("/api/v1/pods?labelSelector=slipway.dev%2Frun-uid%3D{uid}"),
    );
    let mut nodes = std::collections::BTreeMap::new();
    for p in list["items"].as_array().expect("pods") {
        let task = p["metadata"]["annotations"]["slipway.dev/taskrun"]
            .as_str()
            .expect("the TaskRun annotation")
            .trim_start_matches("kube-coschedule-")
            .to_string();
        nodes.insert(
            task,
            p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
        );
        let name = p["metadata"]["name"].as_str().expect("name");
        api_on(
            emu,
            "DELETE",
            &format!("/api/v1/namespaces/default/pods/{name}"),
        );
    }
    let want: std::collections::BTreeMap<String, String> =
        [("first", "b"), ("left", "b"), ("right", "b"), ("free", "a")]
            .into_iter()
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect();
    assert_eq!(nodes, want);
}

/// Steps wait for the sidecars as in Tekton: the executor sees them ready in the Pod's status
/// and sets `tekton.dev/ready`, which the first step reads through a downward API file. (The
/// emulator runs no probes: a running container is ready at once.)
#[test]
fn kube_first_step_starts_once_the_sidecars_are_ready() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = yaml(
        home.path(),
        "tr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: kube-sidecar-ready}
spec:
  timeout: 60s
  taskSpec:
    sidecars:
      - {name: server, image: mirror.gcr.io/busybox, script: "sleep 3600"}
      - {name: once, image: mirror.gcr.io/busybox, script: "true"}
    steps:
      - {name: first, image: mirror.gcr.io/busybox, script: "echo sidecars=$(cat /tekton/downward/ready)"}
      - {name: second, image: mirror.gcr.io/busybox, script: "echo after"}
"#,
    );
    let (out, o) = run(home.path(), &file);
    let log = text(&out.stderr);
    assert_eq!(condition(&o), ("True".into(), "Succeeded".into()), "{log}");
    assert!(
        log.contains("[kube-sidecar-ready/first] sidecars=READY"),
        "{log}"
    );
    assert!(log.contains("[kube-sidecar-ready/second] after"), "{log}");
    assert!(left("pods", &o).is_empty());
}

/// A TCP proxy to `upstream` that cuts every followed log stream (`/log?...follow=true`
/// without `sinceTime`) once, a second after it starts; how many it cut is counted.
fn log_cutting_proxy(upstream: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let cuts = Arc::new(AtomicUsize::new(0));
    let counted = cuts.clone();
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let following = Arc::new(AtomicBool::new(false));
            let (mut c_in, mut s_out) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let flag = following.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let head = String::from_utf8_lossy(&buf[..n]);
                    if let Some(line) = head.lines().next() {
                        let cut = line.contains("/log?")
                            && line.contains("follow=true")
                            && !line.contains("sinceTime");
                        flag.store(cut, Ordering::SeqCst);
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_out.shutdown(Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            let cuts = counted.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                let mut since: Option<Instant> = None;
                let _ = s_in.set_read_timeout(Some(Duration::from_millis(100)));
                loop {
                    if following.load(Ordering::SeqCst) {
                        let started = *since.get_or_insert_with(Instant::now);
                        if started.elapsed() > Duration::from_secs(1) {
                            cuts.fetch_add(1, Ordering::SeqCst);
                            let _ = c_out.shutdown(Shutdown::Both);
                            let _ = s_in.shutdown(Shutdown::Both);
                            return;
                        }
                    } else {
                        since = None;
                    }
                    match s_in.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if c_out.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => break,
                    }
                }
                let _ = c_out.shutdown(Shutdown::Write);
            });
        }
    });
    (addr, cuts)
}

/// A log stream cut mid-step (by a proxy in front of the emulator) is resumed from the last
/// line's time: every line arrives once, in order.
#[test]
fn kube_broken_log_stream_resumes_without_repeating_lines() {
    let emu = emulator();
    let home = tempfile::tempdir().expect("tempdir");
    let (proxy, cuts) = log_cutting_proxy(emu.server.trim_start_matches("http://"));
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        std::fs::read_to_string(&emu.kubeconfig)
            .expect("kubeconfig")
            .replace(&emu.server, &format!("http://{proxy}")),
    )
    .expect("write kubeconfig");
    let config = home.path().join("slipway.toml");
    write_config(&config, &kubeconfig, "");
    let file = yaml(
        home.path(),
        "tr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: kube-log-resume}
spec:
  timeout: 2m
  taskSpec:
    steps:
      - name: count
        image: mirror.gcr.io/busybox
        script: |
          i=1
          while [ $i -le 40 ]; do echo "line $i"; i=$((i+1)); sleep 0.1; done
"#,
    );
    let (out, o) = run_with(&config, home.path(), &file);
    let log = text(&out.stderr);
    assert_eq!(condition(&o), ("True".into(), "Succeeded".into()), "{log}");
    assert!(
        cuts.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the proxy cut no stream"
    );
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("[kube-log-resume/count] "))
        .collect();
    let want: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want, "{log}");
}

fn spawn_run(config: &Path, home: &Path, file: &Path) -> Child {
    Command::new(bin())
        .args([
            "run",
            "-f",
            &file.to_string_lossy(),
            "-o",
            "json",
            "--plain",
        ])
        .env("SLIPWAY_HOME", home)
        .envs(kube_env(config))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slipway starts")
}

/// Waits until the Pod of TaskRun `taskrun` runs; its name.
fn running_pod(taskrun: &str) -> String {
    let started = Instant::now();
    loop {
        let (_, list) = api(
            "GET",
            &format!(
                "/api/v1/pods?labelSelector=tekton.dev%2FtaskRun%3D{taskrun}&fieldSelector=status.phase%3DRunning"
            ),
        );
        if let Some(name) = list["items"][0]["metadata"]["name"].as_str() {
            return name.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no Pod ran");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sleeper(dir: &Path, name: &str) -> PathBuf {
    yaml(
        dir,
        "tr.yaml",
        &format!(
            r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: {name}}}
spec:
  taskSpec:
    steps:
      - {{name: nap, image: mirror.gcr.io/busybox, script: "echo napping; sleep 60"}}
"#
        ),
    )
}

#[test]
fn kube_pod_deleted_from_outside_fails_the_taskrun_and_ctrl_c_deletes_the_pod() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = &emulator().config;
    let child = spawn_run(config, home.path(), &sleeper(home.path(), "kube-deleted"));
    let pod = running_pod("kube-deleted");
    let (status, _) = api("DELETE", &format!("/api/v1/namespaces/default/pods/{pod}"));
    assert_eq!(status, 200);
    let out = child.wait_with_output().expect("slipway ends");
    let o = objects(&out).pop().expect("object");
    assert_eq!(
        condition(&o),
        ("False".into(), "PodDeleted".into()),
        "{}",
        text(&out.stderr)
    );
    assert!(message(&o).contains(&pod), "{}", message(&o));

    let started = Instant::now();
    let child = spawn_run(config, home.path(), &sleeper(home.path(), "kube-ctrl-c"));
    running_pod("kube-ctrl-c");
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("slipway ends");
    let o = objects(&out).pop().expect("object");
    assert_eq!(condition(&o).1, "TaskRunCancelled", "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "cancelled, not waited out"
    );
    assert!(
        left("pods", &o).is_empty(),
        "Ctrl-C deletes the Pod: {:?}",
        left("pods", &o)
    );
}

/// A Pod lost mid-step (deleted, as a drain's eviction or a lost node does) is a failed attempt:
/// with `retries` the TaskRun runs again in a Pod of its own and succeeds, the first attempt
/// kept in `retriesStatus` with its reason.
#[test]
fn kube_a_lost_pod_is_an_attempt_that_retries_repeat_in_a_new_pod() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = yaml(
        home.path(),
        "tr.yaml",
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: kube-retried}
spec:
  retries: 1
  taskSpec:
    steps:
      - {name: nap, image: mirror.gcr.io/busybox, script: "if test $(context.task.retry-count) = 1; then sleep 3; else sleep 60; fi"}
"#,
    );
    let child = spawn_run(&emulator().config, home.path(), &file);
    let first = running_pod("kube-retried");
    let (status, _) = api(
        "DELETE",
        &format!("/api/v1/namespaces/default/pods/{first}"),
    );
    assert_eq!(status, 200);
    // The retry's Pod, while its step sleeps.
    let started = Instant::now();
    let second = loop {
        let name = running_pod("kube-retried");
        if name != first {
            break name;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no second Pod");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("slipway ends");
    let o = objects(&out).pop().expect("object");
    assert_eq!(
        condition(&o),
        ("True".into(), "Succeeded".into()),
        "{}",
        text(&out.stderr)
    );
    let retried = &o["status"]["retriesStatus"];
    assert_eq!(
        retried[0]["conditions"][0]["reason"], "PodDeleted",
        "{retried}"
    );
    assert!(
        second.starts_with("kube-retried-pod-"),
        "the retry ran in a Pod of its own: {second} after {first}"
    );
}

#[test]
fn kube_no_cluster_is_a_usage_error_naming_the_server() {
    let home = tempfile::tempdir().expect("tempdir");
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )
    .expect("kubeconfig");
    let file = sleeper(home.path(), "kube-nowhere");
    let f = file.to_string_lossy();
    let kc = kubeconfig.to_string_lossy();
    let args = [
        "run",
        "-f",
        &f,
        "--executor",
        "kubernetes",
        "--kube-image",
        "x/y:1",
    ];
    let out = slipway_with(home.path(), &args, &[("KUBECONFIG", &kc)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("failed to reach the Kubernetes API server at http://127.0.0.1:9/"),
        "{err}"
    );
    let out = slipway_with(
        home.path(),
        &args,
        &[
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ("HOME", &home.path().to_string_lossy()),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("failed to find a Kubernetes cluster"),
        "{}",
        text(&out.stderr)
    );
}

/// On a real cluster (kind): `KUBECONFIG` set, `SLIPWAY_TEST_KUBE_IMAGE` naming slipway's
/// image in a registry the cluster pulls from, and the test images reachable by their names.
#[test]
#[ignore = "needs cluster"]
fn kube_real_cluster_runs_the_corpus() {
    let image = std::env::var("SLIPWAY_TEST_KUBE_IMAGE").expect("SLIPWAY_TEST_KUBE_IMAGE");
    conformance(&[
        ("SLIPWAY_EXECUTOR", "kubernetes"),
        ("SLIPWAY_KUBE_IMAGE", &image),
    ]);
}

fn docker(args: &[&str]) -> Output {
    let out = Command::new("docker")
        .env("DOCKER_HOST", &crate::docker::env().docker.host)
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// `/hello.txt` of image `image`, and its `Config.Env`, read through Docker.
fn file_and_env(image: &str) -> (Vec<u8>, String) {
    let env = text(&docker(&["image", "inspect", "-f", "{{json .Config.Env}}", image]).stdout);
    let id = text(&docker(&["create", image, "/none"]).stdout)
        .trim()
        .to_string();
    let archive = docker(&["cp", &format!("{id}:/hello.txt"), "-"]).stdout;
    docker(&["rm", &id]);
    let mut entries = tar::Archive::new(archive.as_slice());
    let mut content = Vec::new();
    for entry in entries.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        std::io::Read::read_to_end(&mut entry, &mut content).expect("read");
    }
    (content, env.trim().to_string())
}

/// A step with Kaniko's image builds in its own Pod with slipway's builder standing in (the
/// emulator's Pods have no network, so it writes a tar, not a push): the image Docker loads from
/// it has the file and config that `docker build` gives the same context.
#[test]
fn kube_kaniko_step_builds_in_its_pod_what_docker_build_builds() {
    let home = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let dockerfile = "FROM scratch\\nCOPY hello.txt /hello.txt\\nENV GREETING=hi\\n";
    let tag = format!(
        "127.0.0.1:5000/slipway-test/kaniko-in-pod:{:x}",
        fastrand::u64(..)
    );
    let file = yaml(
        home.path(),
        "kaniko.yaml",
        &format!(
            r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: kube-kaniko}}
spec:
  taskSpec:
    results: [{{name: IMAGE_DIGEST}}]
    volumes: [{{name: out, hostPath: {{path: "{out}"}}}}]
    steps:
      - name: context
        image: mirror.gcr.io/busybox
        script: |
          mkdir -p /workspace/ctx && cd /workspace/ctx
          printf 'hello from the pod\n' > hello.txt
          printf '{dockerfile}' > Dockerfile
      - name: build
        image: gcr.io/kaniko-project/executor:v1.23.2
        args:
          - --dockerfile=Dockerfile
          - --context=dir:///workspace/ctx
          - --destination={tag}
          - --no-push
          - --tar-path=/out/image.tar
          - --digest-file=$(results.IMAGE_DIGEST.path)
        volumeMounts: [{{name: out, mountPath: /out}}]
"#,
            out = out_dir.path().display()
        ),
    );
    let (out, o) = run(home.path(), &file);
    let log = text(&out.stderr);
    assert_eq!(condition(&o), ("True".into(), "Succeeded".into()), "{log}");
    assert!(
        log.contains("slipway's builder stands in for gcr.io/kaniko-project/executor:v1.23.2"),
        "{log}"
    );
    let digest = o["status"]["results"][0]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{}",
        o["status"]
    );
    let tar = out_dir.path().join("image.tar");
    docker(&["load", "-i", &tar.to_string_lossy()]);

    // The same context through `docker build` (the classic builder), the reference.
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(ctx.path().join("hello.txt"), "hello from the pod\n").expect("write");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        dockerfile.replace("\\n", "\n"),
    )
    .expect("write");
    let reference = format!("slipway-test/kaniko-reference:{:x}", fastrand::u64(..));
    docker(&[
        "build",
        "-q",
        "-t",
        &reference,
        &ctx.path().to_string_lossy(),
    ]);
    let (ours, ours_env) = file_and_env(&tag);
    let (theirs, theirs_env) = file_and_env(&reference);
    assert_eq!(ours, b"hello from the pod\n");
    assert_eq!(ours, theirs);
    assert_eq!(ours_env, theirs_env);
    docker(&["rmi", &tag, &reference]);
    assert!(
        left("pods", &o).is_empty(),
        "pods left: {:?}",
        left("pods", &o)
    );
}
