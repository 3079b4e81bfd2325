//! The store against a real SQLite file: concurrent opens, events in, rows out.

use std::time::SystemTime;

use serde_json::json;
use slipway_engine::event::{RunInfo, TaskRunInfo};
use slipway_engine::{RunEvent, Store, Stream};
use slipway_store::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_events_are_readable_after_a_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).await.expect("open");
    let now = SystemTime::now();
    let run = RunInfo {
        uid: "r1".into(),
        name: "build-abcde".into(),
        kind: "PipelineRun",
        target: "build".into(),
        parent_uid: None,
        created: now,
    };
    store.record(&RunEvent::RunStarted {
        run,
        object: json!({"kind": "PipelineRun"}),
    });
    let info = TaskRunInfo {
        uid: "t1".into(),
        name: "build-abcde-compile".into(),
        root_uid: "r1".into(),
        parent_uid: Some("r1".into()),
        pipeline_task: Some("compile".into()),
        steps: vec!["make".into()],
        attempt: 0,
    };
    store.record(&RunEvent::TaskRunStarted { info, at: now });
    store.record(&RunEvent::Log {
        root: "r1".into(),
        taskrun: "t1".into(),
        step: "make".into(),
        stream: Stream::Stdout,
        line: "compiling".into(),
        continued: false,
        at: now,
    });
    store.record(&RunEvent::TaskRunFinished {
        uid: "t1".into(),
        root: "r1".into(),
        reason: "Succeeded".into(),
        succeeded: true,
        object: json!({"status": {"results": [{"name": "digest", "value": "sha256:1"}]}}),
    });
    store.record(&RunEvent::RunFinished {
        uid: "r1".into(),
        reason: "Succeeded".into(),
        succeeded: true,
        object: json!({"kind": "PipelineRun", "status": {}}),
    });
    store.flush().await;

    let row = store.find_run("build-abcde").await.expect("run by name");
    assert_eq!(
        (row.status.as_str(), row.reason.as_str()),
        ("True", "Succeeded")
    );
    let trs = store.task_runs("r1").await.expect("task runs");
    assert_eq!(trs.len(), 1);
    assert_eq!(trs[0].pipeline_task.as_deref(), Some("compile"));
    let logs = store
        .logs("r1", Some("compile"), None, 0, 100)
        .await
        .expect("logs");
    assert_eq!(
        logs.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
        ["compiling"]
    );
    assert!(store.find_run("nope").await.is_err());
}
