//! Object metadata: names, `generateName` prefixes and namespaces as Kubernetes checks them,
//! slipway's annotations, and the keys of ConfigMaps and Secrets.

use indexmap::IndexMap;

use super::Cx;
use crate::annotations;
use crate::kinds::k8s::ObjectMeta;
use crate::library::Origin;
use crate::names::{
    config_key_problem, dns_label_problem, dns_subdomain_problem, generate_name_problem, shown,
};

const NAME_HINT: &str =
    "use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";

/// Checks an object's name (or `generateName`), namespace and slipway annotations.
pub(crate) fn meta(cx: &mut Cx<'_>, origin: Option<&Origin>, kind: &str, meta: &ObjectMeta) {
    match (&meta.name, &meta.generate_name) {
        (Some(n), _) => {
            if let Some(why) = dns_subdomain_problem(n) {
                cx.err(
                    origin,
                    "metadata.name",
                    format!("invalid {kind} name `{}`: {why}", shown(n)),
                    NAME_HINT,
                );
            }
        }
        (None, Some(p)) => {
            if let Some(why) = generate_name_problem(p) {
                cx.err(
                    origin,
                    "metadata.generateName",
                    format!("invalid {kind} generateName `{}`: {why}", shown(p)),
                    format!("{NAME_HINT} (a trailing '-' is allowed)"),
                );
            }
        }
        (None, None) => cx.err(
            origin,
            "metadata",
            format!("{kind} has no metadata.name"),
            "set metadata.name so others can refer to it",
        ),
    }
    if let Some(ns) = &meta.namespace
        && let Some(why) = dns_label_problem(ns)
    {
        cx.err(
            origin,
            "metadata.namespace",
            format!("invalid namespace `{}`: {why}", shown(ns)),
            "use lowercase letters, digits and '-', at most 63 characters",
        );
    }
    for (key, value) in &meta.annotations {
        if let Err(e) = annotations::check(key, value) {
            cx.err(
                origin,
                &format!("metadata.annotations.{key}"),
                format!("invalid annotation {key} `{}`: {e}", shown(value)),
                e.hint(key),
            );
        }
    }
}

/// Checks the keys of a ConfigMap's or Secret's entries (`field` is `data`, `stringData`, …).
pub(crate) fn keys<V>(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    kind: &str,
    field: &str,
    entries: &IndexMap<String, V>,
) {
    for key in entries.keys() {
        if let Some(why) = config_key_problem(key) {
            cx.err(
                origin,
                &format!("{field}.{key}"),
                format!("invalid {kind} key `{}`: {why}", shown(key)),
                "use letters, digits, '-', '_' and '.' (each key becomes a file name)",
            );
        }
    }
}
