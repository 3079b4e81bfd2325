//! Where data lives: workspace bindings, volumes and mounts. Names of claims, ConfigMaps and
//! Secrets must be object names; sub-paths and projected paths must stay inside their volume;
//! mount paths must be absolute without `..`. Values holding `$(...)` are checked once
//! substituted, by the executor.

use serde_json::Value;

use super::Cx;
use crate::kinds::k8s::{Volume, VolumeMount};
use crate::kinds::run::{ProjectionSource, WorkspaceBinding};
use crate::library::Origin;
use crate::names::{
    config_key_problem, dns_label_problem, dns_subdomain_problem, local_path_problem,
    mount_path_problem, shown,
};

const NAME_HINT: &str = "use the name of an object: lowercase letters, digits, '-' and '.'";
const PATH_HINT: &str = "use a relative path inside the volume, without '..'";
const MOUNT_HINT: &str = "use an absolute path without '..', such as /workspace/source";

fn substituted(s: &str) -> bool {
    s.contains("$(")
}

fn object_name(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, what: &str, name: &str) {
    if !substituted(name)
        && let Some(why) = dns_subdomain_problem(name)
    {
        cx.err(
            origin,
            path,
            format!("invalid {what} `{}`: {why}", shown(name)),
            NAME_HINT,
        );
    }
}

/// A relative path that must stay below where it is joined.
pub(crate) fn local_path(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    path: &str,
    what: &str,
    p: &str,
) {
    if !substituted(p)
        && let Some(why) = local_path_problem(p)
    {
        cx.err(
            origin,
            path,
            format!("invalid {what} `{}`: {why}", shown(p)),
            PATH_HINT,
        );
    }
}

/// An absolute path inside a step.
pub(crate) fn mount_path(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, p: &str) {
    if !substituted(p)
        && let Some(why) = mount_path_problem(p)
    {
        cx.err(
            origin,
            path,
            format!("invalid mountPath `{}`: {why}", shown(p)),
            MOUNT_HINT,
        );
    }
}

/// A ConfigMap or Secret projected as files: its name, and each item's key and path.
fn projection(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    path: &str,
    what: &str,
    p: &ProjectionSource,
) {
    let field = if what == "Secret" {
        "secretName"
    } else {
        "name"
    };
    if let Some(n) = p.object_name() {
        object_name(
            cx,
            origin,
            &format!("{path}.{field}"),
            &format!("{what} name"),
            n,
        );
    }
    for (i, item) in p.items.iter().flatten().enumerate() {
        let at = format!("{path}.items[{i}]");
        if !substituted(&item.key)
            && let Some(why) = config_key_problem(&item.key)
        {
            cx.err(
                origin,
                &format!("{at}.key"),
                format!("invalid {what} key `{}`: {why}", shown(&item.key)),
                "use letters, digits, '-', '_' and '.'",
            );
        }
        if item.path.is_empty() {
            cx.err(
                origin,
                &format!("{at}.path"),
                "projected item has an empty path",
                "give the file a relative path such as config.json",
            );
        }
        local_path(cx, origin, &format!("{at}.path"), "item path", &item.path);
    }
}

/// A run's workspace binding at `path`.
pub(crate) fn binding(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, w: &WorkspaceBinding) {
    if let Some(s) = &w.sub_path {
        local_path(cx, origin, &format!("{path}.subPath"), "subPath", s);
    }
    if let Some(c) = &w.persistent_volume_claim {
        object_name(
            cx,
            origin,
            &format!("{path}.persistentVolumeClaim.claimName"),
            "claimName",
            &c.claim_name,
        );
    }
    if let Some(c) = &w.config_map {
        projection(cx, origin, &format!("{path}.configMap"), "ConfigMap", c);
    }
    if let Some(s) = &w.secret {
        projection(cx, origin, &format!("{path}.secret"), "Secret", s);
    }
}

/// A Task's volume at `path`: its name (a DNS label, as Kubernetes requires) and source.
pub(crate) fn volume(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, v: &Volume) {
    if let Some(why) = dns_label_problem(&v.name) {
        cx.err(
            origin,
            &format!("{path}.name"),
            format!("invalid volume name `{}`: {why}", shown(&v.name)),
            "use lowercase letters, digits and '-'",
        );
    }
    for (field, what) in [("configMap", "ConfigMap"), ("secret", "Secret")] {
        if let Some(src) = v.source.get(field)
            && let Ok(p) = serde_json::from_value::<ProjectionSource>(src.clone())
        {
            projection(cx, origin, &format!("{path}.{field}"), what, &p);
        }
    }
    if let Some(Value::String(c)) = v
        .source
        .get("persistentVolumeClaim")
        .and_then(|c| c.get("claimName"))
    {
        object_name(
            cx,
            origin,
            &format!("{path}.persistentVolumeClaim.claimName"),
            "claimName",
            c,
        );
    }
}

/// A step's volume mount at `path`.
pub(crate) fn volume_mount(cx: &mut Cx<'_>, origin: Option<&Origin>, path: &str, m: &VolumeMount) {
    mount_path(cx, origin, &format!("{path}.mountPath"), &m.mount_path);
    if let Some(s) = &m.sub_path {
        local_path(cx, origin, &format!("{path}.subPath"), "subPath", s);
    }
}
