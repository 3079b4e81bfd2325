//! RUN: a container over the stage's layers; its upper directory becomes the layer.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::BuildError;
use crate::build::Shared;
use crate::build::rootfs::{self, Upper};
use crate::build::settings;
use crate::build::stage::StageState;
use crate::dockerfile::{Command, Network, RunMount, RunSpec};
use crate::progress::Event;
use crate::run::{Bundle, BundleMount, Process, RunError, Runtime, resolve_user};

/// Docker's PATH when the image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Lines of output kept for the error of a failing RUN.
const TAIL: usize = 20;

/// The argv a RUN executes: shell form through `SHELL`; a here-document that is the whole
/// command (`RUN <<EOF`) runs by its `#!` line when it has one. Other here-documents are
/// already part of the shell text, for the shell to read.
fn command(state: &StageState, run: &RunSpec) -> Vec<String> {
    if let (true, Command::Shell(content)) = (run.script, &run.command)
        && let Some(first) = content.lines().next().filter(|l| l.starts_with("#!"))
    {
        let mut argv: Vec<String> = first[2..].split_whitespace().map(str::to_string).collect();
        if !argv.is_empty() {
            argv.push("-c".into());
            argv.push(content.clone());
            return argv;
        }
    }
    settings::argv(state, &run.command)
}

/// The environment of the RUN.
fn environment(state: &StageState, home: &str) -> Vec<String> {
    let mut env = state.vars.run_env();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Runs a RUN (or takes it from the cache); true when cached.
pub(crate) async fn run(
    shared: &Shared<'_>,
    state: &mut StageState,
    run: &RunSpec,
    text: &str,
    step: usize,
) -> Result<bool, BuildError> {
    let argv = command(state, run);
    let workdir = settings::workdir(state);
    let user = state.image.config.config.user.clone().unwrap_or_default();
    let key = state.key.next(&[
        "RUN",
        &serde_json::to_string(&argv).unwrap_or_default(),
        &state.vars.run_env().join("\n"),
        &user,
        &workdir,
        &format!("{:?}{:?}", run.network, run.mounts),
    ]);
    if shared.options.cache && rootfs::reuse(shared, state, &key, text)? {
        return Ok(true);
    }
    let tmp = shared.store.temp_dir()?;
    let init = tmp.path().join("init");
    let files = tmp.path().join("files");
    let mut mounts = host_files(&files)?;
    for m in &run.mounts {
        if let Some(mount) = run_mount(shared, m, &files)? {
            mounts.push(mount);
        }
    }
    mount_points(&init, &mounts)?;
    let upper = Upper::mount(shared, state, Some(&init))?;
    let who = resolve_user(upper.merged(), &user)?;
    let process = Process {
        env: environment(state, &who.home),
        args: argv,
        cwd: workdir,
        user: who,
    };
    let id = format!("slipway-build-{:016x}", fastrand::u64(..));
    let bundle = Bundle::write(
        &tmp.path().join("bundle"),
        upper.merged(),
        &process,
        &mounts,
        run.network != Network::None,
        "slipway-build",
    )?;
    let tail = Mutex::new(VecDeque::with_capacity(TAIL));
    let on_line = |line: String| {
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL {
                t.pop_front();
            }
            t.push_back(line.clone());
        }
        shared.progress.event(Event::Output { index: step, line });
    };
    let status = shared.runtime.run(&id, &bundle, &on_line).await?;
    if status.code != 0 {
        return Err(RunError::Failed {
            command: text.to_string(),
            code: status.code,
            tail: tail.into_inner().unwrap_or_default().into(),
        }
        .into());
    }
    upper.commit(shared, state, text, key).await?;
    drop(tmp);
    Ok(false)
}

/// `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` as Docker gives a build container.
fn host_files(dir: &Path) -> Result<Vec<BundleMount>, BuildError> {
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
fn mount_points(init: &Path, mounts: &[BundleMount]) -> Result<(), BuildError> {
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
fn run_mount(
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
