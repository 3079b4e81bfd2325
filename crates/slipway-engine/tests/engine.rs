//! Engine behaviour with test-double executors: failures inside slipway, the concurrency limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use slipway_engine::executor::{ExecOutcome, ExecStatus, Executor, TaskRunPlan};
use slipway_engine::{
    CancelHandle, Engine, EngineConfig, EventSink, NullStore, RunEvent, RunOptions, Store,
};
use slipway_model::{Diagnostics, Library};
use tokio_util::sync::CancellationToken;

fn library(yaml: &str) -> Arc<Library> {
    let mut lib = Library::default();
    let mut diags = Diagnostics::default();
    lib.add_source("test.yaml".into(), yaml.into(), &mut diags);
    assert!(diags.is_empty(), "{}", diags.render_plain());
    Arc::new(lib)
}

fn fan_out(n: usize) -> String {
    let tasks: String = (0..n).map(|i| format!("      - name: t{i}\n        taskSpec:\n          steps: [{{image: alpine, script: 'true'}}]\n")).collect();
    format!(
        "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata:\n  name: fan\nspec:\n  pipelineSpec:\n    tasks:\n{tasks}"
    )
}

async fn run(
    executor: Arc<dyn Executor>,
    store: Arc<dyn Store>,
    lib: Arc<Library>,
    concurrency: usize,
) -> slipway_engine::RunReport {
    let engine = Engine::new(
        executor,
        store,
        EngineConfig {
            concurrency,
            ..EngineConfig::default()
        },
    );
    let run = lib.runs[0].clone();
    let opts = RunOptions {
        name: "fan".into(),
        uid: "uid".into(),
        ..Default::default()
    };
    tokio::time::timeout(
        Duration::from_secs(20),
        engine.run(lib, &run, opts, CancelHandle::new()),
    )
    .await
    .expect("the run ends")
    .expect("the run starts")
}

struct Panics;

#[async_trait]
impl Executor for Panics {
    fn name(&self) -> &'static str {
        "panics"
    }
    async fn run(
        &self,
        _plan: TaskRunPlan,
        _events: EventSink,
        _cancel: CancellationToken,
    ) -> ExecOutcome {
        panic!("executor bug");
    }
}

/// Keeps the reason of every TaskRun that ended.
#[derive(Default)]
struct Recording(std::sync::Mutex<Vec<String>>);

