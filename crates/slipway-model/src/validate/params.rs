//! Param declarations and the values passed to them.

use std::collections::HashSet;

use super::Cx;
use crate::library::Origin;
use crate::param::{Param, ParamSpec, ParamType, ParamValue};
use crate::subst::references;

/// Checks declared params: unique valid names, defaults matching types, enums.
pub(crate) fn specs(cx: &mut Cx<'_>, origin: Option<&Origin>, base: &str, specs: &[ParamSpec]) {
    let mut seen = HashSet::new();
    for (i, p) in specs.iter().enumerate() {
        let path = format!("{base}[{i}]");
        if !seen.insert(p.name.as_str()) {
            cx.err(
                origin,
                &format!("{path}.name"),
                format!("duplicate param `{}`", p.name),
                "give each param its own name",
            );
        }
        if !valid_param_name(&p.name) {
            cx.err(origin, &format!("{path}.name"), format!("invalid param name `{}`", p.name), "param names hold letters, digits, '-', '_' and '.', and start with a letter or '_'");
        }
        let ty = p.effective_type();
        if let Some(d) = &p.default
            && d.kind() != ty
        {
            cx.err(
                origin,
                &format!("{path}.default"),
                format!(
                    "param `{}` is of type {ty} but its default is {}",
                    p.name,
                    article(d.kind())
                ),
                format!("give a default of type {ty}, or change `type`"),
            );
        }
        if ty == ParamType::Object && p.properties.is_none() && p.kind.is_some() {
            cx.err(
                origin,
                &path,
                format!("object param `{}` has no properties", p.name),
                "list the object's keys under `properties`",
            );
        }
        if let Some(allowed) = &p.allowed {
            if ty != ParamType::String {
                cx.err(
                    origin,
                    &format!("{path}.enum"),
                    format!("param `{}` has an enum but is of type {ty}", p.name),
                    "enums are allowed on string params only",
                );
            }
            let unique: HashSet<_> = allowed.iter().collect();
            if unique.len() != allowed.len() {
                cx.err(
                    origin,
                    &format!("{path}.enum"),
                    format!("param `{}` has duplicate enum values", p.name),
                    "list each allowed value once",
                );
            }
            if let Some(ParamValue::String(d)) = &p.default
                && !allowed.contains(d)
            {
                cx.err(
                    origin,
                    &format!("{path}.default"),
                    format!("default `{d}` of param `{}` is not in its enum", p.name),
                    format!("use one of: {}", allowed.join(", ")),
                );
            }
        }
    }
}

fn article(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "a string",
        ParamType::Array => "an array",
        ParamType::Object => "an object",
    }
}

/// Param names as Tekton allows them.
pub(crate) fn valid_param_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Where passed params sit: the list's path, and where to point when one is missing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    /// Path of the `params` list.
    pub base: &'a str,
    /// Path to point at for missing params.
    pub at: &'a str,
}

/// Checks values passed to declared params: required ones present, types and enums respected.
/// `allow_extra` is true where Tekton ignores params the target does not declare.
pub(crate) fn passed(
    cx: &mut Cx<'_>,
    origin: Option<&Origin>,
    site: Site<'_>,
    values: &[Param],
    decls: &[ParamSpec],
    target: &str,
    also_provided: &[&str],
) {
    let mut seen = HashSet::new();
    for (i, v) in values.iter().enumerate() {
        let path = format!("{}[{i}]", site.base);
        if !seen.insert(v.name.as_str()) {
            cx.err(
                origin,
                &format!("{path}.name"),
                format!("param `{}` is passed twice", v.name),
                "pass each param once",
            );
        }
        let Some(d) = decls.iter().find(|d| d.name == v.name) else {
            continue;
        };
        let ty = d.effective_type();
        let is_ref = v.value.strings().iter().any(|s| !references(s).is_empty());
        if v.value.kind() != ty && !is_ref {
            cx.err(
                origin,
                &format!("{path}.value"),
                format!(
                    "param `{}` of {target} is of type {ty} but {} was passed",
                    v.name,
                    article(v.value.kind())
                ),
                format!("pass {}", article(ty)),
            );
        }
        if let (Some(allowed), ParamValue::String(s)) = (&d.allowed, &v.value)
            && !is_ref
            && !allowed.contains(s)
        {
            cx.err(
                origin,
                &format!("{path}.value"),
                format!("value `{s}` of param `{}` is not in its enum", v.name),
                format!("use one of: {}", allowed.join(", ")),
            );
        }
    }
    let missing: Vec<&str> = decls
        .iter()
        .filter(|d| {
            d.default.is_none()
                && !seen.contains(d.name.as_str())
                && !also_provided.contains(&d.name.as_str())
        })
        .map(|d| d.name.as_str())
        .collect();
    if !missing.is_empty() {
        cx.err(
            origin,
            site.at,
            format!("missing param(s) {} required by {target}", quoted(&missing)),
            format!(
                "pass them under `params:` (e.g. `- name: {}` with a `value:`)",
                missing[0]
            ),
        );
    }
}

/// `a`, `b` and `c` in backticks.
pub(crate) fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
