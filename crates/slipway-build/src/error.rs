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
    /// An instruction failed (wraps the cause with where it is).
    #[error("{}:{line}: {text}", path.display())]
    Instruction {
        /// The Dockerfile.
        path: PathBuf,
        /// The instruction's line.
        line: u32,
        /// The instruction as written.
        text: String,
        /// What went wrong.
        #[source]
        source: Box<BuildError>,
    },
    /// The Dockerfile has no stage to build.
    #[error("find a stage to build: the Dockerfile has no FROM")]
    NothingToBuild,
    /// `--custom-platform` or `FROM --platform` is not a platform.
    #[error("use platform `{0}`: expected os/arch[/variant], e.g. linux/amd64")]
    Platform(String),
    /// A feature the builder does not have yet.
    #[error("use {0}: not supported yet")]
    Unsupported(String),
    /// `RUN --mount=type=secret,required` without the secret.
    #[error("mount secret `{0}`: no `--secret id={0},src=FILE` was given")]
    MissingSecret(String),
    /// Neither a destination nor `--no-push`.
    #[error(
        "know where the image goes: give --destination, or --no-push (with --tar-path to keep it)"
    )]
    NoDestination,
    /// The unprivileged mode would overwrite the root of a machine that is not a container.
    #[error(
        "build in this machine's own root: without overlay mounts, RUN runs in `/`, which each \
         stage overwrites, and this does not look like a container (no /.dockerenv, \
         /run/.containerenv, container= variable or container cgroup)"
    )]
    NotAContainer,
    /// A COPY or ADD failed.
    #[error(transparent)]
    Copy(#[from] crate::build::copy::CopyError),
    /// The build was interrupted.
    #[error("the build was interrupted")]
    Interrupted,
}
