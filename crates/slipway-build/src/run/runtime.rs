//! The OCI runtime that executes a bundle (Debian's `runc` or `crun`), behind a trait so the
//! driver can be tested without one.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::run::{Bundle, RunError};

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code (128 + signal when killed).
    pub code: i32,
}

/// Which runtime binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// opencontainers' runc.
    Runc,
    /// crun.
    Crun,
}

/// Runs bundles.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug {
    /// Runs `bundle` as container `id` to completion, handing each output line to `on_line`.
    async fn run(
        &self,
        id: &str,
        bundle: &Bundle,
        on_line: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ExitStatus, RunError>;
}

/// A runtime binary with its own state directory.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    binary: PathBuf,
    kind: RuntimeKind,
    state: PathBuf,
}

impl OciRuntime {
    /// Finds `runc` or `crun` (`SLIPWAY_OCI_RUNTIME` names another) keeping state in `state`.
    pub fn find(state: &Path) -> Result<Self, RunError> {
        let wanted = std::env::var("SLIPWAY_OCI_RUNTIME").ok();
        let names: Vec<String> = match &wanted {
            Some(w) => vec![w.clone()],
            None => vec!["runc".into(), "crun".into()],
        };
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        dirs.extend(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
        for name in &names {
            let candidates: Vec<PathBuf> = if name.contains('/') {
                vec![PathBuf::from(name)]
            } else {
                dirs.iter().map(|d| d.join(name)).collect()
            };
            if let Some(binary) = candidates.into_iter().find(|p| p.is_file()) {
                let kind = if name.ends_with("crun") {
                    RuntimeKind::Crun
                } else {
                    RuntimeKind::Runc
                };
                return Ok(Self {
                    binary,
                    kind,
                    state: state.to_path_buf(),
                });
            }
        }
        Err(RunError::NoRuntime {
            looked_for: names.join(", "),
        })
    }

    /// The runtime's kind.
    pub fn kind(&self) -> RuntimeKind {
        self.kind
    }

    /// Its state directory (one per store, so a sweep finds only our containers).
    pub fn state(&self) -> &Path {
        &self.state
    }

    fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.binary);
        c.arg("--root").arg(&self.state);
        c
    }

    /// Kills and deletes container `id` if it exists (synchronously: used from `Drop`).
    pub fn delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The ids of containers in the state directory.
    pub fn list(&self) -> Vec<String> {
        let Ok(out) = self.command().args(["list", "-q"]).output() else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// Deletes the container when the RUN ends in any way, Ctrl-C and errors included: killing
/// `runc run` alone would leave the container's processes running.
struct Reaper<'a> {
    runtime: &'a OciRuntime,
    id: &'a str,
}

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        self.runtime.delete(self.id);
    }
}

/// Forwards `pipe`'s lines.
pub(crate) async fn forward(
    pipe: impl AsyncRead + Unpin,
    on_line: &(dyn Fn(String) + Send + Sync),
) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        on_line(line);
    }
}

#[async_trait::async_trait]
impl Runtime for OciRuntime {
    async fn run(
        &self,
        id: &str,
        bundle: &Bundle,
        on_line: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ExitStatus, RunError> {
        std::fs::create_dir_all(&self.state).map_err(|source| RunError::Io {
            path: self.state.clone(),
            source,
        })?;
        let _reaper = Reaper { runtime: self, id };
        let mut child = tokio::process::Command::from(self.command())
            .arg("run")
            .arg("--bundle")
            .arg(&bundle.dir)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| RunError::Spawn {
                runtime: self.binary.display().to_string(),
                source,
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let out = async {
            if let Some(s) = stdout {
                forward(s, on_line).await;
            }
        };
        let err = async {
            if let Some(s) = stderr {
                forward(s, on_line).await;
            }
        };
        let ((), (), status) = tokio::join!(out, err, child.wait());
        let status = status.map_err(|source| RunError::Spawn {
            runtime: self.binary.display().to_string(),
            source,
        })?;
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(255);
        Ok(ExitStatus { code })
    }
}
