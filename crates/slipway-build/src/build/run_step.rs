//! RUN: its command, environment and cache key; the workspace runs it, its changes become
//! the layer.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::BuildError;
use crate::build::Shared;
use crate::build::rootfs;
use crate::build::settings;
use crate::build::stage::StageState;
use crate::build::workspace::RunRequest;
use crate::dockerfile::{Command, RunSpec};
use crate::progress::Event;
use crate::run::RunError;

/// Docker's PATH when the image sets none.
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

/// The environment of the RUN (without `HOME`, which depends on the user).
fn environment(state: &StageState) -> Vec<String> {
    let mut env = state.vars.run_env();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    env
}

/// `env` with `HOME` from the user's entry when the image sets none.
pub(crate) fn with_home(mut env: Vec<String>, home: &str) -> Vec<String> {
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
    if shared.options.cache && rootfs::reuse(shared, state, &key, text).await? {
        return Ok(true);
    }
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
    let request = RunRequest {
        spec: run,
        argv,
        env: environment(state),
        cwd: workdir,
        user,
    };
    let (code, changes) = shared
        .workspace
        .run(shared, state, request, &on_line)
        .await?;
    if code != 0 {
        return Err(RunError::Failed {
            command: text.to_string(),
            code,
            tail: tail.into_inner().unwrap_or_default().into(),
        }
        .into());
    }
    rootfs::commit(shared, state, changes, text, key).await?;
    Ok(false)
}
