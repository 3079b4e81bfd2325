//! `slipway prewarm-controller`: the pre-warming controller against a Kubernetes cluster, until
//! Ctrl-C or SIGTERM.

use slipway_prewarm_kube::{ClusterConfig, Election, connect, run_on_cluster};
use tokio_util::sync::CancellationToken;

use crate::cli::PrewarmControllerArgs;
use crate::error::{CliError, chain};

pub async fn run(args: &PrewarmControllerArgs) -> Result<i32, CliError> {
    if let Some(ns) = &args.namespace
        && let Some(why) = slipway_model::names::dns_label_problem(ns)
    {
        return Err(CliError::usage(
            format!(
                "invalid namespace `{}`: {why}",
                slipway_model::names::shown(ns)
            ),
            "name a namespace as Kubernetes does: lower-case letters, digits and `-`",
        ));
    }
    let connected = connect().await.map_err(|e| {
        CliError::usage(
            chain(&e),
            "set KUBECONFIG (or run in a Pod with a ServiceAccount: deploy/prewarm/controller.yaml)",
        )
    })?;
    let election = if args.no_leader_election {
        None
    } else {
        Some(election(args, &connected)?)
    };
    let config = ClusterConfig {
        election,
        controller: slipway_server::controller::Config {
            node_grace: args.node_grace,
            ..Default::default()
        },
        namespace: args.namespace.clone(),
        server: connected.server.clone(),
        ..ClusterConfig::default()
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    eprintln!(
        "pre-warming controller on {} ({})",
        connected.server,
        args.namespace.as_deref().map_or_else(
            || "every namespace".to_string(),
            |n| format!("namespace {n}")
        )
    );
    run_on_cluster(connected.client, config, shutdown)
        .await
        .map_err(|e| {
            CliError::usage(
                chain(&e),
                "check that the API server answers (KUBECONFIG), and apply deploy/prewarm/crds.yaml and the controller's RBAC (deploy/prewarm/controller.yaml)",
            )
        })?;
    Ok(0)
}

/// The Lease candidate: this Pod's name (`HOSTNAME`) and process.
fn election(
    args: &PrewarmControllerArgs,
    connected: &slipway_prewarm_kube::Connected,
) -> Result<Election, CliError> {
    let (namespace, name) = match args.lease.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => (connected.namespace.as_str(), args.lease.as_str()),
    };
    for (what, value, problem) in [
        (
            "namespace",
            namespace,
            slipway_model::names::dns_label_problem(namespace),
        ),
        (
            "name",
            name,
            slipway_model::names::dns_subdomain_problem(name),
        ),
    ] {
        if let Some(why) = problem {
            return Err(CliError::usage(
                format!(
                    "invalid Lease {what} `{}`: {why}",
                    slipway_model::names::shown(value)
                ),
                "pass --lease NAME or --lease NAMESPACE/NAME",
            ));
        }
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "slipway".into());
    let identity = format!("{host}-{}", std::process::id());
    Ok(Election::new(
        connected.client.clone(),
        namespace,
        name,
        &identity,
        std::time::Duration::from_secs(15),
    ))
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    shutdown.cancel();
}
