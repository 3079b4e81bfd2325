//! Writing copied objects into a root file system: parents created, owners and modes set,
//! times kept, hard links kept linked, nothing written outside the root.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use crate::build::copy::CopyError;
use crate::build::copy::entry::{Entry, Kind};
use crate::build::copy::rootpath;

/// Mode of the directories a COPY creates on the way to its destination.
const NEW_DIR_MODE: u32 = 0o755;

/// How the objects of one COPY are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ownership {
    /// `--chown`, resolved.
    pub chown: Option<(u32, u32)>,
    /// Keep the source's owners (a `--from` source or an archive) when no `--chown`.
    pub keep_source: bool,
    /// `--chmod`.
    pub chmod: Option<u32>,
}

impl Ownership {
    /// The same, keeping the source's owners when there is no `--chown` (archives).
    pub fn keep_source_owners(self) -> Self {
        Self {
            keep_source: true,
            ..self
        }
    }
}

/// Writes into one root file system.
pub struct Writer<'a> {
    root: &'a Path,
    ownership: Ownership,
    /// Where each multiply-linked source file was first written.
    links: HashMap<(u64, u64), PathBuf>,
    /// Directory times, set last so writing their children does not change them.
    dir_times: Vec<(PathBuf, (i64, i64))>,
}

impl<'a> Writer<'a> {
    /// A writer into `root`.
    pub fn new(root: &'a Path, ownership: Ownership) -> Self {
        Self {
            root,
            ownership,
            links: HashMap::new(),
            dir_times: Vec::new(),
        }
    }

