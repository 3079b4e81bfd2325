//! `when` expressions: `input in/notin values`, and CEL.

use slipway_model::kinds::pipeline::WhenExpression;
use slipway_model::subst::Scope;

use crate::error::Failure;

/// Evaluates substituted when expressions; true means the task runs.
pub fn evaluate(exprs: &[WhenExpression], scope: &Scope) -> Result<bool, Failure> {
    for w in exprs {
        if let Some(expr) = &w.cel {
            let text = scope.subst(expr);
            if !cel_true(&text)? {
                return Ok(false);
            }
            continue;
        }
        let input = scope.subst(w.input.as_deref().unwrap_or(""));
        let values = scope.subst_list(w.values.as_deref().unwrap_or_default());
        let found = values.contains(&input);
        let ok = match w.operator.as_deref() {
            Some("notin") => !found,
            _ => found,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn cel_true(text: &str) -> Result<bool, Failure> {
    let program = cel::Program::compile(text).map_err(|e| {
        Failure::new(
            "CELEvaluationFailed",
            format!("failed to compile CEL `{text}`: {e}"),
        )
    })?;
    let ctx = cel::Context::default();
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(Failure::new(
            "CELEvaluationFailed",
            format!("CEL `{text}` gave {other:?}, not a bool"),
        )),
        Err(e) => Err(Failure::new(
            "CELEvaluationFailed",
            format!("failed to evaluate CEL `{text}`: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(input: &str, op: &str, values: &[&str]) -> WhenExpression {
        WhenExpression {
            input: Some(input.into()),
            operator: Some(op.into()),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
            cel: None,
        }
    }

    #[test]
    fn in_and_notin() {
        let mut s = Scope::new();
        s.set_str("params.branch", "main");
        assert!(evaluate(&[w("$(params.branch)", "in", &["main"])], &s).expect("eval"));
        assert!(!evaluate(&[w("$(params.branch)", "notin", &["main"])], &s).expect("eval"));
    }

    #[test]
    fn cel_expressions() {
        let mut s = Scope::new();
        s.set_str("params.branch", "main");
        let e = WhenExpression {
            cel: Some("'$(params.branch)' == 'main'".into()),
            ..Default::default()
        };
        assert!(evaluate(&[e], &s).expect("eval"));
        let bad = WhenExpression {
            cel: Some("1 +".into()),
            ..Default::default()
        };
        assert_eq!(
            evaluate(&[bad], &s).expect_err("bad").reason,
            "CELEvaluationFailed"
        );
    }
}
