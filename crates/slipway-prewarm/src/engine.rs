//! The node's pull engine: desired tags in (a watch channel holding the whole list, as a
//! NodeImage spec does), a status per tag out (every change), a dispatcher that starts, stops
//! and restarts one worker per tag, and a per-node limit on pulls in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use slipway_model::reference::Reference;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::content::ProgressProbe;
use crate::runtime::{ImageRuntime, RuntimeError};
use crate::status::{Phase, Progress, PullPolicy, TagSpec, TagStatus};

/// How the engine paces itself.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Pulls in flight at once on this node; queued tags read `Waiting`.
    pub max_concurrent_pulls: usize,
    /// How often the content store is read while a pull runs.
    pub progress_interval: Duration,
    /// The wait before the first retry; doubled for each retry after it.
    pub backoff_base: Duration,
    /// The longest wait between retries.
    pub backoff_cap: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_concurrent_pulls: 2,
            progress_interval: Duration::from_millis(250),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
        }
    }
}

impl EngineConfig {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff_base
            .checked_mul(factor)
            .map_or(self.backoff_cap, |d| d.min(self.backoff_cap))
    }
}

/// Pulls what is desired on one node through a runtime.
pub struct Engine {
    runtime: Arc<dyn ImageRuntime>,
    probe: Arc<dyn ProgressProbe>,
    config: EngineConfig,
}

/// What a worker shares with the others.
#[derive(Clone)]
struct Shared {
    runtime: Arc<dyn ImageRuntime>,
    probe: Arc<dyn ProgressProbe>,
    config: EngineConfig,
    slots: Arc<Semaphore>,
    out: mpsc::UnboundedSender<TagStatus>,
}

/// A tag's worker, as the dispatcher knows it.
struct Worker {
    spec: TagSpec,
    handle: AbortHandle,
}

impl Engine {
    /// An engine pulling through `runtime`, reading progress from `probe`.
    pub fn new(
        runtime: Arc<dyn ImageRuntime>,
        probe: Arc<dyn ProgressProbe>,
        config: EngineConfig,
    ) -> Self {
        Engine {
            runtime,
            probe,
            config,
        }
    }

    /// Runs until `desired` is closed. A tag that leaves the list has its pull dropped (the
    /// gRPC call is cancelled, and the runtime stops); a tag whose spec changes starts over.
    /// When the sender goes away every pull is stopped before this returns.
    pub async fn run(
        self,
        mut desired: watch::Receiver<Vec<TagSpec>>,
        out: mpsc::UnboundedSender<TagStatus>,
    ) {
        let shared = Shared {
            runtime: self.runtime,
            probe: self.probe,
            slots: Arc::new(Semaphore::new(self.config.max_concurrent_pulls.max(1))),
            config: self.config,
            out,
        };
        let mut workers: HashMap<String, Worker> = HashMap::new();
        let mut tasks = JoinSet::new();
        loop {
            let specs = desired.borrow_and_update().clone();
            reconcile(&shared, &mut workers, &mut tasks, specs);
            while tasks.try_join_next().is_some() {}
            if desired.changed().await.is_err() {
                break;
            }
        }
        tasks.shutdown().await;
    }
}

