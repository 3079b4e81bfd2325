//! Pre-warming on Kubernetes, end to end: `../shared/kube-emu` as the API server (the CRDs of
//! `deploy/prewarm/` applied with kubectl), `slipway prewarm-controller`, and one
//! `slipway agent --kube` per containerd node of `scripts/containerd-env.sh`, pulling for real.
//!
//! Where the emulator differs from a cluster: its Nodes here are API objects only (annotated
//! `kube-emu.io/no-kubelet`, so no kubelet of the emulator serves them) and their `Ready`
//! condition is set once, as a kubelet would keep it; the agents run as processes on this
//! machine, not as the DaemonSet's Pods (its hostPath socket would be this machine's anyway).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::prewarm::{BIG, NODES, SMALL, Thaw, environment, forget, has, signal, socket, until};
use super::{bin, text};

/// One emulator for this test process, with the CRDs and the nodes' Node objects.
struct Emulator {
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    /// Stops the emulator when this process is gone (statics are never dropped).
    _watchdog: Child,
}

fn emulator() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(|| {
        environment();
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let log = dir.path().join("emu.log");
        let emu = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kube-emu/emu.py");
        let script = format!(
            "python3 '{}' --port 0 --kubeconfig '{}' --docker-host unix:///tmp/slipway-docker/docker.sock >'{}' 2>&1 & e=$!; \
             while kill -0 {} 2>/dev/null && kill -0 $e 2>/dev/null; do sleep 0.5; done; \
             kill -TERM $e 2>/dev/null; wait $e",
            emu.display(),
            kubeconfig.display(),
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
        until("kube-emu to listen", Duration::from_secs(60), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("kube-emu listening on"))
                && kubeconfig.exists()
        });
        let e = Emulator {
            kubeconfig,
            _dir: dir,
            _watchdog: watchdog,
        };
        let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prewarm/crds.yaml");
        e.kubectl(&["apply", "-f", &crds.display().to_string()]);
        for n in NODES {
            e.add_node(n);
        }
        e
    })
}

impl Emulator {
    fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Creates the Node of containerd node `n` (pool `b` for node 2, `a` otherwise), `Ready`,
    /// with no kubelet of the emulator behind it.
    fn add_node(&self, n: usize) {
        let pool = if n == 2 { "b" } else { "a" };
        self.create(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-{n}\n  labels: {{pool: {pool}}}\n  \
             annotations: {{kube-emu.io/no-kubelet: \"true\"}}\nstatus:\n  conditions:\n  \
             - {{type: Ready, status: \"True\", reason: KubeletReady}}\n"
        ));
    }

    fn create(&self, yaml: &str) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), yaml).expect("write");
        self.kubectl(&["create", "-f", &file.path().display().to_string()]);
    }

    fn get(&self, what: &str) -> Value {
        let out = Command::new("kubectl")
            .args(["get", "-o", "json"])
            .args(what.split(' '))
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl runs");
        if !out.status.success() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

/// The controller and the agents of the locked containerd nodes, stopped when dropped.
struct Prewarming {
    emu: &'static Emulator,
    home: tempfile::TempDir,
    children: HashMap<String, Child>,
    _locks: Vec<std::fs::File>,
}

impl Prewarming {
    fn start() -> Prewarming {
        let emu = emulator();
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
        let mut p = Prewarming {
            emu,
            home: tempfile::tempdir().expect("tempdir"),
            children: HashMap::new(),
            _locks: locks,
        };
        p.spawn("controller", &["prewarm-controller"]);
        for n in NODES {
            let endpoint = format!("unix://{}", socket(n));
            p.spawn(
                &format!("agent-{n}"),
                &["agent", "--kube", "--cri-endpoint", &endpoint],
            );
        }
        p
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.home.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    fn spawn(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.home.path().join(format!("{name}.log"))).expect("log");
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env("KUBECONFIG", &self.emu.kubeconfig)
            .env("SLIPWAY_HOME", self.home.path())
            .env("SLIPWAY_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        if let Some(n) = name.strip_prefix("agent-") {
            // As the DaemonSet sets it from the downward API.
            cmd.env("NODE_NAME", format!("node-{n}"));
        }
        self.children
            .insert(name.to_string(), cmd.spawn().expect("slipway starts"));
    }

    /// Creates an ImagePullJob `name` for `image` with the given spec lines, and waits until
    /// its status says it completed.
    fn job(&self, name: &str, image: &str, spec: &str) -> Value {
        self.emu.create(&format!(
            "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {{name: {name}, namespace: default}}\n\
             spec:\n  image: {image}\n{spec}"
        ));
        let what = format!("imagepulljobs.apps.kruise.io {name} -n default");
        let mut job = Value::Null;
        let started = Instant::now();
        while job["status"]["completionTime"].is_null() {
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "job {name} did not complete: {job}\ncontroller: {}\nagents: {}{}{}",
                self.log("controller"),
                self.log("agent-1"),
                self.log("agent-2"),
                self.log("agent-3")
            );
            std::thread::sleep(Duration::from_millis(300));
            job = self.emu.get(&what);
        }
        job
    }
}

