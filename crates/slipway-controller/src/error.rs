//! Why the controller cannot start or go on; each message reads after "failed to".

use slipway_exec_kube::KubeError;

/// Errors that stop the controller.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The cluster could not be used (no config, no answer, a verb refused).
    #[error(transparent)]
    Cluster(Box<KubeError>),
    /// The kube client could not be made.
    #[error("failed to make a client for the Kubernetes API server at {server}")]
    Client {
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The Lease could no longer be kept: another replica may run the runs now.
    #[error("failed to {0}; stepping down")]
    Lease(#[from] slipway_lease::LeaseError),
    /// Tekton's CRDs are not installed.
    #[error(
        "failed to find tekton.dev/v1 {resource} on the API server at {server}: are Tekton's CRDs installed?"
    )]
    NoCrds {
        /// The resource.
        resource: &'static str,
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

impl From<KubeError> for ControllerError {
    fn from(e: KubeError) -> Self {
        ControllerError::Cluster(Box::new(e))
    }
}
