//! One log record while operators work on it, and the field paths operators name.
//!
//! An [`Entry`] is what a log receiver makes of one line (or one joined multi-line record)
//! before it becomes an OTLP `LogRecord`: a body, attributes and resource attributes as
//! [`Value`]s, and the fields a record has beside them (time, severity, trace context).
//! Operators read and write it through [`Field`]s, written as in the Collector's stanza
//! operators: `body`, `body.msg`, `attributes.level`, `attributes["log.file.path"]`,
//! `resource["k8s.pod.name"]`.
//!
//! A JSON document is parsed straight into a [`Value`] (its `Deserialize` builds maps and
//! arrays as serde walks the text), so parsing a line costs one pass and no intermediate
//! tree.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use weft_proto::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};

/// A value in a body or an attribute: what JSON and OTLP `AnyValue` can both hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Map),
}

/// An ordered map of string keys (insertion order is kept, as OTLP attributes keep it).
/// Lookups are linear: log records carry tens of keys, where a scan beats hashing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map(pub Vec<(String, Value)>);

impl Map {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, replacing an existing value in place.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as text for parsers that read strings: strings as they are, numbers and
    /// booleans printed; maps, arrays and bytes have no text form.
    pub fn to_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Double(d) => Some(Cow::Owned(d.to_string())),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            _ => None,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Double(_) => "a number",
            Value::Str(_) => "a string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "an array",
            Value::Map(_) => "a map",
        }
    }

    pub fn into_any(self) -> AnyValue {
        let value = match self {
            Value::Null => return AnyValue { value: None },
            Value::Bool(b) => any_value::Value::BoolValue(b),
            Value::Int(i) => any_value::Value::IntValue(i),
            Value::Double(d) => any_value::Value::DoubleValue(d),
            Value::Str(s) => any_value::Value::StringValue(s),
            Value::Bytes(b) => any_value::Value::BytesValue(b),
            Value::Array(a) => any_value::Value::ArrayValue(ArrayValue {
                values: a.into_iter().map(Value::into_any).collect(),
            }),
            Value::Map(m) => any_value::Value::KvlistValue(KeyValueList {
                values: m.into_key_values(),
            }),
        };
        AnyValue { value: Some(value) }
    }

    /// A YAML value from a config (`add`'s `value`) as an entry value.
    pub fn from_yaml(y: &serde_yaml::Value) -> Value {
        match y {
            serde_yaml::Value::Null => Value::Null,
            serde_yaml::Value::Bool(b) => Value::Bool(*b),
            serde_yaml::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Double(n.as_f64().unwrap_or_default()),
            },
            serde_yaml::Value::String(s) => Value::Str(s.clone()),
            serde_yaml::Value::Sequence(s) => {
                Value::Array(s.iter().map(Value::from_yaml).collect())
            }
            serde_yaml::Value::Mapping(m) => Value::Map(Map(m
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        serde_yaml::Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    (key, Value::from_yaml(v))
                })
                .collect())),
            serde_yaml::Value::Tagged(t) => Value::from_yaml(&t.value),
        }
    }
}

impl Map {
    pub fn into_key_values(self) -> Vec<KeyValue> {
        self.0
            .into_iter()
            .map(|(key, v)| KeyValue {
                key,
                value: Some(v.into_any()),
                ..Default::default()
            })
            .collect()
    }
}

