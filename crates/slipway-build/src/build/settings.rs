//! Instructions that only change the image config (ENV, CMD, LABEL, ...), applied as Docker
//! applies them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::BuildError;
use crate::build::Shared;
use crate::build::rootfs::history_text;
use crate::build::stage::StageState;
use crate::dockerfile::{Command, Healthcheck, Resolved};

/// The stage's working directory (`/` when none is set).
pub(crate) fn workdir(state: &StageState) -> String {
    state
        .image
        .config
        .config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// A command as the config stores it: shell form through the stage's `SHELL`.
pub(crate) fn argv(state: &StageState, command: &Command) -> Vec<String> {
    match command {
        Command::Exec(args) => args.clone(),
        Command::Shell(text) => {
            let mut v = state.shell.clone();
            v.push(text.clone());
            v
        }
    }
}

/// Applies a config-only instruction and records it in the history.
pub(crate) fn apply(
    shared: &Shared<'_>,
    state: &mut StageState,
    resolved: &Resolved,
    text: &str,
) -> Result<(), BuildError> {
    let mut vars = state.vars.clone();
    vars.apply(resolved);
    let c = &mut state.image.config.config;
    match resolved {
        Resolved::Env(_) => c.env = Some(vars.image_env()),
        Resolved::Arg(_) => {}
        Resolved::Workdir(dir) => {
            let base = c
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into());
            let joined = if dir.starts_with('/') {
                dir.clone()
            } else {
                format!("{}/{dir}", base.trim_end_matches('/'))
            };
            c.working_dir = Some(clean(&joined));
            state.pending_workdir = true;
        }
        Resolved::User(user) => c.user = Some(user.clone()),
        Resolved::Expose(ports) => {
            let map = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                map.insert(p.clone(), json!({}));
            }
        }
        Resolved::Label(pairs) => {
            let map = c.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                map.insert(k.clone(), v.clone());
            }
        }
        Resolved::Cmd(cmd) => {
            let argv = argv(state, cmd);
            state.image.config.config.cmd = Some(argv);
            state.cmd_set = true;
        }
        Resolved::Entrypoint(ep) => {
            let argv = argv(state, ep);
            let c = &mut state.image.config.config;
            c.entrypoint = Some(argv);
            // Docker drops a CMD inherited from the base once ENTRYPOINT changes.
            if !state.cmd_set {
                c.cmd = None;
            }
        }
        Resolved::Volume(paths) => {
            let map = c.volumes.get_or_insert_with(BTreeMap::new);
            for p in paths {
                map.insert(p.clone(), json!({}));
            }
        }
        Resolved::StopSignal(s) => c.stop_signal = Some(s.clone()),
        Resolved::Healthcheck(h) => c.healthcheck = Some(healthcheck(h)),
        Resolved::Shell(shell) => {
            c.shell = Some(shell.clone());
            state.shell = shell.clone();
        }
        Resolved::Onbuild(trigger) => c
            .on_build
            .get_or_insert_with(Vec::new)
            .push(trigger.clone()),
        Resolved::Maintainer(m) => state.image.config.author = Some(m.clone()),
        Resolved::Run(_) | Resolved::Copy(_) => {}
    }
    state.key = state.key.next(&[&format!("{resolved:?}")]);
    state
        .image
        .push_history(&history_text(text), shared.created(), true);
    Ok(())
}

/// `HEALTHCHECK` as Docker's config holds it (durations in nanoseconds, zero fields left out).
fn healthcheck(h: &Healthcheck) -> Value {
    match h {
        Healthcheck::None => json!({"Test": ["NONE"]}),
        Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let mut v = serde_json::Map::new();
            v.insert("Test".into(), json!(test));
            for (name, value) in [
                ("Interval", interval),
                ("Timeout", timeout),
                ("StartPeriod", start_period),
                ("StartInterval", start_interval),
            ] {
                if let Some(ns) = value.filter(|ns| *ns != 0) {
                    v.insert(name.into(), json!(ns));
                }
            }
            if let Some(r) = retries.filter(|r| *r != 0) {
                v.insert("Retries".into(), json!(r));
            }
            Value::Object(v)
        }
    }
}

/// A path with `.`, `..` and repeated slashes removed, as Go's `path.Clean`.
pub(crate) fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean("/a/./b/../c//"), "/a/c");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean("rel/x"), "/rel/x");
    }
}
