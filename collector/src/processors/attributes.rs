//! The `attributes` processor, as the Collector's attributesprocessor: a list of actions on
//! the attributes of each span or log record. The same actions, on resource attributes, are
//! the [`resource`](super::resource) processor's (the Collector's `attraction` package,
//! shared the same way).
//!
//! ```yaml
//! attributes:
//!   actions:
//!     - {key: deployment.environment, action: upsert, value: prod}
//!     - {key: user.email, action: hash}
//!     - {key: http.url, action: extract, pattern: '^https?://(?P<http_host>[^/]+)(?P<http_path>/[^?]*)'}
//!     - {pattern: '^debug\.', action: delete}
//!     - {key: http.status_code, action: convert, converted_type: int}
//! ```
//!
//! # Contract
//!
//! Actions run in order on each attribute list, as the Collector's do:
//! - `insert` adds `key` when absent; `update` changes it when present; `upsert` does
//!   either. The value is `value` (any YAML scalar, list or map) or the value of the
//!   attribute `from_attribute` (nothing happens when that is absent).
//! - `delete` removes `key` and every key `pattern` matches; `hash` replaces those values
//!   with the hex SHA-256 of their bytes (strings as UTF-8, booleans as one byte, ints and
//!   doubles as 8 little-endian bytes — the Collector's encoding; bytes as they are, lists
//!   and maps as their JSON text, which the Collector leaves empty); an empty string stays
//!   empty, as in the Collector.
//! - `extract` matches `pattern` (every group named) on the string value of `key` and upserts
//!   one string attribute per group; a value that is not a string, or does not match, is left
//!   alone.
//! - `convert` turns `key`'s value into `int`, `double` or `string`; a value that does not
//!   convert (`"abc"` to int) stays as it was, logged at debug, as in the Collector.
//!
//! Not supported, each a config error saying so: `from_context` (request metadata does not
//! reach Weft's processors) and the `include` / `exclude` match properties (write a
//! `transform` statement with a `where` clause, or a `filter`). Regexes are the `regex`
//! crate's: linear time, no catastrophic backtracking.

use std::sync::Arc;

use async_trait::async_trait;
use regex::Regex;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use weft_config::{ComponentConfig, ConfigPath, Diagnostics};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};

use crate::component::{BuildContext, Component, Processor, ProcessorFactory, Stability};
use crate::ottl::items::OttlSignal;
use crate::ottl::Value;
use crate::pipeline::{Batch, ConsumeError, Consumer, Payload};

/// `processors::attributes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The actions, run in order on each span's or log record's attributes.
    pub actions: Vec<ActionConfig>,
    /// The Collector's match properties: not supported (a config error).
    pub include: Option<serde_yaml::Value>,
    /// The Collector's match properties: not supported (a config error).
    pub exclude: Option<serde_yaml::Value>,
}

/// One action as configured (the Collector's `ActionKeyValue`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionConfig {
    pub key: String,
    /// `insert`, `update`, `upsert`, `delete`, `hash`, `extract`, `convert` (any case).
    pub action: String,
    pub value: Option<serde_yaml::Value>,
    pub from_attribute: Option<String>,
    pub from_context: Option<String>,
    pub pattern: Option<String>,
    pub converted_type: Option<String>,
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        for (key, set) in [("include", &self.include), ("exclude", &self.exclude)] {
            if set.is_some() {
                diags.error(
                    &path.key(key),
                    "match properties (include/exclude) are not supported by Weft: choose the items with a transform statement's where clause, or drop them with filter",
                );
            }
        }
        check_actions(&self.actions, &path.key("actions"), diags);
    }
}

/// Checks a list of actions (also the `resource` processor's `attributes`), every mistake
/// with its path.
pub fn check_actions(actions: &[ActionConfig], path: &ConfigPath, diags: &mut Diagnostics) {
    if actions.is_empty() {
        diags.error(path, "at least one action is required");
    }
    for (i, action) in actions.iter().enumerate() {
        if let Err(errors) = Action::compile(action) {
            for (field, message) in errors {
                let at = path.index(i);
                diags.error(&field.map_or(at.clone(), |f| at.key(f)), message);
            }
        }
    }
}

