//! RUN in a fresh container: an overlay of the layers below, an OCI bundle, an OCI runtime.

mod bundle;
mod overlay;
mod runtime;
mod sweep;
mod user;

use std::path::PathBuf;

pub use crate::run::bundle::{Bundle, BundleMount, Process};
pub use crate::run::overlay::Overlay;
pub(crate) use crate::run::runtime::forward;
pub use crate::run::runtime::{ExitStatus, OciRuntime, Runtime, RuntimeKind};
pub use crate::run::sweep::{CONTAINER_PREFIX, mounts_under, sweep};
pub use crate::run::user::{UserSpec, resolve_user};

/// Why a RUN could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Mounting the overlay or a volume failed.
    #[error("mount {what} at {}", target.display())]
    Mount {
        /// What was mounted.
        what: String,
        /// Where.
        target: PathBuf,
        /// The kernel's answer.
        #[source]
        source: nix::Error,
    },
    /// A file of the bundle or the root file system could not be written or read.
    #[error("prepare {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No OCI runtime was found.
    #[error("find an OCI runtime (looked for {looked_for}); install Debian's `runc` or `crun`")]
    NoRuntime {
        /// The names tried.
        looked_for: String,
    },
    /// The runtime could not be started.
    #[error("start {runtime}")]
    Spawn {
        /// The runtime binary.
        runtime: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The command exited non-zero.
    #[error("run `{command}`: exit code {code}")]
    Failed {
        /// The command as the Dockerfile wrote it.
        command: String,
        /// Its exit code (128 + signal when killed).
        code: i32,
        /// Its last lines of output.
        tail: Vec<String>,
    },
    /// `USER` names someone the image does not know.
    #[error("find user `{user}` in the image's {file}")]
    UnknownUser {
        /// The name.
        user: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
    },
}
