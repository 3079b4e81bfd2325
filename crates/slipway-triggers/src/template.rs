//! TriggerTemplates: params from bindings or defaults, put into the resource templates'
//! strings as `$(tt.params.NAME)` (and the older `$(params.NAME)`), plus `$(uid)`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::kinds::TriggerTemplateSpec;

/// The resources, filled in. `bound` are the bindings' values; `uid` is unique per event.
pub fn fill(
    template: &TriggerTemplateSpec,
    bound: &BTreeMap<String, String>,
    uid: &str,
) -> Result<Vec<Value>, String> {
    let mut values = BTreeMap::new();
    for p in &template.params {
        let v = bound.get(&p.name).or(p.default.as_ref()).ok_or_else(|| {
            format!(
                "param `{}` has no value: no binding gives it and it has no default",
                p.name
            )
        })?;
        values.insert(p.name.clone(), v.clone());
    }
    template
        .resource_templates
        .iter()
        .map(|r| substitute(r, &values, uid))
        .collect()
}

fn substitute(v: &Value, values: &BTreeMap<String, String>, uid: &str) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(text(s, values, uid)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute(x, values, uid))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), substitute(x, values, uid)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn text(s: &str, values: &BTreeMap<String, String>, uid: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let name = &after[..end];
        let param = name
            .strip_prefix("tt.params.")
            .or_else(|| name.strip_prefix("params."));
        match (param, name) {
            (Some(p), _) => out.push_str(values.get(p).ok_or_else(|| {
                format!("`$({name})` refers to a param the TriggerTemplate does not declare")
            })?),
            (None, "uid") => out.push_str(uid),
            // Anything else ($(tasks...), $(context...)) belongs to the run, not the template.
            (None, _) => out.push_str(&rest[i..i + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> TriggerTemplateSpec {
        serde_json::from_value(serde_json::json!({
            "params": [{"name": "revision"}, {"name": "url", "default": "https://x"}],
            "resourcetemplates": [{
                "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
                "metadata": {"generateName": "build-$(uid)-"},
                "spec": {"params": [
                    {"name": "rev", "value": "$(tt.params.revision)"},
                    {"name": "url", "value": "$(params.url)"},
                    {"name": "keep", "value": "$(tasks.a.results.b)"}
                ]}
            }]
        }))
        .expect("template")
    }

    #[test]
    fn params_come_from_bindings_then_defaults() {
        let bound = BTreeMap::from([("revision".to_string(), "abc".to_string())]);
        let out = fill(&template(), &bound, "u1").expect("filled");
        assert_eq!(out[0]["metadata"]["generateName"], "build-u1-");
        assert_eq!(out[0]["spec"]["params"][0]["value"], "abc");
        assert_eq!(out[0]["spec"]["params"][1]["value"], "https://x");
        assert_eq!(out[0]["spec"]["params"][2]["value"], "$(tasks.a.results.b)");
        let err = fill(&template(), &BTreeMap::new(), "u").expect_err("an error");
        assert!(err.contains("`revision` has no value"), "{err}");
    }
}
