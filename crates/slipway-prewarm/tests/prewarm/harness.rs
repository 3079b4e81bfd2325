//! Starting the environment, taking a node for one test, and driving an engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use slipway_prewarm::{
    ContainerdContent, CriImages, Endpoint, Engine, EngineConfig, Phase, TagSpec, TagStatus,
};
use tokio::sync::{mpsc, watch};

/// The plain loopback registry.
pub const REGISTRY: &str = "127.0.0.1:5000";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_env(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).expect("env file written by the script");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What the scripts wrote: node sockets, the big image, the private registry's login.
pub fn env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        for script in ["scripts/docker-env.sh", "scripts/containerd-env.sh"] {
            let out = Command::new("bash")
                .arg(repo_root().join(script))
                .output()
                .expect("run the env script");
            assert!(
                out.status.success(),
                "{script} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut env = read_env(Path::new("/tmp/slipway-containerd/nodes.env"));
        env.extend(read_env(Path::new(
            "/tmp/slipway-docker/private-registry.env",
        )));
        env
    })
}

/// Restarts nodes that are down (the script starts what does not answer).
pub fn restart_stopped_nodes() {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/containerd-env.sh"))
        .output()
        .expect("run containerd-env.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One containerd instance, held by this test alone (tests run in parallel processes).
pub struct Node {
    pub socket: PathBuf,
    _lock: std::fs::File,
}

impl Node {
    /// Waits for node `index` to be free, then holds it.
    pub fn take(index: u32) -> Node {
        let env = env();
        let socket = PathBuf::from(&env[&format!("SLIPWAY_CONTAINERD_NODE_{index}")]);
        let lock = std::fs::File::create(socket.with_file_name("test.lock")).expect("lock file");
        lock.lock().expect("lock the node");
        Node {
            socket,
            _lock: lock,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::parse(&format!("unix://{}", self.socket.display())).expect("endpoint")
    }

    pub async fn cri(&self) -> CriImages {
        CriImages::connect(&self.endpoint()).await.expect("connect")
    }

    /// `ctr -n k8s.io images ls -q` on this node.
    pub fn ctr_images(&self) -> String {
        self.ctr(&["images", "ls", "-q"])
    }

    fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Removes the images so that the next pull fetches them again (CRI's RemoveImage
    /// deletes the last reference synchronously, so containerd collects the blobs too).
    /// First the leases a killed pull left (they keep blobs for a day).
    pub async fn forget(&self, images: &[&str]) {
        use slipway_prewarm::ImageRuntime as _;
        for lease in self.ctr(&["leases", "ls", "-q"]).lines() {
            self.ctr(&["leases", "rm", lease]);
        }
        let cri = self.cri().await;
        for image in images {
            cri.remove(image).await.expect("remove");
        }
    }

    /// The pid of this node's containerd.
    pub fn pid(&self) -> i32 {
        let pidfile = self.socket.with_file_name("containerd.pid");
        std::fs::read_to_string(pidfile)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    }
}

/// An engine running on a node, fed through a watch channel.
pub struct Running {
    pub desired: watch::Sender<Vec<TagSpec>>,
    pub statuses: mpsc::UnboundedReceiver<TagStatus>,
    pub task: tokio::task::JoinHandle<()>,
    /// Every status received so far, in order.
    pub history: Vec<TagStatus>,
}

/// Retries come fast in tests; the limit is the engine's default unless given.
pub fn fast_config(max_concurrent_pulls: usize) -> EngineConfig {
    EngineConfig {
        max_concurrent_pulls,
        progress_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(4),
    }
}

pub async fn start(node: &Node, config: EngineConfig, specs: Vec<TagSpec>) -> Running {
    let cri = node.cri().await;
    let content = ContainerdContent::new(cri.channel());
    let engine = Engine::new(Arc::new(cri), Arc::new(content), config);
    let (desired, rx) = watch::channel(specs);
    let (tx, statuses) = mpsc::unbounded_channel();
    let task = tokio::spawn(engine.run(rx, tx));
    Running {
        desired,
        statuses,
        task,
        history: Vec::new(),
    }
}

impl Running {
    /// Collects statuses until every image named has a final phase; returns the last of each.
    pub async fn finish(
        &mut self,
        images: &[&str],
        within: Duration,
    ) -> HashMap<String, TagStatus> {
        let mut last: HashMap<String, TagStatus> = HashMap::new();
        let deadline = tokio::time::Instant::now() + within;
        while !images
            .iter()
            .all(|i| last.get(*i).is_some_and(|s| s.phase.is_final()))
        {
            let status = tokio::time::timeout_at(deadline, self.statuses.recv())
                .await
                .unwrap_or_else(|_| panic!("not final within {within:?}: {last:#?}"))
                .expect("engine running");
            self.history.push(status.clone());
            last.insert(status.image.clone(), status);
        }
        last
    }

    /// Collects statuses until one satisfies `what`.
    pub async fn until(
        &mut self,
        within: Duration,
        what: impl Fn(&TagStatus) -> bool,
    ) -> TagStatus {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let status = tokio::time::timeout_at(deadline, self.statuses.recv())
                .await
                .unwrap_or_else(|_| panic!("no such status within {within:?}: {:#?}", self.history))
                .expect("engine running");
            self.history.push(status.clone());
            if what(&status) {
                return status;
            }
        }
    }

    /// Every status of `image` received, in order.
    pub fn of(&self, image: &str) -> Vec<&TagStatus> {
        self.history.iter().filter(|s| s.image == image).collect()
    }
}

pub fn succeeded(status: &TagStatus) {
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}");
    assert!(
        status
            .image_id
            .as_deref()
            .is_some_and(|id| id.starts_with("sha256:")),
        "{status:#?}"
    );
}
