//! Finding what a user names: a run, or a TaskRun inside one, by the names the CLI prints.

use slipway_store::{RunRow, SqliteStore, StoreError, TaskRunRow};

use crate::error::CliError;

/// A run, or one TaskRun of a run when the name was a TaskRun's.
pub struct Found {
    /// The top-level run.
    pub run: RunRow,
    /// The TaskRun named, if the name was not a run's.
    pub task_run: Option<TaskRunRow>,
}

/// Looks `name` up as a run (name or uid) of `namespace` (any when `None`), else as a TaskRun
/// of such a run.
pub async fn find(
    store: &SqliteStore,
    namespace: Option<&str>,
    name: &str,
) -> Result<Found, CliError> {
    match store.find_run_in(namespace, name).await {
        Ok(run) => Ok(Found {
            run,
            task_run: None,
        }),
        Err(StoreError::NotFound(_)) => match store.find_task_run(namespace, name).await {
            Ok((run, task_run)) => Ok(Found {
                run,
                task_run: Some(task_run),
            }),
            Err(StoreError::NotFound(_)) => Err(CliError::usage(
                format!("no run or TaskRun named `{name}`"),
                "list runs with `slipway runs`, and a run's TaskRuns with `slipway describe RUN`",
            )),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// How a TaskRun is labelled on screen: its name relative to its run (`test-0` for a matrix
/// child, `child-build` in a nested pipeline), as the live view shows it.
pub fn label(run_name: &str, t: &TaskRunRow) -> String {
    match t
        .name
        .strip_prefix(run_name)
        .and_then(|r| r.strip_prefix('-'))
    {
        Some(rel) if !rel.is_empty() => rel.to_string(),
        _ => t.pipeline_task.clone().unwrap_or_else(|| t.name.clone()),
    }
}

/// Resolves `-t`: a pipeline task, a TaskRun name or a label; the value to filter logs by.
/// An unknown name is an error listing the ones that exist, unless the run may still start it.
pub fn task_filter(
    run: &RunRow,
    task_runs: &[TaskRunRow],
    wanted: &str,
    may_still_start: bool,
) -> Result<String, CliError> {
    if task_runs
        .iter()
        .any(|t| t.name == wanted || t.pipeline_task.as_deref() == Some(wanted))
    {
        return Ok(wanted.to_string());
    }
    if let Some(t) = task_runs.iter().find(|t| label(&run.name, t) == wanted) {
        return Ok(t.name.clone());
    }
    if may_still_start {
        return Ok(wanted.to_string());
    }
    Err(CliError::usage(
        format!("run `{}` has no task `{wanted}`", run.name),
        // Sorted: matrix children start in any order.
        format!(
            "its tasks: {}",
            names(sorted(task_runs.iter().map(|t| label(&run.name, t))))
        ),
    ))
}

/// Checks `-s` against the steps of the TaskRuns shown.
pub fn check_step(
    run: &RunRow,
    shown: &[&TaskRunRow],
    step: &str,
    may_still_start: bool,
) -> Result<(), CliError> {
    if may_still_start || shown.iter().any(|t| t.steps.iter().any(|s| s == step)) {
        return Ok(());
    }
    let steps = names(shown.iter().flat_map(|t| t.steps.iter().cloned()));
    Err(CliError::usage(
        format!("no step `{step}` in run `{}`", run.name),
        format!("its steps: {steps}"),
    ))
}

/// The items in sorted order.
fn sorted(items: impl Iterator<Item = String>) -> std::vec::IntoIter<String> {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v.into_iter()
}

/// Distinct names, in order, joined for a hint.
fn names(items: impl Iterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for i in items {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    if seen.is_empty() {
        "none yet".into()
    } else {
        seen.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(name: &str, pt: Option<&str>) -> TaskRunRow {
        TaskRunRow {
            uid: String::new(),
            name: name.into(),
            pipeline_task: pt.map(str::to_string),
            parent_uid: None,
            steps: vec!["echo".into()],
            status: "True".into(),
            reason: "Succeeded".into(),
            started_at: None,
            finished_at: None,
            attempt: 0,
            object: None,
        }
    }

    #[test]
    fn matrix_children_are_labelled_apart() {
        assert_eq!(label("pr", &tr("pr-test-0", Some("test"))), "test-0");
        assert_eq!(label("pr", &tr("pr-build", Some("build"))), "build");
        assert_eq!(label("solo", &tr("solo", None)), "solo");
        assert_eq!(label("pr", &tr("other", Some("x"))), "x");
    }
}
