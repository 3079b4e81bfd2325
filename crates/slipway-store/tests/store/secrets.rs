//! Secrets at rest against real SQLite files: what the files hold, what readers get back, the
//! sealing of rows an older build stored in the clear, rotation, and a wrong or missing key.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};
use slipway_store::{Enqueue, KeyError, NewResource, SqliteStore, StoreError};

const VALUE: &str = "S3cr3t-Passw0rd-xyz";

fn secret_yaml() -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {VALUE}\n"
    )
}

fn secret_object() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": VALUE}})
}

fn inputs() -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(VALUE);
    json!({
        "documents": [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"password": encoded}},
            {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"}, "spec": {"steps": []}},
        ],
        "run": {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "r"}, "spec": {"taskRef": {"name": "t"}}},
    })
}

/// Every form of the value a careless store could hold.
fn forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    vec![
        value.to_string(),
        STANDARD.encode(value),
        STANDARD_NO_PAD.encode(value),
        URL_SAFE.encode(value),
        URL_SAFE_NO_PAD.encode(value),
    ]
}

/// The database file and its WAL, as bytes on disk.
fn raw(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for f in ["runs.db", "runs.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn assert_sealed_on_disk(dir: &Path) {
    let bytes = raw(dir);
    assert!(bytes.len() > 4096, "the database was written");
    for f in forms(VALUE) {
        assert!(!holds(&bytes, &f), "`{f}` is on disk in the clear");
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

fn enqueue(uid: &str) -> Enqueue {
    Enqueue {
        uid: uid.into(),
        name: format!("r-{uid}"),
        generate_name: None,
        kind: "TaskRun",
        namespace: "default".into(),
        target: "t".into(),
        priority: 0,
        held: false,
        object: json!({"kind": "TaskRun", "status": {"conditions": [{"reason": "PipelineRunPending"}]}}),
        inputs: inputs(),
    }
}

async fn store_with_secrets(dir: &Path) -> SqliteStore {
    let store = SqliteStore::open(dir).await.expect("open");
    let object = secret_object();
    let yaml = secret_yaml();
    store
        .put_resources(&[NewResource {
            kind: "Secret",
            namespace: "default",
            name: "db",
            yaml: &yaml,
            object: &object,
        }])
        .await
        .expect("apply");
    store
        .enqueue(&[enqueue("queued-1")], None)
        .await
        .expect("enqueue");
    store.save_inputs("local-1", &inputs()).await.expect("save");
    store
}

async fn assert_readable(store: &SqliteStore) {
    let r = store
        .resource("Secret", "default", "db")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(r.yaml, secret_yaml());
    assert_eq!(r.object, secret_object());
    let listed = store
        .resources(Some("Secret"), "default")
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    for uid in ["queued-1", "local-1"] {
        assert_eq!(
            store.inputs(uid).await.expect("inputs"),
            Some(inputs()),
            "{uid}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_on_disk_and_read_back_in_the_clear() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let store = store_with_secrets(&dir).await;
    assert_sealed_on_disk(&dir);
    assert_readable(&store).await;
    let (key_file, _) = store.secret_key();
    assert_eq!(key_file, dir.join("secret.key"));
    assert_eq!(mode(&dir), 0o700);
    for f in ["runs.db", "runs.db-wal", "runs.db-shm", "secret.key"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_left_by_an_older_build_is_sealed_at_open() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    drop(SqliteStore::open(&dir).await.expect("open"));
    // What a build without sealing left: rows in the clear, no key, files open to everyone.
    {
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("runs.db").display()))
                .await
                .expect("raw");
        sqlx::query("DROP TABLE sealing")
            .execute(&pool)
            .await
            .expect("drop");
        sqlx::query("INSERT INTO resources (kind, namespace, name, uid, yaml, object, created_at, updated_at) VALUES ('Secret', 'default', 'db', 'u', ?, ?, 0, 0)")
            .bind(secret_yaml())
            .bind(secret_object().to_string())
            .execute(&pool)
            .await
            .expect("insert");
        for uid in ["queued-1", "local-1"] {
            sqlx::query("INSERT INTO run_inputs (uid, inputs) VALUES (?, ?)")
                .bind(uid)
                .bind(inputs().to_string())
                .execute(&pool)
                .await
                .expect("insert");
        }
        pool.close().await;
    }
    std::fs::remove_file(dir.join("secret.key")).expect("no key");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(dir.join("runs.db"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    assert!(holds(&raw(&dir), VALUE), "the test starts from cleartext");

    let store = SqliteStore::open(&dir).await.expect("reopen");
    assert_readable(&store).await;
    assert_sealed_on_disk(&dir);
    assert_eq!((mode(&dir), mode(&dir.join("runs.db"))), (0o700, 0o600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_seals_everything_with_a_new_key_and_keeps_it_readable() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let store = store_with_secrets(&dir).await;
    let (key_file, old) = store.secret_key();
    let rotation = store.rotate_key().await.expect("rotate");
    assert_eq!(rotation.old_key, old);
    assert_ne!(rotation.new_key, old);
    assert_eq!(
        (rotation.resealed.resources, rotation.resealed.runs),
        (1, 2)
    );
    assert_readable(&store).await;
    let file = std::fs::read_to_string(&key_file).expect("key file");
    assert!(
        file.contains(&rotation.new_key) && !file.contains(&old),
        "{file}"
    );
    assert_eq!(mode(&key_file), 0o600);
    let bytes = raw(&dir);
    assert!(holds(
        &bytes,
        &format!("slipway:sealed:v1:{}:", rotation.new_key)
    ));
    assert!(
        !holds(&bytes, &format!("slipway:sealed:v1:{old}:")),
        "old seals remain"
    );
    assert_sealed_on_disk(&dir);
    drop(store);
    let again = SqliteStore::open(&dir).await.expect("reopen");
    assert_readable(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_key_is_a_clear_error_and_loses_nothing() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let store = store_with_secrets(&dir).await;
    let (key_file, id) = store.secret_key();
    drop(store);
    let kept = base.path().join("kept.key");
    std::fs::rename(&key_file, &kept).expect("move the key away");

    let err = SqliteStore::open(&dir).await.expect_err("no key");
    assert!(
        matches!(&err, StoreError::Key(KeyError::Missing { key_id, .. }) if *key_id == id),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&key_file.display().to_string()),
        "{err}"
    );
    assert!(!key_file.exists(), "no new key made over sealed data");

    // Another data directory's key.
    let other = tempfile::tempdir().expect("tempdir");
    drop(SqliteStore::open(other.path()).await.expect("other"));
    std::fs::copy(other.path().join("secret.key"), &key_file).expect("copy");
    let err = SqliteStore::open(&dir).await.expect_err("wrong key");
    assert!(
        matches!(&err, StoreError::Key(KeyError::WrongKey { key_id, .. }) if *key_id == id),
        "{err:?}"
    );

    std::fs::rename(&kept, &key_file).expect("restore");
    let store = SqliteStore::open(&dir).await.expect("right key");
    assert_readable(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_a_held_run_keeps_its_secrets_sealed_and_readable() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let store = SqliteStore::open(&dir).await.expect("open");
    let mut held = enqueue("held-1");
    held.held = true;
    held.inputs["run"]["spec"]["status"] = json!("PipelineRunPending");
    store.enqueue(&[held], None).await.expect("enqueue");
    assert!(store.release("held-1").await.expect("release"));
    let inputs = store
        .inputs("held-1")
        .await
        .expect("inputs")
        .expect("there");
    assert_eq!(inputs["run"]["spec"].get("status"), None, "{inputs}");
    assert_eq!(inputs, self::inputs());
    assert_sealed_on_disk(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_key_that_sealed_nothing_is_replaced() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let store = SqliteStore::open(&dir).await.expect("open");
    let (key_file, old) = store.secret_key();
    drop(store);
    std::fs::remove_file(&key_file).expect("lose the key");
    let store = SqliteStore::open(&dir).await.expect("nothing to lose");
    let (_, new) = store.secret_key();
    assert_ne!(new, old);
    drop(store);
    let store = store_with_secrets(&dir).await;
    assert_readable(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_waits_for_runs_of_other_processes() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let store = store_with_secrets(&dir).await;
    // A `slipway run` in another process: its run row names it as the owner.
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = i64::from(other.id());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("runs.db").display()))
        .await
        .expect("raw");
    sqlx::query("INSERT INTO runs (uid, name, kind, created_at, owner_pid, owner_start, object) VALUES ('o', 'o', 'TaskRun', 0, ?, 0, '{}')")
        .bind(pid)
        .execute(&pool)
        .await
        .expect("insert");
    let (_, before) = store.secret_key();
    let err = store.rotate_key().await.expect_err("in use");
    assert!(
        matches!(&err, StoreError::Key(KeyError::InUse { pids }) if *pids == [pid]),
        "{err:?}"
    );
    assert_eq!(store.secret_key().1, before, "nothing rotated");
    let _ = other.kill();
    let _ = other.wait();
    store.rotate_key().await.expect("rotate once it is gone");
    assert_readable(&store).await;
}
