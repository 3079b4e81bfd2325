//! Slipway's image builder standing in for Kaniko's executor: a process on this machine, with
//! every path the step gives as its container sees it translated to the directory bound there.
//! Any executor whose TaskRun directories live on this machine runs such steps through here.

use std::io;
use std::path::PathBuf;

use slipway_engine::executor::{ImageBuilder, StepPlan};
use slipway_engine::{EventSink, ExecEvent, StepEnd, Stream};
use slipway_model::kaniko;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::layout::{Bind, normalized, stays_below};

/// Why a builder step cannot run as given.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A path is in none of the step's workspaces, volumes or Tekton directories.
    #[error(
        "`{value}` is outside the step's workspaces, volumes and Tekton directories; the image builder runs on this machine and reaches only those"
    )]
    Outside {
        /// The path as the step gave it.
        value: String,
    },
    /// A path leads out of its bound directory (through a symbolic link).
    #[error("`{value}` leads out of the directory bound at `{target}`")]
    Escapes {
        /// The path as the step gave it.
        value: String,
        /// Where the directory is mounted.
        target: String,
        /// What the check found.
        #[source]
        source: io::Error,
    },
    /// An output file is on a read-only mount.
    #[error("`{value}` is on a read-only mount, and the builder writes it")]
    ReadOnly {
        /// The path as the step gave it.
        value: String,
    },
}

/// What a flag's value is, for translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// A directory, archive or URL to read (`dir://` and `tar://` prefixes kept).
    Context,
    /// The Dockerfile: relative to the working directory when it is there, else to the context.
    Dockerfile,
    /// A path read or written by the builder.
    Path,
    /// A file the builder writes.
    Output,
    /// `id=NAME,src=FILE`.
    Secret,
}

/// Kaniko's (and `slipway build`'s) flags whose values are paths.
const PATH_FLAGS: &[(&str, Value)] = &[
    ("--context", Value::Context),
    ("-c", Value::Context),
    ("--dockerfile", Value::Dockerfile),
    ("-f", Value::Dockerfile),
    ("--cache-dir", Value::Path),
    ("--digest-file", Value::Output),
    ("--image-name-with-digest-file", Value::Output),
    ("--image-name-tag-with-digest-file", Value::Output),
    ("--tar-path", Value::Output),
    ("--secret", Value::Secret),
];

/// The builder's command line, working directory and environment on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Arguments after the builder's own leading ones.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Environment, in order; later entries win.
    pub env: Vec<(String, String)>,
}

/// Step paths to host paths through the binds of one step.
struct Translator<'a> {
    binds: &'a [Bind],
    /// The step's working directory as it sees it.
    workdir: String,
}

impl Translator<'_> {
    /// The host path behind `value` (absolute, or relative to the working directory).
    fn host(&self, value: &str, output: bool) -> Result<PathBuf, Refusal> {
        let inside = if value.starts_with('/') {
            normalized(value)
        } else {
            normalized(&format!("{}/{value}", self.workdir))
        };
        let bind = self
            .binds
            .iter()
            .filter(|b| {
                let t = b.target.trim_end_matches('/');
                inside == t || inside.starts_with(&format!("{t}/")) || t.is_empty()
            })
            .max_by_key(|b| b.target.trim_end_matches('/').len())
            .ok_or_else(|| Refusal::Outside {
                value: value.to_string(),
            })?;
        if output && bind.read_only {
            return Err(Refusal::ReadOnly {
                value: value.to_string(),
            });
        }
        let rest = inside[bind.target.trim_end_matches('/').len()..].trim_start_matches('/');
        let host = if rest.is_empty() {
            bind.host.clone()
        } else {
            bind.host.join(rest)
        };
        stays_below(&bind.host, &host, "path").map_err(|source| Refusal::Escapes {
            value: value.to_string(),
            target: bind.target.clone(),
            source,
        })?;
        Ok(host)
    }

    fn text(&self, value: &str, output: bool) -> Result<String, Refusal> {
        Ok(self.host(value, output)?.to_string_lossy().into_owned())
    }

    /// One flag's value on this machine.
    fn value(&self, kind: Value, value: &str) -> Result<String, Refusal> {
        match kind {
            Value::Context => {
                for scheme in ["dir://", "tar://"] {
                    if let Some(path) = value.strip_prefix(scheme) {
                        return Ok(format!("{scheme}{}", self.text(path, false)?));
                    }
                }
                // git, http and bucket URLs are fetched, not read from here.
                if value.contains("://") || value.starts_with("git@") {
                    return Ok(value.to_string());
                }
                self.text(value, false)
            }
            Value::Dockerfile if !value.starts_with('/') => {
                // Kaniko takes a relative Dockerfile from the working directory when it is
                // there, else from the context, which is where the builder looks.
                match self.host(value, false) {
                    Ok(p) if p.is_file() => Ok(p.to_string_lossy().into_owned()),
                    _ => Ok(value.to_string()),
                }
            }
            Value::Dockerfile | Value::Path => self.text(value, false),
            Value::Output => self.text(value, true),
            Value::Secret => value
                .split(',')
                .map(|part| match part.split_once('=') {
                    Some((k @ ("src" | "source"), v)) => {
                        Ok(format!("{k}={}", self.text(v, false)?))
                    }
                    _ => Ok(part.to_string()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|parts| parts.join(",")),
        }
    }

    /// The step's flags with their paths translated; Kaniko's default context when none is given.
    fn args(&self, given: &[String]) -> Result<Vec<String>, Refusal> {
        let mut out = Vec::with_capacity(given.len() + 1);
        let mut context = false;
        let mut iter = given.iter();
        while let Some(arg) = iter.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with('-') => (f, Some(v)),
                _ => (arg.as_str(), None),
            };
            let Some(&(_, kind)) = PATH_FLAGS.iter().find(|(f, _)| *f == flag) else {
                out.push(arg.clone());
                continue;
            };
            context |= kind == Value::Context;
            match inline {
                Some(v) => out.push(format!("{flag}={}", self.value(kind, v)?)),
                None => {
                    out.push(arg.clone());
                    if let Some(v) = iter.next() {
                        out.push(self.value(kind, v)?);
                    }
                }
            }
        }
        if !context {
            out.push(format!(
                "--context={}",
                self.text(kaniko::DEFAULT_CONTEXT, false)?
            ));
        }
        Ok(out)
    }
}

