//! One attempt to create, renew or take over the Lease, and giving it up.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

use crate::settings::LeaseSettings;

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

/// Gives the Lease up if we hold it (an empty holder), so another candidate takes it at once
/// instead of waiting for it to lapse. Best effort: a failure only means that wait.
pub async fn release(api: &Api<Lease>, s: &LeaseSettings) {
    let Ok(Some(mut lease)) = api.get_opt(&s.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
        return;
    }
    spec.holder_identity = Some(String::new());
    if let Err(e) = api.replace(&s.name, &PostParams::default(), &lease).await {
        tracing::debug!(
            "failed to release the Lease {}/{}: {e}",
            s.namespace,
            s.name
        );
    }
}

/// Whether the holder has let the Lease lapse (or it names none).
pub(crate) fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    if spec.holder_identity.as_deref().unwrap_or("").is_empty() {
        return true;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let lasts = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    renewed.0.checked_add(lasts).is_ok_and(|end| end < now)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use slipway_kube_mock::{self as mock, status};

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ci/leases/ctl";

    fn settings() -> LeaseSettings {
        LeaseSettings::new("ctl", "ci", "me")
    }

    pub(crate) fn lease(holder: &str, renewed: Timestamp) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ctl", "namespace": "ci", "resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": MicroTime(renewed), "leaseTransitions": 2},
        })
    }

    #[tokio::test]
    async fn no_lease_is_created_with_us_as_holder() {
        let (client, log) = mock::client(|s| match s.method.as_str() {
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
            log[1].path(),
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
        let (client, log) = mock::client(move |_| (200, held.clone()));
        let api: Api<Lease> = Api::namespaced(client, "ci");
        assert_eq!(
            try_acquire(&api, &settings()).await.expect("answers"),
            Attempt::Taken
        );
        let log = log.lock().expect("lock");
        assert_eq!(log.len(), 1, "only read: {log:?}");
        assert_eq!(log[0].path(), PATH);
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_taken_over_with_a_compare_and_swap() {
        let old = Timestamp::now() - SignedDuration::from_secs(60);
        let held = lease("other", old);
        let (client, log) = mock::client(move |s| match s.method.as_str() {
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
        assert_eq!(log[1].path(), PATH);
        let body = &log[1].body;
        assert_eq!(body["metadata"]["resourceVersion"], "7", "guarded: {body}");
        assert_eq!(body["spec"]["holderIdentity"], "me");
        assert_eq!(body["spec"]["leaseTransitions"], 3);
    }

    #[tokio::test]
    async fn losing_the_race_for_a_lease_is_not_an_error() {
        let old = Timestamp::now() - SignedDuration::from_secs(60);
        let held = lease("other", old);
        let (client, _) = mock::client(move |s| match s.method.as_str() {
            "GET" => (200, held.clone()),
            _ => (409, status(409, "Conflict")),
        });
        let api: Api<Lease> = Api::namespaced(client, "ci");
        assert_eq!(
            try_acquire(&api, &settings()).await.expect("answers"),
            Attempt::Taken
        );
    }

    #[tokio::test]
    async fn a_released_lease_names_no_holder_and_anothers_is_not_touched() {
        let ours = lease("me", Timestamp::now());
        let (client, log) = mock::client(move |s| match s.method.as_str() {
            "GET" => (200, ours.clone()),
            _ => (200, s.body.clone()),
        });
        let api: Api<Lease> = Api::namespaced(client, "ci");
        release(&api, &settings()).await;
        {
            let log = log.lock().expect("lock");
            assert_eq!(log[1].method, "PUT");
            assert_eq!(log[1].body["spec"]["holderIdentity"], "");
            assert_eq!(log[1].body["metadata"]["resourceVersion"], "7");
        }
        let theirs = lease("other", Timestamp::now());
        let (client, log) = mock::client(move |_| (200, theirs.clone()));
        let api: Api<Lease> = Api::namespaced(client, "ci");
        release(&api, &settings()).await;
        assert_eq!(log.lock().expect("lock").len(), 1, "only read");
    }

    #[test]
    fn a_lease_lapses_after_its_duration_without_renewal_or_holder() {
        let now = Timestamp::now();
        let spec = |holder: &str, ago: i64| LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(ago))),
            ..LeaseSpec::default()
        };
        assert!(!expired(&spec("a", 5), now));
        assert!(expired(&spec("a", 20), now));
        assert!(expired(&spec("", 1), now), "released");
    }
}
