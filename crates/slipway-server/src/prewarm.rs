//! OpenKruise's pre-warming kinds at their Kubernetes paths
//! (`/apis/apps.kruise.io/{v1alpha1,v1beta1}/...`): ImagePullJobs and ImageListPullJobs in
//! namespaces, NodeImages cluster-scoped. List (with `labelSelector` and `fieldSelector`), get,
//! create, replace, merge-patch and delete, the `status` subresource, `resourceVersion`
//! preconditions and spec `generation`s. Every write is validated as OpenKruise's webhook does;
//! nothing invalid is stored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway_model::kinds::kruise::{GROUP, PrewarmKind, VERSIONS};
use slipway_model::library::Object;
use slipway_model::prewarm::Prewarm;
use slipway_model::validate::{Limits, validate_from};
use slipway_model::{Diagnostics, Library};
use slipway_store::{Expect, PrewarmKey, PrewarmObject, PrewarmOutcome};

use crate::access::Access;
use crate::catalog::BODY;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::{ApiError, AppState, diagnostics};

/// Which kind, at which version, in which namespace (`None`: cluster-scoped, or every
/// namespace for a list).
#[derive(Debug, Clone)]
struct Target {
    kind: PrewarmKind,
    version: String,
    namespace: Option<String>,
}

impl Target {
    fn new(version: &str, plural: &str, namespace: Option<String>) -> Result<Target, ApiError> {
        let path = || match &namespace {
            Some(ns) => format!("/apis/{GROUP}/{version}/namespaces/{ns}/{plural}"),
            None => format!("/apis/{GROUP}/{version}/{plural}"),
        };
        let Some(kind) = PrewarmKind::from_plural(plural).filter(|_| VERSIONS.contains(&version))
        else {
            return Err(ApiError::NoRoute(format!(
                "no endpoint {}: {GROUP} serves imagepulljobs, imagelistpulljobs and nodeimages at {}",
                path(),
                VERSIONS.join(" and ")
            )));
        };
        if !kind.namespaced() && namespace.is_some() {
            return Err(ApiError::NoRoute(format!(
                "no endpoint {}: NodeImages are cluster-scoped, at /apis/{GROUP}/{version}/nodeimages",
                path()
            )));
        }
        Ok(Target {
            kind,
            version: version.to_string(),
            namespace,
        })
    }

    fn key<'a>(&'a self, name: &'a str) -> PrewarmKey<'a> {
        PrewarmKey {
            kind: self.kind.kind(),
            namespace: self.namespace.as_deref().unwrap_or(""),
            name,
        }
    }

    /// Writes to cluster-scoped objects need a token for every namespace.
    fn writable(&self, access: &Access) -> Result<(), ApiError> {
        match (&self.namespace, access) {
            (Some(ns), _) => access.require(ns),
            (None, Access::All) => Ok(()),
            (None, Access::Only(_)) => Err(ApiError::Forbidden(format!(
                "{} are cluster-scoped; only a token for every namespace may change them",
                self.kind.plural()
            ))),
        }
    }
}

/// The part of an object a request reads or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Metadata and spec (the status is kept as stored).
    Main,
    /// The status subresource (metadata and spec are kept as stored).
    Status,
}

/// An object as the API shows it at `version`.
fn shown(o: &PrewarmObject, version: &str) -> Value {
    let mut v = o.object.clone();
    v["apiVersion"] = json!(format!("{GROUP}/{version}"));
    v["metadata"]["creationTimestamp"] = json!(crate::runs::timestamp(o.created_at));
    if !o.namespace.is_empty() {
        v["metadata"]["namespace"] = json!(o.namespace);
    }
    v
}

/// `?labelSelector=&fieldSelector=&watch=` of a list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub(crate) label_selector: Option<String>,
    pub(crate) field_selector: Option<String>,
    watch: Option<String>,
    #[allow(dead_code)]
    limit: Option<u64>,
    #[allow(dead_code)]
    resource_version: Option<String>,
}

