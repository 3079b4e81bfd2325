//! Secrets at rest: which stored values are sealed with the key file, sealing them on write and
//! opening them on read, sealing what an older build stored in the clear, and key rotation.
//!
//! Sealed: applied Secrets (their YAML as sent and their JSON, whole), and in a run's stored
//! inputs every Secret document and the run document itself when params of the run are declared
//! secret (`slipway.dev/secret-params`). Names stay in the clear so rows can be found.

use std::borrow::Cow;

use serde_json::{Value, json};
use slipway_engine::mask::SECRET_PARAMS;
use sqlx::{Row, SqlitePool};

use crate::keyring::{KeyError, Keyring, SEALED_PREFIX};
use crate::{StoreError, millis, retry_busy};

/// The field of a sealed document in a run's inputs: `{"slipway.dev/sealed": "slipway:sealed:…"}`.
const SEALED_FIELD: &str = "slipway.dev/sealed";

/// One row: the key all sealed values are sealed with, once every value has been.
const TABLE: &str = "CREATE TABLE IF NOT EXISTS sealing (id INTEGER PRIMARY KEY CHECK (id = 1), key_id TEXT NOT NULL, sealed_at INTEGER NOT NULL)";

/// What a sealing pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Secrets among the applied resources.
    pub resources: u64,
    /// Runs whose stored inputs hold sealed documents.
    pub runs: u64,
}

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key that sealed everything before.
    pub old_key: String,
    /// The key that seals everything now.
    pub new_key: String,
    /// What was sealed again.
    pub resealed: Resealed,
}

/// Whether a resource of this kind is sealed.
pub(crate) fn is_sealed_kind(kind: &str) -> bool {
    kind == "Secret"
}

/// The associated data binding a resource column's sealed value to its row.
pub(crate) fn resource_place(namespace: &str, name: &str, column: &str) -> String {
    format!("resources/Secret/{namespace}/{name}/{column}")
}

fn inputs_place(uid: &str) -> String {
    format!("run_inputs/{uid}")
}

/// A resource column as read: opened when sealed.
pub(crate) fn open_column<'a>(
    ring: &Keyring,
    text: &'a str,
    place: impl FnOnce() -> String,
) -> Result<Cow<'a, str>, KeyError> {
    if text.starts_with(SEALED_PREFIX) {
        ring.open(text, &place()).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(text))
    }
}

/// A run's inputs as stored: Secret documents, and a run with secret params, sealed.
pub(crate) fn seal_inputs(ring: &Keyring, uid: &str, inputs: &Value) -> Result<String, KeyError> {
    let place = inputs_place(uid);
    let mut out = inputs.clone();
    let mut secret_params = declares_secret_params(&inputs["run"]);
    if let Some(docs) = out.get_mut("documents").and_then(Value::as_array_mut) {
        for d in docs.iter_mut() {
            secret_params |= declares_secret_params(d);
            if d.get("kind").and_then(Value::as_str) == Some("Secret") {
                *d = json!({ SEALED_FIELD: ring.seal(&d.to_string(), &place)? });
            }
        }
    }
    if secret_params && let Some(run) = out.get_mut("run") {
        *run = json!({ SEALED_FIELD: ring.seal(&run.to_string(), &place)? });
    }
    Ok(out.to_string())
}

/// A run's inputs as read: sealed documents opened.
pub(crate) fn open_inputs(ring: &Keyring, uid: &str, text: &str) -> Result<Value, KeyError> {
    let mut v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if !text.contains(SEALED_PREFIX) {
        return Ok(v);
    }
    let place = inputs_place(uid);
    let open = |d: &mut Value| -> Result<(), KeyError> {
        if let Some(sealed) = d.get(SEALED_FIELD).and_then(Value::as_str) {
            *d = serde_json::from_str(&ring.open(sealed, &place)?).unwrap_or(Value::Null);
        }
        Ok(())
    };
    if let Some(docs) = v.get_mut("documents").and_then(Value::as_array_mut) {
        for d in docs.iter_mut() {
            open(d)?;
        }
    }
    if let Some(run) = v.get_mut("run") {
        open(run)?;
    }
    Ok(v)
}

