//! COPY and ADD with Docker's semantics, writing into a stage's root file system.
//!
//! [`prepare`] reads everything a COPY will use (matching globs, hashing files, downloading
//! URLs) so the driver can key its cache on [`Prepared::checksum`]; [`Prepared::apply`] then
//! writes it into the stage's merged root.

pub mod entry;
pub mod fetch;
pub mod owner;
pub mod rootpath;
pub mod select;
pub mod unpack;
pub mod write;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::build::copy::entry::{Entry, field};
use crate::build::copy::fetch::Download;
use crate::build::copy::select::{Match, Missing, Origin};
use crate::build::copy::unpack::Compression;
use crate::build::copy::write::{Ownership, Writer};
use crate::context::Context;
use crate::dockerfile::CopySpec;
use crate::dockerfile::ignore::{IgnoreError, Patterns};

/// Why a COPY or ADD failed; each variant reads after "failed to ".
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source names nothing (or only ignored files).
    #[error("{0}")]
    NotFound(Missing),
    /// A source could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The destination could not be written.
    #[error("write {}", path.display())]
    Write {
        /// The path in the image.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory was to be written where the image has a non-directory.
    #[error("copy into {}: it exists and is not a directory", path.display())]
    NotADirectory {
        /// The path in the image.
        path: PathBuf,
    },
    /// A file was to replace a directory of the image.
    #[error("replace the directory {} with a file", path.display())]
    IsADirectory {
        /// The path in the image.
        path: PathBuf,
    },
    /// `--chown` names no owner.
    #[error(transparent)]
    Owner(#[from] owner::OwnerError),
    /// An `--exclude` pattern is malformed.
    #[error("use --exclude")]
    Exclude(#[source] IgnoreError),
    /// COPY was given a URL.
    #[error("copy {url}: COPY does not download (use ADD)")]
    UrlInCopy {
        /// The source.
        url: String,
    },
    /// ADD was given a git repository.
    #[error("add {url}: git sources are not supported yet")]
    GitSource {
        /// The source.
        url: String,
    },
    /// `--checksum` is not `sha256:<64 hex digits>`.
    #[error("use --checksum={value}: expected sha256:<64 hex digits>")]
    ChecksumFlag {
        /// The flag's value.
        value: String,
    },
    /// `--checksum` was given for a local source.
    #[error("verify --checksum for {source_path:?}: only URL sources can be checked")]
    ChecksumLocal {
        /// The source.
        source_path: String,
    },
    /// A download's bytes do not match `--checksum`.
    #[error("verify {url}: its sha256 is {actual}, --checksum expects {expected}")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// What `--checksum` asked for.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
    /// A download failed.
    #[error("download {url}")]
    Download {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest_tls::Error,
    },
    /// The server refused a download.
    #[error("download {url}: the server answered {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// A download into a directory needs a file name the URL does not give.
    #[error("name the file downloaded from {url}: its path has none (give a file destination)")]
    UrlName {
        /// The URL.
        url: String,
    },
    /// A download's temporary file could not be written.
    #[error("store a download in a temporary file")]
    TempFile(#[source] std::io::Error),
    /// A local archive could not be extracted.
    #[error("extract the archive {}", path.display())]
    Unpack {
        /// The archive.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Where a COPY reads from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The build context (`.dockerignore` applies; copies are owned by root).
    Context(&'a Context),
    /// `--from`: a stage's or image's root file system, mounted read-only here (owners kept).
    Rootfs(&'a Path),
}

/// One thing a COPY writes.
#[derive(Debug)]
enum Item {
    /// A directory's contents (not the directory itself).
    Tree {
        /// The source path as matched (kept under the destination by `--parents`).
        origin: String,
        /// Its objects, parents first.
        entries: Vec<Entry>,
    },
    /// A file, link or special file.
    Single {
        /// The source path as matched.
        origin: String,
        /// The object.
        entry: Entry,
    },
    /// ADD of a local tar archive: extracted.
    Archive {
        /// The archive on the host.
        host: PathBuf,
        /// Its compression.
        compression: Compression,
        /// Hex SHA-256 of its bytes.
        sha256: String,
    },
    /// ADD of a URL: the downloaded file.
    Download(Download),
    /// `COPY <<EOF`: a file with this content.
    Heredoc {
        /// The file name.
        name: String,
        /// The content.
        content: String,
    },
}

/// Everything a COPY or ADD will read, resolved (URLs downloaded to temporary files).
#[derive(Debug)]
pub struct Prepared {
    items: Vec<Item>,
    dest: String,
    /// The destination is a directory whatever the image holds there.
    dest_is_dir: bool,
    parents: bool,
    chown: Option<String>,
    chmod: Option<u32>,
    keep_owner: bool,
    checksum: String,
}

/// Reads everything `spec` will copy from `source` (downloads go to temporary files in
/// `tmp`). Local files are read on this thread: a COPY is the driver's only work meanwhile.
pub async fn prepare(
    spec: &CopySpec,
    source: &Source<'_>,
    tmp: &Path,
) -> Result<Prepared, CopyError> {
    let exclude = Patterns::parse(&spec.exclude.join("\n")).map_err(CopyError::Exclude)?;
    let expected = spec
        .checksum
        .as_deref()
        .map(fetch::expected_sha256)
        .transpose()?;
    let (root, context) = match source {
        Source::Context(c) => (c.root(), Some(*c)),
        Source::Rootfs(p) => (*p, None),
    };
    let origin = Origin {
        root,
        context,
        exclude: &exclude,
    };
    let mut items = Vec::new();
    let mut sources = 0;
    for src in &spec.sources {
        // A here-document's marker (`<<EOF`) stands in the sources; its file comes below.
        if src.starts_with("<<") {
            continue;
        }
        sources += 1;
        if spec.add && fetch::is_git(src) {
            return Err(CopyError::GitSource { url: src.clone() });
        }
        if fetch::is_url(src) {
            if !spec.add {
                return Err(CopyError::UrlInCopy { url: src.clone() });
            }
            let download = fetch::download(src, tmp, expected.as_deref()).await?;
            items.push(Item::Download(download));
            continue;
        }
        if expected.is_some() {
            return Err(CopyError::ChecksumLocal {
                source_path: src.clone(),
            });
        }
        for found in origin.expand(src)? {
            items.push(item_for(&origin, found, spec.add)?);
        }
    }
    for heredoc in &spec.heredocs {
        sources += 1;
        let content = if heredoc.strip_tabs {
            let lines: Vec<&str> = heredoc
                .content
                .split_inclusive('\n')
                .map(|l| l.trim_start_matches('\t'))
                .collect();
            lines.concat()
        } else {
            heredoc.content.clone()
        };
        items.push(Item::Heredoc {
            name: heredoc.name.clone(),
            content,
        });
    }
    let dest_is_dir = is_dir_spelling(&spec.dest) || sources > 1 || items.len() > 1;
    let mut prepared = Prepared {
        items,
        dest: spec.dest.clone(),
        dest_is_dir,
        parents: spec.parents,
        chown: spec.chown.clone(),
        chmod: spec.chmod,
        keep_owner: matches!(source, Source::Rootfs(_)),
        checksum: String::new(),
    };
    prepared.checksum = prepared.digest(spec);
    Ok(prepared)
}

/// A destination written as a directory: a trailing `/`, or `.`/`..` at its end.
fn is_dir_spelling(dest: &str) -> bool {
    dest.ends_with('/')
        || dest.ends_with("/.")
        || dest.ends_with("/..")
        || dest == "."
        || dest == ".."
}

/// What one matched source becomes.
fn item_for(origin: &Origin<'_>, found: Match, add: bool) -> Result<Item, CopyError> {
    let read_error = |source| CopyError::Read {
        path: found.host.clone(),
        source,
    };
    let meta = std::fs::symlink_metadata(&found.host).map_err(read_error)?;
    if meta.is_dir() {
        let entries = origin.walk(&found)?;
        return Ok(Item::Tree {
            origin: found.rel,
            entries,
        });
    }
    let Some(entry) = Entry::read(&found.host, String::new()).map_err(read_error)? else {
        // A socket: nothing to copy, as Docker skips it.
        return Ok(Item::Tree {
            origin: found.rel,
            entries: Vec::new(),
        });
    };
    if add
        && meta.is_file()
        && let Some(compression) = unpack::detect(&found.host).map_err(read_error)?
    {
        let sha256 = match &entry.kind {
            entry::Kind::File { sha256, .. } => sha256.clone(),
            _ => String::new(),
        };
        return Ok(Item::Archive {
            host: found.host,
            compression,
            sha256,
        });
    }
    Ok(Item::Single {
        origin: found.rel,
        entry,
    })
}

impl Prepared {
    /// Hex SHA-256 over everything the COPY reads (paths, types, modes, sizes, content, link
    /// targets; owners for `--from` sources) and the flags; the driver's cache key. Ignored
    /// files do not count, and neither do times.
    pub fn checksum(&self) -> String {
        self.checksum.clone()
    }

    fn digest(&self, spec: &CopySpec) -> String {
        let mut h = Sha256::new();
        field(&mut h, b"slipway-copy/1");
        field(
            &mut h,
            &[
                u8::from(spec.add),
                u8::from(spec.parents),
                u8::from(spec.link),
            ],
        );
        field(&mut h, &[u8::from(spec.keep_git_dir)]);
        for text in [&spec.from, &spec.chown, &spec.checksum] {
            field(&mut h, text.as_deref().unwrap_or("\0none").as_bytes());
        }
        field(
            &mut h,
            &spec.chmod.map_or(u64::MAX, u64::from).to_le_bytes(),
        );
        field(&mut h, spec.dest.as_bytes());
        for pattern in &spec.exclude {
            field(&mut h, pattern.as_bytes());
        }
        for item in &self.items {
            match item {
                Item::Tree { origin, entries } => {
                    field(&mut h, b"tree");
                    field(&mut h, origin.as_bytes());
                    field(&mut h, &(entries.len() as u64).to_le_bytes());
                    for e in entries {
                        e.hash_into(&mut h, self.keep_owner);
                    }
                }
                Item::Single { origin, entry } => {
                    field(&mut h, b"single");
                    field(&mut h, origin.as_bytes());
                    entry.hash_into(&mut h, self.keep_owner);
                }
                Item::Archive { sha256, .. } => {
                    field(&mut h, b"archive");
                    field(&mut h, sha256.as_bytes());
                }
                Item::Download(d) => {
                    field(&mut h, b"url");
                    field(&mut h, d.url.as_bytes());
                    field(&mut h, d.sha256.as_bytes());
                    field(&mut h, &d.mtime.to_le_bytes());
                }
                Item::Heredoc { name, content } => {
                    field(&mut h, b"heredoc");
                    field(&mut h, name.as_bytes());
                    field(&mut h, content.as_bytes());
                }
            }
        }
        hex::encode(h.finalize())
    }

    /// Writes the copy into `rootfs` (the stage's merged root) with `workdir` the stage's
    /// WORKDIR (for a relative destination). Blocking.
    pub fn apply(&self, rootfs: &Path, workdir: &str) -> Result<(), CopyError> {
        let dest = if self.dest.starts_with('/') {
            self.dest.clone()
        } else {
            format!("/{}/{}", workdir.trim_matches('/'), self.dest)
        };
        let chown = self
            .chown
            .as_deref()
            .map(|c| owner::resolve(c, rootfs))
            .transpose()?;
        let ownership = Ownership {
            chown,
            keep_source: self.keep_owner,
            chmod: self.chmod,
        };
        let mut writer = Writer::new(rootfs, ownership);
        for item in &self.items {
            self.apply_item(item, &mut writer, &dest)?;
        }
        writer.close()
    }

    fn apply_item(
        &self,
        item: &Item,
        writer: &mut Writer<'_>,
        dest: &str,
    ) -> Result<(), CopyError> {
        match item {
            Item::Tree { origin, entries } => {
                let target = match self.parents {
                    true => format!("{dest}/{origin}"),
                    false => dest.to_string(),
                };
                let host = writer.mkdir_all(&target)?;
                for entry in entries {
                    writer.put(entry, &host.join(&entry.rel))?;
                }
            }
            Item::Single { origin, entry } => {
                let name = origin.rsplit('/').next().unwrap_or(origin);
                let at = self.file_target(writer, dest, origin, name)?;
                writer.put(entry, &at)?;
            }
            Item::Archive {
                host, compression, ..
            } => {
                // An archive's entries keep their own owners unless --chown says otherwise.
                let mut own = Writer::new(writer.root(), writer.ownership().keep_source_owners());
                unpack::extract(host, *compression, &mut own, dest)?;
                own.close()?;
            }
            Item::Download(download) => {
                let name = match (&download.name, self.dest_is_dir || writer.is_dir(dest)) {
                    (Some(name), _) => name.clone(),
                    (None, false) => String::new(),
                    (None, true) => {
                        return Err(CopyError::UrlName {
                            url: download.url.clone(),
                        });
                    }
                };
                let at = self.file_target(writer, dest, "", &name)?;
                let file = std::fs::File::open(download.file.path()).map_err(|source| {
                    CopyError::Read {
                        path: download.file.path().to_path_buf(),
                        source,
                    }
                })?;
                // Docker gives a downloaded file mode 0600.
                writer.put_stream(&at, file, 0o600, (0, 0), (download.mtime, 0))?;
            }
            Item::Heredoc { name, content } => {
                let at = self.file_target(writer, dest, "", name)?;
                writer.put_stream(&at, content.as_bytes(), 0o644, (0, 0), (0, 0))?;
            }
        }
        Ok(())
    }

    /// Where a single file named `name` (matched as `origin`) lands: inside the destination
    /// when it is a directory (written so, or one in the image), else at the destination.
    fn file_target(
        &self,
        writer: &Writer<'_>,
        dest: &str,
        origin: &str,
        name: &str,
    ) -> Result<PathBuf, CopyError> {
        if self.parents && !origin.is_empty() {
            let parent = origin.rsplit_once('/').map_or("", |(p, _)| p);
            return Ok(writer.mkdir_all(&format!("{dest}/{parent}"))?.join(name));
        }
        if self.dest_is_dir || writer.is_dir(dest) {
            return Ok(writer.mkdir_all(dest)?.join(name));
        }
        // The destination is the file itself; a link there is followed inside the root.
        let resolved = writer.resolve(dest, true)?;
        let parent = resolved.parent().unwrap_or(writer.root()).to_path_buf();
        let file_name = resolved
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let shown = parent.strip_prefix(writer.root()).unwrap_or(Path::new(""));
        let host = writer.mkdir_all(&format!("/{}", shown.to_string_lossy()))?;
        Ok(host.join(file_name))
    }
}

#[cfg(test)]
mod tests;
