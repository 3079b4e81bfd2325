//! Pre-warming end to end against real parts: one `slipway serve` (its controller), one
//! `slipway agent --server` per containerd node of `scripts/containerd-env.sh`, the loopback
//! registries, `slipway prewarm`, and `ctr` on each node to see what arrived.

use std::collections::HashMap;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::Served;
use crate::{bin, text};

pub(super) const BIG: &str = "127.0.0.1:5000/slipway-test/big:latest";
pub(super) const SMALL: &str = "127.0.0.1:5000/library/bash:latest";
pub(super) const NODES: [usize; 3] = [1, 2, 3];

pub(super) fn socket(n: usize) -> String {
    format!("/tmp/slipway-containerd/node-{n}/containerd.sock")
}

/// A server and agents on the three containerd nodes, which it holds (locked) while it lives.
struct Cluster {
    home: tempfile::TempDir,
    server: Served,
    agents: HashMap<usize, Child>,
    _locks: Vec<std::fs::File>,
}

impl Cluster {
    /// The environment (idempotent scripts), the nodes locked in order, a server.
    fn start() -> Cluster {
        environment();
        let locks = NODES
            .iter()
            .map(|n| {
                let f =
                    std::fs::File::create(format!("/tmp/slipway-containerd/node-{n}/test.lock"))
                        .expect("lock file");
                f.lock().expect("lock the node");
                f
            })
            .collect();
        let home = tempfile::tempdir().expect("tempdir");
        let server = serve(home.path(), "127.0.0.1:0");
        Cluster {
            home,
            server,
            agents: HashMap::new(),
            _locks: locks,
        }
    }

    /// SIGKILLs the server and starts it again over the same home, at the same address.
    fn restart_server(&mut self, down: Duration) {
        let addr = self.server.url.trim_start_matches("http://").to_string();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.server.pid() as i32, libc::SIGKILL) };
        std::thread::sleep(down);
        let fresh = serve(self.home.path(), &addr);
        drop(std::mem::replace(&mut self.server, fresh));
    }

    fn log(&self, n: usize) -> PathBuf {
        self.home.path().join(format!("agent-{n}.log"))
    }

    /// Starts node `n`'s agent with labels.
    fn agent(&mut self, n: usize, labels: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(n))
            .expect("log");
        let mut cmd = Command::new(bin());
        cmd.args(["agent", "--node", &format!("node-{n}")])
            .args(["--cri-endpoint", &format!("unix://{}", socket(n))])
            .args(["--heartbeat", "1s", "--server", &self.server.url])
            .env("SLIPWAY_HOME", self.home.path())
            .env(
                "SLIPWAY_TOKEN",
                self.server.token.clone().unwrap_or_default(),
            )
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        for l in labels {
            cmd.args(["--label", l]);
        }
        self.agents.insert(n, cmd.spawn().expect("agent starts"));
    }

    /// SIGKILLs node `n`'s agent.
    fn kill(&mut self, n: usize) {
        if let Some(mut c) = self.agents.remove(&n) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `slipway ...` against the server.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        self.server.cli(self.home.path(), args)
    }

    fn get(&self, path: &str) -> Value {
        let (code, body) = self.server.http("GET", path, "");
        if code == 404 {
            return Value::Null;
        }
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("json")
    }

    fn job(&self, name: &str) -> Value {
        self.get(&format!(
            "/apis/apps.kruise.io/v1alpha1/namespaces/default/imagepulljobs/{name}"
        ))
    }

    fn node_image(&self, n: usize) -> Value {
        self.get(&format!(
            "/apis/apps.kruise.io/v1alpha1/nodeimages/node-{n}"
        ))
    }

    /// The status of `image`'s tag on node `n`.
    fn tag(&self, n: usize, image: &str) -> Value {
        let (name, tag) = image.rsplit_once(':').expect("tag");
        let ni = self.node_image(n);
        ni["status"]["imageStatuses"][name]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["tag"] == tag)
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn apply(&self, yaml: &str) {
        let file = self.home.path().join("apply.yaml");
        std::fs::write(&file, yaml).expect("write");
        let out = self.cli(&["apply", "-f", &file.display().to_string()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// The name `slipway prewarm` printed.
    fn created(out: &std::process::Output) -> String {
        let stdout = text(&out.stdout);
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("imagepulljob.apps.kruise.io/"))
            .and_then(|l| l.strip_suffix(" created"))
            .unwrap_or_else(|| panic!("no job created: {stdout}{}", text(&out.stderr)))
            .to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in NODES {
            self.kill(n);
        }
    }
}

/// The registries and the containerd nodes (idempotent scripts).
pub(super) fn environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for script in ["scripts/docker-env.sh", "scripts/containerd-env.sh"] {
        let out = Command::new("bash")
            .arg(root.join(script))
            .output()
            .expect("run the env script");
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    }
}

