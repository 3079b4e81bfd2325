//! Params: declarations (`ParamSpec`), values passed (`Param`) and the string/array/object value.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The type of a param or result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// A single string.
    #[default]
    String,
    /// A list of strings.
    Array,
    /// A map of string keys to strings.
    Object,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Array => "array",
            ParamType::Object => "object",
        })
    }
}

/// A param's value: string, array of strings, or object of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A string.
    String(String),
    /// An array of strings.
    Array(Vec<String>),
    /// An object whose values are strings.
    Object(IndexMap<String, String>),
}

impl Default for ParamValue {
    fn default() -> Self {
        ParamValue::String(String::new())
    }
}

impl ParamValue {
    /// The type of this value.
    pub fn kind(&self) -> ParamType {
        match self {
            ParamValue::String(_) => ParamType::String,
            ParamValue::Array(_) => ParamType::Array,
            ParamValue::Object(_) => ParamType::Object,
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Every string inside, in order (for scanning references).
    pub fn strings(&self) -> Vec<&str> {
        match self {
            ParamValue::String(s) => vec![s.as_str()],
            ParamValue::Array(a) => a.iter().map(String::as_str).collect(),
            ParamValue::Object(o) => o.values().map(String::as_str).collect(),
        }
    }

    /// JSON form, as Tekton writes array and object results.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::String(s) => serde_json::Value::String(s.clone()),
            ParamValue::Array(a) => serde_json::Value::from(a.clone()),
            ParamValue::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect(),
            ),
        }
    }

    /// Reads a JSON value, turning scalars into strings as Tekton's decoder does.
    pub fn from_json(v: &serde_json::Value) -> Option<ParamValue> {
        use serde_json::Value as J;
        Some(match v {
            J::String(s) => ParamValue::String(s.clone()),
            J::Array(items) => {
                ParamValue::Array(items.iter().map(scalar_string).collect::<Option<_>>()?)
            }
            J::Object(map) => ParamValue::Object(
                map.iter()
                    .map(|(k, v)| Some((k.clone(), scalar_string(v)?)))
                    .collect::<Option<_>>()?,
            ),
            J::Null => return None,
            other => ParamValue::String(scalar_string(other)?),
        })
    }
}

fn scalar_string(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    match v {
        J::String(s) => Some(s.clone()),
        J::Bool(b) => Some(b.to_string()),
        J::Number(n) => Some(n.to_string()),
        J::Null => Some(String::new()),
        _ => None,
    }
}

impl Serialize for ParamValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ParamValue::String(v) => v.serialize(s),
            ParamValue::Array(v) => v.serialize(s),
            ParamValue::Object(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an array of strings or an object of strings")
            }
            fn visit_str<E>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<ParamValue, E> {
                Ok(ParamValue::String(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParamValue, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<ScalarString>()? {
                    out.push(s.0);
                }
                Ok(ParamValue::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamValue, A::Error> {
                let mut out = IndexMap::new();
                while let Some((k, v)) = map.next_entry::<String, ScalarString>()? {
                    out.insert(k, v.0);
                }
                Ok(ParamValue::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar read as a string; nested collections are rejected.
struct ScalarString(String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ScalarString, E> {
                Ok(ScalarString(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A key of an object param or result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PropertySpec {
    /// Only `string` is allowed by Tekton.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ParamType>,
}

/// A declared param of a Task, Pipeline or StepAction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParamSpec {
    /// The name by which the param is referenced.
    pub name: String,
    /// Declared type; `None` means inferred from the default, else string.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ParamType>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Keys of an object param.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<IndexMap<String, PropertySpec>>,
    /// Value used when none is passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ParamValue>,
    /// Allowed values of a string param.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

impl ParamSpec {
    /// The effective type: declared, else that of the default, else object when properties are given.
    pub fn effective_type(&self) -> ParamType {
        if let Some(t) = self.kind {
            return t;
        }
        match &self.default {
            Some(v) => v.kind(),
            None if self.properties.is_some() => ParamType::Object,
            None => ParamType::String,
        }
    }
}

/// A value passed to a param.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The param's name.
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: ParamValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_every_shape() {
        let v: Vec<Param> = serde_json::from_str(
            r#"[{"name":"a","value":"x"},{"name":"b","value":["1",2]},{"name":"c","value":{"k":true}},{"name":"d","value":3000}]"#,
        )
        .expect("parses");
        assert_eq!(v[0].value, ParamValue::String("x".into()));
        assert_eq!(v[1].value, ParamValue::Array(vec!["1".into(), "2".into()]));
        assert_eq!(v[2].value.as_str(), None);
        assert_eq!(v[3].value, ParamValue::String("3000".into()));
    }

    #[test]
    fn type_is_inferred_from_default() {
        let p: ParamSpec = serde_json::from_str(r#"{"name":"a","default":["x"]}"#).expect("parses");
        assert_eq!(p.effective_type(), ParamType::Array);
        let p: ParamSpec =
            serde_json::from_str(r#"{"name":"a","properties":{"k":{}}}"#).expect("parses");
        assert_eq!(p.effective_type(), ParamType::Object);
    }
}
