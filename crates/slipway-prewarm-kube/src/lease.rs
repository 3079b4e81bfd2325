//! Leader election over a `coordination.k8s.io/v1` Lease, so that several controller replicas
//! can run and one acts: the holder renews `renewTime`; another takes the Lease once the holder
//! let it lapse for `leaseDurationSeconds`. Every take and renewal is a write over the
//! `resourceVersion` read, so two candidates never both win.

use std::time::{Duration, SystemTime};

use std::sync::Arc;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};
use slipway_server::controller::{Cluster, Config};
use tokio_util::sync::CancellationToken;

use crate::error::{KubeApiError, status_code};

/// One candidate for one Lease.
#[derive(Clone)]
pub struct Election {
    api: Api<DynamicObject>,
    server: String,
    name: String,
    identity: String,
    duration: Duration,
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn leases() -> ApiResource {
    ApiResource {
        group: "coordination.k8s.io".into(),
        version: "v1".into(),
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        plural: "leases".into(),
    }
}

fn micro(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// Whether a Lease held by someone else has lapsed at `now`.
fn lapsed(lease: &Value, now: SystemTime) -> bool {
    let spec = &lease["spec"];
    let holder = spec["holderIdentity"].as_str().unwrap_or_default();
    if holder.is_empty() {
        return true;
    }
    let renewed = spec["renewTime"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let duration = Duration::from_secs(spec["leaseDurationSeconds"].as_u64().unwrap_or(15));
    renewed.is_none_or(|at| now.duration_since(at).unwrap_or_default() > duration)
}

impl Election {
    /// Candidate `identity` for Lease `namespace/name`, held for `duration` without renewal.
    pub fn new(
        client: kube::Client,
        server: &str,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Election {
        Election {
            api: Api::namespaced_with(client, namespace, &leases()),
            server: server.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
        }
    }

    /// Who holds the Lease, as it says.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn spec(&self, now: SystemTime, acquired: Option<&Value>) -> Value {
        json!({
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration.as_secs(),
            "acquireTime": acquired.cloned().unwrap_or_else(|| json!(micro(now))),
            "renewTime": micro(now),
        })
    }

    fn fail(&self, e: kube::Error) -> KubeApiError {
        KubeApiError::new(format!("hold the Lease {}", self.name), &self.server, e)
    }

    /// One attempt at `now` to take or renew the Lease: whether this candidate holds it.
    pub async fn try_hold(&self, now: SystemTime) -> Result<bool, KubeApiError> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.fail(e))?;
        let written = match current {
            None => {
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": { "name": self.name },
                    "spec": self.spec(now, None),
                });
                let o: DynamicObject = serde_json::from_value(lease)
                    .map_err(|e| self.fail(kube::Error::SerdeError(e)))?;
                self.api.create(&PostParams::default(), &o).await
            }
            Some(lease) => {
                let mut v = serde_json::to_value(&lease).unwrap_or(Value::Null);
                let ours = v["spec"]["holderIdentity"] == self.identity.as_str();
                if !ours && !lapsed(&v, now) {
                    return Ok(false);
                }
                let acquired = ours.then(|| v["spec"]["acquireTime"].clone());
                v["spec"] = self.spec(now, acquired.as_ref());
                let o: DynamicObject =
                    serde_json::from_value(v).map_err(|e| self.fail(kube::Error::SerdeError(e)))?;
                self.api
                    .replace(&self.name, &PostParams::default(), &o)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(true),
            // Another candidate wrote first.
            Err(e) if matches!(status_code(&e), Some(409)) => Ok(false),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Gives the Lease up (when held), so that another candidate takes it at once.
    pub async fn release(&self) {
        let Ok(Some(lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let mut v = serde_json::to_value(&lease).unwrap_or(Value::Null);
        if v["spec"]["holderIdentity"] != self.identity.as_str() {
            return;
        }
        v["spec"]["holderIdentity"] = json!("");
        if let Ok(o) = serde_json::from_value::<DynamicObject>(v) {
            let _ = self
                .api
                .replace(&self.name, &PostParams::default(), &o)
                .await;
        }
    }
}

/// Runs the controller's rounds while `election` holds its Lease, until `shutdown`; gives the
/// Lease up at the end.
pub async fn lead(
    election: &Election,
    cluster: Arc<dyn Cluster>,
    config: Config,
    shutdown: &CancellationToken,
) {
    let renew = election.duration / 3;
    loop {
        if !wait_to_hold(election, renew, shutdown).await {
            return;
        }
        tracing::info!("pre-warming controller {} leads", election.identity);
        let acting = shutdown.child_token();
        let rounds = tokio::spawn(slipway_server::controller::run(
            cluster.clone(),
            config.clone(),
            acting.clone().cancelled_owned(),
        ));
        let mut held = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    acting.cancel();
                    let _ = rounds.await;
                    election.release().await;
                    return;
                }
                () = tokio::time::sleep(renew) => {}
            }
            match election.try_hold(SystemTime::now()).await {
                Ok(true) => held = tokio::time::Instant::now(),
                Ok(false) => break,
                // Stop acting before another candidate may take the Lease.
                Err(_) if held.elapsed() >= renew * 2 => break,
                Err(_) => {}
            }
        }
        acting.cancel();
        let _ = rounds.await;
        tracing::warn!(
            "pre-warming controller {} lost its Lease",
            election.identity
        );
    }
}

/// Tries to hold the Lease every `every` until it does (`true`) or `shutdown` (`false`).
async fn wait_to_hold(election: &Election, every: Duration, shutdown: &CancellationToken) -> bool {
    let mut said = false;
    loop {
        match election.try_hold(SystemTime::now()).await {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) if !said => {
                said = true;
                tracing::warn!("failed to {e}");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{self, Seen};

    const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/ctl";

    #[tokio::test]
    async fn a_lapsed_lease_is_taken_over_the_version_read_and_a_live_one_is_left() {
        let now = SystemTime::now();
        let held_by = move |who: &str, ago: u64| {
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": "ctl", "namespace": "ops", "resourceVersion": "7"},
                   "spec": {"holderIdentity": who, "leaseDurationSeconds": 15,
                            "renewTime": micro(now - Duration::from_secs(ago))}})
        };
        let mut reads = 0;
        let (client, log) = mock::client(move |s: &Seen| match (s.method.as_str(), s.path()) {
            ("GET", LEASE) => {
                reads += 1;
                // First alive, then lapsed.
                (200, held_by("other", if reads == 1 { 3 } else { 60 }))
            }
            ("PUT", LEASE) => (200, s.body.clone()),
            _ => (404, mock::status(404, "NotFound")),
        });
        let e = Election::new(
            client,
            "http://mock",
            "ops",
            "ctl",
            "me",
            Duration::from_secs(15),
        );
        assert!(
            !e.try_hold(now).await.expect("try"),
            "a live Lease is not taken"
        );
        assert!(e.try_hold(now).await.expect("try"), "a lapsed one is");
        let seen = log.lock().expect("lock").clone();
        let puts: Vec<&Seen> = seen.iter().filter(|s| s.method == "PUT").collect();
        assert_eq!(puts.len(), 1, "{seen:?}");
        assert_eq!(puts[0].body["metadata"]["resourceVersion"], "7");
        assert_eq!(puts[0].body["spec"]["holderIdentity"], "me");
    }

    #[tokio::test]
    async fn a_missing_lease_is_created_and_a_lost_race_is_not_a_failure() {
        let (client, log) = mock::client(|s: &Seen| match s.method.as_str() {
            "GET" => (404, mock::status(404, "NotFound")),
            _ => (409, mock::status(409, "AlreadyExists")),
        });
        let e = Election::new(
            client,
            "http://mock",
            "ops",
            "ctl",
            "me",
            Duration::from_secs(15),
        );
        assert!(!e.try_hold(SystemTime::now()).await.expect("no error"));
        let seen = log.lock().expect("lock").clone();
        let post = seen.iter().find(|s| s.method == "POST").expect("a create");
        assert_eq!(
            post.path(),
            "/apis/coordination.k8s.io/v1/namespaces/ops/leases"
        );
        assert_eq!(post.body["spec"]["holderIdentity"], "me");
    }

    #[test]
    fn a_lease_lapses_after_its_duration_without_renewal() {
        let now = SystemTime::now();
        let lease = |holder: &str, ago: u64| {
            json!({"spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                            "renewTime": micro(now - Duration::from_secs(ago))}})
        };
        assert!(!lapsed(&lease("a", 5), now));
        assert!(lapsed(&lease("a", 20), now));
        assert!(lapsed(&lease("", 1), now), "released");
    }
}
