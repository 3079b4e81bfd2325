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

/// While the database is locked by someone else, the writer cannot commit: log lines queue up
/// to the budget, then `record_log` waits (and with it the step that writes them); once the
/// lock goes, every line is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_wait_while_the_writer_is_behind_and_none_is_lost() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(dir.path()).await.expect("open"));
    let mut other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        store.path().display()
    ))
    .await
    .expect("second connection");
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("lock");
    const LINES: usize = 200;
    let line = "x".repeat(64 * 1024);
    let queued = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (store, queued) = (store.clone(), queued.clone());
        tokio::spawn(async move {
            for _ in 0..LINES {
                store
                    .record_log(RunEvent::Log {
                        root: "r1".into(),
                        taskrun: "t1".into(),
                        step: "s".into(),
                        stream: Stream::Stdout,
                        line: line.clone(),
                        continued: false,
                        at: SystemTime::now(),
                    })
                    .await;
                queued.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ahead = queued.load(Ordering::SeqCst);
    let budget = slipway_store::LOG_BYTES_IN_FLIGHT / (64 * 1024);
    assert!(
        ahead <= budget,
        "{ahead} lines of 64 KiB queued while nothing could be written"
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("unlock");
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the lines go through once the lock is gone")
        .expect("writer");
    store.flush().await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM logs")
        .fetch_one(&mut other)
        .await
        .expect("count");
    assert_eq!(rows as usize, LINES);
}
