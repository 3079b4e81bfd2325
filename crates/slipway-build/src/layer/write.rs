//! An overlay upper directory, or a list of changed paths of a live root, → a layer blob in
//! the store, in one streaming pass.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::layer::hash::HashingWriter;
use crate::layer::{Compression, Layer, LayerError, LayerOptions, OverlayFeature, io, xattr};
use crate::store::Store;

/// Docker's marker for a deleted file: `.wh.<name>`.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
/// Docker's marker for an opaque directory (lower contents hidden).
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Overlay's opaque-directory attributes (`user.` when mounted with `userxattr`).
pub(crate) const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// One entry of a layer made from a diff of a live root (the unprivileged mode).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// The path as it is now (a directory without its children).
    Path(PathBuf),
    /// The path was deleted: Docker's `.wh.<name>` beside it.
    Whiteout(PathBuf),
}

impl Change {
    /// The path the change is about.
    pub fn path(&self) -> &Path {
        match self {
            Change::Path(p) | Change::Whiteout(p) => p,
        }
    }
}

/// What a layer is read from.
#[derive(Clone, Copy)]
enum Contents<'a> {
    /// An overlay upper directory, whole.
    Upper(&'a Path),
    /// Listed paths (sorted as a walk would visit them) under a root.
    Changes(&'a Path, &'a [Change]),
}

/// Writes the layer for `upper` (only its own files, sorted by name) into the store: tar →
/// compressor → file, hashing the tar (diff_id) and the blob (digest) on the way. Blocking.
pub fn write_layer(store: &Store, upper: &Path, opts: &LayerOptions) -> Result<Layer, LayerError> {
    write_contents(store, Contents::Upper(upper), opts)
}

/// Writes the layer of `changes` (paths relative to `root`, in walk order: parents first,
/// siblings by name) into the store. Blocking.
pub fn write_changes(
    store: &Store,
    root: &Path,
    changes: &[Change],
    opts: &LayerOptions,
) -> Result<Layer, LayerError> {
    write_contents(store, Contents::Changes(root, changes), opts)
}

fn write_contents(
    store: &Store,
    upper: Contents<'_>,
    opts: &LayerOptions,
) -> Result<Layer, LayerError> {
    let scratch = store.temp_dir()?;
    let path = scratch.path().join("blob");
    let file = File::create(&path).map_err(io("create", &path))?;
    let blob = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let written = |e| io("write", &path)(e);
    let (blob, diff_id) = match opts.compression {
        Compression::Gzip => {
            let level = opts.level.map_or(flate2::Compression::fast(), |l| {
                flate2::Compression::new(l.min(9))
            });
            let enc = flate2::write::GzEncoder::new(blob, level);
            let (enc, diff_id) = write_tar(enc, upper, opts)?;
            (enc.finish().map_err(written)?, diff_id)
        }
        Compression::Zstd => {
            let level = opts
                .level
                .map_or(3, |l| i32::try_from(l.min(19)).unwrap_or(3));
            let enc = zstd::Encoder::new(blob, level).map_err(written)?;
            let (enc, diff_id) = write_tar(enc, upper, opts)?;
            (enc.finish().map_err(written)?, diff_id)
        }
        Compression::Uncompressed => write_tar(blob, upper, opts)?,
    };
    let (buffered, digest, size) = blob.finish();
    let file = buffered.into_inner().map_err(|e| written(e.into_error()))?;
    // No fsync: Docker's layer store does not sync either, and the cost is most of a large
    // layer's commit. A blob torn by a power loss cannot pass unnoticed: unpacking fails on
    // its compression and a registry refuses it for its digest.
    drop(file);
    if !store.has_blob(&digest) {
        store.commit_blob(&path, &digest)?;
    }
    Ok(Layer {
        digest,
        diff_id,
        size,
        media_type: opts.media.layer(opts.compression),
    })
}

