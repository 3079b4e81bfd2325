//! Tasks, Pipelines, StepActions, ConfigMaps and Secrets: apply, list, get, delete, and the
//! editor's check-as-you-type.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway_store::{NewResource, Resource};

use crate::access::Access;
use crate::catalog::{self, BodyDocument, Kind};
use crate::trigger_defs::StoredDefinitions;
use crate::{ApiError, AppState};

/// `?namespace=` for the endpoints outside a namespace path.
#[derive(Debug, Deserialize)]
pub struct NamespaceQuery {
    namespace: Option<String>,
}

impl NamespaceQuery {
    /// The namespace, `default` when not given.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// The namespace, when given.
    pub fn given(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

/// The request body as text.
pub fn text(body: &Bytes) -> Result<&str, ApiError> {
    let s = std::str::from_utf8(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8 text: {e}")))?;
    if s.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "the body is empty; send the object as YAML or JSON".into(),
        ));
    }
    Ok(s)
}

/// A stored object as the API shows it: Kubernetes metadata filled in, Secret values hidden.
pub fn shown(r: &Resource) -> Value {
    let mut o = r.object.clone();
    o["metadata"]["namespace"] = json!(r.namespace);
    o["metadata"]["uid"] = json!(r.uid);
    o["metadata"]["creationTimestamp"] = json!(crate::runs::timestamp(r.created_at));
    if r.kind == "Secret" {
        redact_secret(&mut o);
    }
    o
}

/// Secret values never leave the server; their keys do.
fn redact_secret(o: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(m) = o.get_mut(field).and_then(Value::as_object_mut) {
            for v in m.values_mut() {
                *v = json!("<redacted>");
            }
        }
    }
}

/// What apply did to one object, as kubectl says it.
fn action(created: bool) -> &'static str {
    if created { "created" } else { "configured" }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// POST to a collection: the object must be new.
    Create,
    /// PUT to an object: create or replace that one.
    Replace,
    /// `/api/v1/apply`: create or replace each.
    Apply,
}

