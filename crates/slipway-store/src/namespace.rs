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
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    table: &str,
    column: &str,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?")
        .bind(table)
        .bind(column)
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
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
