//! Validation as Tekton's admission webhook does it, with diagnostics at file:line:col.

mod graph;
mod meta;
mod params;
mod pipeline;
mod prewarm;
mod run;
mod storage;
mod task;
mod unresolved;

pub use crate::names::{dns_label_problem, dns_subdomain_problem};
pub use graph::find_cycle;
pub use unresolved::unresolved;

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::library::{Library, Object, Origin};
use crate::suggest::did_you_mean;

/// Limits that Tekton takes from its config maps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most TaskRuns one matrix may fan out to (`default-max-matrix-combinations-count`).
    pub max_matrix_combinations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_matrix_combinations: 256,
        }
    }
}

/// Checks every object in the library; returns all problems found.
pub fn validate(lib: &Library, limits: &Limits) -> Diagnostics {
    validate_from(lib, limits, |_| true)
}

/// Checks the objects loaded from the sources `checked` accepts (by path), against the whole
/// library: a server checks what a request sends without checking again what it stored.
pub fn validate_from(
    lib: &Library,
    limits: &Limits,
    checked: impl Fn(&str) -> bool,
) -> Diagnostics {
    let mut cx = Cx {
        lib,
        limits,
        diags: Diagnostics::default(),
    };
    let wanted = |o: Option<&Origin>| o.is_none_or(|o| checked(&o.source.path));
    for t in lib.tasks.values().chain(&lib.shadowed_tasks) {
        if !wanted(t.origin.as_ref()) {
            continue;
        }
        meta::meta(&mut cx, t.origin.as_ref(), "Task", &t.meta);
        task::task_spec(&mut cx, t.origin.as_ref(), "spec", &t.spec, false);
    }
    for p in lib.step_actions.values().chain(&lib.shadowed_step_actions) {
        if !wanted(p.origin.as_ref()) {
            continue;
        }
        meta::meta(&mut cx, p.origin.as_ref(), "StepAction", &p.meta);
        task::step_action(&mut cx, p);
    }
    for p in lib.pipelines.values().chain(&lib.shadowed_pipelines) {
        if !wanted(p.origin.as_ref()) {
            continue;
        }
        meta::meta(&mut cx, p.origin.as_ref(), "Pipeline", &p.meta);
        pipeline::pipeline_spec(&mut cx, p.origin.as_ref(), "spec", &p.spec, false);
    }
    for c in lib.config_maps.values() {
        if !wanted(c.origin.as_ref()) {
            continue;
        }
        let origin = c.origin.as_ref();
        meta::meta(&mut cx, origin, "ConfigMap", &c.meta);
        meta::keys(&mut cx, origin, "ConfigMap", "data", &c.spec.data);
        meta::keys(
            &mut cx,
            origin,
            "ConfigMap",
            "binaryData",
            &c.spec.binary_data,
        );
    }
    for c in lib.secrets.values() {
        if !wanted(c.origin.as_ref()) {
            continue;
        }
        let origin = c.origin.as_ref();
        meta::meta(&mut cx, origin, "Secret", &c.meta);
        meta::keys(&mut cx, origin, "Secret", "data", &c.spec.data);
        meta::keys(&mut cx, origin, "Secret", "stringData", &c.spec.string_data);
    }
    for o in lib.prewarm.iter().filter(|o| wanted(o.origin.as_ref())) {
        meta::meta(&mut cx, o.origin.as_ref(), o.kind().kind(), &o.meta);
        prewarm::prewarm(&mut cx, o);
    }
    for r in lib.runs.iter().filter(|r| wanted(r.origin())) {
        meta::meta(&mut cx, r.origin(), r.kind(), r.meta());
        run::run(&mut cx, r);
    }
    cx.diags
}

/// Shared state of one validation pass.
pub(crate) struct Cx<'a> {
    pub lib: &'a Library,
    pub limits: &'a Limits,
    pub diags: Diagnostics,
}

impl Cx<'_> {
    /// Records a problem at `path` with a hint.
    pub fn err(
        &mut self,
        origin: Option<&Origin>,
        path: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let d = match origin {
            Some(o) => o.diag(path, message),
            None => Diagnostic::new(message),
        };
        self.diags.push(d.with_hint(hint));
    }
}

/// Resolves a by-name reference (`taskRef`, `pipelineRef`, a step's `ref`) at `path` to a loaded
/// object, reporting remote resolvers, missing names and unknown names.
pub(crate) fn lookup<'a, S>(
    cx: &mut Cx<'a>,
    origin: Option<&Origin>,
    path: &str,
    kind: &str,
    resolver: &Option<String>,
    name: &Option<String>,
    objects: fn(&'a Library) -> &'a IndexMap<String, Object<S>>,
) -> Option<&'a S> {
    let objects = objects(cx.lib);
    if resolver.is_some() {
        cx.err(
            origin,
            &format!("{path}.resolver"),
            "remote resolvers are not supported locally",
            format!("load the {kind} with -f and refer to it by name"),
        );
        return None;
    }
    let Some(name) = name else {
        cx.err(
            origin,
            path,
            format!("reference has no {kind} name"),
            "add `name: <name>`",
        );
        return None;
    };
    match objects.get(name) {
        Some(o) => Some(&o.spec),
        None => {
            let names: Vec<&str> = objects.keys().map(String::as_str).collect();
            cx.err(
                origin,
                &format!("{path}.name"),
                format!("{kind} `{name}` not found"),
                did_you_mean(name, &names, "load the file that defines it with -f"),
            );
            None
        }
    }
}

/// Checks an optional Go duration field.
pub(crate) fn duration(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    path: &str,
    value: &Option<String>,
) {
    if let Some(d) = value {
        checked_duration(cx, origin, path, d);
    }
}

/// Parses a Go duration at `path`, reporting why it is not one (syntax, sign, range).
pub(crate) fn checked_duration(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    path: &str,
    text: &str,
) -> Option<std::time::Duration> {
    crate::duration::parse(text)
        .map_err(|e| {
            cx.err(
                origin,
                path,
                format!("invalid duration `{text}`: {e}"),
                e.hint(),
            )
        })
        .ok()
}

/// Checks an optional `onError` field.
pub(crate) fn on_error(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    path: &str,
    value: &Option<String>,
) {
    // A param reference is resolved when the TaskRun is planned, as Tekton allows.
    if let Some(e) = value
        && e != "continue"
        && e != "stopAndFail"
        && !e.starts_with("$(params.")
    {
        cx.err(
            origin,
            path,
            format!("invalid onError `{e}`"),
            "use `continue` or `stopAndFail`",
        );
    }
}
