//! The Docker executor against a real daemon and real registries, which
//! `scripts/docker-env.sh` starts (idempotent; every test process calls it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{bin, condition, conformance, fixtures, objects, slipway_with, text};

/// One container engine the script started: slipway's config for it, and its address.
pub(super) struct Daemon {
    pub(super) config: PathBuf,
    pub(super) host: String,
}

impl Daemon {
    fn read(config: PathBuf) -> Daemon {
        let toml = std::fs::read_to_string(&config).expect("config written");
        let host = toml
            .lines()
            .find_map(|l| l.strip_prefix("host = "))
            .map(|h| h.trim_matches('"').to_string())
            .expect("config names the daemon");
        Daemon { config, host }
    }
}

/// The environment the script prepared: dockerd, Podman's API service, the registries.
pub(super) struct Env {
    pub(super) docker: Daemon,
    podman: Daemon,
    private: std::collections::HashMap<String, String>,
}

pub(super) fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/docker-env.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("scripts/docker-env.sh runs");
        assert!(
            out.status.success(),
            "scripts/docker-env.sh failed:\n{}",
            text(&out.stderr)
        );
        let config = PathBuf::from(text(&out.stdout).lines().last().unwrap_or_default());
        let private = std::fs::read_to_string(config.with_file_name("private-registry.env"))
            .expect("private registry facts")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env {
            podman: Daemon::read(config.with_file_name("slipway-podman.toml")),
            docker: Daemon::read(config),
            private,
        }
    })
}

fn slipway_on(d: &Daemon, home: &Path, args: &[&str]) -> Output {
    let config = d.config.to_string_lossy().into_owned();
    slipway_with(
        home,
        args,
        &[("SLIPWAY_CONFIG", &config), ("SLIPWAY_EXECUTOR", "docker")],
    )
}

fn run_on(d: &Daemon, home: &Path, file: &Path) -> (Output, Value) {
    let f = file.to_string_lossy();
    let out = slipway_on(
        d,
        home,
        &["run", "-f", &f, "-o", "json", "--plain", "--logs"],
    );
    let mut objs = objects(&out);
    assert_eq!(objs.len(), 1, "{}", text(&out.stderr));
    (out, objs.remove(0))
}

fn run(home: &Path, file: &Path) -> (Output, Value) {
    run_on(&env().docker, home, file)
}

