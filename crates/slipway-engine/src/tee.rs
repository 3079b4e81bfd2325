//! A store that writes every event to several stores, in order: a run watched by a cluster
//! and recorded in a server's history at once.

use std::sync::Arc;

use async_trait::async_trait;

use crate::event::RunEvent;
use crate::store::Store;

/// Writes every event to each of its stores; a log line waits for the slowest.
#[derive(Clone)]
pub struct TeeStore {
    stores: Vec<Arc<dyn Store>>,
}

impl std::fmt::Debug for TeeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeeStore")
            .field("stores", &self.stores.len())
            .finish()
    }
}

impl TeeStore {
    /// A store writing to each of `stores`, in this order.
    pub fn new(stores: Vec<Arc<dyn Store>>) -> Self {
        TeeStore { stores }
    }
}

#[async_trait]
impl Store for TeeStore {
    fn record(&self, event: &RunEvent) {
        for s in &self.stores {
            s.record(event);
        }
    }

    async fn record_log(&self, event: RunEvent) {
        if let Some((last, rest)) = self.stores.split_last() {
            for s in rest {
                s.record_log(event.clone()).await;
            }
            last.record_log(event).await;
        }
    }

    async fn flush(&self) {
        for s in &self.stores {
            s.flush().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::event::Stream;

    #[derive(Default)]
    struct Kept {
        events: Mutex<Vec<String>>,
        flushed: Mutex<u32>,
    }

    #[async_trait]
    impl Store for Kept {
        fn record(&self, event: &RunEvent) {
            self.events.lock().expect("lock").push(format!("{event:?}"));
        }
        async fn record_log(&self, event: RunEvent) {
            self.events.lock().expect("lock").push(format!("{event:?}"));
        }
        async fn flush(&self) {
            *self.flushed.lock().expect("lock") += 1;
        }
    }

    #[tokio::test]
    async fn every_store_gets_every_event_in_order_and_is_flushed() {
        let (a, b) = (Arc::new(Kept::default()), Arc::new(Kept::default()));
        let tee = TeeStore::new(vec![a.clone(), b.clone()]);
        let log = |line: &str| RunEvent::Log {
            root: "r".into(),
            taskrun: "t".into(),
            step: "s".into(),
            stream: Stream::Stdout,
            line: line.into(),
            continued: false,
            at: std::time::UNIX_EPOCH,
        };
        tee.record(&log("state"));
        tee.record_log(log("one")).await;
        tee.record_log(log("two")).await;
        tee.flush().await;
        for s in [&a, &b] {
            let events = s.events.lock().expect("lock").clone();
            assert_eq!(events.len(), 3);
            assert!(events[1].contains("\"one\"") && events[2].contains("\"two\""));
            assert_eq!(*s.flushed.lock().expect("lock"), 1);
        }
    }
}
