//! Durable run history in embedded SQLite: runs, task runs, steps, results, events and logs.
//!
//! One writer task per process owns the write connection and commits events in small batches,
//! so a process killed at any moment keeps everything it had reported up to the last batch.

mod child;
mod queue;
mod read;
mod recover;
mod resource;
mod schema;
mod token;
mod watch;
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

pub use queue::{Delivery, Enqueue, Enqueued, PENDING, Queued};
pub use read::{LogLine, RunRow, TaskRunRow};
pub use resource::{NewResource, Resource};
pub use token::TokenRow;

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
    watchers: std::sync::Arc<watch::Watchers>,
}

impl SqliteStore {
    /// Opens (creating if needed) `runs.db` in `dir`, and marks runs whose process died as `Interrupted`.
    pub async fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            source: sqlx::Error::Io(e),
        })?;
        let path = dir.join("runs.db");
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        // Several slipway processes open one database at once (a run and `logs -f`); switching a
        // new file to WAL and creating tables can meet a lock that SQLite reports at once rather
        // than waiting for, so opening retries while the database is busy.
        let pool = retry_busy(|| async {
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts.clone())
                .await?;
            schema::migrate(&pool).await?;
            Ok(pool)
        })
        .await
        .map_err(open_err)?;
        retry_busy(|| recover::interrupted(&pool)).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let watchers = std::sync::Arc::new(watch::Watchers::default());
        tokio::spawn(write::writer(pool.clone(), rx, watchers.clone()));
        Ok(SqliteStore {
            pool,
            tx,
            path,
            watchers,
        })
    }

    /// Changes whenever this process commits events of the top-level run `root_uid`.
    pub fn follow(&self, root_uid: &str) -> tokio::sync::watch::Receiver<u64> {
        self.watchers.subscribe(root_uid)
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

/// True when SQLite said the database is busy or locked (codes 5 and 6, extended included).
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| c & 0xff == 5 || c & 0xff == 6),
        _ => false,
    }
}

/// Runs `f` again while it fails because the database is busy, for up to about ten seconds.
pub(crate) async fn retry_busy<T, F, Fut>(mut f: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut wait = Duration::from_millis(5);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match f().await {
            Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Milliseconds since the epoch.
pub(crate) fn millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
