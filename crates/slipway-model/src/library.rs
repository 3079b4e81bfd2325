//! Loading files and directories of YAML into a set of typed objects by kind and name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::convert::{Dropped, v1alpha1_to_v1beta1, v1beta1_to_v1};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::kinds::k8s::{ConfigMapData, ObjectMeta, SecretData};
use crate::kinds::pipeline::PipelineSpec;
use crate::kinds::run::{PipelineRunSpec, TaskRunSpec};
use crate::kinds::task::{StepActionSpec, TaskSpec};
use crate::node::{Document, Pos, parse_documents};
use crate::suggest::closest;

/// Where an object came from, so later diagnostics can point into its file.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The file.
    pub source: Arc<SourceFile>,
    /// The document in that file, with positions.
    pub doc: Arc<Document>,
}

impl Origin {
    /// A diagnostic at `path` inside this object (e.g. `spec.tasks[1].runAfter[0]`).
    pub fn diag(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.source, self.doc.locate(path), message).with_field(path)
    }

    /// A diagnostic at the value (not the key) at `path`.
    pub fn diag_value(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.source, self.doc.locate_value(path), message).with_field(path)
    }
}

/// A typed Tekton or Kubernetes object.
#[derive(Debug, Clone)]
pub struct Object<S> {
    /// `tekton.dev/v1`, `tekton.dev/v1beta1`, …
    pub api_version: String,
    /// Metadata.
    pub meta: ObjectMeta,
    /// The spec (or data, for ConfigMaps and Secrets).
    pub spec: S,
    /// Where it was read from; `None` when built in code.
    pub origin: Option<Origin>,
}

impl<S> Object<S> {
    /// The name, or the generateName prefix, or `""`.
    pub fn name(&self) -> &str {
        self.meta
            .name
            .as_deref()
            .or(self.meta.generate_name.as_deref())
            .unwrap_or("")
    }

    /// A diagnostic at `path`, located when the object came from a file.
    pub fn diag(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        match &self.origin {
            Some(o) => o.diag(path, message),
            None => Diagnostic::new(message),
        }
    }
}

/// A run to start: a PipelineRun or a TaskRun.
// A file holds a handful of runs; boxing would only add indirection to every access.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RunObject {
    /// Runs a Pipeline.
    PipelineRun(Object<PipelineRunSpec>),
    /// Runs a Task.
    TaskRun(Object<TaskRunSpec>),
}

impl RunObject {
    /// `PipelineRun` or `TaskRun`.
    pub fn kind(&self) -> &'static str {
        match self {
            RunObject::PipelineRun(_) => "PipelineRun",
            RunObject::TaskRun(_) => "TaskRun",
        }
    }
    /// The name or generateName.
    pub fn name(&self) -> &str {
        match self {
            RunObject::PipelineRun(o) => o.name(),
            RunObject::TaskRun(o) => o.name(),
        }
    }
    /// Metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            RunObject::PipelineRun(o) => &o.meta,
            RunObject::TaskRun(o) => &o.meta,
        }
    }
    /// Where it was loaded from.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            RunObject::PipelineRun(o) => o.origin.as_ref(),
            RunObject::TaskRun(o) => o.origin.as_ref(),
        }
    }
}

/// Every object loaded from the given files, by kind and name.
#[derive(Debug, Clone, Default)]
pub struct Library {
    /// Tasks by name.
    pub tasks: IndexMap<String, Object<TaskSpec>>,
    /// Pipelines by name.
    pub pipelines: IndexMap<String, Object<PipelineSpec>>,
    /// StepActions by name.
    pub step_actions: IndexMap<String, Object<StepActionSpec>>,
    /// ConfigMaps by name.
    pub config_maps: IndexMap<String, Object<ConfigMapData>>,
    /// Secrets by name.
    pub secrets: IndexMap<String, Object<SecretData>>,
    /// PipelineRuns and TaskRuns in file order.
    pub runs: Vec<RunObject>,
    /// Things worth saying that do not stop loading.
    pub warnings: Vec<Diagnostic>,
    /// The raw documents of every Tekton object, for storing a run's inputs.
    pub raw: Vec<Value>,
    /// Tasks replaced by a same-named Task from a later file (catalog versions); still validated.
    pub shadowed_tasks: Vec<Object<TaskSpec>>,
    /// OpenKruise's pre-warming objects (ImagePullJob, ImageListPullJob, NodeImage) in file order.
    pub prewarm: Vec<Object<crate::prewarm::Prewarm>>,
    /// Pipelines replaced by a later file's.
    pub shadowed_pipelines: Vec<Object<PipelineSpec>>,
    /// StepActions replaced by a later file's.
    pub shadowed_step_actions: Vec<Object<StepActionSpec>>,
}

