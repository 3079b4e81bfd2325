//! What a build reports while it runs; the CLI renders it (BuildKit-like on a terminal,
//! plain lines elsewhere, nothing but the digest with `-o json`).

use std::time::Duration;

/// One thing that happened during a build.
#[derive(Debug, Clone)]
pub enum Event {
    /// A note to say once (a flag with no effect, the mode chosen).
    Notice(String),
    /// A stage starts from `base`.
    Stage {
        /// Stage name or index.
        stage: String,
        /// The image (or stage) it starts from.
        base: String,
    },
    /// An instruction starts.
    Step {
        /// Stage name or index.
        stage: String,
        /// 1-based position in the build.
        index: usize,
        /// Instructions in the build.
        total: usize,
        /// The instruction as written.
        text: String,
        /// Its line in the Dockerfile.
        line: u32,
    },
    /// The instruction was found in the cache.
    Cached {
        /// The step's index.
        index: usize,
    },
    /// The instruction finished.
    Done {
        /// The step's index.
        index: usize,
        /// How long it took.
        elapsed: Duration,
    },
    /// A line a RUN printed (stdout and stderr interleaved as they came).
    Output {
        /// The step's index.
        index: usize,
        /// The line, without its newline.
        line: String,
    },
    /// Bytes of a blob moved (pull or push).
    Transfer {
        /// `pull` or `push`.
        direction: Direction,
        /// The blob's digest.
        digest: String,
        /// Bytes done so far.
        done: u64,
        /// Bytes in all, when known.
        total: Option<u64>,
    },
    /// An image was pushed.
    Pushed {
        /// Where to.
        destination: String,
        /// The manifest's digest.
        digest: String,
    },
}

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a registry.
    Pull,
    /// To a registry.
    Push,
}

/// Receives events; must not block for long.
pub trait Progress: Send + Sync {
    /// One event.
    fn event(&self, event: Event);
}

/// Drops every event.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _event: Event) {}
}
