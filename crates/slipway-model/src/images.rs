//! The container images a set of runs needs, found without running them: for mirroring into a
//! closed network and for checking an executor has them all before anything starts.

use std::collections::BTreeSet;

use crate::kinds::pipeline::{PipelineSpec, PipelineTask};
use crate::kinds::task::{Step, TaskSpec};
use crate::library::{Library, RunObject};
use crate::param::{Param, ParamSpec, ParamValue};
use crate::subst::Scope;

/// An image as a step, sidecar or StepAction names it, with its params substituted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageUse {
    /// The reference (still holding `$(...)` when it depends on run-time values).
    pub image: String,
    /// Where it is used: `Task build, step compile`.
    pub used_by: String,
}

impl ImageUse {
    /// Whether the reference is known before the run (no `$(...)` left in it).
    pub fn is_resolved(&self) -> bool {
        !self.image.contains("$(")
    }
}

/// Every image the library's runs need; with no runs, every image its Pipelines, Tasks and
/// StepActions name (params at their defaults). Nested pipelines and matrix values included.
pub fn images(lib: &Library) -> BTreeSet<ImageUse> {
    let mut out = BTreeSet::new();
    let mut walk = Walk {
        lib,
        out: &mut out,
        depth: 0,
    };
    if lib.runs.is_empty() {
        for (name, p) in &lib.pipelines {
            walk.pipeline(&format!("Pipeline {name}"), &p.spec, &[]);
        }
        for (name, t) in &lib.tasks {
            walk.task(&format!("Task {name}"), &t.spec, &[]);
        }
        for (name, a) in &lib.step_actions {
            if let Some(image) = &a.spec.image {
                let scope = scope(&a.spec.params, &[]);
                walk.push(scope.subst(image), format!("StepAction {name}"));
            }
        }
        return out;
    }
    for run in &lib.runs {
        match run {
            RunObject::PipelineRun(pr) => {
                let here = format!("PipelineRun {}", run_name(&pr.meta));
                let spec = pr.spec.pipeline_spec.clone().or_else(|| {
                    let name = pr.spec.pipeline_ref.as_ref()?.name.clone()?;
                    Some(lib.pipelines.get(&name)?.spec.clone())
                });
                if let Some(spec) = spec {
                    walk.pipeline(&here, &spec, &pr.spec.params);
                }
            }
            RunObject::TaskRun(tr) => {
                let here = format!("TaskRun {}", run_name(&tr.meta));
                let spec = tr.spec.task_spec.clone().or_else(|| {
                    let name = tr.spec.task_ref.as_ref()?.name.clone()?;
                    Some(lib.tasks.get(&name)?.spec.clone())
                });
                if let Some(spec) = spec {
                    walk.task(&here, &spec, &tr.spec.params);
                }
            }
        }
    }
    out
}

fn run_name(meta: &crate::kinds::k8s::ObjectMeta) -> String {
    meta.name
        .clone()
        .or_else(|| meta.generate_name.clone())
        .unwrap_or_default()
}

/// Params as a scope: declared defaults overridden by passed values.
fn scope(specs: &[ParamSpec], passed: &[Param]) -> Scope {
    let mut scope = Scope::new();
    for s in specs {
        if let Some(d) = &s.default {
            scope.set(format!("params.{}", s.name), d.clone());
        }
    }
    for p in passed {
        scope.set(format!("params.{}", p.name), p.value.clone());
    }
    scope
}

struct Walk<'a> {
    lib: &'a Library,
    out: &'a mut BTreeSet<ImageUse>,
    /// Pipelines in pipelines; bounded so a self-referencing one cannot recurse forever.
    depth: usize,
}

