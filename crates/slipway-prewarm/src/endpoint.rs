//! A runtime's gRPC endpoint (`unix:///run/containerd/containerd.sock`) and the channel to it.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint as TonicEndpoint, Uri};

/// A unix socket a runtime listens on, as kubelet's `--container-runtime-endpoint` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    path: PathBuf,
}

/// Why an endpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not `unix:///absolute/path` (or an absolute path).
    #[error("failed to read the CRI endpoint `{address}`: {why}")]
    Malformed {
        /// The text given.
        address: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Nothing answered on the socket.
    #[error("failed to connect to the CRI endpoint unix://{}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The transport's words.
        #[source]
        source: tonic::transport::Error,
    },
    /// Something answered, but not CRI's ImageService.
    #[error("failed to use the CRI endpoint unix://{}: its ImageService does not answer", path.display())]
    NotCri {
        /// The socket.
        path: PathBuf,
        /// The runtime's words.
        #[source]
        source: crate::runtime::RuntimeError,
    },
}

impl Endpoint {
    /// Parses `unix:///path` or `/path`.
    pub fn parse(address: &str) -> Result<Self, EndpointError> {
        let malformed = |why| EndpointError::Malformed {
            address: address.to_string(),
            why,
        };
        let path = match address.split_once("://") {
            Some(("unix", path)) => path,
            Some(_) => return Err(malformed("only unix:// sockets are supported")),
            None => address,
        };
        if !path.starts_with('/') {
            return Err(malformed("the socket path must be absolute"));
        }
        if path.chars().any(char::is_control) {
            return Err(malformed("the socket path contains control characters"));
        }
        Ok(Endpoint {
            path: PathBuf::from(path),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connects now, so that a socket nobody listens on is reported at start; later calls
    /// reconnect by themselves (a runtime that restarts is found again).
    pub async fn connect(&self) -> Result<Channel, EndpointError> {
        let path = self.path.clone();
        let connect_err = |source| EndpointError::Connect {
            path: self.path.clone(),
            source,
        };
        // The URI is required by tonic and unused: every connection goes to the socket.
        TonicEndpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(connect_err)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unix://{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_urls_and_paths_only() {
        assert_eq!(
            Endpoint::parse("unix:///run/c.sock").expect("ok").path(),
            Path::new("/run/c.sock")
        );
        assert_eq!(
            Endpoint::parse("/run/c.sock").expect("ok").to_string(),
            "unix:///run/c.sock"
        );
        for bad in ["tcp://1.2.3.4:10", "unix://relative", "c.sock"] {
            assert!(
                matches!(Endpoint::parse(bad), Err(EndpointError::Malformed { .. })),
                "{bad}"
            );
        }
    }
}
