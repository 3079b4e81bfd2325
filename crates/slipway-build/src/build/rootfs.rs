//! A stage's root file system as overlay mounts: read-only views for `--from`, and a writable
//! one whose upper directory becomes the next layer.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

use crate::BuildError;
use crate::build::Shared;
use crate::build::key::Key;
use crate::build::stage::StageState;
use crate::image::Image;
use crate::layer::write_layer;
use crate::run::Overlay;
use crate::store::{CacheRecord, TempDir};

/// The unpacked directories of `image`'s layers, bottom first (unpacked on first use).
///
/// A layer can occur twice (two RUNs that changed nothing make the same empty layer), and
/// overlay refuses a directory listed twice. Only the topmost occurrence is kept: a layer sets
/// every path it touches, so applying it again higher up hides all its lower copy did.
pub(crate) fn lowers(shared: &Shared<'_>, image: &Image) -> Result<Vec<PathBuf>, BuildError> {
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
pub(crate) struct ReadOnly {
    overlay: Overlay,
}

impl ReadOnly {
    /// Mounts `image` under `dir`.
    pub(crate) fn mount(
        shared: &Shared<'_>,
        image: &Image,
        dir: &Path,
    ) -> Result<Self, BuildError> {
        let lowers = lowers(shared, image)?;
        let overlay = Overlay::mount(&lowers, None, &dir.join("rl"), &dir.join("ro"))?;
        Ok(Self { overlay })
    }

    /// The merged tree.
    pub(crate) fn path(&self) -> &Path {
        self.overlay.path()
    }
}

/// A writable overlay over a stage's layers; its upper directory becomes a layer on commit.
pub(crate) struct Upper {
    overlay: Option<Overlay>,
    upper: PathBuf,
    tmp: TempDir,
}

impl Upper {
    /// Mounts the stage's layers with an empty upper directory, `extra` (the RUN's mount
    /// points) as the topmost lower one so they never land in the layer, and creates a pending
    /// `WORKDIR`.
    pub(crate) fn mount(
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
            mkdir_in_root(overlay.path(), &crate::build::settings::workdir(state))?;
            state.pending_workdir = false;
        }
        Ok(Self {
            overlay: Some(overlay),
            upper,
            tmp,
        })
    }

    /// The merged tree.
    pub(crate) fn merged(&self) -> &Path {
        self.overlay
            .as_ref()
            .map_or_else(|| self.tmp.path(), |o| o.path())
    }

    /// Unmounts, writes the upper directory as a layer, adds it to the stage's image and
    /// records it in the cache under `key`.
    pub(crate) async fn commit(
        mut self,
        shared: &Shared<'_>,
        state: &mut StageState,
        text: &str,
        key: Key,
    ) -> Result<(), BuildError> {
        if let Some(o) = self.overlay.take() {
            o.unmount()?;
        }
        let options = shared.layer_options.clone();
        let store = shared.store.clone();
        let upper = self.upper.clone();
        let layer = tokio::task::spawn_blocking(move || write_layer(&store, &upper, &options))
            .await
            .map_err(|_| BuildError::Interrupted)??;
        shared.store.adopt_layer_dir(&self.upper, &layer.diff_id)?;
        state
            .image
            .push_layer(layer.clone(), &history_text(text), shared.created());
        if shared.options.cache {
            shared.store.cache_put(
                key.hex(),
                &CacheRecord {
                    layer: Some(layer),
                    created_unix: crate::build::key::now_unix(),
                },
            )?;
        }
        state.key = key;
        drop(self.tmp);
        Ok(())
    }
}

/// What `history` says for an instruction.
pub(crate) fn history_text(text: &str) -> String {
    format!("{text} # slipway")
}

/// Takes a cached layer for `key` when the cache has a fresh one.
pub(crate) fn reuse(
    shared: &Shared<'_>,
    state: &mut StageState,
    key: &Key,
    text: &str,
) -> Result<bool, BuildError> {
    let Some(record) = shared.store.cache_get(key.hex()) else {
        return Ok(false);
    };
    let age = crate::build::key::now_unix().saturating_sub(record.created_unix);
    if u64::try_from(age).unwrap_or(u64::MAX) > shared.options.cache_ttl.as_secs() {
        return Ok(false);
    }
    let Some(layer) = record.layer else {
        return Ok(false);
    };
    if !shared.store.has_blob(&layer.digest) {
        return Ok(false);
    }
    state
        .image
        .push_layer(layer, &history_text(text), shared.created());
    state.key = key.clone();
    // The cached layer was made with the pending WORKDIR in it.
    state.pending_workdir = false;
    Ok(true)
}

/// Runs `change` on a writable overlay and commits the result as a layer under a key made
/// from the chain and `text`.
pub(crate) async fn change(
    shared: &Shared<'_>,
    state: &mut StageState,
    text: &str,
    change: impl FnOnce(PathBuf) -> Result<(), BuildError> + Send + 'static,
) -> Result<(), BuildError> {
    let key = state
        .key
        .next(&[text, &crate::build::settings::workdir(state)]);
    change_keyed(shared, state, text, &key, change).await
}

/// Runs `change` on a writable overlay and commits the result as a layer under `key`.
pub(crate) async fn change_keyed(
    shared: &Shared<'_>,
    state: &mut StageState,
    text: &str,
    key: &Key,
    change: impl FnOnce(PathBuf) -> Result<(), BuildError> + Send + 'static,
) -> Result<(), BuildError> {
    let upper = Upper::mount(shared, state, None)?;
    let merged = upper.merged().to_path_buf();
    tokio::task::spawn_blocking(move || change(merged))
        .await
        .map_err(|_| BuildError::Interrupted)??;
    upper.commit(shared, state, text, key.clone()).await
}

/// `mkdir -p` of `path` inside `root`, every component resolved inside it (an image's
/// `/app -> /etc` link must not make the builder write to the host's `/etc`).
pub(crate) fn mkdir_in_root(root: &Path, path: &str) -> Result<(), BuildError> {
    let io = |source: std::io::Error| BuildError::Io {
        path: root.join(path.trim_start_matches('/')),
        source,
    };
    let root_dir = std::fs::File::open(root).map_err(io)?;
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .mode(Mode::empty())
            .resolve(ResolveFlag::RESOLVE_IN_ROOT)
    };
    let mut prefix = String::from("/");
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let parent = openat2(root_dir.as_fd(), prefix.as_str(), how())
            .map_err(|e| io(std::io::Error::from(e)))?;
        let next = format!("{}/{part}", prefix.trim_end_matches('/'));
        if openat2(root_dir.as_fd(), next.as_str(), how()).is_err() {
            match nix::sys::stat::mkdirat(parent.as_fd(), part, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(io(std::io::Error::from(e))),
            }
        }
        prefix = next;
    }
    Ok(())
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

    #[test]
    fn mkdir_stays_inside_the_root() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        std::os::unix::fs::symlink(outside.path(), root.path().join("app"))?;
        // Resolved inside the root, the link names a directory that does not exist there:
        // refused or created inside, never written through to the host's directory.
        let _ = mkdir_in_root(root.path(), "/app/data/x");
        assert!(std::fs::read_dir(outside.path())?.next().is_none());
        mkdir_in_root(root.path(), "/srv/www")?;
        assert!(root.path().join("srv/www").is_dir());
        Ok(())
    }
}
