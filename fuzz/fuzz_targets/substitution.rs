//! `$(...)` substitution: the first line is the text, later lines `key=value` entries of the
//! scope (a value with commas is an array). Parsing, finding references and substituting
//! must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_model::ParamValue;
use slipway_model::subst::{Scope, parse_expr, references};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let target = lines.next().unwrap_or("");
    let mut scope = Scope::new();
    for line in lines.take(32) {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        if v.contains(',') {
            scope.set(
                k,
                ParamValue::Array(v.split(',').map(str::to_string).collect()),
            );
        } else {
            scope.set_str(k, v);
        }
    }
    let _ = parse_expr(target);
    for r in references(target) {
        let _ = r.names();
        let _ = scope.resolve(&r.segs);
    }
    let _ = scope.subst(target);
    let _ = scope.subst_list(&[target.to_string(), format!("$({target})")]);
    let _ = scope.with_prefix(target);
});
