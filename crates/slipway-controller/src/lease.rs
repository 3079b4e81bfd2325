//! Leader election with a `coordination.k8s.io/v1` Lease: only the holder runs runs. The holder
//! renews it; another replica takes it over once it has gone unrenewed for its duration.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::ControllerError;

/// Which Lease, who we are, and its timings.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// This replica's identity (holderIdentity).
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
}

/// What one attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease (created, renewed or taken over).
    Held,
    /// Another replica holds it, or won the race for it.
    Taken,
}

/// One attempt to create, renew or take over the Lease; a write lost to another replica
/// (409 Conflict) is [`Attempt::Taken`].
pub async fn try_acquire(api: &Api<Lease>, s: &LeaseSettings) -> Result<Attempt, kube::Error> {
    let now = MicroTime(Timestamp::now());
    let seconds = i32::try_from(s.duration.as_secs()).unwrap_or(15);
    let written = match api.get_opt(&s.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(s.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await
        }
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            let ours = spec.holder_identity.as_deref() == Some(s.identity.as_str());
            if !ours && !expired(spec, now.0) {
                return Ok(Attempt::Taken);
            }
            if !ours {
                spec.holder_identity = Some(s.identity.clone());
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.lease_duration_seconds = Some(seconds);
            spec.renew_time = Some(now);
            // The object's resourceVersion makes this a compare-and-swap.
            api.replace(&s.name, &PostParams::default(), &lease).await
        }
    };
    match written {
        Ok(_) => Ok(Attempt::Held),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Taken),
        Err(e) => Err(e),
    }
}

/// Whether the holder has let the Lease lapse (or it names none).
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    if spec.holder_identity.as_deref().unwrap_or("").is_empty() {
        return true;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let lasts = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    renewed.0.checked_add(lasts).is_ok_and(|end| end < now)
}

