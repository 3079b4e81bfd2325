//! Spreads one ImagePullJob over its nodes: puts its tag (with an owner reference, a version
//! and the job's pull policy) into the NodeImages of at most `parallelism` nodes at a time,
//! reads how each node's pull went, retries failed nodes with backoff, gives up on nodes that
//! stop answering, and writes the job's status as OpenKruise does.

use std::time::{Duration, SystemTime};

use slipway_model::kinds::kruise::{
    CompletionType, ImagePullJobSpec, ImagePullJobStatus, ImagePullPhase, ImagePullPolicy,
    ImageTagPullPolicy, ImageTagSpec, IntOrString, ReferenceObject,
};

use super::Config;
use super::world::{
    Memory, NodeImageDoc, NodeInfo, World, format_time, owned_by, parse_time, selects, split_image,
    tag_owner,
};

/// An ImagePullJob as the controller reads it.
#[derive(Debug, Clone)]
pub struct Job {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Uid (what its tags' owner references name).
    pub uid: String,
    /// Spec, with defaults.
    pub spec: ImagePullJobSpec,
    /// Status as last written.
    pub status: ImagePullJobStatus,
}

/// Where a job is on one node.
#[derive(Debug, Clone, PartialEq)]
enum NodeState {
    /// The job has not asked the node yet.
    Idle,
    /// The node is pulling (or about to).
    InFlight,
    /// The node has the image, since then.
    Succeeded(Option<SystemTime>),
    /// The node gave up, why and when; `left` while the job has retries for it, `due` once
    /// the next one's backoff has passed.
    Failed {
        message: String,
        at: Option<SystemTime>,
        left: bool,
        due: bool,
    },
}

/// What spreading a job gives: its new status and the nodes whose tags it keeps.
#[derive(Debug, Clone)]
pub struct Spread {
    /// The status to write.
    pub status: ImagePullJobStatus,
    /// Nodes on which the job's owner reference stays.
    pub claims: Vec<String>,
}

/// OpenKruise's message on a finished job.
pub const COMPLETED: &str = "job has completed";
/// OpenKruise's message on a job past its deadline.
pub const DEADLINE: &str = "job exceeds activeDeadlineSeconds";

/// One round for `job`.
pub fn spread(job: &Job, world: &mut World, memory: &mut Memory, config: &Config) -> Spread {
    let (name, tag) = split_image(&job.spec.image);
    let mut status = job.status.clone();
    let t = &job.spec.template;
    let always = t.completion() == CompletionType::Always;
    if always && status.completion_time.is_some() {
        // A finished job no longer changes anything, but keeps its tags until it is deleted.
        let claims = world
            .images
            .iter()
            .filter(|(_, d)| entry(d, &name, &tag, &job.uid).is_some())
            .map(|(n, _)| n.clone())
            .filter(|n| !status.failed_nodes.contains(n))
            .collect();
        return Spread { status, claims };
    }
    let now = world.now;
    let start = status
        .start_time
        .as_deref()
        .and_then(parse_time)
        .unwrap_or(now);
    status.start_time = Some(format_time(start));
    let mut selected = Vec::new();
    for node in &world.nodes {
        match selects(t, node) {
            Ok(true) => selected.push(node.clone()),
            Ok(false) => {}
            Err(why) => {
                status.message = Some(why.message().to_string());
                status.desired = 0;
                return Spread {
                    status,
                    claims: Vec::new(),
                };
            }
        }
    }
    let states = states_of(job, &selected, world, memory, config);
    let deadline = t
        .completion_policy
        .active_deadline_seconds
        .filter(|_| always)
        .map(|s| start + Duration::from_secs(u64::try_from(s).unwrap_or(0)));
    if deadline.is_some_and(|d| now > d) {
        return past_deadline(world.now, status, states);
    }
    let mut states = states;
    start_due(job, &mut states, world, memory, config);
    for (node, _) in &states {
        if let Some(doc) = world.images.get_mut(node) {
            follow_edits(doc, job, &name, &tag);
        }
    }
    conclude(&mut status, &states, always, now);
    let claims = states.into_iter().map(|(n, _)| n).collect();
    Spread { status, claims }
}

/// Where the job is on each selected node, with retries and silence taken into account.
fn states_of(
    job: &Job,
    selected: &[NodeInfo],
    world: &mut World,
    memory: &Memory,
    config: &Config,
) -> Vec<(String, NodeState)> {
    let (name, tag) = split_image(&job.spec.image);
    let now = world.now;
    let mut states: Vec<(String, NodeState)> = Vec::new();
    for node in selected {
        let doc = world
            .images
            .entry(node.name.clone())
            .or_insert_with(NodeImageDoc::new);
        let mut state = state_on(doc, &name, &tag, &job.uid);
        if let NodeState::Failed { left, due, at, .. } = &mut state {
            let spent = memory
                .retries
                .get(&(job.uid.clone(), node.name.clone()))
                .copied()
                .unwrap_or(0);
            let wait = backoff(config, spent);
            *left = spent < config.job_retries;
            *due = *left && at.is_none_or(|at| now.duration_since(at).unwrap_or_default() >= wait);
        }
        // A node that stopped answering is given up on; it gets the job again if it returns.
        let watching = memory.started.unwrap_or(now);
        if let Some(why) = node.silent(now, config.node_grace, watching)
            && !matches!(state, NodeState::Succeeded(_))
        {
            state = NodeState::Failed {
                message: why,
                at: Some(now),
                left: false,
                due: false,
            };
        }
        states.push((node.name.clone(), state));
    }
    states
}

/// Asks the due nodes (new ones, retries, re-checks) while `parallelism` leaves room.
fn start_due(
    job: &Job,
    states: &mut [(String, NodeState)],
    world: &mut World,
    memory: &mut Memory,
    config: &Config,
) {
    let (name, tag) = split_image(&job.spec.image);
    let t = &job.spec.template;
    let always = t.completion() == CompletionType::Always;
    let now = world.now;
    let parallelism = match &t.parallelism {
        Some(IntOrString::Int(n)) => usize::try_from(*n).unwrap_or(0),
        _ => 1,
    };
    let mut slots = parallelism.saturating_sub(
        states
            .iter()
            .filter(|(_, s)| *s == NodeState::InFlight)
            .count(),
    );
    // A `Never` job asks a node again once this long has passed since it finished.
    let stale = |at: Option<SystemTime>| {
        at.is_some_and(|at| now.duration_since(at).unwrap_or_default() >= config.recheck)
    };
    // Retries first (they were started earlier), then nodes in name order.
    let mut order: Vec<usize> = (0..states.len()).collect();
    order.sort_by_key(|&i| !matches!(states[i].1, NodeState::Failed { due: true, .. }));
    for i in order {
        let node = states[i].0.clone();
        let due = match &states[i].1 {
            NodeState::Idle => true,
            NodeState::Failed { due, at, .. } => *due || (!always && stale(*at)),
            NodeState::Succeeded(at) => !always && stale(*at),
            NodeState::InFlight => false,
        };
        if !due || slots == 0 {
            continue;
        }
        if let NodeState::Failed { .. } = states[i].1 {
            *memory
                .retries
                .entry((job.uid.clone(), node.clone()))
                .or_default() += 1;
        }
        if let Some(doc) = world.images.get_mut(&node) {
            ask(doc, job, &name, &tag, now);
        }
        states[i].1 = NodeState::InFlight;
        slots -= 1;
    }
}

/// The counts, and the message and completion as OpenKruise writes them.
fn conclude(
    status: &mut ImagePullJobStatus,
    states: &[(String, NodeState)],
    always: bool,
    now: SystemTime,
) {
    count(status, states);
    let settled = states.iter().all(|(_, s)| match s {
        NodeState::Succeeded(_) => true,
        NodeState::Failed { left, .. } => !left,
        _ => false,
    });
    if always && !states.is_empty() && settled {
        status.completion_time = Some(format_time(now));
        status.message = Some(COMPLETED.to_string());
    } else if states.is_empty() {
        status.message = Some("no node matches the job's selector yet".to_string());
    } else {
        let done = f64::from(status.succeeded + status.failed);
        status.message = Some(format!(
            "job is running, progress {:.1}%",
            done * 100.0 / f64::from(status.desired.max(1))
        ));
    }
}

/// The wait before retry `spent + 1`.
fn backoff(config: &Config, spent: u32) -> Duration {
    config
        .retry_base
        .saturating_mul(1u32.checked_shl(spent).unwrap_or(u32::MAX))
}

/// A job past its deadline: every node that has not succeeded fails, and its pull is dropped.
fn past_deadline(
    now: SystemTime,
    mut status: ImagePullJobStatus,
    mut states: Vec<(String, NodeState)>,
) -> Spread {
    let mut claims = Vec::new();
    for (node, state) in &mut states {
        if matches!(state, NodeState::Succeeded(_)) {
            claims.push(node.clone());
            continue;
        }
        if !matches!(state, NodeState::Failed { .. }) {
            *state = NodeState::Failed {
                message: DEADLINE.to_string(),
                at: Some(now),
                left: false,
                due: false,
            };
        }
    }
    count(&mut status, &states);
    status.active = 0;
    status.completion_time = Some(format_time(now));
    status.message = Some(DEADLINE.to_string());
    Spread { status, claims }
}

/// The counts and failed nodes of `states`.
fn count(status: &mut ImagePullJobStatus, states: &[(String, NodeState)]) {
    let n = |f: fn(&NodeState) -> bool| {
        i32::try_from(states.iter().filter(|(_, s)| f(s)).count()).unwrap_or(i32::MAX)
    };
    status.desired = i32::try_from(states.len()).unwrap_or(i32::MAX);
    status.active = n(|s| *s == NodeState::InFlight);
    status.succeeded = n(|s| matches!(s, NodeState::Succeeded(_)));
    status.failed = n(|s| matches!(s, NodeState::Failed { .. }));
    status.failed_nodes = states
        .iter()
        .filter(|(_, s)| matches!(s, NodeState::Failed { .. }))
        .map(|(n, _)| n.clone())
        .collect();
}

/// The job's entry for `name:tag` in a NodeImage, if the job owns it.
fn entry<'a>(doc: &'a NodeImageDoc, name: &str, tag: &str, uid: &str) -> Option<&'a ImageTagSpec> {
    doc.spec
        .images
        .get(name)?
        .tags
        .iter()
        .find(|t| t.tag == tag && owned_by(t, uid))
}

