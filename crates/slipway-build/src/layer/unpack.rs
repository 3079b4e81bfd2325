//! A layer blob → a directory in overlay's format (whiteouts as 0:0 character devices,
//! opaque directories marked by attribute), ready to be a lower directory; or applied onto a
//! live tree (whiteouts delete), as the unprivileged mode does to its own root.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};

use crate::layer::media::{NotALayer, layer_compression};
use crate::layer::write::{OPAQUE_MARKER, OPAQUE_XATTRS, WHITEOUT_PREFIX};
use crate::layer::{Compression, Escape, LayerError, io, xattr};

/// Where an unpacked layer goes.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// An empty directory, in overlay's format.
    Overlay,
    /// Onto the files already there: whiteouts and opaque markers delete. Paths for which
    /// `skip` (given the path relative to the tree) is true are neither written nor deleted.
    Flat(&'a dyn Fn(&Path) -> bool),
}

/// Unpacks the layer blob at `blob` (compressed as `media_type` says) into `into`, turning
/// Docker's whiteouts back into overlay's. Entries leaving `into` are refused. Blocking.
pub fn unpack(blob: &Path, media_type: &str, into: &Path) -> Result<(), LayerError> {
    unpack_to(blob, media_type, into, Target::Overlay)
}

/// Applies the layer blob at `blob` onto the tree `into` as a container would see it: files
/// written, whiteouts and opaque directories deleting what the layers below left. Paths for
/// which `skip` is true (relative to `into`: mounts, the builder's own files) are left alone.
/// Blocking.
pub fn apply(
    blob: &Path,
    media_type: &str,
    into: &Path,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(), LayerError> {
    unpack_to(blob, media_type, into, Target::Flat(skip))
}

fn unpack_to(
    blob: &Path,
    media_type: &str,
    into: &Path,
    target: Target<'_>,
) -> Result<(), LayerError> {
    let compression = layer_compression(media_type).map_err(|why| match why {
        NotALayer::Foreign => LayerError::Foreign {
            media_type: media_type.to_string(),
        },
        NotALayer::Unknown => LayerError::MediaType {
            media_type: media_type.to_string(),
        },
    })?;
    let file = File::open(blob).map_err(io("open", blob))?;
    let reader: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Compression::Zstd => Box::new(zstd::Decoder::new(file).map_err(io("read", blob))?),
        Compression::Uncompressed => Box::new(BufReader::new(file)),
    };
    std::fs::create_dir_all(into).map_err(io("create", into))?;
    let mut archive = tar::Archive::new(reader);
    let mut dirs = Vec::new();
    let mut written = HashSet::new();
    let read_err = |source| LayerError::Tar { op: "read", source };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        if let Some(dir) = unpack_entry(&mut entry, into, target, &mut written)? {
            dirs.push(dir);
        }
    }
    // Last: creating children changed the directories' times.
    for d in dirs.iter().rev() {
        d.apply()?;
    }
    Ok(())
}

