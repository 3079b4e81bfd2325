//! `slipway logs`.

use std::path::Path;
use std::time::Duration;

use crate::cli::LogsArgs;
use crate::error::CliError;

fn print(l: &slipway_store::LogLine) {
    let task = l.pipeline_task.as_deref().unwrap_or(&l.taskrun);
    // `+`: this piece continues a line cut at the length cap.
    let mark = if l.continued { "+" } else { "" };
    println!("[{task}/{}]{mark} {}", l.step, l.line);
}

/// Prints stored lines; with `-f`, keeps reading until the run ends.
pub async fn logs(data: &Path, args: &LogsArgs) -> Result<i32, CliError> {
    let store = crate::paths::open_store(data).await?;
    let row = store.find_run_in(args.ns.selected(), &args.run).await?;
    let mut after = 0;
    loop {
        // Read the status first: every line stored before the run ended is printed below.
        let ended = !args.follow || store.run(&row.uid).await?.status != "Unknown";
        loop {
            let batch = store
                .logs(
                    &row.uid,
                    args.task.as_deref(),
                    args.step.as_deref(),
                    after,
                    10_000,
                )
                .await?;
            for l in &batch {
                print(l);
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
