//! Cloning a git context with the `git` binary at a branch, tag or commit.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::context::spec::GitSpec;

/// Why a git context could not be cloned.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The clone directory could not be emptied or tidied.
    #[error("prepare the clone directory")]
    Tidy(#[source] std::io::Error),
    /// `git` ran and failed.
    #[error("clone {url}{}", reference.as_deref().map(|r| format!(" at {r}")).unwrap_or_default())]
    Clone {
        /// The repository.
        url: String,
        /// The ref asked for.
        reference: Option<String>,
        /// What git said.
        #[source]
        source: GitFailed,
    },
}

/// A git command's failure: its exit status and the end of what it printed.
#[derive(Debug, thiserror::Error)]
#[error("git {command} exited with {status}: {stderr}")]
pub struct GitFailed {
    /// The subcommand.
    pub command: String,
    /// How it ended.
    pub status: std::process::ExitStatus,
    /// Its standard error, trimmed.
    pub stderr: String,
}

/// Clones `spec` into the empty directory `into` and checks out its ref; `.git` is removed
/// so the context holds the tree only.
pub fn clone(spec: &GitSpec, into: &Path) -> Result<(), GitError> {
    let fail = |source| GitError::Clone {
        url: spec.url.clone(),
        reference: spec.reference.clone(),
        source,
    };
    let target = into.to_string_lossy().into_owned();
    match spec.reference.as_deref() {
        None => git(None, &["clone", "--depth", "1", "--", &spec.url, &target]).map_err(fail)?,
        Some(reference) => {
            // A shallow clone can name a branch or tag only; a commit needs the history.
            let shallow = !looks_like_commit(reference)
                && git(
                    None,
                    &[
                        "clone", "--depth", "1", "--branch", reference, "--", &spec.url, &target,
                    ],
                )
                .is_ok();
            if !shallow {
                if into.join(".git").exists() {
                    std::fs::remove_dir_all(into)
                        .and_then(|()| std::fs::create_dir_all(into))
                        .map_err(GitError::Tidy)?;
                }
                git(None, &["clone", "--no-checkout", "--", &spec.url, &target]).map_err(fail)?;
                let remote = format!("origin/{reference}");
                git(Some(into), &["checkout", "--detach", reference])
                    .or_else(|_| git(Some(into), &["checkout", "--detach", &remote]))
                    .map_err(fail)?;
            }
        }
    }
    std::fs::remove_dir_all(into.join(".git")).map_err(GitError::Tidy)
}

/// Whether `reference` reads as a (possibly abbreviated) commit hash.
fn looks_like_commit(reference: &str) -> bool {
    (7..=64).contains(&reference.len()) && reference.chars().all(|c| c.is_ascii_hexdigit())
}

/// Runs git without a terminal prompt (a private repository fails instead of hanging).
fn git(dir: Option<&Path>, args: &[&str]) -> Result<(), GitFailed> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let name = args.first().copied().unwrap_or("").to_string();
    let output = command.output().map_err(|e| GitFailed {
        command: name.clone(),
        status: std::process::ExitStatus::default(),
        stderr: format!("could not start git: {e}"),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    Err(GitFailed {
        command: name,
        status: output.status,
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
    })
}
