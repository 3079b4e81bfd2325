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

/// Lines read per query.
const BATCH: i64 = 10_000;
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
        let mut text = String::new();
        let mut after = 0;
        loop {
            let batch = state
                .store
                .logs(&run.uid, q.task.as_deref(), q.step.as_deref(), after, BATCH)
                .await?;
            for l in &batch {
                text.push_str(&format!("[{}] {}\n", label(l), l.line));
                after = l.id;
            }
            if (batch.len() as i64) < BATCH {
                break;
            }
        }
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
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
        let data = json!({
            "id": l.id, "task": l.pipeline_task, "taskRun": l.taskrun,
            "step": l.step, "stream": l.stream, "ts": l.ts, "line": l.line,
        });
        events.push(
            Event::default()
                .event("log")
                .id(l.id.to_string())
                .data(data.to_string()),
        );
    }
}
