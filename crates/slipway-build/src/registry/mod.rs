//! Pull and push through OCI registries: Docker's `config.json` credentials, token auth,
//! rewrites and mirrors, existence checks and cross-repository mounts, retries.

pub mod auth;
mod pull;
mod push;
mod transport;

use std::collections::HashMap;
use std::sync::Mutex;

pub use crate::registry::auth::Credentials;
pub use crate::registry::transport::Operation;
use crate::store::Digest;
use slipway_model::reference::{BadReference, RegistryConfig};

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Rewrite rules and mirrors applied to pulls.
    pub config: RegistryConfig,
    /// Credentials per registry.
    pub credentials: Credentials,
    /// Plain HTTP for every push (Kaniko's `--insecure`).
    pub insecure: bool,
    /// Plain HTTP for every pull (`--insecure-pull`).
    pub insecure_pull: bool,
    /// Registries reached over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// Accept any TLS certificate (`--skip-tls-verify`).
    pub skip_tls_verify: bool,
    /// Extra attempts for a blob or manifest upload after a 5xx or network error.
    pub push_retry: u32,
}

/// Why a registry operation failed; each reads after "failed to ".
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference does not parse.
    #[error("use the image reference: {0}")]
    Reference(#[from] BadReference),
    /// The registry answered with an error.
    #[error("{op} {reference}: the registry answered {}{message}", status.map(|s| format!("{s}: ")).unwrap_or_default())]
    Refused {
        /// Pull or push.
        op: Operation,
        /// The reference.
        reference: String,
        /// The HTTP status, when known.
        status: Option<u16>,
        /// The registry's own words.
        message: String,
    },
    /// The registry refused access (401/403).
    #[error(
        "{op} {registry}/{repository}: access denied ({}{message}); tried {tried}",
        status.map(|s| format!("{s} ")).unwrap_or_default()
    )]
    Denied {
        /// Pull or push.
        op: Operation,
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// The HTTP status, when known.
        status: Option<u16>,
        /// The registry's own words.
        message: String,
        /// Which credentials were used (never the secret).
        tried: String,
    },
    /// The registry could not be reached or spoke no registry protocol.
    #[error("{op} {reference}")]
    Transport {
        /// Pull or push.
        op: Operation,
        /// The reference.
        reference: String,
        /// The cause.
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    /// An index lists no image for the platform.
    #[error("pull {reference}: it has no image for {platform} (it has {available})")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms listed.
        available: String,
    },
    /// The registry's manifest or config is not an image this builder reads.
    #[error("pull {reference}: {why}")]
    BadImage {
        /// The reference.
        reference: String,
        /// What is wrong.
        why: String,
    },
    /// Downloaded bytes do not match their digest.
    #[error("pull {digest} from {reference}: the bytes hash to {actual}")]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// The expected digest.
        digest: Digest,
        /// What arrived.
        actual: Digest,
    },
    /// A local file could not be read or written.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A docker `config.json` is malformed.
    #[error("read a docker config.json")]
    DockerConfig {
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The image could not be serialized.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

/// A registry client for one build: clients per host and scheme (their tokens are reused),
/// and where each pulled blob came from (for cross-repository mounts on push).
pub struct Registry {
    options: RegistryOptions,
    clients: Mutex<HashMap<(String, bool), oci_client::Client>>,
    sources: Mutex<HashMap<Digest, Vec<(String, String)>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A client with `options`; installs the TLS crypto provider once per process.
    pub fn new(options: RegistryOptions) -> Registry {
        transport::install_crypto_provider();
        Registry {
            options,
            clients: Mutex::new(HashMap::new()),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `digest` can be found in `registry`/`repository`.
    fn remember_source(&self, digest: &Digest, registry: &str, repository: &str) {
        if let Ok(mut s) = self.sources.lock() {
            let list = s.entry(digest.clone()).or_default();
            let pair = (registry.to_string(), repository.to_string());
            if !list.contains(&pair) {
                list.push(pair);
            }
        }
    }

    /// A repository on `registry` known to hold `digest`.
    fn source_on(&self, digest: &Digest, registry: &str) -> Option<String> {
        let s = self.sources.lock().ok()?;
        s.get(digest)?
            .iter()
            .find(|(r, _)| r == registry)
            .map(|(_, repo)| repo.clone())
    }
}
