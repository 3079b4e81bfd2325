//! The agent against a control plane: heartbeats (where the plane wants them), reads its own
//! NodeImage (once a second, and whenever the plane says it changed), feeds its tags to the
//! engine, and writes the tags' statuses back. When the plane is away the engine keeps pulling
//! what it was last asked for; requests are retried with backoff and the status catches up when
//! it returns. [`ServerPlane`] is a slipway server as a plane: the agent registers its Node
//! there and creates its NodeImage.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};
use slipway_model::kinds::kruise::{NodeImageSpec, NodeImageStatus};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::engine::Engine;
use crate::node_image::{Wanted, auth_for, status, wanted};
use crate::plane::ControlPlane;
use crate::server::{Server, ServerError};
use crate::status::{TagSpec, TagStatus};

/// How the agent paces its talk with the server.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// How often the NodeImage is read (and the status written when it changed).
    pub poll: Duration,
    /// How often the node says it is alive.
    pub heartbeat: Duration,
    /// The longest wait between attempts while the server is away.
    pub backoff_cap: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            poll: Duration::from_secs(1),
            heartbeat: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

/// The node as it registers: name, labels, and a `Ready` condition with this heartbeat.
pub fn node_object(name: &str, labels: &BTreeMap<String, String>) -> Value {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": name, "labels": labels },
        "status": { "conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "slipway agent is posting ready status",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }]},
    })
}

/// Registers the node; the first contact, so an unreachable server is said at start.
pub async fn register(
    server: &Server,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), ServerError> {
    server.put_node(&node_object(name, labels)).await?;
    if server.node_image(name).await?.is_none() {
        server.create_node_image(name).await?;
    }
    Ok(())
}

/// A slipway server as the plane of node `name` (with `labels`), whose agent registers it.
#[derive(Debug, Clone)]
pub struct ServerPlane {
    server: Server,
    name: String,
    labels: BTreeMap<String, String>,
}

impl ServerPlane {
    /// The plane of node `name` on `server`.
    pub fn new(server: Server, name: String, labels: BTreeMap<String, String>) -> ServerPlane {
        ServerPlane {
            server,
            name,
            labels,
        }
    }
}

#[async_trait]
impl ControlPlane for ServerPlane {
    type Error = ServerError;

    fn location(&self) -> String {
        format!("the server at {}", self.server.url())
    }

    async fn heartbeat(&self) -> Result<(), ServerError> {
        let node = node_object(&self.name, &self.labels);
        if !self.server.put_node_status(&node).await? {
            self.server.put_node(&node).await?;
        }
        Ok(())
    }

    async fn node_image(&self) -> Result<Option<Value>, ServerError> {
        self.server.node_image(&self.name).await
    }

    async fn node_image_missing(&self) -> Result<(), ServerError> {
        self.server.create_node_image(&self.name).await
    }

    async fn write_status(&self, object: &Value) -> Result<(), ServerError> {
        self.server.put_node_image_status(object).await
    }

    async fn pull_secret(&self, ns: &str, name: &str) -> Result<Option<Vec<u8>>, ServerError> {
        self.server.pull_secret(&self.name, ns, name).await
    }
}

/// What the loop keeps between rounds.
struct Agent<P> {
    plane: P,
    config: FollowConfig,
    desired: watch::Sender<Vec<TagSpec>>,
    wanted: Vec<Wanted>,
    latest: BTreeMap<String, TagStatus>,
    secrets: HashMap<(String, String), Vec<u8>>,
    written: Option<NodeImageStatus>,
    next_beat: Instant,
    /// The NodeImage as last read, which status writes go over.
    object: Option<Value>,
}

/// Follows the node's NodeImage on `plane` until the process ends, reporting every status to
/// `report`.
pub async fn follow<P: ControlPlane>(
    engine: Engine,
    plane: P,
    config: FollowConfig,
    mut report: impl FnMut(&TagStatus),
) {
    let (desired, desired_rx) = watch::channel(Vec::new());
    let (tx, mut statuses) = mpsc::unbounded_channel();
    let engine = tokio::spawn(engine.run(desired_rx, tx));
    let mut agent = Agent {
        plane,
        desired,
        wanted: Vec::new(),
        latest: BTreeMap::new(),
        secrets: HashMap::new(),
        written: None,
        next_beat: Instant::now(),
        object: None,
        config,
    };
    let mut ticks = tokio::time::interval(agent.config.poll);
    let mut retry_at = Instant::now();
    let mut failures = 0u32;
    loop {
        tokio::select! {
            s = statuses.recv() => match s {
                Some(s) => {
                    report(&s);
                    let moved = agent.latest.get(&s.image).is_none_or(|o| o.phase != s.phase);
                    agent.latest.insert(s.image.clone(), s);
                    // A new phase is told at once (bytes wait for the next round), unless the
                    // server is away.
                    if moved && Instant::now() >= retry_at {
                        let _ = agent.flush().await;
                    }
                    continue;
                }
                None => break,
            },
            _ = ticks.tick() => {}
            () = agent.plane.changed() => {}
        }
        if Instant::now() < retry_at {
            continue;
        }
        match agent.round().await {
            Ok(()) => {
                if failures > 0 {
                    tracing::warn!("{} answers again", agent.plane.location());
                }
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                // Never longer than a heartbeat: a server that returns hears from the node
                // before it counts the node as gone.
                let wait = agent
                    .config
                    .poll
                    .saturating_mul(1u32 << failures.min(6))
                    .min(agent.config.backoff_cap)
                    .min(agent.config.heartbeat);
                tracing::warn!("{}; trying again in {wait:?}", chain(&e));
                eprintln!("agent: {}; trying again in {}s", chain(&e), wait.as_secs());
                retry_at = Instant::now() + wait;
            }
        }
    }
    let _ = engine.await;
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out = format!("{out}: {c}");
        cause = c.source();
    }
    out
}