/// Failure to read a path at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist or cannot be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

const KNOWN_KINDS: &[&str] = &["Task", "Pipeline", "PipelineRun", "TaskRun", "StepAction"];

impl Library {
    /// Loads files and directories (recursively: `*.yaml`, `*.yml`, `*.json`).
    pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Library, Diagnostics> {
        let (sources, mut diags) = read_sources(paths);
        let mut lib = Library::default();
        for (path, text) in sources {
            lib.add_source(path, text, &mut diags);
        }
        diags.into_result(lib)
    }

    /// Forgets the object of `kind` named `name` (Task, Pipeline, StepAction, ConfigMap, Secret),
    /// so that another by that name can be added.
    pub fn remove(&mut self, kind: &str, name: &str) {
        match kind {
            "Task" => {
                self.tasks.shift_remove(name);
            }
            "Pipeline" => {
                self.pipelines.shift_remove(name);
            }
            "StepAction" => {
                self.step_actions.shift_remove(name);
            }
            "ConfigMap" => {
                self.config_maps.shift_remove(name);
            }
            "Secret" => {
                self.secrets.shift_remove(name);
            }
            _ => return,
        }
        self.raw.retain(|d| {
            d.get("kind").and_then(Value::as_str) != Some(kind)
                || d.pointer("/metadata/name").and_then(Value::as_str) != Some(name)
        });
    }

    /// Parses one file's text and adds its objects.
    pub fn add_source(&mut self, path: String, text: String, diags: &mut Diagnostics) {
        match parse_source(path, text) {
            Ok((source, docs)) => {
                for doc in docs {
                    self.add_document(&source, doc, diags);
                }
            }
            Err(d) => diags.push(d),
        }
    }