/// Checks, validates against the namespace's other definitions, and stores every document of
/// `body`, all or none.
async fn apply_body(
    state: &AppState,
    access: &Access,
    namespace: Option<&str>,
    body: &str,
    only: Option<(Kind, Option<&str>)>,
    mode: Mode,
) -> Result<Vec<Value>, ApiError> {
    let docs = catalog::documents(body)?;
    // Each document goes to the request's namespace; without one (`kubectl apply -f` without
    // `-n`), to its own `metadata.namespace`, else `default`.
    let mut placed: Vec<(&BodyDocument, String)> = Vec::new();
    for d in &docs {
        let ns = match namespace {
            Some(ns) => ns.to_string(),
            None => d.object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
        };
        check_document(d, &ns, only)?;
        access.require(&ns)?;
        placed.push((d, ns));
    }
    let mut namespaces: Vec<&str> = placed.iter().map(|(_, ns)| ns.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    for ns in &namespaces {
        let mine: Vec<BodyDocument> = placed
            .iter()
            .filter(|(_, n)| n == ns)
            .map(|(d, _)| (*d).clone())
            .collect();
        let keys: Vec<(String, String)> = mine
            .iter()
            .map(|d| (d.kind().to_string(), d.name().unwrap_or("").to_string()))
            .collect();
        if mode == Mode::Create {
            for (k, n) in &keys {
                if state.store.resource(k, ns, n).await?.is_some() {
                    return Err(ApiError::Conflict(format!(
                        "{k} `{n}` already exists in namespace `{ns}`; replace it with PUT or /api/v1/apply"
                    )));
                }
            }
        }
        let body = if namespaces.len() == 1 {
            body.to_string()
        } else {
            catalog::only(body, |o| {
                namespace.is_none()
                    && o["metadata"]["namespace"].as_str().unwrap_or("default") != *ns
            })
        };
        catalog::library(state, ns, Some(&body), &keys).await?;
        let defs = StoredDefinitions::load(&state.store, ns, &mine).await?;
        crate::trigger_defs::check(&mine, &defs)?;
    }
    let mut items = Vec::new();
    let mut changed = Vec::new();
    for (d, ns) in &placed {
        let (k, n) = (d.kind(), d.name().unwrap_or(""));
        let old = state.store.resource(k, ns, n).await?;
        if old.as_ref().is_some_and(|o| o.yaml == d.yaml) {
            items.push(json!({ "kind": k, "name": n, "namespace": ns, "action": "unchanged" }));
        } else {
            changed.push((*d, ns.as_str()));
        }
    }
    let new: Vec<NewResource> = changed
        .iter()
        .map(|(d, ns)| NewResource {
            kind: d.kind(),
            namespace: ns,
            name: d.name().unwrap_or(""),
            yaml: &d.yaml,
            object: &d.object,
        })
        .collect();
    let created = state.store.put_resources(&new).await?;
    state.catalog.changed();
    for ((d, ns), c) in changed.iter().zip(created) {
        items.push(
            json!({ "kind": d.kind(), "name": d.name(), "namespace": ns, "action": action(c) }),
        );
    }
    Ok(items)
}

fn check_document(
    d: &BodyDocument,
    namespace: &str,
    only: Option<(Kind, Option<&str>)>,
) -> Result<(), ApiError> {
    let kind = d.kind();
    if matches!(kind, "PipelineRun" | "TaskRun") {
        return Err(d.problem(
            format!("a {kind} is started, not applied"),
            format!(
                "POST it to /apis/tekton.dev/v1/namespaces/{namespace}/{}s",
                kind.to_lowercase()
            ),
        ));
    }
    let Some(k) = Kind::named(kind) else {
        let known: Vec<&str> = catalog::KINDS.iter().map(|k| k.kind).collect();
        return Err(d.problem(
            format!("kind `{kind}` cannot be applied"),
            format!("apply one of: {}", known.join(", ")),
        ));
    };
    let Some(name) = d.name() else {
        return Err(d.problem(
            format!("the {kind} has no metadata.name"),
            "stored objects need a name (generateName is for runs)",
        ));
    };
    if let Some(why) = slipway_model::names::dns_label_problem(namespace) {
        return Err(d.problem(
            format!(
                "invalid namespace `{}`: {why}",
                slipway_model::names::shown(namespace)
            ),
            "use lowercase letters, digits and '-', at most 63 characters",
        ));
    }
    if let Some(ns) = d.object["metadata"]["namespace"].as_str()
        && ns != namespace
    {
        return Err(d.problem(
            format!("the {kind} is in namespace `{ns}`, the request in `{namespace}`"),
            "drop metadata.namespace or send it to its namespace",
        ));
    }
    if let Some((want, want_name)) = only {
        if want.kind != k.kind {
            return Err(d.problem(
                format!("a {kind} was sent to the {} endpoint", want.plural),
                format!("send it to {}", k.collection(namespace)),
            ));
        }
        if let Some(w) = want_name
            && w != name
        {
            return Err(ApiError::BadRequest(format!(
                "the body names {kind} `{name}` but the path names `{w}`"
            )));
        }
    }
    Ok(())
}

/// `GET` a collection.
pub async fn list(state: AppState, kind: Kind, namespace: String) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = state
        .store
        .resources(Some(kind.kind), &namespace)
        .await?
        .iter()
        .map(shown)
        .collect();
    Ok(Json(json!({
        "apiVersion": kind.api,
        "kind": format!("{}List", kind.kind),
        "metadata": {},
        "items": items,
    })))
}

/// `GET` one: JSON, or the YAML as applied with `Accept: application/yaml`.
pub async fn get(
    state: AppState,
    kind: Kind,
    (namespace, name): (String, String),
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let r = found(&state, kind, &namespace, &name).await?;
    let wants_yaml = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("yaml"));
    if wants_yaml {
        let yaml = if r.kind == "Secret" {
            let o = shown(&r);
            serde_saphyr::to_string(&o).map_err(|e| ApiError::Encode(e.to_string()))?
        } else {
            r.yaml.clone()
        };
        return Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response());
    }
    Ok(Json(shown(&r)).into_response())
}

/// `POST` to a collection: creates the object (409 when it exists).
pub async fn create(
    state: AppState,
    kind: Kind,
    namespace: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let items = apply_body(
        &state,
        &Access::All,
        Some(&namespace),
        text(&body)?,
        Some((kind, None)),
        Mode::Create,
    )
    .await?;
    stored_reply(&state, kind, &namespace, &items, StatusCode::CREATED).await
}

