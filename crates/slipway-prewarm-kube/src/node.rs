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

#[cfg(test)]
mod tests {
    //! The agent's requests against kube's mock service.

    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::mock::{self, Seen};

    fn node_image(rv: &str) -> Value {
        json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "NodeImage",
               "metadata": {"name": "n1", "resourceVersion": rv, "uid": "u"},
               "spec": {"images": {"r/app": {"tags": [{"tag": "1", "version": 1}]}}}})
    }

    #[tokio::test]
    async fn the_agent_watches_only_its_node_image_and_writes_the_status_over_the_version_it_read()
    {
        let mut puts = 0;
        let (client, log) = mock::client(move |s: &Seen| match (s.method.as_str(), s.path()) {
            ("GET", "/apis/apps.kruise.io/v1alpha1/nodeimages/n1") => (200, node_image("7")),
            ("GET", "/apis/apps.kruise.io/v1alpha1/nodeimages") => {
                (200, mock::list(vec![node_image("5")]))
            }
            ("PUT", "/apis/apps.kruise.io/v1alpha1/nodeimages/n1/status") => {
                puts += 1;
                if puts == 1 {
                    (409, mock::status(409, "Conflict"))
                } else {
                    let mut o = s.body.clone();
                    o["metadata"]["resourceVersion"] = json!("8");
                    (200, o)
                }
            }
            ("GET", "/api/v1/namespaces/team/secrets/reg") => (
                200,
                json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                       "metadata": {"name": "reg", "namespace": "team"},
                       "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}}),
            ),
            _ => (404, mock::status(404, "NotFound")),
        });
        let node = KubeNode::connect(client, "http://mock", "n1", CancellationToken::new())
            .await
            .expect("connect");
        let started = tokio::time::Instant::now();
        let read = loop {
            if let Some(o) = node.node_image().await.expect("read") {
                break o;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the watch never listed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(read["metadata"]["resourceVersion"], "5");
        let mut object = read.clone();
        object["status"] = json!({"desired": 1, "succeeded": 1});
        node.write_status(&object).await.expect("status written");
        assert_eq!(
            node.pull_secret("team", "reg").await.expect("secret"),
            Some(br#"{"auths":{}}"#.to_vec())
        );
        let seen = log.lock().expect("lock").clone();
        // Every read of NodeImages is of its own: a GET by name, or a list/watch by field.
        for s in seen
            .iter()
            .filter(|s| s.uri.contains("nodeimages") && s.method == "GET")
        {
            assert!(
                s.path().ends_with("/nodeimages/n1")
                    || s.uri.contains("fieldSelector=metadata.name%3Dn1"),
                "{s:?}"
            );
        }
        assert!(seen.iter().any(|s| s.is_watch()), "no watch: {seen:?}");
        // The status goes to the subresource, first over the version the watch brought, then
        // (after the conflict) over the one read again; the spec is never written.
        let puts: Vec<&Seen> = seen.iter().filter(|s| s.method == "PUT").collect();
        assert_eq!(puts.len(), 2, "{seen:?}");
        for (p, rv) in puts.iter().zip(["5", "7"]) {
            assert_eq!(
                p.path(),
                "/apis/apps.kruise.io/v1alpha1/nodeimages/n1/status"
            );
            assert_eq!(p.body["metadata"]["resourceVersion"], rv);
            assert_eq!(p.body["status"]["succeeded"], 1);
        }
        assert!(
            !seen
                .iter()
                .any(|s| s.method == "POST" || s.method == "PATCH")
        );
        // What the agent wrote is what it reads next (not the watch's older copy).
        let after = node.node_image().await.expect("read").expect("there");
        assert_eq!(after["metadata"]["resourceVersion"], "8");
    }

    #[tokio::test]
    async fn a_refusal_at_start_is_said_with_the_server_s_words() {
        let (client, _) = mock::client(|_| (403, mock::status(403, "Forbidden")));
        let e = KubeNode::connect(client, "http://mock", "n1", CancellationToken::new())
            .await
            .expect_err("refused");
        assert_eq!(
            e.to_string(),
            "read NodeImage n1: the API server answered 403 Forbidden: the server says Forbidden"
        );
    }
}