/// Where an action's value comes from.
#[derive(Clone, Debug)]
enum Source {
    Value(AnyValue),
    Attribute(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Int,
    Double,
    String,
}

/// One action, checked and compiled.
#[derive(Clone, Debug)]
enum Action {
    Insert(String, Source),
    Update(String, Source),
    Upsert(String, Source),
    Delete(String, Option<Regex>),
    Hash(String, Option<Regex>),
    Extract {
        key: String,
        regex: Regex,
        names: Vec<String>,
    },
    Convert(String, Target),
}

/// A config error: the field it is about (none: the action itself) and the message.
type FieldError = (Option<&'static str>, String);

impl Action {
    fn compile(a: &ActionConfig) -> Result<Self, Vec<FieldError>> {
        let mut errors: Vec<FieldError> = Vec::new();
        let action = a.action.to_ascii_lowercase();
        let forbid = |errors: &mut Vec<FieldError>, field: &'static str, set: bool| {
            if set {
                errors.push((
                    Some(field),
                    format!("action {action:?} does not use {field}: remove it"),
                ));
            }
        };
        let regex = |errors: &mut Vec<FieldError>| -> Option<Regex> {
            let pattern = a.pattern.as_deref()?;
            match Regex::new(pattern) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.push((Some("pattern"), format!("invalid regular expression: {e}")));
                    None
                }
            }
        };
        if a.from_context.is_some() {
            errors.push((
                Some("from_context"),
                "from_context is not supported by Weft: request metadata does not reach processors"
                    .to_string(),
            ));
        }
        let needs_key = |errors: &mut Vec<FieldError>| {
            if a.key.is_empty() {
                errors.push((Some("key"), format!("action {action:?} needs a key")));
            }
        };
        let compiled = match action.as_str() {
            "insert" | "update" | "upsert" => {
                needs_key(&mut errors);
                forbid(&mut errors, "pattern", a.pattern.is_some());
                forbid(&mut errors, "converted_type", a.converted_type.is_some());
                let source = match (&a.value, &a.from_attribute) {
                    (Some(v), None) => match yaml_to_any(v) {
                        Ok(v) => Some(Source::Value(v)),
                        Err(e) => {
                            errors.push((Some("value"), e));
                            None
                        }
                    },
                    (None, Some(from)) => Some(Source::Attribute(from.clone())),
                    (None, None) if a.from_context.is_some() => None,
                    (None, None) => {
                        errors.push((
                            None,
                            format!("action {action:?} needs a value or from_attribute"),
                        ));
                        None
                    }
                    (Some(_), Some(_)) => {
                        errors.push((
                            None,
                            "value and from_attribute are two sources: keep one".to_string(),
                        ));
                        None
                    }
                };
                source.map(|s| match action.as_str() {
                    "insert" => Action::Insert(a.key.clone(), s),
                    "update" => Action::Update(a.key.clone(), s),
                    _ => Action::Upsert(a.key.clone(), s),
                })
            }
            "delete" | "hash" => {
                if a.key.is_empty() && a.pattern.is_none() {
                    errors.push((
                        None,
                        format!("action {action:?} needs a key, a pattern, or both"),
                    ));
                }
                forbid(&mut errors, "value", a.value.is_some());
                forbid(&mut errors, "from_attribute", a.from_attribute.is_some());
                forbid(&mut errors, "converted_type", a.converted_type.is_some());
                let r = regex(&mut errors);
                Some(if action == "delete" {
                    Action::Delete(a.key.clone(), r)
                } else {
                    Action::Hash(a.key.clone(), r)
                })
            }
            "extract" => {
                needs_key(&mut errors);
                forbid(&mut errors, "value", a.value.is_some());
                forbid(&mut errors, "from_attribute", a.from_attribute.is_some());
                forbid(&mut errors, "converted_type", a.converted_type.is_some());
                if a.pattern.is_none() {
                    errors.push((
                        Some("pattern"),
                        "action \"extract\" needs a pattern with named groups".to_string(),
                    ));
                }
                regex(&mut errors).and_then(|r| {
                    let names: Vec<Option<&str>> = r.capture_names().skip(1).collect();
                    if names.is_empty() {
                        errors.push((
                            Some("pattern"),
                            "the pattern has no group: name each one, e.g. (?P<http_host>[^/]+)"
                                .to_string(),
                        ));
                        return None;
                    }
                    if names.iter().any(Option::is_none) {
                        errors.push((
                            Some("pattern"),
                            "every group of the pattern must be named, e.g. (?P<http_host>[^/]+); use (?:…) for the others".to_string(),
                        ));
                        return None;
                    }
                    let names = names.into_iter().flatten().map(str::to_string).collect();
                    Some(Action::Extract {
                        key: a.key.clone(),
                        regex: r,
                        names,
                    })
                })
            }
            "convert" => {
                needs_key(&mut errors);
                forbid(&mut errors, "value", a.value.is_some());
                forbid(&mut errors, "from_attribute", a.from_attribute.is_some());
                forbid(&mut errors, "pattern", a.pattern.is_some());
                match a.converted_type.as_deref() {
                    Some("int") => Some(Action::Convert(a.key.clone(), Target::Int)),
                    Some("double") => Some(Action::Convert(a.key.clone(), Target::Double)),
                    Some("string") => Some(Action::Convert(a.key.clone(), Target::String)),
                    Some(other) => {
                        errors.push((
                            Some("converted_type"),
                            format!("unknown type {other:?}: expected int, double or string"),
                        ));
                        None
                    }
                    None => {
                        errors.push((
                            Some("converted_type"),
                            "action \"convert\" needs converted_type: int, double or string"
                                .to_string(),
                        ));
                        None
                    }
                }
            }
            "" => {
                errors.push((
                    Some("action"),
                    "an action is required: insert, update, upsert, delete, hash, extract or convert".to_string(),
                ));
                None
            }
            other => {
                errors.push((
                    Some("action"),
                    format!("unknown action {other:?}: expected insert, update, upsert, delete, hash, extract or convert"),
                ));
                None
            }
        };
        match compiled {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }
}

