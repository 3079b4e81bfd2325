//! Pipeline rules: task targets, ordering, cycles, result references, workspaces, matrices.

use std::collections::{HashMap, HashSet};

use super::params::{Site, passed, quoted, specs};
use super::{Cx, dns_label_problem, duration, find_cycle, lookup, on_error, task::task_spec};
use crate::kinds::pipeline::{PipelineSpec, PipelineTask};
use crate::kinds::task::TaskSpec;
use crate::library::Origin;
use crate::param::ParamValue;
use crate::subst::references;
use crate::suggest::closest;

/// Task names of one section with fast lookup: pipelines may hold thousands of tasks.
pub(crate) struct Names<'a> {
    list: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
}

impl<'a> Names<'a> {
    fn new(tasks: &'a [PipelineTask]) -> Self {
        let list: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        let index = list.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        Names { list, index }
    }

    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

/// Checks a Pipeline spec found at `base`.
pub(crate) fn pipeline_spec(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    base: &str,
    spec: &PipelineSpec,
    embedded: bool,
) {
    specs(cx, origin, &format!("{base}.params"), &spec.params);
    if spec.tasks.is_empty() {
        cx.err(
            origin,
            base,
            "pipeline has no tasks",
            "add at least one task under `tasks:`",
        );
    }
    let dag = Names::new(&spec.tasks);
    let fin = Names::new(&spec.finally);
    let mut seen = HashSet::new();
    let declared_ws: Vec<&str> = spec.workspaces.iter().map(|w| w.name.as_str()).collect();
    let declared_params: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
    for (section, list) in [("tasks", &spec.tasks), ("finally", &spec.finally)] {
        for (i, t) in list.iter().enumerate() {
            let path = format!("{base}.{section}[{i}]");
            if !seen.insert(t.name.as_str()) {
                cx.err(
                    origin,
                    &format!("{path}.name"),
                    format!("duplicate pipeline task `{}`", t.name),
                    "give each task its own name",
                );
            } else if let Some(why) = dns_label_problem(&t.name) {
                cx.err(
                    origin,
                    &format!("{path}.name"),
                    format!("invalid pipeline task name `{}`: {why}", t.name),
                    "use lowercase letters, digits and '-'",
                );
            }
            let target = pipeline_task(cx, origin, &path, t, &declared_ws);
            if section == "finally" && !t.run_after.is_empty() {
                cx.err(
                    origin,
                    &format!("{path}.runAfter"),
                    "finally tasks cannot use runAfter",
                    "finally tasks run after all tasks; remove runAfter",
                );
            }
            for (j, dep) in t.run_after.iter().enumerate() {
                if section == "tasks" && !dag.contains(dep) {
                    let hint = closest(dep, &dag.list)
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "runAfter names tasks of this pipeline: {}",
                                quoted(&dag.list)
                            )
                        });
                    cx.err(
                        origin,
                        &format!("{path}.runAfter[{j}]"),
                        format!("runAfter refers to unknown task `{dep}`"),
                        hint,
                    );
                }
            }
            references_of(
                cx,
                origin,
                &path,
                t,
                section,
                spec,
                &dag,
                &fin,
                &declared_params,
                embedded,
            );
            let matrix_names: Vec<&str> = t
                .matrix
                .iter()
                .flat_map(|m| {
                    m.params
                        .iter()
                        .chain(m.include.iter().flat_map(|i| i.params.iter()))
                })
                .map(|p| p.name.as_str())
                .collect();
            if let Some(target) = target {
                let at = if t.params.is_empty() {
                    path.clone()
                } else {
                    format!("{path}.params")
                };
                let base = format!("{path}.params");
                passed(
                    cx,
                    origin,
                    Site {
                        base: &base,
                        at: &at,
                    },
                    &t.params,
                    &target.params,
                    &format!("task `{}`", t.name),
                    &matrix_names,
                );
                let bound: Vec<&str> = t.workspaces.iter().map(|w| w.name.as_str()).collect();
                for w in &target.workspaces {
                    if !w.optional.unwrap_or(false) && !bound.contains(&w.name.as_str()) {
                        cx.err(origin, &path, format!("workspace `{}` of task `{}` is not bound", w.name, t.name), format!("add `workspaces: [{{name: {}, workspace: <pipeline workspace>}}]` to the task", w.name));
                    }
                }
            }
            matrix(cx, origin, &path, t);
        }
    }
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    let deps: Vec<Vec<String>> = spec
        .tasks
        .iter()
        .map(PipelineTask::result_dependencies)
        .collect();
    for (t, d) in spec.tasks.iter().zip(&deps) {
        let e = edges.entry(t.name.as_str()).or_default();
        e.extend(
            t.run_after
                .iter()
                .map(String::as_str)
                .filter(|n| dag.contains(n)),
        );
        e.extend(d.iter().map(String::as_str).filter(|n| dag.contains(n)));
    }
    if let Some(cycle) = find_cycle(&dag.list, &edges) {
        let first = spec
            .tasks
            .iter()
            .position(|t| t.name == cycle[0])
            .unwrap_or(0);
        cx.err(
            origin,
            &format!("{base}.tasks[{first}]"),
            format!("pipeline tasks form a cycle: {}", cycle.join(" -> ")),
            "remove one runAfter or result reference in the cycle",
        );
    }
    for (i, r) in spec.results.iter().enumerate() {
        for s in r.value.strings() {
            for rf in references(s) {
                let names = rf.names();
                let ok = match names.first().copied() {
                    Some("tasks") => names.get(1).is_some_and(|n| dag.contains(n)),
                    Some("finally") => names.get(1).is_some_and(|n| fin.contains(n)),
                    _ => false,
                };
                if !ok {
                    cx.err(origin, &format!("{base}.results[{i}].value"), format!("pipeline result `{}` refers to `$({})`, which is not a task result", r.name, rf.expr), "use $(tasks.<task>.results.<result>) or $(finally.<task>.results.<result>)");
                }
            }
        }
    }
}