fn declares_secret_params(doc: &Value) -> bool {
    doc.pointer("/metadata/annotations")
        .and_then(|a| a.get(SECRET_PARAMS))
        .is_some()
}

/// Loads (or, for a database that has never sealed anything, creates) the key, and brings the
/// database to it: values stored in the clear by an older build are sealed, and a rotation that
/// was interrupted is finished. A database sealed with a key the file does not hold is an error,
/// and nothing is changed.
pub(crate) async fn prepare(
    pool: &SqlitePool,
    key_file: &std::path::Path,
) -> Result<Keyring, StoreError> {
    retry_busy(|| sqlx::query(TABLE).execute(pool)).await?;
    let recorded = recorded_key(pool).await?;
    let mut recorded = recorded;
    let mut ring = match (Keyring::load(key_file)?, &recorded) {
        (Some(r), _) => r,
        (None, Some(id)) => {
            if holds_sealed(pool).await? {
                return Err(KeyError::Missing {
                    path: key_file.to_path_buf(),
                    key_id: id.clone(),
                }
                .into());
            }
            // Nothing was ever sealed with the lost key: a new one loses nothing.
            recorded = None;
            Keyring::load_or_create(key_file)?
        }
        (None, None) => Keyring::load_or_create(key_file)?,
    };
    ring.tighten();
    match recorded {
        Some(id) if id == ring.current() => {}
        Some(id) if !ring.holds(&id) => {
            return Err(KeyError::WrongKey {
                path: key_file.to_path_buf(),
                key_id: id,
                held: ring.ids(),
            }
            .into());
        }
        recorded => {
            let done = reseal_all(pool, &ring).await?;
            if recorded.is_some() {
                ring.retire_old_keys()?;
            }
            if done != Resealed::default() {
                forget_cleartext(pool).await;
            }
        }
    }
    Ok(ring)
}

/// Empties the WAL after values were sealed in place: its older frames still hold them in the
/// clear (with `secure_delete`, the database file's free space does not). Best effort: a reader
/// holding an old snapshot keeps the WAL until the next checkpoint.
async fn forget_cleartext(pool: &SqlitePool) {
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await
    {
        tracing::warn!(error = %e, "failed to checkpoint the WAL after sealing Secrets");
    }
}

/// Whether any stored value is sealed (a full scan: only when the key file is missing).
async fn holds_sealed(pool: &SqlitePool) -> Result<bool, sqlx::Error> {
    retry_busy(|| {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM resources WHERE kind = 'Secret') OR EXISTS (SELECT 1 FROM run_inputs WHERE inputs LIKE '%slipway:sealed:%')",
        )
        .fetch_one(pool)
    })
    .await
}

async fn recorded_key(pool: &SqlitePool) -> Result<Option<String>, sqlx::Error> {
    retry_busy(|| {
        sqlx::query_scalar::<_, String>("SELECT key_id FROM sealing WHERE id = 1")
            .fetch_optional(pool)
    })
    .await
}

