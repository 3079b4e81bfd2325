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
    /// Namespace.
    pub namespace: String,
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

/// `key` when it can be the start of a uid: eight or more hex digits (and the dashes of the
/// uid's form), else `None`.
fn uid_prefix(key: &str) -> Option<&str> {
    let leading_hex = key.chars().take_while(char::is_ascii_hexdigit).count();
    let uid_chars = key.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    (leading_hex >= 8 && uid_chars).then_some(key)
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
}

fn run_row(r: &SqliteRow) -> RunRow {
    RunRow {
        uid: r.get("uid"),
        name: r.get("name"),
        namespace: r.get("namespace"),
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
    /// The newest top-level runs first, of every namespace.
    pub async fn list_runs(&self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        self.list_runs_in(None, limit).await
    }

    /// The newest top-level runs first, of one namespace (`None`: all).
    pub async fn list_runs_in(
        &self,
        namespace: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM runs WHERE parent_uid IS NULL AND (?1 IS NULL OR namespace = ?1) ORDER BY created_at DESC, rowid DESC LIMIT ?2")
            .bind(namespace)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
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

    /// The stored objects (JSON text, as written) of the newest top-level runs of one kind in
    /// the given namespaces (`None`: all): for lists served as they are, without parsing each
    /// object only to print it again.
    pub async fn run_objects_of(
        &self,
        kind: &str,
        namespaces: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let wanted = namespaces.map(|n| serde_json::json!(n).to_string());
        let rows = sqlx::query("SELECT object FROM runs WHERE parent_uid IS NULL AND kind = ?1 AND (?2 IS NULL OR namespace IN (SELECT value FROM json_each(?2))) ORDER BY created_at DESC, rowid DESC LIMIT ?3")
            .bind(kind)
            .bind(wanted)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>("object")).collect())
    }

    /// A run of any namespace by exact uid, uid prefix or name (the newest of that name).
    pub async fn find_run(&self, key: &str) -> Result<RunRow, StoreError> {
        self.find_run_in(None, key).await
    }

    /// A run of `namespace` (`None`: any) by its exact uid, its exact name (the newest of that
    /// name), or a prefix of its uid of at least eight hex digits. Nothing in `key` is a
    /// pattern: it is compared as it is.
    pub async fn find_run_in(
        &self,
        namespace: Option<&str>,
        key: &str,
    ) -> Result<RunRow, StoreError> {
        let prefix = uid_prefix(key);
        let row = sqlx::query(
            "SELECT * FROM runs WHERE (?1 IS NULL OR namespace = ?1) \
             AND (uid = ?2 OR name = ?2 OR (?3 IS NOT NULL AND substr(uid, 1, length(?3)) = ?3)) \
             ORDER BY uid = ?2 DESC, name = ?2 DESC, created_at DESC, rowid DESC LIMIT 1",
        )
        .bind(namespace)
        .bind(key)
        .bind(prefix)
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
            "SELECT l.id, l.step, l.stream, l.ts, l.line, t.name AS taskrun, t.pipeline_task FROM logs l JOIN task_runs t ON t.uid = l.taskrun_uid \
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
        match v {
            Some(s) => {
                let v = crate::secret::open_inputs(&self.keys(), uid, &s)?;
                Ok((!v.is_null()).then_some(v))
            }
            None => Ok(None),
        }
    }
}
