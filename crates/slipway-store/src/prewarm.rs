//! OpenKruise's pre-warming objects (ImagePullJob, ImageListPullJob, NodeImage) as Kubernetes
//! keeps them: JSON objects with a uid, a `resourceVersion` that grows with every write (one
//! counter for the whole table, so versions are never reused) and a `generation` that grows
//! when the spec changes. Cluster-scoped kinds use the namespace `""`.

use serde_json::{Value, json};
use sqlx::Row;

use crate::{SqliteStore, StoreError, millis, retry_busy};

/// The tables, created by [`migrate`].
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS prewarm_objects (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    object TEXT NOT NULL,
    resource_version INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS prewarm_versions (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT OR IGNORE INTO prewarm_versions (id, last) VALUES (1, 0);
"#;

/// Adds the tables to a database that lacks them.
pub(crate) async fn migrate(pool: &sqlx::SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(SCHEMA).execute(pool).await?;
    Ok(())
}

/// One stored object.
#[derive(Debug, Clone, PartialEq)]
pub struct PrewarmObject {
    /// `ImagePullJob`, `ImageListPullJob` or `NodeImage`.
    pub kind: String,
    /// Namespace (`""` for cluster-scoped kinds).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Uid, kept across updates.
    pub uid: String,
    /// The object, with `metadata.uid`, `resourceVersion` and `generation` filled in.
    pub object: Value,
    /// Grows with every write.
    pub resource_version: i64,
    /// Grows when the spec changes.
    pub generation: i64,
    /// Milliseconds since the epoch of its creation.
    pub created_at: i64,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing by that name (a create).
    Absent,
    /// The object at this `resourceVersion` (a replace that saw it).
    Version(i64),
}

/// What a write or delete met.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the object as stored (for a delete, as it was).
    Done(PrewarmObject),
    /// The object exists already (a create).
    Exists,
    /// There is no such object.
    Missing,
    /// The object changed since it was read: its version now.
    Stale(i64),
}

fn row(r: &sqlx::sqlite::SqliteRow) -> PrewarmObject {
    let text: &str = r.get("object");
    PrewarmObject {
        kind: r.get("kind"),
        namespace: r.get("namespace"),
        name: r.get("name"),
        uid: r.get("uid"),
        object: serde_json::from_str(text).unwrap_or(Value::Null),
        resource_version: r.get("resource_version"),
        generation: r.get("generation"),
        created_at: r.get("created_at"),
    }
}

/// Where an object is: kind, namespace, name.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// Kind.
    pub kind: &'a str,
    /// Namespace (`""` for cluster-scoped kinds).
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
}

impl SqliteStore {
    /// One object.
    pub async fn prewarm_object(&self, key: Key<'_>) -> Result<Option<PrewarmObject>, StoreError> {
        let r = sqlx::query(
            "SELECT * FROM prewarm_objects WHERE kind = ? AND namespace = ? AND name = ?",
        )
        .bind(key.kind)
        .bind(key.namespace)
        .bind(key.name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().map(row))
    }