/// Seals every sealed value again with the current key (and every Secret still in the clear), in
/// one transaction, and records the key. Does nothing when another process just did it.
pub(crate) async fn reseal_all(pool: &SqlitePool, ring: &Keyring) -> Result<Resealed, StoreError> {
    let outcome = retry_busy(|| async {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let recorded: Option<String> =
            sqlx::query_scalar("SELECT key_id FROM sealing WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        if recorded.as_deref() == Some(ring.current()) {
            return Ok(Ok(Resealed::default()));
        }
        let mut done = Resealed::default();
        let rows = sqlx::query(
            "SELECT namespace, name, yaml, object FROM resources WHERE kind = 'Secret'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for r in &rows {
            let (ns, name): (&str, &str) = (r.get("namespace"), r.get("name"));
            let mut sealed = Vec::with_capacity(2);
            for column in ["yaml", "object"] {
                let place = resource_place(ns, name, column);
                let text = r.get::<&str, _>(column);
                let step = open_column(ring, text, || place.clone())
                    .and_then(|plain| ring.seal(&plain, &place));
                match step {
                    Ok(s) => sealed.push(s),
                    Err(e) => return Ok(Err(e)),
                }
            }
            sqlx::query("UPDATE resources SET yaml = ?, object = ? WHERE kind = 'Secret' AND namespace = ? AND name = ?")
                .bind(&sealed[0])
                .bind(&sealed[1])
                .bind(ns)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            done.resources += 1;
        }
        // Only rows that can hold something to seal (the patterns are what `seal_inputs` and
        // serde_json's compact form write); uids first, then one row at a time, so memory does
        // not grow with the history.
        let uids: Vec<String> = sqlx::query_scalar(
            "SELECT uid FROM run_inputs WHERE inputs LIKE '%\"kind\":\"Secret\"%' OR inputs LIKE '%slipway:sealed:%' OR inputs LIKE '%slipway.dev/secret-params%'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for uid in &uids {
            let stored: String = sqlx::query_scalar("SELECT inputs FROM run_inputs WHERE uid = ?")
                .bind(uid)
                .fetch_one(&mut *tx)
                .await?;
            let step = open_inputs(ring, uid, &stored)
                .and_then(|plain| seal_inputs(ring, uid, &plain));
            let sealed = match step {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            sqlx::query("UPDATE run_inputs SET inputs = ? WHERE uid = ?")
                .bind(&sealed)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            if sealed.contains(SEALED_PREFIX) {
                done.runs += 1;
            }
        }
        sqlx::query("INSERT OR REPLACE INTO sealing (id, key_id, sealed_at) VALUES (1, ?, ?)")
            .bind(ring.current())
            .bind(millis(std::time::SystemTime::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(done))
    })
    .await?;
    Ok(outcome?)
}

impl crate::SqliteStore {
    /// Seals every Secret again with a new key: the new key is written to the key file first,
    /// next to the old one; everything is sealed again in one transaction; then the old key is
    /// dropped from the file. Interrupted anywhere, the next open finishes the job.
    pub async fn rotate_key(&self) -> Result<Rotation, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT owner_pid, owner_start FROM runs WHERE status = 'Unknown' AND owner_pid IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let me = crate::recover::me().0;
        let mut pids: Vec<i64> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<i64, _>("owner_pid"),
                    r.get::<Option<i64>, _>("owner_start"),
                )
            })
            .filter(|&(pid, start)| pid != me && crate::recover::alive(pid, start.unwrap_or(0)))
            .map(|(pid, _)| pid)
            .collect();
        if !pids.is_empty() {
            pids.sort_unstable();
            pids.dedup();
            return Err(KeyError::InUse { pids }.into());
        }
        let old = self.keys();
        let mut new = old.rotated()?;
        let resealed = reseal_all(&self.pool, &new).await?;
        new.retire_old_keys()?;
        forget_cleartext(&self.pool).await;
        let new_key = new.current().to_string();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(new);
        Ok(Rotation {
            old_key: old.current().to_string(),
            new_key,
            resealed,
        })
    }

    /// The key file Secrets are sealed with, and the id of its current key.
    pub fn secret_key(&self) -> (std::path::PathBuf, String) {
        let keys = self.keys();
        (keys.path().to_path_buf(), keys.current().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_seal_secrets_and_a_run_with_secret_params_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = Keyring::load_or_create(&dir.path().join("k")).expect("key");
        let inputs = json!({
            "documents": [
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"token": "hunter2-value"}},
                {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"}, "spec": {}},
            ],
            "run": {"kind": "TaskRun", "metadata": {"name": "r"}, "spec": {"params": [{"name": "p", "value": "plain-param"}]}},
        });
        let stored = seal_inputs(&ring, "u1", &inputs).expect("seal");
        assert!(!stored.contains("hunter2-value"), "{stored}");
        assert!(stored.contains("\"kind\":\"Task\""), "{stored}");
        assert!(stored.contains("plain-param"), "{stored}");
        assert_eq!(open_inputs(&ring, "u1", &stored).expect("open"), inputs);
        assert!(
            open_inputs(&ring, "u2", &stored).is_err(),
            "bound to its run"
        );

        let mut declared = inputs.clone();
        declared["run"]["metadata"]["annotations"] = json!({ SECRET_PARAMS: "p" });
        let stored = seal_inputs(&ring, "u1", &declared).expect("seal");
        assert!(!stored.contains("plain-param"), "{stored}");
        assert_eq!(open_inputs(&ring, "u1", &stored).expect("open"), declared);
    }
}
