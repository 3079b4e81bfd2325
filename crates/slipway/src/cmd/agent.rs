//! `slipway agent`: pulls images onto this node through its runtime's CRI socket, printing each
//! image's phase, bytes and outcome.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use slipway_model::reference::Reference;
use slipway_prewarm::agent::{engine_for, pull_list};
use slipway_prewarm::follow::{FollowConfig, ServerPlane, follow, register};
use slipway_prewarm::server::Server;
use slipway_prewarm::{
    Endpoint, EndpointError, Engine, EngineConfig, Phase, PullPolicy, RegistryAuth, TagSpec,
    TagStatus,
};
use slipway_prewarm_kube::KubeNode;

use crate::cli::{AgentArgs, PullPolicyArg};
use crate::error::{CliError, EXIT_FAILED};
use crate::remote::Remote;

/// How often a pull's bytes are printed at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn agent(args: &AgentArgs) -> Result<i32, CliError> {
    if args.pull.is_empty() {
        return Err(CliError::usage(
            "nothing to pull",
            "name images with --pull IMAGE (repeatable), or follow the node's NodeImage with --server URL or --kube",
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

/// `slipway agent --server`: registers the node and follows its NodeImage until stopped.
pub async fn against_server(remote: &Remote, args: &AgentArgs) -> Result<i32, CliError> {
    if !args.pull.is_empty() {
        return Err(CliError::usage(
            "--pull and --server do not go together",
            "with --server the node pulls what its NodeImage asks for; create jobs with `slipway prewarm`",
        ));
    }
    let labels = labels(&args.label)?;
    let (endpoint, engine) = node_engine(args).await?;
    let server = Server::new(remote.base(), remote.token().map(str::to_string))
        .map_err(|e| CliError::usage(e.to_string(), "pass --server http://HOST:PORT"))?;
    register(&server, &args.node, &labels).await.map_err(|e| {
        CliError::usage(
            chain(&e),
            "start the server (`slipway serve`), check --server and --token (a token for every namespace, scope write)",
        )
    })?;
    println!(
        "node {}: following its NodeImage on {}, pulling through {endpoint}, at most {} at once",
        args.node,
        remote.base(),
        args.max_concurrent_pulls
    );
    let follow_config = FollowConfig {
        heartbeat: args.heartbeat,
        ..FollowConfig::default()
    };
    let mut printer = Printer::default();
    let plane = ServerPlane::new(server, args.node.clone(), labels);
    follow(engine, plane, follow_config, |s| printer.print(s)).await;
    Ok(0)
}

/// `slipway agent --kube`: follows the node's NodeImage on the cluster until stopped.
pub async fn on_cluster(args: &AgentArgs) -> Result<i32, CliError> {
    let (endpoint, engine) = node_engine(args).await?;
    let connected = slipway_prewarm_kube::connect().await.map_err(|e| {
        CliError::usage(
            chain(&e),
            "set KUBECONFIG (or run in a Pod with a ServiceAccount: deploy/prewarm/agent.yaml)",
        )
    })?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let plane = KubeNode::connect(
        connected.client,
        &connected.server,
        &args.node,
        shutdown.clone(),
    )
    .await
    .map_err(|e| {
        CliError::usage(
            chain(&e),
            "apply deploy/prewarm/ (the CRDs and the agent's RBAC) and check the cluster answers",
        )
    })?;
    println!(
        "node {}: following its NodeImage on {}, pulling through {endpoint}, at most {} at once",
        args.node, connected.server, args.max_concurrent_pulls
    );
    let mut printer = Printer::default();
    follow(engine, plane, FollowConfig::default(), |s| printer.print(s)).await;
    shutdown.cancel();
    Ok(0)
}

/// The node's name checked, and an engine on its runtime's socket.
async fn node_engine(args: &AgentArgs) -> Result<(Endpoint, Engine), CliError> {
    if let Some(why) = slipway_model::names::dns_subdomain_problem(&args.node) {
        return Err(CliError::usage(
            format!(
                "invalid node name `{}`: {why}",
                slipway_model::names::shown(&args.node)
            ),
            "name nodes as Kubernetes does: lower-case letters, digits, `-` and `.`",
        ));
    }
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
    Ok((endpoint, engine))
}

/// `KEY=VALUE` labels, checked as Kubernetes checks label values.
fn labels(given: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for l in given {
        let Some((k, v)) = l.split_once('=') else {
            return Err(CliError::usage(
                format!(
                    "label `{}` is not KEY=VALUE",
                    slipway_model::names::shown(l)
                ),
                "pass --label zone=a",
            ));
        };
        let fine = |s: &str, empty_ok: bool| {
            (empty_ok || !s.is_empty())
                && s.len() <= 253
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        };
        if !fine(k, false) || !fine(v, true) {
            return Err(CliError::usage(
                format!(
                    "label `{}` is not a Kubernetes label",
                    slipway_model::names::shown(l)
                ),
                "keys and values take letters, digits, `-`, `_`, `.` (and `/` after a key's prefix)",
            ));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
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
            version: 0,
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
