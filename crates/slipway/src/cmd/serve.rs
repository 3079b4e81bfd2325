//! `slipway serve`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use slipway_engine::{Engine, EngineConfig};
use slipway_server::{AppState, Dispatcher, Limits};
use slipway_store::SqliteStore;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::error::CliError;

/// Most bytes of step output stored per run unless configured.
const DEFAULT_MAX_LOG_BYTES: u64 = 4 << 30;

/// How long open connections (log followers) may delay a shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves the API and runs the queue until Ctrl-C or SIGTERM.
pub async fn serve(data: &Path, config: &Config, args: &ServeArgs) -> Result<i32, CliError> {
    let _lock = lock(data)?;
    let store = Arc::new(SqliteStore::open(&data.join("db")).await?);
    let executor = crate::cmd::run::executor(data, config, args.executor).await?;
    let engine_config = EngineConfig {
        max_log_bytes: Some(
            args.max_log_bytes
                .or(config.server.max_log_bytes)
                .unwrap_or(DEFAULT_MAX_LOG_BYTES),
        ),
        ..EngineConfig::default()
    };
    let engine = Engine::new(executor, store.clone(), engine_config);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let limits = Limits {
        total: Some(
            args.max_runs
                .or(config.server.max_runs)
                .unwrap_or(cores)
                .max(1),
        ),
        per_group: config.server.pipelines.clone(),
    };
    let dispatcher = Dispatcher::new(store.clone(), engine, limits);
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
    if store.tokens().await?.is_empty() && !addr.ip().is_loopback() {
        eprintln!(
            "warning: no API tokens, and {addr} is reachable from other machines: anyone there can start runs; create one with `slipway token create NAME --scope write`"
        );
    }
    let stop = CancellationToken::new();
    let force = CancellationToken::new();
    tokio::spawn(signals(stop.clone(), force.clone(), args.grace));
    let queue = tokio::spawn(dispatcher.clone().run(
        stop.clone().cancelled_owned(),
        force.clone().cancelled_owned(),
        args.grace,
    ));
    let state = AppState::new(store.clone(), dispatcher);
    tokio::spawn(slipway_server::poll::run(
        state.clone(),
        stop.clone().cancelled_owned(),
    ));
    let server = slipway_server::serve(listener, state, stop.clone().cancelled_owned());
    tokio::pin!(server);
    let served = tokio::select! {
        r = &mut server => r,
        // A follower of a long run keeps its connection; the server does not wait for it forever.
        _ = async { stop.cancelled().await; tokio::time::sleep(DRAIN).await } => Ok(()),
    };
    let _ = queue.await;
    slipway_engine::Store::flush(store.as_ref()).await;
    served.map_err(|e| CliError::Internal(format!("failed to serve: {e}")))?;
    Ok(0)
}

/// The first Ctrl-C or SIGTERM stops taking runs and gives the running ones the grace period;
/// the second stops them at once.
async fn signals(stop: CancellationToken, force: CancellationToken, grace: Duration) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    for n in 0..2 {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
        }
        let message = if n == 0 {
            stop.cancel();
            format!(
                "stopping: running runs have {} to finish (again to stop them now); queued runs stay queued\n",
                humantime::format_duration(grace)
            )
        } else {
            force.cancel();
            "stopping the running runs now\n".to_string()
        };
        // stderr may be closed by now (a supervisor that read the banner); that must not stop
        // the stop.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
    }
}

/// One server per data directory: two would start the same queued runs.
fn lock(data: &Path) -> Result<std::fs::File, CliError> {
    std::fs::create_dir_all(data)
        .map_err(|e| CliError::Internal(format!("failed to create {}: {e}", data.display())))?;
    let path = data.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CliError::Internal(format!("failed to open {}: {e}", path.display())))?;
    // SAFETY: flock on a descriptor this function owns; the lock lives as long as the file.
    let rc = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if rc != 0 {
        return Err(CliError::usage(
            format!(
                "another `slipway serve` uses the data directory {}",
                data.display()
            ),
            "stop it, or give this one its own --data-dir",
        ));
    }
    Ok(file)
}
