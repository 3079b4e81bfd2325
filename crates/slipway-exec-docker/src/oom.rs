//! Telling an OOM kill from any other SIGKILL, from the kernel itself.
//!
//! The daemon's `OOMKilled` flag loses a race when the OOM killer picks a child process and the
//! step's shell then exits 137 on its own: the exit is recorded before the OOM event arrives.
//! When slipway shares the daemon's machine and may read cgroups, it watches the step's memory
//! cgroup while it runs: cgroup v1 signals an eventfd registered on `memory.oom_control`, cgroup
//! v2 notifies changes of `memory.events`. Both fire when the kernel kills, before the step ends.

use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A watch on one container's memory cgroup.
#[derive(Debug)]
pub struct OomWatch {
    fired: Arc<AtomicBool>,
}

impl OomWatch {
    /// Whether the kernel's OOM killer struck inside the container.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

/// The count after `oom_kill` in a `memory.oom_control` (v1) or `memory.events` (v2) file.
fn oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The memory cgroup directory of process `pid`: (directory, is cgroup v2).
fn memory_cgroup(pid: i64) -> Option<(PathBuf, bool)> {
    let table = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in table.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            return Some((
                Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')),
                false,
            ));
        }
    }
    let unified = table.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some((
        Path::new("/sys/fs/cgroup").join(unified.trim_start_matches('/')),
        true,
    ))
}

/// Starts watching the memory cgroup of the container whose first process is `pid`; `None`
/// when its cgroup cannot be read here (another machine, no privileges).
pub fn watch(pid: i64) -> Option<OomWatch> {
    let (dir, v2) = memory_cgroup(pid)?;
    let fired = Arc::new(AtomicBool::new(false));
    if v2 {
        watch_v2(&dir, fired.clone())?;
    } else {
        watch_v1(&dir, fired.clone())?;
    }
    Some(OomWatch { fired })
}

fn watch_v1(dir: &Path, fired: Arc<AtomicBool>) -> Option<()> {
    let control_path = dir.join("memory.oom_control");
    let control = std::fs::File::open(&control_path).ok()?;
    // SAFETY: eventfd returns a new descriptor or -1.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        return None;
    }
    // SAFETY: efd is a descriptor we own from here on.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    std::fs::write(
        dir.join("cgroup.event_control"),
        format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
    )
    .ok()?;
    if oom_kills(&std::fs::read_to_string(&control_path).unwrap_or_default()) > 0 {
        fired.store(true, Ordering::SeqCst);
    }
    std::thread::Builder::new()
        .name("oom-watch".into())
        .spawn(move || {
            let mut events = std::fs::File::from(efd);
            let mut count = [0u8; 8];
            // The eventfd is signalled when the cgroup runs out of memory (before the killer
            // has counted its kill) and again when the cgroup goes away; only the first finds
            // the cgroup still there.
            if events.read_exact(&mut count).is_ok() && control_path.exists() {
                fired.store(true, Ordering::SeqCst);
            }
            drop(control);
        })
        .ok()?;
    Some(())
}

fn watch_v2(dir: &Path, fired: Arc<AtomicBool>) -> Option<()> {
    let mut events = std::fs::File::open(dir.join("memory.events")).ok()?;
    let read = move |events: &mut std::fs::File| -> Option<u64> {
        let mut text = String::new();
        events.rewind().ok()?;
        events.read_to_string(&mut text).ok()?;
        Some(oom_kills(&text))
    };
    if read(&mut events)? > 0 {
        fired.store(true, Ordering::SeqCst);
        return Some(());
    }
    std::thread::Builder::new()
        .name("oom-watch".into())
        .spawn(move || {
            loop {
                let mut pfd = libc::pollfd {
                    fd: events.as_raw_fd(),
                    events: libc::POLLPRI,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; kernfs signals POLLPRI when the file changes.
                let n = unsafe { libc::poll(&mut pfd, 1, -1) };
                if n < 0 {
                    return;
                }
                match read(&mut events) {
                    Some(k) if k > 0 => {
                        fired.store(true, Ordering::SeqCst);
                        return;
                    }
                    Some(_) if pfd.revents & libc::POLLERR == 0 => {}
                    _ => return,
                }
            }
        })
        .ok()?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kill_count_of_both_formats() {
        assert_eq!(
            oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            2
        );
        assert_eq!(
            oom_kills("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n"),
            1
        );
        assert_eq!(oom_kills("oom_kill_disable 0\n"), 0);
    }

    #[test]
    fn finds_this_process_memory_cgroup() {
        // Every Linux process has a cgroup; the directory must exist while it runs.
        if let Some((dir, _)) = memory_cgroup(i64::from(std::process::id())) {
            assert!(dir.exists(), "{}", dir.display());
        }
    }
}
