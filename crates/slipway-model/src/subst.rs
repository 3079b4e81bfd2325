//! `$(...)` variable references: parsing, and substitution against a scope of values.

use std::collections::HashMap;

use crate::param::{Param, ParamValue};

/// One segment of a reference: `params`, `["a.b"]`, `[2]` or `[*]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A name (dotted or bracketed).
    Name(String),
    /// An array index.
    Index(usize),
    /// The whole array or object.
    Star,
}

/// A parsed `$(...)` reference and where it sits in its string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Byte range of `$(...)` in the string.
    pub range: std::ops::Range<usize>,
    /// Text between the parentheses.
    pub expr: String,
    /// Parsed segments.
    pub segs: Vec<Seg>,
}

impl Reference {
    /// The leading names, joined by dots: `tasks.a.results.b` for `$(tasks.a.results.b[*])`.
    pub fn names(&self) -> Vec<&str> {
        self.segs
            .iter()
            .map_while(|s| match s {
                Seg::Name(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }
    /// Ends in `[*]`.
    pub fn is_star(&self) -> bool {
        matches!(self.segs.last(), Some(Seg::Star))
    }
}

/// Parses the inside of `$(...)`; `None` when it is not a variable (e.g. shell `$(date)` with spaces).
pub fn parse_expr(expr: &str) -> Option<Vec<Seg>> {
    let b = expr.as_bytes();
    let mut i = 0;
    let mut segs = Vec::new();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    while i < b.len() {
        match b[i] {
            b'.' if !segs.is_empty() => i += 1,
            b'[' => {
                let close = expr[i..].find(']')? + i;
                let inner = &expr[i + 1..close];
                let seg = if inner == "*" {
                    Seg::Star
                } else if let Ok(n) = inner.parse::<usize>() {
                    Seg::Index(n)
                } else if inner.len() >= 2
                    && ((inner.starts_with('"') && inner.ends_with('"'))
                        || (inner.starts_with('\'') && inner.ends_with('\'')))
                {
                    Seg::Name(inner[1..inner.len() - 1].to_string())
                } else {
                    return None;
                };
                segs.push(seg);
                i = close + 1;
            }
            c if ident(c) => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                segs.push(Seg::Name(expr[start..i].to_string()));
                if i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    return None;
                }
            }
            _ => return None,
        }
    }
    match segs.first() {
        Some(Seg::Name(_)) if segs.len() >= 2 => Some(segs),
        _ => None,
    }
}

/// Every well-formed `$(...)` reference in `s`.
pub fn references(s: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = s[from..].find("$(") {
        let start = from + found;
        let Some(close) = s[start + 2..].find(')') else {
            break;
        };
        let end = start + 2 + close;
        let expr = &s[start + 2..end];
        match parse_expr(expr) {
            Some(segs) => {
                out.push(Reference {
                    range: start..end + 1,
                    expr: expr.to_string(),
                    segs,
                });
                from = end + 1;
            }
            None => from = start + 2,
        }
    }
    out
}

/// Values visible to substitution, keyed by dotted name (`params.x`, `tasks.a.results.r`).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    vars: HashMap<String, ParamValue>,
}

impl Scope {
    /// An empty scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (dotted) to a value.
    pub fn set(&mut self, key: impl Into<String>, value: ParamValue) {
        self.vars.insert(key.into(), value);
    }

    /// Sets `key` to a string.
    pub fn set_str(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars
            .insert(key.into(), ParamValue::String(value.into()));
    }

    /// True when `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.vars.contains_key(key)
    }

    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<&ParamValue> {
        self.vars.get(key)
    }

    /// Copies every variable of `other` that is not set here.
    pub fn inherit(&mut self, other: &Scope) {
        for (k, v) in &other.vars {
            self.vars.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    /// The variables whose keys start with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Scope {
        Scope {
            vars: self
                .vars
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Resolves a parsed reference to a value.
    pub fn resolve(&self, segs: &[Seg]) -> Option<ParamValue> {
        let names = segs
            .iter()
            .take_while(|s| matches!(s, Seg::Name(_)))
            .count();
        for i in (1..=names).rev() {
            let key = join(&segs[..i]);
            if let Some(v) = self.vars.get(&key) {
                return access(v, &segs[i..]);
            }
        }
        None
    }

    /// Replaces every resolvable string reference in `s`; others stay as written.
    pub fn subst(&self, s: &str) -> String {
        if !s.contains("$(") {
            return s.to_string();
        }
        let refs = references(s);
        if refs.is_empty() {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for r in refs {
            out.push_str(&s[last..r.range.start]);
            match self.resolve(&r.segs) {
                Some(ParamValue::String(v)) => out.push_str(&v),
                _ => out.push_str(&s[r.range.clone()]),
            }
            last = r.range.end;
        }
        out.push_str(&s[last..]);
        out
    }

    /// Substitutes a whole value: a string that is exactly one array or object reference becomes that value.
    pub fn subst_value(&self, v: &ParamValue) -> ParamValue {
        match v {
            ParamValue::String(s) => match self.whole(s) {
                Some(whole) => whole,
                None => ParamValue::String(self.subst(s)),
            },
            ParamValue::Array(items) => ParamValue::Array(self.subst_list(items)),
            ParamValue::Object(map) => ParamValue::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.subst(v)))
                    .collect(),
            ),
        }
    }

    /// Params with their values substituted (what a pipeline task or a step passes on).
    pub fn subst_params<'a>(&self, params: impl IntoIterator<Item = &'a Param>) -> Vec<Param> {
        params
            .into_iter()
            .map(|p| Param {
                name: p.name.clone(),
                value: self.subst_value(&p.value),
            })
            .collect()
    }

    /// Substitutes a list, splicing in arrays referenced as whole elements (`"$(params.a[*])"`).
    pub fn subst_list(&self, items: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match self.whole(item) {
                Some(ParamValue::Array(a)) => out.extend(a),
                Some(ParamValue::Object(_)) | Some(ParamValue::String(_)) | None => {
                    out.push(self.subst(item))
                }
            }
        }
        out
    }

    /// The array or object that `s` refers to when `s` is exactly one reference to one.
    fn whole(&self, s: &str) -> Option<ParamValue> {
        let t = s.trim();
        if !t.starts_with("$(") || !t.ends_with(')') {
            return None;
        }
        let refs = references(t);
        let [r] = refs.as_slice() else { return None };
        if r.range != (0..t.len()) {
            return None;
        }
        match self.resolve(&r.segs)? {
            ParamValue::String(_) => None,
            v => Some(v),
        }
    }
}

