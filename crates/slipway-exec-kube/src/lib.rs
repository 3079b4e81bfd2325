//! The Kubernetes executor: a TaskRun is one Pod, created when it starts and deleted when it
//! ends. Its steps are the Pod's containers, ordered by slipway's own binary acting as their
//! entrypoint (copied into the Pod by an init container), as Tekton's entrypoint orders them;
//! logs come from the Pod log API and results from a report each step prints at its end.

mod affinity;
pub mod entrypoint;
mod error;
pub mod frame;
mod image;
mod kaniko;
mod logs;
pub mod pod;
mod status;
mod taskrun;
mod volumes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Deserializer};
use slipway_engine::EventSink;
use slipway_engine::executor::{ExecOutcome, Executor, TaskRunPlan};
use slipway_model::reference::RegistryConfig;
use tokio_util::sync::CancellationToken;

pub use crate::error::{KubeError, refused};

/// Label on every Pod and claim: the top-level run uid.
pub const LABEL_RUN: &str = "slipway.dev/run-uid";
/// Label on every Pod: the TaskRun uid.
pub const LABEL_TASKRUN: &str = "slipway.dev/taskrun-uid";
/// Label on everything slipway creates.
pub const LABEL_MANAGED: (&str, &str) = ("app.kubernetes.io/managed-by", "slipway");

/// How long a Pod may take to start its first step by default.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(300);

/// When a TaskRun's Pod is kept after it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Retention {
    /// Always deleted (the default).
    #[default]
    Never,
    /// Kept when the TaskRun did not succeed, to look at with kubectl.
    OnFailure,
    /// Always kept.
    Always,
}

/// The `[kubernetes]` section of slipway's config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSettings {
    /// Namespace of the Pods [default: the kubeconfig context's, else `default`].
    pub namespace: Option<String>,
    /// kubeconfig context [default: its current context].
    pub context: Option<String>,
    /// kubeconfig file [default: `KUBECONFIG`, `~/.kube/config`, else the in-cluster config].
    pub kubeconfig: Option<PathBuf>,
    /// The image holding slipway's binary, loader and libraries under `/tekton/bin`.
    pub image: Option<String>,
    /// When Pods are kept after their TaskRun ends.
    #[serde(default)]
    pub pod_retention: Retention,
    /// How long a Pod may stay pending (Go duration) before its TaskRun fails [default: 5m].
    #[serde(default, deserialize_with = "go_duration")]
    pub start_timeout: Option<Duration>,
}

fn go_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    slipway_model::duration::parse(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{e}; {}", e.hint())))
}

/// Runs TaskRuns as Pods.
#[derive(Clone)]
pub struct KubeExecutor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KubeExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeExecutor")
            .field("server", &self.inner.server)
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) client: kube::Client,
    pub(crate) server: String,
    pub(crate) namespace: String,
    pub(crate) image: String,
    pub(crate) retention: Retention,
    pub(crate) start_timeout: Duration,
    pub(crate) registry: RegistryConfig,
    /// Shared by the executors derived from one another (`in_namespace`, ...).
    pub(crate) images: Arc<image::Images>,
    /// Shared likewise: a run's claims stay on their node whichever copy runs its TaskRuns.
    pub(crate) placements: Arc<affinity::Placements>,
    /// Mount configMap/secret/projected volumes from the cluster's objects.
    pub(crate) cluster_objects: bool,
    /// Runs (root uids) that made claims from volumeClaimTemplates, deleted when they end;
    /// other runs cost no request at their end.
    pub(crate) claimed: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Pods kept until their run ends (a controller's), by root uid: each Pod's name and
    /// whether retention keeps it after; `None` when each Pod is deleted as its TaskRun ends.
    pub(crate) finished: Option<Arc<std::sync::Mutex<FinishedPods>>>,
}

/// Finished Pods of each run, by root uid: name, and whether it is kept after the run.
pub(crate) type FinishedPods = std::collections::HashMap<String, Vec<(String, bool)>>;

impl Inner {
    /// Notes a finished Pod of run `root`, deleted (or kept) by `cleanup`.
    pub(crate) fn remember(&self, root: &str, pod: String, keep: bool) {
        if let Some(finished) = &self.finished
            && let Ok(mut runs) = finished.lock()
        {
            runs.entry(root.to_string()).or_default().push((pod, keep));
        }
    }

    /// Deletes the finished Pods of run `root` that retention does not keep: all of them in
    /// one request when none is kept.
    async fn delete_finished(&self, root: &str) {
        let Some(finished) = &self.finished else {
            return;
        };
        let Some(pods_of_run) = finished.lock().ok().and_then(|mut r| r.remove(root)) else {
            return;
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(1),
            ..DeleteParams::default()
        };
        if pods_of_run.iter().all(|(_, keep)| !keep) {
            let selector = format!("{LABEL_RUN}={}", pod::label_value(root));
            if let Err(e) = pods
                .delete_collection(&params, &ListParams::default().labels(&selector))
                .await
            {
                tracing::warn!("failed to delete the Pods of run {root}: {e}");
            }
            return;
        }
        for (name, _) in pods_of_run.iter().filter(|(_, keep)| !keep) {
            match pods.delete(name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => tracing::warn!("failed to delete pod {name}: {e}"),
            }
        }
    }
}

