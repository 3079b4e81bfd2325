//! Followers of a run are told when a batch that touches it is committed, so live logs arrive
//! as they are stored rather than at the next poll. Only this process's writes are seen:
//! readers of runs written elsewhere still poll.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Senders per top-level run uid, made when someone follows it.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    runs: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Watchers {
    /// A receiver that changes whenever a batch touching `root` is committed.
    pub(crate) fn subscribe(&self, root: &str) -> watch::Receiver<u64> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.entry(root.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Tells the followers of these runs; forgets runs nobody follows any more.
    pub(crate) fn touched<'a>(&self, roots: impl Iterator<Item = &'a str>) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.is_empty() {
            return;
        }
        for r in roots {
            if let Some(tx) = runs.get(r) {
                tx.send_modify(|n| *n += 1);
            }
        }
        runs.retain(|_, tx| tx.receiver_count() > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_wake_for_their_run_only_and_are_forgotten_when_gone() {
        let w = Watchers::default();
        let mut a = w.subscribe("a");
        let b = w.subscribe("b");
        w.touched(["a"].into_iter());
        assert!(a.has_changed().unwrap_or(false));
        assert!(!b.has_changed().unwrap_or(true));
        a.borrow_and_update();
        drop(b);
        w.touched(["x"].into_iter());
        assert_eq!(w.runs.lock().map(|r| r.len()).unwrap_or(0), 1);
    }
}
