//! Sidecar readiness probes: exec inside the container, TCP and HTTP against the pod's network.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use futures::StreamExt;
use slipway_engine::executor::ProbeAction;

/// How a probe reaches the pod's network.
#[derive(Debug, Clone)]
pub enum Reach {
    /// The pod has an address this machine can route to.
    Address(std::net::IpAddr),
    /// The pod's network is only visible from inside: enter the namespace of this process.
    Namespace(i64),
}

/// Runs one check; `Ok(())` means ready, `Err` says why not.
pub async fn check(
    docker: &Docker,
    container: &str,
    action: &ProbeAction,
    reach: &Reach,
    timeout: Duration,
) -> Result<(), String> {
    match action {
        ProbeAction::Exec(command) => {
            tokio::time::timeout(timeout, exec(docker, container, command))
                .await
                .map_err(|_| format!("`{}` took longer than {timeout:?}", command.join(" ")))?
        }
        ProbeAction::Tcp { port } => {
            let (reach, port) = (reach.clone(), *port);
            blocking(move || connect(&reach, port, timeout).map(drop)).await
        }
        ProbeAction::Http { port, path } => {
            let (reach, port, path) = (reach.clone(), *port, path.clone());
            blocking(move || http_get(&reach, port, &path, timeout)).await
        }
    }
}

async fn blocking(f: impl FnOnce() -> Result<(), String> + Send + 'static) -> Result<(), String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("probe thread failed: {e}"))?
}

async fn exec(docker: &Docker, container: &str, command: &[String]) -> Result<(), String> {
    let created = docker
        .create_exec(
            container,
            ExecConfig {
                cmd: Some(command.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..ExecConfig::default()
            },
        )
        .await
        .map_err(crate::container::message)?;
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(crate::container::message)?
    {
        while output.next().await.is_some() {}
    }
    let inspected = docker
        .inspect_exec(&created.id)
        .await
        .map_err(crate::container::message)?;
    match inspected.exit_code {
        Some(0) => Ok(()),
        code => Err(format!(
            "`{}` exited with {}",
            command.join(" "),
            code.map_or("no code".to_string(), |c| c.to_string())
        )),
    }
}

/// Connects to `port` in the pod's network.
fn connect(reach: &Reach, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let attempt = move |ip: std::net::IpAddr| {
        TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout)
            .map_err(|e| format!("connecting to port {port}: {e}"))
    };
    match reach {
        Reach::Address(ip) => attempt(*ip),
        Reach::Namespace(pid) => {
            // setns changes only the calling thread, so a short-lived thread does the connect;
            // the socket keeps its namespace after the thread ends.
            let pid = *pid;
            std::thread::spawn(move || {
                let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                    .map_err(|e| format!("opening the pod's network namespace: {e}"))?;
                use std::os::fd::AsRawFd;
                // SAFETY: setns on a valid namespace fd affects only this thread.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!(
                        "entering the pod's network namespace: {} (a network-probed sidecar with network `none` needs slipway to run as root)",
                        std::io::Error::last_os_error()
                    ));
                }
                attempt(std::net::IpAddr::from([127, 0, 0, 1]))
            })
            .join()
            .map_err(|_| "probe thread panicked".to_string())?
        }
    }
}

fn http_get(reach: &Reach, port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    slipway_taskdir::probe::http_get(connect(reach, port, timeout)?, port, path, timeout)
}
