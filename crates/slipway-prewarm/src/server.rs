//! The agent's client of a slipway server: its Node (registration and heartbeats), its own
//! NodeImage (read by field selector, created when missing, status written back) and the pull
//! Secrets its tags name. Plain HTTP, as the rest of slipway speaks; the token is never shown.

use serde_json::{Value, json};

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The URL is not `http://HOST:PORT`.
    #[error("`{0}` is not a server URL (http://HOST:PORT)")]
    BadUrl(String),
    /// Nothing answered.
    #[error("failed to reach the slipway server at {url}")]
    Unreachable {
        /// The server's URL.
        url: String,
        /// The transport's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server said no.
    #[error("failed to {what}: the server answered {code}: {message}")]
    Refused {
        /// What was asked.
        what: String,
        /// The HTTP status.
        code: u16,
        /// The server's message.
        message: String,
    },
}

/// A slipway server, as one node's agent talks to it.
#[derive(Clone)]
pub struct Server {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A client of `url` with `token`.
    pub fn new(url: &str, token: Option<String>) -> Result<Server, ServerError> {
        if !url.starts_with("http://") {
            return Err(ServerError::BadUrl(url.to_string()));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|source| ServerError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        Ok(Server {
            base: url.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Sends a request; `None` for a 404.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Option<Value>, ServerError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let unreachable = |source| ServerError::Unreachable {
            url: self.base.clone(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let code = resp.status();
        if code == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text = resp.text().await.map_err(unreachable)?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !code.is_success() {
            let message = v["message"]
                .as_str()
                .map_or_else(|| text.chars().take(200).collect(), str::to_string);
            return Err(ServerError::Refused {
                what: what.to_string(),
                code: code.as_u16(),
                message,
            });
        }
        Ok(Some(v))
    }

    /// Creates or replaces the node (name, labels, status).
    pub async fn put_node(&self, node: &Value) -> Result<(), ServerError> {
        let name = node["metadata"]["name"].as_str().unwrap_or("");
        self.send(
            reqwest::Method::PUT,
            &format!("/api/v1/nodes/{name}"),
            Some(node),
            "register the node",
        )
        .await
        .map(|_| ())
    }

    /// Replaces the node's status (a heartbeat); `false` when the node is gone.
    pub async fn put_node_status(&self, node: &Value) -> Result<bool, ServerError> {
        let name = node["metadata"]["name"].as_str().unwrap_or("");
        let found = self
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/nodes/{name}/status"),
                Some(node),
                "send a heartbeat",
            )
            .await?;
        Ok(found.is_some())
    }

    /// The node's NodeImage, read as the agent of that node alone reads it.
    pub async fn node_image(&self, node: &str) -> Result<Option<Value>, ServerError> {
        let list = self
            .send(
                reqwest::Method::GET,
                &format!(
                    "/apis/apps.kruise.io/v1alpha1/nodeimages?fieldSelector=metadata.name%3D{node}"
                ),
                None,
                "read the node's NodeImage",
            )
            .await?;
        Ok(list.and_then(|l| l["items"].as_array().and_then(|i| i.first().cloned())))
    }

    /// Creates an empty NodeImage for the node (one that exists already is fine).
    pub async fn create_node_image(&self, node: &str) -> Result<(), ServerError> {
        let body = json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "NodeImage",
            "metadata": { "name": node }, "spec": {},
        });
        match self
            .send(
                reqwest::Method::POST,
                "/apis/apps.kruise.io/v1alpha1/nodeimages",
                Some(&body),
                "create the node's NodeImage",
            )
            .await
        {
            Err(ServerError::Refused { code: 409, .. }) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes the NodeImage's status (`object` is the NodeImage as read, with the new status).
    pub async fn put_node_image_status(&self, object: &Value) -> Result<(), ServerError> {
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let mut body = object.clone();
        // The status is this agent's alone: no precondition, the last write wins.
        if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        self.send(
            reqwest::Method::PUT,
            &format!("/apis/apps.kruise.io/v1alpha1/nodeimages/{name}/status"),
            Some(&body),
            "write the NodeImage's status",
        )
        .await
        .map(|_| ())
    }

    /// The Docker config JSON of pull Secret `namespace/name`, as handed to this node.
    pub async fn pull_secret(
        &self,
        node: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, ServerError> {
        let v = self
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/nodes/{node}/pullsecrets/{namespace}/{name}"),
                None,
                &format!("read the pull secret {namespace}/{name}"),
            )
            .await?;
        Ok(v.and_then(|v| {
            v["dockerconfigjson"]
                .as_str()
                .map(|s| s.as_bytes().to_vec())
        }))
    }
}
