//! The definitions stored for a namespace, loaded as one model library together with what a
//! request sends, so that a request is validated against what it will run with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use slipway_model::documents::split_documents;
use slipway_model::library::parse_source;
use slipway_model::node::parse_documents;
use slipway_model::validate::{Limits, validate_from};
use slipway_model::{Diagnostics, Library};
use slipway_store::{Resource, SqliteStore};

use crate::diagnostics;
use crate::{ApiError, AppState};

/// The name request bodies carry in diagnostics.
pub const BODY: &str = "request body";

/// Kinds that can be applied, with their API group/version path and plural.
pub const KINDS: &[Kind] = &[
    Kind::new("Task", "tekton.dev/v1", "tasks"),
    Kind::new("Pipeline", "tekton.dev/v1", "pipelines"),
    Kind::new("StepAction", "tekton.dev/v1beta1", "stepactions"),
    Kind::new("ConfigMap", "v1", "configmaps"),
    Kind::new("Secret", "v1", "secrets"),
    Kind::new(
        "TriggerBinding",
        "triggers.tekton.dev/v1beta1",
        "triggerbindings",
    ),
    Kind::new(
        "TriggerTemplate",
        "triggers.tekton.dev/v1beta1",
        "triggertemplates",
    ),
    Kind::new(
        "EventListener",
        "triggers.tekton.dev/v1beta1",
        "eventlisteners",
    ),
    Kind::new("Trigger", "triggers.tekton.dev/v1beta1", "triggers"),
];

/// An appliable kind.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// `Task`.
    pub kind: &'static str,
    /// `tekton.dev/v1`.
    pub api: &'static str,
    /// `tasks`.
    pub plural: &'static str,
}

impl Kind {
    const fn new(kind: &'static str, api: &'static str, plural: &'static str) -> Kind {
        Kind { kind, api, plural }
    }

    /// The collection's path for a namespace, as Kubernetes spells it.
    pub fn collection(&self, namespace: &str) -> String {
        if self.api == "v1" {
            format!("/api/v1/namespaces/{namespace}/{}", self.plural)
        } else {
            format!("/apis/{}/namespaces/{namespace}/{}", self.api, self.plural)
        }
    }

    /// By kind name.
    pub fn named(kind: &str) -> Option<Kind> {
        KINDS.iter().copied().find(|k| k.kind == kind)
    }
}

/// One document of a request body: its own text, and its object.
#[derive(Debug, Clone)]
pub struct BodyDocument {
    /// The line of the body it starts on.
    pub line: usize,
    /// The text as sent.
    pub yaml: String,
    /// The object.
    pub object: Value,
}

impl BodyDocument {
    /// `kind`.
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or("")
    }
    /// A problem with the whole document, at its first line.
    pub fn problem(&self, message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::Invalid {
            message: format!("{BODY}:{}:1: {message}", self.line),
            diagnostics: vec![serde_json::json!({
                "severity": "error", "message": message, "hint": hint.into(), "file": BODY,
                "line": self.line, "column": 1, "endLine": self.line, "endColumn": 2,
            })],
        }
    }
    /// `metadata.name`.
    pub fn name(&self) -> Option<&str> {
        self.object["metadata"]["name"].as_str()
    }
}

/// The body's documents, each with its own text. Syntax errors are diagnostics at line and
/// column of the body.
pub fn documents(body: &str) -> Result<Vec<BodyDocument>, ApiError> {
    // Parsing the whole body once gives syntax errors positions in the body, not in a piece.
    if let Err(d) = parse_source(BODY.into(), body.to_string()) {
        return Err(ApiError::Invalid {
            message: format!("{}: {}", d.location(), d.message),
            diagnostics: vec![diagnostics::to_json(&d, "error")],
        });
    }
    let mut out = Vec::new();
    for piece in split_documents(body) {
        let Ok(docs) = parse_documents(piece.text) else {
            continue;
        };
        for doc in docs {
            out.push(BodyDocument {
                line: piece.line,
                yaml: piece.text.to_string(),
                object: doc.value,
            });
        }
    }
    Ok(out)
}

/// `body` with the documents `hide` says to hidden: their lines are left empty, so that what
/// remains keeps its line numbers (the model's library knows no namespaces; a body spanning
/// several is checked one namespace at a time).
pub fn only(body: &str, hide: impl Fn(&Value) -> bool) -> String {
    let mut out = body.to_string();
    for piece in split_documents(body) {
        let hidden = parse_documents(piece.text)
            .ok()
            .is_some_and(|docs| docs.iter().any(|d| hide(&d.value)));
        if hidden {
            let start = piece.text.as_ptr() as usize - body.as_ptr() as usize;
            // Byte for byte, so that later pieces keep their offsets.
            let blank: String = piece
                .text
                .chars()
                .map(|c| {
                    if c == '\n' {
                        "\n".to_string()
                    } else {
                        " ".repeat(c.len_utf8())
                    }
                })
                .collect();
            out.replace_range(start..start + piece.text.len(), &blank);
        }
    }
    out
}

