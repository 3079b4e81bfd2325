//! The node agent's [`ControlPlane`] on a cluster: the kubelet owns the Node, the controller
//! creates the NodeImage; the agent watches only its own NodeImage
//! (`fieldSelector=metadata.name=NAME`), writes its status through `nodeimages/NAME/status`
//! with the `resourceVersion` it read, and reads the pull Secrets its tags name.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use kube::runtime::watcher;
use serde_json::Value;
use slipway_prewarm::ControlPlane;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::error::{KubeApiError, status_code};
use crate::kind::{Kind, to_value};

/// One node's agent on a cluster.
pub struct KubeNode {
    client: kube::Client,
    server: String,
    name: String,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for KubeNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeNode")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubeNode {
    /// Reads the node's NodeImage once (so an API server that does not answer, or refuses,
    /// is said at start) and watches it from then on, until `shutdown`.
    pub async fn connect(
        client: kube::Client,
        server: &str,
        name: &str,
        shutdown: CancellationToken,
    ) -> Result<KubeNode, KubeApiError> {
        let api = Kind::NodeImage.api(&client, None);
        api.get_opt(name)
            .await
            .map_err(|e| KubeApiError::new(format!("read NodeImage {name}"), server, e))?;
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let cache = Cache::start(vec![(Kind::NodeImage, api, config)], shutdown);
        Ok(KubeNode {
            client,
            server: server.to_string(),
            name: name.to_string(),
            cache,
        })
    }

    fn api(&self) -> Api<DynamicObject> {
        Kind::NodeImage.api(&self.client, None)
    }

    async fn put_status(&self, body: &Value) -> Result<DynamicObject, kube::Error> {
        let o: DynamicObject =
            serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
        self.api()
            .replace_status(&self.name, &PostParams::default(), &o)
            .await
    }
}

#[async_trait]
impl ControlPlane for KubeNode {
    type Error = KubeApiError;

    fn location(&self) -> String {
        format!("the Kubernetes API server {}", self.server)
    }

    async fn heartbeat(&self) -> Result<(), KubeApiError> {
        // The kubelet keeps the Node's heartbeat.
        Ok(())
    }

    async fn node_image(&self) -> Result<Option<Value>, KubeApiError> {
        Ok(self.cache.get(Kind::NodeImage, "", &self.name))
    }

    async fn node_image_missing(&self) -> Result<(), KubeApiError> {
        // The controller creates NodeImages; the watch brings it when it does.
        Ok(())
    }

    async fn write_status(&self, object: &Value) -> Result<(), KubeApiError> {
        let action = || format!("update the status of NodeImage {}", self.name);
        let written = match self.put_status(object).await {
            Err(e) if status_code(&e) == Some(409) => {
                // The controller changed the spec since the watch brought it: the status goes
                // over the object as it is now (the status is this agent's alone).
                let current = self
                    .api()
                    .get(&self.name)
                    .await
                    .map_err(|e| KubeApiError::new(action(), &self.server, e))?;
                let mut body = to_value(Kind::NodeImage, &current);
                body["status"] = object["status"].clone();
                self.put_status(&body).await
            }
            other => other,
        };
        let written = written.map_err(|e| KubeApiError::new(action(), &self.server, e))?;
        self.cache
            .remember(Kind::NodeImage, to_value(Kind::NodeImage, &written));
        Ok(())
    }

    async fn pull_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, KubeApiError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api.get_opt(name).await.map_err(|e| {
            KubeApiError::new(
                format!("read the pull secret {namespace}/{name}"),
                &self.server,
                e,
            )
        })?;
        Ok(secret
            .and_then(|s| s.data)
            .and_then(|mut d| d.remove(".dockerconfigjson"))
            .map(|b| b.0))
    }

    async fn changed(&self) {
        self.cache.changed().await;
    }
}
