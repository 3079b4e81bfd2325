//! One step as a child process: command line, environment, sandbox, output capture, timeouts.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use slipway_engine::executor::StepPlan;
use slipway_engine::{EventSink, StepEnd};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use slipway_taskdir::layout::{Bind, Layout};
use slipway_taskdir::script::with_shebang;
use slipway_taskdir::supervise::Supervised;

use crate::sandbox::Sandbox;

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A directory of busybox applets the host may lack, last on the steps' `PATH`: Alpine-based
/// Tekton scripts start with `#!/usr/bin/env ash`. It lives in the TaskRun's directory, which
/// steps see at the same path inside the sandbox and out of it.
fn shims(layout: &Layout, shell: Option<&Path>) -> Option<std::path::PathBuf> {
    let busybox = shell.filter(|s| s.file_name().is_some_and(|n| n == "busybox"))?;
    let dir = layout.dir.join("shims");
    std::fs::create_dir_all(&dir).ok()?;
    let ash = dir.join("ash");
    if std::fs::symlink_metadata(&ash).is_err() {
        std::os::unix::fs::symlink(busybox, &ash).ok()?;
    }
    Some(dir)
}

/// Step mounts as binds on top of the TaskRun's; a `subPath` that would leave its volume is
/// an error.
pub(crate) fn step_binds(layout: &Layout, s: &StepPlan) -> std::io::Result<Vec<Bind>> {
    let mut binds = Vec::new();
    for m in &s.volume_mounts {
        let Some(volume) = layout.volume(&m.volume) else {
            continue;
        };
        let host = match m.sub_path.as_deref().filter(|p| !p.is_empty()) {
            Some(sub) => slipway_taskdir::layout::confined_dir(volume, sub, "subPath", false)?,
            None => volume.to_path_buf(),
        };
        binds.push(Bind {
            host,
            target: m.path.clone(),
            read_only: m.read_only,
        });
    }
    Ok(binds)
}

/// Rewrites Tekton paths in step text to host paths, for hosts without namespaces.
fn rewrite(text: &str, binds: &[Bind]) -> String {
    let mut out = text.to_string();
    for b in binds.iter().rev() {
        out = out.replace(&b.target, &b.host.to_string_lossy());
    }
    out
}

/// In the sandbox, `/tekton/steps` and `/tekton/run` are read-only but for the step's own
/// directories (`index`; none for a sidecar), as in a Tekton pod.
fn internal_dirs(layout: &Layout, s: &StepPlan, index: Option<usize>) -> Vec<Bind> {
    let tekton = layout.tekton_dir();
    let bind = |host: PathBuf, target: String, read_only| Bind {
        host,
        target,
        read_only,
    };
    let mut out = vec![
        bind(tekton.join("steps"), "/tekton/steps".into(), true),
        bind(tekton.join("run"), "/tekton/run".into(), true),
    ];
    if let Some(i) = index {
        let own = format!("step-{}", s.name);
        out.push(bind(
            tekton.join("steps").join(&own),
            format!("/tekton/steps/{own}"),
            false,
        ));
        out.push(bind(
            tekton.join("run").join(i.to_string()),
            format!("/tekton/run/{i}"),
            false,
        ));
    }
    out
}

