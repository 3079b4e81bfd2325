//! Why a request to the Kubernetes API failed, said without kube's debug dumps.

/// A failed request; the message reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum KubeApiError {
    /// The API server refused, with a `Status`.
    #[error("{action}: the API server answered {code} {reason}: {message}")]
    Refused {
        /// What was asked, e.g. `update the status of NodeImage n1`.
        action: String,
        /// HTTP status.
        code: u16,
        /// The Status' reason (`Conflict`, `Forbidden`, ...).
        reason: String,
        /// The Status' message.
        message: String,
    },
    /// The request did not get an answer (connection, TLS, a body that is no JSON).
    #[error("{action} on {server}")]
    Transport {
        /// What was asked.
        action: String,
        /// The API server's address.
        server: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

impl KubeApiError {
    /// From kube's error for `action` on `server`.
    pub fn new(action: impl Into<String>, server: &str, e: kube::Error) -> KubeApiError {
        match e {
            kube::Error::Api(s) => KubeApiError::Refused {
                action: action.into(),
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            },
            source => KubeApiError::Transport {
                action: action.into(),
                server: server.to_string(),
                source,
            },
        }
    }

    /// The HTTP status the server answered, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            KubeApiError::Refused { code, .. } => Some(*code),
            KubeApiError::Transport { .. } => None,
        }
    }
}

/// The status code of kube's error, when the server answered.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}