/// `slipway serve` over `home` at `addr`, giving up on the nodes after 6 s without a heartbeat.
fn serve(home: &Path, addr: &str) -> Served {
    let args = ["serve", "--listen", addr, "--node-grace", "6s"];
    Served::spawned(home, crate::spawn_with(home, &args, &[]))
}

pub(super) fn ctr(n: usize, args: &[&str]) -> String {
    let out = Command::new("ctr")
        .args(["--address", &socket(n), "-n", "k8s.io"])
        .args(args)
        .output()
        .expect("run ctr");
    text(&out.stdout)
}

/// Whether node `n` holds `image` (`ctr images ls`).
pub(super) fn has(n: usize, image: &str) -> bool {
    ctr(n, &["images", "ls", "-q"]).lines().any(|l| l == image)
}

/// Removes every name of `image`'s repository from node `n`, and the image-id names CRI adds
/// for the same manifests, so that containerd drops the content and the next pull fetches
/// every byte.
pub(super) fn forget(n: usize, image: &str) {
    let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
    for lease in ctr(n, &["leases", "ls", "-q"]).lines() {
        ctr(n, &["leases", "rm", lease]);
    }
    let rows: Vec<(String, String)> = ctr(n, &["images", "ls"])
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((cols.first()?.to_string(), cols.get(2)?.to_string()))
        })
        .collect();
    let ours = |r: &str| r.starts_with(&format!("{repo}:")) || r.starts_with(&format!("{repo}@"));
    let manifests: Vec<&String> = rows
        .iter()
        .filter(|(r, _)| ours(r))
        .map(|(_, d)| d)
        .collect();
    for (name, digest) in &rows {
        if manifests.contains(&digest) {
            ctr(n, &["images", "rm", "--sync", name]);
        }
    }
    assert!(!has(n, image));
}

/// Sends `SIG{signal}` to node `n`'s containerd.
pub(super) fn signal(n: usize, signal: &str) {
    let pid = std::fs::read_to_string(format!("/tmp/slipway-containerd/node-{n}/containerd.pid"))
        .expect("pid file");
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), pid.trim()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// Resumes a frozen containerd however the test ends.
pub(super) struct Thaw(pub(super) usize);

