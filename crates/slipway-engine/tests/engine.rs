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
