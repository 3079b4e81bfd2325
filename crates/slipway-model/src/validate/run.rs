//! PipelineRun and TaskRun rules: targets, params, workspaces, timeouts.

use super::params::{Site, passed};
use super::pipeline::pipeline_spec;
use super::task::task_spec;
use super::{Cx, checked_duration, duration, lookup, storage};
use crate::kinds::run::WorkspaceBinding;
use crate::library::{Origin, RunObject};

pub(crate) fn run(cx: &mut Cx<'_>, r: &RunObject) {
    match r {
        RunObject::PipelineRun(pr) => {
            let origin = pr.origin.as_ref();
            let spec = &pr.spec;
            let target = match (&spec.pipeline_ref, &spec.pipeline_spec) {
                (Some(_), Some(_)) | (None, None) => {
                    cx.err(
                        origin,
                        "spec",
                        "PipelineRun needs exactly one of pipelineRef and pipelineSpec",
                        "add `pipelineRef: {name: <pipeline>}` or an inline `pipelineSpec:`",
                    );
                    None
                }
                (Some(r), None) => lookup(
                    cx,
                    origin,
                    "spec.pipelineRef",
                    "Pipeline",
                    &r.resolver,
                    &r.name,
                    |l| &l.pipelines,
                ),
                (None, Some(s)) => {
                    // Tekton propagates the run's workspaces into an inline pipelineSpec, so its
                    // tasks may bind them without the spec declaring them.
                    let mut propagated = s.clone();
                    for w in &spec.workspaces {
                        if !propagated.workspaces.iter().any(|d| d.name == w.name) {
                            propagated.workspaces.push(
                                crate::kinds::pipeline::PipelineWorkspaceDeclaration {
                                    name: w.name.clone(),
                                    description: None,
                                    optional: None,
                                },
                            );
                        }
                    }
                    pipeline_spec(cx, origin, "spec.pipelineSpec", &propagated, true);
                    Some(s)
                }
            };
            if let Some(t) = &spec.timeouts {
                let mut total = None;
                for (field, v) in [
                    ("pipeline", &t.pipeline),
                    ("tasks", &t.tasks),
                    ("finally", &t.finally),
                ] {
                    if let Some(v) = v {
                        match checked_duration(cx, origin, &format!("spec.timeouts.{field}"), v) {
                            None => {}
                            Some(d) if field == "pipeline" => total = Some(d),
                            Some(d) => {
                                if let Some(p) = total.filter(|p| !p.is_zero() && d > *p) {
                                    cx.err(origin, &format!("spec.timeouts.{field}"), format!("timeouts.{field} ({v}) is longer than timeouts.pipeline ({}s)", p.as_secs()), "keep tasks and finally within the pipeline timeout");
                                }
                            }
                        }
                    }
                }
            }
            if let Some(s) = &spec.status
                && ![
                    "Cancelled",
                    "CancelledRunFinally",
                    "StoppedRunFinally",
                    "PipelineRunPending",
                ]
                .contains(&s.as_str())
            {
                cx.err(
                    origin,
                    "spec.status",
                    format!("invalid PipelineRun status `{s}`"),
                    "use Cancelled, CancelledRunFinally, StoppedRunFinally or PipelineRunPending",
                );
            }
            bindings(cx, origin, &spec.workspaces);
            if let Some(p) = target {
                let what = format!("PipelineRun `{}`", pr.name());
                inputs(
                    cx,
                    origin,
                    "spec.pipelineRef",
                    &spec.params,
                    &spec.workspaces,
                    &p.params,
                    p.workspaces.iter().map(|w| (w.name.as_str(), w.optional)),
                    &what,
                );
                for (i, trs) in spec.task_run_specs.iter().enumerate() {
                    if !p
                        .tasks
                        .iter()
                        .chain(&p.finally)
                        .any(|t| t.name == trs.pipeline_task_name)
                    {
                        cx.err(
                            origin,
                            &format!("spec.taskRunSpecs[{i}].pipelineTaskName"),
                            format!("unknown pipeline task `{}`", trs.pipeline_task_name),
                            "use the name of a task in the pipeline",
                        );
                    }
                    duration(
                        cx,
                        origin,
                        &format!("spec.taskRunSpecs[{i}].timeout"),
                        &trs.timeout,
                    );
                }
            }
        }
        RunObject::TaskRun(tr) => {
            let origin = tr.origin.as_ref();
            let spec = &tr.spec;
            let target = match (&spec.task_ref, &spec.task_spec) {
                (Some(_), Some(_)) | (None, None) => {
                    cx.err(
                        origin,
                        "spec",
                        "TaskRun needs exactly one of taskRef and taskSpec",
                        "add `taskRef: {name: <task>}` or an inline `taskSpec:`",
                    );
                    None
                }
                (Some(r), None) => lookup(
                    cx,
                    origin,
                    "spec.taskRef",
                    "Task",
                    &r.resolver,
                    &r.name,
                    |l| &l.tasks,
                ),
                (None, Some(s)) => {
                    task_spec(cx, origin, "spec.taskSpec", s, true);
                    Some(s)
                }
            };
            duration(cx, origin, "spec.timeout", &spec.timeout);
            bindings(cx, origin, &spec.workspaces);
            if let Some(t) = target {
                let what = format!("TaskRun `{}`", tr.name());
                inputs(
                    cx,
                    origin,
                    "spec.taskRef",
                    &spec.params,
                    &spec.workspaces,
                    &t.params,
                    t.workspaces.iter().map(|w| (w.name.as_str(), w.optional)),
                    &what,
                );
            }
        }
    }
}

