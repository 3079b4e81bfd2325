//! Binding passed params to declarations: defaults, object merging, propagation.

use indexmap::IndexMap;
use slipway_model::subst::{Scope, references};
use slipway_model::{Param, ParamSpec, ParamType, ParamValue};

use crate::error::Failure;

/// Binds `passed` to `decls`. Defaults are substituted with `defaults_scope` (context variables).
/// With `propagate`, params that are passed but not declared are kept (embedded specs see them).
pub fn bind(
    decls: &[ParamSpec],
    passed: &[Param],
    defaults_scope: &Scope,
    propagate: bool,
) -> Result<IndexMap<String, ParamValue>, Failure> {
    let mut out = IndexMap::new();
    for d in decls {
        let given = passed.iter().find(|p| p.name == d.name).map(|p| &p.value);
        let default = d.default.as_ref().map(|v| defaults_scope.subst_value(v));
        let ty = d.effective_type();
        let value = match (given, default) {
            (Some(ParamValue::Object(g)), Some(ParamValue::Object(mut def)))
                if ty == ParamType::Object =>
            {
                for (k, v) in g {
                    def.insert(k.clone(), v.clone());
                }
                ParamValue::Object(def)
            }
            // A reference that could not be resolved to the right type falls back to the default,
            // as Tekton does when a StepAction receives an unusable value.
            (Some(g), Some(def)) if g.kind() != ty && is_unresolved(g) => def,
            (Some(g), _) => g.clone(),
            (None, Some(def)) => def,
            (None, None) => {
                return Err(Failure::new(
                    "ParameterMissing",
                    format!("param `{}` has no value and no default", d.name),
                ));
            }
        };
        if value.kind() != ty && !is_unresolved(&value) {
            return Err(Failure::new(
                "ParameterTypeMismatch",
                format!(
                    "param `{}` is of type {ty} but got a value of type {}",
                    d.name,
                    value.kind()
                ),
            ));
        }
        if let (Some(allowed), ParamValue::String(s)) = (&d.allowed, &value)
            && !allowed.contains(s)
        {
            return Err(Failure::new(
                "InvalidParamValue",
                format!(
                    "param `{}` value `{s}` is not in the enum [{}]",
                    d.name,
                    allowed.join(", ")
                ),
            ));
        }
        out.insert(d.name.clone(), value);
    }
    if propagate {
        for p in passed {
            out.entry(p.name.clone()).or_insert_with(|| p.value.clone());
        }
    }
    Ok(out)
}

fn is_unresolved(v: &ParamValue) -> bool {
    v.strings().iter().any(|s| !references(s).is_empty())
}

/// Puts bound params into a scope as `params.<name>`.
pub fn into_scope(scope: &mut Scope, params: &IndexMap<String, ParamValue>) {
    for (k, v) in params {
        scope.set(format!("params.{k}"), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> ParamSpec {
        serde_json::from_str(json).expect("param spec")
    }

    #[test]
    fn object_values_merge_over_defaults() {
        let d = spec(r#"{"name":"o","properties":{"a":{},"b":{}},"default":{"a":"1","b":"2"}}"#);
        let passed = vec![Param {
            name: "o".into(),
            value: ParamValue::Object([("b".to_string(), "x".to_string())].into_iter().collect()),
        }];
        let bound = bind(&[d], &passed, &Scope::new(), false).expect("binds");
        let ParamValue::Object(o) = &bound["o"] else {
            panic!("object")
        };
        assert_eq!(o["a"], "1");
        assert_eq!(o["b"], "x");
    }

    #[test]
    fn missing_and_mistyped_params_fail() {
        let d = spec(r#"{"name":"s"}"#);
        assert_eq!(
            bind(std::slice::from_ref(&d), &[], &Scope::new(), false)
                .expect_err("missing")
                .reason,
            "ParameterMissing"
        );
        let passed = vec![Param {
            name: "s".into(),
            value: ParamValue::Array(vec![]),
        }];
        assert_eq!(
            bind(&[d], &passed, &Scope::new(), false)
                .expect_err("type")
                .reason,
            "ParameterTypeMismatch"
        );
    }

    #[test]
    fn propagation_keeps_undeclared_params() {
        let passed = vec![Param {
            name: "extra".into(),
            value: ParamValue::String("v".into()),
        }];
        assert!(
            bind(&[], &passed, &Scope::new(), true)
                .expect("binds")
                .contains_key("extra")
        );
        assert!(
            !bind(&[], &passed, &Scope::new(), false)
                .expect("binds")
                .contains_key("extra")
        );
    }
}
