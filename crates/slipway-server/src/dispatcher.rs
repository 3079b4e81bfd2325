//! The dispatcher: takes queued runs in order under the limits, starts them on the engine, and
//! owns the cancel handles of the runs it started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use slipway_engine::admission::{self, Waiting};
use slipway_engine::{CancelHandle, Engine, RunOptions, supervise};
use slipway_model::inputs::RunInputs;
use slipway_store::{Queued, SqliteStore, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The annotation on a Pipeline or Task that limits its runs at once.
pub const MAX_RUNS: &str = slipway_model::annotations::MAX_CONCURRENT_RUNS;

/// Limits for the queue.
pub type Limits = admission::Limits;

struct Active {
    cancel: CancelHandle,
    group: String,
}

/// Starts queued runs. One per server.
pub struct Dispatcher {
    store: Arc<SqliteStore>,
    engine: Engine,
    limits: Limits,
    wake: Notify,
    active: Mutex<HashMap<String, Active>>,
    stopping: CancellationToken,
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("limits", &self.limits)
            .finish()
    }
}

/// What a cancel request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting and is now cancelled.
    Queued,
    /// It runs and is being cancelled (finally tasks still run).
    Running,
    /// It is not this server's, or has ended.
    NotActive,
}

impl Dispatcher {
    /// A dispatcher over `store`, starting runs on `engine`.
    pub fn new(store: Arc<SqliteStore>, engine: Engine, limits: Limits) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            store,
            engine,
            limits,
            wake: Notify::new(),
            active: Mutex::new(HashMap::new()),
            stopping: CancellationToken::new(),
            metrics: Default::default(),
        })
    }

    /// What this server observes (run durations, queue waits), for `/metrics`.
    pub(crate) fn metrics(&self) -> Arc<crate::metrics::Metrics> {
        self.metrics.clone()
    }

    /// Looks at the queue again now (a run was queued, released or has ended).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs in progress.
    pub fn running(&self) -> usize {
        self.active
            .lock()
            .map_or_else(|e| e.into_inner().len(), |a| a.len())
    }

    /// Cancels a run: a queued one ends without starting; a running one stops its tasks and runs
    /// its finally tasks, or with `hard` stops everything, finally included.
    pub async fn cancel(&self, uid: &str, hard: bool) -> Result<Cancelled, StoreError> {
        let running = self
            .active
            .lock()
            .ok()
            .and_then(|a| a.get(uid).map(|r| r.cancel.clone()));
        if let Some(c) = running {
            if hard {
                c.stop();
            } else {
                c.cancel();
            }
            return Ok(Cancelled::Running);
        }
        if self.store.cancel_queued(uid).await? {
            return Ok(Cancelled::Queued);
        }
        Ok(Cancelled::NotActive)
    }

    /// Takes queued runs until `shutdown`; then gives the running ones `grace` to finish (or
    /// until `force`), stops the rest, and waits for them to record how they ended. Queued runs
    /// stay queued for the next start.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
        force: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) {
        match self.store.reclaim().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "took back runs a previous server had not started"),
            Err(e) => tracing::error!("failed to reclaim queued runs: {e}"),
        }
        tokio::pin!(shutdown);
        let mut backoff = supervise::Backoff::default();
        loop {
            // A failed or panicking look at the queue is logged and tried again, later each
            // time it fails again, rather than ending the loop and with it every future run.
            let began = tokio::time::Instant::now();
            let failed = match supervise::catch(self.start_ready()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("failed to read the run queue: {e}")),
                Err(why) => Some(format!("the dispatcher panicked: {why}")),
            };
            if let Some(why) = failed {
                let pause = backoff.after(began.elapsed());
                tracing::error!("{why}; looking again in {pause:?}");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                // Covers runs queued by another process on this database.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.stopping.cancel();
        if self.running() > 0 {
            tracing::info!(
                runs = self.running(),
                grace_s = grace.as_secs_f64(),
                "waiting for running runs before stopping them"
            );
        }
        let deadline = tokio::time::Instant::now() + slipway_model::duration::capped(grace);
        tokio::pin!(force);
        while self.running() > 0 && tokio::time::Instant::now() < deadline {
            tokio::select! {
                _ = &mut force => break,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        let handles: Vec<CancelHandle> = self
            .active
            .lock()
            .map(|a| a.values().map(|r| r.cancel.clone()).collect())
            .unwrap_or_default();
        for h in &handles {
            h.stop();
        }
        while self.running() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn start_ready(self: &Arc<Self>) -> Result<(), StoreError> {
        let queued = self.store.queued().await?;
        if queued.is_empty() {
            return Ok(());
        }
        let running: HashMap<String, usize> = {
            let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            let mut m = HashMap::new();
            for a in active.values() {
                *m.entry(a.group.clone()).or_default() += 1;
            }
            m
        };
        // A limit counts the runs of one Pipeline (or Task) in one namespace; the config file
        // names Pipelines without a namespace, so its limit applies to each namespace's.
        let groups: Vec<String> = queued.iter().map(group).collect();
        let mut limit_of: HashMap<String, Option<usize>> = HashMap::new();
        for (q, g) in queued.iter().zip(&groups) {
            if !q.target.is_empty() && !limit_of.contains_key(g) {
                let limit = match self.limits.per_group.get(&q.target) {
                    Some(l) => Some(*l),
                    None => self.annotated_limit(q).await,
                };
                limit_of.insert(g.clone(), limit);
            }
        }
        let waiting: Vec<Waiting> = queued
            .iter()
            .zip(&groups)
            .map(|(q, g)| Waiting {
                key: &q.uid,
                group: g,
                held: q.held,
            })
            .collect();
        let total = admission::Limits {
            total: self.limits.total,
            per_group: HashMap::new(),
        };
        let picked: Vec<String> = admission::admit(&waiting, &running, &total, |g| {
            limit_of.get(g).copied().flatten()
        })
        .into_iter()
        .map(str::to_string)
        .collect();
        for uid in picked {
            let Some(q) = queued.iter().find(|q| q.uid == uid) else {
                continue;
            };
            if !self.store.dequeue(&uid).await? {
                continue;
            }
            let cancel = CancelHandle::new();
            {
                let mut a = self.active.lock().unwrap_or_else(|e| e.into_inner());
                a.insert(
                    uid.clone(),
                    Active {
                        cancel: cancel.clone(),
                        group: group(q),
                    },
                );
            }
            let me = self.clone();
            let q = q.clone();
            tokio::spawn(async move {
                // However this task ends, a panic or an abort included, the slot is given back.
                let _slot = Slot {
                    dispatcher: me.clone(),
                    uid: q.uid.clone(),
                };
                if let Err(why) = supervise::catch(me.execute(&q, cancel)).await {
                    me.record_panic(&q, &why).await;
                }
                if let Err(e) = me.store.finish_queued(&q.uid).await {
                    tracing::error!(run = %q.name, "failed to close the queue entry: {e}");
                }
            });
        }
        Ok(())
    }

    /// Records a run whose task panicked (a slipway bug) as failed with Tekton's internal-error
    /// reason, so it does not show as running for ever.
    async fn record_panic(&self, q: &Queued, why: &str) {
        tracing::error!(run = %q.name, uid = %q.uid, "the run failed inside slipway: {why}");
        let kind = self
            .store
            .run(&q.uid)
            .await
            .map(|r| r.kind)
            .unwrap_or_default();
        let reason = if kind == "TaskRun" {
            "TaskRunInternalError"
        } else {
            "PipelineRunInternalError"
        };
        let message = format!("slipway failed while running this {kind}: {why}");
        if let Err(e) = self
            .store
            .end_with_error(&q.uid, reason, "TaskRunInternalError", &message)
            .await
        {
            tracing::error!(run = %q.name, "failed to record the internal error: {e}");
        }
    }

    /// The limit a Pipeline or Task sets on itself with an annotation.
    async fn annotated_limit(&self, q: &Queued) -> Option<usize> {
        for kind in ["Pipeline", "Task"] {
            if let Ok(Some(r)) = self.store.resource(kind, &q.namespace, &q.target).await {
                return r.object["metadata"]["annotations"][MAX_RUNS]
                    .as_str()
                    .and_then(|v| slipway_model::annotations::max_concurrent_runs(v).ok());
            }
        }
        None
    }

    async fn execute(&self, q: &Queued, cancel: CancelHandle) {
        let span = tracing::info_span!("run", run = %q.name, uid = %q.uid);
        self.execute_in_span(q, cancel).instrument(span).await;
    }

    async fn execute_in_span(&self, q: &Queued, cancel: CancelHandle) {
        let started = async {
            let row = self.store.run(&q.uid).await.map_err(|e| e.to_string())?;
            let stored = self
                .store
                .inputs(&q.uid)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("its inputs are missing")?;
            let lib = RunInputs::from_json(&stored)
                .load(&format!("stored inputs of {}", q.name))
                .map_err(|d| d.render_plain())?;
            let run = lib.runs.first().cloned().ok_or("its inputs hold no run")?;
            let created = UNIX_EPOCH + Duration::from_millis(row.created_at.max(0) as u64);
            Ok::<_, String>((Arc::new(lib), run, created))
        }
        .await;
        let (lib, run, created) = match started {
            Ok(s) => s,
            Err(why) => {
                tracing::error!("failed to start: {why}");
                let _ = self
                    .store
                    .end_unstarted(&q.uid, "CouldntStart", &format!("failed to start: {why}"))
                    .await;
                return;
            }
        };
        if self.stopping.is_cancelled() {
            // Still pending: closing the entry puts it back in the queue for the next server.
            return;
        }
        tracing::info!("starting");
        let began = std::time::SystemTime::now();
        self.metrics
            .run_waited(began.duration_since(created).unwrap_or_default());
        let opts = RunOptions {
            name: q.name.clone(),
            uid: q.uid.clone(),
            watcher: None,
            workspace_dirs: Default::default(),
            created: Some(created),
            namespace: Some(q.namespace.clone()),
            started: None,
        };
        match self.engine.run(lib, &run, opts, cancel).await {
            Ok(report) => {
                tracing::info!(reason = %report.reason, "finished");
                self.metrics.run_ended(
                    report.kind,
                    &report.reason,
                    began.elapsed().unwrap_or_default(),
                );
            }
            Err(e) => {
                let (reason, message) = match &e {
                    slipway_engine::EngineError::Invalid { failure, .. } => {
                        (failure.reason.clone(), e.to_string())
                    }
                };
                tracing::warn!("{message}");
                let _ = self.store.end_unstarted(&q.uid, &reason, &message).await;
            }
        }
    }
}

/// A run's place among the active ones, given back when its task ends however it ends.
struct Slot {
    dispatcher: Arc<Dispatcher>,
    uid: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut active = self
            .dispatcher
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        active.remove(&self.uid);
        drop(active);
        self.dispatcher.wake();
    }
}

/// What a run's limit counts by: its Pipeline or Task in its namespace; empty for embedded specs,
/// which share no limit.
fn group(q: &Queued) -> String {
    if q.target.is_empty() {
        String::new()
    } else {
        format!("{}/{}", q.namespace, q.target)
    }
}
