//! Registry credentials in Docker's config JSON form (`~/.docker/config.json`, and the
//! `.dockerconfigjson` of Kubernetes pull secrets).

use base64::Engine as _;
use serde_json::Value;

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Registry host as written in the config, normalised (`index.docker.io` → `docker.io`).
    pub registry: String,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// OAuth identity token.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, even in debug logs.
        f.debug_struct("Credential")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Not JSON.
    #[error("is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An `auth` field that is not base64 of `user:password`.
    #[error("the `auth` of `{0}` is not base64 of `user:password`")]
    BadAuth(String),
}

/// Normalises a config key (`https://index.docker.io/v1/`, `host:5000`, `https://host/v2/`) to a host.
pub fn registry_host(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        h => h.to_string(),
    }
}

/// Parses a Docker config (`{"auths": {...}}`) or a legacy `.dockercfg` (the map alone).
pub fn parse(json: &[u8]) -> Result<Vec<Credential>, AuthError> {
    let v: Value = serde_json::from_slice(json)?;
    let auths = match v.get("auths") {
        Some(a) => a.clone(),
        None if v.get("credHelpers").is_some() || v.get("credsStore").is_some() => {
            Value::Object(Default::default())
        }
        None => v,
    };
    let mut out = Vec::new();
    for (key, entry) in auths.as_object().into_iter().flatten() {
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (mut username, mut password) = (field("username"), field("password"));
        if let Some(auth) = field("auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| AuthError::BadAuth(key.clone()))?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| AuthError::BadAuth(key.clone()))?;
            username = Some(u.to_string());
            password = Some(p.to_string());
        }
        out.push(Credential {
            registry: registry_host(key),
            username,
            password,
            identity_token: field("identitytoken"),
        });
    }
    Ok(out)
}

/// The first credential for `registry` among `creds`.
pub fn lookup<'a>(creds: &'a [Credential], registry: &str) -> Option<&'a Credential> {
    let want = registry_host(registry);
    creds.iter().find(|c| c.registry == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms() {
        let cfg = br#"{"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"},
                       "127.0.0.1:5001": {"username": "ci", "password": "s3"}}}"#;
        let creds = parse(cfg).expect("valid");
        let hub = lookup(&creds, "docker.io").expect("hub");
        assert_eq!(hub.username.as_deref(), Some("u"));
        assert_eq!(hub.password.as_deref(), Some("p"));
        let local = lookup(&creds, "127.0.0.1:5001").expect("local");
        assert_eq!(local.password.as_deref(), Some("s3"));
        assert!(!format!("{local:?}").contains("s3"), "debug output leaks");
        let legacy = parse(br#"{"quay.io": {"auth": "dTpw"}}"#).expect("legacy");
        assert_eq!(legacy[0].registry, "quay.io");
        assert!(matches!(
            parse(br#"{"auths": {"x": {"auth": "***"}}}"#),
            Err(AuthError::BadAuth(_))
        ));
        assert!(parse(b"nope").is_err());
    }
}
