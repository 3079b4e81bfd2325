//! Tables.

use sqlx::SqlitePool;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    uid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    parent_uid TEXT,
    status TEXT NOT NULL DEFAULT 'Unknown',
    reason TEXT NOT NULL DEFAULT 'Running',
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    owner_pid INTEGER,
    owner_start INTEGER,
    object TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name, created_at);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
CREATE TABLE IF NOT EXISTS run_inputs (uid TEXT PRIMARY KEY, inputs TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS task_runs (
    uid TEXT PRIMARY KEY,
    root_uid TEXT NOT NULL,
    parent_uid TEXT,
    name TEXT NOT NULL,
    pipeline_task TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    steps TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'Unknown',
    reason TEXT NOT NULL DEFAULT 'Running',
    started_at INTEGER,
    finished_at INTEGER,
    object TEXT
);
CREATE INDEX IF NOT EXISTS task_runs_root ON task_runs(root_uid);
CREATE TABLE IF NOT EXISTS steps (
    taskrun_uid TEXT NOT NULL,
    idx INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    exit_code INTEGER,
    reason TEXT,
    PRIMARY KEY (taskrun_uid, idx)
);
CREATE TABLE IF NOT EXISTS results (
    owner_uid TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (owner_uid, name)
);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root_uid TEXT NOT NULL,
    taskrun_uid TEXT NOT NULL,
    step TEXT NOT NULL,
    stream TEXT NOT NULL,
    ts INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_root ON logs(root_uid, id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root_uid TEXT NOT NULL,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_root ON events(root_uid, id);
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    yaml TEXT NOT NULL,
    object TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_state ON queue(state, priority DESC, seq);
CREATE TABLE IF NOT EXISTS poll_heads (
    listener TEXT NOT NULL,
    repository TEXT NOT NULL,
    ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    PRIMARY KEY (listener, repository, ref)
);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    listener TEXT NOT NULL,
    id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    runs TEXT NOT NULL,
    PRIMARY KEY (listener, id)
);
"#;

/// Creates the tables when missing, then adds what later versions need to older databases.
pub async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(SCHEMA).execute(pool).await?;
    crate::namespace::migrate(pool).await?;
    crate::prewarm::migrate(pool).await?;
    // `logs.continued`: the line continues the one before it (a line cut at the length cap).
    add_column(
        pool,
        "logs",
        "continued",
        "ALTER TABLE logs ADD COLUMN continued INTEGER NOT NULL DEFAULT 0",
    )
    .await?;
    Ok(())
}

/// Runs `alter` (an `ALTER TABLE … ADD COLUMN`) unless the column is there already.
async fn add_column(
    pool: &SqlitePool,
    table: &str,
    column: &str,
    alter: &'static str,
) -> Result<(), sqlx::Error> {
    let present: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?")
            .bind(table)
            .bind(column)
            .fetch_one(pool)
            .await?;
    if present == 0 {
        let added = sqlx::raw_sql(alter).execute(pool).await;
        // Another process opening the same database may have added it just now.
        if let Err(e) = added
            && !e.to_string().contains("duplicate column")
        {
            return Err(e);
        }
    }
    Ok(())
}
