//! Pre-warming objects checked as OpenKruise's admission webhook checks them: one way to choose
//! nodes, whole-number parallelism, deadlines that leave room for a pull and only where they
//! apply, at most 256 images per NodeImage, and image references that parse.

use super::Cx;
use crate::kinds::kruise::{
    CompletionType, ImagePullJobTemplate, IntOrString, LabelSelectorRequirement, MAX_NODE_IMAGES,
    NodeImageSpec, PrewarmSpec,
};
use crate::library::{Object, Origin};
use crate::names::{dns_subdomain_problem, shown};
use crate::prewarm::Prewarm;
use crate::reference::Reference;

/// Checks one object's spec.
pub(crate) fn prewarm(cx: &mut Cx<'_>, o: &Object<Prewarm>) {
    let origin = o.origin.as_ref();
    match &o.spec.spec {
        PrewarmSpec::ImagePullJob(s) => {
            image(cx, origin, "spec.image", &s.image);
            template(cx, origin, &s.template);
        }
        PrewarmSpec::ImageListPullJob(s) => {
            if s.images.is_empty() {
                cx.err(
                    origin,
                    "spec.images",
                    "an ImageListPullJob needs at least one image",
                    "list the images under `images:`",
                );
            }
            for (i, img) in s.images.iter().enumerate() {
                let path = format!("spec.images[{i}]");
                image(cx, origin, &path, img);
                if s.images[..i].contains(img) {
                    cx.err(
                        origin,
                        &path,
                        format!("image `{}` is listed twice", shown(img)),
                        "list each image once",
                    );
                }
            }
            template(cx, origin, &s.template);
        }
        PrewarmSpec::NodeImage(s) => node_image(cx, origin, s),
    }
    if o.kind().namespaced() {
        return;
    }
    if let Some(ns) = &o.meta.namespace {
        cx.err(
            origin,
            "metadata.namespace",
            format!(
                "a NodeImage is cluster-scoped; it has no namespace (`{}`)",
                shown(ns)
            ),
            "drop metadata.namespace",
        );
    }
}

fn image(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, text: &str) {
    if text.is_empty() {
        cx.err(
            origin,
            path,
            "the image is empty",
            "name an image, e.g. `registry.example.com/app:1.2`",
        );
        return;
    }
    if let Err(e) = Reference::parse(text) {
        cx.err(
            origin,
            path,
            e.to_string(),
            "write [registry/]repository[:tag][@sha256:digest]",
        );
    }
}

fn template(cx: &mut Cx<'_>, origin: Option<&Origin>, t: &ImagePullJobTemplate) {
    selectors(cx, origin, t);
    parallelism(cx, origin, t);
    for (i, s) in t.pull_secrets.iter().enumerate() {
        if let Some(why) = dns_subdomain_problem(s) {
            cx.err(
                origin,
                &format!("spec.pullSecrets[{i}]"),
                format!("invalid Secret name `{}`: {why}", shown(s)),
                "name a Secret of the job's namespace",
            );
        }
    }
    if let Some(p) = &t.pull_policy {
        if p.timeout_seconds.is_some_and(|s| s <= 0) {
            cx.err(
                origin,
                "spec.pullPolicy.timeoutSeconds",
                "timeoutSeconds must be positive",
                "give the seconds one pull may take (default 600)",
            );
        }
        if p.backoff_limit.is_some_and(|b| b < 0) {
            cx.err(
                origin,
                "spec.pullPolicy.backoffLimit",
                "backoffLimit must not be negative",
                "give the retries before a node's pull fails (default 3)",
            );
        }
    }
    completion(cx, origin, t);
}

fn selectors(cx: &mut Cx<'_>, origin: Option<&Origin>, t: &ImagePullJobTemplate) {
    if let Some(sel) = &t.selector {
        let labels = sel.match_labels.is_some() || sel.match_expressions.is_some();
        if sel.names.is_some() && labels {
            cx.err(
                origin,
                "spec.selector.names",
                "selector.names and a label selector (matchLabels, matchExpressions) are both set",
                "choose nodes either by name or by labels",
            );
        }
        for (i, n) in sel.names.iter().flatten().enumerate() {
            if let Some(why) = dns_subdomain_problem(n) {
                cx.err(
                    origin,
                    &format!("spec.selector.names[{i}]"),
                    format!("invalid node name `{}`: {why}", shown(n)),
                    "node names are DNS subdomains",
                );
            }
        }
        expressions(
            cx,
            origin,
            "spec.selector",
            sel.match_expressions.as_deref(),
        );
    }
    if let Some(pods) = &t.pod_selector {
        if t.selector.is_some() {
            cx.err(
                origin,
                "spec.podSelector",
                "selector and podSelector are both set",
                "choose nodes either directly (selector) or through their pods (podSelector)",
            );
        }
        expressions(
            cx,
            origin,
            "spec.podSelector",
            pods.match_expressions.as_deref(),
        );
    }
}

