//! Which workspace a build uses: overlay mounts and runc where the kernel allows them, else
//! the builder's own root, and only inside a container (or when forced).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::BuildError;
use crate::build::BuildOptions;
use crate::build::workspace::Workspace;
use crate::build::workspace::overlay::Overlays;
use crate::build::workspace::own_root::OwnRoot;
use crate::context::Context;
use crate::progress::{Event, Progress};
use crate::run::{OciRuntime, Overlay, RunError};
use crate::store::Store;

/// `--mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Privileged when an overlay mount and the OCI runtime work here, else unprivileged.
    #[default]
    Auto,
    /// Overlay mounts and runc (root, or CAP_SYS_ADMIN).
    Privileged,
    /// RUN in the builder's own root, layers from snapshots (Kaniko's way).
    Unprivileged,
}

/// What the auto mode says when it falls back.
const FALLBACK: &str =
    "overlay mounts are not allowed here: running RUN in this container's own root, as Kaniko does";

/// The workspace `options.mode` asks for (probing, for `auto`, whether overlay mounts work in
/// the store and an OCI runtime is installed).
pub(crate) fn choose(
    options: &BuildOptions,
    runtime: Result<OciRuntime, RunError>,
    store: &Store,
    context: &Context,
    progress: &dyn Progress,
) -> Result<Box<dyn Workspace>, BuildError> {
    let privileged = match options.mode {
        Mode::Privileged => true,
        Mode::Unprivileged => false,
        Mode::Auto => {
            let works = runtime.is_ok() && overlay_works(store);
            if !works {
                progress.event(Event::Notice(FALLBACK.into()));
            }
            works
        }
    };
    if privileged {
        return Ok(Box::new(Overlays {
            runtime: Arc::new(runtime?),
        }));
    }
    if !options.force && !in_container(Path::new("/"), std::env::var_os("container").is_some()) {
        return Err(BuildError::NotAContainer);
    }
    Ok(Box::new(OwnRoot::new(
        PathBuf::from("/"),
        &own_files(options, store, context),
    )))
}

/// The builder's own files under `/`, which resetting the root must keep: the store, the
/// context, the binary, the outputs, the credentials and secrets it reads.
fn own_files(options: &BuildOptions, store: &Store, context: &Context) -> Vec<PathBuf> {
    let mut paths = vec![store.root().to_path_buf(), context.root().to_path_buf()];
    paths.extend(std::env::current_exe().ok());
    paths.extend(options.tar_path.iter().cloned());
    paths.extend(options.digest_file.iter().cloned());
    paths.extend(options.image_name_with_digest_file.iter().cloned());
    paths.extend(options.image_name_tag_with_digest_file.iter().cloned());
    paths.extend(options.secrets.values().cloned());
    if let Some(dockerfile) = &options.dockerfile {
        paths.push(PathBuf::from(dockerfile));
    }
    // TLS roots the builder brings along, as Kaniko's image does with `SSL_CERT_DIR`.
    for var in ["SSL_CERT_DIR", "SSL_CERT_FILE"] {
        paths.extend(std::env::var_os(var).map(PathBuf::from));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => paths.push(PathBuf::from(dir)),
        None => paths.extend(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker"))),
    }
    paths
}

/// True when an overlay mount with an upper directory works in the store's `tmp/`.
fn overlay_works(store: &Store) -> bool {
    let Ok(tmp) = store.temp_dir() else {
        return false;
    };
    let lower = tmp.path().join("lower");
    if std::fs::create_dir(&lower).is_err() {
        return false;
    }
    let mounted = Overlay::mount(
        &[lower],
        Some((&tmp.path().join("u"), &tmp.path().join("w"))),
        &tmp.path().join("l"),
        &tmp.path().join("m"),
    );
    match mounted {
        Ok(overlay) => overlay.unmount().is_ok(),
        Err(e) => {
            tracing::debug!(error = %e, "overlay mounts do not work here");
            false
        }
    }
}

/// True when `root` looks like a container's: Docker's `/.dockerenv`, Podman's
/// `/run/.containerenv`, a `container=` variable (systemd's convention), or a cgroup path
/// naming a container runtime.
pub(crate) fn in_container(root: &Path, container_env: bool) -> bool {
    if container_env || root.join(".dockerenv").exists() || root.join("run/.containerenv").exists()
    {
        return true;
    }
    let cgroup = std::fs::read_to_string(root.join("proc/1/cgroup")).unwrap_or_default();
    [
        "docker",
        "kubepods",
        "containerd",
        "libpod",
        "lxc",
        "buildkit",
    ]
    .iter()
    .any(|hint| cgroup.contains(hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_recognised_by_their_marks() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let r = root.path();
        std::fs::create_dir_all(r.join("proc/1"))?;
        std::fs::write(r.join("proc/1/cgroup"), "0::/init.scope\n")?;
        assert!(!in_container(r, false), "a plain machine");
        assert!(in_container(r, true), "container= in the environment");
        std::fs::write(
            r.join("proc/1/cgroup"),
            "0::/kubepods/besteffort/pod1/abc\n",
        )?;
        assert!(in_container(r, false), "a Kubernetes pod's cgroup");
        std::fs::write(r.join("proc/1/cgroup"), "0::/\n")?;
        std::fs::write(r.join(".dockerenv"), "")?;
        assert!(in_container(r, false), "Docker's mark");
        std::fs::remove_file(r.join(".dockerenv"))?;
        std::fs::create_dir_all(r.join("run"))?;
        std::fs::write(r.join("run/.containerenv"), "")?;
        assert!(in_container(r, false), "Podman's mark");
        Ok(())
    }
}
