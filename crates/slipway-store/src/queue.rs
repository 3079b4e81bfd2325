//! The durable run queue: a run is written here, with its inputs, before the API acknowledges it,
//! and a server started after a crash finds every run it had accepted but not started.

use serde_json::{Value, json};
use sqlx::Row;

use crate::{SqliteStore, StoreError, millis, retry_busy};

/// The reason a queued run carries until it starts (Tekton's name for a held PipelineRun).
pub const PENDING: &str = "PipelineRunPending";

/// A run to queue.
#[derive(Debug, Clone)]
pub struct Enqueue {
    /// Uid.
    pub uid: String,
    /// Name.
    pub name: String,
    /// The `generateName` prefix the name was made from, when it was generated (a taken name
    /// is then made again rather than refused).
    pub generate_name: Option<String>,
    /// `PipelineRun` or `TaskRun`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// The Pipeline or Task it runs (empty when embedded), for per-Pipeline limits.
    pub target: String,
    /// Higher starts first; equal priorities start in arrival order.
    pub priority: i64,
    /// Held by the user (`spec.status: PipelineRunPending`): queued but not started until released.
    pub held: bool,
    /// The run object as it is shown while it waits.
    pub object: Value,
    /// What `rerun` and the dispatcher need to start it: the documents and the run.
    pub inputs: Value,
}

/// A queued run, as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Arrival order.
    pub seq: i64,
    /// Uid.
    pub uid: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// The Pipeline or Task it runs.
    pub target: String,
    /// Priority.
    pub priority: i64,
    /// Held by the user.
    pub held: bool,
}

/// A webhook delivery that created runs.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The EventListener.
    pub listener: &'a str,
    /// The delivery ID from the sender (`X-GitHub-Delivery`, `X-Gitlab-Event-UUID`, ...).
    pub id: &'a str,
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The runs are stored.
    Stored,
    /// The delivery was seen before; these are the names of the runs it created then.
    Duplicate(Vec<String>),
}