/// A YAML value as an OTLP value (the Collector's `pcommon.Value.FromRaw`).
fn yaml_to_any(v: &serde_yaml::Value) -> Result<AnyValue, String> {
    use serde_yaml::Value as Y;
    let value = match v {
        Y::Null => return Err("a value is required (null is not a value)".to_string()),
        Y::Bool(b) => any_value::Value::BoolValue(*b),
        Y::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => any_value::Value::IntValue(i),
            (None, Some(f)) => any_value::Value::DoubleValue(f),
            _ => return Err(format!("{n} does not fit a 64-bit number")),
        },
        Y::String(s) => any_value::Value::StringValue(s.clone()),
        Y::Sequence(items) => any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(yaml_to_any).collect::<Result<_, _>>()?,
        }),
        Y::Mapping(m) => {
            let mut values = Vec::with_capacity(m.len());
            for (k, v) in m {
                let Y::String(key) = k else {
                    return Err("map keys must be strings".to_string());
                };
                values.push(KeyValue {
                    key: key.clone(),
                    value: Some(yaml_to_any(v)?),
                    ..Default::default()
                });
            }
            any_value::Value::KvlistValue(KeyValueList { values })
        }
        Y::Tagged(t) => return yaml_to_any(&t.value),
    };
    Ok(AnyValue { value: Some(value) })
}

/// Compiled actions, run on attribute lists.
#[derive(Clone, Debug)]
pub struct Actions {
    actions: Vec<Action>,
}

