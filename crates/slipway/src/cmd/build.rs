//! `slipway build`: a Dockerfile to an image, with Kaniko's flags, progress as BuildKit's
//! plain output prints it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use slipway_build::build::workspace::Mode;
use slipway_build::layer::{Compression, MediaTypes};
use slipway_build::progress::{Event, Progress};
use slipway_build::registry::{Credentials, RegistryOptions};
use slipway_build::{BuildError, BuildOptions};

use crate::cli::{BuildArgs, BuildMode, Output};
use crate::error::CliError;

/// BuildKit's `--progress=plain` lines on stderr: `#N [stage i/n] INSTRUCTION`, the RUN's
/// output with its time, then `#N DONE 1.2s` or `#N CACHED`.
struct Plain {
    started: std::time::Instant,
    out: Mutex<std::io::Stderr>,
}

impl Progress for Plain {
    fn event(&self, event: Event) {
        let line = match event {
            Event::Notice(text) => format!("note: {text}"),
            Event::Stage { stage, base } => format!("# stage {stage}: FROM {base}"),
            Event::Step {
                stage,
                index,
                total,
                text,
                ..
            } => format!("#{index} [{stage} {index}/{total}] {text}"),
            Event::Cached { index } => format!("#{index} CACHED"),
            Event::Done { index, elapsed } => {
                format!("#{index} DONE {:.1}s", elapsed.as_secs_f64())
            }
            Event::Output { index, line } => format!(
                "#{index} {:.3} {line}",
                self.started.elapsed().as_secs_f64()
            ),
            Event::Transfer { .. } => return,
            Event::Pushed {
                destination,
                digest,
            } => format!("pushed {destination}@{digest}"),
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// `KEY=VALUE` pairs; a bare `KEY` takes the environment's value (Kaniko and docker do).
fn pairs(items: &[String], flag: &str, from_env: bool) -> Result<Vec<(String, String)>, CliError> {
    let mut out = Vec::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            None if from_env && !item.is_empty() => {
                if let Ok(v) = std::env::var(item) {
                    out.push((item.clone(), v));
                }
            }
            _ => {
                return Err(CliError::usage(
                    format!("--{flag} `{item}` is not KEY=VALUE"),
                    format!("write it as --{flag} NAME=value"),
                ));
            }
        }
    }
    Ok(out)
}

/// `--cache-repo`, else (with an explicit `--cache=true`, as Kaniko infers it) the first
/// destination's repository with `/cache` appended.
fn cache_repo(args: &BuildArgs, no_push: bool) -> Option<String> {
    if let Some(repo) = &args.cache_repo {
        return Some(repo.clone());
    }
    if args.cache != Some(true) || no_push {
        return None;
    }
    let first = args.destination.first()?;
    let name = first.split('@').next().unwrap_or(first);
    let repo = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    };
    Some(format!("{repo}/cache"))
}

/// `--secret id=NAME,src=FILE`.
fn secrets(items: &[String]) -> Result<BTreeMap<String, std::path::PathBuf>, CliError> {
    let mut out = BTreeMap::new();
    for item in items {
        let mut id = None;
        let mut src = None;
        for part in item.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(v.into()),
                _ => {}
            }
        }
        match (id, src) {
            (Some(id), Some(src)) => {
                out.insert(id, src);
            }
            _ => {
                return Err(CliError::usage(
                    format!("--secret `{item}` needs id= and src="),
                    "write it as --secret id=NAME,src=FILE",
                ));
            }
        }
    }
    Ok(out)
}

