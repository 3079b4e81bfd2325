//! The pre-warming controller acts only while it holds its Lease (`slipway-lease`), so several
//! replicas can run and one acts; one that loses the Lease stops acting and campaigns again.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use slipway_lease::LeaseSettings;
use slipway_server::controller::{Cluster, Config};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One candidate for one Lease.
#[derive(Clone)]
pub struct Election {
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("name", &self.settings.name)
            .field("identity", &self.settings.identity)
            .finish_non_exhaustive()
    }
}

impl Election {
    /// Candidate `identity` for Lease `namespace/name`, held for `duration` without renewal
    /// (renewed, and tried for, every third of it).
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Election {
        let mut settings = LeaseSettings::new(name, namespace, identity);
        settings.duration = duration;
        settings.renew_every = duration / 3;
        settings.retry_every = duration / 3;
        Election {
            api: Api::namespaced(client, namespace),
            settings,
        }
    }

    /// Who this candidate is in the Lease.
    pub fn identity(&self) -> &str {
        &self.settings.identity
    }

    /// Starts campaigning until `stop`; the receiver says whether it leads.
    fn campaign(
        &self,
        stop: &CancellationToken,
    ) -> (
        JoinHandle<Result<(), slipway_lease::LeaseError>>,
        watch::Receiver<bool>,
    ) {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(slipway_lease::lead(
            self.api.clone(),
            self.settings.clone(),
            tx,
            stop.clone(),
        ));
        (task, rx)
    }
}

/// Runs the controller's rounds while `election` holds its Lease, until `shutdown`; gives the
/// Lease up at the end, once the rounds have stopped.
pub async fn lead(
    election: &Election,
    cluster: Arc<dyn Cluster>,
    config: Config,
    shutdown: &CancellationToken,
) {
    loop {
        let stop = CancellationToken::new();
        let (mut campaign, mut leading) = election.campaign(&stop);
        let leads = tokio::select! {
            () = shutdown.cancelled() => false,
            held = leading.wait_for(|l| *l) => held.is_ok(),
        };
        if !leads {
            stop.cancel();
            let _ = campaign.await;
            if shutdown.is_cancelled() {
                return;
            }
            continue;
        }
        tracing::info!("pre-warming controller {} leads", election.identity());
        let acting = shutdown.child_token();
        let rounds = tokio::spawn(slipway_server::controller::run(
            cluster.clone(),
            config.clone(),
            acting.clone().cancelled_owned(),
        ));
        tokio::select! {
            () = shutdown.cancelled() => {
                acting.cancel();
                let _ = rounds.await;
                // Given up only now: nobody else acts while these rounds still run.
                stop.cancel();
                let _ = campaign.await;
                return;
            }
            lost = &mut campaign => {
                acting.cancel();
                let _ = rounds.await;
                let why = match lost {
                    Ok(Err(e)) => e.to_string(),
                    _ => "its campaign ended".to_string(),
                };
                tracing::warn!(
                    "pre-warming controller {} lost its Lease: failed to {why}",
                    election.identity()
                );
            }
        }
    }
}