/// Writes the tar of `upper` into `out`; returns `out` and the tar's digest.
fn write_tar<W: Write>(
    out: W,
    upper: Contents<'_>,
    opts: &LayerOptions,
) -> Result<(W, crate::store::Digest), LayerError> {
    let root = match upper {
        Contents::Upper(root) | Contents::Changes(root, _) => root,
    };
    let mut walk = Walk {
        tar: tar::Builder::new(HashingWriter::new(out)),
        root: root.to_path_buf(),
        epoch: opts.source_date_epoch,
        seen: HashMap::new(),
        recurse: matches!(upper, Contents::Upper(_)),
    };
    match upper {
        Contents::Upper(_) => walk.dir(Path::new(""))?,
        Contents::Changes(_, changes) => {
            for change in changes {
                let name = change.path().file_name().unwrap_or_default().to_os_string();
                match change {
                    Change::Path(rel) => walk.entry(rel, &name)?,
                    Change::Whiteout(rel) => walk.whiteout(rel, &name)?,
                }
            }
        }
    }
    let tar_err = |source| LayerError::Tar {
        op: "write",
        source,
    };
    let (out, diff_id, _) = walk.tar.into_inner().map_err(tar_err)?.finish();
    Ok((out, diff_id))
}

/// One pass over the upper directory.
struct Walk<W: Write> {
    tar: tar::Builder<HashingWriter<W>>,
    root: PathBuf,
    epoch: Option<i64>,
    /// (device, inode) → the path first written for it, for hardlinks.
    seen: HashMap<(u64, u64), PathBuf>,
    /// Directories bring their contents (an upper directory); listed changes do not.
    recurse: bool,
}

