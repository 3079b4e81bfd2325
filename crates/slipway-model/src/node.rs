//! YAML documents parsed once into JSON values plus an index of where each value sits.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

/// A position in a source file: 1-based line and column plus a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// Byte offset from the start of the file.
    pub offset: usize,
}

/// One YAML document: its JSON value and the position of every node by path.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's content as JSON.
    pub value: Value,
    /// Positions keyed by path (`spec.tasks[0].name`); the empty path is the root.
    pub positions: HashMap<String, Pos>,
    /// Positions of mapping keys, keyed by the path of the value they introduce.
    pub key_positions: HashMap<String, Pos>,
}

impl Document {
    /// Where the node at `path` starts, falling back to the nearest ancestor that is known.
    pub fn locate(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.key_positions.get(p).or_else(|| self.positions.get(p)) {
                return *pos;
            }
            match parent_path(p) {
                Some(parent) => p = parent,
                None => return self.positions.get("").copied().unwrap_or_default(),
            }
        }
    }

    /// Where the value (not the key) at `path` starts.
    pub fn locate_value(&self, path: &str) -> Pos {
        self.positions
            .get(path)
            .copied()
            .unwrap_or_else(|| self.locate(path))
    }
}

/// The path one level up: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Joins a field onto a path.
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins an index onto a path.
pub fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// A parsed YAML node before conversion.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v)
            .map(Node::Int)
            .unwrap_or(Node::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyString>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            let key = Spanned {
                value: key.value.0,
                referenced: key.referenced,
                defined: key.defined,
            };
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Mapping keys as text, whatever scalar type YAML gave them (`1: x`, `true: y`).
struct KeyString(String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyString, E> {
                Ok(KeyString("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// What the parser said.
    pub message: String,
    /// Where, when the parser knew.
    pub pos: Option<Pos>,
}

/// Parses every document of a YAML stream; empty documents are dropped.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let nodes: Vec<Spanned<Node>> = serde_saphyr::from_multiple(text).map_err(|e| SyntaxError {
        pos: e.location().map(|l| to_pos(text, &l)),
        message: first_line(&e.to_string()),
    })?;
    let mut docs = Vec::with_capacity(nodes.len());
    for node in nodes {
        if matches!(node.value, Node::Null) {
            continue;
        }
        let mut doc = Document {
            value: Value::Null,
            positions: HashMap::new(),
            key_positions: HashMap::new(),
        };
        doc.value = convert(text, node, String::new(), &mut doc);
        docs.push(doc);
    }
    Ok(docs)
}

/// The parser's first line without its own `error: line N column M:` prefix (we print the position).
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((pos, msg)) if pos.contains(" column ") => msg.to_string(),
        _ => line.to_string(),
    }
}

fn to_pos(text: &str, loc: &serde_saphyr::Location) -> Pos {
    let line = u32::try_from(loc.line()).unwrap_or(u32::MAX).max(1);
    let col = u32::try_from(loc.column()).unwrap_or(u32::MAX).max(1);
    let offset = loc
        .span()
        .byte_offset()
        .and_then(|o| usize::try_from(o).ok())
        .unwrap_or_else(|| offset_of(text, line, col));
    Pos { line, col, offset }
}

/// Byte offset of a 1-based line and (character) column.
pub fn offset_of(text: &str, line: u32, col: u32) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let chars: usize = l
                .chars()
                .take(col.saturating_sub(1) as usize)
                .map(char::len_utf8)
                .sum();
            return offset + chars;
        }
        offset += l.len();
    }
    text.len()
}

fn convert(text: &str, node: Spanned<Node>, path: String, doc: &mut Document) -> Value {
    doc.positions
        .insert(path.clone(), to_pos(text, &node.referenced));
    match node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(i) => Value::from(i),
        Node::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, n)| convert(text, n, join_index(&path, i), doc))
                .collect(),
        ),
        Node::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let child = join_key(&path, &k.value);
                doc.key_positions
                    .insert(child.clone(), to_pos(text, &k.referenced));
                let value = convert(text, v, child, doc);
                map.insert(k.value, value);
            }
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_nodes() {
        let text = "a: 1\nb:\n  - x\n  - c: true\n---\n---\nk: v\n";
        let docs = parse_documents(text).expect("parses");
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(
            d.locate("b[1].c"),
            Pos {
                line: 4,
                col: 5,
                offset: 18
            }
        );
        assert_eq!(d.locate_value("b[0]").line, 3);
        assert_eq!(d.locate("b[1].missing").line, 4);
        assert_eq!(docs[1].value["k"], "v");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_documents("a: [1, 2\nb: c\n").expect_err("bad yaml");
        assert!(err.pos.is_some(), "{err:?}");
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[2]"), Some("a.b"));
        assert_eq!(parent_path("a.b"), Some("a"));
        assert_eq!(parent_path("a"), Some(""));
        assert_eq!(parent_path(""), None);
    }
}