/// Containers an engine has that match a `docker ps` filter, running or not (the Docker CLI
/// speaks to Podman's compatible socket too).
fn containers_on(d: &Daemon, filter: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["-H", &d.host, "ps", "-aq", "--filter", filter])
        .output()
        .expect("docker CLI runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

fn containers(filter: &str) -> Vec<String> {
    containers_on(&env().docker, filter)
}

/// Containers the daemon still has for a run.
fn leftovers(run_uid: &str) -> Vec<String> {
    containers(&format!("label=dev.slipway.run={run_uid}"))
}

fn uid(o: &Value) -> String {
    o["metadata"]["uid"].as_str().expect("uid").to_string()
}

/// A step's lines from `--logs` (on stderr when stdout holds `-o json`).
fn step_log(out: &Output, step: &str) -> String {
    text(&out.stderr)
        .lines()
        .filter(|l| l.contains(&format!("/{step}]")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn docker_conformance_examples_reach_their_tekton_outcome() {
    conformance(&[
        ("SLIPWAY_EXECUTOR", "docker"),
        ("SLIPWAY_CONFIG", &env().docker.config.to_string_lossy()),
    ]);
}

/// Tekton's further examples (`conformance/tekton-pipeline`) under Docker.
#[test]
fn docker_tekton_pipeline_examples_reach_their_outcome() {
    crate::tekton_pipeline::check(
        1,
        &[
            ("SLIPWAY_EXECUTOR", "docker"),
            ("SLIPWAY_CONFIG", &env().docker.config.to_string_lossy()),
        ],
    );
}

/// The same executor against Podman's Docker-compatible API service.
#[test]
fn podman_conformance_examples_reach_their_tekton_outcome() {
    conformance(&[
        ("SLIPWAY_EXECUTOR", "docker"),
        ("SLIPWAY_CONFIG", &env().podman.config.to_string_lossy()),
    ]);
}

/// Sidecars (the pause image is imported into Podman too), OOM, and cleanup under Podman.
#[test]
fn podman_sidecars_oom_and_cleanup() {
    let podman = &env().podman;
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run_on(
        podman,
        home.path(),
        &fixtures().join("docker/sidecars.yaml"),
    );
    assert_eq!(condition(&o).0, "True", "{}", text(&out.stderr));
    assert!(step_log(&out, "fetch").contains("served by the sidecar"));
    let (_, oom) = run_on(podman, home.path(), &fixtures().join("docker/oom.yaml"));
    assert_eq!(condition(&oom), ("False".into(), "StepOOM".into()));
    for o in [&o, &oom] {
        let left = containers_on(podman, &format!("label=dev.slipway.run={}", uid(o)));
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn docker_steps_cannot_write_other_steps_directories() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run(home.path(), &fixtures().join("docker/internal-dirs.yaml"));
    assert_eq!(condition(&o).0, "True", "{}", text(&out.stderr));
    assert!(
        step_log(&out, "second").contains("exit code of the first step: 0"),
        "{}",
        text(&out.stderr)
    );
    assert!(leftovers(&uid(&o)).is_empty());
}

#[test]
fn docker_sidecars_share_the_network_once_ready() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run(home.path(), &fixtures().join("docker/sidecars.yaml"));
    assert_eq!(
        condition(&o),
        ("True".into(), "Succeeded".into()),
        "{}",
        text(&out.stderr)
    );
    let log = step_log(&out, "fetch");
    assert!(log.contains("served by the sidecar"), "{log}");
    assert!(log.contains("from-tcp"), "{log}");
    assert!(leftovers(&uid(&o)).is_empty(), "sidecars left running");
}

#[test]
fn docker_step_contract_users_limits_entrypoint() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run(home.path(), &fixtures().join("docker/contract.yaml"));
    assert_eq!(
        condition(&o).0,
        "True",
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        step_log(&out, "ids")
            .contains("uid=1001 gid=3000 pwd=/workspace/deep/dir env=configmap-value"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        step_log(&out, "override").contains("uid=2000 gid=3000"),
        "{}",
        text(&out.stderr)
    );
    let limits = step_log(&out, "limits");
    assert!(limits.contains(&format!("memory={}", 64 << 20)), "{limits}");
    // cgroup v2 says `50000 100000`, v1 the quota and period on their own: both are half a CPU.
    assert!(limits.contains("cpu=50000 100000"), "{limits}");
    assert!(
        step_log(&out, "entrypoint").contains("from-entrypoint with args"),
        "{}",
        text(&out.stderr)
    );
    // `busybox:latest` is docker.io's; the mirror in the config served it.
    assert!(
        text(&out.stderr).contains("pulling 127.0.0.1:5000/library/busybox:latest"),
        "{}",
        text(&out.stderr)
    );
    assert!(step_log(&out, "hub").contains("through the mirror"));
}

/// A Task's own volume mounted at `/workspace` or `/tekton/home` replaces Tekton's directory,
/// as in a pod, instead of failing with a duplicate mount point.
#[test]
fn docker_a_task_volume_may_take_over_workspace_and_home() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run(home.path(), &fixtures().join("docker/own-workspace.yaml"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(condition(&o), ("True".into(), "Succeeded".into()));
    let logs = text(&out.stderr);
    assert!(
        logs.contains("[own-workspace/read] work") && logs.contains("[own-workspace/read] home"),
        "{logs}"
    );
}

#[test]
fn docker_missing_image_fails_with_the_registry_message() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run(home.path(), &fixtures().join("docker/missing-image.yaml"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        condition(&o),
        ("False".into(), "TaskRunImagePullFailed".into())
    );
    let message = o["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    // The rewrite sent it to the loopback registry, which answered in its own words.
    assert!(
        message.contains("127.0.0.1:5000/library/no-such-image:1.0")
            && message.contains("manifest unknown"),
        "{message}"
    );
    assert!(leftovers(&uid(&o)).is_empty());
}

/// Every image is checked before anything starts, and one failure names each missing image
/// with the registry's reason; the steps are listed as never started.
#[test]
fn docker_every_missing_image_is_named_in_one_failure() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run(home.path(), &fixtures().join("docker/missing-images.yaml"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        condition(&o),
        ("False".into(), "TaskRunImagePullFailed".into())
    );
    let message = o["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("failed to pull 3 images: "),
        "{message}"
    );
    for (image, what) in [
        ("no-such-sidecar:1.0", "sidecar `cache`"),
        ("no-such-image:1.0", "step `first`"),
        ("no-such-image:2.0", "step `second`"),
    ] {
        assert!(
            message.contains(&format!("image `mirror.gcr.io/{image}` for {what}: ")),
            "{message}"
        );
        assert!(
            message.contains(&format!("127.0.0.1:5000/library/{image}")),
            "{message}"
        );
    }
    assert_eq!(message.matches(" not found: ").count(), 3, "{message}");
    assert!(!message.contains("`fine`"), "{message}");
    assert!(!step_log(&out, "fine").contains("should not run"));
    let steps = o["status"]["steps"].as_array().cloned().unwrap_or_default();
    assert_eq!(steps.len(), 3, "{steps:?}");
    for s in &steps {
        assert_eq!(s["waiting"]["reason"], "TaskRunImagePullFailed", "{s}");
        assert!(s.get("terminated").is_none(), "{s}");
    }
    let name = o["metadata"]["name"].as_str().expect("name");
    let described = text(&slipway_on(&env().docker, home.path(), &["describe", name]).stdout);
    assert!(
        described.contains("/second  not started (TaskRunImagePullFailed)"),
        "{described}"
    );
    assert!(leftovers(&uid(&o)).is_empty());
}

#[test]
fn docker_out_of_memory_is_step_oom() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run(home.path(), &fixtures().join("docker/oom.yaml"));
    assert_eq!(
        condition(&o),
        ("False".into(), "StepOOM".into()),
        "{}\n{}",
        o["status"]["steps"],
        text(&out.stderr)
    );
    assert!(
        step_log(&out, "hog").contains(&format!("limit: {}", 16 << 20)),
        "{}",
        text(&out.stderr)
    );
    let step = &o["status"]["steps"][0];
    assert_eq!(step["terminated"]["reason"], "StepOOM", "{step}");
    assert!(leftovers(&uid(&o)).is_empty());
    // The same exit code without an OOM kill is an ordinary failure.
    let (_, o) = run(home.path(), &fixtures().join("docker/killed.yaml"));
    assert_eq!(condition(&o), ("False".into(), "Failed".into()));
    let step = &o["status"]["steps"][0];
    assert_eq!(step["terminated"]["exitCode"], 137, "{step}");
    assert_eq!(step["terminated"]["reason"], "Error", "{step}");
}

#[test]
fn docker_daemon_down_is_exit_2_naming_the_socket() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        "[docker]\nhost = \"unix:///nonexistent/docker.sock\"\n",
    )
    .expect("write config");
    let out = Command::new(bin())
        .args([
            "run",
            "-f",
            &fixtures().join("docker/oom.yaml").to_string_lossy(),
            "--executor",
            "docker",
        ])
        .env("SLIPWAY_HOME", home.path())
        .env("SLIPWAY_CONFIG", &config)
        .output()
        .expect("slipway runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unix:///nonexistent/docker.sock"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !home.path().join("db/runs.db").exists(),
        "nothing stored for a run that never started"
    );
}

#[test]
fn docker_config_typos_point_at_their_line() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("config.toml");
    std::fs::write(&config, "[docker]\nnetwork = \"none\"\nhots = \"x\"\n").expect("write");
    let out = Command::new(bin())
        .args([
            "run",
            "-f",
            &fixtures().join("docker/oom.yaml").to_string_lossy(),
        ])
        .env("SLIPWAY_HOME", home.path())
        .env("SLIPWAY_CONFIG", &config)
        .output()
        .expect("slipway runs");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("config.toml:3:1") && err.contains("hots"),
        "{err}"
    );
}

#[test]
fn docker_timeouts_and_failures_leave_no_container() {
    let home = tempfile::tempdir().expect("tempdir");
    // A step timeout kills the step; the TaskRun fails; sidecars and the pod go too.
    let file = home.path().join("timeout.yaml");
    let slow = std::fs::read_to_string(fixtures().join("docker/slow.yaml")).expect("fixture");
    std::fs::write(&file, slow.replace("  timeout: 1m", "  timeout: 3s")).expect("write");
    let started = Instant::now();
    let (out, o) = run(home.path(), &file);
    assert_eq!(
        condition(&o),
        ("False".into(), "TaskRunTimeout".into()),
        "{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(leftovers(&uid(&o)).is_empty(), "timeout left containers");
    // A failing step.
    let failing = home.path().join("failing.yaml");
    std::fs::write(
        &failing,
        slow.replace("sleep 300", "exit 3")
            .replace("  timeout: 1m\n", ""),
    )
    .expect("write");
    let (_, o) = run(home.path(), &failing);
    assert_eq!(condition(&o).0, "False");
    assert_eq!(o["status"]["steps"][0]["terminated"]["exitCode"], 3);
    assert!(leftovers(&uid(&o)).is_empty(), "failure left containers");
}

/// Containers whose name contains `name`.
fn named(name: &str) -> Vec<String> {
    containers(&format!("name={name}"))
}

fn wait_for_named(name: &str, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids = named(name);
        if ids.len() >= want || Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn docker_ctrl_c_and_sigkill_leave_no_container() {
    let e = env();
    let home = tempfile::tempdir().expect("tempdir");
    let spawn = |name: &str| {
        let file = home.path().join(format!("{name}.yaml"));
        let slow = std::fs::read_to_string(fixtures().join("docker/slow.yaml")).expect("fixture");
        std::fs::write(
            &file,
            slow.replace("generateName: slow-", &format!("name: {name}")),
        )
        .expect("write");
        Command::new(bin())
            .args([
                "run",
                "-f",
                &file.to_string_lossy(),
                "-o",
                "json",
                "--plain",
            ])
            .env("SLIPWAY_HOME", home.path())
            .env("SLIPWAY_CONFIG", &e.docker.config)
            .env("SLIPWAY_EXECUTOR", "docker")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("slipway starts")
    };
    // Ctrl-C: the step, the sidecar and the pod are stopped and removed before slipway exits.
    let name = format!("ctrl-c-{}", std::process::id());
    let child = spawn(&name);
    let prefix = format!("slipway-{name}-");
    assert_eq!(
        wait_for_named(&prefix, 3).len(),
        3,
        "pod, sidecar and step should be running"
    );
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("slipway ends");
    let o = objects(&out).pop().expect("object");
    assert_eq!(condition(&o).1, "TaskRunCancelled", "{}", text(&out.stderr));
    assert!(leftovers(&uid(&o)).is_empty(), "Ctrl-C left containers");
    assert!(named(&prefix).is_empty());

    // SIGKILL: nothing can clean up at once; the next slipway sweeps what the dead one left.
    let name = format!("sigkill-{}", std::process::id());
    let mut child = spawn(&name);
    let prefix = format!("slipway-{name}-");
    assert_eq!(wait_for_named(&prefix, 3).len(), 3);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(named(&prefix).len(), 3, "nobody removed them yet");
    let (_, o) = run(home.path(), &fixtures().join("docker/internal-dirs.yaml"));
    assert_eq!(condition(&o).0, "True");
    assert!(
        named(&prefix).is_empty(),
        "the next run swept the dead run's containers"
    );
}

/// A Docker config JSON holding the private registry's credentials.
fn private_credentials() -> String {
    use base64::Engine as _;
    let p = &env().private;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        p["SLIPWAY_TEST_AUTH_USER"], p["SLIPWAY_TEST_AUTH_PASSWORD"]
    ));
    format!(
        r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
        p["SLIPWAY_TEST_AUTH_REGISTRY"]
    )
}

fn private_fixture(dir: &Path, with_secret: bool) -> PathBuf {
    let registry = &env().private["SLIPWAY_TEST_AUTH_REGISTRY"];
    let config = private_credentials();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{config}'\n---\n"
    );
    let pod = if with_secret {
        "  podTemplate:\n    imagePullSecrets:\n    - name: regcred\n"
    } else {
        ""
    };
    let yaml = format!(
        "{secret}apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  generateName: private-\nspec:\n{pod}  taskSpec:\n    steps:\n    - name: hello\n      image: {registry}/private/busybox:1\n      imagePullPolicy: Always\n      script: echo pulled with a secret\n"
    );
    let file = dir.join(format!("private-{with_secret}.yaml"));
    std::fs::write(&file, yaml).expect("write");
    file
}

