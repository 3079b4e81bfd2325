//! Kubernetes' list selectors: `labelSelector` (`a=b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
//! `a notin (x)`, comma-separated and ANDed) and `fieldSelector` (`metadata.name=`,
//! `metadata.namespace=`, with `=`, `==` or `!=`).

use serde_json::Value;

use crate::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Label>);

impl LabelSelector {
    /// Parses Kubernetes' selector syntax; a 400 naming the part it could not read.
    pub fn parse(text: &str) -> Result<LabelSelector, ApiError> {
        let mut out = Vec::new();
        for part in split_top(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            out.push(requirement(part).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "labelSelector: cannot read `{part}`; use key=value, key!=value, key, !key, key in (a,b) or key notin (a,b)"
                ))
            })?);
        }
        Ok(LabelSelector(out))
    }

    /// Whether an object's `metadata.labels` satisfy it.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Label::Equals(k, v) => get(k) == Some(v),
            Label::NotEquals(k, v) => get(k) != Some(v),
            Label::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Label::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Label::Exists(k) => get(k).is_some(),
            Label::Absent(k) => get(k).is_none(),
        })
    }
}

/// Splits at commas outside parentheses.
fn split_top(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn word_ok(w: &str) -> bool {
    !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn requirement(part: &str) -> Option<Label> {
    if let Some(k) = part.strip_prefix('!') {
        let k = k.trim();
        return word_ok(k).then(|| Label::Absent(k.to_string()));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return pair(k, v).map(|(k, v)| Label::NotEquals(k, v));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return pair(k, v).map(|(k, v)| Label::Equals(k, v));
    }
    for (op, notin) in [(" notin ", true), (" in ", false)] {
        if let Some((k, set)) = part.split_once(op) {
            let k = k.trim();
            let set = set.trim().strip_prefix('(')?.strip_suffix(')')?;
            let values: Vec<String> = set.split(',').map(|v| v.trim().to_string()).collect();
            if !word_ok(k) || values.iter().any(|v| !v.is_empty() && !word_ok(v)) {
                return None;
            }
            let k = k.to_string();
            return Some(if notin {
                Label::NotIn(k, values)
            } else {
                Label::In(k, values)
            });
        }
    }
    word_ok(part).then(|| Label::Exists(part.to_string()))
}

fn pair(k: &str, v: &str) -> Option<(String, String)> {
    let (k, v) = (k.trim(), v.trim());
    (word_ok(k) && (v.is_empty() || word_ok(v))).then(|| (k.to_string(), v.to_string()))
}

/// A parsed `fieldSelector` over `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `field=value`, `field==value` or `field!=value`, comma-separated.
    pub fn parse(text: &str) -> Result<FieldSelector, ApiError> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "fieldSelector: cannot read `{part}`; use metadata.name=NAME"
                )));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace") {
                return Err(ApiError::BadRequest(format!(
                    "fieldSelector: `{field}` is not a supported field; use metadata.name or metadata.namespace"
                )));
            }
            out.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    /// Whether the object's fields satisfy it.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let key = field.trim_start_matches("metadata.");
            let got = object["metadata"][key].as_str().unwrap_or("");
            (got == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors_read_as_kubernetes_reads_them() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        for (sel, want) in [
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app!=web", false),
            ("app in (api, web)", true),
            ("tier notin (front)", false),
            ("gone notin (x)", true),
            ("app", true),
            ("!app", false),
            ("!gone", true),
            ("", true),
        ] {
            let s = LabelSelector::parse(sel).expect(sel);
            assert_eq!(s.matches(&o), want, "{sel}");
        }
        assert!(LabelSelector::parse("a in x").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
    }

    #[test]
    fn field_selectors_know_name_and_namespace_only() {
        let o = obj(json!({}));
        assert!(
            FieldSelector::parse("metadata.name=a")
                .expect("sel")
                .matches(&o)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .expect("sel")
                .matches(&o)
        );
        assert!(
            FieldSelector::parse("metadata.namespace==ns")
                .expect("sel")
                .matches(&o)
        );
        assert!(FieldSelector::parse("spec.image=x").is_err());
    }
}