impl Actions {
    /// Compiles actions that [`check_actions`] accepted.
    pub fn new(configs: &[ActionConfig]) -> anyhow::Result<Self> {
        let actions = configs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                Action::compile(a).map_err(|errors| {
                    let messages: Vec<String> = errors.into_iter().map(|(_, m)| m).collect();
                    anyhow::anyhow!("action {i}: {}", messages.join("; "))
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { actions })
    }

    /// Runs every action, in order, on `attrs`.
    pub fn apply(&self, attrs: &mut Vec<KeyValue>) {
        for action in &self.actions {
            match action {
                Action::Insert(key, source) => {
                    if find(attrs, key).is_none() {
                        if let Some(v) = source_value(source, attrs) {
                            attrs.push(entry(key, v));
                        }
                    }
                }
                Action::Update(key, source) => {
                    if let (Some(i), Some(v)) = (find(attrs, key), source_value(source, attrs)) {
                        attrs[i].value = Some(v);
                    }
                }
                Action::Upsert(key, source) => {
                    if let Some(v) = source_value(source, attrs) {
                        upsert(attrs, key, v);
                    }
                }
                Action::Delete(key, pattern) => {
                    attrs.retain(|kv| {
                        kv.key != *key && !pattern.as_ref().is_some_and(|p| p.is_match(&kv.key))
                    });
                }
                Action::Hash(key, pattern) => {
                    for kv in attrs.iter_mut() {
                        if kv.key == *key || pattern.as_ref().is_some_and(|p| p.is_match(&kv.key)) {
                            let hashed = hash_value(kv.value.as_ref());
                            kv.value = Some(string(hashed));
                        }
                    }
                }
                Action::Extract { key, regex, names } => {
                    let Some(i) = find(attrs, key) else { continue };
                    let Some(any_value::Value::StringValue(text)) =
                        attrs[i].value.as_ref().and_then(|v| v.value.as_ref())
                    else {
                        continue;
                    };
                    let Some(caps) = regex.captures(text) else {
                        continue;
                    };
                    let found: Vec<(String, String)> = names
                        .iter()
                        .map(|n| {
                            let v = caps.name(n).map_or("", |m| m.as_str());
                            (n.clone(), v.to_string())
                        })
                        .collect();
                    for (name, value) in found {
                        upsert(attrs, &name, string(value));
                    }
                }
                Action::Convert(key, to) => {
                    if let Some(i) = find(attrs, key) {
                        convert(&mut attrs[i], *to);
                    }
                }
            }
        }
    }
}

fn find(attrs: &[KeyValue], key: &str) -> Option<usize> {
    attrs.iter().position(|kv| kv.key == key)
}

fn entry(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

fn upsert(attrs: &mut Vec<KeyValue>, key: &str, value: AnyValue) {
    match find(attrs, key) {
        Some(i) => attrs[i].value = Some(value),
        None => attrs.push(entry(key, value)),
    }
}

fn string(s: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    }
}

fn source_value(source: &Source, attrs: &[KeyValue]) -> Option<AnyValue> {
    match source {
        Source::Value(v) => Some(v.clone()),
        Source::Attribute(from) => find(attrs, from).and_then(|i| attrs[i].value.clone()),
    }
}

/// The hex SHA-256 of a value's bytes, encoded as the Collector encodes them.
fn hash_value(value: Option<&AnyValue>) -> String {
    let bytes: Vec<u8> = match value.and_then(|v| v.value.as_ref()) {
        None => Vec::new(),
        Some(any_value::Value::StringValue(s)) => s.as_bytes().to_vec(),
        Some(any_value::Value::BoolValue(b)) => vec![u8::from(*b)],
        Some(any_value::Value::IntValue(i)) => i.to_le_bytes().to_vec(),
        Some(any_value::Value::DoubleValue(d)) => d.to_bits().to_le_bytes().to_vec(),
        Some(any_value::Value::BytesValue(b)) => b.clone(),
        Some(_) => Value::from_any(value)
            .to_string_like()
            .ok()
            .flatten()
            .map(|s| s.into_owned().into_bytes())
            .unwrap_or_default(),
    };
    if bytes.is_empty() {
        return String::new();
    }
    hex::encode(Sha256::digest(&bytes))
}

/// Converts a value in place; one that does not convert stays as it was.
fn convert(kv: &mut KeyValue, to: Target) {
    use any_value::Value as V;
    let Some(current) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else {
        return;
    };
    let converted = match (to, current) {
        (Target::Int, V::IntValue(_))
        | (Target::Double, V::DoubleValue(_))
        | (Target::String, V::StringValue(_)) => return,
        (Target::Int, V::DoubleValue(d)) => Some(V::IntValue(*d as i64)),
        (Target::Int, V::BoolValue(b)) => Some(V::IntValue(i64::from(*b))),
        (Target::Int, V::StringValue(s)) => s.parse::<i64>().ok().map(V::IntValue),
        (Target::Double, V::IntValue(i)) => Some(V::DoubleValue(*i as f64)),
        (Target::Double, V::BoolValue(b)) => Some(V::DoubleValue(f64::from(u8::from(*b)))),
        (Target::Double, V::StringValue(s)) => s.trim().parse::<f64>().ok().map(V::DoubleValue),
        (Target::String, _) => Value::from_any(kv.value.as_ref())
            .to_string_like()
            .ok()
            .flatten()
            .map(|s| V::StringValue(s.into_owned())),
        _ => None,
    };
    match converted {
        Some(v) => kv.value = Some(AnyValue { value: Some(v) }),
        None => {
            tracing::debug!(key = %kv.key, to = ?to, "attribute value could not be converted; left as it was")
        }
    }
}

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "attributes",
        Stability::Beta,
        "inserts, updates, deletes, hashes, extracts and converts span and log record attributes",
    )
    .signal::<ExportTraceServiceRequest, Config>(build::<ExportTraceServiceRequest>)
    .signal::<ExportLogsServiceRequest, Config>(build::<ExportLogsServiceRequest>)
}

