//! Queries for readers: run lists, one run, its task runs, its logs.

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{SqliteStore, StoreError};

/// A run as listed.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Uid.
    pub uid: String,
    /// Name.
    pub name: String,
    /// PipelineRun or TaskRun.
    pub kind: String,
    /// The Pipeline or Task.
    pub target: String,
    /// Parent run, for child PipelineRuns.
    pub parent_uid: Option<String>,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Condition reason.
    pub reason: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch.
    pub finished_at: Option<i64>,
    /// Process running it.
    pub owner_pid: Option<i64>,
    /// The object in Tekton's shape.
    pub object: Value,
}

/// A TaskRun of a run.
#[derive(Debug, Clone)]
pub struct TaskRunRow {
    /// Uid.
    pub uid: String,
    /// Name.
    pub name: String,
    /// Pipeline task.
    pub pipeline_task: Option<String>,
    /// Owning PipelineRun.
    pub parent_uid: Option<String>,
    /// Step names.
    pub steps: Vec<String>,
    /// `True`, `False`, `Unknown`.
    pub status: String,
    /// Condition reason.
    pub reason: String,
    /// Milliseconds since the epoch.
    pub started_at: Option<i64>,
    /// Milliseconds since the epoch.
    pub finished_at: Option<i64>,
    /// Retry attempt.
    pub attempt: i64,
    /// The TaskRun object, once finished.
    pub object: Option<Value>,
}

/// One stored log line.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Position, for following.
    pub id: i64,
    /// TaskRun name.
    pub taskrun: String,
    /// Pipeline task, if any.
    pub pipeline_task: Option<String>,
    /// Step name.
    pub step: String,
    /// stdout or stderr.
    pub stream: String,
    /// Milliseconds since the epoch.
    pub ts: i64,
    /// The text.
    pub line: String,
    /// This piece continues the line before it: the step wrote a line longer than
    /// [`slipway_engine::output::MAX_LINE`] bytes, stored in pieces.
    pub continued: bool,
}

fn run_row(r: &SqliteRow) -> RunRow {
    RunRow {
        uid: r.get("uid"),
        name: r.get("name"),
        kind: r.get("kind"),
        target: r.get("target"),
        parent_uid: r.get("parent_uid"),
        status: r.get("status"),
        reason: r.get("reason"),
        created_at: r.get("created_at"),
        finished_at: r.get("finished_at"),
        owner_pid: r.get("owner_pid"),
        object: serde_json::from_str(r.get::<&str, _>("object")).unwrap_or(Value::Null),
    }
}

impl SqliteStore {
    /// The newest top-level runs first.
    pub async fn list_runs(&self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM runs WHERE parent_uid IS NULL ORDER BY created_at DESC, rowid DESC LIMIT ?").bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(run_row).collect())
    }

    /// Top-level runs counted by kind, condition status and reason: `(kind, status, reason, n)`.
    pub async fn run_counts(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT kind, status, reason, count(*) AS n FROM runs WHERE parent_uid IS NULL GROUP BY kind, status, reason")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("kind"), r.get("status"), r.get("reason"), r.get("n")))
            .collect())
    }

    /// The stored objects (JSON text, as written) of the newest top-level runs of one kind: for
    /// lists served as they are, without parsing each object only to print it again.
    pub async fn run_objects_of(&self, kind: &str, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT object FROM runs WHERE parent_uid IS NULL AND kind = ? ORDER BY created_at DESC, rowid DESC LIMIT ?").bind(kind).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| r.get::<String, _>("object")).collect())
    }

    /// A run by uid, uid prefix or name (the newest of that name).
    pub async fn find_run(&self, key: &str) -> Result<RunRow, StoreError> {
        let row = sqlx::query("SELECT * FROM runs WHERE uid = ? OR name = ? OR (length(?) >= 8 AND uid LIKE ? || '%') ORDER BY created_at DESC, rowid DESC LIMIT 1")
            .bind(key).bind(key).bind(key).bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(run_row)
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    /// A run by exact uid.
    pub async fn run(&self, uid: &str) -> Result<RunRow, StoreError> {
        let row = sqlx::query("SELECT * FROM runs WHERE uid = ?")
            .bind(uid)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(run_row)
            .ok_or_else(|| StoreError::NotFound(uid.to_string()))
    }

    /// Every TaskRun under a top-level run (child pipelines included), in start order.
    pub async fn task_runs(&self, root_uid: &str) -> Result<Vec<TaskRunRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM task_runs WHERE root_uid = ? ORDER BY started_at, rowid")
                .bind(root_uid)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|r| TaskRunRow {
                uid: r.get("uid"),
                name: r.get("name"),
                pipeline_task: r.get("pipeline_task"),
                parent_uid: r.get("parent_uid"),
                steps: serde_json::from_str(r.get::<&str, _>("steps")).unwrap_or_default(),
                status: r.get("status"),
                reason: r.get("reason"),
                started_at: r.get("started_at"),
                finished_at: r.get("finished_at"),
                attempt: r.get("attempt"),
                object: r
                    .get::<Option<&str>, _>("object")
                    .and_then(|o| serde_json::from_str(o).ok()),
            })
            .collect())
    }

    /// Log lines of a run after `after_id`, optionally for one pipeline task (or TaskRun) and step.
    pub async fn logs(
        &self,
        root_uid: &str,
        task: Option<&str>,
        step: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.id, l.step, l.stream, l.ts, l.line, l.continued, t.name AS taskrun, t.pipeline_task FROM logs l JOIN task_runs t ON t.uid = l.taskrun_uid \
             WHERE l.root_uid = ? AND l.id > ? AND (? IS NULL OR t.pipeline_task = ? OR t.name = ?) AND (? IS NULL OR l.step = ?) ORDER BY l.id LIMIT ?",
        )
        .bind(root_uid).bind(after_id).bind(task).bind(task).bind(task).bind(step).bind(step).bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| LogLine {
                id: r.get("id"),
                taskrun: r.get("taskrun"),
                pipeline_task: r.get("pipeline_task"),
                step: r.get("step"),
                stream: r.get("stream"),
                ts: r.get("ts"),
                line: r.get("line"),
                continued: r.get("continued"),
            })
            .collect())
    }

    /// Notices and skip reasons recorded for a run.
    pub async fn notices(
        &self,
        root_uid: &str,
    ) -> Result<Vec<(String, String, Value)>, StoreError> {
        let rows = sqlx::query("SELECT kind, subject, detail FROM events WHERE root_uid = ? AND kind IN ('Notice', 'TaskSkipped') ORDER BY id").bind(root_uid).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get("kind"),
                    r.get("subject"),
                    serde_json::from_str(r.get::<&str, _>("detail")).unwrap_or(Value::Null),
                )
            })
            .collect())
    }

    /// The documents a run was started from.
    pub async fn inputs(&self, uid: &str) -> Result<Option<Value>, StoreError> {
        let v: Option<String> = sqlx::query_scalar("SELECT inputs FROM run_inputs WHERE uid = ?")
            .bind(uid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.and_then(|s| serde_json::from_str(&s).ok()))
    }
}
