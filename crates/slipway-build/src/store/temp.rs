//! Scratch directories under the store's `tmp/`, named after the owning process so a later
//! build can tell which ones a killed build left behind.

use std::path::{Path, PathBuf};

/// A directory removed when dropped (unless [`TempDir::keep`] is called).
#[derive(Debug)]
pub struct TempDir {
    path: Option<PathBuf>,
}

impl TempDir {
    /// Creates a fresh directory in `parent`, named `<pid>-<random>`.
    pub(crate) fn create_in(parent: &Path) -> std::io::Result<TempDir> {
        loop {
            let path = parent.join(unique_name());
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path: Some(path) }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Keeps the directory: the caller now owns it (and must remove or rename it).
    pub fn keep(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            remove_any(&p);
        }
    }
}

/// `<pid>-<random hex>`: the pid tells [`remove_stale`] whether the owner still runs.
pub(crate) fn unique_name() -> String {
    format!("{}-{:016x}", std::process::id(), fastrand::u64(..))
}

/// Removes a file or a directory tree, ignoring what is already gone.
pub(crate) fn remove_any(p: &Path) {
    let gone = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    };
    if let Err(e) = gone {
        tracing::debug!(path = %p.display(), error = %e, "could not remove a temporary path");
    }
}

/// Removes entries of `tmp` whose owning process no longer runs.
pub(crate) fn remove_stale(tmp: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(left_by_a_dead_process)
        {
            remove_any(&entry.path());
        }
    }
    Ok(())
}

/// True when `name` is `<pid>-...` (as [`unique_name`] makes them) and that process no longer
/// runs. A name made otherwise is never taken as left behind: someone else put it there, and
/// another build running at the same time keeps what it made.
pub(crate) fn left_by_a_dead_process(name: &str) -> bool {
    name.split_once('-')
        .and_then(|(pid, _)| pid.parse::<i32>().ok())
        .is_some_and(|pid| !process_alive(pid))
}

/// True while `pid` names a running process (signal 0 probes without sending anything).
fn process_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    // 0 and negative numbers name process groups, not one process.
    if pid <= 0 {
        return true;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != Errno::ESRCH,
    }
}
