//! The host executor: each step is a child process on this machine.
//!
//! Where user and mount namespaces are allowed, each step runs in its own mount namespace whose
//! root is the host's plus Tekton's paths, so unmodified Tekton scripts work. Elsewhere, Tekton
//! paths in step text are rewritten to host directories and the run says so once.

mod probe;
mod sandbox;
mod settle;
mod step;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use slipway_engine::executor::{
    Builtin, ExecOutcome, ExecStatus, Executor, ImageBuilder, StepTally, TaskRunPlan,
};
use slipway_engine::{EventSink, ExecEvent};
use tokio_util::sync::CancellationToken;

use crate::sandbox::Sandbox;
use slipway_taskdir::builder;
use slipway_taskdir::layout::{self, Layout};

/// Errors setting up the host executor.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The data directory could not be created.
    #[error("failed to create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Settings of the host executor.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// The shell that runs `sh` inside steps; `None` finds busybox, else keeps the host's `/bin/sh`.
    pub shell: Option<PathBuf>,
    /// Never use namespaces (for machines that forbid them, or to compare).
    pub no_sandbox: bool,
    /// Slipway's image builder, for steps that run Kaniko's executor.
    pub builder: Option<ImageBuilder>,
}

/// Runs steps as host processes.
#[derive(Debug, Clone)]
pub struct HostExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    data_dir: PathBuf,
    runtime_dir: PathBuf,
    pool: layout::ScratchPool,
    /// TaskRun directories being removed off the critical path; awaited by `cleanup`.
    removals: std::sync::Mutex<tokio::task::JoinSet<()>>,
    sandbox: Option<Sandbox>,
    shell: Option<PathBuf>,
    builder: Option<ImageBuilder>,
}

