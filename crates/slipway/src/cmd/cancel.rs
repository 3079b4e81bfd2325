//! `slipway cancel`: asks the process running a run to cancel it, as Ctrl-C would.

use std::path::Path;

use crate::cli::RunRef;
use crate::error::CliError;

/// Sends SIGINT to the run's owner process.
pub async fn cancel(data: &Path, args: &RunRef) -> Result<i32, CliError> {
    let store = crate::paths::open_store(data).await?;
    let found = crate::cmd::lookup::find(&store, args.ns.selected(), &args.run).await?;
    let row = found.run;
    // Locally a TaskRun is cancelled with the run that owns it (one process runs both).
    if let Some(t) = &found.task_run {
        return Err(CliError::usage(
            format!("`{}` is a TaskRun of {} `{}`", t.name, row.kind, row.name),
            format!(
                "cancel the run: `slipway cancel {}` (its finally tasks still run)",
                row.name
            ),
        ));
    }
    if row.status != "Unknown" {
        return Err(CliError::usage(
            format!("run `{}` has already finished ({})", row.name, row.reason),
            "only running runs can be cancelled",
        ));
    }
    // Signalling a server would stop it and every run it has; it cancels one run through its API.
    if store.is_queued_run(&row.uid).await? {
        return Err(CliError::usage(
            format!("{} `{}` belongs to a slipway server", row.kind, row.name),
            format!(
                "cancel it through the server: `slipway cancel {} -n {} --server http://HOST:PORT`",
                row.name, row.namespace
            ),
        ));
    }
    let Some(pid) = row.owner_pid.and_then(|p| i32::try_from(p).ok()) else {
        return Err(CliError::Internal(format!(
            "run `{}` has no owner process",
            row.name
        )));
    };
    // SAFETY: kill only sends a signal; the pid is the owner recorded by the store, checked alive on open.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    if rc != 0 {
        return Err(CliError::Internal(format!(
            "failed to signal process {pid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    println!(
        "{} {} cancelling (finally tasks still run)",
        row.kind, row.name
    );
    Ok(0)
}