/// `PUT` an object: creates or replaces it.
pub async fn replace(
    state: AppState,
    kind: Kind,
    (namespace, name): (String, String),
    body: Bytes,
) -> Result<Response, ApiError> {
    let items = apply_body(
        &state,
        &Access::All,
        Some(&namespace),
        text(&body)?,
        Some((kind, Some(&name))),
        Mode::Replace,
    )
    .await?;
    let code = if items.iter().any(|i| i["action"] == "created") {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    stored_reply(&state, kind, &namespace, &items, code).await
}

async fn stored_reply(
    state: &AppState,
    kind: Kind,
    namespace: &str,
    items: &[Value],
    code: StatusCode,
) -> Result<Response, ApiError> {
    let Some(name) = items.first().and_then(|i| i["name"].as_str()) else {
        return Err(ApiError::BadRequest("the body holds no object".into()));
    };
    let r = found(state, kind, namespace, name).await?;
    Ok((code, Json(shown(&r))).into_response())
}

/// A stored object, or a 404 naming it.
async fn found(
    state: &AppState,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Result<Resource, ApiError> {
    state
        .store
        .resource(kind.kind, namespace, name)
        .await?
        .ok_or(ApiError::NotFound {
            kind: kind.kind,
            name: name.to_string(),
        })
}

/// `DELETE` an object.
pub async fn delete(
    state: AppState,
    kind: Kind,
    (namespace, name): (String, String),
) -> Result<Json<Value>, ApiError> {
    if !state
        .store
        .delete_resource(kind.kind, &namespace, &name)
        .await?
    {
        return Err(ApiError::NotFound {
            kind: kind.kind,
            name,
        });
    }
    state.catalog.changed();
    Ok(Json(json!({
        "apiVersion": "v1", "kind": "Status", "status": "Success",
        "details": { "name": name, "kind": kind.plural },
    })))
}

/// `POST /api/v1/apply?namespace=`: every document of a multi-document body, like
/// `kubectl apply -f`; all or none.
pub async fn apply(
    State(state): State<AppState>,
    access: Access,
    Query(q): Query<NamespaceQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = text(&body)?;
    // Pre-warming objects have their own store; each part is checked before either is stored.
    // Hidden documents keep their lines, so diagnostics point into the body as sent.
    let docs = catalog::documents(body)?;
    let prewarm = if docs.iter().any(|d| crate::prewarm::is_prewarm(&d.object)) {
        crate::prewarm::prepare(
            &access,
            q.namespace.as_deref(),
            &catalog::only(body, |o| !crate::prewarm::is_prewarm(o)),
        )?
    } else {
        Default::default()
    };
    let mut items = Vec::new();
    if docs.iter().any(|d| !crate::prewarm::is_prewarm(&d.object)) {
        items = apply_body(
            &state,
            &access,
            q.namespace.as_deref(),
            &catalog::only(body, crate::prewarm::is_prewarm),
            None,
            Mode::Apply,
        )
        .await?;
    }
    items.extend(crate::prewarm::store(&state, prewarm).await?);
    Ok(Json(json!({ "items": items })))
}

/// `POST /api/v1/validate?namespace=`: the body's diagnostics against the stored definitions;
/// always 200, with an empty list when the body is valid.
pub async fn validate(
    State(state): State<AppState>,
    Query(q): Query<NamespaceQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let diagnostics = match text(&body) {
        Ok(t) => catalog::check(&state, q.namespace(), t).await?,
        Err(e) => vec![json!({
            "severity": "error", "message": e.to_string(), "hint": null, "file": catalog::BODY,
            "line": 1, "column": 1, "endLine": 1, "endColumn": 1,
        })],
    };
    Ok(Json(json!({ "diagnostics": diagnostics })))
}

/// Routes for every appliable kind's collection and objects.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get as get_route;
    let mut r = axum::Router::new();
    for &kind in catalog::KINDS {
        let collection = kind.collection("{namespace}");
        let one = format!("{collection}/{{name}}");
        r = r
            .route(
                &collection,
                get_route(move |State(s): State<AppState>, Path(ns): Path<String>| {
                    list(s, kind, ns)
                })
                .post(
                    move |State(s): State<AppState>, Path(ns): Path<String>, body: Bytes| {
                        create(s, kind, ns, body)
                    },
                ),
            )
            .route(
                &one,
                get_route(
                    move |State(s): State<AppState>,
                          Path(p): Path<(String, String)>,
                          h: HeaderMap| { get(s, kind, p, h) },
                )
                .put(
                    move |State(s): State<AppState>,
                          Path(p): Path<(String, String)>,
                          body: Bytes| { replace(s, kind, p, body) },
                )
                .delete(
                    move |State(s): State<AppState>, Path(p): Path<(String, String)>| {
                        delete(s, kind, p)
                    },
                ),
            );
    }
    r
}