/// Rewrites references to `from` (a dotted name such as `params.images`) into references to
/// `to` (such as `steps.build.results.images`), keeping what follows (`[*]`, `[0]`, `.key`), so a
/// value known only later resolves where the first one was used.
pub fn retarget(s: &str, from: &str, to: &str) -> String {
    if !s.contains("$(") {
        return s.to_string();
    }
    let wanted: Vec<&str> = from.split('.').collect();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for r in references(s) {
        let names = r.names();
        if names.len() < wanted.len() || names[..wanted.len()] != wanted[..] {
            continue;
        }
        out.push_str(&s[last..r.range.start]);
        out.push_str("$(");
        out.push_str(to);
        for seg in &r.segs[wanted.len()..] {
            match seg {
                Seg::Name(n) if n.contains('.') => out.push_str(&format!("[\"{n}\"]")),
                Seg::Name(n) => {
                    out.push('.');
                    out.push_str(n);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Star => out.push_str("[*]"),
            }
        }
        out.push(')');
        last = r.range.end;
    }
    out.push_str(&s[last..]);
    out
}

fn join(segs: &[Seg]) -> String {
    let mut key = String::new();
    for s in segs {
        if let Seg::Name(n) = s {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(n);
        }
    }
    key
}

fn access(v: &ParamValue, rest: &[Seg]) -> Option<ParamValue> {
    match (rest, v) {
        ([], v) => Some(v.clone()),
        // `[*]` names a whole array or object; on a string it is not a reference Tekton resolves.
        ([Seg::Star], ParamValue::String(_)) => None,
        ([Seg::Star], v) => Some(v.clone()),
        ([Seg::Index(i)], ParamValue::Array(a)) => a.get(*i).cloned().map(ParamValue::String),
        ([Seg::Name(k)], ParamValue::Object(o)) => o.get(k).cloned().map(ParamValue::String),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retargeted_references_keep_their_accessors() {
        let to = "steps.make.results.list";
        assert_eq!(
            retarget(
                "$(params.a[*]) $(params.a[0]) $(params.a.URL) $(params.ab)",
                "params.a",
                to
            ),
            "$(steps.make.results.list[*]) $(steps.make.results.list[0]) $(steps.make.results.list.URL) $(params.ab)"
        );
        assert_eq!(
            retarget("$(params[\"a\"])", "params.a", to),
            format!("$({to})")
        );
        assert_eq!(
            retarget("echo $(date) $(params.b)", "params.a", to),
            "echo $(date) $(params.b)"
        );
    }
    use indexmap::IndexMap;
    use proptest::prelude::*;

    fn scope() -> Scope {
        let mut s = Scope::new();
        s.set_str("params.name", "world");
        s.set(
            "params.list",
            ParamValue::Array(vec!["a".into(), "b".into()]),
        );
        let mut o = IndexMap::new();
        o.insert("url".to_string(), "xyz.com".to_string());
        s.set("params.repo", ParamValue::Object(o));
        s.set_str("params.dotted.name", "dots");
        s
    }

    #[test]
    fn strings_indexes_and_keys() {
        let s = scope();
        assert_eq!(s.subst("hello $(params.name)!"), "hello world!");
        assert_eq!(s.subst("$(params.list[1]) $(params.repo.url)"), "b xyz.com");
        assert_eq!(
            s.subst(r#"$(params["dotted.name"]) $(params['name'])"#),
            "dots world"
        );
    }

    #[test]
    fn unknown_and_shell_syntax_is_left_alone() {
        let s = scope();
        let text =
            r#"echo $(date +%s) $(( "$(params.name)" )) $(params.missing) $(params.list[9])"#;
        assert_eq!(
            s.subst(text),
            r#"echo $(date +%s) $(( "world" )) $(params.missing) $(params.list[9])"#
        );
    }

    #[test]
    fn arrays_splice_into_lists_and_values() {
        let s = scope();
        let args = vec![
            "echo".to_string(),
            "$(params.list[*])".to_string(),
            "$(params.name)".to_string(),
        ];
        assert_eq!(s.subst_list(&args), vec!["echo", "a", "b", "world"]);
        assert_eq!(
            s.subst_value(&ParamValue::String("$(params.repo[*])".into()))
                .kind(),
            crate::param::ParamType::Object
        );
    }

    #[test]
    fn references_are_found() {
        let r = references("a $(tasks.t.results.r[*]) b $(x) $(params.p)");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].names(), vec!["tasks", "t", "results", "r"]);
        assert!(r[0].is_star());
    }

    proptest! {
        #[test]
        fn empty_scope_is_identity(s in ".*") {
            prop_assert_eq!(Scope::new().subst(&s), s);
        }

        #[test]
        fn substitution_never_panics(s in r"(\$\(|\)|params|\.|\[|\]|\*|[a-z0-9]|'|\x22| )*") {
            let _ = scope().subst(&s);
            let _ = references(&s);
        }
    }
}