impl Drop for Thaw {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

pub(super) fn until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn time(v: &Value) -> f64 {
    let t = humantime::parse_rfc3339_weak(v.as_str().expect("a time")).expect("rfc 3339");
    t.duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[test]
fn jobs_by_names_and_labels_respect_parallelism_and_report_failures_in_the_runtime_s_words() {
    let mut c = Cluster::start();
    for n in NODES {
        c.agent(n, &[if n == 2 { "pool=b" } else { "pool=a" }]);
        forget(n, BIG);
    }
    let out = c.cli(&[
        "prewarm",
        BIG,
        "--names",
        "node-1,node-2,node-3",
        "--parallelism",
        "1",
        "--wait",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("3 of 3 node(s) succeeded, 0 failed (job has completed)"),
        "{stdout}"
    );
    for n in NODES {
        assert!(
            stdout.contains(&format!("node-{n}  Succeeded  125.9 MB")),
            "{stdout}"
        );
        assert!(has(n, BIG), "node-{n} holds the image");
    }
    // Parallelism 1: the nodes' pulls, as the agents recorded them, never overlap.
    let mut spans: Vec<(f64, f64)> = NODES
        .iter()
        .map(|&n| {
            let t = c.tag(n, BIG);
            assert_eq!(t["phase"], "Succeeded", "{t}");
            assert_eq!(t["completedBytes"], t["totalBytes"], "{t}");
            (time(&t["startTime"]), time(&t["completionTime"]))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "pulls overlap: {spans:?}");
    }
    let job = c.job(&Cluster::created(&out));
    assert_eq!(job["status"]["desired"], 3);
    assert!(job["status"]["startTime"].is_string());

    // By labels, an image that does not exist: the pool's nodes fail with containerd's words.
    let missing = "127.0.0.1:5000/slipway-test/not-there:latest";
    let out = c.cli(&[
        "prewarm",
        missing,
        "--selector",
        "pool=a",
        "--parallelism",
        "2",
        "--backoff-limit",
        "0",
        "--wait",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("0 of 2 node(s) succeeded, 2 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  node-1: ") && stdout.contains("not found"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("node-2"),
        "node-2 is not in the pool: {stdout}"
    );
    let job = c.job(&Cluster::created(&out));
    assert_eq!(
        job["status"]["failedNodes"],
        serde_json::json!(["node-1", "node-3"])
    );
}

#[test]
fn a_node_that_joins_later_is_covered_and_a_killed_agent_catches_up() {
    let mut c = Cluster::start();
    for n in NODES {
        forget(n, SMALL);
    }
    c.agent(1, &[]);
    c.agent(2, &[]);
    c.apply(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {{name: warm-small}}\n\
         spec:\n  image: {SMALL}\n  parallelism: 3\n  completionPolicy: {{type: Never}}\n"
    ));
    until("two nodes", Duration::from_secs(60), || {
        c.job("warm-small")["status"]["succeeded"] == 2
    });
    c.agent(3, &[]);
    until("the node that joined", Duration::from_secs(60), || {
        c.job("warm-small")["status"]["succeeded"] == 3
    });
    assert!(NODES.iter().all(|&n| has(n, SMALL)));
    let job = c.job("warm-small");
    assert!(
        job["status"]["completionTime"].is_null(),
        "Never jobs go on: {job}"
    );

    // An agent SIGKILLed mid-pull and started again finishes the pull.
    forget(2, BIG);
    let out = c.cli(&["prewarm", BIG, "--names", "node-2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name = Cluster::created(&out);
    until("a pull under way", Duration::from_secs(60), || {
        c.tag(2, BIG)["phase"] == "Pulling"
    });
    c.kill(2);
    c.agent(2, &[]);
    until("the job", Duration::from_secs(120), || {
        c.job(&name)["status"]["completionTime"].is_string()
    });
    let s = &c.job(&name)["status"];
    assert_eq!(
        (s["succeeded"].clone(), s["failed"].clone()),
        (1.into(), 0.into()),
        "{s}"
    );
    assert!(has(2, BIG));

    // An agent killed for good: its node fails the job with the reason, after the grace.
    c.kill(3);
    forget(3, BIG);
    let out = c.cli(&["prewarm", BIG, "--names", "node-3", "--wait"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let job = c.job(&Cluster::created(&out));
    assert_eq!(
        job["status"]["failedNodes"],
        serde_json::json!(["node-3"]),
        "{job}"
    );
}

#[test]
fn deleting_a_job_stops_its_pulls_and_finished_jobs_expire() {
    let mut c = Cluster::start();
    c.agent(1, &[]);
    forget(1, BIG);
    c.apply(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {{name: warm-big}}\n\
         spec:\n  image: {BIG}\n  selector: {{names: [node-1]}}\n"
    ));
    until("a pull under way", Duration::from_secs(60), || {
        c.tag(1, BIG)["phase"] == "Pulling"
    });
    // The node's containerd is frozen so that the pull cannot finish before the deletion
    // reaches the agent (two one-second polls); it resumes once the agent dropped the call.
    signal(1, "STOP");
    let thaw = Thaw(1);
    let (code, body) = c.server.http(
        "DELETE",
        "/apis/apps.kruise.io/v1alpha1/namespaces/default/imagepulljobs/warm-big",
        "",
    );
    assert_eq!(code, 200, "{body}");
    until("the tag to go", Duration::from_secs(10), || {
        c.node_image(1)["spec"]["images"]
            .as_object()
            .is_none_or(|m| m.is_empty())
    });
    std::thread::sleep(Duration::from_secs(3));
    drop(thaw);
    std::thread::sleep(Duration::from_secs(5));
    let log = std::fs::read_to_string(c.log(1)).expect("log");
    assert!(
        !log.contains(&format!("{BIG}  Succeeded")),
        "the pull went on: {log}"
    );
    assert!(!has(1, BIG), "the pull was stopped");

    // TTL: a finished job is deleted, and its tags with it.
    c.apply(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {{name: warm-ttl}}\n\
         spec:\n  image: {SMALL}\n  selector: {{names: [node-1]}}\n  completionPolicy: {{ttlSecondsAfterFinished: 2}}\n"
    ));
    until(
        "the job to complete and expire",
        Duration::from_secs(60),
        || c.job("warm-ttl").is_null(),
    );
    until("its tag to go", Duration::from_secs(10), || {
        c.node_image(1)["spec"]["images"]
            .as_object()
            .is_none_or(|m| m.is_empty())
    });
}

#[test]
fn pull_secrets_open_the_private_registry_without_showing_the_password() {
    let mut c = Cluster::start();
    let env = std::fs::read_to_string("/tmp/slipway-docker/private-registry.env").expect("env");
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .expect(k)
            .to_string()
    };
    let (registry, user, password) = (
        var("SLIPWAY_TEST_AUTH_REGISTRY"),
        var("SLIPWAY_TEST_AUTH_USER"),
        var("SLIPWAY_TEST_AUTH_PASSWORD"),
    );
    let image = format!("{registry}/private/busybox:1");
    c.agent(1, &[]);
    forget(1, &image);
    // Without credentials the registry refuses, in containerd's words.
    let out = c.cli(&[
        "prewarm",
        &image,
        "--names",
        "node-1",
        "--backoff-limit",
        "0",
        "--wait",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("401") || stdout.contains("nauthorized"),
        "{stdout}"
    );
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#);
    let data = base64::engine::general_purpose::STANDARD.encode(config);
    c.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: reg}}\ntype: kubernetes.io/dockerconfigjson\n\
         data:\n  .dockerconfigjson: {data}\n"
    ));
    let out = c.cli(&[
        "prewarm",
        &image,
        "--names",
        "node-1",
        "--pull-secret",
        "reg",
        "--wait",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(has(1, &image));
    let log = std::fs::read_to_string(c.log(1)).expect("agent log");
    let everything = format!("{stdout}{log}{}", c.node_image(1));
    assert!(!everything.contains(&password), "the password leaked");
    // A node not asked to use the Secret is not handed it.
    let (code, _) = c
        .server
        .http("GET", "/api/v1/nodes/node-2/pullsecrets/default/reg", "");
    assert_eq!(code, 403);
}

#[test]
fn the_build_push_prewarm_example_lands_the_new_image_on_every_node() {
    let mut c = Cluster::start();
    for n in NODES {
        c.agent(n, &[]);
    }
    let image = format!(
        "127.0.0.1:5000/slipway-test/prewarmed-{:x}:v1",
        fastrand::u64(..)
    );
    let secret = c.home.path().join("token-secret.yaml");
    std::fs::write(
        &secret,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: slipway-token}}\nstringData:\n  token: {}\n",
            c.server.token.clone().unwrap_or_default()
        ),
    )
    .expect("write");
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/build-push-prewarm.yaml");
    let out = crate::slipway_with(
        c.home.path(),
        &[
            "run",
            "-f",
            &example.display().to_string(),
            "-f",
            &secret.display().to_string(),
            "--logs",
            "--plain",
            "-p",
            &format!("image={image}"),
            "-p",
            &format!("server={}", c.server.url),
            "-p",
            &format!("slipway={}", bin()),
            "-p",
            "parallelism=3",
        ],
        &[("SLIPWAY_EXECUTOR", "host")],
    );
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("3 of 3 node(s) succeeded, 0 failed"), "{log}");
    let token = c.server.token.clone().unwrap_or_default();
    assert!(!log.contains(&token), "the token was printed");
    for n in NODES {
        assert!(has(n, &image), "node-{n} lacks {image}");
    }
}

