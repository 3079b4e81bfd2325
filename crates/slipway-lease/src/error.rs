//! Why leadership ended; each message reads after "failed to".

/// Why a leader stopped leading.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another replica holds the Lease now (our renewal lost the compare-and-swap).
    #[error("keep the Lease {namespace}/{name}: another replica holds it")]
    Taken {
        /// The Lease.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// Renewals failed for longer than the renew deadline.
    #[error("renew the Lease {namespace}/{name}")]
    Renewal {
        /// The Lease.
        name: String,
        /// Its namespace.
        namespace: String,
        /// The last renewal's error.
        #[source]
        source: kube::Error,
    },
}
