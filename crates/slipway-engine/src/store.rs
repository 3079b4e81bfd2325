//! Where run events go: the store trait the engine writes through, and a reporter that fans out.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::event::RunEvent;
use crate::mask::Masker;

/// Persists run events. `record` must not block: implementations queue and write in the background.
#[async_trait]
pub trait Store: Send + Sync {
    /// Queues one event.
    fn record(&self, event: &RunEvent);
    /// Waits until every queued event is durable.
    async fn flush(&self);
}

/// A store that keeps nothing (benchmarks, dry runs).
#[derive(Debug, Default)]
pub struct NullStore;

#[async_trait]
impl Store for NullStore {
    fn record(&self, _event: &RunEvent) {}
    async fn flush(&self) {}
}

/// Sends every event, secrets masked, to the store and, when someone watches, to the watcher.
#[derive(Clone)]
pub struct Reporter {
    store: Arc<dyn Store>,
    watcher: Option<mpsc::UnboundedSender<RunEvent>>,
    masker: Masker,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("watched", &self.watcher.is_some())
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
        }
    }
    /// The same reporter, masking these secrets in everything it reports.
    pub fn with_masker(mut self, masker: Masker) -> Self {
        self.masker = masker;
        self
    }
    /// Reports one event.
    pub fn emit(&self, ev: RunEvent) {
        let ev = self.masker.event(ev);
        self.store.record(&ev);
        if let Some(w) = &self.watcher {
            let _ = w.send(ev);
        }
    }
    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}