impl SqliteStore {
    /// Stores runs as pending, with their inputs, in one transaction (and the delivery that made
    /// them, when there is one: a delivery seen before stores nothing).
    pub async fn enqueue(
        &self,
        runs: &[Enqueue],
        delivery: Option<Delivery<'_>>,
    ) -> Result<Enqueued, StoreError> {
        let now = millis(std::time::SystemTime::now());
        let keys = self.keys();
        let inputs = runs
            .iter()
            .map(|r| crate::secret::seal_inputs(&keys, &r.uid, &r.inputs))
            .collect::<Result<Vec<String>, _>>()?;
        let outcome = retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            if let Some(d) = &delivery {
                let seen = sqlx::query("SELECT runs FROM deliveries WHERE listener = ? AND id = ?")
                    .bind(d.listener)
                    .bind(d.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = seen {
                    let names: Vec<String> =
                        serde_json::from_str(row.get::<&str, _>("runs")).unwrap_or_default();
                    return Ok(Enqueued::Duplicate(names));
                }
                let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
                sqlx::query(
                    "INSERT INTO deliveries (listener, id, received_at, runs) VALUES (?, ?, ?, ?)",
                )
                .bind(d.listener)
                .bind(d.id)
                .bind(now)
                .bind(json!(names).to_string())
                .execute(&mut *tx)
                .await?;
            }
            for (r, inputs) in runs.iter().zip(&inputs) {
                sqlx::query("INSERT INTO runs (uid, name, kind, target, created_at, status, reason, object, namespace) VALUES (?, ?, ?, ?, ?, 'Unknown', ?, ?, ?)")
                    .bind(&r.uid).bind(&r.name).bind(r.kind).bind(&r.target).bind(now).bind(PENDING).bind(r.object.to_string()).bind(&r.namespace)
                    .execute(&mut *tx).await?;
                sqlx::query("INSERT INTO run_inputs (uid, inputs) VALUES (?, ?)")
                    .bind(&r.uid)
                    .bind(inputs)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO queue (uid, namespace, pipeline, priority, held, state, enqueued_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)")
                    .bind(&r.uid).bind(&r.namespace).bind(&r.target).bind(r.priority).bind(r.held).bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Enqueued::Stored)
        })
        .await?;
        Ok(outcome)
    }

    /// Runs waiting to start: highest priority first, then arrival order.
    pub async fn queued(&self) -> Result<Vec<Queued>, StoreError> {
        let rows = sqlx::query(
            "SELECT q.seq, q.uid, r.name, q.namespace, q.pipeline, q.priority, q.held FROM queue q JOIN runs r ON r.uid = q.uid \
             WHERE q.state = 'queued' ORDER BY q.priority DESC, q.seq",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Queued {
                seq: r.get("seq"),
                uid: r.get("uid"),
                name: r.get("name"),
                namespace: r.get("namespace"),
                target: r.get("pipeline"),
                priority: r.get("priority"),
                held: r.get::<i64, _>("held") != 0,
            })
            .collect())
    }

    /// Marks a queued run as started. False when it was no longer queued (cancelled meanwhile).
    pub async fn dequeue(&self, uid: &str) -> Result<bool, StoreError> {
        let done = retry_busy(|| async {
            sqlx::query("UPDATE queue SET state = 'running' WHERE uid = ? AND state = 'queued'")
                .bind(uid)
                .execute(&self.pool)
                .await
        })
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Closes the entry of a run the dispatcher took; a run that never started (still pending)
    /// goes back in the queue instead.
    pub async fn finish_queued(&self, uid: &str) -> Result<(), StoreError> {
        retry_busy(|| async {
            sqlx::query("UPDATE queue SET state = CASE WHEN (SELECT reason FROM runs WHERE uid = ?) = ? THEN 'queued' ELSE 'done' END WHERE uid = ?")
                .bind(uid)
                .bind(PENDING)
                .bind(uid)
                .execute(&self.pool)
                .await
        })
        .await?;
        Ok(())
    }

    /// Releases a held run (the user cleared `spec.status`): it waits for a slot like any other,
    /// and its object and inputs no longer say it is held.
    pub async fn release(&self, uid: &str) -> Result<bool, StoreError> {
        let keys = self.keys();
        let released = retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let done = sqlx::query(
                "UPDATE queue SET held = 0 WHERE uid = ? AND state = 'queued' AND held = 1",
            )
            .bind(uid)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(Ok(false));
            }
            let row = sqlx::query("SELECT r.object, i.inputs FROM runs r JOIN run_inputs i ON i.uid = r.uid WHERE r.uid = ?")
                .bind(uid)
                .fetch_one(&mut *tx)
                .await?;
            let mut object: Value =
                serde_json::from_str(row.get::<&str, _>("object")).unwrap_or(json!({}));
            // Sealed documents are opened to edit the run, and sealed again (dropping `tx`
            // on a key error rolls the release back).
            let mut inputs = match crate::secret::open_inputs(&keys, uid, row.get("inputs")) {
                Ok(Value::Null) => json!({}),
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            for spec in [object.get_mut("spec"), inputs.pointer_mut("/run/spec")]
                .into_iter()
                .flatten()
            {
                if let Some(m) = spec.as_object_mut() {
                    m.remove("status");
                }
            }
            object["status"]["conditions"][0]["message"] =
                json!("waiting in the queue for a free slot");
            sqlx::query("UPDATE runs SET object = ? WHERE uid = ?")
                .bind(object.to_string())
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            let inputs = match crate::secret::seal_inputs(&keys, uid, &inputs) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            sqlx::query("UPDATE run_inputs SET inputs = ? WHERE uid = ?")
                .bind(inputs)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(true))
        })
        .await?;
        Ok(released?)
    }

    /// Cancels a run that has not started: it ends `Cancelled` without running anything. False
    /// when it was not waiting.
    pub async fn cancel_queued(&self, uid: &str) -> Result<bool, StoreError> {
        let cancelled = retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let done =
                sqlx::query("UPDATE queue SET state = 'done' WHERE uid = ? AND state = 'queued'")
                    .bind(uid)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            end_pending(&mut tx, uid, "Cancelled", "was cancelled before it started").await?;
            tx.commit().await?;
            Ok(true)
        })
        .await?;
        Ok(cancelled)
    }

    /// Ends a run that could not start (its Pipeline is missing, its inputs are invalid).
    pub async fn end_unstarted(
        &self,
        uid: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            end_pending(&mut tx, uid, reason, message).await?;
            sqlx::query("UPDATE queue SET state = 'done' WHERE uid = ?")
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await?;
        Ok(())
    }

    /// Puts back in the queue the runs a previous server took but never started (it died between
    /// taking and starting them), and closes the entries of runs that ended. Returns how many
    /// went back.
    pub async fn reclaim(&self) -> Result<u64, StoreError> {
        let back = retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let back = sqlx::query(
                "UPDATE queue SET state = 'queued' WHERE state = 'running' AND uid IN (SELECT uid FROM runs WHERE reason = ?)",
            )
            .bind(PENDING)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE queue SET state = 'done' WHERE state != 'done' AND uid IN (SELECT uid FROM runs WHERE status != 'Unknown')",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(back.rows_affected())
        })
        .await?;
        Ok(back)
    }

    /// Whether a run went through a server's queue (a server owns it, not a `slipway run`).
    pub async fn is_queued_run(&self, uid: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM queue WHERE uid = ?")
            .bind(uid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// How many runs wait, held ones included.
    pub async fn queue_depth(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT count(*) AS n FROM queue WHERE state = 'queued'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get("n"))
    }
}

/// Ends a run that never started, with a failed condition. A message that does not name the run
/// gets `Kind "name"` in front, as Tekton writes it.
async fn end_pending(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    uid: &str,
    reason: &str,
    message: &str,
) -> Result<(), sqlx::Error> {
    let now = std::time::SystemTime::now();
    let row = sqlx::query("SELECT kind, name, object FROM runs WHERE uid = ?")
        .bind(uid)
        .fetch_one(&mut **tx)
        .await?;
    let mut object: Value = serde_json::from_str(row.get::<&str, _>("object")).unwrap_or(json!({}));
    let kind: String = row.get("kind");
    let name: String = row.get("name");
    let message = if message.contains(&name) {
        message.to_string()
    } else {
        format!("{kind} \"{name}\" {message}")
    };
    let when = humantime::format_rfc3339_seconds(now).to_string();
    object["status"]["conditions"] = json!([{
        "type": "Succeeded", "status": "False", "reason": reason,
        "message": message, "lastTransitionTime": when,
    }]);
    object["status"]["completionTime"] = json!(when);
    sqlx::query(
        "UPDATE runs SET status = 'False', reason = ?, finished_at = ?, object = ? WHERE uid = ?",
    )
    .bind(reason)
    .bind(millis(now))
    .bind(object.to_string())
    .bind(uid)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
