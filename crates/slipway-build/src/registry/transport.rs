//! Reaching a registry: the TLS provider, plain HTTP where allowed, one client per host,
//! credentials, turning the client's errors into [`RegistryError`]s, and retries.

use std::net::IpAddr;
use std::time::Duration;

use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciEnvelope};
use oci_client::secrets::RegistryAuth;
use slipway_model::reference::Reference;

use crate::registry::auth::Secret;
use crate::registry::{Registry, RegistryError};

/// Which way an operation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reading an image.
    Pull,
    /// Writing one.
    Push,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Pull => "pull",
            Operation::Push => "push to",
        })
    }
}

/// Installs aws-lc-rs as rustls' process-wide provider; a provider already installed (by
/// this or another part of the process) is fine.
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// True for `localhost`, 127.0.0.0/8 and `::1`, with or without a port.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Registry {
    /// True when `host` is reached over plain HTTP for `op`.
    pub(crate) fn plain_http(&self, host: &str, op: Operation) -> bool {
        let o = &self.options;
        is_loopback(host)
            || o.insecure_registries.iter().any(|r| r == host)
            || match op {
                Operation::Pull => o.insecure_pull,
                Operation::Push => o.insecure,
            }
    }

    /// The (shared) client for `host`; an error (not oci-client's panicking fallback) when
    /// no client can be made, e.g. without CA certificates (set `SSL_CERT_DIR`).
    pub(crate) fn client(
        &self,
        host: &str,
        op: Operation,
    ) -> Result<Client, oci_client::errors::OciDistributionError> {
        let plain = self.plain_http(host, op);
        let key = (host.to_string(), plain);
        let make = || {
            Client::try_from(ClientConfig {
                protocol: if plain {
                    ClientProtocol::Http
                } else {
                    ClientProtocol::Https
                },
                accept_invalid_certificates: self.options.skip_tls_verify,
                platform_resolver: None,
                connect_timeout: Some(Duration::from_secs(30)),
                read_timeout: Some(Duration::from_secs(300)),
                ..ClientConfig::default()
            })
        };
        let Ok(mut map) = self.clients.lock() else {
            return make();
        };
        if let Some(client) = map.get(&key) {
            return Ok(client.clone());
        }
        let client = make()?;
        map.insert(key, client.clone());
        Ok(client)
    }

    /// What to show `host`.
    pub(crate) fn auth(&self, host: &str) -> RegistryAuth {
        match self.options.credentials.lookup(host) {
            Some((Secret::Basic { user, password }, _)) => {
                RegistryAuth::Basic(user.clone(), password.clone())
            }
            None => RegistryAuth::Anonymous,
        }
    }

    /// Turns a client error for `r` into the registry's own words.
    pub(crate) fn error(
        &self,
        op: Operation,
        r: &Reference,
        e: OciDistributionError,
    ) -> RegistryError {
        let denied = |status: Option<u16>, message: String| RegistryError::Denied {
            op,
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            status,
            message,
            tried: self.options.credentials.describe(&r.registry),
        };
        let refused = |status: Option<u16>, message: String| RegistryError::Refused {
            op,
            reference: r.to_string(),
            status,
            message,
        };
        match e {
            OciDistributionError::UnauthorizedError { .. } => {
                denied(Some(401), "Unauthorized: authentication required".into())
            }
            OciDistributionError::AuthenticationFailure(m) => denied(None, words(&m)),
            OciDistributionError::ServerError { code, message, .. }
                if code == 401 || code == 403 =>
            {
                denied(Some(code), words(&message))
            }
            OciDistributionError::ServerError { code, message, .. } => {
                refused(Some(code), words(&message))
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let denial = envelope.errors.iter().any(|e| {
                    use oci_client::errors::OciErrorCode as C;
                    matches!(e.code, C::Unauthorized | C::Denied)
                });
                if denial {
                    denied(None, envelope_words(&envelope))
                } else {
                    refused(None, envelope_words(&envelope))
                }
            }
            OciDistributionError::ImageManifestNotFoundError(m) => refused(None, m),
            // HEAD answers carry no body: the status is all the registry said.
            OciDistributionError::RequestError(e) if e.status().is_some() => {
                let status = e.status().map(|s| s.as_u16());
                let reason = e
                    .status()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_string();
                if matches!(status, Some(401 | 403)) {
                    denied(status, reason)
                } else {
                    refused(status, reason)
                }
            }
            source => RegistryError::Transport {
                op,
                reference: r.to_string(),
                source,
            },
        }
    }
}

/// `CODE: message` for each error in a registry's error envelope.
fn envelope_words(env: &OciEnvelope) -> String {
    let parts: Vec<String> = env
        .errors
        .iter()
        .map(|e| {
            let code = serde_json::to_value(&e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{code}: {}", e.message)
        })
        .collect();
    parts.join("; ")
}

/// A response body as words: the error envelope when it is one, else the text (trimmed).
fn words(body: &str) -> String {
    match serde_json::from_str::<OciEnvelope>(body) {
        Ok(env) if !env.errors.is_empty() => envelope_words(&env),
        _ => body.trim().chars().take(300).collect(),
    }
}

/// True for failures worth another attempt: 5xx, 429 and network errors.
pub(crate) fn retryable(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        OciDistributionError::RequestError(e) => e
            .status()
            .is_none_or(|s| s.is_server_error() || s.as_u16() == 429),
        OciDistributionError::IoError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == oci_client::errors::OciErrorCode::Toomanyrequests),
        _ => false,
    }
}

/// Runs `attempt` up to `1 + retries` times while it fails retryably, backing off
/// 0.5 s, 1 s, 2 s, … (at most 10 s).
pub(crate) async fn with_retries<T, F, Fut>(
    retries: u32,
    what: &str,
    mut attempt: F,
) -> Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
{
    let mut n = 0u32;
    loop {
        match attempt().await {
            Err(e) if n < retries && retryable(&e) => {
                let wait = Duration::from_millis(500u64.saturating_mul(1 << n.min(5)))
                    .min(Duration::from_secs(10));
                tracing::debug!(what, error = %e, attempt = n + 1, "retrying after {wait:?}");
                tokio::time::sleep(wait).await;
                n += 1;
            }
            r => return r,
        }
    }
}

/// The client's reference for `r`.
pub(crate) fn oci_ref(r: &Reference) -> oci_client::Reference {
    match &r.digest {
        Some(d) => {
            oci_client::Reference::with_digest(r.registry.clone(), r.repository.clone(), d.clone())
        }
        None => oci_client::Reference::with_tag(
            r.registry.clone(),
            r.repository.clone(),
            r.tag.clone().unwrap_or_else(|| "latest".to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1:5000",
            "[2001:db8::1]:443",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn registry_words_are_kept() {
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        assert_eq!(words(body), "MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(words("  plain text\n"), "plain text");
    }

    #[test]
    fn retries_only_what_may_pass_later() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: String::new(),
            message: String::new(),
        };
        assert!(retryable(&server(502)));
        assert!(retryable(&server(429)));
        assert!(!retryable(&server(404)));
        assert!(!retryable(&OciDistributionError::UnauthorizedError {
            url: String::new()
        }));
    }
}