/// One entry; a directory's metadata is returned to be applied at the end.
fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    into: &Path,
    to: Target<'_>,
    written: &mut HashSet<PathBuf>,
) -> Result<Option<Meta>, LayerError> {
    let raw = entry.path_bytes().into_owned();
    let rel = inside(&raw, &raw)?;
    let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
        // The root itself (`./`): the layer directory exists already.
        return Ok(None);
    };
    let skip = |p: &Path| matches!(to, Target::Flat(skip) if skip(p));
    if skip(&rel) {
        return Ok(None);
    }
    let parent = parents(into, &rel, &raw, true)?;
    let meta = Meta::of(entry, into.join(&rel))?;
    let target = &meta.path;
    if name.as_bytes() == OPAQUE_MARKER.as_bytes() {
        return match to {
            Target::Overlay => set_opaque(&parent),
            Target::Flat(_) => prune(
                into,
                rel.parent().unwrap_or(Path::new("")),
                &skip,
                Some(written),
            ),
        }
        .map(|()| None);
    }
    if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        let hidden_rel = rel.with_file_name(OsStr::from_bytes(hidden));
        if let Target::Flat(_) = to {
            return remove(into, &hidden_rel, &skip).map(|()| None);
        }
        let at = parent.join(OsStr::from_bytes(hidden));
        clear(&at, false)?;
        // Mode 0, as overlay itself makes them.
        mknod(&at, SFlag::S_IFCHR, 0, 0)?;
        chown(&at, meta.uid, meta.gid)?;
        return Ok(None);
    }
    let kind = entry.header().entry_type();
    if let Target::Flat(_) = to {
        written.insert(rel.clone());
        let keep_dir = kind.is_dir() && target.is_dir() && !target.is_symlink();
        if !keep_dir {
            remove(into, &rel, &skip)?;
        }
    }
    clear(target, kind.is_dir())?;
    match kind {
        tar::EntryType::Directory => {
            if !target.is_dir() {
                std::fs::create_dir(target).map_err(io("create", target))?;
            }
            return Ok(Some(meta));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let mut f = File::create_new(target).map_err(io("create", target))?;
            std::io::copy(entry, &mut f).map_err(io("write", target))?;
        }
        tar::EntryType::Link => {
            let link = link_name(entry)?;
            let src_rel = inside(&link, &raw)?;
            parents(into, &src_rel, &raw, false)?;
            let src = into.join(&src_rel);
            if std::fs::symlink_metadata(&src).is_err() {
                return Err(LayerError::DanglingHardlink {
                    entry: String::from_utf8_lossy(&raw).into_owned(),
                    target: String::from_utf8_lossy(&link).into_owned(),
                });
            }
            std::fs::hard_link(&src, target).map_err(io("link", target))?;
            // A hardlink shares the first entry's inode: its metadata is already right.
            return Ok(None);
        }
        tar::EntryType::Symlink => {
            let link = link_name(entry)?;
            std::os::unix::fs::symlink(OsStr::from_bytes(&link), target)
                .map_err(io("create symlink", target))?;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let h = entry.header();
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            let flag = match kind {
                tar::EntryType::Char => SFlag::S_IFCHR,
                tar::EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            mknod(
                target,
                flag,
                meta.mode,
                nix::sys::stat::makedev(major.into(), minor.into()),
            )?;
        }
        // Global headers and the like carry nothing for the file system.
        _ => return Ok(None),
    }
    meta.apply()?;
    Ok(None)
}

/// The relative path `raw` names, refusing `..` and absolute paths (the error names the
/// entry `shown`).
fn inside(raw: &[u8], shown: &[u8]) -> Result<PathBuf, LayerError> {
    let refuse = |reason| LayerError::Escape {
        entry: String::from_utf8_lossy(shown).into_owned(),
        reason,
    };
    if raw.starts_with(b"/") {
        return Err(refuse(Escape::Absolute));
    }
    let mut rel = PathBuf::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(refuse(Escape::ParentDir)),
            p => rel.push(OsStr::from_bytes(p)),
        }
    }
    Ok(rel)
}

/// Checks that no directory above `rel` is a symlink (creating missing ones when `create`);
/// returns the parent directory's path.
fn parents(into: &Path, rel: &Path, raw: &[u8], create: bool) -> Result<PathBuf, LayerError> {
    let mut at = into.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(at);
    };
    for part in parent.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(LayerError::Escape {
                    entry: String::from_utf8_lossy(raw).into_owned(),
                    reason: Escape::Symlink,
                });
            }
            Ok(_) => {}
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(io("create", &at))?;
            }
            Err(e) => return Err(io("stat", &at)(e)),
        }
    }
    Ok(at)
}

/// Deletes `rel` under `into` (a whole tree, never following a symlink) except paths
/// `skip` names; directories still holding such a path stay.
pub(crate) fn remove(
    into: &Path,
    rel: &Path,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(), LayerError> {
    let at = into.join(rel);
    match std::fs::symlink_metadata(&at) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("stat", &at)(e)),
        Ok(_) if skip(rel) => Ok(()),
        Ok(m) if m.is_dir() => {
            prune(into, rel, skip, None)?;
            match std::fs::remove_dir(&at) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
                r => r.map_err(io("remove", &at)),
            }
        }
        Ok(_) => std::fs::remove_file(&at).map_err(io("remove", &at)),
    }
}

