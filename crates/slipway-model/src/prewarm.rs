//! Reading OpenKruise's pre-warming objects (ImagePullJob, ImageListPullJob, NodeImage) from a
//! YAML document into typed objects, with located diagnostics for what does not fit.

use serde_json::Value;

use crate::diagnostic::Diagnostics;
use crate::kinds::k8s::ObjectMeta;
use crate::kinds::kruise::{
    GROUP, ImageListPullJobSpec, ImageListPullJobStatus, ImagePullJobSpec, ImagePullJobStatus,
    ImagePullJobTemplate, NodeImageSpec, NodeImageStatus, PrewarmKind, PrewarmSpec, VERSIONS,
};
use crate::library::{Library, Object, Origin, typed};
use crate::suggest::closest;

/// A pre-warming object: its spec and, when the document has one, its status as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Prewarm {
    /// The spec.
    pub spec: PrewarmSpec,
    /// The status (checked for shape, kept as given).
    pub status: Option<Value>,
}

impl Object<Prewarm> {
    /// Its kind.
    pub fn kind(&self) -> PrewarmKind {
        self.spec.spec.kind()
    }

    /// The object as the API serves it: apiVersion, kind, metadata, the spec with OpenKruise's
    /// defaults filled in, and the status when there is one.
    pub fn to_document(&self) -> Value {
        let mut spec = self.spec.spec.clone();
        spec.default_fields();
        let mut o = serde_json::json!({
            "apiVersion": self.api_version,
            "kind": self.kind().kind(),
            "metadata": self.meta,
            "spec": spec.to_value(),
        });
        if let Some(s) = &self.spec.status {
            o["status"] = s.clone();
        }
        o
    }
}

const TOP_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

/// Adds the `apps.kruise.io` document `value` (read at `origin`) to `lib`, or says why not.
pub(crate) fn add(
    lib: &mut Library,
    origin: Origin,
    api_version: &str,
    kind: &str,
    value: Value,
    diags: &mut Diagnostics,
) {
    let version = api_version.split_once('/').map_or("", |(_, v)| v);
    if !VERSIONS.contains(&version) {
        diags.push(
            origin
                .diag_value(
                    "apiVersion",
                    format!("unsupported apiVersion `{api_version}`"),
                )
                .with_hint(format!(
                    "use {GROUP}/v1alpha1 or {GROUP}/v1beta1 (the same fields)"
                )),
        );
        return;
    }
    let Some(k) = PrewarmKind::from_kind(kind) else {
        let known: Vec<&str> = PrewarmKind::ALL.iter().map(|k| k.kind()).collect();
        let d = origin.diag_value("kind", format!("unsupported kind `{kind}` of {GROUP}"));
        diags.push(match closest(kind, &known) {
            Some(s) => d.with_hint(format!("did you mean `{s}`?")),
            None => d.with_hint(format!("slipway serves {} of {GROUP}", known.join(", "))),
        });
        return;
    };
    let before = diags.len();
    unknown_keys(&origin, &value, "", TOP_FIELDS, kind, diags);
    let mut ignored = Vec::new();
    let meta = typed::<ObjectMeta>(
        &origin,
        value.get("metadata").unwrap_or(&Value::Null),
        "metadata",
        diags,
        &mut ignored,
    );
    let spec_value = value
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let spec = typed_spec(k, &origin, &spec_value, diags, &mut ignored);
    let status = value.get("status").cloned();
    if let Some(s) = &status {
        typed_status(k, &origin, s, diags, &mut ignored);
    }
    lib.warnings.extend(ignored);
    // The loader's generic hint speaks of Tekton.
    for d in diags.0.iter_mut().skip(before) {
        if d.hint
            .as_deref()
            .is_some_and(|h| h.contains("Tekton API reference"))
        {
            d.hint = Some(format!("check the field against OpenKruise's {GROUP} API"));
        }
    }
    let (Some(meta), Some(spec)) = (meta, spec) else {
        return;
    };
    if diags.len() > before {
        return;
    }
    let duplicate = lib.prewarm.iter().any(|o| {
        o.kind() == k
            && o.meta.name.is_some()
            && o.meta.name == meta.name
            && (!k.namespaced() || o.meta.namespace == meta.namespace)
            && o.origin
                .as_ref()
                .is_some_and(|x| x.source.path == origin.source.path)
    });
    if duplicate {
        diags.push(
            origin
                .diag_value(
                    "metadata.name",
                    format!(
                        "duplicate {kind} `{}`",
                        meta.name.clone().unwrap_or_default()
                    ),
                )
                .with_hint("each object of a kind needs its own name"),
        );
        return;
    }
    lib.prewarm.push(Object {
        api_version: api_version.to_string(),
        meta,
        spec: Prewarm { spec, status },
        origin: Some(origin),
    });
}

fn typed_spec(
    k: PrewarmKind,
    origin: &Origin,
    v: &Value,
    diags: &mut Diagnostics,
    warnings: &mut Vec<crate::Diagnostic>,
) -> Option<PrewarmSpec> {
    if k == PrewarmKind::NodeImage {
        let spec = typed::<NodeImageSpec>(origin, v, "spec", diags, warnings)?;
        return Some(PrewarmSpec::NodeImage(spec));
    }
    // The template is typed on its own so that a bad value is reported at its own field (a
    // flattened struct would report the whole spec).
    let field = if k == PrewarmKind::ImagePullJob {
        "image"
    } else {
        "images"
    };
    let mut rest = v.clone();
    let images = rest.as_object_mut().and_then(|m| m.remove(field));
    let template = typed::<ImagePullJobTemplate>(origin, &rest, "spec", diags, warnings);
    let Some(images) = images else {
        diags.push(
            origin
                .diag("spec", format!("the {} has no spec.{field}", k.kind()))
                .with_hint(format!("add `{field}:` with the image(s) to pull")),
        );
        return None;
    };
    let path = format!("spec.{field}");
    if k == PrewarmKind::ImagePullJob {
        let image = typed::<String>(origin, &images, &path, diags, warnings)?;
        Some(PrewarmSpec::ImagePullJob(ImagePullJobSpec {
            image,
            template: template?,
        }))
    } else {
        let images = typed::<Vec<String>>(origin, &images, &path, diags, warnings)?;
        Some(PrewarmSpec::ImageListPullJob(ImageListPullJobSpec {
            images,
            template: template?,
        }))
    }
}

fn typed_status(
    k: PrewarmKind,
    origin: &Origin,
    v: &Value,
    diags: &mut Diagnostics,
    warnings: &mut Vec<crate::Diagnostic>,
) {
    match k {
        PrewarmKind::ImagePullJob => {
            typed::<ImagePullJobStatus>(origin, v, "status", diags, warnings);
        }
        PrewarmKind::ImageListPullJob => {
            typed::<ImageListPullJobStatus>(origin, v, "status", diags, warnings);
        }
        PrewarmKind::NodeImage => {
            typed::<NodeImageStatus>(origin, v, "status", diags, warnings);
        }
    }
}

/// Reports keys of the mapping `v` (at `path`) that are not in `known`.
fn unknown_keys(
    origin: &Origin,
    v: &Value,
    path: &str,
    known: &[&str],
    kind: &str,
    diags: &mut Diagnostics,
) {
    let Some(map) = v.as_object() else {
        return;
    };
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        let at = crate::node::join_key(path, key);
        let d = origin.diag(&at, format!("unknown field `{key}` in {kind}"));
        diags.push(match closest(key, known) {
            Some(s) => d.with_hint(format!("did you mean `{s}`?")),
            None => d.with_hint(format!("allowed here: {}", known.join(", "))),
        });
    }
}