    fn add_document(
        &mut self,
        source: &Arc<SourceFile>,
        mut doc: Document,
        diags: &mut Diagnostics,
    ) {
        let origin_for = |doc: &Document| Origin {
            source: source.clone(),
            doc: Arc::new(doc.clone()),
        };
        let Some(map) = doc.value.as_object() else {
            let o = origin_for(&doc);
            diags.push(o.diag("", "document is not a mapping").with_hint("each document must be a Kubernetes object with apiVersion, kind, metadata and spec"));
            return;
        };
        let api_version = map
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = map
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if api_version.is_empty() || kind.is_empty() {
            let o = origin_for(&doc);
            let missing = if api_version.is_empty() {
                "apiVersion"
            } else {
                "kind"
            };
            diags.push(o.diag("", format!("object has no {missing}")).with_hint("start each document with `apiVersion: tekton.dev/v1` and `kind: Task` (or Pipeline, PipelineRun, TaskRun, StepAction)"));
            return;
        }
        let group = api_version.split('/').next().unwrap_or("");
        if group == crate::kinds::kruise::GROUP {
            let origin = origin_for(&doc);
            crate::prewarm::add(self, origin, &api_version, &kind, doc.value, diags);
            return;
        }
        if group != "tekton.dev" {
            if api_version == "v1" && (kind == "ConfigMap" || kind == "Secret") {
                let origin = origin_for(&doc);
                let meta = meta_of(&doc.value);
                let name = meta.name.clone().unwrap_or_default();
                // Kept with the rest so that a run's stored inputs can bind them again.
                self.raw.push(doc.value.clone());
                if kind == "ConfigMap" {
                    if let Some(spec) =
                        typed::<ConfigMapData>(&origin, &doc.value, "", diags, &mut self.warnings)
                    {
                        self.config_maps.insert(
                            name,
                            Object {
                                api_version,
                                meta,
                                spec,
                                origin: Some(origin),
                            },
                        );
                    }
                } else if let Some(spec) =
                    typed::<SecretData>(&origin, &doc.value, "", diags, &mut self.warnings)
                {
                    self.secrets.insert(
                        name,
                        Object {
                            api_version,
                            meta,
                            spec,
                            origin: Some(origin),
                        },
                    );
                }
                return;
            }
            let o = origin_for(&doc);
            self.warnings.push(o.diag(
                "kind",
                format!("ignoring {api_version} {kind}: not a Tekton object"),
            ));
            return;
        }
        if !KNOWN_KINDS.contains(&kind.as_str()) {
            let o = origin_for(&doc);
            let mut d = o.diag_value("kind", format!("unsupported kind `{kind}`"));
            d = match closest(&kind, KNOWN_KINDS) {
                Some(k) => d.with_hint(format!("did you mean `{k}`?")),
                None => {
                    d.with_hint("slipway runs Task, Pipeline, PipelineRun, TaskRun and StepAction")
                }
            };
            diags.push(d);
            return;
        }
        let version = api_version.split('/').nth(1).unwrap_or("");
        match version {
            "v1" => {}
            "v1beta1" | "v1alpha1" if kind == "StepAction" => {}
            "v1beta1" | "v1alpha1" => {
                let mut dropped = Dropped::default();
                if version == "v1alpha1" {
                    v1alpha1_to_v1beta1(&kind, &mut doc.value, &mut dropped);
                }
                v1beta1_to_v1(&kind, &mut doc.value, &mut dropped);
                for path in &dropped.paths {
                    let o = origin_for(&doc);
                    let message = if path.ends_with(".conditions") {
                        format!(
                            "`{path}` (Conditions, replaced by `when` expressions) was removed from Tekton and is ignored: the task runs unguarded"
                        )
                    } else {
                        format!(
                            "`{path}` (PipelineResources) was removed from Tekton and is ignored"
                        )
                    };
                    self.warnings.push(o.diag(path, message));
                }
                // Diagnostics about a moved field point at where the user wrote it.
                for (new, old) in &dropped.moved {
                    for map in [&mut doc.key_positions, &mut doc.positions] {
                        if let Some(pos) = map.get(old).copied() {
                            map.insert(new.clone(), pos);
                        }
                    }
                }
            }
            other => {
                let o = origin_for(&doc);
                diags.push(
                    o.diag_value(
                        "apiVersion",
                        format!("unsupported apiVersion `tekton.dev/{other}` for {kind}"),
                    )
                    .with_hint("use tekton.dev/v1 (v1beta1 and v1alpha1 are converted)"),
                );
                return;
            }
        }
        let origin = origin_for(&doc);
        let value = &doc.value;
        for key in map_keys(value) {
            if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&key.as_str()) {
                let mut d = origin.diag(&key, format!("unknown field `{key}` in {kind}"));
                if let Some(s) = closest(&key, &["apiVersion", "kind", "metadata", "spec"]) {
                    d = d.with_hint(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_hint("a Tekton object has apiVersion, kind, metadata and spec");
                }
                diags.push(d);
            }
        }
        let meta: ObjectMeta = match typed::<ObjectMeta>(
            &origin,
            value.get("metadata").unwrap_or(&Value::Null),
            "metadata",
            diags,
            &mut self.warnings,
        ) {
            Some(m) => m,
            None => return,
        };
        let name = meta.name.clone();
        let is_run = kind == "PipelineRun" || kind == "TaskRun";
        if name.is_none() && !(is_run && meta.generate_name.is_some()) {
            diags.push(
                origin
                    .diag("metadata", format!("{kind} has no metadata.name"))
                    .with_hint(if is_run {
                        "set metadata.name or metadata.generateName"
                    } else {
                        "set metadata.name so others can refer to it"
                    }),
            );
            return;
        }
        let spec_value = value
            .get("spec")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let name = name.unwrap_or_default();
        macro_rules! insert_named {
            ($map:expr, $shadowed:expr, $ty:ty) => {{
                if let Some(spec) = typed::<$ty>(&origin, &spec_value, "spec", diags, &mut self.warnings) {
                    let obj = Object { api_version: api_version.clone(), meta, spec, origin: Some(origin.clone()) };
                    match $map.get(&name).and_then(|o| o.origin.as_ref()).map(|o| o.source.path.clone()) {
                        Some(path) if path == source.path => {
                            diags.push(
                                origin
                                    .diag_value("metadata.name", format!("duplicate {kind} `{name}`"))
                                    .with_hint("each object of a kind needs its own name"),
                            );
                        }
                        Some(path) => {
                            // Versions of one object in several files (as in the Tekton catalog): the last wins.
                            self.warnings.push(origin.diag_value("metadata.name", format!("{kind} `{name}` replaces the one in {path}")));
                            if let Some(old) = $map.insert(name.clone(), obj) {
                                $shadowed.push(old);
                            }
                        }
                        None => {
                            $map.insert(name.clone(), obj);
                        }
                    }
                }
            }};
        }
        match kind.as_str() {
            "Task" => insert_named!(self.tasks, self.shadowed_tasks, TaskSpec),
            "Pipeline" => insert_named!(self.pipelines, self.shadowed_pipelines, PipelineSpec),
            "StepAction" => insert_named!(
                self.step_actions,
                self.shadowed_step_actions,
                StepActionSpec
            ),
            "PipelineRun" => {
                if let Some(spec) = typed::<PipelineRunSpec>(
                    &origin,
                    &spec_value,
                    "spec",
                    diags,
                    &mut self.warnings,
                ) {
                    self.runs.push(RunObject::PipelineRun(Object {
                        api_version: api_version.clone(),
                        meta,
                        spec,
                        origin: Some(origin.clone()),
                    }));
                }
            }
            "TaskRun" => {
                if let Some(spec) =
                    typed::<TaskRunSpec>(&origin, &spec_value, "spec", diags, &mut self.warnings)
                {
                    self.runs.push(RunObject::TaskRun(Object {
                        api_version: api_version.clone(),
                        meta,
                        spec,
                        origin: Some(origin.clone()),
                    }));
                }
            }
            _ => {}
        }
        self.raw.push(doc.value);
    }

