//! Applied definitions (Tasks, Pipelines, StepActions, ConfigMaps, Secrets, trigger objects),
//! kept as the YAML the user sent so comments and layout survive a round trip.

use serde_json::Value;
use sqlx::Row;

use crate::keyring::Keyring;
use crate::{SqliteStore, StoreError, millis, retry_busy, secret};

/// One applied object.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `Task`, `Pipeline`, ...
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Uid, kept across updates.
    pub uid: String,
    /// The document as applied.
    pub yaml: String,
    /// The same document as JSON.
    pub object: Value,
    /// Milliseconds since the epoch of the first apply.
    pub created_at: i64,
}

/// A resource to write.
#[derive(Debug, Clone)]
pub struct NewResource<'a> {
    /// Kind.
    pub kind: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// The YAML text.
    pub yaml: &'a str,
    /// The JSON object.
    pub object: &'a Value,
}

/// A row as read; a Secret's columns are opened with `keys`.
fn resource(keys: &Keyring, r: &sqlx::sqlite::SqliteRow) -> Result<Resource, StoreError> {
    let (kind, namespace, name): (String, String, String) =
        (r.get("kind"), r.get("namespace"), r.get("name"));
    let column = |c: &str| -> Result<String, StoreError> {
        let text: &str = r.get(c);
        if !secret::is_sealed_kind(&kind) {
            return Ok(text.to_string());
        }
        let place = || secret::resource_place(&namespace, &name, c);
        Ok(secret::open_column(keys, text, place)?.into_owned())
    };
    let yaml = column("yaml")?;
    let object = serde_json::from_str(&column("object")?).unwrap_or(Value::Null);
    Ok(Resource {
        uid: r.get("uid"),
        yaml,
        object,
        created_at: r.get("created_at"),
        kind,
        namespace,
        name,
    })
}

impl SqliteStore {
    /// Creates or replaces several resources in one transaction; returns, for each, whether it
    /// was new. Either all are written or none.
    pub async fn put_resources(&self, items: &[NewResource<'_>]) -> Result<Vec<bool>, StoreError> {
        let now = millis(std::time::SystemTime::now());
        // A Secret's columns are sealed before the transaction, everything else kept as sent.
        let keys = self.keys();
        let columns = items
            .iter()
            .map(|it| {
                let (yaml, object) = (it.yaml.to_string(), it.object.to_string());
                if !secret::is_sealed_kind(it.kind) {
                    return Ok((yaml, object));
                }
                let place = |c| secret::resource_place(it.namespace, it.name, c);
                Ok((
                    keys.seal(&yaml, &place("yaml"))?,
                    keys.seal(&object, &place("object"))?,
                ))
            })
            .collect::<Result<Vec<(String, String)>, StoreError>>()?;
        let created = retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let mut created = Vec::with_capacity(items.len());
            for (it, (yaml, object)) in items.iter().zip(&columns) {
                let old = sqlx::query(
                    "SELECT uid FROM resources WHERE kind = ? AND namespace = ? AND name = ?",
                )
                .bind(it.kind)
                .bind(it.namespace)
                .bind(it.name)
                .fetch_optional(&mut *tx)
                .await?;
                let uid = match &old {
                    Some(r) => r.get::<String, _>("uid"),
                    None => uuid::Uuid::new_v4().to_string(),
                };
                sqlx::query(
                    "INSERT INTO resources (kind, namespace, name, uid, yaml, object, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (kind, namespace, name) DO UPDATE SET yaml = excluded.yaml, object = excluded.object, updated_at = excluded.updated_at",
                )
                .bind(it.kind)
                .bind(it.namespace)
                .bind(it.name)
                .bind(&uid)
                .bind(yaml)
                .bind(object)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                created.push(old.is_none());
            }
            tx.commit().await?;
            Ok(created)
        })
        .await?;
        Ok(created)
    }

    /// One resource.
    pub async fn resource(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Resource>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM resources WHERE kind = ? AND namespace = ? AND name = ?")
                .bind(kind)
                .bind(namespace)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(|r| resource(&self.keys(), r)).transpose()
    }

    /// Resources of one kind (every kind when `None`) in a namespace, by name.
    pub async fn resources(
        &self,
        kind: Option<&str>,
        namespace: &str,
    ) -> Result<Vec<Resource>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM resources WHERE (? IS NULL OR kind = ?) AND namespace = ? ORDER BY kind, name",
        )
        .bind(kind)
        .bind(kind)
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        let keys = self.keys();
        rows.iter().map(|r| resource(&keys, r)).collect()
    }

    /// Deletes one resource; false when there was none.
    pub async fn delete_resource(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = retry_busy(|| async {
            sqlx::query("DELETE FROM resources WHERE kind = ? AND namespace = ? AND name = ?")
                .bind(kind)
                .bind(namespace)
                .bind(name)
                .execute(&self.pool)
                .await
        })
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

impl SqliteStore {
    /// Resources of one kind in every namespace.
    pub async fn resources_everywhere(&self, kind: &str) -> Result<Vec<Resource>, StoreError> {
        let rows = sqlx::query("SELECT * FROM resources WHERE kind = ? ORDER BY namespace, name")
            .bind(kind)
            .fetch_all(&self.pool)
            .await?;
        let keys = self.keys();
        rows.iter().map(|r| resource(&keys, r)).collect()
    }

    /// The refs last seen by a poller of `repository` for `listener`; `None` before its first poll.
    pub async fn poll_heads(
        &self,
        listener: &str,
        repository: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, StoreError> {
        let rows =
            sqlx::query("SELECT ref, sha FROM poll_heads WHERE listener = ? AND repository = ?")
                .bind(listener)
                .bind(repository)
                .fetch_all(&self.pool)
                .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.iter()
                .map(|r| (r.get("ref"), r.get("sha")))
                .filter(|(r, _): &(String, String)| !r.is_empty())
                .collect(),
        ))
    }

    /// Replaces the refs seen for `listener` and `repository` (an empty set is remembered too).
    pub async fn set_poll_heads(
        &self,
        listener: &str,
        repository: &str,
        heads: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            sqlx::query("DELETE FROM poll_heads WHERE listener = ? AND repository = ?")
                .bind(listener)
                .bind(repository)
                .execute(&mut *tx)
                .await?;
            // An empty marker row records that the repository was polled and had no refs.
            let marker = std::collections::BTreeMap::from([(String::new(), String::new())]);
            for (r, sha) in if heads.is_empty() { &marker } else { heads } {
                sqlx::query(
                    "INSERT INTO poll_heads (listener, repository, ref, sha) VALUES (?, ?, ?, ?)",
                )
                .bind(listener)
                .bind(repository)
                .bind(r)
                .bind(sha)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
        .await?;
        Ok(())
    }
}