/// Where the job is on the node of `doc`.
fn state_on(doc: &NodeImageDoc, name: &str, tag: &str, uid: &str) -> NodeState {
    let Some(entry) = entry(doc, name, tag, uid) else {
        return NodeState::Idle;
    };
    let status = doc
        .status
        .image_statuses
        .get(name)
        .and_then(|i| i.tags.iter().find(|s| s.tag == tag))
        .filter(|s| s.version == entry.version);
    let Some(s) = status else {
        return NodeState::InFlight;
    };
    let at = s.completion_time.as_deref().and_then(parse_time);
    match s.phase {
        ImagePullPhase::Succeeded => NodeState::Succeeded(at),
        ImagePullPhase::Failed => NodeState::Failed {
            message: s.message.clone().unwrap_or_default(),
            at,
            left: false,
            due: false,
        },
        ImagePullPhase::Waiting | ImagePullPhase::Pulling => NodeState::InFlight,
    }
}

/// The tag's pull policy and credentials as the job asks for them.
fn requested(
    job: &Job,
) -> (
    ImageTagPullPolicy,
    Option<ImagePullPolicy>,
    Vec<ReferenceObject>,
) {
    let t = &job.spec.template;
    let p = t.pull_policy.clone().unwrap_or_default();
    let policy = ImageTagPullPolicy {
        timeout_seconds: p.timeout_seconds,
        backoff_limit: p.backoff_limit,
        ttl_seconds_after_finished: None,
        active_deadline_seconds: None,
    };
    let secrets = t
        .pull_secrets
        .iter()
        .map(|s| ReferenceObject {
            namespace: Some(job.namespace.clone()),
            name: Some(s.clone()),
        })
        .collect();
    (policy, t.image_pull_policy, secrets)
}

