//! slipway's config file (TOML): the default executor, the Docker daemon, and where images come
//! from.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use slipway_exec_docker::{DockerSettings, RegistryConfig};

use crate::cli::ExecutorKind;
use crate::error::CliError;

/// The whole file; every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The executor used when `--executor` is not given.
    pub executor: Option<ExecutorName>,
    /// `[docker]`.
    #[serde(default)]
    pub docker: DockerSettings,
    /// `[registry]`: rewrite rules and mirrors.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// `[server]`: limits for `slipway serve`.
    #[serde(default)]
    pub server: ServerSettings,
    /// `[secrets]`: where the key Secrets are sealed with is kept.
    #[serde(default)]
    pub secrets: SecretsSettings,
}

/// `[secrets]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    /// The key file (a relative path is taken from the config file's directory) [default:
    /// `--secret-key-file`, else `DATA/secret.key`].
    pub key_file: Option<PathBuf>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Runs at once, all Pipelines together [default: number of cores].
    pub max_runs: Option<usize>,
    /// `[server.pipelines]`: runs at once per Pipeline (or Task) name.
    #[serde(default)]
    pub pipelines: std::collections::HashMap<String, usize>,
    /// Names requests may give in `Host` besides the listening address (`NAME` or `NAME:PORT`).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Connections open at once [default: 4096].
    pub max_connections: Option<usize>,
}

/// Executor names as the file spells them.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorName {
    /// Host processes.
    Host,
    /// Containers.
    Docker,
}

impl From<ExecutorName> for ExecutorKind {
    fn from(n: ExecutorName) -> Self {
        match n {
            ExecutorName::Host => ExecutorKind::Host,
            ExecutorName::Docker => ExecutorKind::Docker,
        }
    }
}

/// `$XDG_CONFIG_HOME/slipway/config.toml` (or `~/.config/...`).
fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("slipway").join("config.toml"))
}

/// Reads the config: `explicit` must exist; the default file may not.
pub fn load(explicit: Option<&Path>) -> Result<Config, CliError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_path().filter(|p| p.exists()) {
            Some(p) => p,
            None => return Ok(Config::default()),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::usage(
            format!("failed to read the config file {}: {e}", path.display()),
            "pass an existing file with --config or SLIPWAY_CONFIG",
        )
    })?;
    let mut config = parse(&text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
        CliError::usage(
            format!(
                "{}:{line}:{col}: {}",
                path.display(),
                e.message().trim_end()
            ),
            "see the config file section of the README",
        )
    })?;
    if let Some(k) = config.secrets.key_file.as_mut()
        && k.is_relative()
        && let Some(dir) = path.parent()
    {
        *k = dir.join(&*k);
    }
    Ok(config)
}

fn parse(text: &str) -> Result<Config, toml::de::Error> {
    toml::from_str(text)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file() {
        let c = parse(
            r#"
executor = "docker"
[docker]
host = "unix:///tmp/d.sock"
network = "none"
[[registry.rewrite]]
prefix = "mirror.gcr.io/"
replace = "127.0.0.1:5000/library/"
drop_digest = true
[registry.mirrors]
"docker.io" = ["127.0.0.1:5000"]
[server]
allowed_hosts = ["ci.example.com", "proxy:8443"]
max_connections = 100
"#,
        )
        .expect("valid");
        assert_eq!(c.executor, Some(ExecutorName::Docker));
        assert_eq!(c.docker.network.as_deref(), Some("none"));
        assert_eq!(c.registry.rewrite.len(), 1);
        assert_eq!(c.registry.mirrors["docker.io"], ["127.0.0.1:5000"]);
        assert_eq!(c.server.allowed_hosts, ["ci.example.com", "proxy:8443"]);
        assert_eq!(c.server.max_connections, Some(100));
    }

    #[test]
    fn unknown_keys_point_at_their_line() {
        let text = "[docker]\nhots = \"x\"\n";
        let e = parse(text).expect_err("typo");
        let (line, col) = line_col(text, e.span().map_or(0, |s| s.start));
        assert_eq!((line, col), (2, 1));
        assert!(e.message().contains("hots"), "{}", e.message());
    }
}
