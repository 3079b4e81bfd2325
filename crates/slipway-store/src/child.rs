//! TaskRuns of pipelines looked up by their own names, as `describe` and `logs` print them.

use crate::{RunRow, SqliteStore, StoreError, TaskRunRow};

impl SqliteStore {
    /// The newest TaskRun named `name` inside a run of `namespace` (any when `None`), with the
    /// top-level run it belongs to.
    pub async fn find_task_run(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(RunRow, TaskRunRow), StoreError> {
        let root: Option<String> = sqlx::query_scalar(
            "SELECT t.root_uid FROM task_runs t JOIN runs r ON r.uid = t.root_uid \
             WHERE t.name = ?1 AND (?2 IS NULL OR r.namespace = ?2) \
             ORDER BY t.started_at DESC, t.rowid DESC LIMIT 1",
        )
        .bind(name)
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?;
        let not_found = || StoreError::NotFound(name.to_string());
        let root = root.ok_or_else(not_found)?;
        let run = self.run(&root).await?;
        let task_run = self
            .task_runs(&root)
            .await?
            .into_iter()
            .rev()
            .find(|t| t.name == name)
            .ok_or_else(not_found)?;
        Ok((run, task_run))
    }
}