    /// Adds an object built in code (for `slipway run task NAME`).
    pub fn push_run(&mut self, run: RunObject) {
        self.runs.push(run);
    }
}

fn map_keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn meta_of(v: &Value) -> ObjectMeta {
    v.get("metadata")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default()
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>, diags: &mut Diagnostics) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::new(format!(
                "failed to read directory {}: {e}",
                dir.display()
            )));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect_dir(&p, out, diags);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
}

/// Deserializes `value` (found at `base` in the document) into `T`, turning errors into diagnostics.
pub(crate) fn typed<T: DeserializeOwned>(
    origin: &Origin,
    value: &Value,
    base: &str,
    diags: &mut Diagnostics,
    warnings: &mut Vec<Diagnostic>,
) -> Option<T> {
    let mut fixed: Option<Value> = None;
    // Tekton decodes with Go's encoding/json, which matches field names regardless of case:
    // `mountpath` is read as `mountPath`. Each such key is renamed and said once; the bound
    // keeps a document with many of them from looping long.
    for _ in 0..64 {
        let current = fixed.as_ref().unwrap_or(value);
        let e = match serde_path_to_error::deserialize::<_, T>(current) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let inner = e.path().to_string();
        let path = match (base.is_empty(), inner.as_str()) {
            (_, ".") => base.to_string(),
            (true, p) => p.to_string(),
            (false, p) if p.starts_with('[') => format!("{base}{p}"),
            (false, p) => format!("{base}.{p}"),
        };
        let message = e.into_inner().to_string();
        if let Some((field, known)) = case_variant(&message) {
            let mut v = fixed.take().unwrap_or_else(|| value.clone());
            let relative = inner.trim_end_matches(field).trim_end_matches('.');
            if let Some(map) = object_at(&mut v, relative)
                && let Some(x) = map.remove(field)
            {
                map.insert(known.to_string(), x);
                let key_path = crate::node::join_key(relative_to(base, relative).as_str(), field);
                warnings.push(origin.diag(
                    &key_path,
                    format!("`{field}` is read as `{known}` (Tekton matches field names regardless of case)"),
                ));
                fixed = Some(v);
                continue;
            }
        }
        diags.push(serde_diag(origin, &path, &message));
        return None;
    }
    None
}

/// For an unknown-field error whose field differs only in case from an expected one, the two.
fn case_variant(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("unknown field `")?;
    let field = rest.split('`').next()?;
    let expected = rest
        .split("expected one of ")
        .nth(1)
        .or_else(|| rest.split("expected ").nth(1))?;
    let known = expected
        .split([',', ' '])
        .map(|f| f.trim_matches('`'))
        .find(|k| !k.is_empty() && *k != field && k.eq_ignore_ascii_case(field))?;
    Some((field, known))
}

/// `relative` (a path inside the value at `base`) as a path of the whole document.
fn relative_to(base: &str, relative: &str) -> String {
    match (base.is_empty(), relative) {
        (_, "" | ".") => base.to_string(),
        (true, p) => p.to_string(),
        (false, p) if p.starts_with('[') => format!("{base}{p}"),
        (false, p) => format!("{base}.{p}"),
    }
}

/// The object at a dotted path with `[i]` indexes (`steps[0].volumeMounts[1]`).
fn object_at<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut serde_json::Map<String, Value>> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur.get_mut(key)?;
        }
        for idx in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            cur = cur.get_mut(idx.parse::<usize>().ok()?)?;
        }
    }
    cur.as_object_mut()
}