/// The parsed definitions of each namespace, kept until a definition changes: parsing every
/// stored object for every request was most of a request's time (40 ms with the catalog's 170
/// Tasks applied).
#[derive(Debug, Default)]
pub struct Cache {
    generation: AtomicU64,
    namespaces: Mutex<HashMap<String, (u64, Arc<Library>)>>,
}

impl Cache {
    /// Definitions were written or deleted: every cached namespace is read again.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    async fn stored(&self, store: &SqliteStore, namespace: &str) -> Result<Arc<Library>, ApiError> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Ok(n) = self.namespaces.lock()
            && let Some((g, lib)) = n.get(namespace)
            && *g == generation
        {
            return Ok(lib.clone());
        }
        let mut lib = Library::default();
        let mut diags = Diagnostics::default();
        for r in store
            .resources(None, namespace)
            .await?
            .iter()
            .filter(|r| Kind::named(&r.kind).is_some() && !is_trigger(&r.kind))
        {
            lib.add_source(source_name(r), r.yaml.clone(), &mut diags);
        }
        let lib = Arc::new(lib);
        if let Ok(mut n) = self.namespaces.lock() {
            n.insert(namespace.to_string(), (generation, lib.clone()));
        }
        Ok(lib)
    }
}

/// The stored definitions of `namespace` (minus `replaced`) plus `body`, validated. Problems in
/// the body fail the request with their positions; warnings about it are returned.
pub async fn library(
    state: &AppState,
    namespace: &str,
    body: Option<&str>,
    replaced: &[(String, String)],
) -> Result<(Library, Vec<Value>), ApiError> {
    let mut lib = Library::clone(&*state.catalog.stored(&state.store, namespace).await?);
    let mut diags = Diagnostics::default();
    for (kind, name) in replaced {
        lib.remove(kind, name);
    }
    if let Some(body) = body {
        lib.add_source(BODY.into(), body.to_string(), &mut diags);
    }
    let mut problems = diagnostics::about(&diags, BODY, "error");
    if problems.is_empty() {
        let checked = validate_from(&lib, &Limits::default(), |path| path == BODY);
        problems = diagnostics::about(&checked, BODY, "error");
    }
    if let Some(first) = problems.first() {
        return Err(ApiError::Invalid {
            message: format!(
                "{}:{}:{}: {}",
                BODY,
                first["line"],
                first["column"],
                first["message"].as_str().unwrap_or("")
            ),
            diagnostics: problems,
        });
    }
    let warnings = lib
        .warnings
        .iter()
        .filter(|w| w.source.as_ref().is_some_and(|s| s.path == BODY))
        // The model knows Tekton Pipelines' kinds; trigger objects are checked on their own.
        .filter(|w| !w.message.contains("triggers.tekton.dev/"))
        .map(|w| diagnostics::to_json(w, "warning"))
        .collect();
    Ok((lib, warnings))
}

/// Diagnostics for a body without failing: what the editor shows while the user types.
pub async fn check(state: &AppState, namespace: &str, body: &str) -> Result<Vec<Value>, ApiError> {
    let replaced: Vec<(String, String)> = match documents(body) {
        Ok(docs) => docs
            .iter()
            .filter_map(|d| Some((d.kind().to_string(), d.name()?.to_string())))
            .collect(),
        Err(ApiError::Invalid { diagnostics, .. }) => return Ok(diagnostics),
        Err(e) => return Err(e),
    };
    match library(state, namespace, Some(body), &replaced).await {
        Ok((_, warnings)) => Ok(warnings),
        Err(ApiError::Invalid { diagnostics, .. }) => Ok(diagnostics),
        Err(e) => Err(e),
    }
}

fn source_name(r: &Resource) -> String {
    format!("{}/{}", r.kind, r.name)
}

fn is_trigger(kind: &str) -> bool {
    crate::trigger_defs::TRIGGER_KINDS.contains(&kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_documents_keep_the_lines_of_the_others() {
        let body = "kind: A # é\nx: 1\n---\nkind: B\ny: ü\n---\nkind: C\n";
        let out = only(body, |o| o["kind"] == "A");
        assert_eq!(out.len(), body.len());
        assert_eq!(out.lines().nth(3), Some("kind: B"));
        assert_eq!(out.lines().nth(6), Some("kind: C"));
        assert!(out.lines().next().is_some_and(|l| l.trim().is_empty()));
    }
}
