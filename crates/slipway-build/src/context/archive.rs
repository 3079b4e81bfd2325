//! Unpacking a `.tar`/`.tar.gz` context into a directory.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Unpacks the tar (gzip-compressed or not, told by its first bytes) at `archive` into `into`.
/// The tar crate refuses entries that would land outside `into`.
pub fn unpack(archive: &Path, into: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(File::open(archive)?);
    let mut magic = [0u8; 2];
    let n = reader.read(&mut magic)?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let stream = head.chain(reader);
    if n == 2 && magic == [0x1f, 0x8b] {
        extract(flate2::read::GzDecoder::new(stream), into)
    } else {
        extract(stream, into)
    }
}

fn extract(reader: impl Read, into: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.unpack(into)
}
