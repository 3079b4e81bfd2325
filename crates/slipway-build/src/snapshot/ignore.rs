//! What a snapshot of the builder's own root leaves out: pseudo file systems, mounts, the
//! files the container runtime provides, and the builder's own files.

use std::path::{Component, Path, PathBuf};

/// Paths under the root that are never indexed, reset or written (Kaniko's list: its own
/// directory, `/etc/mtab`, `/var/run`, `/tmp/apt-key-gpghome*`, and every mount point).
const DEFAULT: &[&str] = &[
    "proc",
    "sys",
    "dev",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
    "etc/mtab",
    "var/run",
    "run/secrets",
    "var/run/secrets",
    ".dockerenv",
    "run/.containerenv",
];

/// Left out by name prefix: apt's temporary key directories (`/tmp/apt-key-gpghome.XXXX`).
const PREFIXES: &[&str] = &["tmp/apt-key-gpghome"];

/// Paths (relative to the root) a snapshot leaves alone, with everything under them.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    paths: Vec<PathBuf>,
    prefixes: Vec<String>,
}

impl Ignore {
    /// Only `paths` (relative to the root), nothing by default: for snapshots of a plain tree.
    pub fn only(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        Ignore {
            paths: paths.into_iter().collect(),
            prefixes: Vec::new(),
        }
    }

    /// The defaults, every mount point below `root` (from `/proc/self/mountinfo`), and
    /// `extra` (absolute host paths: the store, the context, the builder's binary).
    pub fn for_root(root: &Path, extra: &[PathBuf]) -> Self {
        let mut paths: Vec<PathBuf> = DEFAULT.iter().map(PathBuf::from).collect();
        let mounts = crate::run::mounts_under(root);
        for p in mounts
            .iter()
            .map(PathBuf::from)
            .chain(extra.iter().cloned())
        {
            if let Some(rel) = relative(root, &p).filter(|r| !r.as_os_str().is_empty()) {
                paths.push(rel);
            }
        }
        paths.sort();
        paths.dedup();
        Ignore {
            paths,
            prefixes: PREFIXES.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// True when `rel` is an ignored path or below one.
    pub fn skips(&self, rel: &Path) -> bool {
        self.paths.iter().any(|p| rel.starts_with(p))
            || self
                .prefixes
                .iter()
                .any(|p| rel.to_str().is_some_and(|r| r.starts_with(p.as_str())))
    }
}

/// `path` relative to `root` once made absolute and cleaned of `.` and `..` (no symlinks
/// resolved); `None` when it is not under `root`.
fn relative(root: &Path, path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut clean = PathBuf::from("/");
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::Normal(n) => clean.push(n),
            _ => {}
        }
    }
    clean.strip_prefix(root).ok().map(Path::to_path_buf)
}
