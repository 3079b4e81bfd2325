//! A run and what it refers to, read from the cluster: the run object as written (v1 or
//! v1beta1, told apart by its fields), and the Tasks, Pipelines, StepActions, ConfigMaps and
//! Secrets of its namespace, as the engine's `Library`.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use serde_json::{Value, json};
use slipway_model::{Diagnostics, Library, RunObject};

use crate::cache::TektonCache;

/// Annotations that describe how an object was written, not what it asks for.
const DROPPED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// The object as the loader takes it: `apiVersion` set, status and server-kept fields gone.
fn clean(object: &Value, api_version: &str, kind: &str) -> Value {
    let meta = &object["metadata"];
    let mut m = json!({ "name": meta["name"], "namespace": meta["namespace"] });
    for key in ["uid", "generateName"] {
        if !meta[key].is_null() {
            m[key] = meta[key].clone();
        }
    }
    if let Some(labels) = meta["labels"].as_object().filter(|l| !l.is_empty()) {
        m["labels"] = Value::Object(labels.clone());
    }
    if let Some(a) = meta["annotations"].as_object() {
        let kept: serde_json::Map<String, Value> = a
            .iter()
            .filter(|(k, _)| !DROPPED_ANNOTATIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !kept.is_empty() {
            m["annotations"] = Value::Object(kept);
        }
    }
    let mut out = json!({ "apiVersion": api_version, "kind": kind, "metadata": m });
    for key in ["spec", "data", "binaryData", "stringData", "type"] {
        if let Some(v) = object.get(key) {
            out[key] = v.clone();
        }
    }
    out
}

/// The versions to read a Tekton object as: the one it was read through first, then the other.
/// The API server stores custom resources as written and only rewrites `apiVersion` when they
/// are read through another version, so a v1beta1 object read as v1 still has v1beta1 fields.
fn versions(object: &Value) -> [&'static str; 2] {
    match object["apiVersion"].as_str() {
        Some("tekton.dev/v1beta1") => ["tekton.dev/v1beta1", "tekton.dev/v1"],
        _ => ["tekton.dev/v1", "tekton.dev/v1beta1"],
    }
}

fn source_path(object: &Value, kind: &str) -> String {
    format!(
        "{kind} {}/{}",
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The text of `object` as the version its fields fit, or every problem of the first version.
fn fitting(object: &Value, kind: &str) -> Result<String, Diagnostics> {
    let mut first: Option<Diagnostics> = None;
    for version in versions(object) {
        let text = clean(object, version, kind).to_string();
        let mut diags = Diagnostics::default();
        let mut scratch = Library::default();
        scratch.add_source(source_path(object, kind), text.clone(), &mut diags);
        if diags.is_empty() {
            return Ok(text);
        }
        first.get_or_insert(diags);
    }
    Err(first.unwrap_or_default())
}

/// Why a run cannot be read.
#[derive(Debug)]
pub struct Unreadable {
    /// Tekton's reason.
    pub reason: &'static str,
    /// What is wrong, for the condition's message.
    pub message: String,
}

/// The run object of a PipelineRun or TaskRun read from the cluster.
pub fn run_object(object: &Value, kind: &str) -> Result<RunObject, Unreadable> {
    let reason = match kind {
        "PipelineRun" => "PipelineRunValidationFailed",
        _ => "TaskRunValidationFailed",
    };
    let invalid = |d: Diagnostics| Unreadable {
        reason,
        message: d.render_plain().trim().to_string(),
    };
    let text = fitting(object, kind).map_err(invalid)?;
    let mut diags = Diagnostics::default();
    let mut lib = Library::default();
    lib.add_source(source_path(object, kind), text, &mut diags);
    if !diags.is_empty() {
        return Err(invalid(diags));
    }
    lib.runs.pop().ok_or_else(|| Unreadable {
        reason,
        message: format!("the {kind} could not be read"),
    })
}

/// Which of its namespace's objects a run may need, judged from its own text: a run that names
/// no Task, Pipeline or StepAction and mentions no ConfigMap or Secret needs none of them, and
/// costs no list request. Conservative: a reference to another object means everything is read
/// (what it refers to may need anything); a word that only looks like a reference costs a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Tasks, Pipelines and StepActions.
    pub tekton: bool,
    /// ConfigMaps.
    pub config_maps: bool,
    /// Secrets.
    pub secrets: bool,
}

impl Needs {
    /// What `run` (the object as watched) may need.
    pub fn of(run: &Value) -> Needs {
        let text = run["spec"].to_string().to_ascii_lowercase();
        let tekton = ["\"taskref\"", "\"pipelineref\"", "\"ref\""]
            .iter()
            .any(|k| text.contains(k));
        Needs {
            tekton,
            config_maps: tekton || text.contains("configmap"),
            secrets: tekton || text.contains("secret"),
        }
    }
}

/// The Tasks, Pipelines, StepActions, ConfigMaps and Secrets of `namespace` that `needs` asks
/// for, as a Library. Tekton's kinds come from `cache` where it has them, unless `run` (the
/// object as watched) names one the cache lacks (created a moment before the run, the watch not
/// there yet): then they are listed, as without a cache.
pub(crate) async fn namespace_library(
    client: &kube::Client,
    cache: Option<&TektonCache>,
    namespace: &str,
    needs: Needs,
    run: &Value,
) -> Result<Arc<Library>, kube::Error> {
    if needs.tekton
        && let Some(cache) = cache
    {
        let tekton_only = Needs {
            config_maps: false,
            secrets: false,
            ..needs
        };
        let lib = read_library(client, Some(cache), namespace, tekton_only).await?;
        if let Some(specs) = referenced(&lib, run) {
            // What the run and the objects it names mention decides the rest, as for a run
            // that names nothing.
            let text = specs
                .iter()
                .map(Value::to_string)
                .collect::<String>()
                .to_ascii_lowercase();
            let rest = Needs {
                tekton: false,
                config_maps: text.contains("configmap"),
                secrets: text.contains("secret"),
            };
            if !rest.config_maps && !rest.secrets {
                return Ok(lib);
            }
            let more = read_library(client, None, namespace, rest).await?;
            let mut lib = Arc::unwrap_or_clone(lib);
            let more = Arc::unwrap_or_clone(more);
            lib.config_maps.extend(more.config_maps);
            lib.secrets.extend(more.secrets);
            return Ok(Arc::new(lib));
        }
    }
    read_library(client, None, namespace, needs).await
}

async fn read_library(
    client: &kube::Client,
    cache: Option<&TektonCache>,
    namespace: &str,
    needs: Needs,
) -> Result<Arc<Library>, kube::Error> {
    let mut lib = Library::default();
    let mut diags = Diagnostics::default();
    for ar in crate::cache::kinds().iter().filter(|_| needs.tekton) {
        let objects = match cache.and_then(|c| c.objects(&ar.kind, namespace)) {
            Some(cached) => cached,
            None => list(client, namespace, ar).await?,
        };
        for object in objects {
            match fitting(&object, &ar.kind) {
                Ok(text) => lib.add_source(source_path(&object, &ar.kind), text, &mut diags),
                // A broken Task only matters to the runs that use it; they fail as not found.
                Err(d) => tracing::warn!("{}", d.render_plain().trim()),
            }
        }
    }
    let maps = ApiResource::erase::<ConfigMap>(&());
    let secrets = ApiResource::erase::<Secret>(&());
    let wanted = [
        (&maps, "ConfigMap", needs.config_maps),
        (&secrets, "Secret", needs.secrets),
    ];
    for (ar, kind, _) in wanted.into_iter().filter(|w| w.2) {
        for object in list(client, namespace, ar).await? {
            let text = clean(&object, "v1", kind).to_string();
            lib.add_source(source_path(&object, kind), text, &mut diags);
        }
    }
    for d in &diags.0 {
        tracing::warn!("{}", d.message);
    }
    Ok(Arc::new(lib))
}

/// The specs of `run` and of every Task, Pipeline and StepAction it names (by name, not through
/// a resolver), through the Pipelines and Tasks it names; `None` when one of them is not in
/// `lib`.
fn referenced(lib: &Library, run: &Value) -> Option<Vec<Value>> {
    let mut todo = vec![run["spec"].clone()];
    let mut specs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while let Some(spec) = todo.pop() {
        let mut refs = Vec::new();
        named_refs(&spec, &mut refs);
        specs.push(spec);
        for (key, name) in refs {
            if !seen.insert((key, name.clone())) {
                continue;
            }
            let found = match key {
                "taskRef" => serde_json::to_value(&lib.tasks.get(&name)?.spec),
                "pipelineRef" => serde_json::to_value(&lib.pipelines.get(&name)?.spec),
                _ => serde_json::to_value(&lib.step_actions.get(&name)?.spec),
            };
            if let Ok(spec) = found {
                todo.push(spec);
            }
        }
    }
    Some(specs)
}

/// Whether `run` names an object `lib` lacks.
#[cfg(test)]
fn lacks(lib: &Library, run: &Value) -> bool {
    referenced(lib, run).is_none()
}

/// Every `taskRef`, `pipelineRef` and step `ref` in `v` that names an object by name.
fn named_refs(v: &Value, out: &mut Vec<(&'static str, String)>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let key = match k.as_str() {
                    "taskRef" => Some("taskRef"),
                    "pipelineRef" => Some("pipelineRef"),
                    "ref" => Some("ref"),
                    _ => None,
                };
                if let Some(key) = key
                    && x["resolver"].is_null()
                    && let Some(name) = x["name"].as_str()
                {
                    out.push((key, name.to_string()));
                }
                named_refs(x, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| named_refs(x, out)),
        _ => {}
    }
}

async fn list(
    client: &kube::Client,
    namespace: &str,
    ar: &ApiResource,
) -> Result<Vec<Value>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, ar);
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l,
        // A cluster without StepActions has none to offer.
        Err(kube::Error::Api(s)) if s.code == 404 && ar.kind == "StepAction" => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    Ok(list
        .items
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_names_nothing_needs_no_list_and_a_reference_needs_all() {
        let embedded = json!({"spec": {"pipelineSpec": {"tasks": [{"name": "a",
            "taskSpec": {"steps": [{"name": "s", "image": "busybox", "script": "true"}]}}]}}});
        let none = Needs {
            tekton: false,
            config_maps: false,
            secrets: false,
        };
        assert_eq!(Needs::of(&embedded), none);
        let secret = json!({"spec": {"taskSpec": {"steps": [{"name": "s", "env": [
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "x", "key": "t"}}}]}]}}});
        assert_eq!(
            Needs::of(&secret),
            Needs {
                secrets: true,
                ..none
            }
        );
        let map = json!({"spec": {"workspaces": [{"name": "w", "configMap": {"name": "m"}}]}});
        assert_eq!(
            Needs::of(&map),
            Needs {
                config_maps: true,
                ..none
            }
        );
        let all = Needs {
            tekton: true,
            config_maps: true,
            secrets: true,
        };
        for run in [
            json!({"spec": {"pipelineRef": {"name": "p"}}}),
            json!({"spec": {"taskRef": {"name": "t"}}}),
            json!({"spec": {"taskSpec": {"steps": [{"name": "s", "ref": {"name": "act"}}]}}}),
        ] {
            assert_eq!(Needs::of(&run), all, "{run}");
        }
    }

    #[test]
    fn a_reference_the_library_lacks_is_found_through_pipelines_and_tasks() {
        let mut lib = Library::default();
        let mut diags = Diagnostics::default();
        let docs = "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  tasks:\n    - name: a\n      taskRef: {name: t}\n---\napiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps: [{name: s, ref: {name: act}}]\n";
        lib.add_source("defs.yaml".into(), docs.into(), &mut diags);
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let by_pipeline = json!({"spec": {"pipelineRef": {"name": "p"}}});
        assert!(
            lacks(&lib, &by_pipeline),
            "the StepAction two levels down is missing"
        );
        let resolved = json!({"spec": {"taskRef": {"resolver": "git", "params": []}}});
        assert!(
            !lacks(&lib, &resolved),
            "a resolver's reference is not the namespace's"
        );
        let absent = json!({"spec": {"taskRef": {"name": "nope"}}});
        assert!(lacks(&lib, &absent));
        let act = "apiVersion: tekton.dev/v1beta1\nkind: StepAction\nmetadata: {name: act}\nspec: {image: busybox, script: 'true'}\n";
        lib.add_source("act.yaml".into(), act.into(), &mut diags);
        assert!(diags.is_empty(), "{}", diags.render_plain());
        assert!(!lacks(&lib, &by_pipeline), "everything it names is there");
        let specs = referenced(&lib, &by_pipeline).expect("all there");
        assert_eq!(
            specs.len(),
            4,
            "the run's, the Pipeline's, the Task's, the StepAction's"
        );
    }

    #[test]
    fn a_v1beta1_run_read_through_v1_is_read_as_v1beta1() {
        // As the API server returns it: apiVersion rewritten, fields as written.
        let object = json!({
            "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "old", "namespace": "default", "uid": "u1"},
            "spec": {"timeout": "1h", "serviceAccountName": "builder", "pipelineRef": {"name": "p"}},
            "status": {"conditions": []},
        });
        let run = run_object(&object, "PipelineRun").expect("reads as v1beta1");
        let RunObject::PipelineRun(pr) = run else {
            panic!("a PipelineRun")
        };
        let timeouts = pr.spec.timeouts.expect("timeout moved to timeouts");
        assert_eq!(timeouts.pipeline.as_deref(), Some("1h"));
    }

    #[test]
    fn a_v1_run_stays_v1_and_a_broken_one_names_the_field() {
        let object = json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "new", "namespace": "default",
                          "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"timeout": "5m", "taskRef": {"name": "t"}},
        });
        let run = run_object(&object, "TaskRun").expect("reads as v1");
        assert!(run.meta().annotations.is_empty());
        let broken = json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "bad", "namespace": "default"},
            "spec": {"taskRef": {"name": "t"}, "nonsense": 1},
        });
        let e = run_object(&broken, "TaskRun").expect_err("unknown field");
        assert_eq!(e.reason, "TaskRunValidationFailed");
        assert!(e.message.contains("nonsense"), "{}", e.message);
    }
}