fn build<S: OttlSignal>(
    _ctx: BuildContext,
    cfg: &Config,
    next: Arc<dyn Consumer<Batch<S>>>,
) -> anyhow::Result<Arc<dyn Processor<Batch<S>>>> {
    Ok(Arc::new(OnAttributes {
        actions: Actions::new(&cfg.actions)?,
        on_resources: false,
        next,
    }))
}

/// Runs actions on the items' attributes (`attributes`) or the resources' (`resource`).
pub struct OnAttributes<S: OttlSignal> {
    actions: Actions,
    on_resources: bool,
    next: Arc<dyn Consumer<Batch<S>>>,
}

impl<S: OttlSignal> OnAttributes<S> {
    /// The `resource` processor's stage: `actions` on each resource's attributes.
    pub fn on_resources(actions: Actions, next: Arc<dyn Consumer<Batch<S>>>) -> Self {
        Self {
            actions,
            on_resources: true,
            next,
        }
    }
}

#[async_trait]
impl<S: OttlSignal> Consumer<Batch<S>> for OnAttributes<S> {
    async fn consume(&self, mut data: Batch<S>) -> Result<(), ConsumeError> {
        let request = data.request_mut();
        if self.on_resources {
            request.resource_attributes_mut(&mut |attrs| self.actions.apply(attrs));
        } else {
            request.item_attributes_mut(&mut |attrs| self.actions.apply(attrs));
        }
        self.next.consume(data).await
    }
}