impl Walk<'_> {
    fn push(&mut self, image: String, used_by: String) {
        self.out.insert(ImageUse { image, used_by });
    }

    fn pipeline(&mut self, here: &str, spec: &PipelineSpec, passed: &[Param]) {
        if self.depth > 8 {
            return;
        }
        let scope = scope(&spec.params, passed);
        for pt in spec.tasks.iter().chain(&spec.finally) {
            for params in combinations(pt, &scope) {
                self.pipeline_task(here, pt, &params);
            }
        }
    }

    fn pipeline_task(&mut self, here: &str, pt: &PipelineTask, params: &[Param]) {
        let here = format!("{here}, task {}", pt.name);
        if let Some(spec) = &pt.task_spec {
            return self.task(&here, spec, params);
        }
        if let Some(name) = pt.task_ref.as_ref().and_then(|r| r.name.as_ref())
            && let Some(t) = self.lib.tasks.get(name)
        {
            let spec = t.spec.clone();
            return self.task(&here, &spec, params);
        }
        let nested = pt.pipeline_spec.as_deref().cloned().or_else(|| {
            let name = pt.pipeline_ref.as_ref()?.name.clone()?;
            Some(self.lib.pipelines.get(&name)?.spec.clone())
        });
        if let Some(spec) = nested {
            self.depth += 1;
            self.pipeline(&here, &spec, params);
            self.depth -= 1;
        }
    }

    fn task(&mut self, here: &str, spec: &TaskSpec, passed: &[Param]) {
        let scope = scope(&spec.params, passed);
        let template = spec.step_template.as_ref().and_then(|t| t.image.as_ref());
        for (i, step) in spec.steps.iter().enumerate() {
            let name = step.name.clone().unwrap_or_else(|| format!("unnamed-{i}"));
            self.step(&format!("{here}, step {name}"), step, template, &scope);
        }
        for (i, s) in spec.sidecars.iter().enumerate() {
            let name = s.name.clone().unwrap_or_else(|| format!("sidecar-{i}"));
            if let Some(image) = &s.image {
                self.push(scope.subst(image), format!("{here}, sidecar {name}"));
            }
        }
    }

    fn step(&mut self, here: &str, step: &Step, template: Option<&String>, scope: &Scope) {
        if let Some(action) = step
            .step_ref
            .as_ref()
            .and_then(|r| r.name.as_ref())
            .and_then(|n| self.lib.step_actions.get(n))
        {
            let passed = scope.subst_params(step.params.iter().flatten());
            if let Some(image) = &action.spec.image {
                let own = self::scope(&action.spec.params, &passed);
                self.push(own.subst(image), here.to_string());
            }
            return;
        }
        if let Some(image) = step.image.as_ref().or(template) {
            self.push(scope.subst(image), here.to_string());
        }
    }
}

/// The params a pipeline task's TaskRuns get: one set, or one per matrix combination (each
/// value of each matrix param, and each `include` entry).
fn combinations(pt: &PipelineTask, scope: &Scope) -> Vec<Vec<Param>> {
    let base = scope.subst_params(&pt.params);
    let Some(matrix) = &pt.matrix else {
        return vec![base];
    };
    let mut sets = Vec::new();
    for p in &matrix.params {
        if let ParamValue::Array(values) = scope.subst_value(&p.value) {
            for v in values {
                let mut set = base.clone();
                set.push(Param {
                    name: p.name.clone(),
                    value: ParamValue::String(v),
                });
                sets.push(set);
            }
        }
    }
    for inc in &matrix.include {
        let mut set = base.clone();
        set.extend(scope.subst_params(&inc.params));
        sets.push(set);
    }
    if sets.is_empty() {
        sets.push(base);
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib(yaml: &str) -> Library {
        let mut lib = Library::default();
        let mut diags = crate::Diagnostics::default();
        lib.add_source("t.yaml".into(), yaml.into(), &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        lib
    }

    fn names(lib: &Library) -> Vec<String> {
        images(lib)
            .into_iter()
            .map(|u| u.image)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    #[test]
    fn params_defaults_run_values_templates_and_matrices_are_followed() {
        let l = lib(r#"
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: build}
spec:
  params: [{name: tool, default: "golang:1.22"}, {name: os, default: linux}]
  stepTemplate: {image: "alpine:3"}
  steps:
    - {name: compile, image: "$(params.tool)", script: "true"}
    - {name: pack, script: "true"}
  sidecars:
    - {name: db, image: "postgres:16"}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: ci}
spec:
  params: [{name: go, value: "1.23"}]
  pipelineSpec:
    params: [{name: go, default: "1.21"}]
    tasks:
      - name: b
        taskRef: {name: build}
        params: [{name: tool, value: "golang:$(params.go)"}]
      - name: matrix
        taskRef: {name: build}
        matrix:
          params: [{name: tool, value: ["node:20", "node:22"]}]
"#);
        assert_eq!(
            names(&l),
            [
                "alpine:3",
                "golang:1.23",
                "node:20",
                "node:22",
                "postgres:16"
            ]
        );
    }

    #[test]
    fn without_runs_every_definition_counts_and_runtime_values_stay_marked() {
        let l = lib(r#"
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t}
spec:
  params: [{name: img}]
  steps: [{image: "$(params.img)", script: "true"}, {image: busybox, script: "true"}]
"#);
        let all = images(&l);
        assert_eq!(all.len(), 2);
        assert!(
            all.iter()
                .any(|u| !u.is_resolved() && u.image == "$(params.img)")
        );
    }
}