    /// Objects of a kind in one namespace (every namespace when `None`), by namespace and name.
    pub async fn prewarm_objects(
        &self,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<PrewarmObject>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM prewarm_objects WHERE kind = ? AND (? IS NULL OR namespace = ?) ORDER BY namespace, name",
        )
        .bind(kind)
        .bind(namespace)
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row).collect())
    }

    /// Creates (`Expect::Absent`) or replaces (`Expect::Version`) an object in one transaction;
    /// the generation grows when `spec` differs from the stored one.
    pub async fn write_prewarm_object(
        &self,
        key: Key<'_>,
        object: &Value,
        expect: Expect,
    ) -> Result<Outcome, StoreError> {
        let now = millis(std::time::SystemTime::now());
        let outcome = retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let old = sqlx::query(
                "SELECT * FROM prewarm_objects WHERE kind = ? AND namespace = ? AND name = ?",
            )
            .bind(key.kind)
            .bind(key.namespace)
            .bind(key.name)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(row);
            let (uid, generation, created_at) = match (&old, expect) {
                (Some(_), Expect::Absent) => return Ok(Outcome::Exists),
                (None, Expect::Version(_)) => return Ok(Outcome::Missing),
                (Some(o), Expect::Version(v)) if o.resource_version != v => {
                    return Ok(Outcome::Stale(o.resource_version));
                }
                (Some(o), _) => {
                    let bump = o.object.get("spec") != object.get("spec");
                    (o.uid.clone(), o.generation + i64::from(bump), o.created_at)
                }
                (None, _) => (uuid::Uuid::new_v4().to_string(), 1, now),
            };
            let version: i64 = sqlx::query_scalar(
                "UPDATE prewarm_versions SET last = last + 1 WHERE id = 1 RETURNING last",
            )
            .fetch_one(&mut *tx)
            .await?;
            let mut stored = object.clone();
            if !stored["metadata"].is_object() {
                stored["metadata"] = json!({});
            }
            stored["metadata"]["uid"] = json!(uid);
            stored["metadata"]["resourceVersion"] = json!(version.to_string());
            stored["metadata"]["generation"] = json!(generation);
            sqlx::query(
                "INSERT INTO prewarm_objects (kind, namespace, name, uid, object, resource_version, generation, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (kind, namespace, name) DO UPDATE SET object = excluded.object, \
                 resource_version = excluded.resource_version, generation = excluded.generation, updated_at = excluded.updated_at",
            )
            .bind(key.kind)
            .bind(key.namespace)
            .bind(key.name)
            .bind(&uid)
            .bind(stored.to_string())
            .bind(version)
            .bind(generation)
            .bind(created_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Outcome::Done(PrewarmObject {
                kind: key.kind.to_string(),
                namespace: key.namespace.to_string(),
                name: key.name.to_string(),
                uid,
                object: stored,
                resource_version: version,
                generation,
                created_at,
            }))
        })
        .await?;
        Ok(outcome)
    }

    /// Deletes an object, when given only at that version.
    pub async fn delete_prewarm_object(
        &self,
        key: Key<'_>,
        version: Option<i64>,
    ) -> Result<Outcome, StoreError> {
        let outcome = retry_busy(|| async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let old = sqlx::query(
                "SELECT * FROM prewarm_objects WHERE kind = ? AND namespace = ? AND name = ?",
            )
            .bind(key.kind)
            .bind(key.namespace)
            .bind(key.name)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(row);
            let Some(old) = old else {
                return Ok(Outcome::Missing);
            };
            if let Some(v) = version
                && v != old.resource_version
            {
                return Ok(Outcome::Stale(old.resource_version));
            }
            sqlx::query(
                "DELETE FROM prewarm_objects WHERE kind = ? AND namespace = ? AND name = ?",
            )
            .bind(key.kind)
            .bind(key.namespace)
            .bind(key.name)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Outcome::Done(old))
        })
        .await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: Key<'static> = Key {
        kind: "ImagePullJob",
        namespace: "team-a",
        name: "warm",
    };

    fn done(o: Outcome) -> PrewarmObject {
        match o {
            Outcome::Done(o) => o,
            other => panic!("not written: {other:?}"),
        }
    }

    #[tokio::test]
    async fn versions_grow_and_generations_follow_the_spec() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).await.expect("open");
        let v1 =
            json!({"kind": "ImagePullJob", "metadata": {"name": "warm"}, "spec": {"image": "a"}});
        let first = done(
            store
                .write_prewarm_object(JOB, &v1, Expect::Absent)
                .await
                .expect("create"),
        );
        assert_eq!(
            (
                first.generation,
                first.object["metadata"]["generation"].clone()
            ),
            (1, json!(1))
        );
        assert_eq!(
            store
                .write_prewarm_object(JOB, &v1, Expect::Absent)
                .await
                .expect("again"),
            Outcome::Exists
        );
        // A status change keeps the generation; a spec change bumps it.
        let mut with_status = v1.clone();
        with_status["status"] = json!({"desired": 2});
        let second = done(
            store
                .write_prewarm_object(JOB, &with_status, Expect::Version(first.resource_version))
                .await
                .expect("status"),
        );
        assert!(second.resource_version > first.resource_version);
        assert_eq!(
            (second.generation, second.uid.clone()),
            (1, first.uid.clone())
        );
        let mut changed = with_status.clone();
        changed["spec"]["image"] = json!("b");
        assert_eq!(
            store
                .write_prewarm_object(JOB, &changed, Expect::Version(first.resource_version))
                .await
                .expect("stale"),
            Outcome::Stale(second.resource_version)
        );
        let third = done(
            store
                .write_prewarm_object(JOB, &changed, Expect::Version(second.resource_version))
                .await
                .expect("spec"),
        );
        assert_eq!(third.generation, 2);
        assert_eq!(
            third.object["metadata"]["resourceVersion"],
            json!(third.resource_version.to_string())
        );
        // Deleted and created again: a new uid, and versions never go back.
        done(
            store
                .delete_prewarm_object(JOB, None)
                .await
                .expect("delete"),
        );
        assert_eq!(
            store.delete_prewarm_object(JOB, None).await.expect("gone"),
            Outcome::Missing
        );
        let again = done(
            store
                .write_prewarm_object(JOB, &v1, Expect::Absent)
                .await
                .expect("recreate"),
        );
        assert!(again.resource_version > third.resource_version);
        assert_ne!(again.uid, first.uid);
        assert_eq!(
            store
                .prewarm_objects("ImagePullJob", Some("team-b"))
                .await
                .expect("list")
                .len(),
            0
        );
        assert_eq!(
            store
                .prewarm_objects("ImagePullJob", None)
                .await
                .expect("list")
                .len(),
            1
        );
    }
}
