//! TaskRuns of pipelines looked up by their own names, as `describe` and `logs` print them.

use crate::{RunRow, SqliteStore, StoreError, TaskRunRow};

impl SqliteStore {
    /// The newest TaskRun named `name` inside a run, with the top-level run it belongs to.
    pub async fn find_task_run(&self, name: &str) -> Result<(RunRow, TaskRunRow), StoreError> {
        let root: Option<String> = sqlx::query_scalar(
            "SELECT root_uid FROM task_runs WHERE name = ? ORDER BY started_at DESC, rowid DESC LIMIT 1",
        )
        .bind(name)
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
