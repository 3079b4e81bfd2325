//! The build context: a directory, `dir://`, a `.tar.gz`, or a git repository (`git://`, a
//! local git URL, `#ref`), with `.dockerignore` applied.

mod archive;
pub mod git;
pub mod spec;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::context::spec::Location;
use crate::dockerfile::ignore::{IgnoreError, Patterns};

/// Why the context cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The `--context` value names nothing openable.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// The context directory (or archive) cannot be read.
    #[error("open the build context {}", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The context path is not a directory.
    #[error("open the build context {}: not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// A temporary directory for an archive or clone could not be made.
    #[error("create a temporary directory for the build context")]
    TempDir(#[source] std::io::Error),
    /// A context archive could not be unpacked.
    #[error("unpack the build context archive {}", path.display())]
    Unpack {
        /// The archive.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Cloning a git context failed.
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// The `#ref:subdir` names no directory of the repository.
    #[error("use {subdir:?} of the git context: no such directory in the repository")]
    Subdir {
        /// The subdirectory asked for.
        subdir: String,
    },
    /// An ignore file could not be read.
    #[error("read {}", path.display())]
    ReadIgnore {
        /// The ignore file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An ignore file has a malformed pattern.
    #[error("use {}", path.display())]
    Ignore {
        /// The ignore file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: IgnoreError,
    },
    /// No Dockerfile where `--dockerfile` points.
    #[error("find the Dockerfile (looked for {})", list(tried))]
    NoDockerfile {
        /// The paths tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The Dockerfile exists but cannot be read.
    #[error("read the Dockerfile {}", path.display())]
    ReadDockerfile {
        /// The Dockerfile.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// A build context materialized as a directory.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    ignore: Patterns,
    /// Keeps an unpacked archive or a clone alive; removed on drop.
    _temp: Option<tempfile::TempDir>,
}

impl Context {
    /// Opens `spec` (Kaniko's `--context`) and reads `.dockerignore` (or
    /// `<dockerfile>.dockerignore`, which wins).
    pub fn open(spec: &str, dockerfile: Option<&Path>) -> Result<Self, ContextError> {
        let (root, temp) = match spec::parse(spec)? {
            Location::Dir(path) => (open_dir(&path)?, None),
            Location::Archive(path) => {
                let temp = temp_dir()?;
                archive::unpack(&path, temp.path()).map_err(|source| match source.kind() {
                    std::io::ErrorKind::NotFound => ContextError::Open {
                        path: path.clone(),
                        source,
                    },
                    _ => ContextError::Unpack {
                        path: path.clone(),
                        source,
                    },
                })?;
                (open_dir(temp.path())?, Some(temp))
            }
            Location::Git(git_spec) => {
                let temp = temp_dir()?;
                git::clone(&git_spec, temp.path())?;
                let base = open_dir(temp.path())?;
                let root = match &git_spec.subdir {
                    None => base,
                    Some(subdir) => within(&base, subdir).ok_or_else(|| ContextError::Subdir {
                        subdir: subdir.clone(),
                    })?,
                };
                (root, Some(temp))
            }
        };
        let dockerfile = dockerfile.and_then(|d| locate(&root, d));
        let ignore = read_ignore(&root, dockerfile.as_deref())?;
        Ok(Self {
            root,
            ignore,
            _temp: temp,
        })
    }

    /// The directory holding the context.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The Dockerfile: Kaniko's `--dockerfile` (absolute, or relative to the context, or
    /// relative to the current directory, or `-` for stdin), `Dockerfile` in the context by
    /// default; its path and text.
    pub fn dockerfile(&self, flag: Option<&str>) -> Result<(PathBuf, String), ContextError> {
        let flag = flag.unwrap_or("Dockerfile");
        if flag == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| ContextError::ReadDockerfile {
                    path: PathBuf::from("-"),
                    source,
                })?;
            return Ok((PathBuf::from("-"), text));
        }
        let given = Path::new(flag);
        let path = locate(&self.root, given).ok_or_else(|| ContextError::NoDockerfile {
            tried: candidates(&self.root, given),
        })?;
        let text =
            std::fs::read_to_string(&path).map_err(|source| ContextError::ReadDockerfile {
                path: path.clone(),
                source,
            })?;
        Ok((path, text))
    }

    /// Whether `rel` (relative to the context root, `/`-separated) is left out by the ignore
    /// file.
    pub fn is_excluded(&self, rel: &str) -> bool {
        self.ignore.is_excluded(rel)
    }

    /// Whether a walk must still descend into the excluded directory `rel` because a `!`
    /// pattern may re-include something below it.
    pub fn may_include_below(&self, rel: &str) -> bool {
        self.ignore.may_include_below(rel)
    }
}

fn temp_dir() -> Result<tempfile::TempDir, ContextError> {
    tempfile::Builder::new()
        .prefix("slipway-context-")
        .tempdir()
        .map_err(ContextError::TempDir)
}

/// The canonical path of a context directory.
fn open_dir(path: &Path) -> Result<PathBuf, ContextError> {
    let canonical = path.canonicalize().map_err(|source| ContextError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if !canonical.is_dir() {
        return Err(ContextError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(canonical)
}

/// `base/sub` when it is a directory that stays inside `base` after resolving links.
fn within(base: &Path, sub: &str) -> Option<PathBuf> {
    let path = base.join(sub).canonicalize().ok()?;
    (path.starts_with(base) && path.is_dir()).then_some(path)
}

/// Where a `--dockerfile` value may be, in the order tried.
fn candidates(root: &Path, given: &Path) -> Vec<PathBuf> {
    if given.is_absolute() {
        vec![given.to_path_buf()]
    } else {
        let mut tried = vec![root.join(given)];
        if let Ok(cwd) = std::env::current_dir() {
            tried.push(cwd.join(given));
        }
        tried
    }
}

/// The first candidate that exists as a file.
fn locate(root: &Path, given: &Path) -> Option<PathBuf> {
    candidates(root, given).into_iter().find(|p| p.is_file())
}

/// Docker's rule: `<dockerfile>.dockerignore` beside the Dockerfile, else the context's
/// `.dockerignore`, else nothing excluded.
fn read_ignore(root: &Path, dockerfile: Option<&Path>) -> Result<Patterns, ContextError> {
    let specific = dockerfile.map(|d| {
        let mut name = d.as_os_str().to_os_string();
        name.push(".dockerignore");
        PathBuf::from(name)
    });
    let general = root.join(".dockerignore");
    let Some(path) = specific.filter(|p| p.is_file()).or(Some(general)) else {
        return Ok(Patterns::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Patterns::default()),
        Err(source) => return Err(ContextError::ReadIgnore { path, source }),
    };
    Patterns::parse(&text).map_err(|source| ContextError::Ignore { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Command;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("test setup");
        }
        fs::write(path, text).expect("test setup");
    }

    #[test]
    fn directory_with_dockerignore_negation() {
        let dir = tempfile::tempdir().expect("test setup");
        write(dir.path(), "Dockerfile", "FROM scratch\n");
        write(dir.path(), ".dockerignore", "*.log\n!keep.log\nsecret/\n");
        let context = Context::open(&dir.path().to_string_lossy(), None).expect("test setup");
        assert_eq!(
            context.root(),
            dir.path().canonicalize().expect("test setup")
        );
        assert!(context.is_excluded("a.log"));
        assert!(!context.is_excluded("keep.log"));
        assert!(context.is_excluded("secret/x"));
        assert!(!context.is_excluded("Dockerfile"));
        let spec = format!("dir://{}", dir.path().display());
        assert!(
            Context::open(&spec, None)
                .expect("test setup")
                .is_excluded("a.log")
        );
    }

    #[test]
    fn dockerfile_specific_ignore_wins() {
        let dir = tempfile::tempdir().expect("test setup");
        write(dir.path(), ".dockerignore", "a\n");
        write(dir.path(), "build/app.Dockerfile", "FROM scratch\n");
        write(dir.path(), "build/app.Dockerfile.dockerignore", "b\n");
        let df = Path::new("build/app.Dockerfile");
        let context = Context::open(&dir.path().to_string_lossy(), Some(df)).expect("test setup");
        assert!(!context.is_excluded("a"));
        assert!(context.is_excluded("b"));
        let plain = Context::open(&dir.path().to_string_lossy(), None).expect("test setup");
        assert!(plain.is_excluded("a"));
    }

    #[test]
    fn dockerfile_flag_forms() {
        let dir = tempfile::tempdir().expect("test setup");
        write(dir.path(), "Dockerfile", "FROM a\n");
        write(dir.path(), "sub/Other", "FROM b\n");
        let context = Context::open(&dir.path().to_string_lossy(), None).expect("test setup");
        assert_eq!(context.dockerfile(None).expect("test setup").1, "FROM a\n");
        assert_eq!(
            context.dockerfile(Some("sub/Other")).expect("test setup").1,
            "FROM b\n"
        );
        let absolute = dir.path().join("sub/Other");
        let (path, _) = context
            .dockerfile(Some(&absolute.to_string_lossy()))
            .expect("test setup");
        assert_eq!(path, absolute);
        let err = context
            .dockerfile(Some("nope/Dockerfile"))
            .expect_err("should fail");
        let text = err.to_string();
        assert!(
            text.starts_with("find the Dockerfile (looked for "),
            "{text}"
        );
        assert!(text.contains("nope/Dockerfile"), "{text}");
    }

    fn tar_of(files: &[(&str, &str)], gzip: bool) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o640);
            header.set_cksum();
            builder
                .append_data(&mut header, name, text.as_bytes())
                .expect("test setup");
        }
        let bytes = builder.into_inner().expect("test setup");
        if !gzip {
            return bytes;
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &bytes).expect("test setup");
        encoder.finish().expect("test setup")
    }

    #[test]
    fn tar_and_tgz_contexts_are_unpacked_and_removed_on_drop() {
        let dir = tempfile::tempdir().expect("test setup");
        let files = [("Dockerfile", "FROM x\n"), ("src/a.txt", "a")];
        for (name, gzip) in [("ctx.tar", false), ("ctx.tgz", true), ("ctx.bin", true)] {
            fs::write(dir.path().join(name), tar_of(&files, gzip)).expect("test setup");
            let spec = match name {
                "ctx.bin" => format!("tar://{}", dir.path().join(name).display()),
                _ => dir.path().join(name).display().to_string(),
            };
            let context = Context::open(&spec, None).expect("test setup");
            let root = context.root().to_path_buf();
            assert_eq!(
                fs::read_to_string(root.join("src/a.txt")).expect("test setup"),
                "a",
                "{name}"
            );
            assert_eq!(context.dockerfile(None).expect("test setup").1, "FROM x\n");
            drop(context);
            assert!(!root.exists(), "{name}: temp dir left behind");
        }
        let missing = Context::open(&dir.path().join("no.tar.gz").to_string_lossy(), None);
        assert!(matches!(missing, Err(ContextError::Open { .. })));
    }

    #[test]
    fn unsupported_scheme_is_named() {
        let err = Context::open("gs://bucket/ctx.tar.gz", None).expect_err("should fail");
        assert_eq!(
            err.to_string(),
            "open a gs:// build context: not supported (use a directory, a .tar.gz or a git URL)"
        );
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("test setup");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn git_contexts_at_branch_tag_commit_and_subdir() {
        let dir = tempfile::tempdir().expect("test setup");
        let repo = dir.path().join("repo.git");
        fs::create_dir(&repo).expect("test setup");
        git(&repo, &["init", "-q", "-b", "main"]);
        write(&repo, "v.txt", "one");
        write(&repo, "app/Dockerfile", "FROM one\n");
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "one"]);
        let first = git(&repo, &["rev-parse", "HEAD"]);
        git(&repo, &["tag", "v1"]);
        write(&repo, "v.txt", "two");
        git(&repo, &["commit", "-q", "-am", "two"]);
        git(&repo, &["checkout", "-q", "-b", "feature"]);
        write(&repo, "v.txt", "feature");
        git(&repo, &["commit", "-q", "-am", "feature"]);
        git(&repo, &["checkout", "-q", "main"]);

        let local = repo.display().to_string();
        let file_url = format!("file://{local}");
        let cases = [
            (local.clone(), "v.txt", "two"),
            (format!("{local}#feature"), "v.txt", "feature"),
            (format!("{file_url}#v1"), "v.txt", "one"),
            (format!("{file_url}#{first}"), "v.txt", "one"),
            (format!("{local}#{}", &first[..10]), "v.txt", "one"),
            (format!("{file_url}#v1:app"), "Dockerfile", "FROM one\n"),
        ];
        for (spec, file, want) in cases {
            let context = Context::open(&spec, None).expect("test setup");
            let got = fs::read_to_string(context.root().join(file)).expect("test setup");
            assert_eq!(got, want, "{spec}");
            assert!(!context.root().join(".git").exists(), "{spec}");
        }
        let err = Context::open(&format!("{file_url}#main:nope"), None).expect_err("should fail");
        assert!(matches!(err, ContextError::Subdir { .. }), "{err}");
        let err = Context::open(&format!("{file_url}#no-such-ref"), None).expect_err("should fail");
        assert!(matches!(err, ContextError::Git(_)), "{err}");
    }
}