/// Turns a serde message into a diagnostic with a hint.
fn serde_diag(origin: &Origin, path: &str, message: &str) -> Diagnostic {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = rest
            .split("expected one of ")
            .nth(1)
            .or_else(|| rest.split("expected ").nth(1))
            .map(|s| s.split(", ").map(|f| f.trim_matches('`')).collect())
            .unwrap_or_default();
        let path = if path.ends_with(field) {
            path.to_string()
        } else {
            crate::node::join_key(path, field)
        };
        let mut d = origin.diag(&path, format!("unknown field `{field}`"));
        d = match closest(field, &expected) {
            Some(s) => d.with_hint(format!("did you mean `{s}`?")),
            None if !expected.is_empty() => {
                d.with_hint(format!("allowed here: {}", expected.join(", ")))
            }
            None => d.with_hint("remove the field"),
        };
        return d;
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or("");
        return origin
            .diag(path, format!("missing required field `{field}`"))
            .with_hint(format!("add `{field}:` here"));
    }
    if message.starts_with("invalid type") {
        let what = message.split(" at line").next().unwrap_or(message);
        return origin
            .diag_value(path, what.to_string())
            .with_hint("check the field's type against the Tekton API reference");
    }
    origin
        .diag_value(path, message.to_string())
        .with_hint("check this field against the Tekton API reference")
}

/// Serializes any spec back to JSON for output.
pub fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The text of every YAML file named by `paths` (directories recursively), as `(path, text)`,
/// with diagnostics for what could not be read.
pub fn read_sources<P: AsRef<Path>>(paths: &[P]) -> (Vec<(String, String)>, Diagnostics) {
    let mut files = Vec::new();
    let mut diags = Diagnostics::default();
    for p in paths {
        let p = p.as_ref();
        if p.is_dir() {
            let before = files.len();
            collect_dir(p, &mut files, &mut diags);
            if files.len() == before {
                diags.push(
                    Diagnostic::in_file(&p.display().to_string(), "directory holds no YAML files")
                        .with_hint("pass files ending in .yaml, .yml or .json, or a directory that holds them"),
                );
            }
        } else {
            files.push(p.to_path_buf());
        }
    }
    let mut sources = Vec::new();
    for f in files {
        match std::fs::read(&f) {
            Ok(bytes) => {
                let text = match String::from_utf8(bytes) {
                    Ok(t) => t,
                    Err(_) => {
                        diags.push(
                            Diagnostic::in_file(&f.display().to_string(), "file is not UTF-8 text")
                                .with_hint("pass YAML files holding Tekton objects"),
                        );
                        continue;
                    }
                };
                sources.push((f.display().to_string(), text));
            }
            Err(e) => diags.push(
                Diagnostic::in_file(
                    &f.display().to_string(),
                    format!("failed to read the file: {e}"),
                )
                .with_hint("check the path passed with -f"),
            ),
        }
    }
    (sources, diags)
}

/// One file's documents, or why it has none: invalid YAML, or nothing in it (both positioned in
/// the file, with a hint).
pub fn parse_source(
    path: String,
    text: String,
) -> Result<(Arc<SourceFile>, Vec<Document>), Diagnostic> {
    let source = Arc::new(SourceFile { path, text });
    let start = Pos {
        line: 1,
        col: 1,
        offset: 0,
    };
    match parse_documents(&source.text) {
        Err(e) => Err(Diagnostic::at(
            &source,
            e.pos.unwrap_or(start),
            format!("invalid YAML: {}", e.message),
        )
        .with_hint("fix the YAML syntax; `---` separates documents")),
        Ok(docs) if docs.is_empty() => Err(Diagnostic::at(&source, start, "file holds no objects")
            .with_hint("add a Task, Pipeline, PipelineRun, TaskRun or StepAction")),
        Ok(docs) => Ok((source, docs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_differing_in_case_is_found() {
        let m = "unknown field `mountpath`, expected `name` or `mountPath`";
        assert_eq!(case_variant(m), Some(("mountpath", "mountPath")));
        let m = "unknown field `RunAfter`, expected one of `name`, `runAfter`, `params`";
        assert_eq!(case_variant(m), Some(("RunAfter", "runAfter")));
        assert_eq!(case_variant("unknown field `x`, expected `y`"), None);
    }

    #[test]
    fn objects_are_found_by_path() {
        let mut v = serde_json::json!({"steps": [{"volumeMounts": [{"a": 1}, {"b": 2}]}]});
        let m = object_at(&mut v, "steps[0].volumeMounts[1]").expect("object");
        assert!(m.contains_key("b"));
        assert!(object_at(&mut v, "steps[3]").is_none());
    }
}
