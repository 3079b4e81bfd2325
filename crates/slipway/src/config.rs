//! slipway's config file (TOML): the default executor, the Docker daemon, and where images come
//! from. Parsing lives in the library so that it can be fuzzed; the binary only reports.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use slipway_exec_docker::{DockerSettings, RegistryConfig};

/// The whole file; every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The executor used when `--executor` is not given.
    pub executor: Option<ExecutorName>,
    /// `[docker]`.
    #[serde(default)]
    pub docker: DockerSettings,
    /// `[kubernetes]`.
    #[serde(default)]
    pub kubernetes: slipway_exec_kube::KubeSettings,
    /// `[registry]`: rewrite rules and mirrors.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// `[server]`: limits for `slipway serve`.
    #[serde(default)]
    pub server: ServerSettings,
    /// `[secrets]`: where the key Secrets are sealed with is kept.
    #[serde(default)]
    pub secrets: SecretsSettings,
    /// The file this was read from, passed on to processes slipway starts (the image builder).
    #[serde(skip)]
    pub source: Option<PathBuf>,
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
    #[serde(default, deserialize_with = "some_count")]
    pub max_runs: Option<usize>,
    /// `[server.pipelines]`: runs at once per Pipeline (or Task) name.
    #[serde(default, deserialize_with = "counts")]
    pub pipelines: std::collections::HashMap<String, usize>,
    /// Most bytes of step output stored per run [default: 4 GiB].
    pub max_log_bytes: Option<u64>,
    /// Names requests may give in `Host` besides the listening address (`NAME` or `NAME:PORT`).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Connections open at once [default: 4096].
    #[serde(default, deserialize_with = "some_count")]
    pub max_connections: Option<usize>,
    /// Whether runs may mount the server machine's directories with `hostPath` volumes
    /// [default: false].
    #[serde(default)]
    pub allow_host_paths: bool,
}

/// Executor names as the file spells them.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorName {
    /// Host processes.
    Host,
    /// Containers.
    Docker,
    /// Pods.
    Kubernetes,
}

/// Most runs at once any count in the file may ask for.
pub const MAX_COUNT: usize = 1_000_000;

/// A count of runs at once: a whole number from 1 to [`MAX_COUNT`] (0 would start nothing).
pub fn count(n: u64) -> Result<usize, String> {
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_COUNT).contains(n))
        .ok_or_else(|| format!("{n} is out of range: use a whole number from 1 to {MAX_COUNT}"))
}

fn some_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let n = u64::deserialize(d)?;
    count(n).map(Some).map_err(serde::de::Error::custom)
}

/// One count of a table, checked as it is read so that an error points at its value.
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        count(n).map(Count).map_err(serde::de::Error::custom)
    }
}

fn counts<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::HashMap<String, usize>, D::Error> {
    let raw = std::collections::HashMap::<String, Count>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, n)| (k, n.0)).collect())
}

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named could not be read.
    #[error("failed to read the config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for slipway, at `line`:`col`.
    #[error("{}:{line}:{col}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
}

/// `$XDG_CONFIG_HOME/slipway/config.toml` (or `~/.config/...`).
fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("slipway").join("config.toml"))
}

/// Reads the config: `explicit` must exist; the default file may not.
pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_path().filter(|p| p.exists()) {
            Some(p) => p,
            None => return Ok(Config::default()),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let mut config = parse_file(&path, &text)?;
    if let Some(k) = config.secrets.key_file.as_mut()
        && k.is_relative()
        && let Some(dir) = path.parent()
    {
        *k = dir.join(&*k);
    }
    config.source = Some(std::path::absolute(&path).unwrap_or(path));
    Ok(config)
}

/// Parses the text of the config file `path`; errors say where (line and column).
pub fn parse_file(path: &Path, text: &str) -> Result<Config, ConfigError> {
    parse(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            col,
            message: e.message().trim_end().to_string(),
        }
    })
}

fn parse(text: &str) -> Result<Config, toml::de::Error> {
    toml::from_str(text)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    // A span may end inside a character; count from the character it falls in.
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
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
        assert_eq!(c.server.allowed_hosts, ["ci.example.com", "proxy:8443"]);
        assert_eq!(c.server.max_connections, Some(100));
        assert_eq!(c.executor, Some(ExecutorName::Docker));
        assert_eq!(c.docker.network.as_deref(), Some("none"));
        assert_eq!(c.registry.rewrite.len(), 1);
        assert_eq!(c.registry.mirrors["docker.io"], ["127.0.0.1:5000"]);
    }

    #[test]
    fn counts_out_of_range_point_at_their_value() {
        for (text, at) in [
            ("[server]\nmax_runs = 18446744073709551615\n", (2, 12)),
            ("[server]\nmax_runs = 0\n", (2, 12)),
            ("[server.pipelines]\nbuild = 99999999999\n", (2, 9)),
        ] {
            match parse_file(Path::new("c.toml"), text) {
                Err(ConfigError::Invalid {
                    line, col, message, ..
                }) => {
                    assert_eq!((line, col), at, "{text}: {message}");
                    assert!(message.contains("out of range"), "{message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let c = parse("[server]\nmax_runs = 4\n[server.pipelines]\nbuild = 1\n").expect("valid");
        assert_eq!(c.server.max_runs, Some(4));
        assert_eq!(c.server.pipelines["build"], 1);
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