/// The options `args` ask for, with the config file's registry rewrites.
fn options(
    args: &BuildArgs,
    config: &crate::config::Config,
    plain: &Plain,
) -> Result<BuildOptions, CliError> {
    let compression = match args.compression.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        "none" | "uncompressed" => Compression::Uncompressed,
        other => {
            return Err(CliError::usage(
                format!("--compression `{other}` is not known"),
                "use gzip or zstd",
            ));
        }
    };
    let media = match args.format.as_str() {
        "docker" => MediaTypes::Docker,
        "oci" => MediaTypes::Oci,
        other => {
            return Err(CliError::usage(
                format!("--format `{other}` is not known"),
                "use docker or oci",
            ));
        }
    };
    for (flag, given) in [
        ("--snapshot-mode", args.snapshot_mode.is_some()),
        ("--use-new-run", args.use_new_run.is_some()),
        ("--compressed-caching", args.compressed_caching.is_some()),
        ("--single-snapshot", args.single_snapshot.is_some()),
        ("--cleanup", args.cleanup.is_some()),
    ] {
        if given {
            plain.event(Event::Notice(format!(
                "{flag} tunes Kaniko's snapshots; layers here come from the changes alone, so it has no effect"
            )));
        }
    }
    let no_push = args.no_push.unwrap_or(false);
    if args.destination.is_empty() && !no_push {
        return Err(CliError::usage(
            "no --destination to push to",
            "give --destination REGISTRY/REPO:TAG, or --no-push (with --tar-path FILE to keep the image)",
        ));
    }
    Ok(BuildOptions {
        context: args.context.clone(),
        dockerfile: args.dockerfile.clone(),
        destinations: args.destination.clone(),
        build_args: pairs(&args.build_arg, "build-arg", true)?
            .into_iter()
            .collect(),
        target: args.target.clone(),
        labels: pairs(&args.label, "label", false)?,
        no_push,
        tar_path: args.tar_path.clone(),
        digest_file: args.digest_file.clone(),
        image_name_with_digest_file: args.image_name_with_digest_file.clone(),
        image_name_tag_with_digest_file: args.image_name_tag_with_digest_file.clone(),
        cache: args.cache.unwrap_or(true),
        cache_repo: cache_repo(args, no_push),
        cache_dir: args.cache_dir.clone(),
        cache_ttl: args.cache_ttl,
        reproducible: args.reproducible.unwrap_or(false),
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok()),
        platform: args.custom_platform.clone(),
        registry: RegistryOptions {
            config: config.registry.clone(),
            credentials: Credentials::from_env(),
            insecure: args.insecure.unwrap_or(false),
            insecure_pull: args.insecure_pull.unwrap_or(false),
            insecure_registries: args.insecure_registry.clone(),
            skip_tls_verify: args.skip_tls_verify.unwrap_or(false)
                || args.skip_tls_verify_pull.unwrap_or(false),
            push_retry: args.push_retry,
        },
        compression,
        compression_level: args.compression_level,
        media,
        secrets: secrets(&args.secret)?,
        mode: match args.mode {
            BuildMode::Auto => Mode::Auto,
            BuildMode::Privileged => Mode::Privileged,
            BuildMode::Unprivileged => Mode::Unprivileged,
        },
        force: args.force,
    })
}

/// Runs `slipway build`.
pub async fn build(args: &BuildArgs, config: &crate::config::Config) -> Result<i32, CliError> {
    let plain = Plain {
        started: std::time::Instant::now(),
        out: Mutex::new(std::io::stderr()),
    };
    let options = options(args, config, &plain)?;
    // Ctrl-C drops the build: its containers are deleted, mounts detached and temporary
    // directories removed on the way out (a SIGKILL leaves them to the next start's sweep).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let result = tokio::select! {
        r = slipway_build::build(&options, &plain) => r,
        _ = tokio::signal::ctrl_c() => Err(BuildError::Interrupted),
        () = terminated => Err(BuildError::Interrupted),
    };
    match result {
        Ok(outcome) => {
            if let Some(Output::Json | Output::Yaml) = args.output {
                let pushed: Vec<_> = outcome
                    .pushed
                    .iter()
                    .map(|p| serde_json::json!({"destination": p.destination, "digest": p.digest.to_string()}))
                    .collect();
                let value = serde_json::json!({
                    "digest": outcome.digest.to_string(),
                    "pushed": pushed,
                    "steps": outcome.steps,
                    "cached": outcome.cached,
                });
                crate::output::print(&value, args.output.unwrap_or(Output::Json))?;
            } else {
                eprintln!(
                    "built {} ({} steps, {} cached)",
                    outcome.digest, outcome.steps, outcome.cached
                );
            }
            Ok(0)
        }
        Err(e) => Err(report(e)),
    }
}

/// A build error as the CLI shows it: bad input exits 2, a failing build 1.
fn report(e: BuildError) -> CliError {
    let text = crate::error::chain(&e);
    let invalid = matches!(
        innermost(&e),
        BuildError::Dockerfile(_)
            | BuildError::Context(_)
            | BuildError::Platform(_)
            | BuildError::NoDestination
            | BuildError::MissingSecret(_)
            | BuildError::NotAContainer
            | BuildError::Copy(slipway_build::build::copy::CopyError::NotFound(_))
    );
    let tail = match innermost(&e) {
        BuildError::Run(slipway_build::run::RunError::Failed { tail, .. }) if !tail.is_empty() => {
            format!("\n  last lines:\n    {}", tail.join("\n    "))
        }
        _ => String::new(),
    };
    if invalid {
        let hint = match innermost(&e) {
            BuildError::Dockerfile(d) => d
                .hint
                .clone()
                .unwrap_or_else(|| "see the Dockerfile reference".into()),
            BuildError::NotAContainer => "run it in a container (docker run, a Kubernetes pod), \
                 as root where overlay mounts work, or give --force if this machine's root may be \
                 overwritten"
                .into(),
            _ => "see `slipway build --help`".into(),
        };
        CliError::usage(text, hint)
    } else {
        CliError::Failed(format!("{text}{tail}"))
    }
}

/// The error an `Instruction` wrapper carries.
fn innermost(e: &BuildError) -> &BuildError {
    match e {
        BuildError::Instruction { source, .. } => innermost(source),
        other => other,
    }
}
