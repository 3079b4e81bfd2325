//! Finding and reaching the container daemon: an explicit host, `DOCKER_HOST`, Docker's default
//! socket, or a Podman socket.

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;

/// Requests may stream for as long as a step runs; slipway enforces its own timeouts.
const REQUEST_TIMEOUT_SECS: u64 = 7 * 24 * 3600;
/// How long the first contact may take before the daemon counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the daemon could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// No address was given and no socket exists.
    #[error("failed to find a container daemon: no DOCKER_HOST, and none of {tried} exists")]
    NotFound {
        /// The sockets looked for.
        tried: String,
    },
    /// The address is not one bollard speaks.
    #[error("failed to use `{host}` as the daemon address: {source}")]
    Address {
        /// The address.
        host: String,
        /// Why.
        source: bollard::errors::Error,
    },
    /// The daemon did not answer.
    #[error("failed to reach the container daemon at {host}: {why}")]
    Unreachable {
        /// The address.
        host: String,
        /// Why.
        why: String,
    },
}

/// The daemon address to use: `explicit`, else `DOCKER_HOST`, else the first socket that exists.
pub fn resolve(explicit: Option<&str>) -> Result<String, DaemonError> {
    if let Some(h) = explicit.filter(|h| !h.is_empty()) {
        return Ok(h.to_string());
    }
    if let Ok(h) = std::env::var("DOCKER_HOST")
        && !h.is_empty()
    {
        return Ok(h);
    }
    let mut candidates = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(rt) = std::env::var_os("XDG_RUNTIME_DIR") {
        candidates.push(PathBuf::from(&rt).join("docker.sock"));
        candidates.push(PathBuf::from(rt).join("podman/podman.sock"));
    }
    candidates.push(PathBuf::from("/run/podman/podman.sock"));
    match candidates.iter().find(|p| p.exists()) {
        Some(p) => Ok(format!("unix://{}", p.display())),
        None => Err(DaemonError::NotFound {
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// True when `host` is a unix socket, so the daemon runs on this machine and sees its files.
pub fn is_local(host: &str) -> bool {
    host.starts_with("unix://") || host.starts_with('/')
}

/// Connects to `host` and agrees on an API version with the daemon.
pub async fn connect(host: &str) -> Result<Docker, DaemonError> {
    let unreachable = |why: String| DaemonError::Unreachable {
        host: host.to_string(),
        why,
    };
    if let Some(path) = host.strip_prefix("unix://")
        && !std::path::Path::new(path).exists()
    {
        return Err(unreachable("the socket does not exist".into()));
    }
    let client = if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else if host.starts_with('/') {
        Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_host(host)
    }
    .map_err(|source| DaemonError::Address {
        host: host.to_string(),
        source,
    })?;
    // Older daemons (Debian's 20.10 speaks 1.41) refuse newer clients: negotiate first.
    let client = tokio::time::timeout(PING_TIMEOUT, client.negotiate_version())
        .await
        .map_err(|_| unreachable(format!("no answer within {PING_TIMEOUT:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::time::timeout(PING_TIMEOUT, client.ping())
        .await
        .map_err(|_| unreachable(format!("no answer within {PING_TIMEOUT:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unix_sockets_count_as_this_machine() {
        assert!(is_local("unix:///var/run/docker.sock"));
        assert!(is_local("/run/podman/podman.sock"));
        for remote in [
            "tcp://127.0.0.1:2375",
            "tcp://build-host:2376",
            "ssh://me@build-host",
            "http://localhost:2375",
        ] {
            assert!(!is_local(remote), "{remote}");
        }
    }
}
