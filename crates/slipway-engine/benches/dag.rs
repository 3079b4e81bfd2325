//! Scheduling cost of a 10,000-task DAG with an executor that does nothing.
//!
//! `cargo bench -p slipway-engine --bench dag` for timings; with `DAG_ONCE=1` the binary runs the
//! pipeline once and exits, so `/usr/bin/time -v` can read its peak RSS.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use criterion::{Criterion, criterion_group};
use slipway_engine::executor::{ExecOutcome, ExecStatus, Executor, TaskRunPlan};
use slipway_engine::{
    CancelHandle, Engine, EngineConfig, EventSink, ExecEvent, NullStore, RunOptions, StepEnd,
};
use slipway_model::kinds::k8s::ObjectMeta;
use slipway_model::kinds::pipeline::{PipelineRef, PipelineSpec, PipelineTask, TaskRef};
use slipway_model::kinds::run::PipelineRunSpec;
use slipway_model::kinds::task::{Step, TaskSpec};
use slipway_model::{Library, Object, RunObject};
use tokio_util::sync::CancellationToken;

const LAYERS: usize = 100;
const WIDTH: usize = 100;

/// Reports each step as started and finished, and succeeds.
struct Noop;

#[async_trait]
impl Executor for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }
    async fn run(
        &self,
        plan: TaskRunPlan,
        events: EventSink,
        _cancel: CancellationToken,
    ) -> ExecOutcome {
        for i in 0..plan.steps.len() {
            events
                .send(ExecEvent::StepStarted {
                    step: i,
                    at: SystemTime::now(),
                })
                .await;
            events
                .send(ExecEvent::StepFinished {
                    step: i,
                    end: StepEnd::Exited(0),
                    at: SystemTime::now(),
                    ignored: false,
                })
                .await;
        }
        ExecOutcome::new(ExecStatus::Succeeded, "")
    }
}

/// 100 layers of 100 tasks; each task runs after two tasks of the layer before.
fn library() -> (Arc<Library>, RunObject) {
    let mut lib = Library::default();
    let task = TaskSpec {
        steps: vec![Step {
            name: Some("noop".into()),
            image: Some("busybox".into()),
            command: Some(vec!["true".into()]),
            ..Step::default()
        }],
        ..TaskSpec::default()
    };
    lib.tasks.insert(
        "noop".into(),
        Object {
            api_version: "tekton.dev/v1".into(),
            meta: ObjectMeta {
                name: Some("noop".into()),
                ..Default::default()
            },
            spec: task,
            origin: None,
        },
    );
    let mut tasks = Vec::with_capacity(LAYERS * WIDTH);
    for l in 0..LAYERS {
        for w in 0..WIDTH {
            let run_after = if l == 0 {
                vec![]
            } else {
                vec![
                    format!("t{}-{}", l - 1, w),
                    format!("t{}-{}", l - 1, (w * 7 + 3) % WIDTH),
                ]
            };
            tasks.push(PipelineTask {
                name: format!("t{l}-{w}"),
                task_ref: Some(TaskRef {
                    name: Some("noop".into()),
                    ..Default::default()
                }),
                run_after,
                ..Default::default()
            });
        }
    }
    lib.pipelines.insert(
        "dag".into(),
        Object {
            api_version: "tekton.dev/v1".into(),
            meta: ObjectMeta {
                name: Some("dag".into()),
                ..Default::default()
            },
            spec: PipelineSpec {
                tasks,
                ..Default::default()
            },
            origin: None,
        },
    );
    let run = RunObject::PipelineRun(Object {
        api_version: "tekton.dev/v1".into(),
        meta: ObjectMeta {
            name: Some("dag-run".into()),
            ..Default::default()
        },
        spec: PipelineRunSpec {
            pipeline_ref: Some(PipelineRef {
                name: Some("dag".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        origin: None,
    });
    (Arc::new(lib), run)
}

async fn run_once(engine: &Engine, lib: Arc<Library>, run: &RunObject) {
    let opts = RunOptions {
        name: "dag-run".into(),
        uid: "bench".into(),
        ..Default::default()
    };
    let report = engine
        .run(lib, run, opts, CancelHandle::new())
        .await
        .expect("run starts");
    assert!(report.succeeded, "{}", report.reason);
    let children = report.object["status"]["childReferences"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(children, LAYERS * WIDTH);
}

fn engine() -> Engine {
    Engine::new(Arc::new(Noop), Arc::new(NullStore), EngineConfig::default())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (lib, run) = library();
    let engine = engine();
    let mut g = c.benchmark_group("dag");
    g.sample_size(10);
    g.bench_function("10k_tasks_noop_executor", |b| {
        b.iter(|| rt.block_on(run_once(&engine, lib.clone(), &run)))
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if std::env::var_os("DAG_ONCE").is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (lib, run) = library();
        let started = std::time::Instant::now();
        rt.block_on(run_once(&engine(), lib, &run));
        eprintln!("10,000 tasks in {:?}", started.elapsed());
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
