//! Image pre-warming on Kubernetes: the pre-warming controller's [`Cluster`] over the API server
//! (watch-backed reads, writes with `resourceVersion` preconditions, statuses through the
//! `status` subresource) and the node agent's [`ControlPlane`] (its own NodeImage through a
//! watch by field selector, the status through `nodeimages/NAME/status`, pull Secrets from the
//! cluster). The pull logic and the controller's rules stay in `slipway-prewarm` and
//! `slipway-server`; only the Kubernetes side lives here, so kube does not leak into them.
//!
//! [`Cluster`]: slipway_server::controller::Cluster
//! [`ControlPlane`]: slipway_prewarm::ControlPlane

mod admission;
mod cache;
mod cluster;
mod error;
mod kind;
mod lease;
#[cfg(test)]
use slipway_kube_mock as mock;
mod node;

pub use cluster::{ClusterConfig, KubeCluster, StartError, run_on_cluster};
pub use error::KubeApiError;
pub use kind::{KRUISE_API_VERSION, Kind};
pub use lease::Election;
pub use node::KubeNode;

/// Why no client for the cluster could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Neither a kubeconfig (`KUBECONFIG`, `~/.kube/config`) nor the in-cluster config.
    #[error("failed to find a Kubernetes cluster (KUBECONFIG, ~/.kube/config or in-cluster)")]
    NoConfig(#[source] kube::config::InferConfigError),
    /// The config could not make a client.
    #[error("failed to make a client for {server}")]
    Client {
        /// The API server.
        server: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// A client for the cluster, found as kubectl finds it (else the in-cluster config), and the
/// API server's address; `namespace` is the config's default namespace.
pub async fn connect() -> Result<Connected, ConnectError> {
    let config = kube::Config::infer()
        .await
        .map_err(ConnectError::NoConfig)?;
    let server = config.cluster_url.to_string();
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|source| ConnectError::Client {
        server: server.clone(),
        source,
    })?;
    Ok(Connected {
        client,
        server,
        namespace,
    })
}

/// A client and where it goes.
#[derive(Clone)]
pub struct Connected {
    /// The client.
    pub client: kube::Client,
    /// The API server's address.
    pub server: String,
    /// The config's default namespace.
    pub namespace: String,
}
