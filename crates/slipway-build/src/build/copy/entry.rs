//! One file system object a COPY reads: its type, metadata and content hash.

use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What kind of object, with what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file of `size` bytes whose content hashes to `sha256` (hex).
    File {
        /// Length in bytes.
        size: u64,
        /// Hex SHA-256 of the content.
        sha256: String,
    },
    /// A directory.
    Dir,
    /// A symbolic link to `target` (copied as a link, never followed).
    Symlink(PathBuf),
    /// A named pipe.
    Fifo,
    /// A character (`char`) or block device.
    Device {
        /// Character rather than block.
        char: bool,
        /// Device number.
        rdev: u64,
    },
}

/// An object to copy: where it is read from and where it lands relative to its item.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path below the item's destination, `/`-separated (empty for the destination itself).
    pub rel: String,
    /// Where to read it on the host.
    pub host: PathBuf,
    /// Type and content.
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner as found in the source.
    pub uid: u32,
    /// Group as found in the source.
    pub gid: u32,
    /// Modification time, seconds and nanoseconds since the epoch.
    pub mtime: (i64, i64),
    /// Device and inode of a file with several links, to keep hard links linked.
    pub inode: Option<(u64, u64)>,
}

impl Entry {
    /// Reads the object at `host` (not following a symlink there) and hashes a file's content
    /// with one buffer, so large files are streamed.
    pub fn read(host: &Path, rel: String) -> std::io::Result<Option<Self>> {
        let meta = std::fs::symlink_metadata(host)?;
        let Some(kind) = kind_of(host, &meta)? else {
            return Ok(None);
        };
        let inode = (matches!(kind, Kind::File { .. }) && meta.nlink() > 1)
            .then(|| (meta.dev(), meta.ino()));
        Ok(Some(Self {
            rel,
            host: host.to_path_buf(),
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            inode,
        }))
    }

    /// Feeds what identifies this entry into a cache key: path, type, mode, content or link
    /// target, and the owner when `with_owner` (a `--from` source keeps its owners).
    pub fn hash_into(&self, hasher: &mut Sha256, with_owner: bool) {
        field(hasher, self.rel.as_bytes());
        match &self.kind {
            Kind::File { size, sha256 } => {
                field(hasher, b"file");
                field(hasher, &size.to_le_bytes());
                field(hasher, sha256.as_bytes());
            }
            Kind::Dir => field(hasher, b"dir"),
            Kind::Symlink(target) => {
                field(hasher, b"symlink");
                field(hasher, target.as_os_str().as_encoded_bytes());
            }
            Kind::Fifo => field(hasher, b"fifo"),
            Kind::Device { char, rdev } => {
                field(hasher, if *char { b"chardev" } else { b"blockdev" });
                field(hasher, &rdev.to_le_bytes());
            }
        }
        field(hasher, &self.mode.to_le_bytes());
        if with_owner {
            field(hasher, &self.uid.to_le_bytes());
            field(hasher, &self.gid.to_le_bytes());
        }
    }
}

/// Adds one length-prefixed field, so adjacent fields cannot run into each other.
pub fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// The entry's kind; `None` for a socket, which a COPY leaves out.
fn kind_of(host: &Path, meta: &Metadata) -> std::io::Result<Option<Kind>> {
    let ft = meta.file_type();
    Ok(Some(if ft.is_file() {
        Kind::File {
            size: meta.len(),
            sha256: hash_file(host)?,
        }
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink(std::fs::read_link(host)?)
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_char_device() || ft.is_block_device() {
        Kind::Device {
            char: ft.is_char_device(),
            rdev: meta.rdev(),
        }
    } else {
        return Ok(None);
    }))
}

/// Hex SHA-256 of a file's content, read through one buffer.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