impl Prewarming {
    /// Stops `name` with SIGTERM, as Kubernetes stops a Pod (a controller gives its Lease up),
    /// and SIGKILL when it takes longer than 10 s.
    fn stop(&mut self, name: &str) {
        let Some(mut c) = self.children.remove(name) else {
            return;
        };
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while c.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Prewarming {
    fn drop(&mut self) {
        let names: Vec<String> = self.children.keys().cloned().collect();
        for name in names {
            self.stop(&name);
        }
    }
}

#[test]
fn jobs_created_through_the_api_land_on_the_nodes_they_select_and_a_missing_image_fails_in_containerd_s_words()
 {
    let p = Prewarming::start();
    for n in NODES {
        forget(n, SMALL);
        forget(n, BIG);
    }
    // By names: every node pulls, and says so in the job's status and its NodeImage's.
    let job = p.job(
        "by-names",
        SMALL,
        "  selector: {names: [node-1, node-2, node-3]}\n  parallelism: 3\n",
    );
    let s = &job["status"];
    assert_eq!(
        (&s["desired"], &s["succeeded"], &s["failed"]),
        (&3.into(), &3.into(), &0.into()),
        "{job}"
    );
    assert_eq!(s["message"], "job has completed", "{job}");
    for n in NODES {
        assert!(has(n, SMALL), "node-{n} lacks {SMALL}");
    }
    // kubectl shows the CRD's printer columns, as OpenKruise's.
    let table = p.emu.kubectl(&[
        "get",
        "imagepulljobs.apps.kruise.io",
        "by-names",
        "-n",
        "default",
    ]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "NAME", "TOTAL", "ACTIVE", "SUCCEED", "FAILED", "AGE", "MESSAGE"
        ],
        "{table}"
    );
    assert_eq!(rows[1][..5], ["by-names", "3", "0", "3", "0"], "{table}");
    let table = p
        .emu
        .kubectl(&["get", "nodeimages.apps.kruise.io", "node-1"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "DESIRED", "PULLING", "SUCCEED", "FAILED", "AGE"],
        "{table}"
    );
    // By label: only the node labelled pool=b, with its bytes counted from containerd.
    let job = p.job("by-label", BIG, "  selector: {matchLabels: {pool: b}}\n");
    assert_eq!(
        (&job["status"]["desired"], &job["status"]["succeeded"]),
        (&1.into(), &1.into()),
        "{job}"
    );
    assert!(has(2, BIG), "node-2 lacks {BIG}");
    assert!(
        !has(1, BIG) && !has(3, BIG),
        "a node outside the selector pulled"
    );
    assert!(
        p.log("agent-2").contains(&format!("{BIG}  Succeeded")),
        "{}",
        p.log("agent-2")
    );
    // A missing image: the node fails, the job says which, the agent says containerd's words.
    let missing = "127.0.0.1:5000/slipway-test/never-pushed:1";
    let job = p.job(
        "missing",
        missing,
        "  selector: {names: [node-3]}\n  pullPolicy: {backoffLimit: 0}\n",
    );
    assert_eq!(job["status"]["failed"], 1, "{job}");
    assert_eq!(
        job["status"]["failedNodes"],
        serde_json::json!(["node-3"]),
        "{job}"
    );
    let log = p.log("agent-3");
    assert!(
        log.contains(&format!("{missing}  Failed")) && log.contains("not found"),
        "{log}"
    );
    // Deleted jobs release their tags; the agent sees that through its watch and its status
    // follows (one entry per tag still asked for, other tests' jobs may hold some), written
    // through the status subresource over the controller's spec.
    p.emu.kubectl(&[
        "delete",
        "-n",
        "default",
        "imagepulljobs.apps.kruise.io",
        "by-names",
        "by-label",
    ]);
    until(
        "node-2's NodeImage to drop the jobs",
        Duration::from_secs(30),
        || {
            let ni = p.emu.get("nodeimages.apps.kruise.io node-2");
            let tags: Vec<&Value> = ni["spec"]["images"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
                .flat_map(|i| i["tags"].as_array().into_iter().flatten())
                .collect();
            let ours = tags.iter().any(|t| {
                t["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|o| o["name"] == "by-names" || o["name"] == "by-label")
            });
            !ours && ni["status"]["desired"] == tags.len()
        },
    );
}

#[test]
fn a_job_s_pull_secret_is_read_from_the_cluster_and_its_password_never_shows() {
    let p = Prewarming::start();
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
    forget(1, &image);
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#);
    let data = base64::engine::general_purpose::STANDARD.encode(config);
    let secret = format!("kube-reg-{}", std::process::id());
    p.emu.create(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {secret}, namespace: default}}\n\
         type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {data}\n"
    ));
    let job = p.job(
        &format!("private-{}", std::process::id()),
        &image,
        &format!("  selector: {{names: [node-1]}}\n  pullSecrets: [{secret}]\n  pullPolicy: {{backoffLimit: 0}}\n"),
    );
    assert_eq!(job["status"]["succeeded"], 1, "{job}\n{}", p.log("agent-1"));
    assert!(has(1, &image), "node-1 lacks {image}");
    let everything = format!(
        "{}{}{}",
        p.log("agent-1"),
        p.log("controller"),
        p.emu.get("nodeimages.apps.kruise.io node-1")
    );
    assert!(!everything.contains(&password), "the password leaked");
}

