//! Trigger bindings and CEL interceptor expressions over a webhook payload: the first line is
//! a binding value (`$(body.a.b)`, `$(header.X)`, …) and also a CEL expression, the rest the
//! payload. Parsing the payload, resolving the binding and evaluating must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_triggers::{Event, binding, expr};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let Ok(value) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let payload = data.get(split + 1..).unwrap_or_default().to_vec();
    let headers = vec![
        ("X-GitHub-Event".to_string(), "push".to_string()),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    let Ok(mut event) = Event::new(headers, payload) else {
        return;
    };
    event.extend("branch", serde_json::json!("main"));
    let _ = binding::resolve(value, &event);
    let _ = expr::eval(value, &event);
    let _ = expr::filter(value, &event);
});