#[test]
fn a_containerd_stopped_mid_job_and_restarted_is_retried_until_the_node_succeeds() {
    let mut c = Cluster::start();
    c.agent(3, &[]);
    forget(3, BIG);
    let out = c.cli(&["prewarm", BIG, "--names", "node-3", "--backoff-limit", "6"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name = Cluster::created(&out);
    until("a pull under way", Duration::from_secs(60), || {
        c.tag(3, BIG)["phase"] == "Pulling"
    });
    signal(3, "KILL");
    until("a failed attempt", Duration::from_secs(30), || {
        std::fs::read_to_string(c.log(3)).is_ok_and(|l| l.contains("failed, retrying"))
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let restarted = Command::new("bash")
        .arg(root.join("scripts/containerd-env.sh"))
        .output()
        .expect("restart the node");
    assert!(restarted.status.success(), "{}", text(&restarted.stderr));
    until("the job", Duration::from_secs(180), || {
        c.job(&name)["status"]["completionTime"].is_string()
    });
    let s = &c.job(&name)["status"];
    assert_eq!(
        (s["succeeded"].clone(), s["failed"].clone()),
        (1.into(), 0.into()),
        "{s}"
    );
    assert!(has(3, BIG));
}

/// The big image through the port the containerd nodes know as a plain-HTTP registry (5002,
/// `scripts/containerd-env.sh`), where [`Flaky`] forwards to the loopback registry.
const FLAKY_BIG: &str = "127.0.0.1:5002/slipway-test/big:latest";

/// A registry that goes away and comes back: port 5002 forwarding to the loopback registry,
/// closed (listener gone, open connections cut) and opened again at will.
struct Flaky {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Flaky {
    fn open() -> Flaky {
        let listener = TcpListener::bind("127.0.0.1:5002").expect("port 5002 is free");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, c) = (stop.clone(), conns.clone());
        let accept = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((down, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = down.set_nonblocking(false);
                let Ok(up) = TcpStream::connect("127.0.0.1:5000") else {
                    continue;
                };
                let mut held = c.lock().expect("lock");
                for (mut from, mut to) in [
                    (
                        down.try_clone().expect("clone"),
                        up.try_clone().expect("clone"),
                    ),
                    (
                        up.try_clone().expect("clone"),
                        down.try_clone().expect("clone"),
                    ),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
                held.extend([down, up]);
            }
        });
        Flaky {
            stop,
            conns,
            accept: Some(accept),
        }
    }

    /// Stops listening and cuts every connection.
    fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for c in self.conns.lock().expect("lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.close();
    }
}

#[test]
fn a_registry_that_stops_mid_job_is_retried_once_it_is_back() {
    let mut c = Cluster::start();
    c.agent(2, &[]);
    forget(2, BIG);
    forget(2, FLAKY_BIG);
    let mut registry = Flaky::open();
    let out = c.cli(&[
        "prewarm",
        FLAKY_BIG,
        "--names",
        "node-2",
        "--backoff-limit",
        "6",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name = Cluster::created(&out);
    until("a pull under way", Duration::from_secs(60), || {
        c.tag(2, FLAKY_BIG)["phase"] == "Pulling"
    });
    registry.close();
    until("a failed attempt", Duration::from_secs(60), || {
        std::fs::read_to_string(c.log(2)).is_ok_and(|l| l.contains("failed, retrying"))
    });
    let log = std::fs::read_to_string(c.log(2)).expect("log");
    let said = log
        .lines()
        .find(|l| l.contains("failed, retrying"))
        .unwrap_or_default();
    assert!(
        said.contains("127.0.0.1:5002"),
        "the failure does not name the registry: {said}"
    );
    assert!(
        c.job(&name)["status"]["completionTime"].is_null(),
        "the job ended while the registry was away"
    );
    let _registry = Flaky::open();
    until("the job", Duration::from_secs(180), || {
        c.job(&name)["status"]["completionTime"].is_string()
    });
    let s = &c.job(&name)["status"];
    assert_eq!(
        (s["succeeded"].clone(), s["failed"].clone()),
        (1.into(), 0.into()),
        "{s}"
    );
    assert!(has(2, FLAKY_BIG));
}

#[test]
fn an_agent_keeps_pulling_while_the_server_is_away_and_catches_up() {
    let mut c = Cluster::start();
    c.agent(1, &[]);
    forget(1, BIG);
    let out = c.cli(&["prewarm", BIG, "--names", "node-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name = Cluster::created(&out);
    until("a pull under way", Duration::from_secs(60), || {
        c.tag(1, BIG)["phase"] == "Pulling"
    });
    c.restart_server(Duration::from_secs(4));
    let log = std::fs::read_to_string(c.log(1)).expect("log");
    assert!(
        log.contains("trying again in"),
        "the agent did not notice: {log}"
    );
    // The pull went on meanwhile; the status the agent writes once the server is back says so.
    until("the job", Duration::from_secs(90), || {
        c.job(&name)["status"]["completionTime"].is_string()
    });
    assert_eq!(c.job(&name)["status"]["succeeded"], 1);
    let t = c.tag(1, BIG);
    assert_eq!(t["phase"], "Succeeded", "{t}");
    assert!(has(1, BIG));
}

#[test]
fn bad_input_and_unreachable_servers_are_named_with_exit_2() {
    environment();
    let home = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = crate::slipway(home.path(), args);
        (out.status.code(), text(&out.stderr))
    };
    let (code, err) = run(&["prewarm", BIG]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--server"), "{err}");
    let (code, err) = run(&["prewarm", "Not An Image!", "--server", "http://127.0.0.1:9"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&[
        "agent",
        "--node",
        "node-1",
        "--server",
        "http://127.0.0.1:9",
        "--cri-endpoint",
        &format!("unix://{}", socket(1)),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("http://127.0.0.1:9"), "{err}");
    let (code, err) = run(&[
        "agent",
        "--node",
        "Node_1",
        "--server",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid node name"), "{err}");
    let (code, err) = run(&[
        "agent",
        "--node",
        "n1",
        "--label",
        "zone",
        "--server",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not KEY=VALUE"), "{err}");
}

#[test]
fn an_image_list_becomes_one_job_per_image_and_each_lands() {
    let mut c = Cluster::start();
    c.agent(1, &[]);
    let busybox = "127.0.0.1:5000/library/busybox:latest";
    forget(1, SMALL);
    forget(1, busybox);
    c.apply(&format!(
        "apiVersion: apps.kruise.io/v1beta1\nkind: ImageListPullJob\nmetadata: {{name: warm-list}}\n\
         spec:\n  images: [{SMALL}, {busybox}]\n  selector: {{names: [node-1]}}\n"
    ));
    until("the list", Duration::from_secs(60), || {
        c.get("/apis/apps.kruise.io/v1alpha1/namespaces/default/imagelistpulljobs/warm-list")["status"]
            ["succeeded"]
            == 2
    });
    let jobs = c.get("/apis/apps.kruise.io/v1alpha1/namespaces/default/imagepulljobs");
    let owned: Vec<&Value> = jobs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| j["metadata"]["ownerReferences"][0]["name"] == "warm-list")
        .collect();
    assert_eq!(owned.len(), 2, "{jobs}");
    assert!(has(1, SMALL) && has(1, busybox));
    let (code, _) = c.server.http(
        "DELETE",
        "/apis/apps.kruise.io/v1alpha1/namespaces/default/imagelistpulljobs/warm-list",
        "",
    );
    assert_eq!(code, 200);
    until("its jobs to go", Duration::from_secs(10), || {
        c.get("/apis/apps.kruise.io/v1alpha1/namespaces/default/imagepulljobs")["items"]
            .as_array()
            .is_none_or(|i| i.is_empty())
    });
}
