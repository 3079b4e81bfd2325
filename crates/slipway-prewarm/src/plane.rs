//! What an agent follows: the control plane that holds its node's NodeImage, takes the status
//! back and hands out the pull Secrets its tags name. A slipway server is one
//! ([`crate::follow::ServerPlane`]); a Kubernetes API server is another (crate
//! `slipway-prewarm-kube`). The pull logic is the same for both (`follow`).

use async_trait::async_trait;
use serde_json::Value;

/// A control plane as one node's agent talks to it.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    /// Why a request failed; its message reads after "failed to".
    type Error: std::error::Error + Send + Sync + 'static;

    /// Where it is, for messages.
    fn location(&self) -> String;

    /// Says the node is alive. A plane whose nodes have a kubelet of their own does nothing.
    async fn heartbeat(&self) -> Result<(), Self::Error>;

    /// The node's NodeImage, `None` while there is none.
    async fn node_image(&self) -> Result<Option<Value>, Self::Error>;

    /// There is no NodeImage: a plane where agents make their own creates it; one where a
    /// controller makes them waits.
    async fn node_image_missing(&self) -> Result<(), Self::Error>;

    /// Writes the NodeImage's status: `object` is the NodeImage as last read, with the status.
    async fn write_status(&self, object: &Value) -> Result<(), Self::Error>;

    /// The Docker config JSON of pull Secret `namespace/name`, `None` when there is none.
    async fn pull_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Resolves when the NodeImage may have changed. A plane without a watch never resolves:
    /// the agent reads again every poll interval.
    async fn changed(&self) {
        std::future::pending::<()>().await;
    }
}