/// Checks one pipeline task's target; returns the Task spec it runs when known.
fn pipeline_task<'a: 'b, 'b>(
    cx: &mut Cx<'a>,
    origin: Option<&Origin>,
    path: &str,
    t: &'b PipelineTask,
    declared_ws: &[&str],
) -> Option<&'b TaskSpec> {
    let targets = [
        t.task_ref.is_some(),
        t.task_spec.is_some(),
        t.pipeline_ref.is_some(),
        t.pipeline_spec.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if targets != 1 {
        cx.err(
            origin,
            path,
            format!(
                "task `{}` must have exactly one of taskRef, taskSpec, pipelineRef, pipelineSpec",
                t.name
            ),
            if targets == 0 {
                "add `taskRef: {name: <task>}` or an inline `taskSpec:`"
            } else {
                "keep only one of them"
            },
        );
        return None;
    }
    on_error(cx, origin, &format!("{path}.onError"), &t.on_error);
    duration(cx, origin, &format!("{path}.timeout"), &t.timeout);
    for (i, w) in t.when.iter().enumerate() {
        let wp = format!("{path}.when[{i}]");
        if w.cel.is_some() {
            if w.input.is_some() || w.operator.is_some() || w.values.is_some() {
                cx.err(
                    origin,
                    &wp,
                    "when expression mixes `cel` with input/operator/values",
                    "use either `cel:` alone or input, operator and values",
                );
            }
            continue;
        }
        match w.operator.as_deref() {
            Some("in" | "notin") => {}
            Some(op) => cx.err(
                origin,
                &format!("{wp}.operator"),
                format!("invalid when operator `{op}`"),
                "use `in` or `notin`",
            ),
            None => cx.err(
                origin,
                &wp,
                "when expression has no operator",
                "add `operator: in` or `operator: notin`",
            ),
        }
        if w.input.is_none() {
            cx.err(origin, &wp, "when expression has no input", "add `input:`");
        }
        if w.values.as_ref().is_none_or(Vec::is_empty) {
            cx.err(
                origin,
                &wp,
                "when expression has no values",
                "add `values: [...]`",
            );
        }
    }
    for (i, w) in t.workspaces.iter().enumerate() {
        if let Some(sub) = &w.sub_path {
            super::storage::local_path(
                cx,
                origin,
                &format!("{path}.workspaces[{i}].subPath"),
                "subPath",
                sub,
            );
        }
        let name = w.workspace.as_deref().unwrap_or(&w.name);
        if !declared_ws.contains(&name) {
            let hint = closest(name, declared_ws)
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "declare it under the pipeline's `workspaces:`".into());
            cx.err(
                origin,
                &format!("{path}.workspaces[{i}]"),
                format!(
                    "task `{}` binds undeclared pipeline workspace `{name}`",
                    t.name
                ),
                hint,
            );
        }
    }
    if let Some(r) = &t.task_ref {
        if let Some(kind) = r
            .kind
            .as_deref()
            .filter(|k| *k != "Task" && *k != "ClusterTask")
        {
            cx.err(
                origin,
                &format!("{path}.taskRef.kind"),
                format!("custom task kind `{kind}` cannot run locally"),
                "refer to a Task",
            );
            return None;
        }
        return lookup(
            cx,
            origin,
            &format!("{path}.taskRef"),
            "Task",
            &r.resolver,
            &r.name,
            |l| &l.tasks,
        );
    }
    if let Some(spec) = &t.task_spec {
        task_spec(cx, origin, &format!("{path}.taskSpec"), spec, true);
        return Some(spec);
    }
    if let Some(r) = &t.pipeline_ref {
        lookup(
            cx,
            origin,
            &format!("{path}.pipelineRef"),
            "Pipeline",
            &r.resolver,
            &r.name,
            |l| &l.pipelines,
        );
    }
    if let Some(spec) = &t.pipeline_spec {
        pipeline_spec(cx, origin, &format!("{path}.pipelineSpec"), spec, true);
    }
    None
}

