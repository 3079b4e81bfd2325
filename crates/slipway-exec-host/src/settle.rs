//! A sidecar without a readiness probe counts as ready once its start-up burst is over: in
//! Tekton the steps start only after the controller has seen every sidecar running, a gap in
//! which a sidecar's first commands (writing a file a step reads) have run. Here the steps
//! would start at once, so the executor waits until the sidecar's process group has nothing
//! runnable (every process sleeping or stopped), or it exited, or a bound passed.

use std::time::Duration;

/// What the processes of a group are doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupState {
    /// Some process is running or in uninterruptible I/O.
    Busy,
    /// Every process sleeps or is stopped.
    Idle,
    /// No process is left.
    Gone,
}

/// The state letter and process group of one `/proc/PID/stat` line.
fn state_and_group(stat: &str) -> Option<(char, i32)> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

/// Scans `/proc` for the members of process group `pgid`.
fn group_state(pgid: i32) -> GroupState {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return GroupState::Gone;
    };
    let mut seen = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        match state_and_group(&stat) {
            Some((state, group)) if group == pgid => {
                seen = true;
                // Zombies are done; R and D are still working.
                if matches!(state, 'R' | 'D') {
                    return GroupState::Busy;
                }
            }
            _ => {}
        }
    }
    if seen {
        GroupState::Idle
    } else {
        GroupState::Gone
    }
}

/// Waits until group `pgid` has been idle twice in a row (20 ms apart), is gone, or `limit`
/// passed.
pub(crate) async fn settle(pgid: i32, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut idle = 0;
    while tokio::time::Instant::now() < deadline {
        match group_state(pgid) {
            GroupState::Gone => return,
            GroupState::Idle => idle += 1,
            GroupState::Busy => idle = 0,
        }
        if idle >= 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        assert_eq!(
            state_and_group("42 (a b) c) S 1 42 42 0 -1"),
            Some(('S', 42))
        );
        assert_eq!(state_and_group("garbage"), None);
    }

    #[tokio::test]
    async fn a_group_that_writes_then_sleeps_settles_after_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("value");
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo foo > {}; sleep 30",
                file.display()
            ))
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sh starts");
        let pgid = child.id().and_then(|p| i32::try_from(p).ok()).expect("pid");
        settle(pgid, Duration::from_secs(10)).await;
        // The busy loop ran before the write; settling means the write happened.
        assert_eq!(
            std::fs::read_to_string(&file).ok().as_deref(),
            Some("foo\n")
        );
        let _ = child.kill().await;
    }

    #[tokio::test]
    async fn a_finished_group_is_gone() {
        let mut child = tokio::process::Command::new("true")
            .process_group(0)
            .spawn()
            .expect("true starts");
        let pgid = child.id().and_then(|p| i32::try_from(p).ok()).expect("pid");
        let _ = child.wait().await;
        assert_eq!(group_state(pgid), GroupState::Gone);
    }
}
