//! A step's process on this machine as it is watched: output into log lines and files, the
//! step's timeout, the TaskRun's deadline and cancelling.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, SystemTime};

use slipway_engine::executor::StepPlan;
use slipway_engine::output::LineSplitter;
use slipway_engine::{EventSink, ExecEvent, StepEnd, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::layout::{Bind, Layout};

/// Reads a step's stream into log lines of bounded length. Each piece waits for room in the
/// engine's channel before more is read, so a step that writes faster than the store keeps up
/// blocks on its full pipe instead of growing this process.
async fn pump<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    stream: Stream,
    step: usize,
    events: EventSink,
    mut file: Option<tokio::fs::File>,
) {
    let mut lines = LineSplitter::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(&chunk[..n]).await;
        }
        for piece in lines.push(&chunk[..n]) {
            events.log(step, stream, piece).await;
        }
    }
    if let Some(piece) = lines.finish() {
        events.log(step, stream, piece).await;
    }
    if let Some(mut f) = file {
        let _ = f.flush().await;
    }
}

async fn open_stream_file(
    layout: &Layout,
    extra: &[Bind],
    path: &Option<String>,
    truncate: bool,
) -> Option<tokio::fs::File> {
    let p = path.as_ref()?;
    // Step paths map to host paths the same way with or without the sandbox.
    let host = layout.host_path(p, extra);
    if let Some(parent) = host.parent() {
        let _ = tokio::fs::create_dir_all(parent).await;
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(!truncate)
        .write(true)
        .truncate(truncate)
        .open(host)
        .await
        .ok()
}

/// Sends `signal` to the process group the child leads.
pub fn kill_group(child: &Child, signal: libc::c_int) {
    if let Some(pid) = child.id() {
        // SAFETY: signalling a process group we created with setsid.
        unsafe {
            libc::kill(-(pid as libc::pid_t), signal);
        }
    }
}

/// Spawns, retrying while the script is "text file busy": another thread's fork may briefly
/// hold the script's write descriptor until that child execs.
async fn spawn(cmd: &mut Command) -> io::Result<Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            other => return other,
        }
    }
}

/// A step's process as it is watched: where its output files go and how to name it.
pub struct Supervised<'a> {
    /// The TaskRun's directories.
    pub layout: &'a Layout,
    /// The step's own binds, for its stdout and stderr files.
    pub binds: &'a [Bind],
    /// Whether it runs in the sandbox (said when it cannot start).
    pub sandboxed: bool,
}

impl Supervised<'_> {
    /// Starts `cmd` as step `i` and waits for its end, its timeout, or a cancel.
    pub async fn wait(
        &self,
        cmd: &mut Command,
        s: &StepPlan,
        i: usize,
        events: &EventSink,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
    ) -> StepEnd {
        events
            .send(ExecEvent::StepStarted {
                step: i,
                at: SystemTime::now(),
            })
            .await;
        let mut child = match spawn(cmd).await {
            Ok(c) => c,
            Err(e) => {
                // Name what was started and where, so "No such file or directory" can be acted on.
                let program = cmd.as_std().get_program().to_string_lossy().into_owned();
                let workdir = s.working_dir.as_deref().unwrap_or("/workspace");
                let place = if self.sandboxed { ", sandboxed" } else { "" };
                let why = format!("cannot run `{program}` (in `{workdir}`{place}): {e}");
                events
                    .send(ExecEvent::Log {
                        step: i,
                        stream: Stream::Stderr,
                        line: format!("slipway: {why}"),
                        continued: false,
                        at: SystemTime::now(),
                    })
                    .await;
                return StepEnd::StartFailed(why);
            }
        };
        let (layout, extra) = (self.layout, self.binds);
        let same_file = s.stdout_path.is_some() && s.stdout_path == s.stderr_path;
        let out_file = open_stream_file(layout, extra, &s.stdout_path, !same_file).await;
        let err_file = open_stream_file(layout, extra, &s.stderr_path, !same_file).await;
        let out = child
            .stdout
            .take()
            .map(|o| tokio::spawn(pump(o, Stream::Stdout, i, events.clone(), out_file)));
        let err = child
            .stderr
            .take()
            .map(|e| tokio::spawn(pump(e, Stream::Stderr, i, events.clone(), err_file)));
        let end = watch(&mut child, s, cancel, deadline).await;
        // Output of background processes that keep the pipes open must not hold the step forever.
        for h in [out, err].into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        end
    }
}

/// Waits for the child, its step timeout, the TaskRun's deadline or a cancel; stops it unless
/// it exited.
async fn watch(
    child: &mut Child,
    s: &StepPlan,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> StepEnd {
    let far = Instant::now() + slipway_model::duration::FAR;
    let step_deadline = s
        .timeout
        .map(|t| Instant::now() + slipway_model::duration::capped(t))
        .unwrap_or(far);
    let task_deadline = deadline.unwrap_or(far);
    let end = tokio::select! {
        st = child.wait() => match st {
            Ok(st) => StepEnd::Exited(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(9))),
            Err(e) => StepEnd::StartFailed(e.to_string()),
        },
        () = tokio::time::sleep_until(step_deadline) => StepEnd::TimedOut,
        () = tokio::time::sleep_until(task_deadline) => StepEnd::Cancelled,
        () = cancel.cancelled() => StepEnd::Cancelled,
    };
    if !matches!(end, StepEnd::Exited(_)) {
        kill_group(child, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(2), child.wait())
            .await
            .is_err()
        {
            kill_group(child, libc::SIGKILL);
            let _ = child.wait().await;
        }
    }
    end
}