#[test]
fn docker_pull_secrets_open_a_private_registry() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, o) = run(home.path(), &private_fixture(home.path(), false));
    assert_eq!(
        condition(&o).1,
        "TaskRunImagePullFailed",
        "{}",
        text(&out.stderr)
    );
    let message = o["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        message.contains("auth") || message.contains("unauthorized"),
        "{message}"
    );
    let (out, o) = run(home.path(), &private_fixture(home.path(), true));
    assert_eq!(
        condition(&o).0,
        "True",
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(step_log(&out, "hello").contains("pulled with a secret"));
    // The same credentials from a Docker config file named in slipway's config.
    let docker_config = home.path().join("docker-config.json");
    std::fs::write(&docker_config, private_credentials()).expect("write");
    let config = home.path().join("slipway.toml");
    let base = std::fs::read_to_string(&env().docker.config).expect("config");
    std::fs::write(
        &config,
        base.replace(
            "[docker]\n",
            &format!("[docker]\nauth_file = \"{}\"\n", docker_config.display()),
        ),
    )
    .expect("write");
    let out = slipway_with(
        home.path(),
        &[
            "run",
            "-f",
            &private_fixture(home.path(), false).to_string_lossy(),
            "-o",
            "json",
        ],
        &[
            ("SLIPWAY_CONFIG", &config.to_string_lossy()),
            ("SLIPWAY_EXECUTOR", "docker"),
        ],
    );
    let o = objects(&out).pop().expect("object");
    assert_eq!(condition(&o).0, "True", "{}", text(&out.stderr));
    // Progress went to the terminal (plain lines here).
    assert!(
        text(&out.stderr).contains("pulling 127.0.0.1:") && text(&out.stderr).contains("pulled "),
        "{}",
        text(&out.stderr)
    );
}