/// Campaigns for the Lease until `stop`: `leading` turns true once held. A leader whose renewal
/// fails or is refused steps down and this returns [`ControllerError::LostLease`], since its runs
/// may now be taken over by the new leader.
pub async fn lead(
    api: Api<Lease>,
    s: LeaseSettings,
    leading: watch::Sender<bool>,
    stop: CancellationToken,
) -> Result<(), ControllerError> {
    // Renewal errors are retried until this much of the lease has passed since the last
    // renewal (client-go's renew deadline), so a slow answer does not end the leadership.
    let deadline = s.duration.mul_f64(2.0 / 3.0);
    let mut renewed = tokio::time::Instant::now();
    loop {
        let leader = *leading.borrow();
        let attempt = try_acquire(&api, &s).await;
        match (leader, attempt) {
            (_, Ok(Attempt::Held)) => {
                renewed = tokio::time::Instant::now();
                if !leader {
                    tracing::info!(lease = %s.name, identity = %s.identity, "became the leader");
                    let _ = leading.send(true);
                }
            }
            (true, Err(e)) if renewed.elapsed() < deadline => {
                tracing::warn!("failed to renew the lease {}/{}: {e}", s.namespace, s.name);
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(s.retry_every) => {}
                }
                continue;
            }
            (true, outcome) => {
                let _ = leading.send(false);
                let why = match outcome {
                    Err(e) => crate::error::chain(&e),
                    _ => "another replica holds it".to_string(),
                };
                return Err(ControllerError::LostLease {
                    name: s.name.clone(),
                    namespace: s.namespace.clone(),
                    why,
                });
            }
            (false, Ok(Attempt::Taken)) => {}
            (false, Err(e)) => {
                tracing::warn!("failed to get the lease {}/{}: {e}", s.namespace, s.name);
            }
        }
        let wait = if *leading.borrow() {
            s.renew_every
        } else {
            s.retry_every
        };
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::{Value, json};

    use super::*;
    use crate::testkit::{self, status};

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ci/leases/ctl";

    fn settings() -> LeaseSettings {
        LeaseSettings::new("ctl", "ci", "me")
    }

    fn lease(holder: &str, renewed: Timestamp) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ctl", "namespace": "ci", "resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": MicroTime(renewed), "leaseTransitions": 2},
        })
    }

    #[tokio::test]
    async fn no_lease_is_created_with_us_as_holder() {
        let (client, log) = testkit::client(|s| match s.method.as_str() {
            "GET" => (404, status(404, "NotFound")),
            _ => (201, s.body.clone()),
        });
        let api: Api<Lease> = Api::namespaced(client, "ci");
        assert_eq!(
            try_acquire(&api, &settings()).await.expect("answers"),
            Attempt::Held
        );
        let log = log.lock().expect("lock");
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].method, "POST");
        assert_eq!(
            log[1].path,
            "/apis/coordination.k8s.io/v1/namespaces/ci/leases"
        );
        let spec = &log[1].body["spec"];
        assert_eq!(spec["holderIdentity"], "me");
        assert_eq!(spec["leaseDurationSeconds"], 15);
        assert!(spec["renewTime"].is_string() && spec["acquireTime"].is_string());
    }

    #[tokio::test]
    async fn a_fresh_lease_of_another_is_left_alone() {
        let held = lease("other", Timestamp::now());
        let (client, log) = testkit::client(move |_| (200, held.clone()));
        let api: Api<Lease> = Api::namespaced(client, "ci");
        assert_eq!(
            try_acquire(&api, &settings()).await.expect("answers"),
            Attempt::Taken
        );
        let log = log.lock().expect("lock");
        assert_eq!(log.len(), 1, "only read: {log:?}");
        assert_eq!(log[0].path, PATH);
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_taken_over_with_a_compare_and_swap() {
        let old = Timestamp::now() - SignedDuration::from_secs(60);
        let held = lease("other", old);
        let (client, log) = testkit::client(move |s| match s.method.as_str() {
            "GET" => (200, held.clone()),
            _ => (200, s.body.clone()),
        });
        let api: Api<Lease> = Api::namespaced(client, "ci");
        assert_eq!(
            try_acquire(&api, &settings()).await.expect("answers"),
            Attempt::Held
        );
        let log = log.lock().expect("lock");
        assert_eq!(log[1].method, "PUT");
        assert_eq!(log[1].path, PATH);
        let body = &log[1].body;
        assert_eq!(body["metadata"]["resourceVersion"], "7", "guarded: {body}");
        assert_eq!(body["spec"]["holderIdentity"], "me");
        assert_eq!(body["spec"]["leaseTransitions"], 3);
    }

    #[tokio::test]
    async fn losing_the_race_for_a_lease_is_not_an_error() {
        let old = Timestamp::now() - SignedDuration::from_secs(60);
        let held = lease("other", old);
        let (client, _) = testkit::client(move |s| match s.method.as_str() {
            "GET" => (200, held.clone()),
            _ => (409, status(409, "Conflict")),
        });
        let api: Api<Lease> = Api::namespaced(client, "ci");
        assert_eq!(
            try_acquire(&api, &settings()).await.expect("answers"),
            Attempt::Taken
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_rides_out_a_failed_renewal_within_the_deadline() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let ours = lease("me", Timestamp::now());
        let (client, _) = testkit::client(move |s| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            match (s.method.as_str(), n) {
                // The first read fails (a slow server), the next ones answer.
                (_, 0) => (500, status(500, "InternalError")),
                ("GET", _) => (200, ours.clone()),
                _ => (200, s.body.clone()),
            }
        });
        let api: Api<Lease> = Api::namespaced(client, "ci");
        let (tx, rx) = watch::channel(true);
        let stop = CancellationToken::new();
        let lead = tokio::spawn(lead(api, settings(), tx, stop.clone()));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(*rx.borrow(), "still leading");
        assert!(calls.load(Ordering::SeqCst) >= 3, "retried and renewed");
        stop.cancel();
        lead.await.expect("joins").expect("no error");
    }

    #[tokio::test]
    async fn a_leader_that_cannot_renew_steps_down() {
        let ours = lease("me", Timestamp::now());
        let (client, _) = testkit::client(move |s| match s.method.as_str() {
            "GET" => (200, ours.clone()),
            _ => (409, status(409, "Conflict")),
        });
        let api: Api<Lease> = Api::namespaced(client, "ci");
        let (tx, rx) = watch::channel(true);
        let mut s = settings();
        s.renew_every = Duration::from_millis(10);
        let e = lead(api, s, tx, CancellationToken::new())
            .await
            .expect_err("steps down");
        assert!(matches!(e, ControllerError::LostLease { .. }), "{e}");
        assert!(!*rx.borrow());
    }
}