impl<W: Write> Walk<W> {
    /// Writes the entries under `rel` (relative to the root), depth first, sorted by name.
    fn dir(&mut self, rel: &Path) -> Result<(), LayerError> {
        let abs = self.root.join(rel);
        let mut names: Vec<OsString> = std::fs::read_dir(&abs)
            .map_err(io("read directory", &abs))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io("read directory", &abs))?;
        names.sort();
        for name in names {
            self.entry(&rel.join(&name), &name)?;
        }
        Ok(())
    }

    /// Writes one entry (and, for a directory, what is under it).
    fn entry(&mut self, rel: &Path, name: &OsStr) -> Result<(), LayerError> {
        let abs = self.root.join(rel);
        let meta = std::fs::symlink_metadata(&abs).map_err(io("stat", &abs))?;
        let attrs = self.xattrs(&abs)?;
        let ft = meta.file_type();
        let mut h = self.header(&meta);
        if self.recurse && ft.is_char_device() && meta.rdev() == 0 {
            // Overlay's whiteout (a 0:0 character device) → Docker's empty `.wh.<name>` file.
            return self.append_whiteout(&mut h, rel, name);
        }
        self.pax(&attrs.kept)?;
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            self.append(&mut h, &dir_path(rel), &[][..])?;
            if attrs.opaque {
                let mut marker = self.header(&meta);
                marker.set_entry_type(tar::EntryType::Regular);
                marker.set_mode(meta.mode() & 0o777);
                marker.set_size(0);
                self.append(&mut marker, &rel.join(OPAQUE_MARKER), &[][..])?;
            }
            return if self.recurse { self.dir(rel) } else { Ok(()) };
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&abs).map_err(io("read symlink", &abs))?;
            h.set_entry_type(tar::EntryType::Symlink);
            return self.link(&mut h, rel, &target);
        }
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.seen.get(&key).cloned() {
                    h.set_entry_type(tar::EntryType::Link);
                    return self.link(&mut h, rel, &first);
                }
                self.seen.insert(key, rel.to_path_buf());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = File::open(&abs).map_err(io("open", &abs))?;
            return self.append(&mut h, rel, f);
        }
        let (kind, rdev) = if ft.is_char_device() {
            (tar::EntryType::Char, meta.rdev())
        } else if ft.is_block_device() {
            (tar::EntryType::Block, meta.rdev())
        } else if ft.is_fifo() {
            (tar::EntryType::Fifo, 0)
        } else {
            // Sockets belong to a running process; images never carry them.
            return Ok(());
        };
        h.set_entry_type(kind);
        if rdev != 0 {
            let w = |e| LayerError::Tar {
                op: "write",
                source: e,
            };
            h.set_device_major(nix::sys::stat::major(rdev) as u32)
                .map_err(w)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)
                .map_err(w)?;
        }
        self.append(&mut h, rel, &[][..])
    }

    /// Docker's `.wh.<name>` for a path deleted from a live root; its header is the parent's.
    fn whiteout(&mut self, rel: &Path, name: &OsStr) -> Result<(), LayerError> {
        let parent = self.root.join(rel.parent().unwrap_or(Path::new("")));
        let meta = std::fs::symlink_metadata(&parent).map_err(io("stat", &parent))?;
        let mut h = self.header(&meta);
        self.append_whiteout(&mut h, rel, name)
    }

    fn append_whiteout(
        &mut self,
        h: &mut tar::Header,
        rel: &Path,
        name: &OsStr,
    ) -> Result<(), LayerError> {
        let mut wh = OsString::from(WHITEOUT_PREFIX);
        wh.push(name);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(0);
        self.append(h, &rel.with_file_name(wh), &[][..])
    }

    /// A header with ownership, mode and (clamped) time; uname/gname stay empty.
    fn header(&self, meta: &std::fs::Metadata) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        let mtime = match self.epoch {
            Some(e) => meta.mtime().min(e),
            None => meta.mtime(),
        };
        h.set_mtime(u64::try_from(mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// Sorts `abs`'s attributes: which to carry, whether it is opaque; refuses overlay
    /// features whose content lives outside the upper directory.
    fn xattrs(&self, abs: &Path) -> Result<Attrs, LayerError> {
        let mut out = Attrs::default();
        for name in xattr::list(abs).map_err(io("list attributes of", abs))? {
            let n = name.as_bytes();
            let overlay = n
                .strip_prefix(b"trusted.overlay.")
                .or_else(|| n.strip_prefix(b"user.overlay."));
            if let Some(key) = overlay {
                let feature = match key {
                    b"redirect" => Some(OverlayFeature::RedirectDir),
                    b"metacopy" => Some(OverlayFeature::Metacopy),
                    _ => None,
                };
                if let Some(feature) = feature {
                    return Err(LayerError::OverlayFeature {
                        path: abs.to_path_buf(),
                        feature,
                    });
                }
                if OPAQUE_XATTRS.iter().any(|o| o.as_bytes() == n) {
                    let v = xattr::get(abs, &name).map_err(io("read attribute of", abs))?;
                    out.opaque |= v.as_deref() == Some(b"y");
                }
                continue;
            }
            if (n == b"security.capability" || n.starts_with(b"user."))
                && let Some(v) = xattr::get(abs, &name).map_err(io("read attribute of", abs))?
            {
                out.kept.push((name, v));
            }
        }
        Ok(out)
    }

    /// Writes `SCHILY.xattr.*` records for the next entry.
    fn pax(&mut self, attrs: &[(OsString, Vec<u8>)]) -> Result<(), LayerError> {
        if attrs.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = attrs
            .iter()
            .map(|(n, _)| format!("SCHILY.xattr.{}", n.to_string_lossy()))
            .collect();
        let records = keys
            .iter()
            .zip(attrs)
            .map(|(k, (_, v))| (k.as_str(), v.as_slice()));
        self.tar
            .append_pax_extensions(records)
            .map_err(|source| LayerError::Tar {
                op: "write",
                source,
            })
    }

    fn append<R: std::io::Read>(
        &mut self,
        h: &mut tar::Header,
        path: &Path,
        data: R,
    ) -> Result<(), LayerError> {
        self.tar
            .append_data(h, path, data)
            .map_err(|source| LayerError::Tar {
                op: "write",
                source,
            })
    }

    fn link(&mut self, h: &mut tar::Header, path: &Path, target: &Path) -> Result<(), LayerError> {
        self.tar
            .append_link(h, path, target)
            .map_err(|source| LayerError::Tar {
                op: "write",
                source,
            })
    }
}

/// What a file's extended attributes mean for its entry.
#[derive(Default)]
struct Attrs {
    /// Carried into the tar (`security.capability`, `user.*`).
    kept: Vec<(OsString, Vec<u8>)>,
    /// Overlay marked the directory opaque.
    opaque: bool,
}

/// A directory's entry name: with a trailing `/`, as Docker writes it.
fn dir_path(rel: &Path) -> PathBuf {
    let mut s = rel.as_os_str().to_os_string();
    s.push("/");
    PathBuf::from(s)
}
