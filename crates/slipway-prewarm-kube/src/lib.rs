//! Image pre-warming on Kubernetes: the pre-warming controller's [`Cluster`] over the API server
//! (watch-backed reads, writes with `resourceVersion` preconditions, statuses through the
//! `status` subresource) and the node agent's [`ControlPlane`] (its own NodeImage through a
//! watch by field selector, the status through `nodeimages/NAME/status`, pull Secrets from the
//! cluster). The pull logic and the controller's rules stay in `slipway-prewarm` and
//! `slipway-server`; only the Kubernetes side lives here, so kube does not leak into them.
//!
//! [`Cluster`]: slipway_server::controller::Cluster
//! [`ControlPlane`]: slipway_prewarm::ControlPlane

mod cache;
mod cluster;
mod error;
mod kind;
mod node;

pub use cluster::{ClusterConfig, KubeCluster, StartError, run_on_cluster};
pub use error::KubeApiError;
pub use kind::{KRUISE_API_VERSION, Kind};
pub use node::KubeNode;