/// Checks a run's params and workspace bindings against what its target declares.
#[allow(clippy::too_many_arguments)]
fn inputs<'w>(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    reference: &str,
    params: &[crate::Param],
    bound: &[WorkspaceBinding],
    declared: &[crate::ParamSpec],
    workspaces: impl Iterator<Item = (&'w str, Option<bool>)>,
    what: &str,
) {
    let at = if params.is_empty() {
        reference
    } else {
        "spec.params"
    };
    passed(
        cx,
        origin,
        Site {
            base: "spec.params",
            at,
        },
        params,
        declared,
        what,
        &[],
    );
    for (name, optional) in workspaces {
        if !optional.unwrap_or(false) && !bound.iter().any(|b| b.name == name) {
            cx.err(
                origin,
                "spec",
                format!("workspace `{name}` of {what} is not bound"),
                format!("add `workspaces: [{{name: {name}, emptyDir: {{}}}}]`"),
            );
        }
    }
}

fn bindings(cx: &mut Cx<'_>, origin: Option<&Origin>, ws: &[WorkspaceBinding]) {
    for (i, w) in ws.iter().enumerate() {
        storage::binding(cx, origin, &format!("spec.workspaces[{i}]"), w);
        let sources = [
            w.empty_dir.is_some(),
            w.persistent_volume_claim.is_some(),
            w.volume_claim_template.is_some(),
            w.config_map.is_some(),
            w.secret.is_some(),
            w.projected.is_some(),
            w.csi.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if sources != 1 {
            cx.err(origin, &format!("spec.workspaces[{i}]"), format!("workspace binding `{}` needs exactly one source", w.name), "use one of emptyDir, persistentVolumeClaim, volumeClaimTemplate, configMap, secret");
        }
        let name = w
            .config_map
            .as_ref()
            .and_then(|c| c.object_name())
            .map(|n| (n, "ConfigMap", cx.lib.config_maps.contains_key(n)))
            .or_else(|| {
                w.secret
                    .as_ref()
                    .and_then(|c| c.object_name())
                    .map(|n| (n, "Secret", cx.lib.secrets.contains_key(n)))
            });
        if let Some((n, kind, false)) = name {
            let optional = w
                .config_map
                .as_ref()
                .or(w.secret.as_ref())
                .and_then(|s| s.optional)
                .unwrap_or(false);
            if !optional {
                cx.err(
                    origin,
                    &format!("spec.workspaces[{i}]"),
                    format!("{kind} `{n}` not found"),
                    format!("load a {kind} named `{n}` with -f"),
                );
            }
        }
    }
}
