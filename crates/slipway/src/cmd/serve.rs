//! `slipway serve`.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use slipway_engine::{Engine, EngineConfig};
use slipway_server::{AppState, AuthMode, Dispatcher, Limits, ServeOptions};
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
    if let Some(bad) = args
        .allowed_hosts
        .iter()
        .chain(&config.server.allowed_hosts)
        .find(|h| !slipway_server::is_host(h))
    {
        return Err(CliError::usage(
            format!("`{bad}` is not a host name for --allowed-host (or [server] allowed_hosts)"),
            "give a name or an address, with a port or not: ci.example.com, proxy:8443",
        ));
    }
    if !args.controller
        && let Some(flag) = controller_flag(&args.cluster)
    {
        return Err(CliError::usage(
            format!("{flag} is a flag of the controller, and this server runs none"),
            "add --controller to run Tekton's controller in this server, or drop the flag",
        ));
    }
    let _lock = lock(data)?;
    let store = Arc::new(crate::paths::open_store(data).await?);
    let executor = crate::cmd::run::executor(data, config, args.executor).await?;
    let engine_config = EngineConfig {
        max_log_bytes: Some(
            args.max_log_bytes
                .or(config.server.max_log_bytes)
                .unwrap_or(DEFAULT_MAX_LOG_BYTES),
        ),
        allow_host_paths: config.server.allow_host_paths,
        ..EngineConfig::default()
    };
    // Connected before the port opens: a cluster that cannot be used is the user's to fix.
    let controller = match args.controller {
        true => Some(Arc::new(
            crate::cmd::controller::connect(config, &args.cluster, engine_config.clone())
                .await?
                .with_history(store.clone()),
        )),
        false => None,
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
    let open_files = raise_open_files();
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
    let auth = access(&store, args, addr).await?;
    eprintln!(
        "serving the slipway API on http://{addr} (history in {})",
        data.display()
    );
    let options = ServeOptions {
        allowed_hosts: args
            .allowed_hosts
            .iter()
            .chain(&config.server.allowed_hosts)
            .cloned()
            .collect(),
        max_connections: args
            .max_connections
            .or(config.server.max_connections)
            .unwrap_or_else(|| default_connections(open_files))
            .max(1),
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        idle_timeout: args.idle_timeout,
    };
    let stop = CancellationToken::new();
    let force = CancellationToken::new();
    tokio::spawn(signals(stop.clone(), force.clone(), args.grace));
    let queue = tokio::spawn(dispatcher.clone().run(
        stop.clone().cancelled_owned(),
        force.clone().cancelled_owned(),
        args.grace,
    ));
    let state = AppState::new(store.clone(), dispatcher).with_auth(auth);
    tokio::spawn(slipway_server::poll::run(
        state.clone(),
        stop.clone().cancelled_owned(),
    ));
    let prewarming = slipway_server::controller::Config {
        node_grace: args.node_grace,
        ..Default::default()
    };
    tokio::spawn(slipway_server::controller::run(
        store.clone(),
        prewarming,
        stop.clone().cancelled_owned(),
    ));
    // The controller's runs are its own (the cluster's): the dispatcher never sees them.
    let cluster = controller.map(|c| {
        let stop = stop.clone();
        tokio::spawn(async move {
            let outcome = c.clone().run(stop.child_token()).await;
            eprintln!(
                "slipway controller: stopped after {} API requests",
                c.requests_sent()
            );
            if outcome.is_err() {
                // Like `slipway controller`, a replica that lost its Lease stops (exit 3).
                stop.cancel();
            }
            outcome
        })
    });
    let server = slipway_server::serve(listener, state, options, stop.clone().cancelled_owned());
    tokio::pin!(server);
    let served = tokio::select! {
        r = &mut server => r,
        // A follower of a long run keeps its connection; the server does not wait for it forever.
        _ = async { stop.cancelled().await; tokio::time::sleep(DRAIN).await } => Ok(()),
    };
    let _ = queue.await;
    slipway_engine::Store::flush(store.as_ref()).await;
    served.map_err(|e| CliError::Internal(format!("failed to serve: {e}")))?;
    if let Some(Ok(Err(e))) = match cluster {
        Some(c) => Some(c.await),
        None => None,
    } {
        return Err(CliError::Internal(crate::error::chain(&e)));
    }
    Ok(0)
}

