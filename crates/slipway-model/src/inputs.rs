//! What a run was started from, kept with it so it can start later (a queued run) or again
//! (`rerun`): the definitions it could refer to, and the run document itself.

use serde_json::{Value, json};

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
        RunInputs {
            documents: definitions(lib),
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
        let yaml = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps:\n  - name: s\n    image: busybox\n    script: echo hi\n---\napiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {generateName: t-run-}\nspec:\n  taskRef: {name: t}\n";
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
}