pub(crate) fn build(
    root: Option<&Sandbox>,
    shell: Option<&Path>,
    layout: &Layout,
    s: &StepPlan,
    index: Option<usize>,
    tag: &str,
) -> io::Result<Command> {
    let extra = step_binds(layout, s)?;
    let internal = if root.is_some() {
        internal_dirs(layout, s, index)
    } else {
        Vec::new()
    };
    let mut all: Vec<Bind> = layout
        .binds
        .iter()
        .cloned()
        .chain(internal)
        .chain(extra.iter().cloned())
        .collect();
    all.sort_by_key(|b| b.target.len());
    let sandboxed = root.is_some();
    let fix = |t: &str| {
        if sandboxed {
            t.to_string()
        } else {
            rewrite(t, &all)
        }
    };
    let mut argv: Vec<String> = Vec::new();
    if let Some(body) = &s.script {
        let mut content = with_shebang(&fix(body));
        if !sandboxed
            && !body.starts_with("#!")
            && let Some(sh) = shell
        {
            content = content.replacen("#!/bin/sh", &format!("#!{} sh", sh.display()), 1);
        }
        let file = layout
            .dir
            .join("tekton/scripts")
            .join(format!("script-{tag}"));
        std::fs::write(&file, content)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
        argv.push(if sandboxed {
            format!("/tekton/scripts/script-{tag}")
        } else {
            file.to_string_lossy().into_owned()
        });
    } else {
        argv.extend(s.command.iter().map(|c| fix(c)));
    }
    // Without a command Tekton runs the image's entrypoint, which a host process cannot read.
    // The images Tekton's examples use behave alike: options (`-c ...`) go to their shell
    // (busybox's and alpine's cmd, bash's entrypoint), anything else is the program to run.
    if argv.is_empty() {
        match s.args.first() {
            Some(first) if first.starts_with('-') => argv.push("sh".into()),
            Some(_) => {}
            None => {
                let image = s.image.as_deref().unwrap_or("(none)");
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "step has no `command`, `args` or `script`, so it would run the entrypoint of image `{image}`, which the host executor cannot read; set `command:` or run it with `--executor docker`"
                    ),
                ));
            }
        }
    }
    argv.extend(s.args.iter().map(|a| fix(a)));
    let home = if sandboxed {
        "/tekton/home".to_string()
    } else {
        layout
            .host_path("/tekton/home", &[])
            .to_string_lossy()
            .into_owned()
    };
    let workdir = s.working_dir.clone().unwrap_or_else(|| "/workspace".into());
    let path = match shims(layout, shell) {
        Some(dir) => format!("{PATH}:{}", dir.display()),
        None => PATH.to_string(),
    };
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", path)
        .env("HOME", home);
    for (k, v) in &s.env {
        cmd.env(k, fix(v));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match root {
        Some(root) => {
            let ids = s.run_as_user.map(|u| (u, s.run_as_group.unwrap_or(u)));
            let prepared = root.prepare(&layout.dir.join("root"), &all, shell, &workdir, ids)?;
            // SAFETY: `enter` makes only system calls on data prepared above; `setsid` is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    libc::setsid();
                    prepared.enter()
                });
            }
        }
        None => {
            let wd = fix(&workdir);
            std::fs::create_dir_all(&wd)?;
            cmd.current_dir(wd);
            // A process group (not a pre_exec hook) keeps posix_spawn, which is cheaper than fork.
            cmd.process_group(0);
        }
    }
    Ok(cmd)
}

/// Starts a sidecar; it runs until the TaskRun ends.
pub fn spawn_sidecar(
    root: Option<&Sandbox>,
    shell: Option<&Path>,
    layout: &Layout,
    s: &StepPlan,
    i: usize,
) -> io::Result<Child> {
    let mut cmd = build(root, shell, layout, s, None, &format!("sidecar-{i}"))?;
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd.spawn()
}

/// Runs one step to its end.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    root: Option<&Sandbox>,
    shell: Option<&Path>,
    layout: &Layout,
    s: &StepPlan,
    i: usize,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> StepEnd {
    let mut cmd = match build(root, shell, layout, s, Some(i), &i.to_string()) {
        Ok(c) => c,
        Err(e) => return StepEnd::StartFailed(e.to_string()),
    };
    let Ok(binds) = step_binds(layout, s) else {
        return StepEnd::StartFailed("a volume's subPath leaves its volume".into());
    };
    let run = Supervised {
        layout,
        binds: &binds,
        sandboxed: root.is_some(),
    };
    run.wait(&mut cmd, s, i, events, cancel, deadline).await
}
