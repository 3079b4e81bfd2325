//! `slipway agent`: pulls images onto this node through its runtime's CRI socket, printing each
//! image's phase, bytes and outcome.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use slipway_model::reference::Reference;
use slipway_prewarm::agent::{engine_for, pull_list};
use slipway_prewarm::{
    Endpoint, EndpointError, EngineConfig, Phase, PullPolicy, RegistryAuth, TagSpec, TagStatus,
};

use crate::cli::{AgentArgs, PullPolicyArg};
use crate::error::{CliError, EXIT_FAILED};

/// How often a pull's bytes are printed at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn agent(args: &AgentArgs) -> Result<i32, CliError> {
    if args.pull.is_empty() {
        return Err(CliError::usage(
            "nothing to pull",
            "name images with --pull IMAGE (repeatable); the agent's server side comes later",
        ));
    }
    let specs = specs(args)?;
    let endpoint = Endpoint::parse(&args.cri_endpoint).map_err(|e| {
        CliError::usage(
            e.to_string(),
            "pass --cri-endpoint unix:///path/to/runtime.sock",
        )
    })?;
    let config = EngineConfig {
        max_concurrent_pulls: usize::try_from(args.max_concurrent_pulls).unwrap_or(1),
        ..EngineConfig::default()
    };
    let engine = engine_for(&endpoint, config).await.map_err(unreachable)?;
    println!(
        "node {}: pulling {} image(s) through {endpoint}, at most {} at once",
        args.node,
        specs.len(),
        args.max_concurrent_pulls
    );
    let mut printer = Printer::default();
    let last = pull_list(engine, specs, |s| printer.print(s)).await;
    let failed = last.iter().filter(|s| s.phase != Phase::Succeeded).count();
    println!(
        "node {}: {} succeeded, {failed} failed",
        args.node,
        last.len() - failed
    );
    Ok(if failed == 0 { 0 } else { EXIT_FAILED })
}

fn unreachable(e: EndpointError) -> CliError {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        // Transport errors repeat their cause in their own words.
        let text = c.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = c.source();
    }
    CliError::usage(
        message,
        "start the runtime (containerd with its CRI plugin), or pass the socket it listens on with --cri-endpoint unix:///PATH",
    )
}

/// A spec per image, credentials from the Docker config where it has the image's registry.
fn specs(args: &AgentArgs) -> Result<Vec<TagSpec>, CliError> {
    let docker_config = match &args.docker_config {
        None => None,
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            CliError::usage(
                format!("failed to read the docker config {}: {e}", path.display()),
                "pass a Docker config JSON (a pull Secret's .dockerconfigjson) with --docker-config",
            )
        })?),
    };
    let policy = match args.pull_policy {
        PullPolicyArg::Always => PullPolicy::Always,
        PullPolicyArg::IfNotPresent => PullPolicy::IfNotPresent,
    };
    let mut specs = Vec::new();
    for image in &args.pull {
        let reference = Reference::parse(image).map_err(|e| {
            CliError::usage(
                e.to_string(),
                "name images as docker pull does: [registry/]repository[:tag][@sha256:digest]",
            )
        })?;
        let auth = match &docker_config {
            None => None,
            Some(json) => {
                RegistryAuth::from_docker_config(json, &reference.registry).map_err(|e| {
                    CliError::usage(e.to_string(), "fix the file given to --docker-config")
                })?
            }
        };
        specs.push(TagSpec {
            image: image.clone(),
            policy,
            timeout: args.timeout,
            backoff_limit: args.backoff_limit,
            auth,
        });
    }
    Ok(specs)
}

/// One line per change of phase, and the bytes of a pull at most once a second.
#[derive(Default)]
struct Printer {
    seen: HashMap<String, (Phase, u32, Option<Instant>)>,
}

impl Printer {
    fn print(&mut self, s: &TagStatus) {
        let key = s.image.clone();
        let previous = self.seen.get(&key).copied();
        let changed =
            previous.is_none_or(|(phase, attempts, _)| phase != s.phase || attempts != s.attempts);
        let line = if changed {
            self.seen.insert(key, (s.phase, s.attempts, None));
            phase_line(s)
        } else if let Some(p) = s.progress.filter(|_| s.phase == Phase::Pulling) {
            let printed = previous.and_then(|(_, _, at)| at);
            if printed.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) {
                return;
            }
            self.seen
                .insert(key, (s.phase, s.attempts, Some(Instant::now())));
            format!(
                "{}  Pulling  {} / {}",
                s.image,
                megabytes(p.completed),
                megabytes(p.total)
            )
        } else {
            return;
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn phase_line(s: &TagStatus) -> String {
    match s.phase {
        Phase::Waiting if s.attempts == 0 => format!("{}  Waiting", s.image),
        Phase::Waiting => format!(
            "{}  Waiting  attempt {} failed, retrying: {}",
            s.image,
            s.attempts,
            s.message.as_deref().unwrap_or("")
        ),
        Phase::Pulling => format!("{}  Pulling  attempt {}", s.image, s.attempts),
        Phase::Succeeded => {
            let took = match (s.start_time, s.completion_time) {
                (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
                _ => Duration::ZERO,
            };
            let bytes = s
                .progress
                .map(|p| format!(", {}", megabytes(p.total)))
                .unwrap_or_default();
            format!(
                "{}  Succeeded  {}  ({:.1}s{bytes})",
                s.image,
                s.image_id.as_deref().unwrap_or(""),
                took.as_secs_f64()
            )
        }
        Phase::Failed => format!(
            "{}  Failed  {}",
            s.image,
            s.message.as_deref().unwrap_or("")
        ),
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
