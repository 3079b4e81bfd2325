//! Where run events go: the store trait the engine writes through, and a reporter that fans out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::event::RunEvent;
use crate::mask::Masker;

/// Persists run events. State events (everything but log lines) are few per TaskRun, so
/// `record` queues them without waiting; log lines go through `record_log`, which waits while the
/// store is too far behind, and that wait is what slows a noisy step down to the store's pace.
#[async_trait]
pub trait Store: Send + Sync {
    /// Queues one state event; never waits.
    fn record(&self, event: &RunEvent);
    /// Queues one [`RunEvent::Log`], waiting while the store holds too many unwritten log bytes.
    async fn record_log(&self, event: RunEvent);
    /// Waits until every queued event is durable.
    async fn flush(&self);
}

/// A store that keeps nothing (benchmarks, dry runs).
#[derive(Debug, Default)]
pub struct NullStore;

#[async_trait]
impl Store for NullStore {
    fn record(&self, _event: &RunEvent) {}
    async fn record_log(&self, _event: RunEvent) {}
    async fn flush(&self) {}
}

/// The annotation a run ends with when it dropped output past its log cap: bytes dropped.
pub const DROPPED_BYTES: &str = "slipway.dev/log-bytes-dropped";
/// The annotation a run ends with when it dropped output past its log cap: lines dropped.
pub const DROPPED_LINES: &str = "slipway.dev/log-lines-dropped";

/// How much output one run has stored and dropped, shared by every TaskRun of the run.
#[derive(Debug, Default)]
struct LogTally {
    /// Most bytes of output stored for the run; `None` for no limit.
    cap: Option<u64>,
    stored: AtomicU64,
    dropped_bytes: AtomicU64,
    dropped_lines: AtomicU64,
}

/// What became of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// Stored.
    Kept,
    /// Dropped: the run is past its log cap.
    Dropped,
}

/// Sends every event, secrets masked, to the store and, when someone watches, to the watcher;
/// keeps the run's output under its log cap.
#[derive(Clone)]
pub struct Reporter {
    store: Arc<dyn Store>,
    watcher: Option<mpsc::UnboundedSender<RunEvent>>,
    masker: Masker,
    root: String,
    logs: Arc<LogTally>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("watched", &self.watcher.is_some())
            .field("root", &self.root)
            .finish()
    }
}

impl Reporter {
    /// A reporter writing to `store` and copying to `watcher`.
    pub fn new(store: Arc<dyn Store>, watcher: Option<mpsc::UnboundedSender<RunEvent>>) -> Self {
        Reporter {
            store,
            watcher,
            masker: Masker::default(),
            root: String::new(),
            logs: Arc::default(),
        }
    }
    /// The same reporter, masking these secrets in everything it reports.
    pub fn with_masker(mut self, masker: Masker) -> Self {
        self.masker = masker;
        self
    }
    /// The same reporter for the top-level run `root`, storing at most `cap` bytes of its
    /// output: past it, lines are counted and dropped, and the run's final object says how many.
    pub fn with_log_cap(mut self, root: &str, cap: Option<u64>) -> Self {
        self.root = root.to_string();
        self.logs = Arc::new(LogTally {
            cap,
            ..LogTally::default()
        });
        self
    }
    /// Reports one state event (a log line is recorded without waiting; use [`Reporter::log`]).
    pub fn emit(&self, ev: RunEvent) {
        let mut ev = self.masker.event(ev);
        self.annotate_drops(&mut ev);
        self.store.record(&ev);
        if let Some(w) = &self.watcher {
            let _ = w.send(ev);
        }
    }
    /// Reports a log line, waiting while the store is behind; drops it past the run's log cap.
    pub async fn log(&self, ev: RunEvent) -> Logged {
        if let RunEvent::Log { line, .. } = &ev
            && !self.within_cap(line.len() as u64)
        {
            return Logged::Dropped;
        }
        let ev = self.masker.event(ev);
        if let Some(w) = &self.watcher {
            let _ = w.send(ev.clone());
        }
        self.store.record_log(ev).await;
        Logged::Kept
    }
    /// Reports a line from slipway itself about a step's output; it is not held to the cap.
    pub async fn log_uncapped(&self, ev: RunEvent) {
        let ev = self.masker.event(ev);
        if let Some(w) = &self.watcher {
            let _ = w.send(ev.clone());
        }
        self.store.record_log(ev).await;
    }
    /// The text with the run's secrets masked.
    pub fn mask<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.masker.text(text)
    }
    /// Length in bytes of the run's longest secret (0 when it has none).
    pub fn longest_secret(&self) -> usize {
        self.masker.longest()
    }
    /// The run's log cap, if any.
    pub fn log_cap(&self) -> Option<u64> {
        self.logs.cap
    }
    /// Bytes and lines of output dropped so far.
    pub fn dropped(&self) -> (u64, u64) {
        (
            self.logs.dropped_bytes.load(Ordering::Relaxed),
            self.logs.dropped_lines.load(Ordering::Relaxed),
        )
    }
    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Counts `len` bytes against the cap; false when they are dropped. Once a line is dropped
    /// every later one is too, so the stored output is a prefix of what the run wrote.
    fn within_cap(&self, len: u64) -> bool {
        let Some(cap) = self.logs.cap else {
            return true;
        };
        let full = self.logs.dropped_lines.load(Ordering::Relaxed) > 0;
        let kept = !full
            && self
                .logs
                .stored
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                    s.checked_add(len).filter(|t| *t <= cap)
                })
                .is_ok();
        if !kept {
            let first = self.logs.dropped_lines.fetch_add(1, Ordering::Relaxed) == 0;
            self.logs.dropped_bytes.fetch_add(len, Ordering::Relaxed);
            if first {
                self.emit(RunEvent::Notice {
                    root: self.root.clone(),
                    message: format!(
                        "the run's output passed its log cap of {cap} bytes: further lines are counted and dropped"
                    ),
                });
            }
        }
        kept
    }

    /// The top-level run's final object says how much output it dropped, and a notice says it
    /// once more, so every reader of the run (API, describe, logs) can tell.
    fn annotate_drops(&self, ev: &mut RunEvent) {
        let RunEvent::RunFinished { uid, object, .. } = ev else {
            return;
        };
        let (bytes, lines) = self.dropped();
        if *uid != self.root || lines == 0 {
            return;
        }
        object["metadata"]["annotations"][DROPPED_BYTES] = bytes.to_string().into();
        object["metadata"]["annotations"][DROPPED_LINES] = lines.to_string().into();
        let notice = RunEvent::Notice {
            root: self.root.clone(),
            message: format!(
                "{bytes} bytes in {lines} lines of output were dropped: the run's log cap is {} bytes",
                self.logs.cap.unwrap_or_default()
            ),
        };
        self.store.record(&notice);
        if let Some(w) = &self.watcher {
            let _ = w.send(notice);
        }
    }
}
