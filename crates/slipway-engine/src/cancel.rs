//! Cancellation in two stages, as `tkn` users expect from Ctrl-C: first graceful, then hard.

use tokio_util::sync::CancellationToken;

/// Cancels a run: `graceful` stops tasks and runs finally; `hard` stops everything.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle {
    graceful: CancellationToken,
    hard: CancellationToken,
}

impl CancelHandle {
    /// A fresh handle.
    pub fn new() -> Self {
        Self::default()
    }
    /// A handle driven by existing tokens (child runs follow their parent's).
    pub fn from_tokens(graceful: CancellationToken, hard: CancellationToken) -> Self {
        CancelHandle { graceful, hard }
    }
    /// First stage: cancel running tasks, skip the rest, run finally.
    pub fn cancel(&self) {
        self.graceful.cancel();
    }
    /// Second stage: stop everything now, finally included.
    pub fn stop(&self) {
        self.graceful.cancel();
        self.hard.cancel();
    }
    /// The first stage was requested.
    pub fn graceful(&self) -> &CancellationToken {
        &self.graceful
    }
    /// The second stage was requested.
    pub fn hard(&self) -> &CancellationToken {
        &self.hard
    }
}