/// The Docker executor's log path is bounded like the host's: a step flooding 256 MiB in lines
/// and 16 MiB in one line through the daemon's attach stream leaves `slipway serve` small, and
/// every byte is stored.
#[test]
fn docker_a_flood_through_the_daemon_is_stored_whole_in_bounded_memory() {
    use crate::flood::{CAP, peak_rss, run_to_end, stored, task_run};
    let home = tempfile::tempdir().expect("tempdir");
    let config = env().docker.config.to_string_lossy().into_owned();
    let s = crate::server::Served::start_with(
        home.path(),
        &[],
        &[("SLIPWAY_CONFIG", &config), ("SLIPWAY_EXECUTOR", "docker")],
    );
    let flood: u64 = 256 << 20;
    let long: u64 = 16 << 20;
    let body = task_run(
        "docker-flood",
        &[
            (
                "lines",
                "head -c 268435456 /dev/zero | tr '\\0' x | fold -w 1000",
            ),
            ("one-line", "head -c 16777216 /dev/zero | tr '\\0' y; echo"),
        ],
    );
    let started = Instant::now();
    let o = run_to_end(&s, &body, "docker-flood", Duration::from_secs(900));
    let peak = peak_rss(s.pid());
    eprintln!(
        "docker flood: {} MiB stored in {:.1}s; server peak RSS {:.1} MiB",
        (flood + long) >> 20,
        started.elapsed().as_secs_f64(),
        peak as f64 / (1 << 20) as f64
    );
    assert_eq!(o["status"]["conditions"][0]["reason"], "Succeeded", "{o}");
    assert!(peak < 200 << 20, "server peak RSS {peak} bytes");
    s.terminate();
    let steps = stored(home.path(), "docker-flood");
    assert_eq!(steps["lines"], (flood.div_ceil(1000), flood, 0));
    assert_eq!(steps["one-line"], (long / CAP, long, long / CAP - 1));
}