async fn list(
    state: &AppState,
    access: &Access,
    t: &Target,
    q: &ListQuery,
) -> Result<Value, ApiError> {
    if q.watch.as_deref().is_some_and(|w| w == "true" || w == "1") {
        return Err(ApiError::BadRequest(format!(
            "watching {} is not supported yet; list again to see changes",
            t.kind.plural()
        )));
    }
    let labels = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))?;
    let fields = FieldSelector::parse(q.field_selector.as_deref().unwrap_or(""))?;
    let objects = state
        .store
        .prewarm_objects(t.kind.kind(), t.namespace.as_deref())
        .await?;
    let items: Vec<Value> = objects
        .iter()
        .filter(|o| !t.kind.namespaced() || access.permits(&o.namespace))
        .map(|o| shown(o, &t.version))
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let version = objects
        .iter()
        .map(|o| o.resource_version)
        .max()
        .unwrap_or(0);
    Ok(json!({
        "apiVersion": format!("{GROUP}/{}", t.version),
        "kind": format!("{}List", t.kind.kind()),
        "metadata": { "resourceVersion": version.to_string() },
        "items": items,
    }))
}

async fn current(state: &AppState, t: &Target, name: &str) -> Result<PrewarmObject, ApiError> {
    state
        .store
        .prewarm_object(t.key(name))
        .await?
        .ok_or_else(|| ApiError::NotFound {
            kind: t.kind.kind(),
            name: name.to_string(),
        })
}

/// The body's one object of the target's kind, loaded and validated by the model; problems are
/// a 422 naming their fields.
fn checked(body: &str, t: &Target) -> Result<Object<Prewarm>, ApiError> {
    let docs = crate::catalog::documents(body)?;
    let [doc] = docs.as_slice() else {
        return Err(ApiError::BadRequest(format!(
            "the body holds {} objects; send one {}",
            docs.len(),
            t.kind.kind()
        )));
    };
    if doc.kind() != t.kind.kind() {
        return Err(doc.problem(
            format!(
                "a {} was sent to the {} endpoint",
                doc.kind(),
                t.kind.plural()
            ),
            format!("send a {} here", t.kind.kind()),
        ));
    }
    let mut lib = Library::default();
    let mut diags = Diagnostics::default();
    lib.add_source(BODY.into(), body.to_string(), &mut diags);
    if diags.is_empty() {
        diags = validate_from(&lib, &Limits::default(), |_| true);
    }
    if let Some(first) = diags.0.first() {
        return Err(ApiError::Invalid {
            message: format!("{}: {}", first.location(), first.message),
            diagnostics: diagnostics::about(&diags, BODY, "error"),
        });
    }
    lib.prewarm
        .pop()
        .ok_or_else(|| ApiError::BadRequest(format!("the body holds no {}", t.kind.kind())))
}

/// What is stored of a checked object: the spec with defaults, the user's metadata without the
/// fields the server keeps, the namespace of the path; no status.
fn stored_form(o: &Object<Prewarm>, t: &Target) -> Result<Value, ApiError> {
    let mut v = o.to_document();
    if let Some(ns) = o.meta.namespace.as_deref()
        && let Some(want) = &t.namespace
        && ns != want
    {
        return Err(ApiError::BadRequest(format!(
            "the {} is in namespace `{ns}`, the request in `{want}`",
            t.kind.kind()
        )));
    }
    if let Some(meta) = v["metadata"].as_object_mut() {
        for managed in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "namespace",
        ] {
            meta.remove(managed);
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    Ok(v)
}

/// `metadata.resourceVersion` of a body, as a precondition.
fn precondition(v: &Value) -> Result<Option<i64>, ApiError> {
    match &v["metadata"]["resourceVersion"] {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(|_| {
            ApiError::Conflict(format!(
                "resourceVersion `{s}` is not one this server gave; read the object again"
            ))
        }),
        other => Err(ApiError::BadRequest(format!(
            "metadata.resourceVersion must be a string, not {other}"
        ))),
    }
}

async fn write(
    state: &AppState,
    t: &Target,
    name: &str,
    object: &Value,
    expect: Expect,
) -> Result<PrewarmObject, ApiError> {
    match state
        .store
        .write_prewarm_object(t.key(name), object, expect)
        .await?
    {
        PrewarmOutcome::Done(o) => Ok(o),
        PrewarmOutcome::Exists => Err(ApiError::Conflict(format!(
            "{} `{name}` already exists; replace it with PUT or `slipway apply`",
            t.kind.kind()
        ))),
        PrewarmOutcome::Missing => Err(ApiError::NotFound {
            kind: t.kind.kind(),
            name: name.to_string(),
        }),
        PrewarmOutcome::Stale(now) => Err(ApiError::Conflict(format!(
            "{} `{name}` has been changed (resourceVersion {now}); read it again and apply your change to that",
            t.kind.kind()
        ))),
    }
}

async fn create(
    state: &AppState,
    access: &Access,
    t: &Target,
    body: &Bytes,
) -> Result<Response, ApiError> {
    t.writable(access)?;
    let o = checked(crate::resources::text(body)?, t)?;
    let Some(name) = o.meta.name.clone() else {
        return Err(ApiError::BadRequest(format!(
            "the {} has no metadata.name",
            t.kind.kind()
        )));
    };
    let stored = write(state, t, &name, &stored_form(&o, t)?, Expect::Absent).await?;
    Ok((StatusCode::CREATED, Json(shown(&stored, &t.version))).into_response())
}

/// `PUT`: the main part creates or replaces (keeping the status); the status part replaces the
/// status of an existing object.
async fn replace(
    state: &AppState,
    access: &Access,
    t: &Target,
    name: &str,
    body: &Bytes,
    part: Part,
) -> Result<Response, ApiError> {
    t.writable(access)?;
    let o = checked(crate::resources::text(body)?, t)?;
    if o.meta.name.as_deref() != Some(name) {
        return Err(ApiError::BadRequest(format!(
            "the body names {} `{}` but the path names `{name}`",
            t.kind.kind(),
            o.meta.name.as_deref().unwrap_or("")
        )));
    }
    let given = precondition(&json!({ "metadata": o.meta }))?;
    let old = state.store.prewarm_object(t.key(name)).await?;
    let (new, expect) = merged(&o, t, old.as_ref(), part, given)?;
    let stored = write(state, t, name, &new, expect).await?;
    let code = if old.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(shown(&stored, &t.version))).into_response())
}

