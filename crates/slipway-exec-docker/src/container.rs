//! One step container: its create body (mounts, env, user, limits), and running it to the end
//! with its output streamed as log lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use slipway_engine::executor::{Limits, StepPlan};
use slipway_engine::output::LineSplitter;
use slipway_engine::{EventSink, ExecEvent, StepEnd, Stream};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Label on every container slipway creates: the TaskRun uid.
pub const LABEL_TASKRUN: &str = "dev.slipway.taskrun";
/// Label naming the slipway process that owns the container (`pid:starttime`), for sweeping
/// what a killed process left.
pub const LABEL_OWNER: &str = "dev.slipway.owner";

/// A bind mount from this machine into a container.
#[derive(Debug, Clone)]
pub struct BindMount {
    /// Directory or file on this machine.
    pub host: PathBuf,
    /// Path in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
}

/// Everything a container needs besides its step.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// Image reference to create from.
    pub image: &'a str,
    /// Container name.
    pub name: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Bind mounts.
    pub mounts: Vec<BindMount>,
    /// `NetworkMode` (`none`, `bridge`, `container:<id>`), `None` for the daemon's default.
    pub network: Option<String>,
    /// Hostname, when the container owns its network namespace.
    pub hostname: Option<String>,
    /// Entrypoint override (a script path, or the step's command).
    pub entrypoint: Option<Vec<String>>,
    /// Arguments.
    pub cmd: Option<Vec<String>>,
    /// `user[:group]`.
    pub user: Option<String>,
}

/// The create body for a step or sidecar.
pub fn body(step: &StepPlan, p: &Placement<'_>) -> ContainerCreateBody {
    let Limits {
        memory_bytes,
        cpu_millis,
    } = step.limits;
    let memory = memory_bytes.and_then(|m| i64::try_from(m).ok());
    ContainerCreateBody {
        image: Some(p.image.to_string()),
        entrypoint: p.entrypoint.clone(),
        cmd: p.cmd.clone(),
        env: Some(step.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: step.working_dir.clone(),
        user: p.user.clone(),
        hostname: p.hostname.clone(),
        labels: Some(p.labels.clone()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        host_config: Some(HostConfig {
            mounts: Some(
                p.mounts
                    .iter()
                    .map(|m| Mount {
                        target: Some(m.target.clone()),
                        source: Some(m.host.to_string_lossy().into_owned()),
                        typ: Some(MountType::BIND),
                        read_only: Some(m.read_only),
                        ..Mount::default()
                    })
                    .collect(),
            ),
            network_mode: p.network.clone(),
            memory,
            // A pod's memory limit includes no swap.
            memory_swap: memory,
            nano_cpus: cpu_millis.and_then(|c| i64::try_from(c * 1_000_000).ok()),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

/// Creates a container; the message reads after "failed to".
pub async fn create(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> Result<String, String> {
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map(|r| r.id)
        .map_err(|e| format!("create container `{name}`: {}", message(e)))
}

/// Kills a container with SIGKILL; gone or stopped containers are fine.
pub async fn kill(docker: &Docker, id: &str) {
    let options = KillContainerOptionsBuilder::default()
        .signal("SIGKILL")
        .build();
    let _ = docker.kill_container(id, Some(options)).await;
}

/// Removes a container and its anonymous volumes, killing it first if it runs.
pub async fn remove(docker: &Docker, id: &str) -> Result<(), String> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(format!("remove container {id}: {}", message(e))),
    }
}

/// The daemon's own words.
pub fn message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

/// How one step container is run, besides its identity.
#[derive(Debug, Default)]
pub struct Watch {
    /// Where stdout is copied (`stdoutConfig`), on this machine.
    pub stdout: Option<PathBuf>,
    /// Where stderr is copied (`stderrConfig`), on this machine.
    pub stderr: Option<PathBuf>,
    /// When the container is killed (step or TaskRun timeout).
    pub deadline: Option<Instant>,
    /// Watch the memory cgroup for OOM kills (the step has a memory limit).
    pub memory: bool,
}

async fn open(p: &Option<PathBuf>) -> Option<tokio::fs::File> {
    let p = p.as_deref()?;
    if let Some(parent) = Path::new(p).parent() {
        let _ = tokio::fs::create_dir_all(parent).await;
    }
    tokio::fs::File::create(p).await.ok()
}

/// Splits output chunks into lines of bounded length per stream and sends them as log events,
/// waiting for room in the engine's channel: the attach stream is not read meanwhile, so the
/// daemon (and the container behind it) is held back instead of this process filling up.
struct Lines<'a> {
    events: &'a EventSink,
    step: usize,
    splitters: [LineSplitter; 2],
}

impl Lines<'_> {
    async fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let i = usize::from(stream == Stream::Stderr);
        for piece in self.splitters[i].push(bytes) {
            self.events.log(self.step, stream, piece).await;
        }
    }

    async fn flush(&mut self) {
        for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            if let Some(piece) = self.splitters[i].finish() {
                self.events.log(self.step, stream, piece).await;
            }
        }
    }
}

/// The daemon's answer to "wait until the container is not running".
type WaitStream<'a> = std::pin::Pin<
    Box<
        dyn futures::Stream<
                Item = Result<bollard::models::ContainerWaitResponse, bollard::errors::Error>,
            > + Send
            + 'a,
    >,
>;

/// Why a running container was stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Timeout,
    Cancel,
}

