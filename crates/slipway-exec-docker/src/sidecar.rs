//! Sidecars: a pause container holds the pod's network namespace, sidecars join it and start
//! first, and the steps wait until every readiness probe passes.

use slipway_engine::executor::{ExecOutcome, ExecStatus, StepPlan};
use slipway_engine::{EventSink, ExecEvent};
use slipway_taskdir::layout::Layout;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::container;
use crate::image::Ready;
use crate::pause;
use crate::probe::{self, Reach};
use crate::taskrun::{Pod, bounded, command, hostname, mounts, stopped, user};

/// Starts the pod's network holder and the sidecars, and waits for them to be ready; returns
/// the network mode steps join (`None` without sidecars).
pub(crate) async fn start(
    pod: &mut Pod<'_>,
    layout: &Layout,
    sidecars: &[StepPlan],
    images: &[Ready],
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> Result<Option<String>, ExecOutcome> {
    if sidecars.is_empty() {
        return Ok(None);
    }
    let docker = pod.inner.docker.clone();
    let error = |m: String| ExecOutcome::new(ExecStatus::Error, format!("failed to {m}"));
    pause::ensure_image(&docker).await.map_err(error)?;
    let mut p = pod.placement(pause::IMAGE, "pod");
    p.hostname = Some(hostname(&pod.name));
    let holder = pod.create(&StepPlan::default(), &p).await.map_err(error)?;
    docker
        .start_container(&holder, None)
        .await
        .map_err(|e| error(format!("start the pod: {}", container::message(e))))?;
    let network = format!("container:{holder}");
    let mut ready_checks = Vec::new();
    for (i, (s, image)) in sidecars.iter().zip(images).enumerate() {
        let mut p = pod.placement(&image.reference, &format!("sidecar-{}", s.name));
        p.network = Some(network.clone());
        p.mounts = mounts(layout, s, None);
        p.user = user(s, &image.config);
        let (entrypoint, cmd) =
            command(layout, s, &format!("sidecar-{i}")).map_err(|e| error(e.to_string()))?;
        p.entrypoint = entrypoint;
        p.cmd = cmd;
        let id = pod.create(s, &p).await.map_err(error)?;
        docker.start_container(&id, None).await.map_err(|e| {
            error(format!(
                "start sidecar `{}`: {}",
                s.name,
                container::message(e)
            ))
        })?;
        ready_checks.push((s, id));
    }
    let reach = match pod.inner.network.as_deref() {
        Some("host") => Reach::Address([127, 0, 0, 1].into()),
        _ => {
            let info = docker
                .inspect_container(&holder, None)
                .await
                .map_err(|e| error(format!("inspect the pod: {}", container::message(e))))?;
            let ip = info
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|n| n.into_values().find_map(|e| e.ip_address))
                .filter(|ip| !ip.is_empty())
                .and_then(|ip| ip.parse().ok());
            match ip {
                Some(ip) => Reach::Address(ip),
                None => Reach::Namespace(info.state.and_then(|s| s.pid).unwrap_or(0)),
            }
        }
    };
    for (s, id) in ready_checks {
        let Some(probe_plan) = &s.readiness else {
            continue;
        };
        let wait = async {
            tokio::time::sleep(probe_plan.initial_delay).await;
            loop {
                let last =
                    probe::check(&docker, &id, &probe_plan.action, &reach, probe_plan.timeout)
                        .await;
                match last {
                    Ok(()) => return Ok(()),
                    Err(why) => {
                        let running = docker
                            .inspect_container(&id, None)
                            .await
                            .ok()
                            .and_then(|c| c.state)
                            .and_then(|s| s.running)
                            .unwrap_or(false);
                        if !running {
                            return Err(format!(
                                "sidecar `{}` stopped before it was ready (last probe: {why})",
                                s.name
                            ));
                        }
                        tracing::debug!("sidecar {} not ready: {why}", s.name);
                    }
                }
                tokio::time::sleep(probe_plan.period).await;
            }
        };
        match bounded(wait, deadline, cancel).await {
            Some(Ok(())) => {
                events
                    .send(ExecEvent::Notice(format!("sidecar `{}` is ready", s.name)))
                    .await
            }
            Some(Err(m)) => return Err(ExecOutcome::new(ExecStatus::Failed, m)),
            None => {
                return Err(ExecOutcome::new(
                    stopped(deadline),
                    format!("stopped while waiting for sidecar `{}` to be ready", s.name),
                ));
            }
        }
    }
    Ok(Some(network))
}
