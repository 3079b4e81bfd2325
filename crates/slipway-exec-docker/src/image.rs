//! Images: pull policy, rewrites and mirrors, credentials, progress, and the image config
//! (user, entrypoint) read once per image and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use slipway_engine::{EventSink, ExecEvent, PullProgress};

use crate::auth::{self, Credential};
use crate::reference::{Reference, RegistryConfig};

/// What a step needs from its image's config.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// `USER`, as `name`, `uid` or `uid:gid`.
    pub user: Option<String>,
    /// `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// `CMD`.
    pub cmd: Vec<String>,
}

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The reference containers are created from.
    pub reference: String,
    /// Its config.
    pub config: ImageConfig,
}

/// Why an image is not available; the message reads after "failed to pull".
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PullError(pub String);

/// One image's resolution, shared by everyone asking for it; empty until a pull succeeds.
type Slot = Arc<tokio::sync::Mutex<Option<Ready>>>;

/// Kubernetes' pull policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Policy {
    Always,
    IfNotPresent,
    Never,
}

/// Pulls and inspects images for one executor; each image is pulled at most once per policy
/// while the executor lives, even when many TaskRuns ask at once.
#[derive(Debug)]
pub struct Images {
    docker: Docker,
    registry: RegistryConfig,
    creds: Vec<Credential>,
    ready: Mutex<HashMap<(String, Policy), Slot>>,
}

impl Images {
    /// An image manager using `registry` rules and `creds` from the daemon's config file.
    pub fn new(docker: Docker, registry: RegistryConfig, creds: Vec<Credential>) -> Self {
        Images {
            docker,
            registry,
            creds,
            ready: Mutex::new(HashMap::new()),
        }
    }

    /// Makes `image` available under `policy` (Kubernetes' default when `None`), pulling with
    /// `secrets` (tried before the configured credentials) and reporting progress.
    pub async fn ensure(
        &self,
        image: &str,
        policy: Option<&str>,
        secrets: &[Credential],
        events: &EventSink,
    ) -> Result<Ready, PullError> {
        let candidates = self
            .registry
            .candidates(image)
            .map_err(|e| PullError(e.to_string()))?;
        // The default policy follows the reference as written: a digest pin stays IfNotPresent
        // even when a rewrite turns it into a tag.
        let written = Reference::parse(image).map_err(|e| PullError(e.to_string()))?;
        let policy = match policy {
            Some("Always") => Policy::Always,
            Some("IfNotPresent") => Policy::IfNotPresent,
            Some("Never") => Policy::Never,
            Some(other) => {
                return Err(PullError(format!(
                    "imagePullPolicy `{other}` is not Always, IfNotPresent or Never"
                )));
            }
            None if written.floating() => Policy::Always,
            None => Policy::IfNotPresent,
        };
        let slot = {
            let mut map = self
                .ready
                .lock()
                .map_err(|_| PullError("the image cache is poisoned".into()))?;
            map.entry((image.to_string(), policy)).or_default().clone()
        };
        // One pull per image at a time; others wait and reuse its result.
        let mut guard = slot.lock().await;
        if let Some(r) = guard.as_ref() {
            return Ok(r.clone());
        }
        let ready = self.resolve(&candidates, policy, secrets, events).await?;
        *guard = Some(ready.clone());
        Ok(ready)
    }

    async fn resolve(
        &self,
        candidates: &[Reference],
        policy: Policy,
        secrets: &[Credential],
        events: &EventSink,
    ) -> Result<Ready, PullError> {
        if policy != Policy::Always {
            for c in candidates {
                if let Some(config) = self.inspect(&c.to_string()).await {
                    return Ok(Ready {
                        reference: c.to_string(),
                        config,
                    });
                }
            }
            if policy == Policy::Never {
                return Err(PullError(format!(
                    "image `{}` is not present and imagePullPolicy is Never (ErrImageNeverPull)",
                    candidates
                        .last()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )));
            }
        }
        let mut errors = Vec::new();
        for c in candidates {
            match self.pull(c, secrets, events).await {
                Ok(()) => {
                    let config = self.inspect(&c.to_string()).await.ok_or_else(|| {
                        PullError(format!("`{c}` was pulled but cannot be inspected"))
                    })?;
                    return Ok(Ready {
                        reference: c.to_string(),
                        config,
                    });
                }
                Err(e) if candidates.len() == 1 => errors.push(e),
                Err(e) => errors.push(format!("{c}: {e}")),
            }
        }
        Err(PullError(errors.join("; ")))
    }

    async fn inspect(&self, reference: &str) -> Option<ImageConfig> {
        let inspected = self.docker.inspect_image(reference).await.ok()?;
        let c = inspected.config.unwrap_or_default();
        Some(ImageConfig {
            user: c.user.filter(|u| !u.is_empty()),
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
        })
    }

    async fn pull(
        &self,
        r: &Reference,
        secrets: &[Credential],
        events: &EventSink,
    ) -> Result<(), String> {
        let credentials = auth::lookup(secrets, &r.registry)
            .or_else(|| auth::lookup(&self.creds, &r.registry))
            .map(|c| DockerCredentials {
                username: c.username.clone(),
                password: c.password.clone(),
                identitytoken: c.identity_token.clone(),
                serveraddress: Some(c.registry.clone()),
                ..DockerCredentials::default()
            });
        let options = CreateImageOptionsBuilder::default()
            .from_image(&r.name())
            .tag(&r.pull_tag())
            .build();
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
        let mut last = Instant::now() - Duration::from_secs(1);
        let report = |layers: &HashMap<String, (u64, u64)>, finished: bool, failed: bool| {
            let (done, total) = layers
                .values()
                .fold((0, 0), |(d, t), (ld, lt)| (d + ld, t + lt));
            events.send(ExecEvent::Pull(PullProgress {
                image: r.to_string(),
                done,
                total,
                finished,
                failed,
            }))
        };
        report(&layers, false, false).await;
        let mut outcome = Ok(());
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let (Some(id), Some(status)) = (info.id, info.status) else {
                        continue;
                    };
                    let entry = layers.entry(id).or_default();
                    if let Some(p) = info.progress_detail
                        && status == "Downloading"
                    {
                        entry.0 = p.current.unwrap_or(0).max(0) as u64;
                        entry.1 = p.total.unwrap_or(0).max(0) as u64;
                    } else if matches!(
                        status.as_str(),
                        "Download complete" | "Pull complete" | "Already exists"
                    ) {
                        entry.0 = entry.1;
                    }
                    // Layers without a known size yet would read as "0 of 0" again.
                    if last.elapsed() >= Duration::from_millis(100)
                        && layers.values().any(|(_, t)| *t > 0)
                    {
                        last = Instant::now();
                        report(&layers, false, false).await;
                    }
                }
                Err(e) => {
                    outcome = Err(pull_message(e));
                    break;
                }
            }
        }
        report(&layers, true, outcome.is_err()).await;
        outcome
    }
}

/// The registry's own words, without bollard's wrapping.
fn pull_message(e: bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match e {
        E::DockerStreamError { error } => error,
        E::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}
