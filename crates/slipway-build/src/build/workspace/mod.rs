//! Where a stage's files live while its instructions change them, and how a change becomes a
//! layer: overlay mounts with RUN in runc (privileged), or the builder's own root with RUN as
//! a child process and layers from snapshots (unprivileged, as Kaniko does).

mod mode;
mod mounts;
mod overlay;
mod own_root;

use std::path::Path;

use crate::BuildError;
use crate::build::Shared;
use crate::build::stage::StageState;
use crate::dockerfile::RunSpec;
use crate::image::Image;
use crate::layer::{Layer, LayerOptions};
use crate::store::Store;

pub use crate::build::workspace::mode::Mode;
pub(crate) use crate::build::workspace::mode::choose;

/// A RUN to execute, as the Dockerfile and the stage resolve it.
pub(crate) struct RunRequest<'a> {
    /// The instruction.
    pub spec: &'a RunSpec,
    /// What to execute.
    pub argv: Vec<String>,
    /// `K=V` pairs (`HOME` added from the user's entry when missing).
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// `USER` as written.
    pub user: String,
}

/// A stage's writable file system in one of the two modes.
#[async_trait::async_trait(?Send)]
pub(crate) trait Workspace {
    /// A writable root holding `state`'s image's files (and its pending WORKDIR); what
    /// changes there until the returned value is committed becomes the next layer.
    async fn open(
        &self,
        shared: &Shared<'_>,
        state: &mut StageState,
    ) -> Result<Box<dyn Changes>, BuildError>;

    /// Runs a RUN over `state`'s files; its exit code and the root it changed.
    async fn run(
        &self,
        shared: &Shared<'_>,
        state: &mut StageState,
        request: RunRequest<'_>,
        on_line: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(i32, Box<dyn Changes>), BuildError>;

    /// `image`'s files, read-only, for `COPY --from` (there while the value lives).
    async fn view(&self, shared: &Shared<'_>, image: &Image) -> Result<Box<dyn View>, BuildError>;
}

/// A writable root being changed by one instruction.
pub(crate) trait Changes: Send {
    /// Where the root is.
    fn root(&self) -> &Path;

    /// Writes what changed as a layer into `store`. Blocking.
    fn into_layer(
        self: Box<Self>,
        store: &Store,
        options: &LayerOptions,
    ) -> Result<Layer, BuildError>;
}

/// An image's files, read-only.
pub(crate) trait View {
    /// Where they are.
    fn path(&self) -> &Path;
}
