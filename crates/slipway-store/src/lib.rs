//! Durable run history in embedded SQLite: runs, task runs, steps, results, events and logs.
//!
//! One writer task per process owns the write connection and commits events in small batches,
//! so a process killed at any moment keeps everything it had reported up to the last batch.

mod read;
mod recover;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use slipway_engine::{RunEvent, Store};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

pub use read::{LogLine, RunRow, TaskRunRow};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("failed to open the run database {path}: {source}")]
    Open {
        /// Database file.
        path: PathBuf,
        /// Why.
        source: sqlx::Error,
    },
    /// A query failed.
    #[error("failed to query the run database: {0}")]
    Query(#[from] sqlx::Error),
    /// No run has that name or uid.
    #[error("no run named `{0}`")]
    NotFound(String),
}

pub(crate) enum Msg {
    Event(Box<RunEvent>),
    Flush(oneshot::Sender<()>),
}

/// The SQLite store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    tx: mpsc::UnboundedSender<Msg>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) `runs.db` in `dir`, and marks runs whose process died as `Interrupted`.
    pub async fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            source: sqlx::Error::Io(e),
        })?;
        let path = dir.join("runs.db");
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        schema::migrate(&pool)
            .await
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        recover::interrupted(&pool).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write::writer(pool.clone(), rx));
        Ok(SqliteStore { pool, tx, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves the YAML documents a run was started from, for `rerun`.
    pub async fn save_inputs(
        &self,
        uid: &str,
        inputs: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT OR REPLACE INTO run_inputs (uid, inputs) VALUES (?, ?)")
            .bind(uid)
            .bind(inputs.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn record(&self, event: &RunEvent) {
        let _ = self.tx.send(Msg::Event(Box::new(event.clone())));
    }

    async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Milliseconds since the epoch.
pub(crate) fn millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
