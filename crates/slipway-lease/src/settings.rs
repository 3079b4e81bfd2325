//! Which Lease, who is asking, and the election's timings.

use std::time::Duration;

/// Which Lease, who we are, and its timings.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// This replica's identity (`holderIdentity`).
    pub identity: String,
    /// How long a holder keeps it without renewing.
    pub duration: Duration,
    /// How often the holder renews it.
    pub renew_every: Duration,
    /// How often a non-holder tries to take it.
    pub retry_every: Duration,
}

impl LeaseSettings {
    /// Client-go's usual timings (15 s lease, renewing every 5 s, retrying every 2 s).
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        LeaseSettings {
            name: name.to_string(),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }

    /// How long a leader goes on after its last renewal while renewals fail (client-go's renew
    /// deadline): two thirds of the duration, so it has stopped before anyone may take over.
    pub fn renew_deadline(&self) -> Duration {
        self.duration.mul_f64(2.0 / 3.0)
    }
}
