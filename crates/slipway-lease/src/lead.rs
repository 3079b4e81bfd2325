//! Campaigning for the Lease and keeping it while leading.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::acquire::{Attempt, release, try_acquire};
use crate::error::LeaseError;
use crate::settings::LeaseSettings;

/// Campaigns for the Lease until `stop`: `leading` turns true once it is held. A leader whose
/// renewals fail past the renew deadline, or that finds another holder, sets `leading` false and
/// returns the reason, since another replica may act now. Stopping while leading gives the
/// Lease up, so the next replica need not wait for it to lapse.
pub async fn lead(
    api: Api<Lease>,
    s: LeaseSettings,
    leading: watch::Sender<bool>,
    stop: CancellationToken,
) -> Result<(), LeaseError> {
    let deadline = s.renew_deadline();
    let mut renewed = tokio::time::Instant::now();
    loop {
        let leader = *leading.borrow();
        match (leader, try_acquire(&api, &s).await) {
            (_, Ok(Attempt::Held)) => {
                renewed = tokio::time::Instant::now();
                if !leader {
                    tracing::info!(lease = %s.name, identity = %s.identity, "became the leader");
                    let _ = leading.send(true);
                }
            }
            // A slow or failing answer does not end the leadership before the deadline.
            (true, Err(e)) if renewed.elapsed() < deadline => {
                tracing::warn!("failed to renew the Lease {}/{}: {e}", s.namespace, s.name);
                if pause(&stop, s.retry_every).await {
                    return stopped(&api, &s, &leading).await;
                }
                continue;
            }
            (true, outcome) => {
                let _ = leading.send(false);
                return Err(match outcome {
                    Err(source) => LeaseError::Renewal {
                        name: s.name.clone(),
                        namespace: s.namespace.clone(),
                        source,
                    },
                    Ok(_) => LeaseError::Taken {
                        name: s.name.clone(),
                        namespace: s.namespace.clone(),
                    },
                });
            }
            (false, Ok(Attempt::Taken)) => {}
            (false, Err(e)) => {
                tracing::warn!("failed to get the Lease {}/{}: {e}", s.namespace, s.name);
            }
        }
        let wait = if *leading.borrow() {
            s.renew_every
        } else {
            s.retry_every
        };
        if pause(&stop, wait).await {
            return stopped(&api, &s, &leading).await;
        }
    }
}

/// Sleeps `wait`; true when `stop` came first.
async fn pause(stop: &CancellationToken, wait: std::time::Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(wait) => false,
    }
}

/// Stopping: a leader steps down and gives the Lease up.
async fn stopped(
    api: &Api<Lease>,
    s: &LeaseSettings,
    leading: &watch::Sender<bool>,
) -> Result<(), LeaseError> {
    if *leading.borrow() {
        let _ = leading.send(false);
        release(api, s).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    use super::*;
    use slipway_kube_mock::{self as mock, status};

    fn lease(holder: &str) -> serde_json::Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ctl", "namespace": "ci", "resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": MicroTime(Timestamp::now())},
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_rides_out_a_failed_renewal_within_the_deadline_and_releases_on_stop() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let ours = lease("me");
        let (client, log) = mock::client(move |s| {
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
        let lead = tokio::spawn(lead(
            api,
            LeaseSettings::new("ctl", "ci", "me"),
            tx,
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(*rx.borrow(), "still leading");
        assert!(calls.load(Ordering::SeqCst) >= 3, "retried and renewed");
        stop.cancel();
        lead.await.expect("joins").expect("no error");
        assert!(!*rx.borrow(), "stepped down");
        let log = log.lock().expect("lock");
        let last = log.last().expect("requests");
        assert_eq!(
            (last.method.as_str(), &last.body["spec"]["holderIdentity"]),
            ("PUT", &json!("")),
            "released: {log:?}"
        );
    }

    #[tokio::test]
    async fn a_leader_that_cannot_renew_steps_down_and_says_why() {
        let ours = lease("me");
        let (client, _) = mock::client(move |s| match s.method.as_str() {
            "GET" => (200, ours.clone()),
            _ => (409, status(409, "Conflict")),
        });
        let api: Api<Lease> = Api::namespaced(client, "ci");
        let (tx, rx) = watch::channel(true);
        let mut s = LeaseSettings::new("ctl", "ci", "me");
        s.renew_every = Duration::from_millis(10);
        let e = lead(api, s, tx, CancellationToken::new())
            .await
            .expect_err("steps down");
        assert!(matches!(e, LeaseError::Taken { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "keep the Lease ci/ctl: another replica holds it"
        );
        assert!(!*rx.borrow());
    }
}
