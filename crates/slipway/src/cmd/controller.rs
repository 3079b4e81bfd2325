//! `slipway controller`: wiring for `slipway_controller`.

use std::sync::Arc;
use std::time::Duration;

use slipway_controller::{Controller, ControllerError, ControllerSettings};
use slipway_engine::EngineConfig;
use slipway_exec_kube::KubeError;
use tokio_util::sync::CancellationToken;

use crate::cli::ControllerArgs;
use crate::error::CliError;
use slipway::config::Config;

/// Connects, then runs until SIGINT/SIGTERM (exit 0) or a lost Lease (exit 3).
pub async fn controller(config: &Config, args: &ControllerArgs) -> Result<i32, CliError> {
    let controller = Arc::new(connect(config, args, EngineConfig::default()).await?);
    let stop = CancellationToken::new();
    let signals = stop.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        signals.cancel();
    });
    let outcome = controller.clone().run(stop).await;
    eprintln!(
        "slipway controller: stopped after {} API requests",
        controller.requests_sent()
    );
    match outcome {
        Ok(()) => Ok(0),
        Err(e) => Err(CliError::Internal(crate::error::chain(&e))),
    }
}

/// Connects to the cluster (a cluster that cannot be used is exit 2) and says where it watches.
pub(crate) async fn connect(
    config: &Config,
    args: &ControllerArgs,
    engine: EngineConfig,
) -> Result<Controller, CliError> {
    let mut kube = config.kubernetes.clone();
    if let Some(image) = &args.kube_image {
        kube.image = Some(image.clone());
    }
    let settings = ControllerSettings {
        namespace: args.namespace.clone().filter(|_| !args.all_namespaces),
        qps: args.qps,
        burst: args.burst,
        lease_name: args.lease_name.clone(),
        lease_namespace: args.lease_namespace.clone(),
        identity: args.identity.clone(),
        kube,
        registry: config.registry.clone(),
        engine,
        status_window: Duration::from_secs(1),
    };
    let controller = Controller::connect(settings).await.map_err(usage)?;
    eprintln!(
        "slipway controller: watching {} on {} as {}",
        args.namespace
            .as_deref()
            .map_or("every namespace".to_string(), |n| format!("namespace {n}")),
        controller.server(),
        controller.identity()
    );
    Ok(controller)
}

/// A cluster that cannot be used is the user's to fix (exit 2).
fn usage(e: ControllerError) -> CliError {
    let hint = match &e {
        ControllerError::Cluster(k) => kube_hint(k),
        ControllerError::NoCrds { .. } => "kubectl apply -f deploy/tekton/",
        _ => {
            "check that the API server runs and that the kubeconfig names it (`kubectl cluster-info`)"
        }
    };
    CliError::usage(crate::error::chain(&e), hint)
}

fn kube_hint(e: &KubeError) -> &'static str {
    match e {
        KubeError::NoImage => {
            "build an image holding slipway, its loader and libraries under /tekton/bin (README: the Kubernetes executor) and pass --kube-image"
        }
        KubeError::NoConfig { .. } | KubeError::Kubeconfig { .. } | KubeError::Context { .. } => {
            "point KUBECONFIG or `[kubernetes] kubeconfig` at a kubeconfig, or run it in a Pod with a ServiceAccount"
        }
        KubeError::Forbidden { .. } => {
            "bind the ClusterRole of deploy/controller/rbac.yaml to the controller's ServiceAccount"
        }
        _ => {
            "check that the API server runs and that the kubeconfig names it (`kubectl cluster-info`)"
        }
    }
}
