//! Which paths a COPY source pattern names: globs matched component by component, ignored
//! files invisible, directory trees walked in a stable order.

use std::path::{Path, PathBuf};

use crate::build::copy::CopyError;
use crate::build::copy::entry::{Entry, Kind};
use crate::build::copy::rootpath;
use crate::context::Context;
use crate::dockerfile::ignore::{Patterns, glob_match};

/// Entries listed in a "not found" message.
const LISTED: usize = 10;

/// Where sources are read from, with what hides files there.
pub struct Origin<'a> {
    /// The root sources are relative to.
    pub root: &'a Path,
    /// The build context, whose ignore file hides paths (absent for `--from`).
    pub context: Option<&'a Context>,
    /// `--exclude` patterns.
    pub exclude: &'a Patterns,
}

/// A path a pattern matched.
#[derive(Debug, Clone)]
pub struct Match {
    /// The path as matched (relative to the root, `/`-separated): names the copy and is kept
    /// by `--parents`.
    pub rel: String,
    /// The host path after following symlinks inside the root.
    pub host: PathBuf,
}

/// Which file system a source was looked for in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The build context.
    Context,
    /// A stage's or image's root file system (`--from`).
    From,
}

/// A source that names nothing: what was asked, and what is there instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The pattern as written.
    pub pattern: String,
    /// Where it was looked for.
    pub place: Place,
    /// The path exists but the ignore file hides it.
    pub ignored: bool,
    /// The deepest existing directory on the pattern's path (`""` for the root).
    pub dir: String,
    /// Visible entries of `dir`, sorted, directories with a trailing `/`.
    pub entries: Vec<String>,
    /// Entries of `dir` past those listed.
    pub more: usize,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match self.place {
            Place::Context => "the build context",
            Place::From => "the --from file system",
        };
        write!(f, "find {:?} in {place}: ", self.pattern)?;
        if self.ignored {
            let clean = rootpath::clean(&self.pattern);
            return write!(
                f,
                "it is excluded by .dockerignore (a line \"!{clean}\" there would include it)"
            );
        }
        let dir = match self.dir.as_str() {
            "" => "its root".to_string(),
            d => format!("{d}/"),
        };
        write!(f, "no such file or directory; {dir} ")?;
        if self.entries.is_empty() {
            return f.write_str("is empty");
        }
        write!(f, "holds {}", self.entries.join(", "))?;
        if self.more > 0 {
            write!(f, " and {} more", self.more)?;
        }
        Ok(())
    }
}

