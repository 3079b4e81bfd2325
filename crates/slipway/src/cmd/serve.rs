//! `slipway serve`.

use std::path::Path;
use std::sync::Arc;

use slipway_store::SqliteStore;

use crate::cli::ServeArgs;
use crate::error::CliError;

/// Serves the API until Ctrl-C or SIGTERM.
pub async fn serve(data: &Path, args: &ServeArgs) -> Result<i32, CliError> {
    let store = Arc::new(SqliteStore::open(&data.join("db")).await?);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
            CliError::usage(
                format!("failed to listen on {}: {e}", args.listen),
                "pass a free address with --listen, e.g. 127.0.0.1:7080",
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Internal(format!("failed to read the listening address: {e}")))?;
    eprintln!(
        "serving the slipway API on http://{addr} (history in {})",
        data.display()
    );
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
        }
    };
    slipway_server::serve(listener, store, shutdown)
        .await
        .map_err(|e| CliError::Internal(format!("failed to serve: {e}")))?;
    Ok(0)
}
