//! The build context: a directory, `dir://`, a `.tar.gz`, or a git repository (`git://`, a
//! local git URL, `#ref`), with `.dockerignore` applied.

use std::path::Path;

/// Why the context cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {}

/// A build context materialized as a directory.
#[derive(Debug)]
pub struct Context {
    // helper C
}

impl Context {
    /// Opens `spec` (Kaniko's `--context`) and reads `.dockerignore` (or
    /// `<dockerfile>.dockerignore`, which wins).
    pub fn open(spec: &str, dockerfile: Option<&Path>) -> Result<Self, ContextError> {
        let _ = (spec, dockerfile);
        unimplemented!("helper C")
    }

    /// The directory holding the context.
    pub fn root(&self) -> &Path {
        unimplemented!("helper C")
    }

    /// The Dockerfile: Kaniko's `--dockerfile` (absolute, or relative to the context, or
    /// `-` for stdin), `Dockerfile` in the context by default; its path and text.
    pub fn dockerfile(
        &self,
        flag: Option<&str>,
    ) -> Result<(std::path::PathBuf, String), ContextError> {
        let _ = flag;
        unimplemented!("helper C")
    }
}
