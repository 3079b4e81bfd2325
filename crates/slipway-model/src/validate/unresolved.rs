//! References Tekton leaves as written because they name nothing (`$(inputs.params.typo)`,
//! `$(context.task.nmae)`): not errors, since Tekton accepts them, but a run would see the text
//! `$(...)` instead of a value, so they are warned about.

use crate::diagnostic::Diagnostic;
use crate::kinds::task::TaskSpec;
use crate::library::{Library, Origin, RunObject};
use crate::subst::references;

use super::task::task_strings;

/// Context variables Tekton substitutes in a Task.
const CONTEXT: &[&str] = &[
    "context.taskRun.name",
    "context.taskRun.namespace",
    "context.taskRun.uid",
    "context.task.name",
    "context.task.retry-count",
    "context.pipelineRun.name",
    "context.pipelineRun.namespace",
    "context.pipelineRun.uid",
    "context.pipeline.name",
    "context.pipelineTask.retries",
];

/// Warnings for references that will not resolve, in the library's Tasks and in TaskRuns'
/// inline specs (whose run's params and workspaces are propagated into them).
pub fn unresolved(lib: &Library) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for t in lib.tasks.values() {
        let known = Known {
            params: t.spec.params.iter().map(|p| p.name.as_str()).collect(),
            workspaces: Some(t.spec.workspaces.iter().map(|w| w.name.as_str()).collect()),
        };
        task(&mut out, t.origin.as_ref(), "spec", &t.spec, &known);
    }
    for r in &lib.runs {
        if let RunObject::TaskRun(tr) = r
            && let Some(spec) = &tr.spec.task_spec
        {
            let known = Known {
                params: spec
                    .params
                    .iter()
                    .map(|p| p.name.as_str())
                    .chain(tr.spec.params.iter().map(|p| p.name.as_str()))
                    .collect(),
                workspaces: None,
            };
            task(&mut out, tr.origin.as_ref(), "spec.taskSpec", spec, &known);
        }
    }
    out
}

/// What a Task's references may name; `workspaces: None` when the run's propagate in.
struct Known<'a> {
    params: Vec<&'a str>,
    workspaces: Option<Vec<&'a str>>,
}

fn task(
    out: &mut Vec<Diagnostic>,
    origin: Option<&Origin>,
    base: &str,
    spec: &TaskSpec,
    known: &Known<'_>,
) {
    let steps: Vec<String> = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| s.name.clone().unwrap_or_else(|| format!("unnamed-{i}")))
        .collect();
    for (path, s) in task_strings(base, spec) {
        for r in references(s) {
            let names = r.names();
            let why = match names.as_slice() {
                ["inputs", "params", p, ..] if !known.params.contains(p) => {
                    Some(format!("no param `{p}` is declared"))
                }
                ["workspaces", w, ..]
                    if known.workspaces.as_ref().is_some_and(|ws| !ws.contains(w)) =>
                {
                    Some(format!("no workspace `{w}` is declared"))
                }
                ["context", ..] if !CONTEXT.contains(&names.join(".").as_str()) => {
                    Some("Tekton has no such context variable".to_string())
                }
                ["steps", step, ..]
                    if !steps
                        .iter()
                        .any(|n| n == step || format!("step-{n}") == *step) =>
                {
                    Some(format!("no step `{step}` in this Task"))
                }
                _ => None,
            };
            if let Some(why) = why {
                let message = format!("`$({})` will be left as written: {why}", r.expr);
                let d = match origin {
                    Some(o) => o.diag(&path, message),
                    None => Diagnostic::new(message),
                };
                out.push(d.with_hint("check the name; Tekton substitutes only what it knows"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_resolve_to_nothing_are_warned_about() {
        let mut lib = Library::default();
        let mut diags = crate::Diagnostics::default();
        lib.add_source(
            "t.yaml".into(),
            r#"apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t}
spec:
  params: [{name: who}]
  workspaces: [{name: src}]
  steps:
    - name: a
      image: busybox
      script: |
        echo $(inputs.params.who) $(inputs.params.whom) $(workspaces.src.path)
        echo $(workspaces.out.path) $(context.task.name) $(context.task.nmae) $(date)
        cat $(steps.a.exitCode.path) $(steps.b.exitCode.path)
"#
            .into(),
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
        let messages: Vec<String> = unresolved(&lib).into_iter().map(|d| d.message).collect();
        assert_eq!(
            messages,
            [
                "`$(inputs.params.whom)` will be left as written: no param `whom` is declared",
                "`$(workspaces.out.path)` will be left as written: no workspace `out` is declared",
                "`$(context.task.nmae)` will be left as written: Tekton has no such context variable",
                "`$(steps.b.exitCode.path)` will be left as written: no step `b` in this Task",
            ]
        );
    }
}
