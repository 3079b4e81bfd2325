//! What a killed build left behind (containers, mounts) removed before the next one starts.

use std::path::Path;

use crate::run::OciRuntime;

/// Deletes our runtime's leftover containers and detaches every mount under `dir` (deepest
/// first), so removing stale temporary directories afterwards cannot reach through a mount.
pub fn sweep(runtime: Option<&OciRuntime>, dir: &Path) {
    if let Some(runtime) = runtime {
        for id in runtime.list() {
            runtime.delete(&id);
        }
    }
    let mut targets = mounts_under(dir);
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

    #[test]
    fn a_leftover_mount_is_detached() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let ov = crate::run::Overlay::mount(
            &[tmp.path().join("a")],
            Some((&tmp.path().join("u"), &tmp.path().join("w"))),
            &tmp.path().join("l"),
            &tmp.path().join("m"),
        );
        // A lower directory that does not exist is refused; make it and retry.
        drop(ov);
        std::fs::create_dir_all(tmp.path().join("a"))?;
        let ov = crate::run::Overlay::mount(
            &[tmp.path().join("a")],
            Some((&tmp.path().join("u"), &tmp.path().join("w"))),
            &tmp.path().join("l"),
            &tmp.path().join("m"),
        )?;
        std::mem::forget(ov);
        assert_eq!(mounts_under(tmp.path()).len(), 1);
        sweep(None, tmp.path());
        assert!(mounts_under(tmp.path()).is_empty());
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
