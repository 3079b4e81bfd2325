//! Webhook deliveries to EventListeners: interceptors decide, bindings and templates make the
//! runs, and the runs are queued with the delivery's ID so a redelivery creates nothing new.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use slipway_store::{Delivery, Enqueued};
use slipway_triggers::{Event, Outcome, TriggerError};

use crate::launch::{prepare_all, store_runs};
use crate::trigger_defs::StoredDefinitions;
use crate::{ApiError, AppState, catalog};

/// Headers that carry a delivery's ID, by sender.
const DELIVERY_HEADERS: &[&str] = &["X-GitHub-Delivery", "X-Gitlab-Event-UUID", "X-Request-Id"];

/// `POST /hooks/{listener}` (namespace `default`).
pub async fn default_namespace(
    State(state): State<AppState>,
    Path(listener): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    deliver(&state, "default", &listener, &headers, body).await
}

/// `POST /hooks/{namespace}/{listener}`.
pub async fn in_namespace(
    State(state): State<AppState>,
    Path((namespace, listener)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    deliver(&state, &namespace, &listener, &headers, body).await
}

async fn deliver(
    state: &AppState,
    namespace: &str,
    listener: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    state.dispatcher()?;
    let defs = StoredDefinitions::load(&state.store, namespace, &[]).await?;
    let spec = defs.listener(listener).ok_or_else(|| ApiError::NotFound {
        kind: "EventListener",
        name: listener.to_string(),
    })?;
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let form = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type") && v.starts_with("application/x-www-form-urlencoded")
    });
    let event = Event::new(headers, body.to_vec()).map_err(|e| {
        // GitHub's default content type for a new webhook is a form; Triggers read JSON.
        let hint = if form {
            "; set the webhook's content type to application/json"
        } else {
            ""
        };
        ApiError::BadRequest(format!("payload:{e}{hint}"))
    })?;
    let id = DELIVERY_HEADERS
        .iter()
        .find_map(|h| event.header(h))
        .map(str::to_string);
    let (code, reply) = deliver_event(state, namespace, listener, &spec, &defs, &event, id).await?;
    Ok((code, Json(reply)).into_response())
}

/// Runs a listener's triggers on an event and queues what they create; the status and reply.
pub(crate) async fn deliver_event(
    state: &AppState,
    namespace: &str,
    listener: &str,
    spec: &slipway_triggers::EventListenerSpec,
    defs: &StoredDefinitions,
    event: &Event,
    id: Option<String>,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let uid = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let summary = |runs: Vec<String>| json!({ "eventListener": listener, "namespace": namespace, "eventID": id.clone().unwrap_or_else(|| uid.clone()), "runs": runs });
    let fired = match slipway_triggers::deliver(spec, defs, event, &uid) {
        Ok(Outcome::Fired(f)) => f,
        Ok(Outcome::Skipped(triggers)) => {
            let mut reply = summary(Vec::new());
            reply["skipped"] = json!(triggers);
            return Ok((StatusCode::ACCEPTED, reply));
        }
        Err(e) => return Err(refused(e)),
    };
    let mut docs = String::new();
    for f in &fired {
        for r in &f.resources {
            let kind = r["kind"].as_str().unwrap_or("");
            if !matches!(kind, "PipelineRun" | "TaskRun") {
                return Err(ApiError::Conflict(format!(
                    "trigger `{}` creates a {kind}; slipway creates PipelineRuns and TaskRuns",
                    f.trigger
                )));
            }
            let mut r = r.clone();
            // What a listener creates lives in the listener's namespace, whatever the template says.
            r["metadata"]["namespace"] = json!(namespace);
            // Tekton Triggers labels what it creates with where it came from.
            let labels = &mut r["metadata"]["labels"];
            labels["triggers.tekton.dev/eventlistener"] = json!(listener);
            labels["triggers.tekton.dev/trigger"] = json!(f.trigger);
            labels["triggers.tekton.dev/triggers-eventid"] =
                json!(id.clone().unwrap_or_else(|| uid.clone()));
            docs.push_str(&format!("---\n{r}\n"));
        }
    }
    let (lib, _) = catalog::library(state, namespace, Some(&docs), &[]).await?;
    let mut runs = prepare_all(&lib, &lib.runs, namespace)?;
    let key = listener_key(namespace, listener);
    let delivery = id.as_deref().map(|id| Delivery { listener: &key, id });
    match store_runs(state, &mut runs, delivery).await? {
        Enqueued::Stored => {
            let names = runs.iter().map(|r| r.name.clone()).collect();
            Ok((StatusCode::ACCEPTED, summary(names)))
        }
        Enqueued::Duplicate(names) => {
            let mut reply = summary(names);
            reply["duplicate"] = json!(true);
            Ok((StatusCode::OK, reply))
        }
    }
}

/// How a listener's deliveries and polled heads are stored: listeners of one name in two
/// namespaces are kept apart; `default`'s keep the bare name they were stored under before
/// namespaces.
pub(crate) fn listener_key(namespace: &str, listener: &str) -> String {
    if namespace == slipway_store::DEFAULT_NAMESPACE {
        listener.to_string()
    } else {
        format!("{namespace}/{listener}")
    }
}

fn refused(e: TriggerError) -> ApiError {
    match e {
        TriggerError::Signature { .. } => ApiError::Forbidden(e.to_string()),
        TriggerError::Config { .. } => ApiError::Conflict(e.to_string()),
        other => ApiError::BadRequest(other.to_string()),
    }
}
