//! The mounts of a RUN container: the host files Docker provides, `RUN --mount`, and their
//! mount points kept out of the layer.

use std::path::{Path, PathBuf};

use crate::BuildError;
use crate::build::Shared;
use crate::dockerfile::RunMount;
use crate::progress::Event;
use crate::run::BundleMount;

/// `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` as Docker gives a build container.
pub(crate) fn host_files(dir: &Path) -> Result<Vec<BundleMount>, BuildError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let contents = [
        (
            "hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tslipway-build\n"
                .to_string(),
        ),
        ("resolv.conf", resolv),
        ("hostname", "slipway-build\n".to_string()),
    ];
    let mut mounts = Vec::new();
    for (name, text) in contents {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
        mounts.push(BundleMount {
            destination: format!("/etc/{name}"),
            source: path,
            kind: "bind",
            options: vec!["ro".into()],
        });
    }
    Ok(mounts)
}

/// Creates every mount point in the extra lower directory so none lands in the layer.
pub(crate) fn mount_points(init: &Path, mounts: &[BundleMount]) -> Result<(), BuildError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io { path, source }
    };
    for dir in ["dev", "proc", "sys", "etc"] {
        let p = init.join(dir);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    for m in mounts {
        let p = init.join(m.destination.trim_start_matches('/'));
        if m.kind == "bind" && m.source.is_file() {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&p, "").map_err(io(&p))?;
        } else {
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
    }
    Ok(())
}

/// A `RUN --mount` as a bundle mount.
pub(crate) fn run_mount(
    shared: &Shared<'_>,
    mount: &RunMount,
    files: &Path,
) -> Result<Option<BundleMount>, BuildError> {
    Ok(match mount {
        RunMount::Cache {
            target,
            id,
            mode,
            uid,
            gid,
            readonly,
            ..
        } => {
            let dir = cache_mount_dir(shared, id)?;
            if std::fs::read_dir(&dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(*mode));
                let _ = nix::unistd::chown(
                    &dir,
                    Some(nix::unistd::Uid::from_raw(*uid)),
                    Some(nix::unistd::Gid::from_raw(*gid)),
                );
            }
            Some(BundleMount {
                destination: target.clone(),
                source: dir,
                kind: "bind",
                options: if *readonly {
                    vec!["ro".into()]
                } else {
                    Vec::new()
                },
            })
        }
        RunMount::Tmpfs { target, size } => Some(BundleMount {
            destination: target.clone(),
            source: PathBuf::from("tmpfs"),
            kind: "tmpfs",
            options: size.map(|s| vec![format!("size={s}")]).unwrap_or_default(),
        }),
        RunMount::Bind {
            target,
            source,
            from: None,
            ..
        } => {
            let path = shared.context.root().join(source.trim_start_matches('/'));
            Some(BundleMount {
                destination: target.clone(),
                source: path,
                kind: "bind",
                options: vec!["ro".into()],
            })
        }
        RunMount::Bind { from: Some(_), .. } => {
            return Err(BuildError::Unsupported(
                "RUN --mount=type=bind,from=<stage>".into(),
            ));
        }
        RunMount::Secret {
            id,
            target,
            required,
            env,
            ..
        } => match shared.options.secrets.get(id) {
            Some(path) if env.is_none() => {
                let copy = files.join(format!(
                    "secret-{}",
                    crate::store::Digest::of_bytes(id.as_bytes()).hex()
                ));
                std::fs::copy(path, &copy).map_err(|source| BuildError::Io {
                    path: path.clone(),
                    source,
                })?;
                Some(BundleMount {
                    destination: target.clone(),
                    source: copy,
                    kind: "bind",
                    options: vec!["ro".into()],
                })
            }
            Some(_) => {
                return Err(BuildError::Unsupported(
                    "RUN --mount=type=secret,env=".into(),
                ));
            }
            None if *required => return Err(BuildError::MissingSecret(id.clone())),
            None => None,
        },
        RunMount::Ssh { .. } => {
            shared.progress.event(Event::Notice(
                "RUN --mount=type=ssh is not forwarded yet; the mount is skipped".into(),
            ));
            None
        }
    })
}

/// The directory behind a cache mount id, kept in the store between builds.
fn cache_mount_dir(shared: &Shared<'_>, id: &str) -> Result<PathBuf, BuildError> {
    let dir = shared
        .store
        .root()
        .join("mounts")
        .join(crate::store::Digest::of_bytes(id.as_bytes()).hex());
    std::fs::create_dir_all(&dir).map_err(|source| BuildError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}
