//! What a killed build left behind (containers, mounts) removed before the next one starts.

use std::path::Path;

use crate::run::OciRuntime;

/// What container ids of builds start with; the rest is `<pid>-<random>`.
pub const CONTAINER_PREFIX: &str = "slipway-build-";

/// Deletes the containers and detaches the mounts under `dir` (deepest first) that builds no
/// longer running left behind, so removing their temporary directories afterwards cannot reach
/// through a mount. Those of a build running at the same time are its own, and left alone.
pub fn sweep(runtime: Option<&OciRuntime>, dir: &Path) {
    if let Some(runtime) = runtime {
        for id in runtime.list() {
            if id
                .strip_prefix(CONTAINER_PREFIX)
                .is_some_and(crate::store::left_by_a_dead_process)
            {
                runtime.delete(&id);
            }
        }
    }
    let shown = dir.display().to_string();
    let prefix = format!("{}/", shown.trim_end_matches('/'));
    let mut targets: Vec<String> = mounts_under(dir)
        .into_iter()
        .filter(|t| {
            // The temporary directory the mount is in names the build that made it.
            t.strip_prefix(&prefix)
                .and_then(|rest| rest.split('/').next())
                .is_some_and(crate::store::left_by_a_dead_process)
        })
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = crate::run::overlay::unmount(Path::new(&t));
    }
}

/// Mount points at or below `dir`, from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let shown = dir.display().to_string();
    // `/` would otherwise become `//` below.
    let prefix = shown.trim_end_matches('/');
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p == &shown || p.starts_with(&format!("{prefix}/")))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match octal {
            Some(n) => {
                out.push(n);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mounts an overlay at `dir/m` (its lower, upper and work directories beside it).
    fn mount_in(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(dir.join("a"))?;
        let ov = crate::run::Overlay::mount(
            &[dir.join("a")],
            Some((&dir.join("u"), &dir.join("w"))),
            &dir.join("l"),
            &dir.join("m"),
        )?;
        std::mem::forget(ov);
        Ok(())
    }

    #[test]
    fn a_mount_left_by_a_dead_build_is_detached_and_a_running_ones_kept()
    -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let mut gone = std::process::Command::new("true").spawn()?;
        let dead = gone.id();
        gone.wait()?;
        let left = tmp.path().join(format!("{dead}-00000000000000aa"));
        let running = tmp
            .path()
            .join(format!("{}-00000000000000bb", std::process::id()));
        mount_in(&left)?;
        mount_in(&running)?;
        assert_eq!(mounts_under(tmp.path()).len(), 2);
        sweep(None, tmp.path());
        let after = mounts_under(tmp.path());
        assert_eq!(
            after,
            [running.join("m").display().to_string()],
            "only the dead build's mount goes"
        );
        let _ = crate::run::overlay::unmount(&running.join("m"));
        Ok(())
    }

    #[test]
    fn every_mount_is_under_the_root() {
        let all = mounts_under(Path::new("/"));
        assert!(all.iter().any(|m| m == "/"), "{all:?}");
        assert!(all.iter().any(|m| m == "/proc"), "{all:?}");
    }

    #[test]
    fn escapes_are_read_back() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\"), r"/a\");
        assert_eq!(unescape("/é\\040x"), "/é x");
    }
}