#[test]
fn an_agent_without_a_cluster_or_with_a_bad_node_name_stops_with_exit_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let kubeconfig = home.path().join("kubeconfig");
    // A cluster nobody answers for.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"http://127.0.0.1:9\"}\n\
         users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n\
         current-context: x\n",
    )
    .expect("write");
    environment();
    let endpoint = format!("unix://{}", socket(1));
    let mut all = String::new();
    for (node, args) in [
        (
            "node-1",
            &["agent", "--kube", "--cri-endpoint", &endpoint][..],
        ),
        (
            "Node_1",
            &["agent", "--kube", "--cri-endpoint", &endpoint][..],
        ),
        ("n", &["agent", "--kube", "--pull", "x"][..]),
        ("", &["prewarm-controller", "-n", "Bad_NS"][..]),
    ] {
        let out = Command::new(bin())
            .args(args)
            .env("SLIPWAY_HOME", home.path())
            .env("KUBECONFIG", &kubeconfig)
            .env("NO_COLOR", "1")
            .env("NODE_NAME", node)
            .output()
            .expect("slipway runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let shown = args.join(" ").replace(&endpoint, "unix://NODE-1");
        all.push_str(&format!(
            "$ NODE_NAME={node} slipway {shown}\n{}\n",
            text(&out.stderr)
        ));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn an_image_list_becomes_owned_jobs_that_land_and_go_with_it() {
    let p = Prewarming::start();
    for n in [1, 3] {
        forget(n, SMALL);
        forget(n, BIG);
    }
    let name = format!("list-{}", std::process::id());
    p.emu.create(&format!(
        "apiVersion: apps.kruise.io/v1beta1\nkind: ImageListPullJob\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  images: [{SMALL}, {BIG}]\n  selector: {{names: [node-1, node-3]}}\n  parallelism: 2\n"
    ));
    let what = format!("imagelistpulljobs.apps.kruise.io {name} -n default");
    let mut list = Value::Null;
    until("the list to complete", Duration::from_secs(240), || {
        list = p.emu.get(&what);
        list["status"]["completed"] == 2
    });
    assert_eq!(
        (&list["status"]["desired"], &list["status"]["succeeded"]),
        (&2.into(), &2.into()),
        "{list}"
    );
    for n in [1, 3] {
        assert!(
            has(n, SMALL) && has(n, BIG),
            "node-{n} lacks an image of the list"
        );
    }
    // One job per image, owned by the list.
    let uid = list["metadata"]["uid"].clone();
    let owned = |jobs: &Value| -> usize {
        jobs["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|j| j["metadata"]["ownerReferences"][0]["uid"] == uid)
            .count()
    };
    assert_eq!(
        owned(&p.emu.get("imagepulljobs.apps.kruise.io -n default")),
        2
    );
    p.emu.kubectl(&[
        "delete",
        "-n",
        "default",
        "imagelistpulljobs.apps.kruise.io",
        &name,
    ]);
    until("the list's jobs to go", Duration::from_secs(30), || {
        owned(&p.emu.get("imagepulljobs.apps.kruise.io -n default")) == 0
    });
}

#[test]
fn the_deploy_manifests_apply_and_the_agent_s_daemonset_runs_on_every_node_as_itself() {
    let emu = emulator();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prewarm");
    let file = |f: &str| dir.join(f).display().to_string();
    emu.kubectl(&[
        "apply",
        "-f",
        &file("namespace.yaml"),
        "-f",
        &file("controller.yaml"),
        "-f",
        &file("agent.yaml"),
    ]);
    let ds = emu.get("daemonsets.apps slipway-prewarm-agent -n slipway-system");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([{"operator": "Exists"}]),
        "{ds}"
    );
    let agent = &pod["containers"][0];
    let node_name = agent["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "NODE_NAME")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName",
        "{ds}"
    );
    let command: Vec<&str> = agent["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        command.windows(2).any(|w| w == ["agent", "--kube"]),
        "{command:?}"
    );
    assert_eq!(pod["volumes"][0]["hostPath"]["type"], "Socket", "{ds}");
    let lease_role = emu
        .get("roles.rbac.authorization.k8s.io slipway-prewarm-controller-lease -n slipway-system");
    assert_eq!(
        lease_role["rules"][0]["resources"],
        serde_json::json!(["leases"]),
        "{lease_role}"
    );
    let deployment = emu.get("deployments.apps slipway-prewarm-controller -n slipway-system");
    assert_eq!(deployment["spec"]["replicas"], 2, "{deployment}");
    // The agent's role: its NodeImages read and watched, their status written, Secrets read;
    // nothing else.
    let role = emu.get("clusterroles.rbac.authorization.k8s.io slipway-prewarm-agent");
    let rules: Vec<(String, String)> = role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| {
            let verbs: Vec<String> = r["verbs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            r["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(move |res| {
                    let res = res.to_string();
                    verbs.clone().into_iter().map(move |v| (res.clone(), v))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut rules: Vec<String> = rules.iter().map(|(r, v)| format!("{v} {r}")).collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "get nodeimages",
            "get secrets",
            "list nodeimages",
            "patch nodeimages/status",
            "update nodeimages/status",
            "watch nodeimages",
        ]
    );
}

#[test]
fn a_node_that_is_not_ready_fails_at_once_and_jobs_wait_for_a_controller_that_is_away() {
    let mut p = Prewarming::start();
    let pid = std::process::id();
    // Ready=False, as the node lifecycle controller would set it: the node fails at once.
    let ready = |status: &str| {
        let patch = format!(
            r#"{{"status":{{"conditions":[{{"type":"Ready","status":"{status}","reason":"Test"}}]}}}}"#
        );
        p.emu.kubectl(&[
            "patch",
            "node",
            "node-3",
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ]);
    };
    ready("False");
    let job = p.job(
        &format!("not-ready-{pid}"),
        SMALL,
        "  selector: {names: [node-3]}\n",
    );
    ready("True");
    assert_eq!(
        job["status"]["failedNodes"],
        serde_json::json!(["node-3"]),
        "{job}"
    );
    assert_eq!(job["status"]["succeeded"], 0, "{job}");
    // A job created while no controller runs waits, and completes once one starts: the
    // controller keeps nothing of its own.
    p.stop("controller");
    forget(1, SMALL);
    let name = format!("while-away-{pid}");
    p.emu.create(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  image: {SMALL}\n  selector: {{names: [node-1]}}\n"
    ));
    std::thread::sleep(Duration::from_secs(2));
    let what = format!("imagepulljobs.apps.kruise.io {name} -n default");
    assert!(
        p.emu.get(&what)["status"].is_null(),
        "nobody should have acted"
    );
    assert!(!has(1, SMALL));
    p.spawn("controller", &["prewarm-controller"]);
    until("the job to complete", Duration::from_secs(60), || {
        p.emu.get(&what)["status"]["succeeded"] == 1
    });
    assert!(has(1, SMALL));
}

#[test]
fn an_agent_killed_mid_pull_and_started_again_finishes_the_job() {
    let mut p = Prewarming::start();
    forget(1, BIG);
    // node-1's containerd is frozen so that the pull is surely under way when the agent dies.
    signal(1, "STOP");
    let thaw = Thaw(1);
    let name = format!("killed-{}", std::process::id());
    p.emu.create(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  image: {BIG}\n  selector: {{names: [node-1]}}\n"
    ));
    let (repo, tag) = BIG.rsplit_once(':').expect("tag");
    until("the pull to be under way", Duration::from_secs(60), || {
        let ni = p.emu.get("nodeimages.apps.kruise.io node-1");
        ni["status"]["imageStatuses"][repo]["tags"][0]["phase"] == "Pulling"
            && ni["status"]["imageStatuses"][repo]["tags"][0]["tag"] == tag
    });
    if let Some(mut agent) = p.children.remove("agent-1") {
        let _ = agent.kill();
        let _ = agent.wait();
    }
    drop(thaw);
    let endpoint = format!("unix://{}", socket(1));
    p.spawn("agent-1", &["agent", "--kube", "--cri-endpoint", &endpoint]);
    let what = format!("imagepulljobs.apps.kruise.io {name} -n default");
    until("the job to succeed", Duration::from_secs(120), || {
        p.emu.get(&what)["status"]["succeeded"] == 1
    });
    assert!(has(1, BIG), "node-1 lacks {BIG}");
    let log = p.log("agent-1");
    assert!(log.contains(&format!("{BIG}  Succeeded")), "{log}");
}

#[test]
fn a_never_job_covers_a_node_that_joins_the_cluster_later() {
    let p = Prewarming::start();
    p.emu.kubectl(&["delete", "node", "node-3"]);
    // However this test ends, node-3 is there again for the others.
    struct Back(&'static Emulator);
    impl Drop for Back {
        fn drop(&mut self) {
            if self.0.get("node node-3").is_null() {
                self.0.add_node(3);
            }
        }
    }
    let back = Back(p.emu);
    forget(1, SMALL);
    forget(3, SMALL);
    let name = format!("never-{}", std::process::id());
    p.emu.create(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  image: {SMALL}\n  selector: {{matchLabels: {{pool: a}}}}\n  completionPolicy: {{type: Never}}\n"
    ));
    let what = format!("imagepulljobs.apps.kruise.io {name} -n default");
    until("node-1 to pull", Duration::from_secs(60), || {
        p.emu.get(&what)["status"]["succeeded"] == 1
    });
    assert!(!has(3, SMALL));
    // The Node comes (back): the controller's Node watch brings it, and the job covers it.
    drop(back);
    until("node-3 to pull", Duration::from_secs(60), || {
        p.emu.get(&what)["status"]["succeeded"] == 2
    });
    assert!(has(3, SMALL), "node-3 lacks {SMALL}");
    let job = p.emu.get(&what);
    assert_eq!(job["status"]["desired"], 2, "{job}");
    assert!(
        job["status"]["completionTime"].is_null(),
        "a Never job never completes: {job}"
    );
    p.emu.kubectl(&[
        "delete",
        "-n",
        "default",
        "imagepulljobs.apps.kruise.io",
        &name,
    ]);
}

#[test]
fn of_two_controllers_one_holds_the_lease_and_the_other_takes_over_when_it_dies() {
    let mut p = Prewarming::start();
    p.spawn("controller-2", &["prewarm-controller"]);
    let lease = || {
        p.emu
            .get("leases.coordination.k8s.io slipway-prewarm-controller -n default")
    };
    until("a holder", Duration::from_secs(30), || {
        lease()["spec"]["holderIdentity"]
            .as_str()
            .is_some_and(|h| !h.is_empty())
    });
    let first = lease()["spec"]["holderIdentity"].clone();
    let pid = |name: &str| p.children[name].id();
    let (leader, other) = if first
        .as_str()
        .is_some_and(|h| h.ends_with(&format!("-{}", pid("controller"))))
    {
        ("controller", "controller-2")
    } else {
        ("controller-2", "controller")
    };
    assert!(
        first
            .as_str()
            .is_some_and(|h| h.ends_with(&format!("-{}", pid(leader)))),
        "{first}"
    );
    // The leader dies without giving the Lease up; the other acts once it lapsed (15 s).
    let standby = pid(other);
    if let Some(mut c) = p.children.remove(leader) {
        let _ = c.kill();
        let _ = c.wait();
    }
    forget(2, SMALL);
    let job = p.job(
        &format!("after-failover-{}", std::process::id()),
        SMALL,
        "  selector: {names: [node-2]}\n",
    );
    assert_eq!(job["status"]["succeeded"], 1, "{job}");
    assert!(has(2, SMALL));
    let holder = lease()["spec"]["holderIdentity"].clone();
    assert!(
        holder
            .as_str()
            .is_some_and(|h| h.ends_with(&format!("-{standby}"))),
        "{holder}"
    );
    // A controller stopped with SIGTERM gives the Lease up.
    p.stop(other);
    assert_eq!(lease()["spec"]["holderIdentity"], "", "{}", lease());
}

#[test]
fn a_job_openkruise_s_webhook_would_refuse_says_why_in_its_status_and_pulls_nothing() {
    let p = Prewarming::start();
    let name = format!("refused-{}", std::process::id());
    // Names and a label selector both: the CRD's schema admits it, OpenKruise's webhook not.
    p.emu.create(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  image: {SMALL}\n  selector: {{names: [node-1], matchLabels: {{pool: a}}}}\n"
    ));
    let what = format!("imagepulljobs.apps.kruise.io {name} -n default");
    let mut job = Value::Null;
    until("the refusal", Duration::from_secs(30), || {
        job = p.emu.get(&what);
        job["status"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("refused: "))
    });
    let message = job["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("names"), "{message}");
    let ni = p.emu.get("nodeimages.apps.kruise.io node-1");
    let tags = ni["spec"]["images"][SMALL.rsplit_once(':').expect("tag").0]["tags"].clone();
    assert!(
        tags.as_array()
            .into_iter()
            .flatten()
            .all(|t| t["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|o| o["name"] != name.as_str())),
        "the refused job placed a tag: {ni}"
    );
}
