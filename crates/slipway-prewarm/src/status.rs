//! What the engine is asked to pull (a tag's spec) and what it reports back (a tag's status).

use std::time::{Duration, SystemTime};

use crate::auth::RegistryAuth;

/// When to pull an image that the node already has (Kubernetes' `imagePullPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull every time the tag is (re)started.
    #[default]
    Always,
    /// Pull only when the runtime does not have the image.
    IfNotPresent,
}

/// One image this node should have, with how to pull it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpec {
    /// The image reference as written (`registry/repo:tag` or `@digest`).
    pub image: String,
    /// When to pull.
    pub policy: PullPolicy,
    /// Bound on one attempt (OpenKruise's `timeoutSeconds`, 600 by default).
    pub timeout: Duration,
    /// Retries after the first failed attempt (OpenKruise's `backoffLimit`, 3 by default).
    pub backoff_limit: u32,
    /// Credentials for the image's registry, if any.
    pub auth: Option<RegistryAuth>,
    /// The request's version (a NodeImage tag's `version`): a new one starts the tag over.
    pub version: i64,
}

impl TagSpec {
    /// A spec with OpenKruise's defaults: `Always`, 600 s, 3 retries, no credentials.
    pub fn new(image: impl Into<String>) -> Self {
        TagSpec {
            image: image.into(),
            policy: PullPolicy::Always,
            timeout: Duration::from_secs(600),
            backoff_limit: 3,
            auth: None,
            version: 0,
        }
    }
}

/// Where a tag is (OpenKruise's NodeImage tag phases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Queued behind the per-node limit, or waiting out a retry's backoff.
    Waiting,
    /// An attempt is running.
    Pulling,
    /// The node has the image.
    Succeeded,
    /// Every attempt failed, or the reference is unusable.
    Failed,
}

impl Phase {
    /// The phase as NodeImage status spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "Waiting",
            Phase::Pulling => "Pulling",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }

    /// Whether the tag is done (until its spec changes).
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes of an image in the node's content store, against the image's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes written so far (finished blobs and the offsets of blobs being written).
    pub completed: u64,
    /// Bytes of the manifest's config and layers (compressed, as the registry serves them).
    pub total: u64,
}

/// The status of one tag on this node, as the engine reports it after every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagStatus {
    /// The image reference, as in its spec.
    pub image: String,
    /// Where it is.
    pub phase: Phase,
    /// The runtime's image id (`sha256:…`) once pulled.
    pub image_id: Option<String>,
    /// The runtime's own words on the last failure or retry (never a credential).
    pub message: Option<String>,
    /// Bytes so far, while pulling and at the end, where the content store shows them.
    pub progress: Option<Progress>,
    /// Attempts started so far.
    pub attempts: u32,
    /// When the current (or last) attempt started.
    pub start_time: Option<SystemTime>,
    /// When the tag reached a final phase.
    pub completion_time: Option<SystemTime>,
    /// The version of the spec this status answers.
    pub version: i64,
}

impl TagStatus {
    /// A tag that has not started.
    pub fn waiting(image: &str) -> Self {
        TagStatus {
            image: image.to_string(),
            phase: Phase::Waiting,
            image_id: None,
            message: None,
            progress: None,
            attempts: 0,
            start_time: None,
            completion_time: None,
            version: 0,
        }
    }
}
