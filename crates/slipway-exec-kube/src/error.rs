//! Why the Kubernetes executor cannot start, and how API refusals are worded.

use std::path::PathBuf;

/// Errors setting up the Kubernetes executor; each is a whole sentence.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No image holds slipway's entrypoint.
    #[error(
        "failed to start Pods: no image holds slipway's entrypoint (`--kube-image` or `[kubernetes] image`)"
    )]
    NoImage,
    /// Neither a kubeconfig nor an in-cluster config was found.
    #[error(
        "failed to find a Kubernetes cluster: no kubeconfig (KUBECONFIG, ~/.kube/config) and not inside a Pod"
    )]
    NoConfig {
        /// Both causes.
        #[source]
        source: kube::config::InferConfigError,
    },
    /// The kubeconfig named could not be used.
    #[error("failed to use the kubeconfig {}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The context named is not in the kubeconfig.
    #[error("failed to use the kubeconfig context `{context}`")]
    Context {
        /// The context.
        context: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No client could be built for the server (TLS settings, proxy).
    #[error("failed to make a client for the Kubernetes API server at {server}")]
    Client {
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The server did not answer.
    #[error("failed to reach the Kubernetes API server at {server}")]
    Unreachable {
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The server did not answer in time.
    #[error("failed to reach the Kubernetes API server at {server}: no answer within 15s")]
    Timeout {
        /// The server.
        server: String,
    },
    /// The server refused a verb on a resource (RBAC).
    #[error(
        "failed to {verb} {resource} in namespace `{namespace}`: the API server at {server} refused ({message})"
    )]
    Forbidden {
        /// The verb refused.
        verb: &'static str,
        /// The resource.
        resource: &'static str,
        /// The namespace.
        namespace: String,
        /// The server.
        server: String,
        /// The server's own words.
        message: String,
    },
    /// Another API error.
    #[error("failed to {verb} {resource} in namespace `{namespace}` on {server}")]
    Api {
        /// The verb.
        verb: &'static str,
        /// The resource.
        resource: &'static str,
        /// The namespace.
        namespace: String,
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// An API error worded with the verb and resource it was about.
pub fn refused(
    e: kube::Error,
    verb: &'static str,
    resource: &'static str,
    namespace: &str,
    server: &str,
) -> KubeError {
    match e {
        kube::Error::Api(status) if status.code == 403 => KubeError::Forbidden {
            verb,
            resource,
            namespace: namespace.to_string(),
            server: server.to_string(),
            message: status.message.clone(),
        },
        source => KubeError::Api {
            verb,
            resource,
            namespace: namespace.to_string(),
            server: server.to_string(),
            source,
        },
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
