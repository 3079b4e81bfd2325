//! The controller: connects to the cluster, leads through a Lease, watches PipelineRuns and
//! TaskRuns and runs each new one through the engine with the Kubernetes executor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::watcher;
use serde_json::Value;
use slipway_engine::{CancelHandle, EngineConfig, Store};
use slipway_exec_kube::{KubeError, KubeExecutor, KubeSettings, refused};
use slipway_lease::LeaseSettings;
use slipway_model::reference::RegistryConfig;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::ControllerError;
use crate::qps::QpsLayer;
use crate::resources::RunKind;

/// How the controller is set up (`slipway controller` flags and the config's `[kubernetes]`).
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// The one namespace watched; `None` for every namespace.
    pub namespace: Option<String>,
    /// Average API requests per second.
    pub qps: f64,
    /// Requests allowed at once above the average.
    pub burst: u32,
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace [default: the watched namespace, else the kubeconfig's].
    pub lease_namespace: Option<String>,
    /// This replica's identity [default: the host name and process id].
    pub identity: Option<String>,
    /// The cluster, image and Pod settings the executor reads.
    pub kube: KubeSettings,
    /// Registry rewrites and mirrors for step images.
    pub registry: RegistryConfig,
    /// The engine's limits.
    pub engine: EngineConfig,
    /// How long status writes of a run are held to be written together.
    pub status_window: Duration,
}

/// A run this process is running.
pub(crate) struct Running {
    pub(crate) cancel: CancelHandle,
    /// The `spec.status` already acted on.
    pub(crate) spec_status: Option<String>,
}

