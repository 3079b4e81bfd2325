//! The Kubernetes executor against `../shared/kube-emu`, an API server and kubelet emulator
//! that runs Pods as containers of the test Docker daemon (`scripts/docker-env.sh`). Slipway's
//! own image (binary, loader, libraries) is built and pushed with `slipway build` itself.
//!
//! Where the emulator differs from a cluster: no `pods/exec`, no probes (a running container
//! is ready at once), no network between Pods (`--network none`), PVCs are plain directories.
//! So sidecar readiness and anything that dials a Service are not tested here; tests marked
//! `needs cluster` run against a real one (README: the Kubernetes executor).

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
    EMU.get_or_init(|| {
        let docker = crate::docker::env();
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let log = dir.path().join("emu.log");
        let emu = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kube-emu/emu.py");
        // A watchdog shell stops the emulator with SIGTERM when this test process is gone
        // (nextest runs each test in its own process; statics are never dropped).
        let script = format!(
            "python3 '{}' --port 0 --kubeconfig '{}' --docker-host '{}' >'{}' 2>&1 & e=$!; \
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
    })
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
/// from this binary (stripped), its loader and the libraries `ldd` names, once per binary.
fn slipway_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        use sha2::Digest as _;
        let binary = std::fs::read(bin()).expect("read the binary");
        let hash = hex::encode(&sha2::Sha256::digest(&binary)[..8]);
        let image = format!("127.0.0.1:5000/slipway-test/slipway:{hash}");
        let probe = http(
            "127.0.0.1:5000",
            "HEAD",
            &format!("/v2/slipway-test/slipway/manifests/{hash}"),
        );
        if probe.0 == 200 {
            return image;
        }
        let ctx = tempfile::tempdir().expect("tempdir");
        let dir = ctx.path().join("tekton/bin");
        std::fs::create_dir_all(dir.join("lib")).expect("mkdir");
        let stripped = Command::new("strip")
            .arg("-o")
            .arg(dir.join("slipway"))
            .arg(bin())
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(bin(), dir.join("slipway")).expect("copy the binary");
        }
        let ldd = Command::new("ldd").arg(bin()).output().expect("ldd runs");
        for lib in text(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/') && w.contains(".so"))
        {
            let target = if lib.contains("ld-linux") {
                dir.join("ld.so")
            } else {
                dir.join("lib")
                    .join(Path::new(lib).file_name().expect("name"))
            };
            std::fs::copy(lib, target).expect("copy a library");
        }
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY tekton /tekton\n",
        )
        .expect("Dockerfile");
        let home = tempfile::tempdir().expect("tempdir");
        let ctx_arg = ctx.path().to_string_lossy().into_owned();
        let out = slipway_with(
            home.path(),
            &[
                "build",
                "-c",
                &ctx_arg,
                "-d",
                &image,
                "--mode",
                "privileged",
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "slipway build of its own image failed:\n{}",
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

/// GET on the emulator's API.
pub(crate) fn api(method: &str, path: &str) -> (u16, Value) {
    let host = emulator().server.trim_start_matches("http://").to_string();
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