impl KubeExecutor {
    /// Finds the cluster as kubectl does (or the file and context given), checks that the API
    /// server answers and lets this user list Pods in the namespace.
    pub async fn connect(
        settings: &KubeSettings,
        registry: RegistryConfig,
    ) -> Result<Self, KubeError> {
        let image = settings
            .image
            .clone()
            .filter(|i| !i.trim().is_empty())
            .ok_or(KubeError::NoImage)?;
        let mut config = load_config(settings).await?;
        // Log streams stay open for as long as a step runs.
        config.read_timeout = None;
        config.connect_timeout = Some(Duration::from_secs(10));
        let server = config.cluster_url.to_string();
        let namespace = settings
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config).map_err(|source| KubeError::Client {
            server: server.clone(),
            source,
        })?;
        let exec = KubeExecutor::with_client(client, &server, &namespace, image, registry)
            .with_settings(settings);
        exec.preflight().await?;
        Ok(exec)
    }

    /// An executor over a client made elsewhere (tests hand in a mock service).
    pub fn with_client(
        client: kube::Client,
        server: &str,
        namespace: &str,
        image: String,
        registry: RegistryConfig,
    ) -> Self {
        KubeExecutor {
            inner: Arc::new(Inner {
                client,
                server: server.to_string(),
                namespace: namespace.to_string(),
                image,
                retention: Retention::default(),
                start_timeout: DEFAULT_START_TIMEOUT,
                images: Arc::new(image::Images::new(registry.clone())),
                placements: Arc::default(),
                claimed: Arc::default(),
                registry,
                cluster_objects: false,
                finished: None,
            }),
        }
    }

    /// The same executor with the settings' Pod retention and start timeout.
    pub fn with_settings(self, settings: &KubeSettings) -> Self {
        self.derived(|i| {
            i.retention = settings.pod_retention;
            i.start_timeout = settings.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT);
        })
    }

    /// The same executor creating its Pods in `namespace` (a controller runs each run in its own).
    pub fn in_namespace(&self, namespace: &str) -> Self {
        self.derived(|i| i.namespace = namespace.to_string())
    }

    /// The same executor mounting configMap, secret and projected volumes from the cluster's
    /// own objects (the controller's runs name objects of their namespace), instead of carrying
    /// the files slipway read in a Secret per Pod.
    pub fn mounting_cluster_objects(self) -> Self {
        self.derived(|i| i.cluster_objects = true)
    }

    /// The same executor keeping each finished Pod until its run's end is recorded, then
    /// deleting them together (`cleanup`): a controller restarted meanwhile finds every attempt
    /// that ran, and adopts the runs instead of running anything twice.
    pub fn keeping_pods_until_the_run_ends(self) -> Self {
        self.derived(|i| i.finished = Some(Arc::default()))
    }

    /// A copy sharing this executor's client and caches, with `edit` applied to its settings.
    fn derived(&self, edit: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.inner;
        let mut inner = Inner {
            client: i.client.clone(),
            server: i.server.clone(),
            namespace: i.namespace.clone(),
            image: i.image.clone(),
            retention: i.retention,
            start_timeout: i.start_timeout,
            registry: i.registry.clone(),
            images: i.images.clone(),
            placements: i.placements.clone(),
            claimed: i.claimed.clone(),
            cluster_objects: i.cluster_objects,
            finished: i.finished.clone(),
        };
        edit(&mut inner);
        KubeExecutor {
            inner: Arc::new(inner),
        }
    }

    /// The API server's address.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The namespace Pods are created in.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    async fn preflight(&self) -> Result<(), KubeError> {
        let inner = &self.inner;
        tokio::time::timeout(Duration::from_secs(15), inner.client.apiserver_version())
            .await
            .map_err(|_| KubeError::Timeout {
                server: inner.server.clone(),
            })?
            .map_err(|source| KubeError::Unreachable {
                server: inner.server.clone(),
                source,
            })?;
        let pods: Api<Pod> = Api::namespaced(inner.client.clone(), &inner.namespace);
        pods.list_metadata(&ListParams::default().limit(1))
            .await
            .map_err(|e| error::refused(e, "list", "pods", &inner.namespace, &inner.server))?;
        Ok(())
    }
}

/// The cluster's client config as kubectl finds it, or the file and context the settings name.
pub async fn load_config(settings: &KubeSettings) -> Result<kube::Config, KubeError> {
    let options = KubeConfigOptions {
        context: settings.context.clone(),
        ..KubeConfigOptions::default()
    };
    match &settings.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|source| KubeError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|source| KubeError::Kubeconfig {
                    path: path.clone(),
                    source,
                })
        }
        None if settings.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|source| KubeError::Context {
                context: settings.context.clone().unwrap_or_default(),
                source,
            }),
        None => kube::Config::infer()
            .await
            .map_err(|source| KubeError::NoConfig { source }),
    }
}

/// The name of the Pod that runs attempt `attempt` of TaskRun `name` (uid `uid`), as a
/// TaskRun's `status.podName`.
pub fn pod_name(name: &str, uid: &str, attempt: u32) -> String {
    taskrun::pod_name_of(name, uid, attempt)
}

#[async_trait]
impl Executor for KubeExecutor {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn run(
        &self,
        plan: TaskRunPlan,
        events: EventSink,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        taskrun::run(&self.inner, plan, events, cancel).await
    }

    async fn cleanup(&self, root_uid: &str) {
        // Claims made from volumeClaimTemplates live as long as their run.
        let inner = &self.inner;
        inner.placements.forget(root_uid);
        inner.delete_finished(root_uid).await;
        let made = inner
            .claimed
            .lock()
            .map_or(true, |mut runs| runs.remove(root_uid));
        if !made {
            return;
        }
        let claims: Api<PersistentVolumeClaim> =
            Api::namespaced(inner.client.clone(), &inner.namespace);
        let selector = format!("{LABEL_RUN}={root_uid}");
        if let Err(e) = claims
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels(&selector),
            )
            .await
        {
            tracing::warn!("failed to delete the run's claims: {e}");
        }
    }
}
