//! What a run was started from, kept with it so it can start later (a queued run) or again
//! (`rerun`): the definitions it could refer to, and the run document itself.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::kinds::pipeline::PipelineSpec;
use crate::kinds::task::TaskSpec;

use crate::validate::{Limits, validate};
use crate::{Diagnostics, Library, RunObject};

/// A run's inputs.
#[derive(Debug, Clone, Default)]
pub struct RunInputs {
    /// Tasks, Pipelines, StepActions, ConfigMaps and Secrets, as JSON objects.
    pub documents: Vec<Value>,
    /// The run, named, in Tekton's JSON shape.
    pub run: Value,
}

impl RunInputs {
    /// The inputs of `run` (named `name`) from `lib`: every document that is not a run.
    pub fn capture(lib: &Library, run: &RunObject, name: &str) -> RunInputs {
        let used = referenced(lib, run);
        let documents = definitions(lib)
            .into_iter()
            .filter(|d| {
                let kind = d.get("kind").and_then(Value::as_str).unwrap_or("");
                let name = d
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match kind {
                    // Small, and read by name from many places (workspaces, env, envFrom).
                    "ConfigMap" | "Secret" => true,
                    _ => used.contains(&(kind.to_string(), name.to_string())),
                }
            })
            .collect();
        RunInputs {
            documents,
            run: run.to_document(name),
        }
    }

    /// As stored.
    pub fn to_json(&self) -> Value {
        json!({ "documents": self.documents, "run": self.run })
    }

