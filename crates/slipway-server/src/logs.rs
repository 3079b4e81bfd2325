//! Logs of a run: all stored lines as text, or followed live as Server-Sent Events until the
//! run ends.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use slipway_store::LogLine;

use crate::runs::RunPath;
use crate::{ApiError, AppState};

/// Lines read per query: a batch is held in memory while it is sent, and lines reach 64 KiB,
/// so this bounds what one reader costs the server (16 MiB at worst, far less for usual lines).
const BATCH: i64 = 256;
/// How often a followed run is read again when no commit of this process says it changed (its
/// writer may be another process).
const POLL: Duration = Duration::from_millis(500);

/// How often a followed stream checks that its token is still valid (a revoked token ends it).
const RECHECK: Duration = Duration::from_secs(1);

/// `?task=&step=&follow=`.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    task: Option<String>,
    step: Option<String>,
    #[serde(default)]
    follow: bool,
}

fn label(l: &LogLine) -> String {
    format!(
        "{}/{}",
        l.pipeline_task.as_deref().unwrap_or(&l.taskrun),
        l.step
    )
}

/// `GET /api/v1/runs/{name}/logs`: text, or an event stream with `?follow=true` or
/// `Accept: text/event-stream`.
pub async fn logs(
    State(state): State<AppState>,
    path: RunPath,
    Query(q): Query<LogQuery>,
    principal: Option<Extension<crate::auth::Principal>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run = path.find(&state).await?;
    let wants_events = q.follow
        || headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/event-stream"));
    if !wants_events {
        return Ok(text_body(state, run.uid, q).into_response());
    }
    struct Cursor {
        after: i64,
        done: bool,
        changes: tokio::sync::watch::Receiver<u64>,
        checked: tokio::time::Instant,
    }
    let principal = principal.map(|Extension(p)| p);
    let app = state.clone();
    let store = state.store.clone();
    let uid = run.uid.clone();
    let changes = store.follow(&uid);
    let stream = futures::stream::unfold(
        Cursor {
            after: 0,
            done: false,
            changes,
            checked: tokio::time::Instant::now(),
        },
        move |mut c| {
            let (store, uid, task, step) =
                (store.clone(), uid.clone(), q.task.clone(), q.step.clone());
            let (app, principal) = (app.clone(), principal.clone());
            async move {
                if c.done {
                    return None;
                }
                let mut events = Vec::new();
                loop {
                    if let Some(p) = &principal
                        && c.checked.elapsed() >= RECHECK
                    {
                        c.checked = tokio::time::Instant::now();
                        if !crate::auth::still_valid(&app, p).await {
                            events.push(revoked(p));
                            c.done = true;
                            break;
                        }
                    }
                    // Seen now: a commit after this point wakes the wait below.
                    c.changes.borrow_and_update();
                    let batch = store
                        .logs(&uid, task.as_deref(), step.as_deref(), c.after, BATCH)
                        .await
                        .unwrap_or_default();
                    push_lines(&mut events, &mut c.after, &batch);
                    if !events.is_empty() {
                        break;
                    }
                    // No new line: has the run ended? The status is read before the last look
                    // at the lines, so every line stored before the end is sent.
                    let status = store.run(&uid).await;
                    if status.as_ref().map_or(true, |r| r.status != "Unknown") {
                        let rest = store
                            .logs(&uid, task.as_deref(), step.as_deref(), c.after, BATCH)
                            .await
                            .unwrap_or_default();
                        push_lines(&mut events, &mut c.after, &rest);
                        if (rest.len() as i64) == BATCH {
                            break;
                        }
                        let (s, reason) = status.map(|r| (r.status, r.reason)).unwrap_or_default();
                        let data = json!({"status": s, "reason": reason});
                        events.push(Event::default().event("end").data(data.to_string()));
                        c.done = true;
                        break;
                    }
                    // Woken by this process's writer as lines land; runs written by another
                    // process on the same data directory are read again after a while.
                    tokio::select! {
                        _ = c.changes.changed() => {}
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
                Some((events, c))
            }
        },
    )
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Every stored line as text, sent as it is read a batch at a time: a run that logged
/// gigabytes is served without holding them.
fn text_body(state: AppState, uid: String, q: LogQuery) -> impl IntoResponse {
    let batches = futures::stream::unfold(Some(0), move |after| {
        let (store, uid, task, step) = (
            state.store.clone(),
            uid.clone(),
            q.task.clone(),
            q.step.clone(),
        );
        async move {
            let after = after?;
            let batch = match store
                .logs(&uid, task.as_deref(), step.as_deref(), after, BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => return Some((Err(std::io::Error::other(e)), None)),
            };
            let next = match batch.last() {
                Some(l) if (batch.len() as i64) == BATCH => Some(l.id),
                _ => None,
            };
            let mut text = String::new();
            for l in &batch {
                // `+`: this piece continues a line cut at the length cap.
                let mark = if l.continued { "+" } else { "" };
                text.push_str(&format!("[{}]{mark} {}\n", label(l), l.line));
            }
            Some((Ok(text), next))
        }
    });
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        axum::body::Body::from_stream(batches),
    )
}

/// The `error` event that ends a stream whose token was revoked: a `Status`, as the API's
/// errors are.
fn revoked(p: &crate::auth::Principal) -> Event {
    let status = json!({
        "apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "Unauthorized",
        "code": 401,
        "message": format!("the API token `{}` was revoked; this log stream ends", p.name),
    });
    Event::default().event("error").data(status.to_string())
}

/// Adds `log` events for lines, moving the cursor past them.
fn push_lines(events: &mut Vec<Event>, after: &mut i64, batch: &[LogLine]) {
    for l in batch {
        *after = l.id;
        let mut data = json!({
            "id": l.id, "task": l.pipeline_task, "taskRun": l.taskrun,
            "step": l.step, "stream": l.stream, "ts": l.ts, "line": l.line,
        });
        if l.continued {
            data["continued"] = json!(true);
        }
        events.push(
            Event::default()
                .event("log")
                .id(l.id.to_string())
                .data(data.to_string()),
        );
    }
}