/// Starts container `id` attached, streams its output as step `index`, and waits for it,
/// killing it at the watch's deadline or when `cancel` fires.
pub async fn run(
    docker: &Docker,
    id: &str,
    index: usize,
    events: &EventSink,
    watch: &Watch,
    cancel: &CancellationToken,
) -> StepEnd {
    let attach = AttachContainerOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .stream(true)
        .build();
    let mut attached = match docker.attach_container(id, Some(attach)).await {
        Ok(a) => a,
        Err(e) => return StepEnd::StartFailed(format!("attach: {}", message(e))),
    };
    if let Err(e) = docker.start_container(id, None).await {
        return StepEnd::StartFailed(message(e));
    }
    events
        .send(ExecEvent::StepStarted {
            step: index,
            at: SystemTime::now(),
        })
        .await;
    // Only steps with a memory limit pay for the extra inspect.
    let oom_watch = if watch.memory {
        docker
            .inspect_container(id, None)
            .await
            .ok()
            .and_then(|c| c.state?.pid)
            .and_then(crate::oom::watch)
    } else {
        None
    };
    let mut out_file = open(&watch.stdout).await;
    // One file for both streams keeps their interleaving (and one truncation).
    let shared = watch.stdout.is_some() && watch.stdout == watch.stderr;
    let mut err_file = if shared {
        None
    } else {
        open(&watch.stderr).await
    };
    let mut lines = Lines {
        events,
        step: index,
        splitters: Default::default(),
    };
    let sleep = async {
        match watch.deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    let mut stopped = None;
    // Output first, then the exit code: the output can end before the container does (a daemon
    // hiccup, a closed stream), so the wait stays bounded by the same deadline and cancel.
    let mut waiting: Option<WaitStream<'_>> = None;
    let code = loop {
        tokio::select! {
            chunk = attached.output.next(), if waiting.is_none() => match chunk {
                Some(Ok(LogOutput::StdOut { message })) => {
                    lines.push(Stream::Stdout, &message).await;
                    if let Some(f) = out_file.as_mut() { let _ = f.write_all(&message).await; }
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    lines.push(Stream::Stderr, &message).await;
                    let f = if shared { out_file.as_mut() } else { err_file.as_mut() };
                    if let Some(f) = f { let _ = f.write_all(&message).await; }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    lines.flush().await;
                    for f in [out_file.as_mut(), err_file.as_mut()].into_iter().flatten() {
                        let _ = f.flush().await;
                    }
                    let options = WaitContainerOptionsBuilder::default()
                        .condition("not-running")
                        .build();
                    waiting = Some(Box::pin(docker.wait_container(id, Some(options))));
                }
            },
            r = async { waiting.as_mut()?.next().await }, if waiting.is_some() => break match r {
                Some(Ok(r)) => r.status_code,
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                Some(Err(e)) => return StepEnd::StartFailed(format!("wait: {}", message(e))),
                None => return StepEnd::StartFailed("wait: the daemon closed the stream".into()),
            },
            () = &mut sleep, if stopped.is_none() => {
                stopped = Some(Stop::Timeout);
                kill(docker, id).await;
            }
            () = cancel.cancelled(), if stopped.is_none() => {
                stopped = Some(Stop::Cancel);
                kill(docker, id).await;
            }
        }
    };
    match stopped {
        Some(Stop::Timeout) => return StepEnd::TimedOut,
        Some(Stop::Cancel) => return StepEnd::Cancelled,
        None => {}
    }
    if code == 137 {
        let oom = match &oom_watch {
            Some(w) => w.fired(),
            None => daemon_says_oom(docker, id).await,
        };
        tracing::debug!(
            "container {id} exited 137; OOM: {oom} (kernel watch: {})",
            oom_watch.is_some()
        );
        if oom {
            return StepEnd::OutOfMemory;
        }
    }
    StepEnd::Exited(i32::try_from(code).unwrap_or(1))
}

/// The daemon's `OOMKilled` flag, for when the kernel cannot be asked (a remote daemon, no
/// privileges). The daemon may record the OOM event a moment after the exit, so it is asked a
/// few times; it still misses kills of a child whose shell then exits 137 by itself.
async fn daemon_says_oom(docker: &Docker, id: &str) -> bool {
    for _ in 0..5 {
        match docker.inspect_container(id, None).await {
            Ok(c) if c.state.as_ref().and_then(|s| s.oom_killed) == Some(true) => return true,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(_) => return false,
        }
    }
    false
}