/// Stops workers of tags no longer wanted (or changed) and starts the missing ones.
fn reconcile(
    shared: &Shared,
    workers: &mut HashMap<String, Worker>,
    tasks: &mut JoinSet<()>,
    specs: Vec<TagSpec>,
) {
    let wanted: HashMap<String, TagSpec> =
        specs.into_iter().map(|s| (s.image.clone(), s)).collect();
    workers.retain(|image, worker| {
        let keep = wanted.get(image) == Some(&worker.spec);
        if !keep {
            worker.handle.abort();
        }
        keep
    });
    for (image, spec) in wanted {
        if workers.contains_key(&image) {
            continue;
        }
        let handle = tasks.spawn(pull_tag(shared.clone(), spec.clone()));
        workers.insert(image, Worker { spec, handle });
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The runtime said no.
    #[error("{}", .0.message)]
    Runtime(#[source] RuntimeError),
    /// The runtime did not answer within the tag's timeout.
    #[error("timed out after {}s", .0.as_secs())]
    TimedOut(Duration),
}

/// One tag from `Waiting` to `Succeeded` or `Failed`, with retries.
async fn pull_tag(shared: Shared, spec: TagSpec) {
    let mut status = TagStatus::waiting(&spec.image);
    status.version = spec.version;
    let send = |s: &TagStatus| {
        // A gone receiver only means nobody listens; the pull still does its job.
        let _ = shared.out.send(s.clone());
    };
    send(&status);
    let reference = match Reference::parse(&spec.image) {
        Ok(r) => r,
        Err(e) => {
            status.phase = Phase::Failed;
            status.message = Some(e.to_string());
            status.completion_time = Some(SystemTime::now());
            return send(&status);
        }
    };
    loop {
        let result = {
            let Ok(_slot) = shared.slots.acquire().await else {
                return;
            };
            status.attempts += 1;
            status.phase = Phase::Pulling;
            status.start_time = Some(SystemTime::now());
            status.progress = None;
            send(&status);
            attempt(&shared, &spec, &reference, &mut status).await
        };
        match result {
            Ok(id) => {
                status.phase = Phase::Succeeded;
                status.image_id = Some(id);
                status.message = None;
                status.completion_time = Some(SystemTime::now());
                return send(&status);
            }
            Err(e) => {
                status.message = Some(e.to_string());
                if status.attempts > spec.backoff_limit {
                    status.phase = Phase::Failed;
                    status.completion_time = Some(SystemTime::now());
                    return send(&status);
                }
                status.phase = Phase::Waiting;
                send(&status);
                tokio::time::sleep(shared.config.backoff(status.attempts)).await;
            }
        }
    }
}

/// A reading never below the last one of the same total: the content store's ingests and
/// committed blobs are read one after the other, so a layer moving from one to the other
/// between the two reads can show a dip that did not happen.
fn monotone(last: Option<Progress>, now: Option<Progress>) -> Option<Progress> {
    match (last, now) {
        (Some(l), Some(n)) if l.total == n.total && n.completed < l.completed => Some(l),
        (_, n) => n,
    }
}

/// One attempt: a look-up for `IfNotPresent`, then the pull, reading progress meanwhile.
async fn attempt(
    shared: &Shared,
    spec: &TagSpec,
    reference: &Reference,
    status: &mut TagStatus,
) -> Result<String, AttemptError> {
    let bounded = async {
        if spec.policy == PullPolicy::IfNotPresent
            && let Some(image) = shared.runtime.status(&spec.image).await?
        {
            return Ok(image.id);
        }
        shared
            .runtime
            .pull(&spec.image, spec.auth.as_ref(), spec.timeout)
            .await
    };
    let started = status.start_time.unwrap_or_else(SystemTime::now);
    let mut bounded = std::pin::pin!(tokio::time::timeout(spec.timeout, bounded));
    let mut ticks = tokio::time::interval(shared.config.progress_interval);
    let outcome = loop {
        tokio::select! {
            outcome = &mut bounded => break outcome,
            _ = ticks.tick() => {
                let progress = shared.probe.progress(reference, started).await;
                let progress = monotone(status.progress, progress);
                if progress.is_some() && progress != status.progress {
                    status.progress = progress;
                    let _ = shared.out.send(status.clone());
                }
            }
        }
    };
    let id = outcome
        .map_err(|_| AttemptError::TimedOut(spec.timeout))?
        .map_err(AttemptError::Runtime)?;
    if let Some(last) = shared.probe.progress(reference, started).await {
        status.progress = Some(last);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_never_dips_within_one_total() {
        let p = |completed, total| Some(Progress { completed, total });
        assert_eq!(monotone(p(50, 100), p(40, 100)), p(50, 100));
        assert_eq!(monotone(p(50, 100), p(60, 100)), p(60, 100));
        // A new total (the manifest arrived) starts over.
        assert_eq!(monotone(p(50, 100), p(10, 200)), p(10, 200));
        assert_eq!(monotone(None, p(1, 2)), p(1, 2));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = EngineConfig {
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(5),
            ..EngineConfig::default()
        };
        let waits: Vec<u64> = (1..=5).map(|a| config.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(config.backoff(200), Duration::from_secs(5));
    }
}