impl Origin<'_> {
    /// Whether `rel` is hidden by the ignore file.
    fn ignored(&self, rel: &str) -> bool {
        self.context.is_some_and(|c| c.is_excluded(rel))
    }

    fn place(&self) -> Place {
        match self.context {
            Some(_) => Place::Context,
            None => Place::From,
        }
    }

    /// The paths `pattern` names. A literal path that is missing or ignored is an error; a
    /// wildcard that matches nothing names nothing (Docker copies nothing for it) unless the
    /// directory it looks in is missing.
    pub fn expand(&self, pattern: &str) -> Result<Vec<Match>, CopyError> {
        let clean = rootpath::clean(pattern);
        let parts: Vec<&str> = clean.split('/').filter(|p| !p.is_empty()).collect();
        let Some(first_glob) = parts.iter().position(|p| has_meta(p)) else {
            return self.literal(pattern, &clean).map(|m| vec![m]);
        };
        let prefix = parts[..first_glob].join("/");
        let base = self.host(&prefix)?;
        if !base.is_dir() || (!prefix.is_empty() && self.ignored(&prefix)) {
            return Err(self.missing(pattern, &prefix, false));
        }
        let mut found = vec![prefix];
        for part in &parts[first_glob..] {
            let mut next = Vec::new();
            for dir in &found {
                if has_meta(part) {
                    for name in self.list(dir) {
                        let rel = join(dir, &name);
                        if glob_match(part, &name) && !self.ignored(&rel) {
                            next.push(rel);
                        }
                    }
                } else {
                    let rel = join(dir, part);
                    let exists = std::fs::symlink_metadata(self.host(&rel)?).is_ok();
                    if exists && !self.ignored(&rel) {
                        next.push(rel);
                    }
                }
            }
            found = next;
        }
        found
            .into_iter()
            .filter(|rel| !excluded_by_flag(self.exclude, rel))
            .map(|rel| {
                let host = self.host(&rel)?;
                Ok(Match { rel, host })
            })
            .collect()
    }

    fn literal(&self, pattern: &str, clean: &str) -> Result<Match, CopyError> {
        let host = self.host(clean)?;
        if std::fs::symlink_metadata(&host).is_err() {
            return Err(self.missing(pattern, clean, false));
        }
        let resolved = self.rel_of(&host);
        if !clean.is_empty() && (self.ignored(clean) || self.ignored(&resolved)) {
            return Err(self.missing(pattern, clean, true));
        }
        Ok(Match {
            rel: clean.to_string(),
            host,
        })
    }

    /// The host path of `rel`, every symlink followed inside the root (Docker follows a
    /// source's own link too).
    fn host(&self, rel: &str) -> Result<PathBuf, CopyError> {
        rootpath::resolve(self.root, rel, true).map_err(|source| CopyError::Read {
            path: self.root.join(rel),
            source,
        })
    }

    /// `host` relative to the root, `/`-separated.
    fn rel_of(&self, host: &Path) -> String {
        host.strip_prefix(self.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Names in the directory `rel`, sorted; empty when it is not a readable directory.
    fn list(&self, rel: &str) -> Vec<String> {
        let Ok(host) = self.host(rel) else {
            return Vec::new();
        };
        let mut names: Vec<String> = std::fs::read_dir(host)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The error for a source naming nothing, listing the deepest existing directory.
    fn missing(&self, pattern: &str, clean: &str, ignored: bool) -> CopyError {
        let mut dir = clean.to_string();
        loop {
            let is_dir = self.host(&dir).is_ok_and(|h| h.is_dir());
            if is_dir && (dir.is_empty() || !self.ignored(&dir)) {
                break;
            }
            dir = match dir.rsplit_once('/') {
                Some((parent, _)) => parent.to_string(),
                None if dir.is_empty() => break,
                None => String::new(),
            };
        }
        if ignored {
            dir = String::new();
        }
        let visible: Vec<String> = self
            .list(&dir)
            .into_iter()
            .filter(|name| !self.ignored(&join(&dir, name)))
            .map(|name| {
                let is_dir = self.host(&join(&dir, &name)).is_ok_and(|h| h.is_dir());
                if is_dir { format!("{name}/") } else { name }
            })
            .collect();
        let more = visible.len().saturating_sub(LISTED);
        CopyError::NotFound(Missing {
            pattern: pattern.to_string(),
            place: self.place(),
            ignored,
            dir,
            entries: visible.into_iter().take(LISTED).collect(),
            more,
        })
    }

    /// Everything below the directory `m` in walk order (parents before children), `rel`
    /// relative to it; ignored and `--exclude`d paths left out.
    pub fn walk(&self, m: &Match) -> Result<Vec<Entry>, CopyError> {
        let base = self.rel_of(&m.host);
        let mut out = Vec::new();
        self.walk_dir(&m.host, &base, "", &mut out)?;
        Ok(out)
    }

    fn walk_dir(
        &self,
        host: &Path,
        base: &str,
        below: &str,
        out: &mut Vec<Entry>,
    ) -> Result<(), CopyError> {
        let read_error = |source| CopyError::Read {
            path: host.to_path_buf(),
            source,
        };
        let mut children: Vec<(String, PathBuf)> = std::fs::read_dir(host)
            .map_err(read_error)?
            .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
            .collect::<Result<_, _>>()
            .map_err(read_error)?;
        children.sort();
        for (name, path) in children {
            let rel = join(below, &name);
            let in_root = join(base, &rel);
            if excluded_by_flag(self.exclude, &rel) {
                continue;
            }
            let ignored = self.ignored(&in_root);
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            let descend =
                is_dir && (!ignored || self.context.is_some_and(|c| c.may_include_below(&in_root)));
            if ignored && !descend {
                continue;
            }
            let entry = Entry::read(&path, rel.clone()).map_err(|source| CopyError::Read {
                path: path.clone(),
                source,
            })?;
            let Some(entry) = entry else { continue };
            let dir = matches!(entry.kind, Kind::Dir);
            let start = out.len();
            out.push(entry);
            if dir {
                self.walk_dir(&path, base, &rel, out)?;
                // An ignored directory is kept only to hold what a `!` line re-includes.
                if ignored && out.len() == start + 1 {
                    out.pop();
                }
            }
        }
        Ok(())
    }
}

/// Whether `--exclude` drops `rel` (a directory drops what is below it).
fn excluded_by_flag(exclude: &Patterns, rel: &str) -> bool {
    exclude.is_excluded(rel)
}

/// Whether a path component is a pattern rather than a name.
pub fn has_meta(part: &str) -> bool {
    part.contains(['*', '?', '[', '\\'])
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}
