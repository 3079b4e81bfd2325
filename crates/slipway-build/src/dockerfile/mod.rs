//! The Dockerfile language: parsing with positions, Docker's variable expansion, stage
//! planning and `.dockerignore`. Pure: no file system access beyond what the caller hands in.

pub mod expand;
pub mod ignore;
pub mod instruction;
mod lines;
pub mod mount;
pub mod pairs;
mod parser;
pub mod plan;
mod resolve;
pub mod value;
pub mod vars;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::dockerfile::instruction::{
    ArgDecl, Command, CopySpec, Healthcheck, Heredoc, Instruction, Kind, Network, Resolved,
    RunMount, RunSpec,
};
pub use crate::dockerfile::vars::{Platform, Vars};

/// A position in the Dockerfile (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// Byte offset in the source.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// Where it was read from (for diagnostics).
    pub path: PathBuf,
    /// The text.
    pub source: Arc<str>,
    /// The escape character (`\` or a `# escape=` directive's).
    pub escape: char,
    /// The `# syntax=` directive, if any (reported, not followed).
    pub syntax: Option<String>,
    /// `ARG`s before the first `FROM`, defaults as written ([`Vars`] expands them).
    pub global_args: Vec<ArgDecl>,
    /// The `ARG` instructions before the first `FROM` (for [`Vars::for_build`]).
    pub global_instructions: Vec<Instruction>,
    /// Stages in order.
    pub stages: Vec<Stage>,
}

/// One `FROM` and what follows it.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Position among the stages, from 0.
    pub index: usize,
    /// `AS name`, lowercased as Docker does.
    pub name: Option<String>,
    /// The base as written (expand with the global args).
    pub base: String,
    /// `--platform` as written.
    pub platform: Option<String>,
    /// Where the `FROM` is.
    pub span: Span,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
}

/// Why a Dockerfile was refused; shows `file:line:col`, what is wrong, and a hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{}:{}: {message}", path.display(), span.line, span.column)]
pub struct DockerfileError {
    /// The Dockerfile.
    pub path: PathBuf,
    /// Where.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl DockerfileError {
    /// The error and its hint on a second line, as the CLI prints it.
    pub fn report(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{self}\n  hint: {hint}"),
            None => self.to_string(),
        }
    }
}

impl Dockerfile {
    /// Parses `text` read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, DockerfileError> {
        parser::parse(path, text)
    }

    /// The stage a name or index (`--target`, `--from`, `FROM stage`) refers to; names are
    /// compared as Docker does, ignoring case.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let name = name_or_index.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name.as_str()))
            .or_else(|| {
                let index: usize = name_or_index.parse().ok()?;
                // Only plain digits count: `+1` or `01` are image names, not indices.
                (index.to_string() == name_or_index).then(|| self.stages.get(index))?
            })
    }

    /// The stage names, in order (for messages).
    pub fn stage_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .map(|s| s.name.clone().unwrap_or_else(|| s.index.to_string()))
            .collect()
    }
}
