//! `USER name[:group]` to numeric ids, read from the image's own `/etc/passwd` and `/etc/group`.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

use crate::run::RunError;

/// Who a process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (those listing the user in `/etc/group`).
    pub additional_gids: Vec<u32>,
    /// Home directory (for `HOME` when the image sets none).
    pub home: String,
}

/// Reads a file of the image with every symlink resolved inside `rootfs`: a hostile image's
/// `/etc/passwd -> /root/.docker/config.json` must not reach the builder's own files.
pub(crate) fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let root = std::fs::File::open(rootfs).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_fd(), path, how).ok()?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(16 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// One `name:x:id:...` line's fields.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
}

/// Resolves `USER` as Docker does: numbers as-is, names from the image's files; an empty
/// spec is root. A number unknown to `/etc/passwd` is allowed (group = 0, home `/`).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<UserSpec, RunError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let passwd = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    let groups = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    let by_name_or_id = |e: &Vec<&str>| {
        e.len() >= 4 && (e[0] == user || (user.parse::<u32>().is_ok() && e[2] == user))
    };
    let entry = entries(&passwd).find(by_name_or_id);
    let (uid, mut gid, home, name) = match (&entry, user.parse::<u32>()) {
        (Some(e), _) => (
            e[2].parse().unwrap_or(0),
            e[3].parse().unwrap_or(0),
            e.get(5).copied().unwrap_or("/").to_string(),
            e[0].to_string(),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), String::new()),
        (None, Err(_)) => {
            return Err(RunError::UnknownUser {
                user: user.to_string(),
                file: "/etc/passwd",
            });
        }
    };
    if let Some(group) = group {
        gid = match group.parse::<u32>() {
            Ok(g) => g,
            Err(_) => entries(&groups)
                .find(|e| e.len() >= 3 && e[0] == group)
                .and_then(|e| e[2].parse().ok())
                .ok_or_else(|| RunError::UnknownUser {
                    user: group.to_string(),
                    file: "/etc/group",
                })?,
        };
    }
    // Docker adds the groups that list the user, only when no group was given.
    let additional_gids = if group.is_none() && !name.is_empty() {
        entries(&groups)
            .filter(|e| e.len() >= 4 && e[3].split(',').any(|m| m == name))
            .filter_map(|e| e[2].parse().ok())
            .filter(|g| *g != gid)
            .collect()
    } else {
        Vec::new()
    };
    Ok(UserSpec {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(t.path().join("etc")).expect("etc");
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nappgrp:x:1001:\nextra:x:2000:app,other\n",
        )
        .expect("group");
        t
    }

    #[test]
    fn names_numbers_and_groups() -> Result<(), RunError> {
        let t = rootfs();
        let app = resolve_user(t.path(), "app")?;
        assert_eq!(
            (app.uid, app.gid, app.additional_gids),
            (1000, 1001, vec![2000])
        );
        assert_eq!(app.home, "/home/app");
        let root = resolve_user(t.path(), "")?;
        assert_eq!((root.uid, root.gid), (0, 0));
        let numeric = resolve_user(t.path(), "4242:extra")?;
        assert_eq!((numeric.uid, numeric.gid), (4242, 2000));
        assert!(matches!(
            resolve_user(t.path(), "nobody-here"),
            Err(RunError::UnknownUser {
                file: "/etc/passwd",
                ..
            })
        ));
        assert!(matches!(
            resolve_user(t.path(), "app:nogroup"),
            Err(RunError::UnknownUser {
                file: "/etc/group",
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn a_symlink_out_of_the_image_stays_inside() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        std::fs::write(outside.path().join("passwd"), "evil:x:7:7::/:/bin/sh\n")?;
        std::fs::create_dir_all(t.path().join("etc"))?;
        std::os::unix::fs::symlink(outside.path().join("passwd"), t.path().join("etc/passwd"))?;
        // Resolved inside the root, the link points at nothing, so the name is unknown.
        assert!(resolve_user(t.path(), "evil").is_err());
        Ok(())
    }
}