/// How `builder` runs `step` here, given the binds the step would see (TaskRun and its own).
pub fn invocation(
    builder: &ImageBuilder,
    step: &StepPlan,
    binds: &[Bind],
) -> Result<Invocation, Refusal> {
    let workdir = normalized(step.working_dir.as_deref().unwrap_or("/workspace"));
    let t = Translator {
        binds,
        workdir: workdir.clone(),
    };
    let given = kaniko::executor_flags(&step.command, &step.args);
    let args = t.args(&given)?;
    let cwd = t.host(&workdir, false)?;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut docker_config = kaniko::DOCKER_CONFIG_DIR.to_string();
    for (k, v) in &step.env {
        if k == "DOCKER_CONFIG" {
            docker_config.clone_from(v);
            continue;
        }
        // Values naming a bound path follow it; anything else is passed as written.
        let value = match t.host(v, false) {
            Ok(p) if v.starts_with('/') => p.to_string_lossy().into_owned(),
            _ => v.clone(),
        };
        env.push((k.clone(), value));
    }
    env.extend(builder.env.iter().cloned());
    // Credentials come from the step's own mounts (Kaniko's `/kaniko/.docker`), never from the
    // user running slipway: without such a mount, an empty directory of the TaskRun's home.
    let config = match t.host(&docker_config, false) {
        Ok(p) => p,
        Err(_) => t.host("/tekton/home/.docker", false)?,
    };
    env.push((
        "DOCKER_CONFIG".into(),
        config.to_string_lossy().into_owned(),
    ));
    Ok(Invocation { args, cwd, env })
}

/// The line each builder step's log starts with.
pub fn notice(step: &StepPlan) -> String {
    format!(
        "note: slipway's builder stands in for {}",
        step.image.as_deref().unwrap_or("Kaniko's executor")
    )
}

fn command(builder: &ImageBuilder, inv: &Invocation) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&builder.program);
    cmd.args(&builder.leading_args)
        .args(&inv.args)
        .current_dir(&inv.cwd)
        .env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    cmd
}

async fn say(events: &EventSink, step: usize, line: String) {
    events
        .send(ExecEvent::Log {
            step,
            stream: Stream::Stderr,
            line,
            continued: false,
            at: std::time::SystemTime::now(),
        })
        .await;
}

