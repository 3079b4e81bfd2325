//! CEL over an event, with the functions Tekton's CEL interceptor adds that webhooks need most:
//! `truncate`, `header.match`, `header.canonical`, `split`, `parseJSON`.

use std::sync::Arc;

use cel::extractors::This;
use cel::{Context, Program, Value as CelValue};
use serde_json::Value;

use crate::event::Event;

fn context(event: &Event) -> Result<Context<'static, 'static>, String> {
    let mut ctx = Context::default();
    ctx.add_variable("body", event.body.clone())
        .map_err(|e| e.to_string())?;
    ctx.add_variable("header", Value::Object(event.header_map()))
        .map_err(|e| e.to_string())?;
    ctx.add_variable("extensions", Value::Object(event.extensions.clone()))
        .map_err(|e| e.to_string())?;
    let _ = ctx.add_function("truncate", |This(s): This<Arc<String>>, n: i64| {
        s.chars().take(n.max(0) as usize).collect::<String>()
    });
    let _ = ctx.add_function("split", |This(s): This<Arc<String>>, sep: Arc<String>| {
        CelValue::List(Arc::new(
            s.split(sep.as_str())
                .map(|p| CelValue::String(Arc::new(p.to_string())))
                .collect(),
        ))
    });
    let _ = ctx.add_function(
        "match",
        |This(h): This<CelValue>, name: Arc<String>, value: Arc<String>| {
            header_values(&h, &name).iter().any(|v| **v == *value)
        },
    );
    let _ = ctx.add_function("canonical", |This(h): This<CelValue>, name: Arc<String>| {
        header_values(&h, &name)
            .first()
            .map(|s| s.to_string())
            .unwrap_or_default()
    });
    let _ = ctx.add_function("parseJSON", |This(s): This<Arc<String>>| {
        serde_json::from_str::<Value>(&s)
            .ok()
            .and_then(|v| cel::to_value(v).ok())
            .unwrap_or(CelValue::Null)
    });
    Ok(ctx)
}

fn header_values(h: &CelValue, name: &str) -> Vec<Arc<String>> {
    let key = crate::event::canonical(name);
    match h {
        CelValue::Map(m) => m
            .map
            .iter()
            .filter(|(k, _)| matches!(k, cel::objects::Key::String(s) if s.as_str() == key))
            .flat_map(|(_, v)| match v {
                CelValue::List(l) => l
                    .iter()
                    .filter_map(|x| match x {
                        CelValue::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Evaluates `expression` to JSON.
pub fn eval(expression: &str, event: &Event) -> Result<Value, String> {
    let program = Program::compile(expression).map_err(|e| format!("does not parse: {e}"))?;
    let ctx = context(event)?;
    let v = program.execute(&ctx).map_err(|e| e.to_string())?;
    v.json()
        .map_err(|e| format!("gives a value that is not JSON: {e}"))
}

/// Evaluates a filter, which must give a boolean.
pub fn filter(expression: &str, event: &Event) -> Result<bool, String> {
    match eval(expression, event)? {
        Value::Bool(b) => Ok(b),
        other => Err(format!("gives {other}, not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::new(
            vec![("X-GitHub-Event".into(), "pull_request".into())],
            br#"{"action":"opened","pull_request":{"head":{"sha":"0123456789abcdef"}},"ref":"refs/heads/main"}"#.to_vec(),
        )
        .expect("json")
    }

    #[test]
    fn filters_read_body_and_headers() {
        let e = event();
        assert!(filter("body.action in ['opened', 'synchronize']", &e).expect("bool"));
        assert!(filter("header.match('X-GitHub-Event', 'pull_request')", &e).expect("bool"));
        assert!(!filter("header.match('x-github-event', 'push')", &e).expect("bool"));
        assert!(filter("header.canonical('X-GitHub-Event') == 'pull_request'", &e).expect("bool"));
        assert!(filter("body.ref.startsWith('refs/heads/')", &e).expect("bool"));
        assert!(
            filter("body.action", &e)
                .expect_err("an error")
                .contains("not true or false")
        );
        assert!(
            filter("body.action ==", &e)
                .expect_err("an error")
                .contains("does not parse")
        );
    }

    #[test]
    fn overlays_compute_values() {
        let e = event();
        assert_eq!(
            eval("body.pull_request.head.sha.truncate(7)", &e).expect("v"),
            "0123456"
        );
        assert_eq!(eval("body.ref.split('/')[2]", &e).expect("v"), "main");
        assert_eq!(eval("'{\"a\": 1}'.parseJSON().a", &e).expect("v"), 1);
    }
}
