//! The unprivileged mode's change detection: an index of a live root's metadata, taken before
//! an instruction and compared after it; what differs becomes the layer.
//!
//! Kaniko hashes every file after every RUN. Here a file counts as changed when its metadata
//! does (type, mode, owner, size, mtime, ctime, inode, link target): the kernel moves `ctime`
//! on every write, chmod, chown and link, and no process can set it back, so nothing is read
//! but directory entries and inodes.

mod ignore;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::layer::{Change, LayerError, io};
pub use crate::snapshot::ignore::Ignore;

/// What kind of file a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, FIFO or socket.
    Special,
}

/// The metadata of one path that any change moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Its type.
    pub kind: Kind,
    /// Permission and set-id bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Status change time (seconds, nanoseconds): moved by every write, chmod, chown, link.
    pub ctime: (i64, i64),
    /// Inode number: a file deleted and made again has a new one.
    pub ino: u64,
    /// A symlink's target.
    pub link: Option<PathBuf>,
}

impl Meta {
    fn of(abs: &Path, m: &std::fs::Metadata) -> Result<Self, LayerError> {
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Special
        };
        let link = match kind {
            Kind::Symlink => Some(std::fs::read_link(abs).map_err(io("read symlink", abs))?),
            _ => None,
        };
        Ok(Meta {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            link,
        })
    }
}

/// Every path under a root (relative, the root itself left out) with its metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Path → metadata, in walk order (parents first, siblings by name).
    pub paths: BTreeMap<PathBuf, Meta>,
}

impl Index {
    /// Walks `root`, leaving out what `ignore` names and other file systems mounted inside.
    pub fn walk(root: &Path, ignore: &Ignore) -> Result<Index, LayerError> {
        let dev = std::fs::symlink_metadata(root)
            .map_err(io("stat", root))?
            .dev();
        let mut index = Index::default();
        let mut pending = vec![PathBuf::new()];
        while let Some(dir) = pending.pop() {
            let abs = root.join(&dir);
            let entries = match std::fs::read_dir(&abs) {
                // Deleted while walking (a RUN's background process): simply absent.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                r => r.map_err(io("read directory", &abs))?,
            };
            for entry in entries {
                let entry = entry.map_err(io("read directory", &abs))?;
                let rel = dir.join(entry.file_name());
                if ignore.skips(&rel) {
                    continue;
                }
                let path = root.join(&rel);
                let m = match std::fs::symlink_metadata(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    r => r.map_err(io("stat", &path))?,
                };
                if m.dev() != dev {
                    continue;
                }
                let meta = Meta::of(&path, &m)?;
                if meta.kind == Kind::Dir {
                    pending.push(rel.clone());
                }
                index.paths.insert(rel, meta);
            }
        }
        Ok(index)
    }

    /// What turns `self` (before) into `after`: every new or changed path with the
    /// directories above it, and a whiteout for each deleted path whose parent is still a
    /// directory (a deleted directory's children go with its own whiteout; a directory
    /// deleted and made again gets whiteouts for the old children it no longer has).
    pub fn diff(&self, after: &Index) -> Vec<Change> {
        let mut out = std::collections::BTreeSet::new();
        let with_parents = |out: &mut std::collections::BTreeSet<Change>, rel: &Path| {
            let mut at = rel.parent();
            while let Some(p) = at.filter(|p| !p.as_os_str().is_empty()) {
                if !out.insert(Change::Path(p.to_path_buf())) {
                    break;
                }
                at = p.parent();
            }
        };
        for (rel, meta) in &after.paths {
            if self.paths.get(rel) != Some(meta) {
                out.insert(Change::Path(rel.clone()));
                with_parents(&mut out, rel);
            }
        }
        for rel in self.paths.keys() {
            if after.paths.contains_key(rel) {
                continue;
            }
            let parent = rel.parent().unwrap_or(Path::new(""));
            let parent_is_dir = parent.as_os_str().is_empty()
                || after.paths.get(parent).is_some_and(|m| m.kind == Kind::Dir);
            if parent_is_dir {
                out.insert(Change::Whiteout(rel.clone()));
                with_parents(&mut out, rel);
            }
        }
        let mut changes: Vec<Change> = out.into_iter().collect();
        // Walk order: by path (components compare, so `a/b` comes before `a-b`).
        changes.sort_by(|a, b| a.path().cmp(b.path()).then(a.cmp(b)));
        changes
    }
}
