//! Durable run history in embedded SQLite: runs, task runs, steps, results, events and logs.
//!
//! One writer task per process owns the write connection and commits events in small batches,
//! so a process killed at any moment keeps everything it had reported up to the last batch.

mod child;
mod keyring;
mod namespace;
pub mod permissions;
mod prewarm;
mod queue;
mod read;
mod recover;
mod resource;
mod schema;
mod secret;
mod token;
mod watch;
mod write;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slipway_engine::{RunEvent, Store};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use keyring::{BadKeyLine, BadSealed, KeyError};
pub use namespace::{DEFAULT_NAMESPACE, valid_namespace};
pub use prewarm::{Expect, Key as PrewarmKey, Outcome as PrewarmOutcome, PrewarmObject};
pub use queue::{Delivery, Enqueue, Enqueued, PENDING, Queued};
pub use read::{LogLine, RunRow, TaskRunRow};
pub use resource::{NewResource, Resource};
pub use secret::{Resealed, Rotation};
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
    /// The secret key file, or a value sealed with it.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Most bytes of log lines queued for the writer and not yet committed; a reporter with more
/// to write waits (and, through it, the step that writes them). State events are not counted:
/// each TaskRun reports a handful.
pub const LOG_BYTES_IN_FLIGHT: usize = 8 * 1024 * 1024;
/// What a log line costs in the budget beyond its text (its row's other fields).
const LOG_LINE_OVERHEAD: usize = 128;

pub(crate) enum Msg {
    Event(Box<RunEvent>),
    /// A log line and the budget it holds until it is written.
    Log(Box<RunEvent>, u32),
    Flush(oneshot::Sender<()>),
}

/// The SQLite store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    tx: mpsc::UnboundedSender<Msg>,
    /// Bytes of log lines that may still be queued (see [`LOG_BYTES_IN_FLIGHT`]).
    log_budget: Arc<Semaphore>,
    path: PathBuf,
    watchers: Arc<watch::Watchers>,
    /// Replaced whole by a key rotation.
    keys: Arc<std::sync::RwLock<Arc<keyring::Keyring>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) `runs.db` in `dir`, with Secrets sealed by the key file
    /// `dir/secret.key` (see [`SqliteStore::open_with_key`]).
    pub async fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_key(dir, &dir.join("secret.key")).await
    }

    /// Opens (creating if needed) `runs.db` in `dir`, private to its owner, and marks runs whose
    /// process died as `Interrupted`. Secrets are sealed with the key in `key_file`, created on
    /// first use; Secrets an older build stored in the clear are sealed now.
    pub async fn open_with_key(dir: &Path, key_file: &Path) -> Result<SqliteStore, StoreError> {
        permissions::private_dir(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            source: sqlx::Error::Io(e),
        })?;
        let path = dir.join("runs.db");
        permissions::private_database(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            source: sqlx::Error::Io(e),
        })?;
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
            .busy_timeout(Duration::from_secs(10))
            // Deleted and replaced content is overwritten, so a Secret sealed (or deleted) does
            // not linger in free space of the file.
            .pragma("secure_delete", "ON");
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
        let keys = secret::prepare(&pool, key_file).await?;
        retry_busy(|| recover::interrupted(&pool)).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let watchers = Arc::new(watch::Watchers::default());
        let log_budget = Arc::new(Semaphore::new(LOG_BYTES_IN_FLIGHT));
        tokio::spawn(write::supervised(
            pool.clone(),
            rx,
            watchers.clone(),
            log_budget.clone(),
        ));
        Ok(SqliteStore {
            pool,
            tx,
            log_budget,
            path,
            watchers,
            keys: std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(keys))),
        })
    }

    /// The keys Secrets are sealed with now.
    pub(crate) fn keys(&self) -> std::sync::Arc<keyring::Keyring> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
        let sealed = secret::seal_inputs(&self.keys(), uid, inputs)?;
        sqlx::query("INSERT OR REPLACE INTO run_inputs (uid, inputs) VALUES (?, ?)")
            .bind(uid)
            .bind(sealed)
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

    async fn record_log(&self, event: RunEvent) {
        let text = match &event {
            RunEvent::Log { line, .. } => line.len(),
            _ => 0,
        };
        // A line longer than the whole budget waits for all of it rather than for ever.
        let cost = (text + LOG_LINE_OVERHEAD).min(LOG_BYTES_IN_FLIGHT) as u32;
        match self.log_budget.acquire_many(cost).await {
            // The writer gives the budget back once the line is committed.
            Ok(permit) => permit.forget(),
            Err(_) => return,
        }
        if let Err(mpsc::error::SendError(msg)) = self.tx.send(Msg::Log(Box::new(event), cost)) {
            drop(msg);
            self.log_budget.add_permits(cost as usize);
        }
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
