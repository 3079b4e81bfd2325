//! Converts `tekton.dev/v1alpha1` and `v1beta1` documents to the `v1` shape, as Tekton's
//! conversion webhook did.

use serde_json::{Map, Value};

/// What a conversion dropped (for warnings) and moved (so diagnostics about a moved field point
/// at what the user wrote).
#[derive(Debug, Default)]
pub struct Dropped {
    /// Paths of removed fields.
    pub paths: Vec<String>,
    /// `(new path, path as written)` of fields that moved.
    pub moved: Vec<(String, String)>,
}

/// Rewrites a v1alpha1 object of `kind` into its v1beta1 form in place: params under
/// `inputs` move up, PipelineResources (`inputs`/`outputs` resources) are dropped.
pub fn v1alpha1_to_v1beta1(kind: &str, doc: &mut Value, dropped: &mut Dropped) {
    let Some(spec) = doc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match kind {
        "Task" => alpha_inputs(spec, "spec", dropped),
        "TaskRun" => {
            alpha_inputs(spec, "spec", dropped);
            rename(spec, "serviceAccount", "serviceAccountName");
            if let Some(ts) = spec.get_mut("taskSpec").and_then(Value::as_object_mut) {
                alpha_inputs(ts, "spec.taskSpec", dropped);
            }
        }
        "Pipeline" => alpha_pipeline(spec, "spec", dropped),
        "PipelineRun" => {
            rename(spec, "serviceAccount", "serviceAccountName");
            if let Some(ps) = spec.get_mut("pipelineSpec").and_then(Value::as_object_mut) {
                alpha_pipeline(ps, "spec.pipelineSpec", dropped);
            }
        }
        _ => {}
    }
}

/// `inputs.params` become `params`; `inputs`/`outputs` resources are dropped.
fn alpha_inputs(spec: &mut Map<String, Value>, path: &str, dropped: &mut Dropped) {
    for section in ["inputs", "outputs"] {
        let Some(Value::Object(mut io)) = spec.remove(section) else {
            continue;
        };
        if let Some(Value::Array(params)) = io.remove("params") {
            let list = spec
                .entry("params")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(list) = list.as_array_mut() {
                for (i, p) in params.into_iter().enumerate() {
                    dropped.moved.push((
                        format!("{path}.params[{}]", list.len()),
                        format!("{path}.{section}.params[{i}]"),
                    ));
                    list.push(p);
                }
            }
        }
        for key in io.keys() {
            dropped.paths.push(format!("{path}.{section}.{key}"));
        }
    }
}

fn alpha_pipeline(spec: &mut Map<String, Value>, path: &str, dropped: &mut Dropped) {
    for section in ["tasks", "finally"] {
        let Some(Value::Array(tasks)) = spec.get_mut(section) else {
            continue;
        };
        for (i, t) in tasks.iter_mut().enumerate() {
            let Some(t) = t.as_object_mut() else { continue };
            // Conditions were replaced by `when` expressions; a task guarded by one would run
            // unguarded, so the warning names it.
            drop_key(t, "conditions", &format!("{path}.{section}[{i}]"), dropped);
            if let Some(ts) = t.get_mut("taskSpec").and_then(Value::as_object_mut) {
                alpha_inputs(ts, &format!("{path}.{section}[{i}].taskSpec"), dropped);
            }
        }
    }
}

/// Rewrites a v1beta1 object of `kind` into its v1 form in place.
pub fn v1beta1_to_v1(kind: &str, doc: &mut Value, dropped: &mut Dropped) {
    let Some(spec) = doc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match kind {
        "Task" => task_spec(spec, "spec", dropped),
        "Pipeline" => pipeline_spec(spec, "spec", dropped),
        "TaskRun" => {
            drop_key(spec, "resources", "spec", dropped);
            rename(spec, "stepOverrides", "stepSpecs");
            rename(spec, "sidecarOverrides", "sidecarSpecs");
            if let Some(ts) = spec.get_mut("taskSpec").and_then(Value::as_object_mut) {
                task_spec(ts, "spec.taskSpec", dropped);
            }
            bundle_ref(spec.get_mut("taskRef"));
        }
        "PipelineRun" => {
            drop_key(spec, "resources", "spec", dropped);
            let mut template = Map::new();
            if let Some(sa) = spec.remove("serviceAccountName") {
                template.insert("serviceAccountName".into(), sa);
            }
            if let Some(pt) = spec.remove("podTemplate") {
                template.insert("podTemplate".into(), pt);
            }
            if !template.is_empty() {
                spec.insert("taskRunTemplate".into(), Value::Object(template));
            }
            if let Some(t) = spec.remove("timeout") {
                let timeouts = spec
                    .entry("timeouts")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(o) = timeouts.as_object_mut() {
                    o.entry("pipeline").or_insert(t);
                }
            }
            if let Some(Value::Array(names)) = spec.remove("serviceAccountNames") {
                let specs = spec
                    .entry("taskRunSpecs")
                    .or_insert_with(|| Value::Array(vec![]));
                if let Some(list) = specs.as_array_mut() {
                    for (i, n) in names.into_iter().enumerate() {
                        let (new, old) = (
                            format!("spec.taskRunSpecs[{}]", list.len()),
                            format!("spec.serviceAccountNames[{i}]"),
                        );
                        for (a, b) in [
                            ("", ""),
                            (".pipelineTaskName", ".taskName"),
                            (".serviceAccountName", ".serviceAccountName"),
                        ] {
                            dropped
                                .moved
                                .push((format!("{new}{a}"), format!("{old}{b}")));
                        }
                        let mut m = Map::new();
                        m.insert(
                            "pipelineTaskName".into(),
                            n.get("taskName").cloned().unwrap_or_default(),
                        );
                        m.insert(
                            "serviceAccountName".into(),
                            n.get("serviceAccountName").cloned().unwrap_or_default(),
                        );
                        list.push(Value::Object(m));
                    }
                }
            }
            if let Some(Value::Array(specs)) = spec.get_mut("taskRunSpecs") {
                for s in specs.iter_mut().filter_map(Value::as_object_mut) {
                    rename(s, "taskServiceAccountName", "serviceAccountName");
                    rename(s, "taskPodTemplate", "podTemplate");
                    rename(s, "stepOverrides", "stepSpecs");
                    rename(s, "sidecarOverrides", "sidecarSpecs");
                }
            }
            if let Some(ps) = spec.get_mut("pipelineSpec").and_then(Value::as_object_mut) {
                pipeline_spec(ps, "spec.pipelineSpec", dropped);
            }
            bundle_ref(spec.get_mut("pipelineRef"));
        }
        _ => {}
    }
}