/// JSON (or any self-describing format) straight into a [`Value`].
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(i64::try_from(v).map_or(Value::Double(v as f64), Value::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Double(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Value::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut out = Map(Vec::with_capacity(map.size_hint().unwrap_or(0).min(64)));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.insert(k, v);
                }
                Ok(Value::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Which part of an entry a [`Field`] starts at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    Body,
    Attributes,
    Resource,
}

/// A path into an entry: a root and the keys below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub root: Root,
    pub keys: Vec<String>,
}

impl Field {
    pub fn body() -> Self {
        Self {
            root: Root::Body,
            keys: Vec::new(),
        }
    }

    pub fn attributes() -> Self {
        Self {
            root: Root::Attributes,
            keys: Vec::new(),
        }
    }

    pub fn attribute(key: &str) -> Self {
        Self {
            root: Root::Attributes,
            keys: vec![key.to_string()],
        }
    }

    /// Whether `other` is this field or below it.
    pub fn contains(&self, other: &Field) -> bool {
        self.root == other.root && other.keys.starts_with(&self.keys)
    }
}

impl FromStr for Field {
    type Err = String;

    /// `body`, `attributes.a.b`, `resource["k8s.pod.name"]`, `attributes["a.b"].c`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("invalid field {s:?}: {why}; expected body, body.<key>, attributes.<key>, attributes[\"<key.with.dots>\"] or resource.<key>")
        };
        let root_len = s.find(['.', '[']).unwrap_or(s.len());
        let root = match &s[..root_len] {
            "body" => Root::Body,
            "attributes" => Root::Attributes,
            "resource" => Root::Resource,
            "" => return Err(bad("empty")),
            other => return Err(bad(&format!("unknown root {other:?}"))),
        };
        let mut keys = Vec::new();
        let mut rest = &s[root_len..];
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end == 0 {
                    return Err(bad("empty key"));
                }
                if after[..end].contains([']', '"', '\'']) {
                    return Err(bad("a key with ], \" or ' must be bracketed and quoted"));
                }
                keys.push(after[..end].to_string());
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
                let Some(q) = quote else {
                    return Err(bad("a bracketed key must be quoted"));
                };
                let inner = &after[1..];
                let close = inner
                    .find(q)
                    .ok_or_else(|| bad("unterminated quoted key"))?;
                let key = &inner[..close];
                let after_quote = &inner[close + 1..];
                let after_bracket = after_quote
                    .strip_prefix(']')
                    .ok_or_else(|| bad("missing ']' after a quoted key"))?;
                if key.is_empty() {
                    return Err(bad("empty key"));
                }
                keys.push(key.to_string());
                rest = after_bracket;
            } else {
                return Err(bad("unexpected character"));
            }
        }
        Ok(Self { root, keys })
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.root {
            Root::Body => "body",
            Root::Attributes => "attributes",
            Root::Resource => "resource",
        })?;
        for k in &self.keys {
            if k.contains(['.', '[', ']']) {
                write!(f, "[\"{k}\"]")?;
            } else {
                write!(f, ".{k}")?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// Where an entry's bytes came from, so a receiver knows which offsets a consumed batch
/// covers: `file` is the receiver's id for the file, `end` the offset just past the entry's
/// last byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub file: u64,
    pub start: u64,
    pub end: u64,
}

/// One log record being parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub body: Value,
    /// Always a [`Value::Map`].
    pub attributes: Value,
    /// Always a [`Value::Map`].
    pub resource: Value,
    /// Nanoseconds since the Unix epoch; 0 = unknown (the observed time stands in).
    pub timestamp: u64,
    pub observed: u64,
    /// OTLP severity number; 0 = unspecified.
    pub severity: i32,
    pub severity_text: String,
    /// 16 bytes, or empty.
    pub trace_id: Vec<u8>,
    /// 8 bytes, or empty.
    pub span_id: Vec<u8>,
    pub trace_flags: u32,
    pub source: Source,
}

impl Entry {
    pub fn new(body: Value, observed: u64, source: Source) -> Self {
        Self {
            body,
            attributes: Value::Map(Map::default()),
            resource: Value::Map(Map::default()),
            timestamp: 0,
            observed,
            severity: 0,
            severity_text: String::new(),
            trace_id: Vec::new(),
            span_id: Vec::new(),
            trace_flags: 0,
            source,
        }
    }

    fn root(&self, root: Root) -> &Value {
        match root {
            Root::Body => &self.body,
            Root::Attributes => &self.attributes,
            Root::Resource => &self.resource,
        }
    }

    fn root_mut(&mut self, root: Root) -> &mut Value {
        match root {
            Root::Body => &mut self.body,
            Root::Attributes => &mut self.attributes,
            Root::Resource => &mut self.resource,
        }
    }

    pub fn get(&self, field: &Field) -> Option<&Value> {
        let mut v = self.root(field.root);
        for k in &field.keys {
            match v {
                Value::Map(m) => v = m.get(k)?,
                _ => return None,
            }
        }
        Some(v)
    }

    /// Sets `field` to `value`, creating maps on the way (a non-map value in the way is
    /// replaced by a map). Setting the root of `attributes` or `resource` merges a map's keys
    /// into it; another value there is an error.
    pub fn set(&mut self, field: &Field, value: Value) -> Result<(), String> {
        let root_is_map = field.root != Root::Body;
        let slot = self.root_mut(field.root);
        if field.keys.is_empty() {
            if !root_is_map {
                *slot = value;
                return Ok(());
            }
            return match value {
                Value::Map(m) => {
                    let Value::Map(target) = slot else {
                        unreachable!("attributes and resource are maps")
                    };
                    for (k, v) in m.0 {
                        target.insert(k, v);
                    }
                    Ok(())
                }
                other => Err(format!(
                    "cannot set {field} to {}: it holds only keys and values",
                    other.type_name()
                )),
            };
        }
        let mut v = slot;
        let (last, path) = field.keys.split_last().expect("not empty");
        for k in path {
            if !matches!(v, Value::Map(_)) {
                *v = Value::Map(Map::default());
            }
            let Value::Map(m) = v else { unreachable!() };
            if m.get(k).is_none() {
                m.0.push((k.clone(), Value::Map(Map::default())));
            }
            v = m.get_mut(k).expect("inserted above");
        }
        if !matches!(v, Value::Map(_)) {
            *v = Value::Map(Map::default());
        }
        let Value::Map(m) = v else { unreachable!() };
        m.insert(last.clone(), value);
        Ok(())
    }