/// The first controller flag given away from its default, if any.
fn controller_flag(c: &crate::cli::ControllerArgs) -> Option<&'static str> {
    [
        (c.namespace.is_some(), "--namespace"),
        (c.all_namespaces, "--all-namespaces"),
        (c.qps != crate::cli::DEFAULT_QPS, "--qps"),
        (c.burst != crate::cli::DEFAULT_BURST, "--burst"),
        (c.lease_name != crate::cli::DEFAULT_LEASE, "--lease-name"),
        (c.lease_namespace.is_some(), "--lease-namespace"),
        (c.identity.is_some(), "--identity"),
        (c.kube_image.is_some(), "--kube-image"),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag))
}

/// Who may use the API. With `--no-auth`, anyone (said loudly). Otherwise tokens: on a first
/// start without any, an admin token is made and printed once (on stderr, never through the
/// log), and only then if the server listens on loopback: a server reachable from other
/// machines must not start open, nor print a token for the first caller's benefit.
async fn access(
    store: &SqliteStore,
    args: &ServeArgs,
    addr: std::net::SocketAddr,
) -> Result<AuthMode, CliError> {
    if args.no_auth {
        let user = std::env::var("USER").unwrap_or_else(|_| "this user".into());
        eprintln!(
            "WARNING: --no-auth: the API asks for no token. Anyone who can reach http://{addr} can run any command as {user} on this machine and read every log{}. The cross-site and DNS-rebinding guards still apply.",
            if addr.ip().is_loopback() {
                " (on loopback: every local user and program)"
            } else {
                ", from other machines too"
            }
        );
        return Ok(AuthMode::Off);
    }
    if !store.tokens().await?.is_empty() {
        return Ok(AuthMode::Tokens);
    }
    if !addr.ip().is_loopback() {
        return Err(CliError::usage(
            format!("{addr} is reachable from other machines and this server has no API token yet"),
            "start it once on loopback (the default --listen 127.0.0.1:7080) to get its admin token, or create one with `slipway token create NAME`; --no-auth serves without tokens",
        ));
    }
    let token = slipway_server::generate_token();
    if !store
        .add_token(ADMIN, "write", &slipway_server::token_hash(&token))
        .await?
    {
        return Err(CliError::Internal(format!(
            "failed to create the admin token: a token named `{ADMIN}` appeared meanwhile"
        )));
    }
    let url = format!("http://{addr}");
    eprintln!(
        "first start: created the API token `{ADMIN}` (write scope). It is shown only now; keep it:\n  {token}\n  web UI: {url}/ui/#token={token}\n  CLI:    SLIPWAY_SERVER={url} SLIPWAY_TOKEN={token} slipway runs\n  more:   slipway token create NAME [--scope read]; slipway token revoke {ADMIN}"
    );
    Ok(AuthMode::Tokens)
}

/// The name of the token a first start creates.
const ADMIN: &str = "admin";

/// Raises the soft limit on open files to the hard one (the default soft limit, often 1,024,
/// is far below what connections, step pipes and the store need under load); the limit now.
fn raise_open_files() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit write and read the struct passed, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// The default connection cap: [`slipway_server::DEFAULT_MAX_CONNECTIONS`], lowered to leave
/// descriptors for the runs and the store when the open-file limit is small.
fn default_connections(open_files: u64) -> usize {
    let spare = usize::try_from(open_files.saturating_sub(512)).unwrap_or(usize::MAX);
    slipway_server::DEFAULT_MAX_CONNECTIONS.min(spare.max(64))
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

/// One server per data directory: two would start the same queued runs (and a key rotation
/// takes the same lock).
pub(crate) fn lock(data: &Path) -> Result<std::fs::File, CliError> {
    std::fs::create_dir_all(data)
        .map_err(|e| CliError::Internal(format!("failed to create {}: {e}", data.display())))?;
    let path = data.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
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
