//! Kubernetes' `v1` Node, as far as pre-warming needs it: a node agent registers its node (name
//! and labels) at `/api/v1/nodes/NAME` and heartbeats through `/status` (a `Ready` condition
//! with `lastHeartbeatTime`); the controller chooses nodes by their labels and notices nodes that
//! stop answering. The pull credentials a node's tags name are handed to its agent here too.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use slipway_store::{Expect, PrewarmKey, PrewarmObject, PrewarmOutcome};

use crate::access::Access;
use crate::prewarm::ListQuery;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::{ApiError, AppState};

/// The kind nodes are stored under (cluster-scoped, beside the pre-warming kinds).
pub const NODE: &str = "Node";
/// The only Secret type a node may be handed.
const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";

fn key(name: &str) -> PrewarmKey<'_> {
    PrewarmKey {
        kind: NODE,
        namespace: "",
        name,
    }
}

fn shown(o: &PrewarmObject) -> Value {
    let mut v = o.object.clone();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!(NODE);
    v["metadata"]["creationTimestamp"] = json!(crate::runs::timestamp(o.created_at));
    v
}

/// Nodes are cluster-wide: only a token for every namespace changes them.
fn writable(access: &Access) -> Result<(), ApiError> {
    match access {
        Access::All => Ok(()),
        Access::Only(_) => Err(ApiError::Forbidden(
            "nodes are cluster-scoped; only a token for every namespace may change them".into(),
        )),
    }
}

/// The body as a Node named `name`: metadata (name, labels) and, when given, its status.
fn node_body(body: &Bytes, name: &str) -> Result<Value, ApiError> {
    if let Some(why) = slipway_model::names::dns_subdomain_problem(name) {
        return Err(ApiError::BadRequest(format!(
            "invalid node name `{}`: {why}",
            slipway_model::names::shown(name)
        )));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the Node is not JSON: {e}")))?;
    let given = v["metadata"]["name"].as_str().unwrap_or(name);
    if given != name {
        return Err(ApiError::BadRequest(format!(
            "the body names node `{}` but the path names `{name}`",
            slipway_model::names::shown(given)
        )));
    }
    let labels = match &v["metadata"]["labels"] {
        Value::Null => json!({}),
        Value::Object(m) if m.values().all(Value::is_string) => Value::Object(m.clone()),
        _ => {
            return Err(ApiError::BadRequest(
                "metadata.labels must map names to strings".into(),
            ));
        }
    };
    let mut node = json!({ "metadata": { "name": name, "labels": labels } });
    if v["status"].is_object() {
        node["status"] = v["status"].clone();
    }
    Ok(node)
}

async fn put(
    state: &AppState,
    name: &str,
    mut node: Value,
    status_only: bool,
) -> Result<Response, ApiError> {
    // Heartbeats and registrations race only with themselves; the last one wins.
    for _ in 0..5 {
        let old = state.store.prewarm_object(key(name)).await?;
        let expect = match &old {
            Some(o) => Expect::Version(o.resource_version),
            None if status_only => {
                return Err(ApiError::NotFound {
                    kind: NODE,
                    name: name.to_string(),
                });
            }
            None => Expect::Absent,
        };
        if let Some(o) = &old {
            if status_only {
                let status = node["status"].clone();
                node = o.object.clone();
                node["status"] = status;
            } else if node.get("status").is_none()
                && let Some(s) = o.object.get("status")
            {
                node["status"] = s.clone();
            }
        }
        if let PrewarmOutcome::Done(o) = state
            .store
            .write_prewarm_object(key(name), &node, expect)
            .await?
        {
            let code = if old.is_none() {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            return Ok((code, Json(shown(&o))).into_response());
        }
    }
    Err(ApiError::Conflict(format!(
        "node `{name}` kept changing while it was written; write again"
    )))
}

async fn list(state: &AppState, q: &ListQuery) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))?;
    let fields = FieldSelector::parse(q.field_selector.as_deref().unwrap_or(""))?;
    let nodes = state.store.prewarm_objects(NODE, Some("")).await?;
    let version = nodes.iter().map(|o| o.resource_version).max().unwrap_or(0);
    let items: Vec<Value> = nodes
        .iter()
        .map(shown)
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    Ok(Json(json!({
        "apiVersion": "v1", "kind": "NodeList",
        "metadata": { "resourceVersion": version.to_string() },
        "items": items,
    }))
    .into_response())
}

