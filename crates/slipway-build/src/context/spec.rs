//! What a `--context` value names: a directory, a tar archive or a git repository.

use std::path::PathBuf;

/// Where a context comes from, as parsed from Kaniko's `--context` syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory (`path` or `dir://path`).
    Dir(PathBuf),
    /// A local tar archive, possibly gzip-compressed (`x.tar.gz`, `x.tgz`, `x.tar`, `tar://x`).
    Archive(PathBuf),
    /// A git repository to clone.
    Git(GitSpec),
}

/// A git context: `url#ref:subdir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSpec {
    /// What `git clone` is given.
    pub url: String,
    /// Branch, tag or commit; the remote's default branch when absent.
    pub reference: Option<String>,
    /// The directory inside the repository that is the context.
    pub subdir: Option<String>,
}

/// Why a `--context` value names nothing this builder can open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The value is empty.
    #[error("use an empty build context path")]
    Empty,
    /// A scheme Kaniko knows (`s3://`, `gs://`, ...) that this builder does not fetch.
    #[error(
        "open a {scheme}:// build context: not supported (use a directory, a .tar.gz or a git URL)"
    )]
    Unsupported {
        /// The scheme, without `://`.
        scheme: String,
    },
}

/// Parses a `--context` value.
pub fn parse(spec: &str) -> Result<Location, SpecError> {
    if spec.is_empty() {
        return Err(SpecError::Empty);
    }
    if let Some(path) = spec.strip_prefix("dir://") {
        return Ok(Location::Dir(PathBuf::from(path)));
    }
    if let Some(path) = spec.strip_prefix("tar://") {
        return Ok(Location::Archive(PathBuf::from(path)));
    }
    if let Some((scheme, _)) = spec.split_once("://") {
        let known_git = matches!(scheme, "git" | "file" | "ssh" | "git+ssh");
        let git_over_http = matches!(scheme, "http" | "https") && names_git_repo(spec);
        if known_git || git_over_http {
            return Ok(Location::Git(git_spec(spec)));
        }
        return Err(SpecError::Unsupported {
            scheme: scheme.to_string(),
        });
    }
    // scp-like `git@host:owner/repo.git`, or a local repository named `*.git`.
    if spec.starts_with("git@") || names_git_repo(spec) {
        return Ok(Location::Git(git_spec(spec)));
    }
    let lower = spec.to_ascii_lowercase();
    if [".tar", ".tar.gz", ".tgz"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        return Ok(Location::Archive(PathBuf::from(spec)));
    }
    Ok(Location::Dir(PathBuf::from(spec)))
}

/// Whether the part before any `#` ends in `.git` (or `.git/`).
fn names_git_repo(spec: &str) -> bool {
    let base = spec.split('#').next().unwrap_or(spec);
    base.trim_end_matches('/').ends_with(".git")
}

/// Splits `url#ref:subdir`.
fn git_spec(spec: &str) -> GitSpec {
    let (url, fragment) = match spec.split_once('#') {
        Some((url, fragment)) => (url, Some(fragment)),
        None => (spec, None),
    };
    let (reference, subdir) = match fragment {
        None => (None, None),
        Some(f) => match f.split_once(':') {
            Some((r, d)) => (Some(r), Some(d)),
            None => (Some(f), None),
        },
    };
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    GitSpec {
        url: url.to_string(),
        reference: non_empty(reference),
        subdir: non_empty(subdir.map(|d| d.trim_matches('/'))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn git(url: &str, reference: Option<&str>, subdir: Option<&str>) -> Location {
        Location::Git(GitSpec {
            url: url.into(),
            reference: reference.map(Into::into),
            subdir: subdir.map(Into::into),
        })
    }

    #[test]
    fn kaniko_context_forms() {
        let cases = [
            (".", Ok(Location::Dir(".".into()))),
            ("dir:///work/app", Ok(Location::Dir("/work/app".into()))),
            ("ctx.tar.gz", Ok(Location::Archive("ctx.tar.gz".into()))),
            ("ctx.TGZ", Ok(Location::Archive("ctx.TGZ".into()))),
            ("tar://ctx.bin", Ok(Location::Archive("ctx.bin".into()))),
            ("git://h/r.git", Ok(git("git://h/r.git", None, None))),
            (
                "git://h/r.git#main:app/",
                Ok(git("git://h/r.git", Some("main"), Some("app"))),
            ),
            (
                "https://h/o/r.git#v1",
                Ok(git("https://h/o/r.git", Some("v1"), None)),
            ),
            (
                "file:///srv/r#:sub",
                Ok(git("file:///srv/r", None, Some("sub"))),
            ),
            (
                "/srv/r.git#abc123",
                Ok(git("/srv/r.git", Some("abc123"), None)),
            ),
            ("git@h:o/r.git", Ok(git("git@h:o/r.git", None, None))),
            (
                "s3://bucket/ctx.tar.gz",
                Err(SpecError::Unsupported {
                    scheme: "s3".into(),
                }),
            ),
            (
                "https://h/ctx.tar.gz",
                Err(SpecError::Unsupported {
                    scheme: "https".into(),
                }),
            ),
            ("", Err(SpecError::Empty)),
        ];
        for (spec, want) in cases {
            assert_eq!(parse(spec), want, "{spec}");
        }
    }

    proptest! {
        #[test]
        fn git_fragment_round_trips(
            reference in "[a-zA-Z0-9_./-]{1,20}",
            subdir in "[a-z0-9_]{1,10}(/[a-z0-9_]{1,10}){0,2}",
        ) {
            let spec = format!("git://host/repo.git#{reference}:{subdir}");
            let parsed = parse(&spec);
            prop_assert_eq!(parsed, Ok(git("git://host/repo.git", Some(&reference), Some(&subdir))));
        }

        #[test]
        fn never_panics(spec in ".{0,40}") {
            let _ = parse(&spec);
        }
    }
}
