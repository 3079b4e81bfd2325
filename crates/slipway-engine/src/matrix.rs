//! Matrix fan-out: combinations of array params, plus `include` entries, in Tekton's order.

use indexmap::IndexMap;
use slipway_model::ParamValue;
use slipway_model::kinds::pipeline::Matrix;

use crate::error::Failure;

/// One combination: param name to string value.
pub type Combination = IndexMap<String, String>;

/// Expands a matrix whose params are already substituted.
/// The first param varies fastest, as in Tekton.
pub fn combinations(m: &Matrix, limit: usize) -> Result<Vec<Combination>, Failure> {
    let mut combos: Vec<Combination> = Vec::new();
    for p in &m.params {
        let values = match &p.value {
            ParamValue::Array(a) => a.clone(),
            ParamValue::String(s) => vec![s.clone()],
            ParamValue::Object(_) => {
                return Err(Failure::new(
                    "InvalidMatrixParameterTypes",
                    format!("matrix param `{}` is an object", p.name),
                ));
            }
        };
        if values.is_empty() {
            return Ok(Vec::new());
        }
        // Checked before building: an array of a million values must not allocate its product.
        if combos.len().max(1).saturating_mul(values.len()) > limit {
            return Err(too_many(limit));
        }
        if combos.is_empty() {
            combos = values
                .iter()
                .map(|v| [(p.name.clone(), v.clone())].into_iter().collect())
                .collect();
        } else {
            let mut next = Vec::with_capacity(combos.len() * values.len());
            for v in &values {
                for c in &combos {
                    let mut c = c.clone();
                    c.insert(p.name.clone(), v.clone());
                    next.push(c);
                }
            }
            combos = next;
        }
        if combos.len() > limit {
            return Err(too_many(limit));
        }
    }
    let matrix_names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    let base = combos.len();
    for inc in &m.include {
        let strings: Vec<(String, String)> = inc
            .params
            .iter()
            .map(|p| (p.name.clone(), p.value.as_str().unwrap_or("").to_string()))
            .collect();
        let keys: Vec<&(String, String)> = strings
            .iter()
            .filter(|(k, _)| matrix_names.contains(&k.as_str()))
            .collect();
        let mut matched = false;
        if base > 0 {
            for c in combos.iter_mut().take(base) {
                if keys.iter().all(|(k, v)| c.get(k) == Some(v)) {
                    matched = true;
                    for (k, v) in &strings {
                        if !matrix_names.contains(&k.as_str()) {
                            c.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        if !matched {
            combos.push(strings.into_iter().collect());
        }
    }
    if combos.len() > limit {
        return Err(too_many(limit));
    }
    Ok(combos)
}

fn too_many(limit: usize) -> Failure {
    Failure::new(
        "PipelineRunValidationFailed",
        format!("matrix makes more than {limit} combinations"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_model::Param;
    use slipway_model::kinds::pipeline::MatrixInclude;

    fn arr(name: &str, v: &[&str]) -> Param {
        Param {
            name: name.into(),
            value: ParamValue::Array(v.iter().map(|s| s.to_string()).collect()),
        }
    }
    fn s(name: &str, v: &str) -> Param {
        Param {
            name: name.into(),
            value: ParamValue::String(v.into()),
        }
    }

    #[test]
    fn first_param_varies_fastest() {
        let m = Matrix {
            params: vec![arr("p", &["linux", "mac"]), arr("b", &["chrome", "safari"])],
            include: vec![],
        };
        let c = combinations(&m, 256).expect("combos");
        let pairs: Vec<String> = c.iter().map(|c| format!("{}-{}", c["p"], c["b"])).collect();
        assert_eq!(
            pairs,
            ["linux-chrome", "mac-chrome", "linux-safari", "mac-safari"]
        );
    }

    #[test]
    fn include_adds_to_matches_or_appends() {
        let m = Matrix {
            params: vec![
                arr("GOARCH", &["amd64", "s390x"]),
                arr("version", &["1.17", "1.18"]),
            ],
            include: vec![
                MatrixInclude {
                    name: None,
                    params: vec![s("package", "common")],
                },
                MatrixInclude {
                    name: None,
                    params: vec![s("GOARCH", "s390x"), s("flags", "-cover")],
                },
                MatrixInclude {
                    name: None,
                    params: vec![s("GOARCH", "nope")],
                },
            ],
        };
        let c = combinations(&m, 256).expect("combos");
        assert_eq!(c.len(), 5);
        assert!(c[..4].iter().all(|c| c["package"] == "common"));
        assert_eq!(c.iter().filter(|c| c.get("flags").is_some()).count(), 2);
        assert_eq!(c[4]["GOARCH"], "nope");
    }

    #[test]
    fn over_the_limit_fails() {
        let m = Matrix {
            params: vec![arr("a", &["1", "2", "3"]), arr("b", &["1", "2"])],
            include: vec![],
        };
        assert!(combinations(&m, 5).is_err());
    }

    #[test]
    fn huge_arrays_fail_before_their_product_is_built() {
        // 256 × 1,000,000 combinations would need gigabytes before the count was checked.
        let many: Vec<String> = (0..1_000_000).map(|i| i.to_string()).collect();
        let few: Vec<String> = (0..256).map(|i| i.to_string()).collect();
        let m = Matrix {
            params: vec![
                Param {
                    name: "a".into(),
                    value: ParamValue::Array(few),
                },
                Param {
                    name: "b".into(),
                    value: ParamValue::Array(many),
                },
            ],
            include: vec![],
        };
        assert!(combinations(&m, 256).is_err());
    }
}
