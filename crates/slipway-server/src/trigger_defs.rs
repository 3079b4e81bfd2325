//! The trigger objects of a namespace (TriggerBindings, TriggerTemplates, Triggers, Secrets) as
//! the definitions a delivery is evaluated against, and their checks when applied.

use std::collections::HashMap;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use slipway_model::annotations;
use slipway_model::names::{dns_subdomain_problem, shown};
use slipway_model::node::parse_documents;
use slipway_store::SqliteStore;
use slipway_triggers::{
    Definitions, EventListenerSpec, TriggerBindingSpec, TriggerSpec, TriggerTemplateSpec,
};

use crate::ApiError;
use crate::catalog::{BODY, BodyDocument};

/// Kinds of Tekton Triggers slipway keeps.
pub const TRIGGER_KINDS: &[&str] = &[
    "TriggerBinding",
    "TriggerTemplate",
    "EventListener",
    "Trigger",
];

/// Stored objects by kind and name.
#[derive(Debug, Default)]
pub struct StoredDefinitions {
    objects: HashMap<(String, String), Value>,
}

impl StoredDefinitions {
    /// Everything in `namespace`, with `overrides` (a request's documents) on top.
    pub async fn load(
        store: &SqliteStore,
        namespace: &str,
        overrides: &[BodyDocument],
    ) -> Result<StoredDefinitions, ApiError> {
        let mut objects = HashMap::new();
        for r in store.resources(None, namespace).await? {
            objects.insert((r.kind, r.name), r.object);
        }
        for d in overrides {
            if let Some(n) = d.name() {
                objects.insert((d.kind().to_string(), n.to_string()), d.object.clone());
            }
        }
        Ok(StoredDefinitions { objects })
    }

    fn spec<T: DeserializeOwned>(&self, kind: &str, name: &str) -> Option<T> {
        let o = self.objects.get(&(kind.to_string(), name.to_string()))?;
        serde_json::from_value(o.get("spec").cloned().unwrap_or(json!({}))).ok()
    }

    /// An EventListener's spec.
    pub fn listener(&self, name: &str) -> Option<EventListenerSpec> {
        self.spec("EventListener", name)
    }
}

impl Definitions for StoredDefinitions {
    fn binding(&self, name: &str) -> Option<TriggerBindingSpec> {
        self.spec("TriggerBinding", name)
    }
    fn template(&self, name: &str) -> Option<TriggerTemplateSpec> {
        self.spec("TriggerTemplate", name)
    }
    fn trigger(&self, name: &str) -> Option<TriggerSpec> {
        self.spec("Trigger", name)
    }
    fn secret(&self, name: &str, key: &str) -> Option<Vec<u8>> {
        let o = self
            .objects
            .get(&("Secret".to_string(), name.to_string()))?;
        if let Some(s) = o["stringData"][key].as_str() {
            return Some(s.as_bytes().to_vec());
        }
        let data = o["data"][key].as_str()?;
        base64::engine::general_purpose::STANDARD.decode(data).ok()
    }
}

/// Checks the trigger documents of a request: their shape, supported interceptors, CEL that
/// parses, and references to bindings, templates and Triggers that exist (stored or sent).
pub fn check(docs: &[BodyDocument], defs: &StoredDefinitions) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    for d in docs.iter().filter(|d| TRIGGER_KINDS.contains(&d.kind())) {
        let spec = d.object.get("spec").cloned().unwrap_or(json!({}));
        let found: Vec<(String, String)> = match d.kind() {
            "EventListener" => match typed::<EventListenerSpec>(&spec) {
                Ok(s) => slipway_triggers::check_listener(&s, defs),
                Err(e) => vec![e],
            },
            "Trigger" => match typed::<TriggerSpec>(&spec) {
                Ok(s) => slipway_triggers::check_trigger(&s, defs, "spec"),
                Err(e) => vec![e],
            },
            "TriggerBinding" => typed::<TriggerBindingSpec>(&spec)
                .err()
                .into_iter()
                .collect(),
            _ => typed::<TriggerTemplateSpec>(&spec)
                .err()
                .into_iter()
                .collect(),
        };
        let doc = parse_documents(&d.yaml)
            .ok()
            .and_then(|v| v.into_iter().next());
        let hint = "apply what it refers to first, or send it in the same body";
        let mut found: Vec<(String, String, String)> = found
            .into_iter()
            .map(|(path, message)| (path, message, hint.to_string()))
            .collect();
        found.extend(metadata_problems(&d.object["metadata"]));
        for (path, message, hint) in found {
            let pos = doc
                .as_ref()
                .map(|doc| doc.locate(&path))
                .unwrap_or_default();
            let line = d.line + pos.line.max(1) as usize - 1;
            problems.push(json!({
                "severity": "error", "message": format!("{} `{}`: {message}", d.kind(), shown(d.name().unwrap_or(""))),
                "hint": hint,
                "file": BODY, "line": line, "column": pos.col.max(1),
                "endLine": line, "endColumn": pos.col.max(1) + 1,
            }));
        }
    }
    match problems.first() {
        None => Ok(()),
        Some(p) => Err(ApiError::Invalid {
            message: format!(
                "{BODY}:{}:{}: {}",
                p["line"],
                p["column"],
                p["message"].as_str().unwrap_or("")
            ),
            diagnostics: problems,
        }),
    }
}

/// A trigger object's name and slipway annotations (`slipway.dev/poll-interval`), checked as
/// the model checks its own kinds: `(path, message, hint)`.
fn metadata_problems(meta: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    if let Some(n) = meta["name"].as_str()
        && let Some(why) = dns_subdomain_problem(n)
    {
        out.push((
            "metadata.name".into(),
            format!("invalid name: {why}"),
            "use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
                .into(),
        ));
    }
    for (key, value) in meta["annotations"].as_object().into_iter().flatten() {
        let Some(value) = value.as_str() else {
            continue;
        };
        if let Err(e) = annotations::check(key, value) {
            out.push((
                format!("metadata.annotations.{key}"),
                format!("invalid annotation {key} `{}`: {e}", shown(value)),
                e.hint(key),
            ));
        }
    }
    out
}

/// Deserializes a spec; an error is `(path, message)` with the path in the model's notation.
fn typed<T: DeserializeOwned>(spec: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "spec".to_string()
        } else {
            format!("spec.{path}")
        };
        (path, e.inner().to_string())
    })
}
