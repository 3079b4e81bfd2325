//! ADD's local archives: a tar (plain, gzip, bzip2 or xz), told by content rather than by
//! name, extracted into the destination with its own owners, modes and times.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::build::copy::CopyError;
use crate::build::copy::entry::{Entry, Kind};
use crate::build::copy::rootpath;
use crate::build::copy::write::Writer;

/// How an archive's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`.tar.gz`, `.tgz`).
    Gzip,
    /// bzip2 (`.tar.bz2`).
    Bzip2,
    /// xz (`.tar.xz`).
    Xz,
}

/// Opens `path` as a stream of tar bytes.
fn open(path: &Path, compression: Compression) -> std::io::Result<Box<dyn Read>> {
    let file = BufReader::new(File::open(path)?);
    Ok(match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(file)),
    })
}

/// The compression of `path` when it holds a tar archive; `None` for any other file.
pub fn detect(path: &Path) -> std::io::Result<Option<Compression>> {
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut File::open(path)?, &mut magic)?;
    let magic = &magic[..n];
    let compression = if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(b"BZh") {
        Compression::Bzip2
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else {
        Compression::None
    };
    let mut header = [0u8; 512];
    // A corrupt compressed stream is simply not an archive: ADD copies it as a file.
    let Ok(n) = open(path, compression).and_then(|mut r| read_up_to(&mut r, &mut header)) else {
        return Ok(None);
    };
    Ok((n == 512 && is_tar_header(&header)).then_some(compression))
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Whether a 512-byte block is a tar header: its checksum field matches its bytes (true of
/// v7, ustar, GNU and pax archives alike).
fn is_tar_header(block: &[u8; 512]) -> bool {
    let field = &block[148..156];
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    let Ok(stored) = u32::from_str_radix(&text, 8) else {
        return false;
    };
    let unsigned: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    stored == unsigned || i64::from(stored) == signed
}

/// Extracts the archive at `path` into the image directory `dest` (created if missing).
/// Names are kept as written (`.wh.` files included); nothing lands outside the root.
pub fn extract(
    path: &Path,
    compression: Compression,
    writer: &mut Writer<'_>,
    dest: &str,
) -> Result<(), CopyError> {
    let unpack_error = |source| CopyError::Unpack {
        path: path.to_path_buf(),
        source,
    };
    writer.mkdir_all(dest)?;
    let mut archive = tar::Archive::new(open(path, compression).map_err(unpack_error)?);
    for entry in archive.entries().map_err(unpack_error)? {
        let entry = entry.map_err(unpack_error)?;
        extract_entry(entry, writer, dest).map_err(|e| match e {
            Failure::Io(source) => unpack_error(source),
            Failure::Copy(e) => e,
        })?;
    }
    Ok(())
}

/// Why one archive entry could not be extracted: reading the archive, or writing.
enum Failure {
    Io(std::io::Error),
    Copy(CopyError),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<CopyError> for Failure {
    fn from(e: CopyError) -> Self {
        Self::Copy(e)
    }
}

fn extract_entry<R: Read>(
    mut entry: tar::Entry<'_, R>,
    writer: &mut Writer<'_>,
    dest: &str,
) -> Result<(), Failure> {
    let rel = rootpath::clean(&entry.path()?.to_string_lossy());
    if rel.is_empty() {
        return Ok(());
    }
    let header = entry.header();
    let mode = header.mode()? & 0o7777;
    let uid = u32::try_from(header.uid()?).unwrap_or(0);
    let gid = u32::try_from(header.gid()?).unwrap_or(0);
    let mtime = i64::try_from(header.mtime()?).unwrap_or(0);
    let kind = header.entry_type();
    let device = (
        header.device_major().ok().flatten(),
        header.device_minor().ok().flatten(),
    );
    let link: PathBuf = entry
        .link_name()?
        .map(|l| l.into_owned())
        .unwrap_or_default();
    let (parent, file_name) = match rel.rsplit_once('/') {
        Some((p, f)) => (format!("{dest}/{p}"), f.to_string()),
        None => (dest.to_string(), rel.clone()),
    };
    let at = writer.mkdir_all(&parent)?.join(&file_name);
    let object = match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            writer.put_stream(&at, &mut entry, mode, (uid, gid), (mtime, 0))?;
            return Ok(());
        }
        tar::EntryType::Link => {
            let target = format!("{dest}/{}", rootpath::clean(&link.to_string_lossy()));
            writer.hard_link(&target, &at)?;
            return Ok(());
        }
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink(link),
        tar::EntryType::Fifo => Kind::Fifo,
        tar::EntryType::Char | tar::EntryType::Block => Kind::Device {
            char: kind == tar::EntryType::Char,
            rdev: nix::sys::stat::makedev(
                device.0.unwrap_or(0).into(),
                device.1.unwrap_or(0).into(),
            ),
        },
        // Metadata records (pax, GNU long names) are folded in by the tar crate.
        _ => return Ok(()),
    };
    let pseudo = Entry {
        rel,
        host: PathBuf::new(),
        kind: object,
        mode,
        uid,
        gid,
        mtime: (mtime, 0),
        inode: None,
    };
    writer.put(&pseudo, &at)?;
    Ok(())
}