fn task_spec(spec: &mut Map<String, Value>, path: &str, dropped: &mut Dropped) {
    drop_key(spec, "resources", path, dropped);
    for key in ["steps", "sidecars"] {
        if let Some(Value::Array(items)) = spec.get_mut(key) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                rename(item, "resources", "computeResources");
            }
        }
    }
    if let Some(t) = spec.get_mut("stepTemplate").and_then(Value::as_object_mut) {
        rename(t, "resources", "computeResources");
    }
}

fn pipeline_spec(spec: &mut Map<String, Value>, path: &str, dropped: &mut Dropped) {
    drop_key(spec, "resources", path, dropped);
    for section in ["tasks", "finally"] {
        if let Some(Value::Array(tasks)) = spec.get_mut(section) {
            for (i, t) in tasks.iter_mut().enumerate() {
                let Some(t) = t.as_object_mut() else { continue };
                let here = format!("{path}.{section}[{i}]");
                drop_key(t, "resources", &here, dropped);
                bundle_ref(t.get_mut("taskRef"));
                if let Some(ts) = t.get_mut("taskSpec").and_then(Value::as_object_mut) {
                    task_spec(ts, &format!("{here}.taskSpec"), dropped);
                }
            }
        }
    }
}

/// `bundle: img` becomes the bundles resolver, which slipway reports as unsupported locally.
fn bundle_ref(r: Option<&mut Value>) {
    let Some(r) = r.and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(bundle) = r.remove("bundle") {
        r.insert("resolver".into(), Value::String("bundles".into()));
        let name = r.get("name").cloned().unwrap_or_default();
        r.insert(
            "params".into(),
            serde_json::json!([{"name": "bundle", "value": bundle}, {"name": "name", "value": name}]),
        );
    }
}

fn rename(m: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = m.remove(from) {
        m.entry(to).or_insert(v);
    }
}

fn drop_key(m: &mut Map<String, Value>, key: &str, path: &str, dropped: &mut Dropped) {
    if m.remove(key).is_some() {
        dropped.paths.push(format!("{path}.{key}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pipelinerun_fields_move() {
        let mut doc = json!({"spec": {"serviceAccountName": "sa", "timeout": "1h",
            "taskRunSpecs": [{"pipelineTaskName": "a", "taskServiceAccountName": "b"}]}});
        let mut d = Dropped::default();
        v1beta1_to_v1("PipelineRun", &mut doc, &mut d);
        assert_eq!(doc["spec"]["taskRunTemplate"]["serviceAccountName"], "sa");
        assert_eq!(doc["spec"]["timeouts"]["pipeline"], "1h");
        assert_eq!(doc["spec"]["taskRunSpecs"][0]["serviceAccountName"], "b");
    }

    #[test]
    fn task_step_resources_become_compute_resources() {
        let mut doc = json!({"spec": {"resources": {"inputs": []}, "steps": [{"resources": {"limits": {}}}]}});
        let mut d = Dropped::default();
        v1beta1_to_v1("Task", &mut doc, &mut d);
        assert!(doc["spec"]["steps"][0].get("computeResources").is_some());
        assert_eq!(d.paths, vec!["spec.resources".to_string()]);
    }

    #[test]
    fn v1alpha1_inputs_become_params_and_resources_are_dropped() {
        let mut doc = json!({"spec": {"inputs": {"params": [{"name": "a"}], "resources": [{"name": "src"}]},
            "outputs": {"resources": [{"name": "img"}]}, "steps": []}});
        let mut d = Dropped::default();
        v1alpha1_to_v1beta1("Task", &mut doc, &mut d);
        assert_eq!(doc["spec"]["params"][0]["name"], "a");
        assert!(doc["spec"].get("inputs").is_none());
        assert_eq!(d.paths, ["spec.inputs.resources", "spec.outputs.resources"]);
        assert_eq!(
            d.moved,
            [(
                "spec.params[0]".to_string(),
                "spec.inputs.params[0]".to_string()
            )]
        );
    }

    #[test]
    fn service_account_names_keep_their_written_place() {
        let mut doc = json!({"spec": {"serviceAccountNames": [{"taskName": "t", "serviceAccountName": "sa"}]}});
        let mut d = Dropped::default();
        v1beta1_to_v1("PipelineRun", &mut doc, &mut d);
        assert_eq!(doc["spec"]["taskRunSpecs"][0]["pipelineTaskName"], "t");
        assert!(d.moved.contains(&(
            "spec.taskRunSpecs[0].pipelineTaskName".to_string(),
            "spec.serviceAccountNames[0].taskName".to_string()
        )));
    }
}
