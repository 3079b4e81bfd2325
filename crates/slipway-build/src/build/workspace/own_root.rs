//! The unprivileged mode: the stage's files unpacked into the builder's own root, RUN as a
//! child process there, each layer made from a snapshot diff.
//!
//! `/` follows the image lazily: it records which layers it holds, so the next stage built
//! on the last one (or a cached step) only applies what is missing, and another base resets
//! the root first (everything but the ignored paths deleted).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::BuildError;
use crate::build::Shared;
use crate::build::rootfs::mkdir_in_root;
use crate::build::run_step::with_home;
use crate::build::settings;
use crate::build::stage::StageState;
use crate::build::workspace::{Changes, RunRequest, View, Workspace};
use crate::dockerfile::Network;
use crate::image::Image;
use crate::layer::{Layer, LayerOptions, write_changes};
use crate::progress::Event;
use crate::run::{RunError, UserSpec, resolve_user};
use crate::snapshot::{Ignore, Index};
use crate::store::{Digest, Store, TempDir};

/// File times move in clock ticks (up to 10 ms): a change within the tick of the snapshot
/// could leave a file's ctime as indexed, so no instruction starts sooner after one.
const TICK: Duration = Duration::from_millis(20);

/// The builder's own root as the stage's file system.
pub(crate) struct OwnRoot {
    root: PathBuf,
    ignore: Ignore,
    state: Arc<Mutex<RootState>>,
}

/// What the root holds now.
#[derive(Default)]
struct RootState {
    /// The diff_ids of the layers applied, bottom first; `None` when unknown (a failed RUN).
    layers: Option<Vec<Digest>>,
    /// Its index, and when it was taken; `None` once an instruction started changing it.
    index: Option<(Index, Instant)>,
}

impl OwnRoot {
    /// Builds in `root`, leaving the defaults, its mounts and `own` (absolute paths) alone.
    pub(crate) fn new(root: PathBuf, own: &[PathBuf]) -> Self {
        let ignore = Ignore::for_root(&root, own);
        OwnRoot {
            root,
            ignore,
            state: Arc::new(Mutex::new(RootState::default())),
        }
    }

    /// Brings the root to `image`'s layers and returns its index. Blocking.
    fn follow(&self, shared: &Shared<'_>, image: &Image) -> Result<Index, BuildError> {
        let mut state = self.state.lock().map_err(|_| BuildError::Interrupted)?;
        let wanted: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        let have = match state.layers.take() {
            Some(have) if wanted.starts_with(&have) => have.len(),
            _ => {
                state.index = None;
                let skip = |rel: &Path| self.ignore.skips(rel);
                crate::layer::unpack::prune(&self.root, Path::new(""), &skip, None)?;
                0
            }
        };
        for layer in image.layers.iter().skip(have) {
            state.index = None;
            let skip = |rel: &Path| self.ignore.skips(rel);
            let blob = shared.store.blob_path(&layer.digest);
            crate::layer::apply(&blob, &layer.media_type, &self.root, &skip)?;
        }
        let (index, at) = match state.index.take() {
            Some(indexed) => indexed,
            None => (Index::walk(&self.root, &self.ignore)?, Instant::now()),
        };
        state.layers = Some(wanted);
        drop(state);
        std::thread::sleep(TICK.saturating_sub(at.elapsed()));
        Ok(index)
    }

    /// The root with `state`'s files and its pending WORKDIR, ready to change.
    fn begin(&self, shared: &Shared<'_>, state: &mut StageState) -> Result<Snapshot, BuildError> {
        let before = tokio::task::block_in_place(|| self.follow(shared, &state.image))?;
        let snapshot = Snapshot {
            root: self.root.clone(),
            ignore: self.ignore.clone(),
            before,
            state: Arc::clone(&self.state),
            committed: false,
        };
        if state.pending_workdir {
            mkdir_in_root(&self.root, &settings::workdir(state))?;
            state.pending_workdir = false;
        }
        Ok(snapshot)
    }
}

/// The root while one instruction changes it.
struct Snapshot {
    root: PathBuf,
    ignore: Ignore,
    before: Index,
    state: Arc<Mutex<RootState>>,
    committed: bool,
}

impl Changes for Snapshot {
    fn root(&self) -> &Path {
        &self.root
    }