#[async_trait]
impl Store for Recording {
    fn record(&self, event: &RunEvent) {
        if let RunEvent::TaskRunFinished { reason, .. } = event
            && let Ok(mut v) = self.0.lock()
        {
            v.push(reason.clone());
        }
    }
    async fn record_log(&self, _event: RunEvent) {}
    async fn flush(&self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_task_fails_the_run_instead_of_hanging_it() {
    let store = Arc::new(Recording::default());
    let report = run(Arc::new(Panics), store.clone(), library(&fan_out(2)), 2).await;
    assert!(!report.succeeded);
    assert_eq!(report.reason, "Failed");
    let ended = store.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(
        ended,
        ["TaskRunInternalError", "TaskRunInternalError"],
        "each lost TaskRun is reported as ended"
    );
}

/// Records how many TaskRuns run at once.
#[derive(Default)]
struct Counting {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[async_trait]
impl Executor for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn run(
        &self,
        _plan: TaskRunPlan,
        _events: EventSink,
        _cancel: CancellationToken,
    ) -> ExecOutcome {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        ExecOutcome::new(ExecStatus::Succeeded, "")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_tasks_run_in_parallel_up_to_the_limit() {
    let counting = Arc::new(Counting::default());
    let report = run(
        counting.clone(),
        Arc::new(NullStore),
        library(&fan_out(12)),
        3,
    )
    .await;
    assert!(report.succeeded, "{}", report.reason);
    assert_eq!(counting.max.load(Ordering::SeqCst), 3);
}

/// Keeps the `metadata.namespace` of every run object reported.
#[derive(Default)]
struct Namespaces(std::sync::Mutex<Vec<String>>);

#[async_trait]
impl Store for Namespaces {
    fn record(&self, event: &RunEvent) {
        let object = match event {
            RunEvent::RunStarted { object, .. }
            | RunEvent::RunFinished { object, .. }
            | RunEvent::TaskRunFinished { object, .. } => object,
            _ => return,
        };
        let kind = object["kind"].as_str().unwrap_or("?");
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("<none>");
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{kind} {ns}"));
        }
    }
    async fn record_log(&self, _event: RunEvent) {}
    async fn flush(&self) {}
}

/// Every object of a run (the run, a child PipelineRun, TaskRuns as they end) is in the run's
/// namespace: its own `metadata.namespace`, else the one it was created in, else `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_of_a_run_says_the_runs_namespace() {
    let yaml = |own: &str| {
        format!(
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata:\n  name: outer\n{own}spec:\n  pipelineSpec:\n    tasks:\n    - name: inner\n      pipelineSpec:\n        tasks:\n        - name: leaf\n          taskSpec:\n            steps: [{{image: alpine, script: 'true'}}]\n    - name: direct\n      taskSpec:\n        steps: [{{image: alpine, script: 'true'}}]\n"
        )
    };
    for (own, given, want) in [
        ("", Some("team-a"), "team-a"),
        ("  namespace: own\n", Some("team-a"), "own"),
        ("", None, "default"),
    ] {
        let store = Arc::new(Namespaces::default());
        let engine = Engine::new(
            Arc::new(Counting::default()),
            store.clone(),
            EngineConfig::default(),
        );
        let lib = library(&yaml(own));
        let run = lib.runs[0].clone();
        let opts = RunOptions {
            name: "outer".into(),
            uid: "uid".into(),
            namespace: given.map(str::to_string),
            ..Default::default()
        };
        let report = tokio::time::timeout(
            Duration::from_secs(20),
            engine.run(lib, &run, opts, CancelHandle::new()),
        )
        .await
        .expect("the run ends")
        .expect("the run starts");
        assert!(report.succeeded, "{}", report.reason);
        assert_eq!(report.object["metadata"]["namespace"], want);
        let seen = store.0.lock().map(|v| v.clone()).unwrap_or_default();
        let mut kinds: Vec<&str> = seen
            .iter()
            .map(|s| s.split(' ').next().unwrap_or(""))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds, ["PipelineRun", "TaskRun"], "{seen:?}");
        // Two TaskRuns, the outer and the inner PipelineRun, each started and finished.
        assert!(seen.len() >= 6, "{seen:?}");
        assert!(
            seen.iter().all(|s| s.ends_with(&format!(" {want}"))),
            "{want}: {seen:?}"
        );
    }
}

/// Writes one line of output cut at the line cap, a secret split across the cut.
struct SplitSecret;

/// Where the secret starts in the line: its first half ends the first piece.
const SPLIT_AT: usize = slipway_engine::output::MAX_LINE - 6;

#[async_trait]
impl Executor for SplitSecret {
    fn name(&self) -> &'static str {
        "split-secret"
    }
    async fn run(
        &self,
        _plan: TaskRunPlan,
        events: EventSink,
        _cancel: CancellationToken,
    ) -> ExecOutcome {
        let line = "a".repeat(SPLIT_AT) + "hunter2-secret and more";
        let mut splitter = slipway_engine::output::LineSplitter::default();
        let mut pieces = splitter.push(line.as_bytes());
        pieces.extend(splitter.finish());
        assert_eq!(pieces.len(), 2, "the line is cut once");
        for p in pieces {
            events.log(0, slipway_engine::Stream::Stdout, p).await;
        }
        events
            .send(slipway_engine::ExecEvent::StepFinished {
                step: 0,
                end: slipway_engine::StepEnd::Exited(0),
                at: std::time::SystemTime::now(),
                ignored: false,
            })
            .await;
        ExecOutcome::new(ExecStatus::Succeeded, "")
    }
}

/// Keeps every log line.
#[derive(Default)]
struct Lines(std::sync::Mutex<Vec<(String, bool)>>);

#[async_trait]
impl Store for Lines {
    fn record(&self, _event: &RunEvent) {}
    async fn record_log(&self, event: RunEvent) {
        if let RunEvent::Log {
            line, continued, ..
        } = event
            && let Ok(mut v) = self.0.lock()
        {
            v.push((line, continued));
        }
    }
    async fn flush(&self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_cut_in_two_by_the_line_cap_is_still_masked() {
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {token: hunter2-secret}\n---\napiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: fan}\nspec:\n  taskSpec:\n    steps: [{name: talk, image: alpine, script: 'true'}]\n";
    let store = Arc::new(Lines::default());
    let report = run(Arc::new(SplitSecret), store.clone(), library(yaml), 1).await;
    assert!(report.succeeded, "{}", report.reason);
    let lines = store.0.lock().map(|v| v.clone()).unwrap_or_default();
    let joined: String = lines.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        joined,
        "a".repeat(SPLIT_AT) + "[MASKED] and more",
        "{lines:?}"
    );
    assert!(lines.iter().skip(1).all(|(_, c)| *c), "{lines:?}");
    assert!(
        !lines.iter().any(|(l, _)| l.contains("hunter")),
        "{lines:?}"
    );
}

/// Lines an executor has handed over so far.
static SENT: AtomicUsize = AtomicUsize::new(0);
/// Lines the executor writes.
const CHATTY_LINES: usize = 5_000;

/// Writes many short lines as fast as the engine takes them.
struct Chatty;

#[async_trait]
impl Executor for Chatty {
    fn name(&self) -> &'static str {
        "chatty"
    }
    async fn run(
        &self,
        _plan: TaskRunPlan,
        events: EventSink,
        _cancel: CancellationToken,
    ) -> ExecOutcome {
        for i in 0..CHATTY_LINES {
            let piece = slipway_engine::output::Piece {
                line: format!("line {i}"),
                continued: false,
            };
            events.log(0, slipway_engine::Stream::Stdout, piece).await;
            SENT.fetch_add(1, Ordering::SeqCst);
        }
        ExecOutcome::new(ExecStatus::Succeeded, "")
    }
}