/// Asks the node for the job's tag: a new entry, the job added as an owner, or (for a retry or
/// a re-check) a new version, which makes the agent pull again.
fn ask(doc: &mut NodeImageDoc, job: &Job, name: &str, tag: &str, now: SystemTime) {
    let last_version = doc
        .status
        .image_statuses
        .get(name)
        .and_then(|i| i.tags.iter().find(|s| s.tag == tag))
        .and_then(|s| s.version);
    let (policy, image_pull_policy, secrets) = requested(job);
    let image = doc.spec.images.entry(name.to_string()).or_default();
    let next = |v: Option<i64>| Some(v.max(last_version).unwrap_or(0) + 1);
    match image.tags.iter_mut().find(|t| t.tag == tag) {
        Some(entry) => {
            if !owned_by(entry, &job.uid) {
                entry
                    .owner_references
                    .push(tag_owner(&job.namespace, &job.name, &job.uid));
            }
            entry.version = next(entry.version);
        }
        None => image.tags.push(ImageTagSpec {
            tag: tag.to_string(),
            created_at: Some(format_time(now)),
            pull_policy: Some(policy),
            owner_references: vec![tag_owner(&job.namespace, &job.name, &job.uid)],
            version: next(None),
            image_pull_policy,
            pull_secrets: secrets,
        }),
    }
    doc.dirty = true;
}

/// Edits of the job's pull policy and secrets reach the tags it controls (its first owner).
fn follow_edits(doc: &mut NodeImageDoc, job: &Job, name: &str, tag: &str) {
    let (policy, image_pull_policy, secrets) = requested(job);
    let Some(entry) = doc
        .spec
        .images
        .get_mut(name)
        .and_then(|i| i.tags.iter_mut().find(|t| t.tag == tag))
    else {
        return;
    };
    let controls = entry
        .owner_references
        .first()
        .is_some_and(|r| r["uid"] == job.uid.as_str());
    if !controls {
        return;
    }
    let policy = Some(policy);
    if entry.pull_policy != policy
        || entry.image_pull_policy != image_pull_policy
        || entry.pull_secrets != secrets
    {
        entry.pull_policy = policy;
        entry.image_pull_policy = image_pull_policy;
        entry.pull_secrets = secrets;
        doc.dirty = true;
    }
}