    fn into_layer(
        mut self: Box<Self>,
        store: &Store,
        options: &LayerOptions,
    ) -> Result<Layer, BuildError> {
        let after = Index::walk(&self.root, &self.ignore)?;
        let changes = self.before.diff(&after);
        let layer = write_changes(store, &self.root, &changes, options)?;
        let mut state = self.state.lock().map_err(|_| BuildError::Interrupted)?;
        if let Some(layers) = state.layers.as_mut() {
            layers.push(layer.diff_id.clone());
        }
        state.index = Some((after, Instant::now()));
        self.committed = true;
        Ok(layer)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // A change that was not committed left the root in a state no image describes.
        if !self.committed
            && let Ok(mut state) = self.state.lock()
        {
            state.layers = None;
            state.index = None;
        }
    }
}

/// An image's files unpacked into a directory of the store.
struct Unpacked {
    dir: TempDir,
}

impl View for Unpacked {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[async_trait::async_trait(?Send)]
impl Workspace for OwnRoot {
    async fn open(
        &self,
        shared: &Shared<'_>,
        state: &mut StageState,
    ) -> Result<Box<dyn Changes>, BuildError> {
        Ok(Box::new(self.begin(shared, state)?))
    }

    async fn run(
        &self,
        shared: &Shared<'_>,
        state: &mut StageState,
        request: RunRequest<'_>,
        on_line: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(i32, Box<dyn Changes>), BuildError> {
        if !request.spec.mounts.is_empty() {
            return Err(BuildError::Unsupported(
                "RUN --mount without overlay mounts (the unprivileged mode)".into(),
            ));
        }
        if request.spec.network == Network::None {
            shared.progress.event(Event::Notice(
                "RUN --network=none: the unprivileged mode cannot isolate the network; it runs with the container's".into(),
            ));
        }
        let snapshot = self.begin(shared, state)?;
        let who = resolve_user(&self.root, &request.user)?;
        let env = with_home(request.env, &who.home);
        let code = spawn(&self.root, &request.argv, &env, &request.cwd, &who, on_line).await?;
        Ok((code, Box::new(snapshot)))
    }

    async fn view(&self, shared: &Shared<'_>, image: &Image) -> Result<Box<dyn View>, BuildError> {
        let dir = shared.store.temp_dir()?;
        tokio::task::block_in_place(|| {
            for layer in &image.layers {
                let blob = shared.store.blob_path(&layer.digest);
                crate::layer::apply(&blob, &layer.media_type, dir.path(), &|_| false)?;
            }
            Ok::<_, BuildError>(())
        })?;
        Ok(Box::new(Unpacked { dir }))
    }
}

/// Runs `argv` as `who` in `cwd` (inside `root`, which is `/`) with exactly `env`, handing
/// each output line to `on_line`; its exit code (128 + signal when killed).
async fn spawn(
    root: &Path,
    argv: &[String],
    env: &[String],
    cwd: &str,
    who: &UserSpec,
    on_line: &(dyn Fn(String) + Send + Sync),
) -> Result<i32, BuildError> {
    let Some(program) = argv.first() else {
        return Err(BuildError::Unsupported("RUN with an empty command".into()));
    };
    let mut command = std::process::Command::new(program);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(env.iter().filter_map(|kv| kv.split_once('=')))
        .current_dir(root.join(cwd.trim_start_matches('/')))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (uid, gid) = (who.uid, who.gid);
    let groups: Vec<nix::unistd::Gid> = who
        .additional_gids
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    // SAFETY: only async-signal-safe system calls run between fork and exec. Groups first:
    // after setuid the process may no longer change them.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setgroups(&groups)?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(gid))?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
            Ok(())
        });
    }
    let mut child = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| RunError::Spawn {
            runtime: program.clone(),
            source,
        })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let out = async {
        if let Some(s) = stdout {
            crate::run::forward(s, on_line).await;
        }
    };
    let err = async {
        if let Some(s) = stderr {
            crate::run::forward(s, on_line).await;
        }
    };
    let ((), (), status) = tokio::join!(out, err, child.wait());
    let status = status.map_err(|source| RunError::Spawn {
        runtime: program.clone(),
        source,
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255))
}
