//! One delivery: its headers, the raw body (for signatures), the body as JSON, and the
//! extensions interceptors add.

use serde_json::{Map, Value};

/// A webhook delivery (or a polled change, shaped like one).
#[derive(Debug, Clone)]
pub struct Event {
    /// Headers as received.
    pub headers: Vec<(String, String)>,
    /// The body's bytes.
    pub raw: Vec<u8>,
    /// The body as JSON.
    pub body: Value,
    /// Values added by interceptors (`$(extensions.KEY)`).
    pub extensions: Map<String, Value>,
    /// Made by slipway itself (repository polling): there is no sender whose signature or token
    /// could be checked, so those checks are skipped; event types still apply.
    pub trusted: bool,
}

/// The body is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: the payload is not JSON: {message}")]
pub struct PayloadError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What the parser said.
    pub message: String,
}

impl Event {
    /// Parses a JSON body; an empty body is `{}`.
    pub fn new(headers: Vec<(String, String)>, raw: Vec<u8>) -> Result<Event, PayloadError> {
        let body = if raw.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(&raw).map_err(|e| PayloadError {
                line: e.line(),
                column: e.column(),
                message: e
                    .to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or("")
                    .to_string(),
            })?
        };
        Ok(Event {
            headers,
            raw,
            body,
            extensions: Map::new(),
            trusted: false,
        })
    }

    /// A header's first value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Headers as CEL sees them (Tekton's shape): canonical names, lists of values.
    pub fn header_map(&self) -> Map<String, Value> {
        let mut m: Map<String, Value> = Map::new();
        for (k, v) in &self.headers {
            let entry = m
                .entry(canonical(k))
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry {
                a.push(Value::String(v.clone()));
            }
        }
        m
    }

    /// Sets `extensions.KEY` (dots in `key` make nested objects).
    pub fn extend(&mut self, key: &str, value: Value) {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or(key);
        let mut cur = &mut self.extensions;
        for p in parts {
            let next = cur
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            let Value::Object(m) = next else { return };
            cur = m;
        }
        cur.insert(last.to_string(), value);
    }
}

/// Go's canonical MIME header key: `x-github-event` → `X-Github-Event`.
pub fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_in_any_case_and_canonicalised_for_cel() {
        let e = Event::new(
            vec![("x-github-event".into(), "push".into())],
            b"{}".to_vec(),
        )
        .expect("json");
        assert_eq!(e.header("X-GitHub-Event"), Some("push"));
        assert_eq!(
            e.header_map()["X-Github-Event"],
            serde_json::json!(["push"])
        );
    }

    #[test]
    fn a_bad_payload_says_where() {
        let err = Event::new(vec![], b"{\n  \"a\": }".to_vec()).expect_err("an error");
        assert_eq!((err.line, err.column), (2, 8));
    }

    #[test]
    fn dotted_extension_keys_nest() {
        let mut e = Event::new(vec![], Vec::new()).expect("empty");
        e.extend("git.sha", serde_json::json!("abc"));
        e.extend("git.short", serde_json::json!("a"));
        assert_eq!(
            e.extensions["git"],
            serde_json::json!({"sha": "abc", "short": "a"})
        );
    }
}