fn expressions(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    base: &str,
    list: Option<&[LabelSelectorRequirement]>,
) {
    for (i, e) in list.unwrap_or_default().iter().enumerate() {
        let path = format!("{base}.matchExpressions[{i}]");
        match e.operator.as_str() {
            "In" | "NotIn" if e.values.is_empty() => cx.err(
                origin,
                &format!("{path}.values"),
                format!("operator {} needs values", e.operator),
                "list the label values to compare with",
            ),
            "Exists" | "DoesNotExist" if !e.values.is_empty() => cx.err(
                origin,
                &format!("{path}.values"),
                format!("operator {} takes no values", e.operator),
                "drop `values`",
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => cx.err(
                origin,
                &format!("{path}.operator"),
                format!("unknown operator `{}`", shown(other)),
                "use In, NotIn, Exists or DoesNotExist",
            ),
        }
    }
}

fn parallelism(cx: &mut Cx<'_>, origin: Option<&Origin>, t: &ImagePullJobTemplate) {
    let path = "spec.parallelism";
    match &t.parallelism {
        Some(IntOrString::Int(n)) if *n < 0 => cx.err(
            origin,
            path,
            format!("parallelism must not be negative ({n})"),
            "give the number of nodes that pull at once (0 pauses the job)",
        ),
        Some(IntOrString::String(s)) if s.ends_with('%') => cx.err(
            origin,
            path,
            format!("parallelism `{}` is a percentage", shown(s)),
            "give a number of nodes, e.g. `parallelism: 4`",
        ),
        Some(IntOrString::String(s)) => cx.err(
            origin,
            path,
            format!("parallelism `{}` is not a whole number", shown(s)),
            "give a number of nodes without quotes, e.g. `parallelism: 4`",
        ),
        _ => {}
    }
}

fn completion(cx: &mut Cx<'_>, origin: Option<&Origin>, t: &ImagePullJobTemplate) {
    let c = &t.completion_policy;
    if t.completion() == CompletionType::Never {
        for (field, set) in [
            ("activeDeadlineSeconds", c.active_deadline_seconds.is_some()),
            (
                "ttlSecondsAfterFinished",
                c.ttl_seconds_after_finished.is_some(),
            ),
        ] {
            if set {
                cx.err(
                    origin,
                    &format!("spec.completionPolicy.{field}"),
                    format!("{field} only applies to completionPolicy type Always"),
                    "drop it, or make the job complete with `type: Always`",
                );
            }
        }
        return;
    }
    if let Some(d) = c.active_deadline_seconds {
        let timeout = t.timeout_seconds();
        let path = "spec.completionPolicy.activeDeadlineSeconds";
        if d <= 0 {
            cx.err(
                origin,
                path,
                "activeDeadlineSeconds must be positive",
                "give the seconds the job may run",
            );
        } else if d < timeout {
            cx.err(
                origin,
                path,
                format!(
                    "activeDeadlineSeconds ({d}) is shorter than one pull's timeout (pullPolicy.timeoutSeconds: {timeout})"
                ),
                "raise activeDeadlineSeconds, or lower pullPolicy.timeoutSeconds (default 600)",
            );
        }
    }
    if c.ttl_seconds_after_finished.is_some_and(|t| t < 0) {
        cx.err(
            origin,
            "spec.completionPolicy.ttlSecondsAfterFinished",
            "ttlSecondsAfterFinished must not be negative",
            "give the seconds a finished job is kept (0 deletes it at once)",
        );
    }
}

fn node_image(cx: &mut Cx<'_>, origin: Option<&Origin>, s: &NodeImageSpec) {
    if s.images.len() > MAX_NODE_IMAGES {
        cx.err(
            origin,
            "spec.images",
            format!(
                "a NodeImage lists {} images; at most {MAX_NODE_IMAGES} are allowed",
                s.images.len()
            ),
            "pre-warm fewer images per node",
        );
    }
    for (name, img) in &s.images {
        let path = format!("spec.images.{name}");
        match Reference::parse(name) {
            Err(e) => {
                cx.err(
                    origin,
                    &path,
                    e.to_string(),
                    "key each image by its name without a tag",
                );
                continue;
            }
            Ok(r) if r.tag.is_some() || r.digest.is_some() => {
                cx.err(
                    origin,
                    &path,
                    format!("image name `{}` carries a tag or digest", shown(name)),
                    "key the image by its name and list versions under `tags`",
                );
                continue;
            }
            Ok(_) => {}
        }
        for (i, t) in img.tags.iter().enumerate() {
            let at = format!("{path}.tags[{i}].tag");
            let sep = if t.tag.contains(':') { '@' } else { ':' };
            if t.tag.is_empty() {
                cx.err(origin, &at, "the tag is empty", "give a tag or a digest");
            } else if let Err(e) = Reference::parse(&format!("{name}{sep}{}", t.tag)) {
                cx.err(
                    origin,
                    &at,
                    e.to_string(),
                    "give a tag or a `sha256:` digest",
                );
            }
            if img.tags[..i].iter().any(|o| o.tag == t.tag) {
                cx.err(
                    origin,
                    &at,
                    format!("tag `{}` is listed twice", shown(&t.tag)),
                    "list each tag once",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::{Limits, validate};
    use crate::{Diagnostics, Library};

    /// Every problem in `yaml`, loading and validating, as `validate` prints them.
    fn report(yaml: &str) -> String {
        let mut lib = Library::default();
        let mut diags = Diagnostics::default();
        lib.add_source("job.yaml".into(), yaml.into(), &mut diags);
        if diags.is_empty() {
            diags = validate(&lib, &Limits::default());
        }
        let fields: Vec<String> = diags
            .0
            .iter()
            .map(|d| d.field.clone().unwrap_or_default())
            .collect();
        format!("{}fields: {fields:?}\n", diags.render_plain())
    }

    const HEAD: &str = "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata:\n  name: warm\nspec:\n  image: registry.example.com/app:1.2\n";

    #[test]
    fn a_plain_job_is_valid_and_gets_openkruise_s_defaults() {
        let mut lib = Library::default();
        let mut diags = Diagnostics::default();
        lib.add_source("job.yaml".into(), HEAD.into(), &mut diags);
        assert!(diags.is_empty(), "{}", diags.render_plain());
        assert!(validate(&lib, &Limits::default()).is_empty());
        let doc = lib.prewarm[0].to_document();
        assert_eq!(doc["spec"]["parallelism"], 1);
        assert_eq!(doc["spec"]["pullPolicy"]["timeoutSeconds"], 600);
        assert_eq!(doc["spec"]["pullPolicy"]["backoffLimit"], 3);
        assert_eq!(doc["spec"]["completionPolicy"]["type"], "Always");
        assert_eq!(doc["spec"]["imagePullPolicy"], "IfNotPresent");
    }

    #[test]
    fn every_kind_and_version_loads() {
        let yaml = "apiVersion: apps.kruise.io/v1beta1\nkind: ImageListPullJob\nmetadata: {name: l, namespace: team-a}\nspec:\n  images: [alpine:3.20, busybox]\n  selector: {names: [node-1, node-2]}\n  completionPolicy: {type: Never}\n---\napiVersion: apps.kruise.io/v1alpha1\nkind: NodeImage\nmetadata: {name: node-1}\nspec:\n  images:\n    docker.io/library/alpine:\n      tags:\n      - {tag: '3.20', version: 2, pullPolicy: {timeoutSeconds: 60}}\nstatus:\n  desired: 1\n  imageStatuses:\n    docker.io/library/alpine:\n      tags: [{tag: '3.20', phase: Succeeded, imageID: 'sha256:ab', progress: 100}]\n";
        assert_eq!(report(yaml), "fields: []\n");
    }

    macro_rules! refused {
        ($name:ident, $yaml:expr) => {
            #[test]
            fn $name() {
                insta::assert_snapshot!(stringify!($name), report(&$yaml));
            }
        };
    }

    refused!(
        names_and_labels_together,
        format!("{HEAD}  selector:\n    names: [node-1]\n    matchLabels: {{pool: ci}}\n")
    );
    refused!(
        selector_and_pod_selector_together,
        format!("{HEAD}  selector: {{names: [a]}}\n  podSelector: {{matchLabels: {{app: web}}}}\n")
    );
    refused!(
        parallelism_as_a_percentage,
        format!("{HEAD}  parallelism: 50%\n")
    );
    refused!(
        deadline_shorter_than_a_pull,
        format!(
            "{HEAD}  pullPolicy: {{timeoutSeconds: 900}}\n  completionPolicy:\n    type: Always\n    activeDeadlineSeconds: 300\n"
        )
    );
    refused!(
        deadline_and_ttl_with_never,
        format!(
            "{HEAD}  completionPolicy:\n    type: Never\n    activeDeadlineSeconds: 1200\n    ttlSecondsAfterFinished: 60\n"
        )
    );
    refused!(
        a_bad_image_reference,
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {name: warm}\nspec:\n  image: 'registry.example.com/app:'\n"
    );
    refused!(
        an_unknown_field_with_a_suggestion,
        format!("{HEAD}  paralelism: 2\n")
    );
    refused!(
        an_unknown_version,
        "apiVersion: apps.kruise.io/v2\nkind: ImagePullJob\nmetadata: {name: warm}\nspec: {image: a}\n"
    );
    refused!(
        an_unknown_completion_type,
        format!("{HEAD}  completionPolicy: {{type: Sometimes}}\n")
    );

    #[test]
    fn a_node_image_holds_at_most_256_images() {
        let mut yaml = String::from(
            "apiVersion: apps.kruise.io/v1alpha1\nkind: NodeImage\nmetadata: {name: node-1}\nspec:\n  images:\n",
        );
        for i in 0..257 {
            yaml.push_str(&format!(
                "    example.com/img-{i}: {{tags: [{{tag: v1}}]}}\n"
            ));
        }
        insta::assert_snapshot!(report(&yaml));
        // 256 are fine.
        let fine = yaml.replace("    example.com/img-256: {tags: [{tag: v1}]}\n", "");
        assert_eq!(report(&fine), "fields: []\n");
    }
}
