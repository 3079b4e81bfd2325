//! Registry credentials from Docker's `config.json` (and Kaniko's copy of it), the same file
//! format as a `kubernetes.io/dockerconfigjson` Secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::registry::RegistryError;

/// Credentials per registry host; earlier sources win. Never prints a secret.
#[derive(Clone, Default)]
pub struct Credentials {
    entries: Vec<Entry>,
    /// Files looked at, for "no credentials" diagnostics.
    searched: Vec<String>,
}

#[derive(Clone)]
struct Entry {
    host: String,
    secret: Secret,
    source: String,
}

/// What a registry is shown.
#[derive(Clone)]
pub(crate) enum Secret {
    /// User and password (Basic, or exchanged for a token).
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<(&str, &str)> = self
            .entries
            .iter()
            .map(|e| (e.host.as_str(), e.source.as_str()))
            .collect();
        f.debug_struct("Credentials")
            .field("hosts", &hosts)
            .finish()
    }
}

/// One `auths` entry of a config.json.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ConfigFile {
    auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
}

/// Kaniko's default `DOCKER_CONFIG` location, read too so Kaniko's mounts keep working.
const KANIKO_CONFIG: &str = "/kaniko/.docker/config.json";

impl Credentials {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, then Kaniko's
    /// `/kaniko/.docker/config.json`; unreadable or absent files are skipped (logged).
    pub fn from_env() -> Credentials {
        let primary = match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
                .unwrap_or_else(|| PathBuf::from(".docker/config.json")),
        };
        let mut out = Credentials::default();
        for path in [primary, PathBuf::from(KANIKO_CONFIG)] {
            if out.searched.contains(&path.display().to_string()) {
                continue;
            }
            out.merge(Credentials::from_file(&path));
        }
        out
    }

    /// Reads one config.json; a missing or malformed file gives no credentials (logged).
    pub fn from_file(path: &Path) -> Credentials {
        let shown = path.display().to_string();
        let mut creds = match std::fs::read(path) {
            Ok(bytes) => match Credentials::from_docker_config_json(&bytes) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(path = %shown, error = %e, "ignoring a docker config");
                    Credentials::default()
                }
            },
            Err(_) => Credentials::default(),
        };
        for e in &mut creds.entries {
            e.source.clone_from(&shown);
        }
        creds.searched = vec![shown];
        creds
    }

    /// Parses a Docker `config.json` (also the body of a `kubernetes.io/dockerconfigjson`
    /// Secret). Credential helpers are not run: they are logged and skipped.
    pub fn from_docker_config_json(bytes: &[u8]) -> Result<Credentials, RegistryError> {
        let file: ConfigFile = serde_json::from_slice(bytes)
            .map_err(|source| RegistryError::DockerConfig { source })?;
        if let Some(store) = &file.creds_store {
            tracing::debug!(
                store,
                "credsStore is not supported; its credentials are not used"
            );
        }
        for (host, helper) in &file.cred_helpers {
            tracing::debug!(host, helper, "credHelpers are not supported; skipped");
        }
        let mut entries = Vec::new();
        for (key, a) in file.auths {
            let host = normalize_host(&key);
            let basic = match (&a.auth, &a.username, &a.password) {
                (Some(auth), _, _) if !auth.is_empty() => decode_auth(auth),
                (_, Some(u), Some(p)) => Some((u.clone(), p.clone())),
                _ => None,
            };
            let secret = match (a.identitytoken.filter(|t| !t.is_empty()), basic) {
                // An identity token is a refresh token; the registries that issue one
                // (Azure's) take it as the password of the entry's user.
                (Some(token), basic) => Secret::Basic {
                    user: a
                        .username
                        .or(basic.map(|(u, _)| u))
                        .unwrap_or_else(|| "<token>".to_string()),
                    password: token,
                },
                (None, Some((user, password))) => Secret::Basic { user, password },
                (None, None) => continue,
            };
            entries.push(Entry {
                host,
                secret,
                source: "a docker config.json".to_string(),
            });
        }
        Ok(Credentials {
            entries,
            searched: Vec::new(),
        })
    }

    /// Adds `other`'s credentials after these (these win for the same host).
    pub fn merge(&mut self, other: Credentials) {
        self.entries.extend(other.entries);
        self.searched.extend(other.searched);
    }

    /// The secret for `host` and where it came from.
    pub(crate) fn lookup(&self, host: &str) -> Option<(&Secret, &str)> {
        let host = normalize_host(host);
        self.entries
            .iter()
            .find(|e| e.host == host)
            .map(|e| (&e.secret, e.source.as_str()))
    }

    /// "credentials for H from F" or "no credentials for H (looked in …)", for errors.
    pub(crate) fn describe(&self, host: &str) -> String {
        match self.lookup(host) {
            Some((_, source)) => format!("credentials for {host} from {source}"),
            None if self.searched.is_empty() => format!("no credentials for {host}"),
            None => format!(
                "no credentials for {host} (looked in {})",
                self.searched.join(", ")
            ),
        }
    }
}

/// `auth` is base64 of `user:password`.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// A config key (`https://index.docker.io/v1/`, `http://host:5000`, `host:5000/v2/`) or a
/// reference's registry → the host as references name it; Docker Hub's aliases → `docker.io`.
pub(crate) fn normalize_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(c: &Credentials, host: &str) -> Option<(String, String)> {
        c.lookup(host)
            .map(|(Secret::Basic { user, password }, _)| (user.clone(), password.clone()))
    }

    #[test]
    fn reads_auth_username_password_and_identity_tokens() {
        let json = br#"{
            "auths": {
                "https://index.docker.io/v1/": {"auth": "dTE6cDE="},
                "http://127.0.0.1:5001": {"username": "u2", "password": "p2"},
                "acr.example.com": {"auth": "MDAwMDAwMDAtMDAwMDo=", "identitytoken": "tok"},
                "empty.example.com": {}
            },
            "credsStore": "desktop",
            "credHelpers": {"gcr.io": "gcloud"}
        }"#;
        let c = Credentials::from_docker_config_json(json).expect("parse");
        assert_eq!(basic(&c, "docker.io"), Some(("u1".into(), "p1".into())));
        assert_eq!(
            basic(&c, "127.0.0.1:5001"),
            Some(("u2".into(), "p2".into()))
        );
        assert_eq!(
            basic(&c, "acr.example.com"),
            Some(("00000000-0000".into(), "tok".into()))
        );
        assert_eq!(basic(&c, "empty.example.com"), None);
        assert_eq!(basic(&c, "gcr.io"), None);
    }

    #[test]
    fn earlier_sources_win_and_nothing_prints_a_secret() {
        let a = Credentials::from_docker_config_json(
            br#"{"auths":{"r.io":{"username":"a","password":"secret-a"}}}"#,
        )
        .expect("a");
        let b = Credentials::from_docker_config_json(
            br#"{"auths":{"r.io":{"username":"b","password":"secret-b"}}}"#,
        )
        .expect("b");
        let mut c = a;
        c.merge(b);
        assert_eq!(basic(&c, "r.io"), Some(("a".into(), "secret-a".into())));
        let shown = format!("{c:?} {}", c.describe("r.io"));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn malformed_config_is_an_error() {
        let err = Credentials::from_docker_config_json(b"{not json").expect_err("bad");
        insta::assert_snapshot!(err.to_string(), @"read a docker config.json");
    }
}
