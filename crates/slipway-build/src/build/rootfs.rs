//! Instructions that change files: a writable root from the workspace, the change, the
//! layer it makes (or one from the cache).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

use crate::BuildError;
use crate::build::Shared;
use crate::build::key::Key;
use crate::build::stage::StageState;
use crate::build::workspace::Changes;
use crate::store::CacheRecord;

/// Writes what `changes` holds as a layer, adds it to the stage's image and records it in the
/// cache under `key`.
pub(crate) async fn commit(
    shared: &Shared<'_>,
    state: &mut StageState,
    changes: Box<dyn Changes>,
    text: &str,
    key: Key,
) -> Result<(), BuildError> {
    let options = shared.layer_options.clone();
    let store = shared.store.clone();
    let layer = tokio::task::spawn_blocking(move || changes.into_layer(&store, &options))
        .await
        .map_err(|_| BuildError::Interrupted)??;
    state
        .image
        .push_layer(layer.clone(), &history_text(text), shared.created());
    if shared.options.cache {
        shared.store.cache_put(
            key.hex(),
            &CacheRecord {
                layer: Some(layer.clone()),
                created_unix: crate::build::key::now_unix(),
            },
        )?;
        crate::build::remote_cache::put(shared, &key, layer).await;
    }
    state.key = key;
    Ok(())
}

/// What `history` says for an instruction.
pub(crate) fn history_text(text: &str) -> String {
    format!("{text} # slipway")
}

/// Takes a cached layer for `key` when the local cache, else the `--cache-repo`, has a
/// fresh one.
pub(crate) async fn reuse(
    shared: &Shared<'_>,
    state: &mut StageState,
    key: &Key,
    text: &str,
) -> Result<bool, BuildError> {
    let record = match shared.store.cache_get(key.hex()) {
        Some(record) => record,
        None => match crate::build::remote_cache::get(shared, key).await? {
            Some(record) => record,
            None => return Ok(false),
        },
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
    let changes = shared.workspace.open(shared, state).await?;
    let root = changes.root().to_path_buf();
    tokio::task::spawn_blocking(move || change(root))
        .await
        .map_err(|_| BuildError::Interrupted)??;
    commit(shared, state, changes, text, key.clone()).await
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