async fn one(
    state: AppState,
    access: Access,
    method: Method,
    name: String,
    status_only: bool,
    body: Bytes,
) -> Result<Response, ApiError> {
    match method {
        Method::GET => {
            let o = state
                .store
                .prewarm_object(key(&name))
                .await?
                .ok_or_else(|| ApiError::NotFound {
                    kind: NODE,
                    name: name.clone(),
                })?;
            Ok(Json(shown(&o)).into_response())
        }
        Method::PUT => {
            writable(&access)?;
            put(&state, &name, node_body(&body, &name)?, status_only).await
        }
        Method::DELETE if !status_only => {
            writable(&access)?;
            match state.store.delete_prewarm_object(key(&name), None).await? {
                PrewarmOutcome::Done(o) => Ok(Json(shown(&o)).into_response()),
                _ => Err(ApiError::NotFound { kind: NODE, name }),
            }
        }
        other => Err(ApiError::Rejected {
            code: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("a node does not take {other} here; PUT the whole object"),
        }),
    }
}

/// Whether node `node`'s NodeImage has a tag whose pull secrets name `namespace/name`.
async fn asked_for(
    state: &AppState,
    node: &str,
    namespace: &str,
    name: &str,
) -> Result<bool, ApiError> {
    let key = PrewarmKey {
        kind: "NodeImage",
        namespace: "",
        name: node,
    };
    let Some(image) = state.store.prewarm_object(key).await? else {
        return Ok(false);
    };
    let images = image.object["spec"]["images"].as_object().cloned();
    let asked = images.iter().flat_map(|m| m.values()).any(|i| {
        i["tags"].as_array().into_iter().flatten().any(|t| {
            t["pullSecrets"].as_array().into_iter().flatten().any(|s| {
                s["namespace"].as_str() == Some(namespace) && s["name"].as_str() == Some(name)
            })
        })
    });
    Ok(asked)
}

/// `GET /api/v1/nodes/NODE/pullsecrets/NAMESPACE/NAME`: the `.dockerconfigjson` of a pull
/// Secret, for the agent of a node whose NodeImage names it, to a token for every namespace.
/// No other Secret leaves the server, and none for a node that was not asked to use it.
async fn pull_secret(
    state: AppState,
    access: Access,
    node: String,
    namespace: String,
    name: String,
) -> Result<Response, ApiError> {
    writable(&access)?;
    let missing = || ApiError::NotFound {
        kind: "Secret",
        name: format!("{namespace}/{name}"),
    };
    if !asked_for(&state, &node, &namespace, &name).await? {
        return Err(ApiError::Forbidden(format!(
            "no tag of node `{node}` names the pull secret `{namespace}/{name}`"
        )));
    }
    let secret = state
        .store
        .resource("Secret", &namespace, &name)
        .await?
        .ok_or_else(missing)?;
    let o = &secret.object;
    if o["type"].as_str() != Some(DOCKER_CONFIG_JSON) {
        return Err(ApiError::BadRequest(format!(
            "Secret `{namespace}/{name}` is not of type {DOCKER_CONFIG_JSON}"
        )));
    }
    let encoded = o["data"][".dockerconfigjson"].as_str().map(str::to_string);
    let text = match (encoded, o["stringData"][".dockerconfigjson"].as_str()) {
        (Some(b), _) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Secret `{namespace}/{name}` holds no base64 .dockerconfigjson"
                ))
            })?,
        (None, Some(s)) => s.to_string(),
        (None, None) => return Err(missing()),
    };
    Ok(Json(json!({ "dockerconfigjson": text })).into_response())
}

/// The routes.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{any, get};
    axum::Router::new()
        .route(
            "/api/v1/nodes",
            get(
                |State(s): State<AppState>, Query(q): Query<ListQuery>| async move {
                    list(&s, &q).await
                },
            ),
        )
        .route(
            "/api/v1/nodes/{name}",
            any(
                |State(s): State<AppState>,
                 a: Access,
                 m: Method,
                 Path(n): Path<String>,
                 b: Bytes| async move { one(s, a, m, n, false, b).await },
            ),
        )
        .route(
            "/api/v1/nodes/{name}/status",
            any(
                |State(s): State<AppState>,
                 a: Access,
                 m: Method,
                 Path(n): Path<String>,
                 b: Bytes| async move { one(s, a, m, n, true, b).await },
            ),
        )
        .route(
            "/api/v1/nodes/{node}/pullsecrets/{namespace}/{name}",
            get(
                |State(s): State<AppState>,
                 a: Access,
                 Path((node, ns, n)): Path<(String, String, String)>| async move {
                    pull_secret(s, a, node, ns, n).await
                },
            ),
        )
}