/// A connected controller.
pub struct Controller {
    pub(crate) client: kube::Client,
    pub(crate) server: String,
    pub(crate) settings: ControllerSettings,
    pub(crate) executor: KubeExecutor,
    pub(crate) identity: String,
    lease_namespace: String,
    pub(crate) runs: Mutex<HashMap<String, Running>>,
    /// The client's rate limit, which also counts the requests sent.
    qps: QpsLayer,
    /// A server's store that records every run too (`slipway serve --controller`).
    pub(crate) history: Option<Arc<dyn Store>>,
    /// The Tasks, Pipelines and StepActions runs name, watched once this replica leads.
    pub(crate) cache: std::sync::OnceLock<crate::cache::TektonCache>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("server", &self.server)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Finds the cluster as kubectl does, checks that it answers, that Tekton's CRDs are there
    /// and that this user may list runs.
    pub async fn connect(settings: ControllerSettings) -> Result<Self, ControllerError> {
        let image = settings
            .kube
            .image
            .clone()
            .filter(|i| !i.trim().is_empty())
            .ok_or(KubeError::NoImage)?;
        let mut config = slipway_exec_kube::load_config(&settings.kube).await?;
        // Watches and log streams stay open for as long as they are needed.
        config.read_timeout = None;
        config.connect_timeout = Some(Duration::from_secs(10));
        let server = config.cluster_url.to_string();
        let home_namespace = settings
            .kube
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| config.default_namespace.clone());
        let qps = QpsLayer::new(settings.qps, settings.burst);
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|source| ControllerError::Client {
                server: server.clone(),
                source,
            })?
            .with_layer(&qps)
            .build();
        let executor = KubeExecutor::with_client(
            client.clone(),
            &server,
            &home_namespace,
            image,
            settings.registry.clone(),
        )
        .with_settings(&settings.kube)
        .mounting_cluster_objects()
        .keeping_pods_until_the_run_ends();
        let identity = settings.identity.clone().unwrap_or_else(default_identity);
        let lease_namespace = settings
            .lease_namespace
            .clone()
            .or_else(|| settings.namespace.clone())
            .unwrap_or(home_namespace);
        let controller = Controller {
            client,
            server,
            settings,
            executor,
            identity,
            lease_namespace,
            runs: Mutex::new(HashMap::new()),
            qps,
            history: None,
            cache: std::sync::OnceLock::new(),
        };
        controller.preflight().await?;
        Ok(controller)
    }

    /// A controller over a client made elsewhere (tests hand in a mock service).
    pub fn with_client(client: kube::Client, settings: ControllerSettings) -> Self {
        let namespace = settings.namespace.clone().unwrap_or("default".into());
        let executor = KubeExecutor::with_client(
            client.clone(),
            "mock",
            &namespace,
            settings.kube.image.clone().unwrap_or_default(),
            settings.registry.clone(),
        );
        Controller {
            client,
            server: "mock".into(),
            identity: settings.identity.clone().unwrap_or_else(default_identity),
            lease_namespace: settings.lease_namespace.clone().unwrap_or(namespace),
            qps: QpsLayer::new(settings.qps, settings.burst),
            settings,
            executor,
            runs: Mutex::new(HashMap::new()),
            history: None,
            cache: std::sync::OnceLock::new(),
        }
    }

    /// The same controller, recording every run it runs in `store` as well (a server's
    /// history: its logs outlive the Pods).
    pub fn with_history(mut self, store: Arc<dyn Store>) -> Self {
        self.history = Some(store);
        self
    }

    /// API requests this controller has sent (through its own client).
    pub fn requests_sent(&self) -> u64 {
        self.qps.sent()
    }

    /// The API server's address.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// This replica's identity in the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    async fn preflight(&self) -> Result<(), ControllerError> {
        tokio::time::timeout(Duration::from_secs(15), self.client.apiserver_version())
            .await
            .map_err(|_| KubeError::Timeout {
                server: self.server.clone(),
            })?
            .map_err(|source| KubeError::Unreachable {
                server: self.server.clone(),
                source,
            })?;
        let ns = self.settings.namespace.as_deref();
        for (kind, plural) in [
            (RunKind::PipelineRun, "pipelineruns"),
            (RunKind::TaskRun, "taskruns"),
        ] {
            let api = self.api(kind, ns);
            match api.list_metadata(&ListParams::default().limit(1)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    return Err(ControllerError::NoCrds {
                        resource: plural,
                        server: self.server.clone(),
                        source: kube::Error::Api(s),
                    });
                }
                Err(e) => {
                    return Err(refused(e, "list", plural, ns.unwrap_or("*"), &self.server).into());
                }
            }
        }
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.lease_namespace);
        if let Err(e) = leases.get_opt(&self.settings.lease_name).await {
            return Err(refused(e, "get", "leases", &self.lease_namespace, &self.server).into());
        }
        Ok(())
    }

    /// The runs of `kind` in `namespace` (every namespace for `None`).
    pub(crate) fn api(&self, kind: RunKind, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = kind.resource();
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// Runs until `stop`, or until the Lease is lost (an error: the process should exit, and
    /// the next leader adopts the runs left running).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) -> Result<(), ControllerError> {
        let (leading_tx, mut leading) = watch::channel(false);
        let settings = LeaseSettings::new(
            &self.settings.lease_name,
            &self.lease_namespace,
            &self.identity,
        );
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.lease_namespace);
        let mut lead = tokio::spawn(slipway_lease::lead(
            leases,
            settings,
            leading_tx,
            stop.clone(),
        ));
        tracing::info!(identity = %self.identity, "waiting to lead");
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                r = &mut lead => return flatten(r),
                changed = leading.changed() => {
                    if changed.is_err() { return Ok(()); }
                    if *leading.borrow() { break; }
                }
            }
        }
        let watching = self.clone().watch(stop.clone());
        let outcome = tokio::select! {
            r = &mut lead => return flatten(r),
            r = watching => r,
        };
        // Stopping: runs in flight are left to the next leader, which adopts them; the Lease
        // is given up (a moment at most) so that it need not wait for it to lapse.
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(3), lead).await;
        outcome
    }

    async fn watch(self: Arc<Self>, stop: CancellationToken) -> Result<(), ControllerError> {
        let ns = self.settings.namespace.clone();
        self.cache
            .get_or_init(|| crate::cache::TektonCache::start(&self.client, ns.as_deref(), &stop));
        let stream = |kind: RunKind| {
            let config = watcher::Config::default().any_semantic();
            watcher(self.api(kind, ns.as_deref()), config)
                .map_ok(move |e| (kind, e))
                .boxed()
        };
        let mut events =
            futures::stream::select(stream(RunKind::PipelineRun), stream(RunKind::TaskRun));
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                n = events.next() => n,
            };
            match next {
                None => return Ok(()),
                Some(Err(e)) => {
                    // The watcher relists by itself; a pause keeps a refusing server from a flood.
                    tracing::warn!("failed to watch runs: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Some(Ok((kind, event))) => match event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        self.clone().seen(kind, o);
                    }
                    watcher::Event::Delete(o) => self.deleted(&o),
                    watcher::Event::Init | watcher::Event::InitDone => {}
                },
            }
        }
    }

    /// A run deleted while it runs stops at once; its Pods are deleted by the executor.
    fn deleted(&self, o: &DynamicObject) {
        let uid = o.metadata.uid.clone().unwrap_or_default();
        if let Ok(runs) = self.runs.lock()
            && let Some(r) = runs.get(&uid)
        {
            tracing::info!(run = %o.metadata.name.clone().unwrap_or_default(), "deleted: stopping it");
            r.cancel.stop();
        }
    }

    fn seen(self: Arc<Self>, kind: RunKind, o: DynamicObject) {
        let Ok(object) = serde_json::to_value(&o) else {
            return;
        };
        crate::dispatch::seen(self, kind, object);
    }
}

fn flatten(
    r: Result<Result<(), slipway_lease::LeaseError>, tokio::task::JoinError>,
) -> Result<(), ControllerError> {
    r.unwrap_or(Ok(())).map_err(ControllerError::from)
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "slipway".into());
    format!("{host}_{}", std::process::id())
}

/// `spec.status` of a run, if set.
pub(crate) fn spec_status(object: &Value) -> Option<String> {
    object["spec"]["status"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
