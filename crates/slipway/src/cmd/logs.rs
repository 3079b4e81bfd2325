//! `slipway logs`.

use std::path::Path;
use std::time::Duration;

use crate::cli::LogsArgs;
use crate::cmd::lookup;
use crate::error::CliError;

fn print(run_name: &str, l: &slipway_store::LogLine) {
    // The same label as the live view: `test-0` for a matrix child, not its pipeline task.
    let task = match l
        .taskrun
        .strip_prefix(run_name)
        .and_then(|r| r.strip_prefix('-'))
    {
        Some(rel) if !rel.is_empty() => rel,
        _ => l.pipeline_task.as_deref().unwrap_or(&l.taskrun),
    };
    // `+`: this piece continues a line cut at the length cap.
    let mark = if l.continued { "+" } else { "" };
    println!("[{task}/{}]{mark} {}", l.step, l.line);
}

/// Prints stored lines; with `-f`, keeps reading until the run ends.
pub async fn logs(data: &Path, args: &LogsArgs) -> Result<i32, CliError> {
    let store = crate::paths::open_store(data).await?;
    let found = lookup::find(&store, args.ns.selected(), &args.run).await?;
    let row = found.run;
    let running = row.status == "Unknown";
    let task_runs = store.task_runs(&row.uid).await?;
    // A TaskRun named as the run shows only its lines; `-t` narrows a run the same way.
    let task = match (&args.task, &found.task_run) {
        (Some(t), _) => Some(lookup::task_filter(&row, &task_runs, t, running)?),
        (None, Some(t)) => Some(t.name.clone()),
        (None, None) => None,
    };
    if let Some(step) = &args.step {
        let shown: Vec<_> = task_runs
            .iter()
            .filter(|t| {
                task.as_deref()
                    .is_none_or(|f| t.name == f || t.pipeline_task.as_deref() == Some(f))
            })
            .collect();
        lookup::check_step(&row, &shown, step, running)?;
    }
    let mut after = 0;
    loop {
        // Read the status first: every line stored before the run ended is printed below.
        let ended = !args.follow || store.run(&row.uid).await?.status != "Unknown";
        loop {
            let batch = store
                .logs(
                    &row.uid,
                    task.as_deref(),
                    args.step.as_deref(),
                    after,
                    10_000,
                )
                .await?;
            for l in &batch {
                print(&row.name, l);
                after = l.id;
            }
            if batch.len() < 10_000 {
                break;
            }
        }
        if ended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(0)
}