impl<P: ControlPlane> Agent<P> {
    /// One round: heartbeat when due, read the NodeImage, feed the engine, write the status.
    async fn round(&mut self) -> Result<(), P::Error> {
        if Instant::now() >= self.next_beat {
            self.plane.heartbeat().await?;
            self.next_beat = Instant::now() + self.config.heartbeat;
        }
        let Some(mut object) = self.plane.node_image().await? else {
            self.plane.node_image_missing().await?;
            self.written = None;
            self.object = None;
            // No NodeImage asks for nothing: pulls under way stop.
            if !self.wanted.is_empty() {
                self.feed(&[]).await;
                self.wanted.clear();
            }
            return Ok(());
        };
        let spec: NodeImageSpec =
            serde_json::from_value(object["spec"].clone()).unwrap_or_default();
        let wanted = wanted(&spec);
        if wanted != self.wanted {
            // Credentials are read again with every change, so a rotated Secret is picked up.
            self.secrets.clear();
            self.feed(&wanted).await;
            self.wanted = wanted;
        }
        let images: Vec<&str> = self.wanted.iter().map(|w| w.spec.image.as_str()).collect();
        self.latest
            .retain(|image, _| images.contains(&image.as_str()));
        let stored: Option<NodeImageStatus> = serde_json::from_value(object["status"].clone()).ok();
        if stored != self.written {
            // Written by someone else, or lost: write it again.
            self.written = None;
        }
        if let Some(m) = object.as_object_mut() {
            m.remove("status");
        }
        self.object = Some(object);
        self.flush().await
    }

    /// Writes the status when it changed since it was last written.
    async fn flush(&mut self) -> Result<(), P::Error> {
        let new = status(&self.wanted, &self.latest);
        let Some(object) = &self.object else {
            return Ok(());
        };
        if self.written.as_ref() == Some(&new) {
            return Ok(());
        }
        let mut object = object.clone();
        object["status"] = serde_json::to_value(&new).unwrap_or(Value::Null);
        self.plane.write_status(&object).await?;
        self.written = Some(new);
        Ok(())
    }

    /// Hands the wanted tags to the engine, with credentials from the Secrets they name.
    async fn feed(&mut self, wanted: &[Wanted]) {
        let mut specs = Vec::new();
        for w in wanted {
            let mut configs = Vec::new();
            for (ns, name) in &w.secrets {
                if let Some(c) = self.secret(ns, name).await {
                    configs.push(c);
                }
            }
            let mut spec = w.spec.clone();
            spec.auth = auth_for(&spec.image, &configs);
            specs.push(spec);
        }
        self.desired.send_replace(specs);
    }

    /// A pull Secret's Docker config, fetched once; a Secret that cannot be read is said and
    /// the pull goes without it (the registry's refusal then says why).
    async fn secret(&mut self, ns: &str, name: &str) -> Option<Vec<u8>> {
        let key = (ns.to_string(), name.to_string());
        if let Some(c) = self.secrets.get(&key) {
            return Some(c.clone());
        }
        let hostile = |s: &str| slipway_model::names::dns_subdomain_problem(s).is_some();
        if hostile(ns) || hostile(name) {
            eprintln!("agent: ignoring the pull secret with an invalid name");
            return None;
        }
        match self.plane.pull_secret(ns, name).await {
            Ok(Some(c)) => {
                self.secrets.insert(key, c.clone());
                Some(c)
            }
            Ok(None) => {
                eprintln!(
                    "agent: pull secret {ns}/{name} is not on {}",
                    self.plane.location()
                );
                None
            }
            Err(e) => {
                eprintln!("agent: {}", chain(&e));
                None
            }
        }
    }
}