/// Runs step `i` with slipway's builder; `binds` are what the step would have mounted.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    builder: Option<&ImageBuilder>,
    layout: &crate::layout::Layout,
    binds: &[Bind],
    s: &StepPlan,
    i: usize,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> StepEnd {
    let Some(builder) = builder else {
        return StepEnd::StartFailed(
            "this executor was started without slipway's image builder, which stands in for Kaniko's executor".into(),
        );
    };
    let inv = match invocation(builder, s, binds) {
        Ok(inv) => inv,
        Err(e) => {
            let why = format!("the image builder cannot run this step: {e}");
            say(events, i, format!("slipway: {why}")).await;
            return StepEnd::StartFailed(why);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&inv.cwd) {
        return StepEnd::StartFailed(format!(
            "failed to create the working directory {}: {e}",
            inv.cwd.display()
        ));
    }
    let mut cmd = command(builder, &inv);
    say(events, i, notice(s)).await;
    let run = crate::supervise::Supervised {
        layout,
        binds,
        sandboxed: false,
    };
    run.wait(&mut cmd, s, i, events, cancel, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        binds: Vec<Bind>,
    }

    /// `/workspace/source`, `/tekton`, `/tekton/home` and a read-only `/config`, on disk.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        for d in ["ws", "tekton/results", "home", "config"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("ws/Dockerfile"), "FROM scratch\n").expect("Dockerfile");
        let bind = |host: &str, target: &str, read_only| Bind {
            host: root.join(host),
            target: target.into(),
            read_only,
        };
        let binds = vec![
            bind("tekton", "/tekton", false),
            bind("home", "/tekton/home", false),
            bind("ws", "/workspace/source", false),
            bind("config", "/config", true),
        ];
        Fixture {
            _dir: dir,
            root,
            binds,
        }
    }

    fn builder() -> ImageBuilder {
        ImageBuilder {
            program: "/usr/bin/slipway".into(),
            leading_args: vec!["build".into()],
            env: vec![("PATH".into(), "/usr/bin".into())],
        }
    }

    fn step(args: &[&str]) -> StepPlan {
        StepPlan {
            image: Some("gcr.io/kaniko-project/executor:v1.5.1".into()),
            args: args.iter().map(|a| a.to_string()).collect(),
            working_dir: Some("/workspace/source".into()),
            ..StepPlan::default()
        }
    }

    #[test]
    fn the_catalog_tasks_flags_reach_the_host_directories() {
        let f = fixture();
        let mut s = step(&[
            "--dockerfile=./Dockerfile",
            "--context=/workspace/source/./",
            "--destination=127.0.0.1:5000/app:v1",
            "--digest-file=/tekton/results/IMAGE_DIGEST",
        ]);
        s.env = vec![("CACHE".into(), "/workspace/source/cache".into())];
        let inv = invocation(&builder(), &s, &f.binds).expect("runs");
        let r = f.root.display();
        assert_eq!(
            inv.args,
            [
                format!("--dockerfile={r}/ws/Dockerfile"),
                format!("--context={r}/ws"),
                "--destination=127.0.0.1:5000/app:v1".into(),
                format!("--digest-file={r}/tekton/results/IMAGE_DIGEST"),
            ]
        );
        assert_eq!(inv.cwd, f.root.join("ws"));
        assert_eq!(
            inv.env,
            [
                ("CACHE".to_string(), format!("{r}/ws/cache")),
                ("PATH".into(), "/usr/bin".into()),
                ("DOCKER_CONFIG".into(), format!("{r}/home/.docker")),
            ]
        );
    }

    #[test]
    fn kanikos_config_mount_and_default_context_are_used() {
        let mut f = fixture();
        std::fs::create_dir_all(f.root.join("creds")).expect("mkdir");
        f.binds.push(Bind {
            host: f.root.join("creds"),
            target: "/kaniko/.docker".into(),
            read_only: true,
        });
        let f2 = fixture();
        f.binds.push(Bind {
            host: f2.root.join("ws"),
            target: "/workspace".into(),
            read_only: false,
        });
        let inv = invocation(
            &builder(),
            &step(&["-d", "r/app", "-f", "Dockerfile"]),
            &f.binds,
        )
        .expect("runs");
        let r = f.root.display();
        assert_eq!(
            inv.args,
            [
                "-d".to_string(),
                "r/app".into(),
                "-f".into(),
                format!("{r}/ws/Dockerfile"),
                format!("--context={}", f2.root.join("ws").display()),
            ]
        );
        assert_eq!(
            inv.env.last(),
            Some(&("DOCKER_CONFIG".to_string(), format!("{r}/creds")))
        );
    }

    #[test]
    fn remote_contexts_and_relative_dockerfiles_outside_the_workdir_pass_as_written() {
        let f = fixture();
        let inv = invocation(
            &builder(),
            &step(&[
                "--context=git://example.com/app.git#main",
                "--dockerfile=docker/Dockerfile",
                "--secret",
                "id=npm,src=token",
            ]),
            &f.binds,
        )
        .expect("runs");
        assert_eq!(inv.args[0], "--context=git://example.com/app.git#main");
        assert_eq!(inv.args[1], "--dockerfile=docker/Dockerfile");
        assert_eq!(
            inv.args[3],
            format!("id=npm,src={}/ws/token", f.root.display())
        );
    }

    #[test]
    fn paths_the_container_would_not_have_are_refused() {
        let f = fixture();
        std::os::unix::fs::symlink("/etc", f.root.join("ws/etc")).expect("link");
        for (args, want) in [
            (vec!["--context=/etc"], "outside the step's workspaces"),
            (
                vec!["--context=dir:///root"],
                "outside the step's workspaces",
            ),
            (
                vec!["--digest-file=/workspace/source/../../../etc/x"],
                "outside the step's workspaces",
            ),
            (vec!["--context", "/workspace/source/etc"], "leads out of"),
            (vec!["--tar-path=/config/image.tar"], "read-only mount"),
        ] {
            let e = invocation(&builder(), &step(&args), &f.binds).expect_err("refused");
            assert!(e.to_string().contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_notice_names_the_image() {
        assert_eq!(
            notice(&step(&[])),
            "note: slipway's builder stands in for gcr.io/kaniko-project/executor:v1.5.1"
        );
    }
}
