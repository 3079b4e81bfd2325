//! Converts `tekton.dev/v1beta1` documents to the `v1` shape, as Tekton's conversion webhook does.

use serde_json::{Map, Value};

/// What a conversion dropped, for a warning.
#[derive(Debug, Default)]
pub struct Dropped(pub Vec<String>);

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
                    for n in names {
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
        dropped.0.push(format!("{path}.{key}"));
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
        assert_eq!(d.0, vec!["spec.resources".to_string()]);
    }
}
