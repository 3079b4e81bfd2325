//! The `slipway` binary: command-line parsing and wiring only.

mod cli;
mod cmd;
mod config;
mod error;
mod output;
mod paths;
mod render;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SLIPWAY_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async move {
        let data = paths::data_dir(cli.data_dir.clone());
        let result: Result<i32, CliError> = match cli.command {
            Command::Run(args) => match config::load(cli.config.as_deref()) {
                Ok(c) => cmd::run::run(&data, &c, args).await,
                Err(e) => Err(e),
            },
            Command::Validate(args) => cmd::validate::validate(&args),
            Command::Runs(args) => cmd::history::runs(&data, &args).await,
            Command::Describe(args) => cmd::history::describe(&data, &args).await,
            Command::Logs(args) => cmd::logs::logs(&data, &args).await,
            Command::Cancel(args) => cmd::cancel::cancel(&data, &args).await,
            Command::Serve(args) => match config::load(cli.config.as_deref()) {
                Ok(c) => cmd::serve::serve(&data, &c, &args).await,
                Err(e) => Err(e),
            },
            Command::Rerun(args) => match config::load(cli.config.as_deref()) {
                Ok(c) => cmd::run::rerun(&data, &c, args).await,
                Err(e) => Err(e),
            },
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
