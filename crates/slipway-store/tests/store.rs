//! The store against a real SQLite file: concurrent opens, events in, rows out.

use std::time::SystemTime;

use serde_json::json;
use slipway_engine::event::{RunInfo, TaskRunInfo};
use slipway_engine::{RunEvent, Store, Stream};
use slipway_store::SqliteStore;

#[path = "store/secrets.rs"]
mod secrets;

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
        spec: serde_json::Value::Null,
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

fn started(store: &SqliteStore, uid: &str, name: &str, namespace: Option<&str>) {
    let mut object =
        json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": name}});
    if let Some(ns) = namespace {
        object["metadata"]["namespace"] = json!(ns);
    }
    store.record(&RunEvent::RunStarted {
        run: RunInfo {
            uid: uid.into(),
            name: name.into(),
            kind: "PipelineRun",
            target: "build".into(),
            parent_uid: None,
            created: SystemTime::now(),
        },
        object,
    });
}

/// Run keys are compared as they are: `%` and `_` are not wildcards, a uid prefix needs eight
/// hex digits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_lookup_is_exact_and_never_a_pattern() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).await.expect("open");
    started(
        &store,
        "0123abcd-0000-4000-8000-000000000001",
        "build-1",
        None,
    );
    started(
        &store,
        "4567cdef-0000-4000-8000-000000000002",
        "build-2",
        None,
    );
    store.flush().await;
    for key in [
        "%",
        "%%%%",
        "%%%%%%%%",
        "________",
        "build-%",
        "build-_",
        "0123abc%",
        "0123abcd%",
        "",
    ] {
        assert!(store.find_run(key).await.is_err(), "`{key}` found a run");
        assert!(
            store.find_run_in(Some("default"), key).await.is_err(),
            "`{key}` found a run in default"
        );
    }
    assert_eq!(
        store.find_run("build-1").await.expect("name").name,
        "build-1"
    );
    let uid = "4567cdef-0000-4000-8000-000000000002";
    assert_eq!(store.find_run(uid).await.expect("uid").name, "build-2");
    assert_eq!(
        store.find_run("4567cdef").await.expect("prefix").name,
        "build-2"
    );
    assert_eq!(
        store.find_run("4567cdef-0000").await.expect("prefix").name,
        "build-2"
    );
    assert!(store.find_run("4567cde").await.is_err(), "7 digits");
    assert!(
        store.find_run("4567CDEF").await.is_err(),
        "uids are lowercase"
    );
}

/// Runs live in namespaces: lists and lookups of one namespace see only its runs, and one name
/// can be used in two namespaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_kept_apart_by_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).await.expect("open");
    started(&store, "aaaaaaaa-1", "build", Some("team-a"));
    started(&store, "bbbbbbbb-1", "build", Some("team-b"));
    started(&store, "cccccccc-1", "other", None);
    store.flush().await;
    let names = |rows: Vec<slipway_store::RunRow>| {
        rows.into_iter()
            .map(|r| format!("{}/{}", r.namespace, r.name))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.list_runs_in(Some("team-a"), 10).await.expect("list")),
        ["team-a/build"]
    );
    assert_eq!(
        names(store.list_runs_in(Some("default"), 10).await.expect("list")),
        ["default/other"]
    );
    assert_eq!(store.list_runs_in(None, 10).await.expect("list").len(), 3);
    assert_eq!(
        store
            .find_run_in(Some("team-b"), "build")
            .await
            .expect("b")
            .uid,
        "bbbbbbbb-1"
    );
    assert!(store.find_run_in(Some("team-c"), "build").await.is_err());
    // A uid does not reach into another namespace either.
    assert!(
        store
            .find_run_in(Some("team-a"), "bbbbbbbb-1")
            .await
            .is_err()
    );
    let only_a = ["team-a".to_string()];
    let objects = store
        .run_objects_of("PipelineRun", Some(&only_a), 10)
        .await
        .expect("objects");
    assert_eq!(objects.len(), 1);
    assert!(objects[0].contains("\"team-a\""), "{}", objects[0]);
    assert_eq!(
        store.namespaces().await.expect("namespaces"),
        ["default", "team-a", "team-b"]
    );
}

