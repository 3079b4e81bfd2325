//! Binding values: `$(body.path)`, `$(header.Name)` and `$(extensions.path)` read from the event.

use serde_json::Value;

use crate::event::Event;

/// The value with every `$(...)` reference replaced; a missing field is an error naming it.
pub fn resolve(value: &str, event: &Event) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = closing(after).ok_or_else(|| format!("`{value}` has an unclosed `$(`"))?;
        let expr = &after[..end];
        out.push_str(&lookup(expr, event)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `)` that closes the reference (parentheses inside are balanced).
fn closing(s: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Path segments: `.` separates, `\.` is a dot inside a key, `[n]` indexes an array.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                cur.push('.');
                chars.next();
            }
            '.' => out.push(std::mem::take(&mut cur)),
            '[' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let idx: String = chars.by_ref().take_while(|c| *c != ']').collect();
                out.push(format!("[{idx}]"));
                if chars.peek() == Some(&'.') {
                    chars.next();
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn lookup(expr: &str, event: &Event) -> Result<String, String> {
    let segs = segments(expr.trim());
    let Some(root) = segs.first() else {
        return Err("`$()` is empty".into());
    };
    if root == "header" {
        return match segs.get(1) {
            None => Ok(Value::Object(event.header_map()).to_string()),
            Some(name) => event
                .header(name)
                .map(str::to_string)
                .ok_or_else(|| format!("`$({expr})`: the event has no header {name}")),
        };
    }
    let cur = match root.as_str() {
        "body" => &event.body,
        "extensions" => {
            return walk(&Value::Object(event.extensions.clone()), &segs[1..], expr);
        }
        other => {
            return Err(format!(
                "`$({expr})`: `{other}` is not body, header or extensions"
            ));
        }
    };
    if segs.len() == 1 {
        return Ok(render(cur));
    }
    walk(cur, &segs[1..], expr)
}

fn walk(root: &Value, segs: &[String], expr: &str) -> Result<String, String> {
    let mut cur = root;
    for s in segs {
        let next = match s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            Some(i) => i.parse::<usize>().ok().and_then(|i| cur.get(i)),
            None => cur.get(s.as_str()),
        };
        cur = next.ok_or_else(|| format!("`$({expr})`: `{s}` is not in the event"))?;
    }
    Ok(render(cur))
}

/// Strings as they are; anything else as compact JSON.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        let mut e = Event::new(
            vec![("Content-Type".into(), "application/json".into())],
            br#"{"repository":{"clone_url":"https://git.example/r.git"},"commits":[{"id":"c1"}],"a.b":{"c":1},"n":3}"#.to_vec(),
        )
        .expect("json");
        e.extend("short", serde_json::json!("abc"));
        e
    }

    #[test]
    fn references_read_body_headers_and_extensions() {
        let e = event();
        assert_eq!(
            resolve("$(body.repository.clone_url)", &e).expect("v"),
            "https://git.example/r.git"
        );
        assert_eq!(resolve("$(body.commits[0].id)", &e).expect("v"), "c1");
        assert_eq!(resolve("$(body.a\\.b.c)", &e).expect("v"), "1");
        assert_eq!(
            resolve("n=$(body.n), ct=$(header.content-type)", &e).expect("v"),
            "n=3, ct=application/json"
        );
        assert_eq!(resolve("$(extensions.short)", &e).expect("v"), "abc");
        assert_eq!(
            resolve("$(body.commits)", &e).expect("v"),
            r#"[{"id":"c1"}]"#
        );
        assert!(
            resolve("$(body.missing)", &e)
                .expect_err("an error")
                .contains("`missing` is not in the event")
        );
        assert!(resolve("$(params.x)", &e).is_err());
        assert!(
            resolve("$(body.x", &e)
                .expect_err("an error")
                .contains("unclosed")
        );
    }

    proptest::proptest! {
        #[test]
        fn resolve_never_panics(s in ".{0,40}") {
            let _ = resolve(&s, &event());
        }
    }
}
