//! The writer task: applies events in batches, one transaction per batch.

use serde_json::json;
use slipway_engine::RunEvent;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::mpsc;

use crate::{Msg, millis};

const BATCH: usize = 4096;
/// How long the writer gathers events after the first of a batch.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

/// Runs until every sender is gone.
pub(crate) async fn writer(
    pool: SqlitePool,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    watchers: std::sync::Arc<crate::watch::Watchers>,
) {
    let (pid, start) = crate::recover::me();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        // A TaskRun reports a few events within a millisecond (start, steps, end); one transaction
        // for them costs far less than one each. A flush request ends the gathering at once.
        let window = tokio::time::Instant::now() + GATHER;
        while batch.len() < BATCH && !matches!(batch.last(), Some(Msg::Flush(_))) {
            match tokio::time::timeout_at(window, rx.recv()).await {
                Ok(Some(m)) => batch.push(m),
                Ok(None) | Err(_) => break,
            }
        }
        let mut flushes = Vec::new();
        let mut events = Vec::with_capacity(batch.len());
        for m in batch {
            match m {
                Msg::Event(ev) => events.push(ev),
                Msg::Flush(done) => flushes.push(done),
            }
        }
        // IMMEDIATE takes the write lock up front, so a busy database is met (and waited for)
        // at BEGIN rather than halfway through; a batch that still fails is tried again.
        let result = crate::retry_busy(|| async {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            for ev in &events {
                apply(&mut tx, ev, pid, start).await?;
            }
            tx.commit().await
        })
        .await;
        match result {
            Ok(()) => watchers.touched(events.iter().filter_map(|e| root_of(e))),
            Err(e) => tracing::error!("failed to write {} run events: {e}", events.len()),
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}

/// The top-level run an event belongs to, for the events followers wait on.
fn root_of(ev: &RunEvent) -> Option<&str> {
    match ev {
        RunEvent::Log { root, .. }
        | RunEvent::TaskRunFinished { root, .. }
        | RunEvent::Notice { root, .. } => Some(root),
        RunEvent::RunFinished { uid, .. } => Some(uid),
        RunEvent::RunStarted { run, .. } => Some(run.parent_uid.as_deref().unwrap_or(&run.uid)),
        _ => None,
    }
}

fn cond(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

async fn event_row(
    tx: &mut Transaction<'_, Sqlite>,
    root: &str,
    ts: i64,
    kind: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO events (root_uid, ts, kind, subject, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(root)
        .bind(ts)
        .bind(kind)
        .bind(subject)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn results(
    tx: &mut Transaction<'_, Sqlite>,
    owner: &str,
    object: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    for r in object
        .pointer("/status/results")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = r.get("name").and_then(|n| n.as_str()).unwrap_or("");
        let value = r.get("value").cloned().unwrap_or_default();
        sqlx::query("INSERT OR REPLACE INTO results (owner_uid, name, value) VALUES (?, ?, ?)")
            .bind(owner)
            .bind(name)
            .bind(value.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn apply(
    tx: &mut Transaction<'_, Sqlite>,
    ev: &RunEvent,
    pid: i64,
    start: i64,
) -> Result<(), sqlx::Error> {
    match ev {
        RunEvent::RunStarted { run, object } => {
            let root = run.parent_uid.clone().unwrap_or_else(|| run.uid.clone());
            // The engine stamps every run object with the namespace it runs in.
            let namespace = crate::namespace::of_object(object);
            sqlx::query("INSERT OR REPLACE INTO runs (uid, name, kind, target, parent_uid, created_at, owner_pid, owner_start, object, namespace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&run.uid).bind(&run.name).bind(run.kind).bind(&run.target).bind(&run.parent_uid).bind(millis(run.created)).bind(pid).bind(start).bind(object.to_string()).bind(namespace)
                .execute(&mut **tx).await?;
            event_row(
                tx,
                &root,
                millis(run.created),
                "RunStarted",
                &run.name,
                json!({ "kind": run.kind }),
            )
            .await?;
        }
        RunEvent::TaskRunStarted { info, at } => {
            sqlx::query("INSERT INTO task_runs (uid, root_uid, parent_uid, name, pipeline_task, attempt, steps, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(uid) DO UPDATE SET attempt = excluded.attempt, steps = excluded.steps, status = 'Unknown', reason = 'Running', started_at = excluded.started_at")
                .bind(&info.uid).bind(&info.root_uid).bind(&info.parent_uid).bind(&info.name).bind(&info.pipeline_task).bind(i64::from(info.attempt)).bind(json!(info.steps).to_string()).bind(millis(*at))
                .execute(&mut **tx).await?;
            if info.attempt > 0 {
                // A retry starts its steps afresh.
                sqlx::query("DELETE FROM steps WHERE taskrun_uid = ?")
                    .bind(&info.uid)
                    .execute(&mut **tx)
                    .await?;
            }
            event_row(
                tx,
                &info.root_uid,
                millis(*at),
                "TaskRunStarted",
                &info.name,
                json!({ "attempt": info.attempt }),
            )
            .await?;
        }
        RunEvent::StepStarted { taskrun, step, at } => {
            sqlx::query(
                "INSERT OR REPLACE INTO steps (taskrun_uid, idx, started_at) VALUES (?, ?, ?)",
            )
            .bind(taskrun)
            .bind(*step as i64)
            .bind(millis(*at))
            .execute(&mut **tx)
            .await?;
        }
        RunEvent::StepFinished {
            taskrun,
            step,
            end,
            at,
        } => {
            sqlx::query("INSERT INTO steps (taskrun_uid, idx, finished_at, exit_code, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT(taskrun_uid, idx) DO UPDATE SET finished_at = excluded.finished_at, exit_code = excluded.exit_code, reason = excluded.reason")
                .bind(taskrun).bind(*step as i64).bind(millis(*at)).bind(end.exit_code()).bind(end.reason())
                .execute(&mut **tx).await?;
        }
        RunEvent::Log {
            root,
            taskrun,
            step,
            stream,
            line,
            at,
        } => {
            sqlx::query("INSERT INTO logs (root_uid, taskrun_uid, step, stream, ts, line) VALUES (?, ?, ?, ?, ?, ?)").bind(root).bind(taskrun).bind(step).bind(stream.as_str()).bind(millis(*at)).bind(line).execute(&mut **tx).await?;
        }
        RunEvent::TaskRunFinished {
            uid,
            root,
            reason,
            succeeded,
            object,
        } => {
            let finished = std::time::SystemTime::now();
            sqlx::query("UPDATE task_runs SET status = ?, reason = ?, finished_at = ?, object = ? WHERE uid = ?").bind(cond(*succeeded)).bind(reason).bind(millis(finished)).bind(object.to_string()).bind(uid).execute(&mut **tx).await?;
            results(tx, uid, object).await?;
            event_row(
                tx,
                root,
                millis(finished),
                "TaskRunFinished",
                uid,
                json!({ "reason": reason }),
            )
            .await?;
        }
        RunEvent::TaskSkipped {
            run,
            pipeline_task,
            reason,
        } => {
            event_row(
                tx,
                run,
                millis(std::time::SystemTime::now()),
                "TaskSkipped",
                pipeline_task,
                json!({ "reason": reason }),
            )
            .await?;
        }
        // Progress is for live displays; the outcome of a pull shows in the TaskRun.
        RunEvent::Pull { .. } => {}
        RunEvent::Notice { root, message } => {
            event_row(
                tx,
                root,
                millis(std::time::SystemTime::now()),
                "Notice",
                "",
                json!({ "message": message }),
            )
            .await?;
        }
        RunEvent::RunFinished {
            uid,
            reason,
            succeeded,
            object,
        } => {
            let finished = std::time::SystemTime::now();
            sqlx::query(
                "UPDATE runs SET status = ?, reason = ?, finished_at = ?, object = ? WHERE uid = ?",
            )
            .bind(cond(*succeeded))
            .bind(reason)
            .bind(millis(finished))
            .bind(object.to_string())
            .bind(uid)
            .execute(&mut **tx)
            .await?;
            results(tx, uid, object).await?;
            event_row(
                tx,
                uid,
                millis(finished),
                "RunFinished",
                uid,
                json!({ "reason": reason }),
            )
            .await?;
        }
    }
    Ok(())
}