/// A database made before namespaces opens with every run, task run and token kept: a run the
/// server queued takes the queue's namespace (its object had been stamped `default`), a local
/// run its object's, child runs their parent's; opening again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_namespaces_is_migrated_without_loss() {
    use sqlx::Row;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("runs.db").display());
    let old = sqlx::SqlitePool::connect(&url).await.expect("old db");
    sqlx::raw_sql(OLD_SCHEMA)
        .execute(&old)
        .await
        .expect("old schema");
    sqlx::raw_sql(
        r#"
INSERT INTO runs (uid, name, kind, target, parent_uid, status, reason, created_at, object) VALUES
 ('q1', 'queued', 'PipelineRun', 'p', NULL, 'True', 'Succeeded', 1, '{"metadata":{"name":"queued","namespace":"default"}}'),
 ('c1', 'queued-child', 'PipelineRun', 'p', 'q1', 'True', 'Succeeded', 2, '{"metadata":{"name":"queued-child","namespace":"default"}}'),
 ('l1', 'local', 'TaskRun', 't', NULL, 'True', 'Succeeded', 3, '{"metadata":{"name":"local","namespace":"x"}}'),
 ('n1', 'bare', 'TaskRun', 't', NULL, 'False', 'Failed', 4, '{"metadata":{"name":"bare"}}');
INSERT INTO queue (uid, namespace, pipeline, state, enqueued_at) VALUES ('q1', 'team-a', 'p', 'done', 1);
INSERT INTO task_runs (uid, root_uid, name, status, object) VALUES ('t1', 'q1', 'queued-x', 'True', '{"metadata":{"name":"queued-x"}}');
INSERT INTO tokens (name, scope, hash, created_at) VALUES ('ci', 'write', 'abc', 1);
"#,
    )
    .execute(&old)
    .await
    .expect("old rows");
    old.close().await;

    for _ in 0..2 {
        let store = SqliteStore::open(dir.path()).await.expect("open");
        let ns = |key: &'static str| {
            let store = store.clone();
            async move {
                let r = store.find_run(key).await.expect(key);
                (r.namespace, r.object["metadata"]["namespace"].clone())
            }
        };
        assert_eq!(ns("queued").await, ("team-a".into(), json!("team-a")));
        assert_eq!(ns("queued-child").await, ("team-a".into(), json!("team-a")));
        assert_eq!(ns("local").await, ("x".into(), json!("x")));
        assert_eq!(ns("bare").await, ("default".into(), json!("default")));
        let trs = store.task_runs("q1").await.expect("task runs");
        assert_eq!(
            trs[0]
                .object
                .as_ref()
                .map(|o| o["metadata"]["namespace"].clone()),
            Some(json!("team-a"))
        );
        let tokens = store.tokens().await.expect("tokens");
        assert_eq!(
            (tokens[0].name.as_str(), tokens[0].namespaces.len()),
            ("ci", 0)
        );
        assert_eq!(
            store
                .list_runs_in(Some("team-a"), 10)
                .await
                .expect("list")
                .len(),
            1
        );
    }
    let pool = sqlx::SqlitePool::connect(&url).await.expect("db");
    let n: i64 = sqlx::query("SELECT count(*) AS n FROM runs")
        .fetch_one(&pool)
        .await
        .expect("count")
        .get("n");
    assert_eq!(n, 4, "no run lost");
}

/// Tokens keep the namespaces they are limited to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_their_namespaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).await.expect("open");
    let limited = ["a".to_string(), "b".to_string()];
    assert!(
        store
            .add_token_in("ci", "write", "h1", &limited)
            .await
            .expect("add")
    );
    assert!(store.add_token("admin", "write", "h2").await.expect("add"));
    assert_eq!(
        store.token_namespaces("h1").await.expect("ns"),
        Some(limited.to_vec())
    );
    assert_eq!(
        store.token_namespaces("h2").await.expect("ns"),
        Some(vec![])
    );
    assert_eq!(store.token_namespaces("h3").await.expect("ns"), None);
}

/// The tables as they were before namespaces (the parts the migration touches).
const OLD_SCHEMA: &str = r#"
CREATE TABLE runs (
    uid TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL DEFAULT '',
    parent_uid TEXT, status TEXT NOT NULL DEFAULT 'Unknown', reason TEXT NOT NULL DEFAULT 'Running',
    created_at INTEGER NOT NULL, finished_at INTEGER, owner_pid INTEGER, owner_start INTEGER,
    object TEXT NOT NULL
);
CREATE TABLE task_runs (
    uid TEXT PRIMARY KEY, root_uid TEXT NOT NULL, parent_uid TEXT, name TEXT NOT NULL,
    pipeline_task TEXT, attempt INTEGER NOT NULL DEFAULT 0, steps TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'Unknown', reason TEXT NOT NULL DEFAULT 'Running',
    started_at INTEGER, finished_at INTEGER, object TEXT
);
CREATE TABLE queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE, namespace TEXT NOT NULL,
    pipeline TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, held INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL, enqueued_at INTEGER NOT NULL
);
CREATE TABLE tokens (
    name TEXT PRIMARY KEY, scope TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL
);
"#;
