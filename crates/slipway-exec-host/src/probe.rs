//! Sidecar readiness on this machine: exec probes run beside the sidecar with its mounts, TCP
//! and HTTP probes reach its port on the loopback, the network host processes share.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use slipway_engine::executor::{ExecOutcome, ExecStatus, ProbeAction, ProbePlan, StepPlan};
use tokio::process::Child;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::sandbox::Sandbox;
use slipway_taskdir::layout::Layout;
use slipway_taskdir::probe::http_get;

fn loopback(port: u16, timeout: Duration) -> Result<TcpStream, String> {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout)
        .map_err(|e| format!("connecting to port {port}: {e}"))
}

/// A sidecar being waited for: what runs it and how it is checked.
pub(crate) struct Waiting<'a> {
    pub(crate) root: Option<&'a Sandbox>,
    pub(crate) shell: Option<&'a Path>,
    pub(crate) layout: &'a Layout,
    pub(crate) sidecar: &'a StepPlan,
    pub(crate) index: usize,
    pub(crate) probe: &'a ProbePlan,
}

impl Waiting<'_> {
    /// One check; `Ok(())` means ready, `Err` says why not.
    async fn check(&self) -> Result<(), String> {
        let timeout = self.probe.timeout;
        match &self.probe.action {
            ProbeAction::Exec(command) => self.exec(command).await,
            ProbeAction::Tcp { port } => {
                let port = *port;
                blocking(move || loopback(port, timeout).map(drop)).await
            }
            ProbeAction::Http { port, path } => {
                let (port, path) = (*port, path.clone());
                blocking(move || http_get(loopback(port, timeout)?, port, &path, timeout)).await
            }
        }
    }

    /// Runs the probe's command as the sidecar runs, with its mounts and user.
    async fn exec(&self, command: &[String]) -> Result<(), String> {
        let plan = StepPlan {
            command: command.to_vec(),
            args: Vec::new(),
            script: None,
            stdout_path: None,
            stderr_path: None,
            ..self.sidecar.clone()
        };
        let tag = format!("probe-{}", self.index);
        let mut cmd = crate::step::build(self.root, self.shell, self.layout, &plan, None, &tag)
            .map_err(|e| format!("`{}` cannot start: {e}", command.join(" ")))?;
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("`{}` cannot start: {e}", command.join(" ")))?;
        match tokio::time::timeout(self.probe.timeout, child.wait()).await {
            Ok(Ok(st)) if st.success() => Ok(()),
            Ok(Ok(st)) => Err(format!("`{}` exited with {st}", command.join(" "))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                slipway_taskdir::supervise::kill_group(&child, libc::SIGKILL);
                let _ = child.wait().await;
                Err(format!(
                    "`{}` took longer than {:?}",
                    command.join(" "),
                    self.probe.timeout
                ))
            }
        }
    }

    /// Checks until the sidecar is ready, stops, or the TaskRun is cancelled or out of time.
    pub(crate) async fn until_ready(
        &self,
        child: &mut Child,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<(), ExecOutcome> {
        let name = &self.sidecar.name;
        let wait = async {
            tokio::time::sleep(self.probe.initial_delay).await;
            loop {
                let why = match self.check().await {
                    Ok(()) => return Ok(()),
                    Err(why) => why,
                };
                if !matches!(child.try_wait(), Ok(None)) {
                    return Err(format!(
                        "sidecar `{name}` stopped before it was ready (last probe: {why})"
                    ));
                }
                tracing::debug!("sidecar {name} not ready: {why}");
                tokio::time::sleep(self.probe.period).await;
            }
        };
        let far = Instant::now() + slipway_model::duration::FAR;
        tokio::select! {
            r = wait => r.map_err(|m| ExecOutcome::new(ExecStatus::Failed, m)),
            () = tokio::time::sleep_until(deadline.unwrap_or(far)) => Err(ExecOutcome::new(
                ExecStatus::TimedOut,
                format!("timed out waiting for sidecar `{name}` to be ready"),
            )),
            () = cancel.cancelled() => Err(ExecOutcome::new(
                ExecStatus::Cancelled,
                format!("cancelled while waiting for sidecar `{name}` to be ready"),
            )),
        }
    }
}

async fn blocking(f: impl FnOnce() -> Result<(), String> + Send + 'static) -> Result<(), String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("probe thread failed: {e}"))?
}