impl HostExecutor {
    /// An executor keeping its files under `data_dir`.
    pub fn new(data_dir: &Path, opts: HostOptions) -> Result<Self, HostError> {
        let data_dir = data_dir.to_path_buf();
        std::fs::create_dir_all(data_dir.join("taskruns")).map_err(|source| {
            HostError::DataDir {
                path: data_dir.clone(),
                source,
            }
        })?;
        let shell = opts.shell.or_else(|| {
            ["/bin/busybox", "/usr/bin/busybox"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        });
        let runtime_dir = layout::runtime_dir(&data_dir);
        layout::sweep(&runtime_dir, &data_dir);
        let sandbox = if opts.no_sandbox || !cfg!(target_os = "linux") {
            None
        } else {
            Sandbox::new(&runtime_dir.join("taskruns"), shell.as_deref())
        };
        Ok(HostExecutor {
            inner: Arc::new(Inner {
                data_dir,
                runtime_dir,
                pool: layout::ScratchPool::default(),
                removals: std::sync::Mutex::new(tokio::task::JoinSet::new()),
                sandbox,
                shell,
                builder: opts.builder,
            }),
        })
    }

    /// True when steps see Tekton's container paths.
    pub fn sandboxed(&self) -> bool {
        self.inner.sandbox.is_some()
    }
}

/// Runs a Kaniko step with slipway's builder, outside the sandbox: it mounts overlays and runs
/// containers itself, so it sees the binds' host directories instead of Tekton's paths.
async fn run_builder(
    builder: Option<&ImageBuilder>,
    layout: &Layout,
    s: &slipway_engine::StepPlan,
    i: usize,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> slipway_engine::StepEnd {
    let mut binds = layout.binds.clone();
    match step::step_binds(layout, s) {
        Ok(extra) => binds.extend(extra),
        Err(e) => return slipway_engine::StepEnd::StartFailed(e.to_string()),
    }
    builder::run(builder, layout, &binds, s, i, events, cancel, deadline).await
}

#[async_trait]
impl Executor for HostExecutor {
    fn name(&self) -> &'static str {
        "host"
    }

    fn runs_images(&self) -> bool {
        false
    }

    async fn run(
        &self,
        mut plan: TaskRunPlan,
        events: EventSink,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        let inner = &self.inner;
        if let Some(unapplied) = plan.cluster_only_settings() {
            events
                .send(ExecEvent::Notice(format!(
                    "the host executor does not apply {unapplied}: they take effect on Kubernetes only"
                )))
                .await;
        }
        if inner.sandbox.is_none() {
            events.send(ExecEvent::Notice(
                "user and mount namespaces are unavailable: steps see host paths; Tekton paths in step text are rewritten, hard-coded ones elsewhere may fail".into(),
            )).await;
        }
        let layout = match Layout::create(
            &inner.data_dir,
            &inner.runtime_dir,
            &inner.pool,
            &plan,
            false,
        ) {
            Ok(l) => l,
            Err(e) => {
                return ExecOutcome::new(
                    ExecStatus::Error,
                    format!("failed to prepare the TaskRun directories: {e}"),
                );
            }
        };
        let deadline = plan
            .timeout
            .map(|t| tokio::time::Instant::now() + slipway_model::duration::capped(t));
        let (mut sidecars, ready) =
            start_sidecars(inner, &layout, &plan, &events, &cancel, deadline).await;
        let outcome = match ready {
            Ok(()) => run_steps(inner, &layout, &mut plan, &events, &cancel, deadline).await,
            Err(outcome) => outcome,
        };
        for c in &mut sidecars {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        layout.release_volumes();
        // The next task need not wait for this one's directories to go.
        let owner = self.inner.clone();
        if let Ok(mut removals) = inner.removals.lock() {
            while removals.try_join_next().is_some() {}
            removals.spawn_blocking(move || layout.remove(&owner.pool));
        }
        outcome
    }

    async fn cleanup(&self, root_uid: &str) {
        let pending = self
            .inner
            .removals
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        pending.join_all().await;
        let dir = self.inner.data_dir.join("scratch").join(root_uid);
        let _ = tokio::fs::remove_dir_all(dir).await;
        self.inner.pool.drain();
    }
}

/// Starts the sidecars and waits until each with a readiness probe passes it; a sidecar that
/// cannot start is reported and left out, as before probes.
async fn start_sidecars(
    inner: &Inner,
    layout: &Layout,
    plan: &TaskRunPlan,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> (Vec<tokio::process::Child>, Result<(), ExecOutcome>) {
    let mut started = Vec::new();
    for (i, sc) in plan.sidecars.iter().enumerate() {
        match step::spawn_sidecar(
            inner.sandbox.as_ref(),
            inner.shell.as_deref(),
            layout,
            sc,
            i,
        ) {
            Ok(child) => started.push((i, sc, child)),
            Err(e) => {
                events
                    .send(ExecEvent::Notice(format!(
                        "sidecar `{}` did not start: {e}",
                        sc.name
                    )))
                    .await
            }
        }
    }
    let mut ready = Ok(());
    for (index, sc, child) in &mut started {
        let Some(probe) = &sc.readiness else {
            if let Some(pgid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                settle::settle(pgid, std::time::Duration::from_secs(2)).await;
            }
            continue;
        };
        let waiting = probe::Waiting {
            root: inner.sandbox.as_ref(),
            shell: inner.shell.as_deref(),
            layout,
            sidecar: sc,
            index: *index,
            probe,
        };
        if let Err(outcome) = waiting.until_ready(child, cancel, deadline).await {
            ready = Err(outcome);
            break;
        }
        events
            .send(ExecEvent::Notice(format!("sidecar `{}` is ready", sc.name)))
            .await;
    }
    (started.into_iter().map(|(_, _, c)| c).collect(), ready)
}

/// Runs the steps in order, each after the one before, and reads the results.
async fn run_steps(
    inner: &Inner,
    layout: &Layout,
    plan: &mut TaskRunPlan,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> ExecOutcome {
    let mut tally = StepTally::default();
    for i in 0..plan.steps.len() {
        // A copy: the steps after this one change once its results are known.
        let s = plan.steps[i].clone();
        let s = &s;
        if !tally.runs(s) {
            StepTally::skip(events, i).await;
            continue;
        }
        let end = match s.builtin {
            Some(Builtin::ImageBuilder) => {
                run_builder(
                    inner.builder.as_ref(),
                    layout,
                    s,
                    i,
                    events,
                    cancel,
                    deadline,
                )
                .await
            }
            None => {
                step::run(
                    inner.sandbox.as_ref(),
                    inner.shell.as_deref(),
                    layout,
                    s,
                    i,
                    events,
                    cancel,
                    deadline,
                )
                .await
            }
        };
        layout.step_ended(plan, i, end.exit_code());
        let timed_out = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        tally.finish(events, i, s, end, timed_out).await;
    }
    tally.outcome().with_results(layout.read_results(plan))
}
