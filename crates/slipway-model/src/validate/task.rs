//! Task, step and StepAction rules.

use std::collections::HashSet;

use super::params::{quoted, specs};
use super::{Cx, dns_label_problem, duration, lookup, on_error, storage};
use crate::kinds::task::{Step, StepActionSpec, TaskSpec};
use crate::library::{Object, Origin};
use crate::param::ParamType;
use crate::subst::{Seg, references};

/// Checks a Task spec found at `base`. `embedded` specs may use params propagated from their parent.
pub(crate) fn task_spec(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    base: &str,
    spec: &TaskSpec,
    embedded: bool,
) {
    if spec.api_version.is_some() || spec.kind.is_some() {
        cx.err(
            origin,
            base,
            "custom tasks cannot run locally",
            "use a Tekton Task here",
        );
        return;
    }
    specs(cx, origin, &format!("{base}.params"), &spec.params);
    if spec.steps.is_empty() {
        cx.err(
            origin,
            base,
            "task has no steps",
            "add at least one step under `steps:`",
        );
    }
    let mut names = HashSet::new();
    for (i, step) in spec.steps.iter().enumerate() {
        let path = format!("{base}.steps[{i}]");
        if let Some(n) = &step.name {
            if !names.insert(n.as_str()) {
                cx.err(
                    origin,
                    &format!("{path}.name"),
                    format!("duplicate step name `{n}`"),
                    "give each step its own name",
                );
            } else if let Some(why) = dns_label_problem(n) {
                cx.err(
                    origin,
                    &format!("{path}.name"),
                    format!("invalid step name `{n}`: {why}"),
                    "use lowercase letters, digits and '-'",
                );
            }
        }
        let template_image = spec
            .step_template
            .as_ref()
            .is_some_and(|t| t.image.is_some());
        self::step(cx, origin, &path, step, template_image);
    }
    for (i, s) in spec.sidecars.iter().enumerate() {
        mounts(cx, origin, &format!("{base}.sidecars[{i}]"), s);
    }
    if let Some(t) = &spec.step_template {
        mounts(cx, origin, &format!("{base}.stepTemplate"), t);
    }
    for (i, v) in spec.volumes.iter().enumerate() {
        storage::volume(cx, origin, &format!("{base}.volumes[{i}]"), v);
    }
    let mut ws = HashSet::new();
    for (i, w) in spec.workspaces.iter().enumerate() {
        if !ws.insert(w.name.as_str()) {
            cx.err(
                origin,
                &format!("{base}.workspaces[{i}].name"),
                format!("duplicate workspace `{}`", w.name),
                "give each workspace its own name",
            );
        }
        if let Some(m) = &w.mount_path {
            storage::mount_path(cx, origin, &format!("{base}.workspaces[{i}].mountPath"), m);
        }
    }
    // Isolated workspaces: a step or sidecar may name only workspaces the Task declares.
    let containers = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("{base}.steps[{i}]"), s))
        .chain(
            spec.sidecars
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("{base}.sidecars[{i}]"), s)),
        );
    for (path, step) in containers {
        for (j, w) in step.workspaces.iter().flatten().enumerate() {
            if !ws.contains(w.name.as_str()) {
                cx.err(
                    origin,
                    &format!("{path}.workspaces[{j}].name"),
                    format!("undeclared task workspace `{}`", w.name),
                    "name a workspace the Task declares under `workspaces:`",
                );
            }
        }
    }
    let mut rs = HashSet::new();
    for (i, r) in spec.results.iter().enumerate() {
        if !rs.insert(r.name.as_str()) {
            cx.err(
                origin,
                &format!("{base}.results[{i}].name"),
                format!("duplicate result `{}`", r.name),
                "give each result its own name",
            );
        }
        if !super::params::valid_param_name(&r.name) {
            cx.err(
                origin,
                &format!("{base}.results[{i}].name"),
                format!("invalid result name `{}`", r.name),
                "result names hold letters, digits, '-', '_' and '.'",
            );
        }
    }
    if !embedded {
        references_in_steps(cx, origin, base, spec);
    }
}

fn step(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, step: &Step, template_image: bool) {
    if step.step_ref.is_some() {
        for (field, set) in [
            ("image", step.image.is_some()),
            ("command", step.command.is_some()),
            ("args", step.args.is_some()),
            ("script", step.script.is_some()),
            ("env", step.env.is_some()),
            ("volumeMounts", step.volume_mounts.is_some()),
        ] {
            if set {
                cx.err(
                    origin,
                    &format!("{path}.{field}"),
                    format!("`{field}` cannot be used with `ref`"),
                    "set it in the StepAction, or drop `ref`",
                );
            }
        }
        if let Some(r) = &step.step_ref {
            lookup(
                cx,
                origin,
                &format!("{path}.ref"),
                "StepAction",
                &r.resolver,
                &r.name,
                |l| &l.step_actions,
            );
        }
        return;
    }
    if step.image.is_none() && !template_image {
        cx.err(
            origin,
            path,
            "step has no image",
            "set `image:` on the step or in `stepTemplate` (the host executor ignores it, containers need it)",
        );
    }
    if step.script.is_some() && step.command.is_some() {
        cx.err(
            origin,
            &format!("{path}.script"),
            "step has both `script` and `command`",
            "use one: a script, or a command with args",
        );
    }
    on_error(cx, origin, &format!("{path}.onError"), &step.on_error);
    duration(cx, origin, &format!("{path}.timeout"), &step.timeout);
    mounts(cx, origin, path, step);
}