impl<S: OttlSignal> Component for OnAttributes<S> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::testutil::{attr, config, kv, string as s};

    fn actions(yaml: &str) -> Actions {
        let (cfg, diags) = config::<Config>("processors::attributes", yaml);
        assert!(diags.is_empty(), "{diags:#?}");
        Actions::new(&cfg.unwrap().actions).unwrap()
    }

    fn record(attrs: Vec<KeyValue>) -> weft_proto::logs::v1::LogRecord {
        weft_proto::logs::v1::LogRecord {
            attributes: attrs,
            ..Default::default()
        }
    }

    #[test]
    fn insert_update_upsert_delete_as_the_collector_does() {
        let a = actions(
            r#"
actions:
  - {key: env, action: insert, value: prod}
  - {key: region, action: insert, value: east}
  - {key: missing, action: update, value: x}
  - {key: region, action: update, from_attribute: zone}
  - {key: copy, action: upsert, from_attribute: absent}
  - {key: n, action: upsert, value: 3}
  - {key: secret, action: delete}
  - {pattern: '^debug\.', action: delete}
"#,
        );
        let mut attrs = vec![
            kv("region", s("west")),
            kv("zone", s("w1")),
            kv("secret", s("x")),
            kv("debug.a", s("1")),
            kv("debug.b", s("2")),
        ];
        a.apply(&mut attrs);
        let r = record(attrs);
        assert_eq!(attr(&r, "env"), "prod");
        assert_eq!(attr(&r, "region"), "w1");
        assert_eq!(attr(&r, "missing"), "<absent>", "update never adds");
        assert_eq!(attr(&r, "copy"), "<absent>", "no source, no action");
        assert_eq!(attr(&r, "n"), "3");
        assert_eq!(attr(&r, "secret"), "<absent>");
        assert_eq!(attr(&r, "debug.a"), "<absent>");
        assert_eq!(r.attributes.len(), 4);
    }

    #[test]
    fn hash_extract_and_convert() {
        let a = actions(
            r#"
actions:
  - {key: email, action: hash}
  - {key: empty, action: hash}
  - {key: count, action: hash}
  - {key: url, action: extract, pattern: '^https?://(?P<host>[^/]+)(?P<path>/[^?]*)'}
  - {key: code, action: convert, converted_type: int}
  - {key: bad, action: convert, converted_type: int}
  - {key: ratio, action: convert, converted_type: string}
"#,
        );
        let mut attrs = vec![
            kv("email", s("a@b.c")),
            kv("empty", s("")),
            kv(
                "count",
                AnyValue {
                    value: Some(any_value::Value::IntValue(1)),
                },
            ),
            kv("url", s("https://shop.example/cart/items?id=3")),
            kv("code", s("503")),
            kv("bad", s("five")),
            kv(
                "ratio",
                AnyValue {
                    value: Some(any_value::Value::DoubleValue(0.5)),
                },
            ),
        ];
        a.apply(&mut attrs);
        let r = record(attrs);
        assert_eq!(attr(&r, "email"), hex::encode(Sha256::digest(b"a@b.c")));
        assert_eq!(attr(&r, "empty"), "");
        assert_eq!(
            attr(&r, "count"),
            hex::encode(Sha256::digest(1i64.to_le_bytes()))
        );
        assert_eq!(attr(&r, "host"), "shop.example");
        assert_eq!(attr(&r, "path"), "/cart/items");
        let code = r.attributes.iter().find(|k| k.key == "code").unwrap();
        assert_eq!(
            code.value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(503))
        );
        assert_eq!(attr(&r, "bad"), "five", "left as it was");
        assert_eq!(attr(&r, "ratio"), "0.5");
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let (_, diags) = config::<Config>(
            "processors::attributes",
            r#"
include: {match_type: strict, services: [a]}
actions:
  - {key: a, action: insert}
  - {key: a, action: upsert, value: 1, from_attribute: b}
  - {action: delete}
  - {key: a, action: extract, pattern: '(\d+)'}
  - {key: a, action: extract, pattern: '(?P<n>\d+'}
  - {key: a, action: convert, converted_type: float}
  - {key: a, action: frobnicate}
  - {key: a, action: insert, from_context: metadata.tenant}
  - {key: a, action: hash, value: x}
"#,
        );
        let expect = [
            "error: processors::attributes::include: match properties (include/exclude) are not supported",
            "error: processors::attributes::actions[0]: action \"insert\" needs a value or from_attribute",
            "error: processors::attributes::actions[1]: value and from_attribute are two sources",
            "error: processors::attributes::actions[2]: action \"delete\" needs a key, a pattern, or both",
            "error: processors::attributes::actions[3]::pattern: every group of the pattern must be named",
            "error: processors::attributes::actions[4]::pattern: invalid regular expression:",
            "error: processors::attributes::actions[5]::converted_type: unknown type \"float\"",
            "error: processors::attributes::actions[6]::action: unknown action \"frobnicate\"",
            "error: processors::attributes::actions[7]::from_context: from_context is not supported",
            "error: processors::attributes::actions[8]::value: action \"hash\" does not use value",
        ];
        for e in expect {
            assert!(
                diags.iter().any(|d| d.starts_with(e)),
                "missing {e:?} in {diags:#?}"
            );
        }
        assert_eq!(diags.len(), expect.len(), "{diags:#?}");
        let (_, diags) = config::<Config>("processors::attributes", "{}");
        assert_eq!(
            diags,
            ["error: processors::attributes::actions: at least one action is required"]
        );
    }

    #[tokio::test]
    async fn the_processor_changes_record_attributes_and_passes_the_batch_on() {
        use crate::processors::testutil::{logs, records, Recorder};
        let (cfg, _) = config::<Config>(
            "processors::attributes",
            "actions: [{key: env, action: upsert, value: prod}]",
        );
        let sink = Recorder::new();
        let p = build::<ExportLogsServiceRequest>(
            BuildContext::standalone("attributes", weft_config::Kind::Processor),
            &cfg.unwrap(),
            sink.clone(),
        )
        .unwrap();
        p.consume(logs("s", &["a", "b"])).await.unwrap();
        let got = records(&sink.batches.lock());
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|r| attr(r, "env") == "prod"));
    }
}
