//! The `slipway` binary: command-line parsing and wiring only.

mod cli;
mod cmd;
mod error;
mod output;
mod paths;
mod remote;
mod render;

use clap::Parser;
use slipway::config;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() {
    let cli = Cli::parse();
    // Inside a step container: no data directory, no runtime, no logging set-up.
    if let Command::Entrypoint(args) = cli.command {
        std::process::exit(cmd::entrypoint::entrypoint(args));
    }
    logging(matches!(
        cli.command,
        Command::Serve(_) | Command::PrewarmController(_) | Command::Controller(_)
    ));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            std::process::exit(error::EXIT_INTERNAL);
        }
    };
    let code = runtime.block_on(async move {
        let data = paths::data_dir(cli.data_dir.clone());
        paths::set_secret_key_file(cli.secret_key_file.clone());
        let result: Result<i32, CliError> = match &cli.server {
            Some(url) => match remote::Remote::new(url, cli.token.clone()) {
                Ok(r) => against_server(&r, cli.command).await,
                Err(e) => Err(e),
            },
            None => on_this_machine(&data, cli.config.as_deref(), cli.command).await,
        };
        match result {
            Ok(code) => code,
            Err(e) => e.report(),
        }
    });
    // Leftover step processes belong to their own sessions; nothing here waits for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}

async fn on_this_machine(
    data: &std::path::Path,
    config_path: Option<&std::path::Path>,
    command: Command,
) -> Result<i32, CliError> {
    if !matches!(
        command,
        Command::Apply(_)
            | Command::Validate(_)
            | Command::Agent(_)
            | Command::Prewarm(_)
            | Command::PrewarmController(_)
            | Command::Controller(_)
    ) {
        paths::make_private(data);
        // After the flag (set first, which wins): the config file's `[secrets] key_file`.
        paths::set_secret_key_file(config::load(config_path)?.secrets.key_file);
    }
    match command {
        Command::Run(args) => cmd::run::run(data, &config::load(config_path)?, args).await,
        Command::Apply(_) => Err(CliError::usage(
            "apply stores definitions on a server",
            "pass --server http://HOST:PORT (or set SLIPWAY_SERVER); locally, `slipway run -f` reads them from files",
        )),
        Command::Validate(args) => cmd::validate::validate(&args),
        Command::Images(args) => cmd::images::images(&args),
        Command::Runs(args) => cmd::history::runs(data, &args).await,
        Command::Get(args) => {
            let source = cmd::prewarm::Source::local(data).await?;
            cmd::prewarm::get(&source, &args).await
        }
        Command::Describe(args) => match &args.name {
            Some(name) => {
                let source = cmd::prewarm::Source::local(data).await?;
                cmd::prewarm::describe(&source, &args.run, name, &args.ns, args.output).await
            }
            None => cmd::history::describe(data, &args).await,
        },
        Command::Logs(args) => cmd::logs::logs(data, &args).await,
        Command::Cancel(args) => cmd::cancel::cancel(data, &args).await,
        Command::Serve(args) => cmd::serve::serve(data, &config::load(config_path)?, &args).await,
        Command::Rerun(args) => cmd::run::rerun(data, &config::load(config_path)?, args).await,
        Command::Token(args) => cmd::token::token(data, &args).await,
        Command::Secrets(args) => cmd::secrets::secrets(data, &args).await,
        Command::Build(args) => cmd::build::build(&args, &config::load(config_path)?).await,
        Command::Agent(args) if args.kube => cmd::agent::on_cluster(&args).await,
        Command::Agent(args) => cmd::agent::agent(&args).await,
        Command::PrewarmController(args) => cmd::prewarm_controller::run(&args).await,
        Command::Controller(args) => {
            cmd::controller::controller(&config::load(config_path)?, &args).await
        }
        Command::Entrypoint(args) => Ok(cmd::entrypoint::entrypoint(args)),
        Command::Prewarm(_) => Err(CliError::usage(
            "pre-warming runs on a server's nodes",
            "pass --server http://HOST:PORT (or set SLIPWAY_SERVER) of the server the agents follow",
        )),
    }
}

async fn against_server(remote: &remote::Remote, command: Command) -> Result<i32, CliError> {
    match command {
        Command::Run(args) => cmd::remote::run(remote, args).await,
        Command::Apply(args) => cmd::remote::apply(remote, &args).await,
        Command::Validate(args) => cmd::validate::validate(&args),
        Command::Images(args) => cmd::images::images(&args),
        Command::Runs(args) => cmd::remote::runs(remote, &args).await,
        Command::Get(args) => cmd::prewarm::get(&cmd::prewarm::Source::Remote(remote), &args).await,
        Command::Describe(args) => match &args.name {
            Some(name) => {
                let source = cmd::prewarm::Source::Remote(remote);
                cmd::prewarm::describe(&source, &args.run, name, &args.ns, args.output).await
            }
            None => cmd::remote::describe(remote, &args).await,
        },
        Command::Logs(args) => cmd::remote::logs(remote, &args).await,
        Command::Cancel(args) => cmd::remote::cancel(remote, &args).await,
        Command::Rerun(args) => cmd::remote::rerun(remote, &args).await,
        Command::Agent(args) if args.kube => Err(CliError::usage(
            "--kube and --server do not go together",
            "with --kube the agent follows its NodeImage on the cluster; drop --server (and unset SLIPWAY_SERVER)",
        )),
        Command::Agent(args) => cmd::agent::against_server(remote, &args).await,
        Command::PrewarmController(_) => Err(CliError::usage(
            "the pre-warming controller on a cluster takes no --server",
            "drop --server (and unset SLIPWAY_SERVER); `slipway serve` runs the controller for its own agents",
        )),
        Command::Prewarm(args) => cmd::prewarm_job::prewarm(remote, &args).await,
        Command::Entrypoint(args) => Ok(cmd::entrypoint::entrypoint(args)),
        Command::Build(_) => Err(CliError::usage(
            "`slipway build` runs on this machine",
            "drop --server (images are pushed to registries, not to the server)",
        )),
        Command::Secrets(_) => Err(CliError::usage(
            "the secret key is managed on the server's machine",
            "run `slipway secrets ...` there without --server (it uses the server's data directory)",
        )),
        Command::Token(_) => Err(CliError::usage(
            "tokens are managed on the server's machine",
            "run `slipway token ...` there without --server (it uses the server's data directory)",
        )),
        Command::Controller(_) => Err(CliError::usage(
            "`slipway controller` talks to a Kubernetes cluster, not to a slipway server",
            "drop --server (and unset SLIPWAY_SERVER); the cluster is found as kubectl finds it",
        )),
        Command::Serve(_) => Err(CliError::usage(
            "--server names a server to talk to; `slipway serve` is one",
            "drop --server (and unset SLIPWAY_SERVER) to start a server",
        )),
    }
}

/// Log lines on stderr: `SLIPWAY_LOG` filters (a server logs its runs at `info` by default),
/// `SLIPWAY_LOG_FORMAT=json` writes one JSON object per line for log collectors.
fn logging(serving: bool) {
    let filter = match std::env::var("SLIPWAY_LOG") {
        Ok(f) => tracing_subscriber::EnvFilter::new(f),
        Err(_) if serving => tracing_subscriber::EnvFilter::new(
            "slipway_server=info,slipway=info,slipway_controller=info,slipway_lease=info",
        ),
        Err(_) => tracing_subscriber::EnvFilter::new("off"),
    };
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if std::env::var("SLIPWAY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
