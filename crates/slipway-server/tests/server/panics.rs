//! A run whose task panics (a slipway bug) ends as an internal error and gives its slot back,
//! so the queue moves on.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use slipway_engine::EventSink;
use slipway_engine::executor::{ExecOutcome, Executor, TaskRunPlan};
use slipway_server::Limits;
use tokio_util::sync::CancellationToken;

use crate::{Server, reason};

const TASK_RUNS: &str = "/apis/tekton.dev/v1/namespaces/default/taskruns";

/// Panics on TaskRuns named `boom-…`; runs the others on the host.
struct PanicsOnBoom(slipway_exec_host::HostExecutor);

#[async_trait]
impl Executor for PanicsOnBoom {
    fn name(&self) -> &'static str {
        "panics-on-boom"
    }
    async fn run(
        &self,
        plan: TaskRunPlan,
        events: EventSink,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        if plan.name.starts_with("boom") {
            panic!("executor bug while running {}", plan.name);
        }
        self.0.run(plan, events, cancel).await
    }
}

fn task_run(name: &str) -> String {
    format!(
        "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: {name}\nspec:\n  taskSpec:\n    steps:\n    - name: hello\n      image: busybox\n      script: echo hello\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_run_ends_as_an_internal_error_and_frees_its_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = slipway_exec_host::HostExecutor::new(dir.path(), Default::default())
        .expect("host executor");
    let limits = Limits {
        total: Some(1),
        per_group: HashMap::new(),
    };
    let s = Server::start_with(dir, limits, Arc::new(PanicsOnBoom(host))).await;
    for name in ["boom-1", "after-1"] {
        let (code, body) = s.call("POST", TASK_RUNS, &task_run(name)).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let boom = s.wait_done("boom-1").await;
    assert_eq!(reason(&boom), "TaskRunInternalError", "{boom}");
    let message = boom["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("executor bug while running boom-1"),
        "{message}"
    );
    let row = s.store.find_run("boom-1").await.expect("run");
    assert_eq!(
        (row.status.as_str(), row.reason.as_str()),
        ("False", "TaskRunInternalError")
    );
    for t in s.store.task_runs(&row.uid).await.expect("task runs") {
        assert_eq!(t.status, "False", "TaskRun {} still runs", t.name);
    }
    // With one slot, the next run starts only if the panicking one gave its slot back.
    let after = s.wait_done("after-1").await;
    assert_eq!(reason(&after), "Succeeded", "{after}");
    s.shut_down().await;
}
