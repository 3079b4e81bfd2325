//! What OpenKruise's webhook would refuse, checked by slipway's model: on a cluster without an
//! admission webhook, kubectl stores any object the CRD schema admits, so the controller checks
//! each job itself and says the first problem in the job's status instead of acting on it.

use serde_json::Value;
use slipway_model::diagnostic::Diagnostics;
use slipway_model::library::Library;
use slipway_model::validate::{Limits, validate_from};

/// The first problem of a pre-warming object, as `field: message`, if it has one.
pub fn problem(object: &Value) -> Option<String> {
    let mut doc = object.clone();
    if let Some(m) = doc.as_object_mut() {
        m.remove("status");
    }
    if let Some(m) = doc["metadata"].as_object_mut() {
        // What the API server keeps is none of the webhook's business.
        m.remove("managedFields");
    }
    let mut lib = Library::default();
    let mut diags = Diagnostics::default();
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    lib.add_source("object".into(), text, &mut diags);
    if diags.is_empty() {
        diags = validate_from(&lib, &Limits::default(), |_| true);
    }
    diags.0.first().map(|d| d.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: Value) -> Value {
        json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
               "metadata": {"name": "j", "namespace": "default", "uid": "u", "resourceVersion": "3",
                            "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": spec, "status": {"desired": 1}})
    }

    #[test]
    fn a_job_the_webhook_would_refuse_is_named_and_a_good_one_passes() {
        let good = job(json!({"image": "r/app:1", "selector": {"names": ["n1"]}}));
        assert_eq!(problem(&good), None);
        let both = job(json!({"image": "r/app:1",
                              "selector": {"names": ["n1"], "matchLabels": {"a": "b"}}}));
        let why = problem(&both).expect("refused");
        assert!(why.contains("names"), "{why}");
    }
}