/// The object to store for a checked `o` over the stored `old`, and what the write expects.
fn merged(
    o: &Object<Prewarm>,
    t: &Target,
    old: Option<&PrewarmObject>,
    part: Part,
    given: Option<i64>,
) -> Result<(Value, Expect), ApiError> {
    let Some(old) = old else {
        if part == Part::Status {
            return Err(ApiError::NotFound {
                kind: t.kind.kind(),
                name: o.meta.name.clone().unwrap_or_default(),
            });
        }
        return Ok((stored_form(o, t)?, Expect::Absent));
    };
    let expect = Expect::Version(given.unwrap_or(old.resource_version));
    let new = match part {
        Part::Main => {
            let mut new = stored_form(o, t)?;
            if let Some(s) = old.object.get("status") {
                new["status"] = s.clone();
            }
            new
        }
        Part::Status => {
            let mut new = old.object.clone();
            match &o.spec.status {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            new
        }
    };
    Ok((new, expect))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

async fn patch(
    state: &AppState,
    access: &Access,
    t: &Target,
    name: &str,
    body: &Bytes,
    part: Part,
) -> Result<Response, ApiError> {
    t.writable(access)?;
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the patch is not JSON: {e}")))?;
    let given = precondition(&patch)?;
    let old = current(state, t, name).await?;
    let mut whole = shown(&old, &t.version);
    merge_patch(&mut whole, &patch);
    if whole["metadata"]["name"] != json!(name) {
        return Err(ApiError::BadRequest(
            "a patch cannot change metadata.name".into(),
        ));
    }
    // The patched object is checked whole, as Kubernetes validates the result of a patch.
    let text = serde_json::to_string_pretty(&whole).map_err(|e| ApiError::Encode(e.to_string()))?;
    let o = checked(&text, t)?;
    let (new, expect) = merged(&o, t, Some(&old), part, given)?;
    let stored = write(state, t, name, &new, expect).await?;
    Ok(Json(shown(&stored, &t.version)).into_response())
}

async fn remove(
    state: &AppState,
    access: &Access,
    t: &Target,
    name: &str,
) -> Result<Response, ApiError> {
    t.writable(access)?;
    match state.store.delete_prewarm_object(t.key(name), None).await? {
        PrewarmOutcome::Done(o) => Ok(Json(shown(&o, &t.version)).into_response()),
        _ => Err(ApiError::NotFound {
            kind: t.kind.kind(),
            name: name.to_string(),
        }),
    }
}

/// The verbs on one object (or its status).
async fn one(
    state: AppState,
    access: Access,
    method: axum::http::Method,
    t: Target,
    name: String,
    part: Part,
    body: Bytes,
) -> Result<Response, ApiError> {
    use axum::http::Method;
    match method {
        Method::GET => {
            let o = current(&state, &t, &name).await?;
            Ok(Json(shown(&o, &t.version)).into_response())
        }
        Method::PUT => replace(&state, &access, &t, &name, &body, part).await,
        Method::PATCH => patch(&state, &access, &t, &name, &body, part).await,
        Method::DELETE if part == Part::Main => remove(&state, &access, &t, &name).await,
        other => Err(ApiError::Rejected {
            code: StatusCode::METHOD_NOT_ALLOWED,
            message: format!(
                "{} does not take {other}",
                if part == Part::Status {
                    "a status subresource"
                } else {
                    "an object"
                }
            ),
        }),
    }
}

/// The verbs on a collection.
async fn collection(
    state: AppState,
    access: Access,
    method: axum::http::Method,
    t: Target,
    q: ListQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    use axum::http::Method;
    match method {
        Method::GET => Ok(Json(list(&state, &access, &t, &q).await?).into_response()),
        Method::POST if t.namespace.is_some() || !t.kind.namespaced() => {
            create(&state, &access, &t, &body).await
        }
        other => Err(ApiError::Rejected {
            code: StatusCode::METHOD_NOT_ALLOWED,
            message: format!(
                "{other} is not taken here; create {} under /apis/{GROUP}/{}/namespaces/NAMESPACE/{}",
                t.kind.plural(),
                t.version,
                t.kind.plural()
            ),
        }),
    }
}

/// The routes, for every served version.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::any;
    let base = format!("/apis/{GROUP}/{{version}}");
    axum::Router::new()
        .route(
            &format!("{base}/{{plural}}"),
            any(
                |State(s): State<AppState>,
                 a: Access,
                 m: axum::http::Method,
                 Path((v, p)): Path<(String, String)>,
                 Query(q): Query<ListQuery>,
                 b: Bytes| async move {
                    collection(s, a, m, Target::new(&v, &p, None)?, q, b).await
                },
            ),
        )
        .route(
            &format!("{base}/namespaces/{{namespace}}/{{plural}}"),
            any(
                |State(s): State<AppState>,
                 a: Access,
                 m: axum::http::Method,
                 Path((v, ns, p)): Path<(String, String, String)>,
                 Query(q): Query<ListQuery>,
                 b: Bytes| async move {
                    collection(s, a, m, Target::new(&v, &p, Some(ns))?, q, b).await
                },
            ),
        )
        .route(
            &format!("{base}/{{plural}}/{{name}}"),
            any(
                |State(s): State<AppState>,
                 a: Access,
                 m: axum::http::Method,
                 Path((v, p, n)): Path<(String, String, String)>,
                 b: Bytes| async move {
                    let t = Target::new(&v, &p, None)?;
                    cluster_only(&t)?;
                    one(s, a, m, t, n, Part::Main, b).await
                },
            ),
        )
        .route(
            &format!("{base}/{{plural}}/{{name}}/status"),
            any(
                |State(s): State<AppState>,
                 a: Access,
                 m: axum::http::Method,
                 Path((v, p, n)): Path<(String, String, String)>,
                 b: Bytes| async move {
                    let t = Target::new(&v, &p, None)?;
                    cluster_only(&t)?;
                    one(s, a, m, t, n, Part::Status, b).await
                },
            ),
        )
        .route(
            &format!("{base}/namespaces/{{namespace}}/{{plural}}/{{name}}"),
            any(
                |State(s): State<AppState>,
                 a: Access,
                 m: axum::http::Method,
                 Path((v, ns, p, n)): Path<(String, String, String, String)>,
                 b: Bytes| async move {
                    let t = Target::new(&v, &p, Some(ns))?;
                    one(s, a, m, t, n, Part::Main, b).await
                },
            ),
        )
        .route(
            &format!("{base}/namespaces/{{namespace}}/{{plural}}/{{name}}/status"),
            any(
                |State(s): State<AppState>,
                 a: Access,
                 m: axum::http::Method,
                 Path((v, ns, p, n)): Path<(String, String, String, String)>,
                 b: Bytes| async move {
                    let t = Target::new(&v, &p, Some(ns))?;
                    one(s, a, m, t, n, Part::Status, b).await
                },
            ),
        )
}

/// A namespaced kind's objects are reached through their namespace.
fn cluster_only(t: &Target) -> Result<(), ApiError> {
    if t.kind.namespaced() {
        return Err(ApiError::NoRoute(format!(
            "{} live in namespaces: use /apis/{GROUP}/{}/namespaces/NAMESPACE/{}/NAME",
            t.kind.plural(),
            t.version,
            t.kind.plural()
        )));
    }
    Ok(())
}

/// Whether a document of a body is one of the pre-warming kinds (it goes to [`prepare`]).
pub fn is_prewarm(o: &Value) -> bool {
    o["apiVersion"]
        .as_str()
        .is_some_and(|a| a.split('/').next() == Some(GROUP))
}

/// The pre-warming objects of an `/api/v1/apply` body, checked and placed, ready to store.
#[derive(Debug, Default)]
pub struct Prepared(Vec<(Target, String, Value)>);

/// Loads and validates the pre-warming objects of `body` (other documents blanked, so lines stay
/// the body's), places each in the request's namespace, else its own, else `default`, and
/// checks the token may write there. Nothing is stored.
pub fn prepare(access: &Access, namespace: Option<&str>, body: &str) -> Result<Prepared, ApiError> {
    let mut lib = Library::default();
    let mut diags = Diagnostics::default();
    lib.add_source(BODY.into(), body.to_string(), &mut diags);
    if diags.is_empty() {
        diags = validate_from(&lib, &Limits::default(), |_| true);
    }
    if let Some(first) = diags.0.first() {
        return Err(ApiError::Invalid {
            message: format!("{}: {}", first.location(), first.message),
            diagnostics: diagnostics::about(&diags, BODY, "error"),
        });
    }
    let mut out = Vec::new();
    for o in &lib.prewarm {
        let kind = o.kind();
        let ns = kind.namespaced().then(|| {
            namespace
                .or(o.meta.namespace.as_deref())
                .unwrap_or("default")
                .to_string()
        });
        if let Some(ns) = &ns
            && let Some(why) = slipway_model::names::dns_label_problem(ns)
        {
            return Err(ApiError::BadRequest(format!(
                "invalid namespace `{}`: {why}",
                slipway_model::names::shown(ns)
            )));
        }
        let version = o.api_version.split('/').nth(1).unwrap_or("v1alpha1");
        let t = Target {
            kind,
            version: version.to_string(),
            namespace: ns,
        };
        t.writable(access)?;
        let Some(name) = o.meta.name.clone() else {
            return Err(ApiError::BadRequest(format!(
                "the {} has no metadata.name; applied objects need one",
                kind.kind()
            )));
        };
        let form = stored_form(o, &t)?;
        out.push((t, name, form));
    }
    Ok(Prepared(out))
}

/// The stored object without what the server keeps itself, to compare with an applied one.
fn as_applied(stored: &Value) -> Value {
    let mut v = stored.clone();
    if let Some(meta) = v["metadata"].as_object_mut() {
        for managed in ["uid", "resourceVersion", "generation"] {
            meta.remove(managed);
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    v
}

/// Stores prepared objects as `kubectl apply` does (created, configured or unchanged; the status
/// kept); what happened to each, as `/api/v1/apply` answers.
pub async fn store(state: &AppState, prepared: Prepared) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    for (t, name, form) in prepared.0 {
        // A concurrent writer (the controller updating a status) only costs another round.
        let mut action = None;
        for _ in 0..5 {
            let old = state.store.prewarm_object(t.key(&name)).await?;
            let (new, expect) = match &old {
                Some(o) if as_applied(&o.object) == form => {
                    action = Some("unchanged");
                    break;
                }
                Some(o) => {
                    let mut new = form.clone();
                    if let Some(s) = o.object.get("status") {
                        new["status"] = s.clone();
                    }
                    (new, Expect::Version(o.resource_version))
                }
                None => (form.clone(), Expect::Absent),
            };
            let out = state
                .store
                .write_prewarm_object(t.key(&name), &new, expect)
                .await?;
            if let PrewarmOutcome::Done(_) = out {
                action = Some(if old.is_some() {
                    "configured"
                } else {
                    "created"
                });
                break;
            }
        }
        let Some(action) = action else {
            return Err(ApiError::Conflict(format!(
                "{} `{name}` kept changing while it was applied; apply again",
                t.kind.kind()
            )));
        };
        items.push(json!({
            "kind": t.kind.kind(), "name": name,
            "namespace": t.namespace, "action": action,
        }));
    }
    Ok(items)
}