    /// The root written into.
    pub fn root(&self) -> &'a Path {
        self.root
    }

    /// How objects are owned and moded.
    pub fn ownership(&self) -> Ownership {
        self.ownership
    }

    /// The owner new directories on the way to the destination get: `--chown`'s, else root
    /// (BuildKit chowns the destination directories it creates).
    fn dir_owner(&self) -> (u32, u32) {
        self.ownership.chown.unwrap_or((0, 0))
    }

    /// Resolves the image path `path` inside the root (following links) and creates what is
    /// missing of it as directories.
    pub fn mkdir_all(&self, path: &str) -> Result<PathBuf, CopyError> {
        let host = self.resolve(path, true)?;
        let rel = host
            .strip_prefix(self.root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let mut current = self.root.to_path_buf();
        for part in rel.components() {
            current.push(part);
            match std::fs::symlink_metadata(&current) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(CopyError::NotADirectory {
                        path: self.shown(&current),
                    });
                }
                Err(_) => {
                    std::fs::create_dir(&current).map_err(|e| self.write_error(&current, e))?;
                    let (uid, gid) = self.dir_owner();
                    std::os::unix::fs::lchown(&current, Some(uid), Some(gid))
                        .and_then(|()| {
                            let perms = std::fs::Permissions::from_mode(NEW_DIR_MODE);
                            std::fs::set_permissions(&current, perms)
                        })
                        .map_err(|e| self.write_error(&current, e))?;
                }
            }
        }
        Ok(host)
    }

    /// The host path of the image path `path`.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<PathBuf, CopyError> {
        rootpath::resolve(self.root, path, follow_last).map_err(|source| CopyError::Write {
            path: PathBuf::from("/").join(rootpath::clean(path)),
            source,
        })
    }

    /// Whether the image path `path` is a directory (links followed inside the root).
    pub fn is_dir(&self, path: &str) -> bool {
        self.resolve(path, true).is_ok_and(|p| p.is_dir())
    }

    /// Writes `entry` at the host path `at` (whose parent exists).
    pub fn put(&mut self, entry: &Entry, at: &Path) -> Result<(), CopyError> {
        let owner = self.owner_of(entry.uid, entry.gid);
        if matches!(entry.kind, Kind::Dir) {
            match std::fs::symlink_metadata(at) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(CopyError::NotADirectory {
                        path: self.shown(at),
                    });
                }
                Err(_) => std::fs::create_dir(at).map_err(|e| self.write_error(at, e))?,
            }
            self.finish(at, owner, Some(entry.mode))?;
            self.dir_times.push((at.to_path_buf(), entry.mtime));
            return Ok(());
        }
        self.clear(at)?;
        match &entry.kind {
            Kind::File { .. } => {
                if let Some(first) = entry.inode.and_then(|i| self.links.get(&i)) {
                    return std::fs::hard_link(first, at).map_err(|e| self.write_error(at, e));
                }
                let source =
                    std::fs::File::open(&entry.host).map_err(|source| CopyError::Read {
                        path: entry.host.clone(),
                        source,
                    })?;
                self.write_file(at, source)?;
                if let Some(inode) = entry.inode {
                    self.links.insert(inode, at.to_path_buf());
                }
            }
            Kind::Symlink(target) => {
                std::os::unix::fs::symlink(target, at).map_err(|e| self.write_error(at, e))?;
            }
            Kind::Fifo => {
                nix::unistd::mkfifo(at, Mode::from_bits_truncate(0o600))
                    .map_err(|e| self.write_error(at, e.into()))?;
            }
            Kind::Device { char, rdev } => {
                let kind = if *char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                nix::sys::stat::mknod(at, kind, Mode::from_bits_truncate(0o600), *rdev)
                    .map_err(|e| self.write_error(at, e.into()))?;
            }
            Kind::Dir => {}
        }
        let mode = (!matches!(entry.kind, Kind::Symlink(_))).then_some(entry.mode);
        self.finish(at, owner, mode)?;
        set_time(at, entry.mtime).map_err(|e| self.write_error(at, e))
    }

    /// Writes a file from `content` at `at` with `mode` (before `--chmod`) and `mtime`,
    /// owned by `--chown`'s owner or `owner`.
    pub fn put_stream(
        &mut self,
        at: &Path,
        content: impl Read,
        mode: u32,
        owner: (u32, u32),
        mtime: (i64, i64),
    ) -> Result<(), CopyError> {
        self.clear(at)?;
        self.write_file(at, content)?;
        let owner = self.owner_of(owner.0, owner.1);
        self.finish(at, owner, Some(mode))?;
        set_time(at, mtime).map_err(|e| self.write_error(at, e))
    }

    /// Records a hard link `at` to the image path `target` (resolved inside the root).
    pub fn hard_link(&self, target: &str, at: &Path) -> Result<(), CopyError> {
        let existing = self.resolve(target, false)?;
        self.clear(at)?;
        std::fs::hard_link(&existing, at).map_err(|e| self.write_error(at, e))
    }

    /// Sets the times of the directories written, deepest last written first.
    pub fn close(self) -> Result<(), CopyError> {
        for (dir, mtime) in self.dir_times.iter().rev() {
            set_time(dir, *mtime).map_err(|e| self.write_error(dir, e))?;
        }
        Ok(())
    }

    fn owner_of(&self, uid: u32, gid: u32) -> (u32, u32) {
        match self.ownership {
            Ownership {
                chown: Some(owner), ..
            } => owner,
            Ownership {
                keep_source: true, ..
            } => (uid, gid),
            _ => (0, 0),
        }
    }

    /// Removes a non-directory at `at` so a new object can take its place; a directory there
    /// is an error (Docker does not replace a directory with a file).
    fn clear(&self, at: &Path) -> Result<(), CopyError> {
        match std::fs::symlink_metadata(at) {
            Ok(meta) if meta.is_dir() => Err(CopyError::IsADirectory {
                path: self.shown(at),
            }),
            Ok(_) => std::fs::remove_file(at).map_err(|e| self.write_error(at, e)),
            Err(_) => Ok(()),
        }
    }

    fn write_file(&self, at: &Path, mut content: impl Read) -> Result<(), CopyError> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(at)
            .map_err(|e| self.write_error(at, e))?;
        std::io::copy(&mut content, &mut file).map_err(|e| self.write_error(at, e))?;
        Ok(())
    }

    /// Owner, then mode (a chown clears set-id bits, so the mode goes last).
    fn finish(&self, at: &Path, owner: (u32, u32), mode: Option<u32>) -> Result<(), CopyError> {
        std::os::unix::fs::lchown(at, Some(owner.0), Some(owner.1))
            .map_err(|e| self.write_error(at, e))?;
        if let Some(mode) = mode {
            let mode = self.ownership.chmod.unwrap_or(mode);
            std::fs::set_permissions(at, std::fs::Permissions::from_mode(mode))
                .map_err(|e| self.write_error(at, e))?;
        }
        Ok(())
    }

    /// A host path as the image sees it.
    fn shown(&self, host: &Path) -> PathBuf {
        PathBuf::from("/").join(host.strip_prefix(self.root).unwrap_or(host))
    }

    fn write_error(&self, host: &Path, source: std::io::Error) -> CopyError {
        CopyError::Write {
            path: self.shown(host),
            source,
        }
    }
}

/// Sets access and modification time without following a link.
fn set_time(path: &Path, (secs, nanos): (i64, i64)) -> std::io::Result<()> {
    let time = TimeSpec::new(secs, nanos);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(std::io::Error::from)
}