/// Deletes what is inside the directory `rel` under `into`, except paths `skip` names and,
/// for an opaque directory, what the layer itself wrote (`written`).
pub(crate) fn prune(
    into: &Path,
    rel: &Path,
    skip: &dyn Fn(&Path) -> bool,
    written: Option<&HashSet<PathBuf>>,
) -> Result<(), LayerError> {
    let dir = into.join(rel);
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.map_err(io("read directory", &dir))?,
    };
    for entry in entries {
        let entry = entry.map_err(io("read directory", &dir))?;
        let child = rel.join(entry.file_name());
        if skip(&child) {
            continue;
        }
        if written.is_some_and(|w| w.contains(&child)) {
            // Written by this layer, but a directory may still hold older children.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                prune(into, &child, skip, written)?;
            }
            continue;
        }
        remove(into, &child, skip)?;
    }
    Ok(())
}

/// Removes what a later entry replaces (a directory stays when replaced by a directory).
fn clear(path: &Path, keep_dir: bool) -> Result<(), LayerError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && keep_dir => Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(io("replace", path)),
        Ok(_) => std::fs::remove_file(path).map_err(io("replace", path)),
        Err(_) => Ok(()),
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<Vec<u8>, LayerError> {
    Ok(entry
        .link_name_bytes()
        .map(|l| l.into_owned())
        .unwrap_or_default())
}

fn mknod(path: &Path, kind: SFlag, mode: u32, dev: u64) -> Result<(), LayerError> {
    nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(mode), dev)
        .map_err(|e| io("create device", path)(e.into()))
}

/// Marks `dir` opaque the way overlay reads it; without privileges for `trusted.`, the
/// `user.` form (overlay's `userxattr` mounts) is used.
fn set_opaque(dir: &Path) -> Result<(), LayerError> {
    let [trusted, user] = OPAQUE_XATTRS;
    match xattr::set(dir, OsStr::new(trusted), b"y") {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            xattr::set(dir, OsStr::new(user), b"y").map_err(io("mark opaque", dir))
        }
        r => r.map_err(io("mark opaque", dir)),
    }
}

/// Ownership; refused ownership changes (an unprivileged unpack) keep the caller's.
fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), LayerError> {
    match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            tracing::debug!(path = %path.display(), "cannot change ownership without privileges");
            Ok(())
        }
        r => r.map_err(io("change owner of", path)),
    }
}

/// An entry's metadata, applied once its file exists.
struct Meta {
    path: PathBuf,
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    symlink: bool,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(entry: &mut tar::Entry<'_, R>, path: PathBuf) -> Result<Meta, LayerError> {
        let read_err = |source| LayerError::Tar { op: "read", source };
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(read_err)? {
            for ext in pax {
                let ext = ext.map_err(read_err)?;
                if let Ok(key) = ext.key()
                    && let Some(name) = key.strip_prefix("SCHILY.xattr.")
                {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        let h = entry.header();
        let num = |r: std::io::Result<u64>| r.map_err(read_err);
        Ok(Meta {
            path,
            uid: u32::try_from(num(h.uid())?).unwrap_or(u32::MAX),
            gid: u32::try_from(num(h.gid())?).unwrap_or(u32::MAX),
            mode: num(h.mode().map(u64::from))? as u32 & 0o7777,
            mtime: i64::try_from(num(h.mtime())?).unwrap_or(i64::MAX),
            symlink: h.entry_type() == tar::EntryType::Symlink,
            xattrs,
        })
    }

    /// Ownership first (it clears set-id bits), then mode, attributes and time.
    fn apply(&self) -> Result<(), LayerError> {
        let p = &self.path;
        chown(p, self.uid, self.gid)?;
        if !self.symlink {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(self.mode))
                .map_err(io("change mode of", p))?;
        }
        for (name, value) in &self.xattrs {
            xattr::set(p, OsStr::new(name), value).map_err(io("set attributes of", p))?;
        }
        let t = filetime::FileTime::from_unix_time(self.mtime, 0);
        filetime::set_symlink_file_times(p, t, t).map_err(io("set times of", p))
    }
}