    /// Removes `field` and returns its value. Removing a root empties it (`body` becomes null).
    pub fn delete(&mut self, field: &Field) -> Option<Value> {
        let is_body = field.root == Root::Body;
        let slot = self.root_mut(field.root);
        let Some((last, path)) = field.keys.split_last() else {
            let empty = if is_body {
                Value::Null
            } else {
                Value::Map(Map::default())
            };
            return Some(std::mem::replace(slot, empty));
        };
        let mut v = slot;
        for k in path {
            match v {
                Value::Map(m) => v = m.get_mut(k)?,
                _ => return None,
            }
        }
        match v {
            Value::Map(m) => m.remove(last),
            _ => None,
        }
    }

    /// Sets a plain attribute (no path parsing).
    pub fn set_attribute(&mut self, key: &str, value: Value) {
        if let Value::Map(m) = &mut self.attributes {
            m.insert(key, value);
        }
    }
}

/// Entries as one OTLP logs request: consecutive entries with the same resource share a
/// `ResourceLogs` (a batch read from a few files has a few resources).
pub fn into_request(
    entries: Vec<Entry>,
) -> weft_proto::collector::logs::v1::ExportLogsServiceRequest {
    use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weft_proto::resource::v1::Resource;
    let mut groups: Vec<(Value, Vec<LogRecord>)> = Vec::new();
    for e in entries {
        let record = LogRecord {
            time_unix_nano: e.timestamp,
            observed_time_unix_nano: e.observed,
            severity_number: e.severity,
            severity_text: e.severity_text,
            body: match e.body {
                Value::Null => None,
                body => Some(body.into_any()),
            },
            attributes: match e.attributes {
                Value::Map(m) => m.into_key_values(),
                _ => Vec::new(),
            },
            trace_id: e.trace_id,
            span_id: e.span_id,
            flags: e.trace_flags,
            ..Default::default()
        };
        match groups.iter_mut().rev().find(|(r, _)| *r == e.resource) {
            Some((_, records)) => records.push(record),
            None => groups.push((e.resource, vec![record])),
        }
    }
    weft_proto::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|(resource, log_records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: match resource {
                        Value::Map(m) => m.into_key_values(),
                        _ => Vec::new(),
                    },
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: &str) -> Field {
        s.parse().unwrap()
    }

    #[test]
    fn fields_parse_dots_and_quoted_keys() {
        assert_eq!(field("body"), Field::body());
        assert_eq!(field("attributes.level"), Field::attribute("level"));
        let f = field("resource[\"k8s.pod.name\"]");
        assert_eq!(
            (f.root, f.keys.clone()),
            (Root::Resource, vec!["k8s.pod.name".to_string()])
        );
        assert_eq!(f.to_string(), "resource[\"k8s.pod.name\"]");
        assert_eq!(field("attributes['a.b'].c").keys, ["a.b", "c"]);
        for bad in [
            "",
            "msg",
            "body.",
            "attributes[a]",
            "attributes[\"a\"",
            "body..x",
            "body.a]",
        ] {
            assert!(bad.parse::<Field>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn set_get_delete_walk_and_create_maps() {
        let mut e = Entry::new(Value::Str("line".into()), 1, Source::default());
        e.set(&field("attributes.http.status"), Value::Int(200))
            .unwrap();
        assert_eq!(
            e.get(&field("attributes.http.status")),
            Some(&Value::Int(200))
        );
        e.set(&field("body.msg"), Value::Str("hi".into())).unwrap();
        assert_eq!(e.get(&field("body.msg")), Some(&Value::Str("hi".into())));
        assert_eq!(
            e.delete(&field("attributes.http.status")),
            Some(Value::Int(200))
        );
        assert_eq!(e.get(&field("attributes.http.status")), None);
        assert!(e.set(&Field::attributes(), Value::Int(1)).is_err());
        e.set(
            &Field::attributes(),
            Value::Map(Map(vec![("k".into(), Value::Bool(true))])),
        )
        .unwrap();
        assert_eq!(e.get(&field("attributes.k")), Some(&Value::Bool(true)));
    }

    #[test]
    fn json_parses_into_values_keeping_key_order_and_integers() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":[true,null,1.5],"big":18446744073709551615}"#)
                .unwrap();
        let Value::Map(m) = v else { panic!() };
        assert_eq!(m.0[0], ("b".to_string(), Value::Int(1)));
        assert_eq!(
            m.get("a"),
            Some(&Value::Array(vec![
                Value::Bool(true),
                Value::Null,
                Value::Double(1.5)
            ]))
        );
        assert!(matches!(m.get("big"), Some(Value::Double(_))));
    }
}
