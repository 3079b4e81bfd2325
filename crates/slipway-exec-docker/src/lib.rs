//! The Docker executor: a TaskRun runs like a pod, each step a container from its own image,
//! through the Docker Engine API (Podman's compatible API too).
//!
//! Steps share Tekton's paths (`/workspace`, `/tekton/results`, `/tekton/home`, ...) as bind
//! mounts of the TaskRun's directories on this machine, laid out as the host executor lays them
//! out. With sidecars, a pause container holds the pod's network namespace and every sidecar and
//! step joins it.

pub mod auth;
mod container;
pub mod daemon;
mod image;
mod oom;
mod pause;
mod probe;
/// Image references moved to the model so the builder and pre-warming share them.
pub use slipway_model::reference;
mod sidecar;
mod taskrun;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use serde::Deserialize;
use slipway_engine::executor::{ExecOutcome, Executor, ImageBuilder, TaskRunPlan};
use slipway_engine::{EventSink, ExecEvent};
use slipway_taskdir::layout::ScratchPool;
use tokio_util::sync::CancellationToken;

pub use crate::container::{LABEL_OWNER, LABEL_TASKRUN};
pub use crate::daemon::DaemonError;
pub use crate::reference::{RegistryConfig, Rewrite};

/// Label on every container: the top-level run uid.
pub const LABEL_RUN: &str = "dev.slipway.run";

/// The `[docker]` section of slipway's config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSettings {
    /// Daemon address (`unix:///run/docker.sock`, `tcp://host:2375`); else `DOCKER_HOST`, the
    /// default socket, or a Podman socket.
    pub host: Option<String>,
    /// Network mode for TaskRuns (`bridge`, `host`, `none`, a network name); the daemon's default
    /// when unset.
    pub network: Option<String>,
    /// Docker config JSON with registry credentials; else `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json` when present.
    pub auth_file: Option<PathBuf>,
}

/// Errors setting up the Docker executor.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The daemon is missing or not answering.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The credentials file could not be read.
    #[error("failed to read registry credentials from {path}: {why}")]
    Auth {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The data directory could not be created.
    #[error("failed to create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs TaskRuns as containers.
#[derive(Debug, Clone)]
pub struct DockerExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    docker: Docker,
    host: String,
    images: image::Images,
    data_dir: PathBuf,
    runtime_dir: PathBuf,
    pool: ScratchPool,
    network: Option<String>,
    owner: String,
    builder: Option<ImageBuilder>,
}

impl DockerExecutor {
    /// Connects to the daemon and prepares the data directory; fails when the daemon does not
    /// answer. `builder` runs the steps that use Kaniko's executor image.
    pub async fn connect(
        data_dir: &Path,
        settings: &DockerSettings,
        registry: RegistryConfig,
        builder: Option<ImageBuilder>,
    ) -> Result<Self, DockerError> {
        let host = daemon::resolve(settings.host.as_deref())?;
        let docker = daemon::connect(&host).await?;
        let creds = read_credentials(settings.auth_file.as_deref())?;
        std::fs::create_dir_all(data_dir.join("scratch")).map_err(|source| {
            DockerError::DataDir {
                path: data_dir.to_path_buf(),
                source,
            }
        })?;
        let exec = DockerExecutor {
            inner: Arc::new(Inner {
                images: image::Images::new(docker.clone(), registry, creds),
                docker,
                host,
                data_dir: data_dir.to_path_buf(),
                runtime_dir: slipway_taskdir::layout::runtime_dir(data_dir),
                pool: ScratchPool::default(),
                network: settings.network.clone().filter(|n| !n.is_empty()),
                owner: owner_token(std::process::id()).unwrap_or_default(),
                builder,
            }),
        };
        exec.sweep().await;
        Ok(exec)
    }

    /// The daemon address in use.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// Removes containers left by slipway processes of this machine that are gone (killed with
    /// SIGKILL, so no cleanup ran).
    async fn sweep(&self) {
        let filters =
            std::collections::HashMap::from([("label".to_string(), vec![LABEL_OWNER.to_string()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let Ok(list) = self.inner.docker.list_containers(Some(options)).await else {
            return;
        };
        let host = hostname();
        for c in list {
            let owner = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_OWNER))
                .cloned()
                .unwrap_or_default();
            // Only this machine's processes can be checked; `host:pid:start`.
            let mut parts = owner.splitn(3, ':');
            let (Some(h), Some(pid)) = (parts.next(), parts.next()) else {
                continue;
            };
            let alive = pid
                .parse::<u32>()
                .ok()
                .and_then(owner_token)
                .is_some_and(|now| now == owner);
            if h == host
                && !alive
                && let Some(id) = c.id
            {
                let _ = container::remove(&self.inner.docker, &id).await;
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// `host:pid:starttime` of a live process (the start time tells a reused pid apart).
fn owner_token(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let start = rest.split_whitespace().nth(19)?;
    Some(format!("{}:{pid}:{start}", hostname()))
}

fn read_credentials(explicit: Option<&Path>) -> Result<Vec<auth::Credential>, DockerError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let dir = std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
            match dir.map(|d| d.join("config.json")).filter(|p| p.exists()) {
                Some(p) => p,
                None => return Ok(Vec::new()),
            }
        }
    };
    let bytes = std::fs::read(&path).map_err(|e| DockerError::Auth {
        path: path.clone(),
        why: e.to_string(),
    })?;
    auth::parse(&bytes).map_err(|e| DockerError::Auth {
        path,
        why: e.to_string(),
    })
}

#[async_trait]
impl Executor for DockerExecutor {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn run(
        &self,
        plan: TaskRunPlan,
        events: EventSink,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        if let Some(unapplied) = plan.cluster_only_settings() {
            events
                .send(ExecEvent::Notice(format!(
                    "the docker executor does not apply {unapplied}: they take effect on Kubernetes only"
                )))
                .await;
        }
        taskrun::run(&self.inner, plan, events, cancel).await
    }

    async fn cleanup(&self, root_uid: &str) {
        // Whatever a TaskRun could not remove (a daemon hiccup) goes with its run.
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_RUN}={root_uid}")],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        if let Ok(list) = self.inner.docker.list_containers(Some(options)).await {
            for id in list.into_iter().filter_map(|c| c.id) {
                let _ = container::remove(&self.inner.docker, &id).await;
            }
        }
        let dir = self.inner.data_dir.join("scratch").join(root_uid);
        let _ = tokio::fs::remove_dir_all(dir).await;
        self.inner.pool.drain();
    }
}
