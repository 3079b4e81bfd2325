//! The privileged mode: a stage's root as overlay mounts of its unpacked layers (read-only
//! views for `--from`, a writable one whose upper directory becomes the next layer), RUN in
//! runc over it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::BuildError;
use crate::build::Shared;
use crate::build::rootfs::mkdir_in_root;
use crate::build::run_step::with_home;
use crate::build::settings;
use crate::build::stage::StageState;
use crate::build::workspace::{Changes, RunRequest, View, Workspace, mounts};
use crate::dockerfile::Network;
use crate::image::Image;
use crate::layer::{Layer, LayerOptions, write_layer};
use crate::run::{Bundle, OciRuntime, Overlay, Process, Runtime, resolve_user};
use crate::store::{Store, TempDir};

/// Overlay mounts and an OCI runtime.
pub(crate) struct Overlays {
    /// runc or crun.
    pub runtime: Arc<OciRuntime>,
}

/// The unpacked directories of `image`'s layers, bottom first (unpacked on first use).
///
/// A layer can occur twice (two RUNs that changed nothing make the same empty layer), and
/// overlay refuses a directory listed twice. Only the topmost occurrence is kept: a layer sets
/// every path it touches, so applying it again higher up hides all its lower copy did.
fn lowers(shared: &Shared<'_>, image: &Image) -> Result<Vec<PathBuf>, BuildError> {
    let dirs: Vec<PathBuf> = tokio::task::block_in_place(|| {
        image
            .layers
            .iter()
            .map(|l| shared.store.unpack_layer(l).map_err(BuildError::from))
            .collect::<Result<_, _>>()
    })?;
    Ok(topmost_only(dirs))
}

/// Drops every directory that occurs again later in the list.
fn topmost_only(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<PathBuf> = dirs
        .into_iter()
        .rev()
        .filter(|d| seen.insert(d.clone()))
        .collect();
    kept.reverse();
    kept
}

/// An image's file system mounted read-only (a `COPY --from` source).
struct ReadOnly {
    // Unmounted before its directory goes.
    overlay: Overlay,
    _tmp: TempDir,
}

impl View for ReadOnly {
    fn path(&self) -> &Path {
        self.overlay.path()
    }
}

/// A writable overlay over a stage's layers; its upper directory becomes a layer.
struct Upper {
    overlay: Option<Overlay>,
    upper: PathBuf,
    tmp: TempDir,
    /// The RUN's bundle and mount points (a lower directory): removed after the unmount.
    _run: Option<TempDir>,
}

impl Upper {
    /// Mounts the stage's layers with an empty upper directory, `extra` (the RUN's mount
    /// points) as the topmost lower one so they never land in the layer, and creates a pending
    /// `WORKDIR`.
    fn mount(
        shared: &Shared<'_>,
        state: &mut StageState,
        extra: Option<&Path>,
    ) -> Result<Self, BuildError> {
        let tmp = shared.store.temp_dir()?;
        let mut dirs = lowers(shared, &state.image)?;
        if let Some(extra) = extra {
            dirs.push(extra.to_path_buf());
        }
        let upper = tmp.path().join("u");
        let overlay = Overlay::mount(
            &dirs,
            Some((&upper, &tmp.path().join("w"))),
            &tmp.path().join("l"),
            &tmp.path().join("m"),
        )?;
        if state.pending_workdir {
            mkdir_in_root(overlay.path(), &settings::workdir(state))?;
            state.pending_workdir = false;
        }
        Ok(Self {
            overlay: Some(overlay),
            upper,
            tmp,
            _run: None,
        })
    }
}

impl Changes for Upper {
    fn root(&self) -> &Path {
        self.overlay
            .as_ref()
            .map_or_else(|| self.tmp.path(), |o| o.path())
    }

    /// Unmounts, writes the upper directory as a layer and keeps it as that layer's
    /// unpacked directory.
    fn into_layer(
        mut self: Box<Self>,
        store: &Store,
        options: &LayerOptions,
    ) -> Result<Layer, BuildError> {
        if let Some(o) = self.overlay.take() {
            o.unmount()?;
        }
        let layer = write_layer(store, &self.upper, options)?;
        store.adopt_layer_dir(&self.upper, &layer.diff_id)?;
        Ok(layer)
    }
}

#[async_trait::async_trait(?Send)]
impl Workspace for Overlays {
    async fn open(
        &self,
        shared: &Shared<'_>,
        state: &mut StageState,
    ) -> Result<Box<dyn Changes>, BuildError> {
        Ok(Box::new(Upper::mount(shared, state, None)?))
    }

    async fn run(
        &self,
        shared: &Shared<'_>,
        state: &mut StageState,
        request: RunRequest<'_>,
        on_line: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(i32, Box<dyn Changes>), BuildError> {
        let tmp = shared.store.temp_dir()?;
        let init = tmp.path().join("init");
        let files = tmp.path().join("files");
        let mut mounts = mounts::host_files(&files)?;
        for m in &request.spec.mounts {
            if let Some(mount) = mounts::run_mount(shared, m, &files)? {
                mounts.push(mount);
            }
        }
        mounts::mount_points(&init, &mounts)?;
        let mut upper = Upper::mount(shared, state, Some(&init))?;
        let who = resolve_user(upper.root(), &request.user)?;
        let process = Process {
            env: with_home(request.env, &who.home),
            args: request.argv,
            cwd: request.cwd,
            user: who,
        };
        // Named after this process, so a build starting meanwhile leaves it alone.
        let id = format!(
            "{}{}",
            crate::run::CONTAINER_PREFIX,
            crate::store::unique_name()
        );
        let bundle = Bundle::write(
            &tmp.path().join("bundle"),
            upper.root(),
            &process,
            &mounts,
            request.spec.network != Network::None,
            "slipway-build",
        )?;
        let status = self.runtime.run(&id, &bundle, on_line).await?;
        upper._run = Some(tmp);
        Ok((status.code, Box::new(upper)))
    }

    async fn view(&self, shared: &Shared<'_>, image: &Image) -> Result<Box<dyn View>, BuildError> {
        let tmp = shared.store.temp_dir()?;
        let lowers = lowers(shared, image)?;
        let overlay = Overlay::mount(
            &lowers,
            None,
            &tmp.path().join("rl"),
            &tmp.path().join("ro"),
        )?;
        Ok(Box::new(ReadOnly { overlay, _tmp: tmp }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_listed_twice_is_kept_at_its_top() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            topmost_only(vec![p("a"), p("e"), p("b"), p("e"), p("c")]),
            vec![p("a"), p("b"), p("e"), p("c")]
        );
    }
}
