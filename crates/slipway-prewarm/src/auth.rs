//! Pull credentials: one registry's entry of a `kubernetes.io/dockerconfigjson` Secret (Docker's
//! config JSON), handed to the runtime as CRI's `AuthConfig`.

use base64::Engine as _;
use serde_json::Value;

/// Credentials for one registry. Never printed: `Debug` shows the registry and user only.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// The registry host the credentials are for (`127.0.0.1:5001`, `docker.io`).
    pub server_address: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// OAuth identity token (instead of a password).
    pub identity_token: String,
    /// Bearer token for the registry.
    pub registry_token: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("server_address", &self.server_address)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a Docker config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Not JSON (the parser's words never quote the input's values).
    #[error("failed to read the docker config: it is not JSON ({0})")]
    Json(#[source] serde_json::Error),
    /// An `auth` field that is not base64 of `user:password`.
    #[error(
        "failed to read the docker config: the `auth` of `{registry}` is not base64 of `user:password`"
    )]
    BadAuth {
        /// The entry's key.
        registry: String,
    },
}

/// Normalises a config key (`https://index.docker.io/v1/`, `host:5000`, `https://host/v2/`)
/// to a registry host as image references name it.
pub fn registry_host(key: &str) -> &str {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        h => h,
    }
}

impl RegistryAuth {
    /// A user name and password for `server_address`.
    pub fn basic(server_address: &str, username: &str, password: &str) -> Self {
        RegistryAuth {
            server_address: server_address.to_string(),
            username: username.to_string(),
            password: password.to_string(),
            identity_token: String::new(),
            registry_token: String::new(),
        }
    }

    /// The entry for `registry` (a host as image references name it) in a Docker config
    /// (`{"auths": {...}}`, or a legacy `.dockercfg` map), if there is one.
    pub fn from_docker_config(json: &[u8], registry: &str) -> Result<Option<Self>, AuthError> {
        let v: Value = serde_json::from_slice(json).map_err(AuthError::Json)?;
        let auths = v.get("auths").unwrap_or(&v);
        let Some(map) = auths.as_object() else {
            return Ok(None);
        };
        let Some((key, entry)) = map.iter().find(|(k, _)| registry_host(k) == registry) else {
            return Ok(None);
        };
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut auth = RegistryAuth {
            server_address: registry.to_string(),
            username: field("username"),
            password: field("password"),
            identity_token: field("identitytoken"),
            registry_token: field("registrytoken"),
        };
        let encoded = field("auth");
        if !encoded.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let (user, password) = decoded
                .as_deref()
                .and_then(|d| d.split_once(':'))
                .ok_or_else(|| AuthError::BadAuth {
                    registry: key.clone(),
                })?;
            auth.username = user.to_string();
            auth.password = password.to_string();
        }
        Ok(Some(auth))
    }

    /// The values that must never appear in a message.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        [
            self.password.as_str(),
            self.identity_token.as_str(),
            self.registry_token.as_str(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
    }

    /// `text` with every secret of these credentials (and their base64 `user:password`)
    /// replaced by `***`: runtimes may echo what they were given.
    pub fn scrub(&self, text: &str) -> String {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        let mut out = text.to_string();
        for secret in self
            .secrets()
            .chain((!self.password.is_empty()).then_some(basic.as_str()))
        {
            out = out.replace(secret, "***");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_entry_for_the_registry_in_either_form() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},
            "127.0.0.1:5001":{"username":"ci","password":"pw"}}}"#;
        let hub = RegistryAuth::from_docker_config(json, "docker.io")
            .expect("valid")
            .expect("found");
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        let local = RegistryAuth::from_docker_config(json, "127.0.0.1:5001")
            .expect("valid")
            .expect("found");
        assert_eq!(local.password, "pw");
        assert!(
            RegistryAuth::from_docker_config(json, "quay.io")
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn a_bad_auth_field_names_the_entry_not_its_value() {
        let err = RegistryAuth::from_docker_config(br#"{"auths":{"r.io":{"auth":"%%%"}}}"#, "r.io")
            .expect_err("bad base64");
        assert_eq!(
            err.to_string(),
            "failed to read the docker config: the `auth` of `r.io` is not base64 of `user:password`"
        );
    }

    #[test]
    fn debug_and_scrub_never_show_the_password() {
        let auth = RegistryAuth::basic("r.io", "ci", "hunter2");
        assert!(!format!("{auth:?}").contains("hunter2"));
        assert_eq!(
            auth.scrub("denied for hunter2 (Y2k6aHVudGVyMg==)"),
            "denied for *** (***)"
        );
    }
}