/// A store that takes a log line only when the test lets it.
struct Gated {
    gate: tokio::sync::Semaphore,
    taken: AtomicUsize,
}

#[async_trait]
impl Store for Gated {
    fn record(&self, _event: &RunEvent) {}
    async fn record_log(&self, _event: RunEvent) {
        if let Ok(p) = self.gate.acquire().await {
            p.forget();
        }
        self.taken.fetch_add(1, Ordering::SeqCst);
    }
    async fn flush(&self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_falls_behind_holds_the_executor_back() {
    let store = Arc::new(Gated {
        gate: tokio::sync::Semaphore::new(0),
        taken: AtomicUsize::new(0),
    });
    let yaml = "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: fan}\nspec:\n  taskSpec:\n    steps: [{name: talk, image: alpine, script: 'true'}]\n";
    let lib = library(yaml);
    let run = tokio::spawn(self::run(Arc::new(Chatty), store.clone(), lib, 1));
    store.gate.add_permits(100);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sent, taken) = (
        SENT.load(Ordering::SeqCst),
        store.taken.load(Ordering::SeqCst),
    );
    assert_eq!(taken, 100);
    // The engine's channel and the line it holds are all that may run ahead of the store.
    assert!(
        sent <= taken + slipway_engine::executor::EVENTS_IN_FLIGHT + 1,
        "the executor ran {} lines ahead of the store",
        sent - taken
    );
    store.gate.add_permits(CHATTY_LINES);
    let report = run.await.expect("the run ends");
    assert!(report.succeeded, "{}", report.reason);
    assert_eq!(store.taken.load(Ordering::SeqCst), CHATTY_LINES);
}

/// Records each TaskRun's uid, name and attempt as the executor gets them, fails the first
/// attempt of `t1`, and notes whether the store had flushed when `cleanup` came.
#[derive(Default)]
struct Replayable {
    seen: std::sync::Mutex<Vec<(String, String, u32)>>,
    flushed: Arc<std::sync::atomic::AtomicBool>,
    cleaned_after_flush: std::sync::Mutex<Vec<bool>>,
}

#[async_trait]
impl Executor for Replayable {
    fn name(&self) -> &'static str {
        "replayable"
    }
    async fn run(
        &self,
        plan: TaskRunPlan,
        _events: EventSink,
        _cancel: CancellationToken,
    ) -> ExecOutcome {
        let first_try_of_t1 = plan.name.ends_with("-t1") && plan.attempt == 0;
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((plan.uid, plan.name, plan.attempt));
        }
        if first_try_of_t1 {
            ExecOutcome::new(ExecStatus::Failed, "first try")
        } else {
            ExecOutcome::new(ExecStatus::Succeeded, "")
        }
    }
    async fn cleanup(&self, _root_uid: &str) {
        let flushed = self.flushed.load(Ordering::SeqCst);
        if let Ok(mut c) = self.cleaned_after_flush.lock() {
            c.push(flushed);
        }
    }
}

/// A store that says when it was flushed.
struct Flushing(Arc<std::sync::atomic::AtomicBool>);

#[async_trait]
impl Store for Flushing {
    fn record(&self, _event: &RunEvent) {}
    async fn record_log(&self, _event: RunEvent) {}
    async fn flush(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What lets a controller adopt a run after a restart: the same run (same uid) gives its
/// TaskRuns the same uids and names each time, each retry its own attempt number, and the
/// executor cleans up only once the store has the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_run_again_gives_its_taskruns_the_same_uids_and_cleans_up_after_the_flush() {
    let yaml = "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata:\n  name: fan\nspec:\n  pipelineSpec:\n    tasks:\n      - name: t0\n        taskSpec:\n          steps: [{image: alpine, script: 'true'}]\n      - name: t1\n        retries: 1\n        taskSpec:\n          steps: [{image: alpine, script: 'true'}]\n";
    let mut runs = Vec::new();
    for _ in 0..2 {
        let exec = Arc::new(Replayable::default());
        let store = Arc::new(Flushing(exec.flushed.clone()));
        let report = run(exec.clone(), store, library(yaml), 1).await;
        assert!(report.succeeded, "{}", report.reason);
        let mut seen = exec.seen.lock().map(|s| s.clone()).unwrap_or_default();
        seen.sort();
        let cleaned = exec
            .cleaned_after_flush
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        assert_eq!(cleaned, [true], "cleanup once, after the flush");
        runs.push(seen);
    }
    assert_eq!(runs[0], runs[1], "the same uids, names and attempts");
    let attempts: Vec<(&str, u32)> = runs[0]
        .iter()
        .map(|(_, name, attempt)| (name.as_str(), *attempt))
        .collect();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for (name, attempt) in [("fan-t0", 0), ("fan-t1", 0), ("fan-t1", 1)] {
        assert!(attempts.contains(&(name, attempt)), "{attempts:?}");
    }
    let uids: std::collections::HashSet<&str> =
        runs[0].iter().map(|(uid, _, _)| uid.as_str()).collect();
    assert_eq!(
        uids.len(),
        2,
        "one uid per TaskRun, kept across its retries"
    );
}
