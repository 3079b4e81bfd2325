//! Why a build failed.

use std::path::PathBuf;

/// A build failure; each variant reads after "failed to build: ".
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile is malformed (carries file:line:col).
    #[error(transparent)]
    Dockerfile(#[from] crate::dockerfile::DockerfileError),
    /// A local file could not be read or written.
    #[error("cannot use {path}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Making or reading a layer failed.
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    /// The image could not be serialized or archived.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// A registry refused or failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// A RUN could not start or failed.
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
    /// The build context is unusable.
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    /// The build was interrupted.
    #[error("the build was interrupted")]
    Interrupted,
}
