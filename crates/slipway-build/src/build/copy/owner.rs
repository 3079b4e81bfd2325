//! `--chown=user[:group]` turned into numbers with the image's `/etc/passwd` and `/etc/group`.

use std::path::Path;

use crate::build::copy::rootpath;

/// Why `--chown` names no owner.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// The flag is empty or has an empty part.
    #[error("use --chown={spec:?}: expected user[:group]")]
    Malformed {
        /// The flag's value.
        spec: String,
    },
    /// The image has no such user or group.
    #[error("find {kind} {name:?} in the image's {file}")]
    Unknown {
        /// User or group.
        kind: NameKind,
        /// The name looked up.
        name: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
    },
    /// The lookup file could not be read.
    #[error("read the image's {file} to find {kind} {name:?}")]
    Read {
        /// User or group.
        kind: NameKind,
        /// The name looked up.
        name: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Which database a name is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `/etc/passwd`.
    User,
    /// `/etc/group`.
    Group,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::User => "user",
            Self::Group => "group",
        })
    }
}

/// Resolves `--chown` against the destination root file system. Numbers are taken as they
/// are; a user without a group gets the user's uid as gid (Docker's documented rule).
pub fn resolve(spec: &str, root: &Path) -> Result<(u32, u32), OwnerError> {
    let malformed = || OwnerError::Malformed {
        spec: spec.to_string(),
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(malformed());
    }
    let uid = lookup(root, NameKind::User, user)?;
    let gid = match group {
        Some(group) => lookup(root, NameKind::Group, group)?,
        None => uid,
    };
    Ok((uid, gid))
}

fn lookup(root: &Path, kind: NameKind, name: &str) -> Result<u32, OwnerError> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let file = match kind {
        NameKind::User => "/etc/passwd",
        NameKind::Group => "/etc/group",
    };
    let read_error = |source| OwnerError::Read {
        kind,
        name: name.to_string(),
        file,
        source,
    };
    let path = rootpath::resolve(root, file, true).map_err(read_error)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(read_error(e)),
    };
    // Both files put the name first and the id third: `name:x:id:...`.
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let entry = fields.next()?;
            let id = fields.nth(1)?;
            (entry == name).then(|| id.parse::<u32>().ok()).flatten()
        })
        .next()
        .ok_or_else(|| OwnerError::Unknown {
            kind,
            name: name.to_string(),
            file,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("mkdir");
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").expect("write");
        let root = dir.path();
        assert_eq!(resolve("app", root).ok(), Some((1000, 1000)));
        assert_eq!(resolve("app:staff", root).ok(), Some((1000, 50)));
        assert_eq!(resolve("10:11", root).ok(), Some((10, 11)));
        assert_eq!(resolve("7", root).ok(), Some((7, 7)));
        assert_eq!(resolve("app:9", root).ok(), Some((1000, 9)));
        let err = resolve("nobody", root).expect_err("unknown user");
        assert_eq!(
            err.to_string(),
            "find user \"nobody\" in the image's /etc/passwd"
        );
        let err = resolve("app:wheel", root).expect_err("unknown group");
        assert_eq!(
            err.to_string(),
            "find group \"wheel\" in the image's /etc/group"
        );
        assert!(matches!(
            resolve(":x", root),
            Err(OwnerError::Malformed { .. })
        ));
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            resolve("app", empty.path()),
            Err(OwnerError::Unknown { .. })
        ));
    }
}
