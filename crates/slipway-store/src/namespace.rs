//! Namespaces: the column runs are kept under, added to databases made before it existed, and
//! the list of namespaces in use.

use sqlx::{Row, SqlitePool};

use crate::{SqliteStore, StoreError};

/// The namespace of anything that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Adds the namespace columns and their indexes when missing, filling them for rows stored
/// before: a run the server queued takes the queue's namespace, else its stored object's
/// `metadata.namespace`, else `default`; child runs take their top-level run's. The stored
/// objects are made to say the same. One transaction, so processes opening the database at once
/// do not both add the column.
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    // Already migrated (the usual case): no write lock taken at every open.
    let mut conn = pool.acquire().await?;
    let done = has_column(&mut conn, "runs", "namespace").await?
        && has_column(&mut conn, "tokens", "namespaces").await?;
    drop(conn);
    if done {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    if !has_column(&mut tx, "runs", "namespace").await? {
        sqlx::raw_sql(BACKFILL_RUNS).execute(&mut *tx).await?;
    }
    if !has_column(&mut tx, "tokens", "namespaces").await? {
        // NULL: the token may use every namespace.
        sqlx::query("ALTER TABLE tokens ADD COLUMN namespaces TEXT")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(INDEXES).execute(&mut *tx).await?;
    tx.commit().await
}

const BACKFILL_RUNS: &str = r#"
ALTER TABLE runs ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
UPDATE runs SET namespace = coalesce(
    (SELECT q.namespace FROM queue q WHERE q.uid = runs.uid),
    CASE WHEN json_valid(object) AND json_type(object, '$.metadata.namespace') = 'text'
         THEN json_extract(object, '$.metadata.namespace') END,
    'default')
WHERE parent_uid IS NULL;
WITH RECURSIVE tree(uid, ns) AS (
    SELECT uid, namespace FROM runs WHERE parent_uid IS NULL
    UNION ALL
    SELECT r.uid, tree.ns FROM runs r JOIN tree ON r.parent_uid = tree.uid
)
UPDATE runs SET namespace = (SELECT ns FROM tree WHERE tree.uid = runs.uid)
WHERE parent_uid IS NOT NULL AND uid IN (SELECT uid FROM tree);
UPDATE runs SET object = json_set(object, '$.metadata.namespace', namespace)
WHERE json_valid(object) AND json_type(object, '$.metadata') = 'object';
UPDATE task_runs SET object = json_set(object, '$.metadata.namespace',
    (SELECT r.namespace FROM runs r WHERE r.uid = task_runs.root_uid))
WHERE object IS NOT NULL AND json_valid(object) AND json_type(object, '$.metadata') = 'object'
    AND EXISTS (SELECT 1 FROM runs r WHERE r.uid = task_runs.root_uid);
"#;

const INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS runs_namespace ON runs(namespace, kind, created_at);
CREATE INDEX IF NOT EXISTS runs_namespace_name ON runs(namespace, name, created_at);
"#;

async fn has_column(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
    column: &str,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?")
        .bind(table)
        .bind(column)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Whether `n` can name a namespace: a DNS-1123 label (1-63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit), as Kubernetes requires.
pub fn valid_namespace(n: &str) -> bool {
    let b = n.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// The namespace a stored run object names, else `default`.
pub(crate) fn of_object(object: &serde_json::Value) -> &str {
    object["metadata"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
}

impl SqliteStore {
    /// Every namespace that holds a run or a stored object, sorted.
    pub async fn namespaces(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT namespace FROM runs UNION SELECT namespace FROM resources ORDER BY namespace",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get("namespace")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_dns_labels() {
        for ok in ["default", "team-a", "a", "x1"] {
            assert!(valid_namespace(ok), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "A",
            "-a",
            "a-",
            "a/b",
            "..",
            "a b",
            "a\n",
            long.as_str(),
        ] {
            assert!(!valid_namespace(bad), "{bad:?}");
        }
    }
}