/// A step's (or sidecar's) volume mounts and workspace mount paths.
fn mounts(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, step: &Step) {
    for (j, m) in step.volume_mounts.iter().flatten().enumerate() {
        storage::volume_mount(cx, origin, &format!("{path}.volumeMounts[{j}]"), m);
    }
    for (j, w) in step.workspaces.iter().flatten().enumerate() {
        if let Some(m) = &w.mount_path {
            storage::mount_path(cx, origin, &format!("{path}.workspaces[{j}].mountPath"), m);
        }
    }
}

/// Every string of a step a reference could sit in, with its field path.
fn step_strings<'a>(path: &str, step: &'a Step) -> Vec<(String, &'a str)> {
    let mut out: Vec<(String, &str)> = Vec::new();
    let mut push = |p: String, s: &'a Option<String>| {
        if let Some(s) = s {
            out.push((p, s.as_str()));
        }
    };
    push(format!("{path}.image"), &step.image);
    push(format!("{path}.script"), &step.script);
    push(format!("{path}.workingDir"), &step.working_dir);
    for (field, list) in [("command", &step.command), ("args", &step.args)] {
        for (i, s) in list.iter().flatten().enumerate() {
            out.push((format!("{path}.{field}[{i}]"), s.as_str()));
        }
    }
    for (i, e) in step.env.iter().flatten().enumerate() {
        if let Some(v) = &e.value {
            out.push((format!("{path}.env[{i}].value"), v.as_str()));
        }
    }
    out
}

/// Every string of a Task's steps and sidecars a reference could sit in, with its field path.
pub(crate) fn task_strings<'a>(base: &str, spec: &'a TaskSpec) -> Vec<(String, &'a str)> {
    let mut strings = Vec::new();
    for (i, step) in spec.steps.iter().enumerate() {
        strings.extend(step_strings(&format!("{base}.steps[{i}]"), step));
    }
    for (i, step) in spec.sidecars.iter().enumerate() {
        strings.extend(step_strings(&format!("{base}.sidecars[{i}]"), step));
    }
    strings
}

/// Tekton rejects references to params and results a Task does not declare (workspaces it lets pass).
fn references_in_steps(cx: &mut Cx<'_>, origin: Option<&Origin>, base: &str, spec: &TaskSpec) {
    let params: Vec<(&str, ParamType)> = spec
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.effective_type()))
        .collect();
    let results: HashSet<&str> = spec.results.iter().map(|r| r.name.as_str()).collect();
    for (path, s) in task_strings(base, spec) {
        for r in references(s) {
            let names = r.names();
            match names.first().copied() {
                Some("params") => {
                    let Some(Seg::Name(name)) = r.segs.get(1) else {
                        continue;
                    };
                    let found = params.iter().find(|(n, _)| n == name).or_else(|| {
                        // Dotted references may address an object key: `params.obj.key`.
                        params.iter().find(|(n, t)| {
                            *t == ParamType::Object && names.len() == 3 && *n == names[1]
                        })
                    });
                    match found {
                        None => {
                            let cands: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
                            let hint = crate::suggest::closest(name, &cands)
                                .map(|s| format!("did you mean `{s}`?"))
                                .unwrap_or_else(|| {
                                    format!(
                                        "declare it under `params:` (declared: {})",
                                        if cands.is_empty() {
                                            "none".to_string()
                                        } else {
                                            quoted(&cands)
                                        }
                                    )
                                });
                            cx.err(
                                origin,
                                &path,
                                format!("`$({})` refers to an undeclared param", r.expr),
                                hint,
                            );
                        }
                        Some((n, ParamType::Array))
                            if !path.contains(".command[")
                                && !path.contains(".args[")
                                && r.segs.len() == 2 =>
                        {
                            cx.err(origin, &path, format!("array param `{n}` is used as a string"), format!("use `$(params.{n}[*])` in args or command, or `$(params.{n}[0])` for one element"));
                        }
                        _ => {}
                    }
                }
                Some("results")
                    if names.len() >= 3
                        && names.get(2) == Some(&"path")
                        && !results.contains(names[1]) =>
                {
                    cx.err(
                        origin,
                        &path,
                        format!("`$({})` refers to an undeclared result", r.expr),
                        "declare it under `results:`",
                    );
                }
                _ => {}
            }
        }
    }
}

/// Checks a StepAction.
pub(crate) fn step_action(cx: &mut Cx<'_>, o: &Object<StepActionSpec>) {
    let origin = o.origin.as_ref();
    specs(cx, origin, "spec.params", &o.spec.params);
    if o.spec.image.is_none() {
        cx.err(origin, "spec", "StepAction has no image", "set `image:`");
    }
    if o.spec.script.is_some() && o.spec.command.is_some() {
        cx.err(
            origin,
            "spec.script",
            "StepAction has both `script` and `command`",
            "use one of them",
        );
    }
}