    /// From what [`RunInputs::to_json`] stored.
    pub fn from_json(v: &Value) -> RunInputs {
        RunInputs {
            documents: v
                .get("documents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            run: v.get("run").cloned().unwrap_or(Value::Null),
        }
    }

    /// Loads and validates the inputs again (the rules may have changed since they were stored);
    /// `label` names them in diagnostics.
    pub fn load(&self, label: &str) -> Result<Library, Diagnostics> {
        let text: String = self
            .documents
            .iter()
            .chain(std::iter::once(&self.run))
            .map(|d| format!("---\n{d}\n"))
            .collect();
        let mut lib = Library::default();
        let mut diags = Diagnostics::default();
        lib.add_source(label.to_string(), text, &mut diags);
        if !diags.is_empty() {
            return Err(diags);
        }
        let diags = validate(&lib, &Limits::default());
        if !diags.is_empty() {
            return Err(diags);
        }
        Ok(lib)
    }
}

/// The Tasks, Pipelines and StepActions `run` refers to, through its Pipeline, pipelines in
/// pipelines and steps, as `(kind, name)`: a run keeps these, not every definition around it.
pub fn referenced(lib: &Library, run: &RunObject) -> HashSet<(String, String)> {
    let mut seen = HashSet::new();
    match run {
        RunObject::PipelineRun(pr) => {
            if let Some(n) = pr.spec.pipeline_ref.as_ref().and_then(|r| r.name.as_ref()) {
                pipeline(lib, n, &mut seen);
            }
            if let Some(s) = &pr.spec.pipeline_spec {
                pipeline_spec(lib, s, &mut seen);
            }
        }
        RunObject::TaskRun(tr) => {
            if let Some(n) = tr.spec.task_ref.as_ref().and_then(|r| r.name.as_ref()) {
                task(lib, n, &mut seen);
            }
            if let Some(s) = &tr.spec.task_spec {
                task_spec(s, &mut seen);
            }
        }
    }
    seen
}

fn pipeline(lib: &Library, name: &str, seen: &mut HashSet<(String, String)>) {
    if seen.insert(("Pipeline".into(), name.into()))
        && let Some(p) = lib.pipelines.get(name)
    {
        pipeline_spec(lib, &p.spec, seen);
    }
}

fn pipeline_spec(lib: &Library, spec: &PipelineSpec, seen: &mut HashSet<(String, String)>) {
    for t in spec.tasks.iter().chain(&spec.finally) {
        if let Some(n) = t.task_ref.as_ref().and_then(|r| r.name.as_ref()) {
            task(lib, n, seen);
        }
        if let Some(s) = &t.task_spec {
            task_spec(s, seen);
        }
        if let Some(n) = t.pipeline_ref.as_ref().and_then(|r| r.name.as_ref()) {
            pipeline(lib, n, seen);
        }
        if let Some(s) = &t.pipeline_spec {
            pipeline_spec(lib, s, seen);
        }
    }
}

fn task(lib: &Library, name: &str, seen: &mut HashSet<(String, String)>) {
    if seen.insert(("Task".into(), name.into()))
        && let Some(t) = lib.tasks.get(name)
    {
        task_spec(&t.spec, seen);
    }
}

fn task_spec(spec: &TaskSpec, seen: &mut HashSet<(String, String)>) {
    for s in &spec.steps {
        if let Some(n) = s.step_ref.as_ref().and_then(|r| r.name.as_ref()) {
            seen.insert(("StepAction".into(), n.clone()));
        }
    }
}

/// Every document of `lib` that is not a run, as JSON: what any of its runs may refer to.
pub fn definitions(lib: &Library) -> Vec<Value> {
    lib.raw
        .iter()
        .filter(|d| {
            !matches!(
                d.get("kind").and_then(Value::as_str),
                Some("PipelineRun" | "TaskRun")
            )
        })
        .cloned()
        .collect()
}

impl RunObject {
    /// The run as a Tekton v1 JSON document named `name` (a run without a name keeps its
    /// `generateName`, or gets `name-`).
    pub fn to_document(&self, name: &str) -> Value {
        let (kind, api, spec) = match self {
            RunObject::PipelineRun(o) => (
                "PipelineRun",
                o.api_version.clone(),
                serde_json::to_value(&o.spec).unwrap_or(Value::Null),
            ),
            RunObject::TaskRun(o) => (
                "TaskRun",
                o.api_version.clone(),
                serde_json::to_value(&o.spec).unwrap_or(Value::Null),
            ),
        };
        let mut meta = serde_json::to_value(self.meta()).unwrap_or(json!({}));
        if self.meta().name.is_none() {
            meta["generateName"] = json!(
                self.meta()
                    .generate_name
                    .clone()
                    .unwrap_or_else(|| format!("{name}-"))
            );
        }
        // The spec was converted to v1 when loaded.
        let api = if api.ends_with("v1beta1") {
            "tekton.dev/v1".to_string()
        } else {
            api
        };
        json!({ "apiVersion": api, "kind": kind, "metadata": meta, "spec": spec })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_round_trip_through_json_and_load_again() {
        let mut lib = Library::default();
        let mut diags = Diagnostics::default();
        let yaml = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps:\n  - name: s\n    image: busybox\n    script: echo hi\n---\napiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: unrelated}\nspec:\n  steps:\n  - name: s\n    image: busybox\n    script: echo hi\n---\napiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {generateName: t-run-}\nspec:\n  taskRef: {name: t}\n";
        lib.add_source("in.yaml".into(), yaml.into(), &mut diags);
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let inputs = RunInputs::capture(&lib, &lib.runs[0], "t-run-abcde");
        assert_eq!(inputs.documents.len(), 1);
        assert_eq!(inputs.run["metadata"]["generateName"], "t-run-");
        let again = RunInputs::from_json(&inputs.to_json());
        let lib2 = again.load("stored").expect("valid");
        assert_eq!(lib2.tasks.keys().collect::<Vec<_>>(), ["t"]);
        assert_eq!(lib2.runs.len(), 1);
    }

    #[test]
    fn a_pipeline_run_keeps_what_it_reaches_and_no_more() {
        let yaml = r#"
apiVersion: tekton.dev/v1beta1
kind: StepAction
metadata: {name: act}
spec: {image: busybox, script: echo}
---
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: uses-act}
spec:
  steps: [{name: s, ref: {name: act}}]
---
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: other}
spec:
  steps: [{name: s, image: busybox, script: echo}]
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: inner}
spec:
  tasks: [{name: a, taskRef: {name: uses-act}}]
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: outer}
spec:
  tasks: [{name: p, pipelineRef: {name: inner}}]
  finally: [{name: f, taskRef: {name: uses-act}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: r}
spec:
  pipelineRef: {name: outer}
"#;
        let mut lib = Library::default();
        let mut diags = Diagnostics::default();
        lib.add_source("in.yaml".into(), yaml.into(), &mut diags);
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let inputs = RunInputs::capture(&lib, &lib.runs[0], "r");
        let mut kept: Vec<String> = inputs
            .documents
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap_or(""),
                    d["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                "ConfigMap/cm",
                "Pipeline/inner",
                "Pipeline/outer",
                "StepAction/act",
                "Task/uses-act"
            ]
        );
    }
}