/// Checks references in params, when and matrix against params and tasks that exist.
#[allow(clippy::too_many_arguments)]
fn references_of(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    path: &str,
    t: &PipelineTask,
    section: &str,
    spec: &PipelineSpec,
    dag: &Names<'_>,
    fin: &Names<'_>,
    params: &[&str],
    embedded: bool,
) {
    for (field, r) in t.references() {
        let names = r.names();
        let at = format!("{path}.{field}");
        match names.first().copied() {
            Some("tasks") if names.len() == 2 && names[1] == "status" && section != "finally" => {
                cx.err(
                    origin,
                    &at,
                    "`$(tasks.status)` is only available in finally tasks",
                    "move this task to `finally:`",
                );
            }
            Some("tasks") if names.len() >= 3 => {
                let target = names[1];
                if !dag.contains(target) {
                    let hint = if fin.contains(target) {
                        "finally task results cannot be used by other tasks".to_string()
                    } else {
                        closest(target, &dag.list)
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| {
                                format!("tasks of this pipeline: {}", quoted(&dag.list))
                            })
                    };
                    cx.err(
                        origin,
                        &at,
                        format!("`$({})` refers to unknown task `{target}`", r.expr),
                        hint,
                    );
                    continue;
                }
                if (names[2] == "status" || names[2] == "reason") && section != "finally" {
                    cx.err(
                        origin,
                        &at,
                        format!("`$({})` is only available in finally tasks", r.expr),
                        "move this task to `finally:`",
                    );
                }
                if names[2] == "results" {
                    if target == t.name {
                        cx.err(
                            origin,
                            &at,
                            "a task cannot use its own results",
                            "refer to another task's results",
                        );
                    }
                    let Some(result) = names.get(3) else { continue };
                    let Some(dep) = dag.index.get(target).map(|i| &spec.tasks[*i]) else {
                        continue;
                    };
                    let declared = match (&dep.task_ref, &dep.task_spec) {
                        (Some(r), _) => r
                            .name
                            .as_ref()
                            .and_then(|n| cx.lib.tasks.get(n))
                            .map(|t| &t.spec.results),
                        (_, Some(s)) => Some(&s.results),
                        _ => None,
                    };
                    if let Some(results) = declared
                        && !results.iter().any(|x| x.name == *result)
                    {
                        let cands: Vec<&str> = results.iter().map(|x| x.name.as_str()).collect();
                        let hint = closest(result, &cands)
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| {
                                format!(
                                    "task `{target}` declares: {}",
                                    if cands.is_empty() {
                                        "no results".into()
                                    } else {
                                        quoted(&cands)
                                    }
                                )
                            });
                        cx.err(
                            origin,
                            &at,
                            format!("task `{target}` has no result `{result}`"),
                            hint,
                        );
                    }
                }
            }
            Some("params") if !embedded => {
                if let Some(name) = names.get(1)
                    && !params.contains(name)
                {
                    let hint = closest(name, params)
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| "declare it under the pipeline's `params:`".into());
                    cx.err(
                        origin,
                        &at,
                        format!("`$({})` refers to an undeclared pipeline param", r.expr),
                        hint,
                    );
                }
            }
            _ => {}
        }
    }
}

fn matrix(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, t: &PipelineTask) {
    let Some(m) = &t.matrix else { return };
    let mut combos: usize = 1;
    for (i, p) in m.params.iter().enumerate() {
        let at = format!("{path}.matrix.params[{i}]");
        if t.params.iter().any(|x| x.name == p.name) {
            cx.err(
                origin,
                &at,
                format!("param `{}` is in both params and matrix", p.name),
                "pass it in one place only",
            );
        }
        match &p.value {
            ParamValue::Array(a) => combos = combos.saturating_mul(a.len().max(1)),
            ParamValue::String(s) if references(s).iter().any(|r| r.is_star()) => {}
            _ => cx.err(
                origin,
                &format!("{at}.value"),
                format!("matrix param `{}` is not an array", p.name),
                "give a list of values, or an array reference such as `$(params.list[*])`",
            ),
        }
    }
    combos = combos.saturating_add(m.include.len());
    if combos > cx.limits.max_matrix_combinations {
        cx.err(
            origin,
            &format!("{path}.matrix"),
            format!(
                "matrix of task `{}` makes {combos} combinations, more than the limit of {}",
                t.name, cx.limits.max_matrix_combinations
            ),
            "split the task, or raise the limit in the slipway config",
        );
    }
}
