//! Values at evaluation time, with OTTL's comparison rules and conversions.
//!
//! Values read from telemetry borrow it (an attribute's string, an attribute list as a map):
//! evaluating `attributes["http.route"] == "/checkout"` allocates nothing.

use std::borrow::Cow;
use std::cmp::Ordering;

use weft_proto::common::v1::{any_value, AnyValue, KeyValue};

use super::ast::{CompareOp, MathOp};
use super::EvalError;

/// One OTTL value.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    /// `nil`, a missing attribute, an empty `AnyValue`.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    Map(Map<'a>),
    List(List<'a>),
    /// A point in time, in nanoseconds since the Unix epoch (UTC): what the `time` paths
    /// and the `Time` converter give, and `UnixMilli` reads.
    Time(i64),
}

/// A map: attributes (or a kvlist) as they sit in the telemetry, owned key/values (what
/// `ParseJSON` builds, and what an owned copy of attributes is), or one built by evaluation.
///
/// `OwnedAttributes` is already in the form the telemetry stores: an editor writing it moves
/// the vector into the record ([`Value::into_any`]), copying no key and no string.
#[derive(Clone, Debug)]
pub enum Map<'a> {
    Attributes(&'a [KeyValue]),
    OwnedAttributes(Vec<KeyValue>),
    Owned(Vec<(String, Value<'a>)>),
}

/// A list: an array value as it sits in the telemetry, owned OTLP values (`ParseJSON`'s
/// arrays), or one built by evaluation.
#[derive(Clone, Debug)]
pub enum List<'a> {
    Any(&'a [AnyValue]),
    OwnedAny(Vec<AnyValue>),
    Owned(Vec<Value<'a>>),
}

impl<'a> Value<'a> {
    /// An `AnyValue` read as OTTL reads pdata values (an empty one is nil).
    pub fn from_any(value: Option<&'a AnyValue>) -> Value<'a> {
        match value.and_then(|v| v.value.as_ref()) {
            // A string-table index only means something inside a profile: nothing here.
            None | Some(any_value::Value::StringValueStrindex(_)) => Value::Nil,
            Some(any_value::Value::StringValue(s)) => Value::Str(Cow::Borrowed(s)),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Value::Int(*i),
            Some(any_value::Value::DoubleValue(f)) => Value::Float(*f),
            Some(any_value::Value::BytesValue(b)) => Value::Bytes(Cow::Borrowed(b)),
            Some(any_value::Value::ArrayValue(a)) => Value::List(List::Any(&a.values)),
            Some(any_value::Value::KvlistValue(kv)) => Value::Map(Map::Attributes(&kv.values)),
        }
    }

    /// An owned `AnyValue` as an OTTL value, moving its strings and lists (no copy).
    pub fn from_any_owned(value: AnyValue) -> Value<'static> {
        match value.value {
            None | Some(any_value::Value::StringValueStrindex(_)) => Value::Nil,
            Some(any_value::Value::StringValue(s)) => Value::Str(Cow::Owned(s)),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
            Some(any_value::Value::IntValue(i)) => Value::Int(i),
            Some(any_value::Value::DoubleValue(f)) => Value::Float(f),
            Some(any_value::Value::BytesValue(b)) => Value::Bytes(Cow::Owned(b)),
            Some(any_value::Value::ArrayValue(a)) => Value::List(List::OwnedAny(a.values)),
            Some(any_value::Value::KvlistValue(kv)) => Value::Map(Map::OwnedAttributes(kv.values)),
        }
    }

    /// This value borrowing from `self` (literals are evaluated without copying).
    pub fn reborrow(&self) -> Value<'_> {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Str(s) => Value::Str(Cow::Borrowed(s)),
            Value::Bytes(b) => Value::Bytes(Cow::Borrowed(b)),
            Value::Map(Map::Attributes(a)) => Value::Map(Map::Attributes(a)),
            Value::Map(Map::OwnedAttributes(a)) => Value::Map(Map::Attributes(a)),
            Value::Map(Map::Owned(entries)) => Value::Map(Map::Owned(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.reborrow()))
                    .collect(),
            )),
            Value::List(List::Any(a)) => Value::List(List::Any(a)),
            Value::List(List::OwnedAny(a)) => Value::List(List::Any(a)),
            Value::List(List::Owned(items)) => {
                Value::List(List::Owned(items.iter().map(Value::reborrow).collect()))
            }
            Value::Time(t) => Value::Time(*t),
        }
    }

    /// This value with nothing borrowed from the telemetry, so an editor can change the
    /// telemetry it was read from. What is borrowed is copied once; what is already owned
    /// (a `ParseJSON` result, a built map) is moved, not copied.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Time(t) => Value::Time(t),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Map(Map::Attributes(a)) => Value::Map(Map::OwnedAttributes(a.to_vec())),
            Value::Map(Map::OwnedAttributes(a)) => Value::Map(Map::OwnedAttributes(a)),
            Value::Map(Map::Owned(entries)) => Value::Map(Map::Owned(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, v.into_owned()))
                    .collect(),
            )),
            Value::List(List::Any(a)) => Value::List(List::OwnedAny(a.to_vec())),
            Value::List(List::OwnedAny(a)) => Value::List(List::OwnedAny(a)),
            Value::List(List::Owned(items)) => Value::List(List::Owned(
                items.into_iter().map(Value::into_owned).collect(),
            )),
        }
    }

    /// The value as an OTLP `AnyValue`, as [`Value::to_any`] makes it, moving what the value
    /// owns (strings, `ParseJSON`'s maps) instead of copying it: what `set` stores.
    pub fn into_any(self) -> Result<AnyValue, EvalError> {
        use weft_proto::common::v1::{ArrayValue, KeyValueList};
        let value = match self {
            Value::Str(s) => Some(any_value::Value::StringValue(s.into_owned())),
            Value::Bytes(b) => Some(any_value::Value::BytesValue(b.into_owned())),
            Value::Map(m) => Some(any_value::Value::KvlistValue(KeyValueList {
                values: m.into_key_values()?,
            })),
            Value::List(List::OwnedAny(values)) => {
                Some(any_value::Value::ArrayValue(ArrayValue { values }))
            }
            Value::List(List::Owned(items)) => Some(any_value::Value::ArrayValue(ArrayValue {
                values: items
                    .into_iter()
                    .map(Value::into_any)
                    .collect::<Result<_, _>>()?,
            })),
            other => return other.to_any(),
        };
        Ok(AnyValue { value })
    }

    /// The value as an OTLP `AnyValue`, for an editor to store. Nil is the empty value; a
    /// time has no `AnyValue` form (the Collector refuses it too): convert it first with
    /// `UnixMilli` or `String`.
    pub fn to_any(&self) -> Result<AnyValue, EvalError> {
        use weft_proto::common::v1::{ArrayValue, KeyValueList};
        let value = match self {
            Value::Nil => None,
            Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
            Value::Int(i) => Some(any_value::Value::IntValue(*i)),
            Value::Float(f) => Some(any_value::Value::DoubleValue(*f)),
            Value::Str(s) => Some(any_value::Value::StringValue(s.to_string())),
            Value::Bytes(b) => Some(any_value::Value::BytesValue(b.to_vec())),
            Value::Map(m) => Some(any_value::Value::KvlistValue(KeyValueList {
                values: m.to_key_values()?,
            })),
            Value::List(List::OwnedAny(values)) => Some(any_value::Value::ArrayValue(ArrayValue {
                values: values.clone(),
            })),
            Value::List(l) => {
                let mut values = Vec::with_capacity(l.len());
                for i in 0..l.len() {
                    values.push(l.get(i).unwrap_or(Value::Nil).to_any()?);
                }
                Some(any_value::Value::ArrayValue(ArrayValue { values }))
            }
            Value::Time(_) => return Err(EvalError::new(
                "a time cannot be stored as a value: convert it with UnixMilli(...) or String(...)",
            )),
        };
        Ok(AnyValue { value })
    }

    /// A parsed JSON document as an OTTL value: every number is a double, `null` is nil,
    /// objects are maps (keys sorted, as `serde_json::Map` holds them). `ParseJSON` parses
    /// straight into OTLP values instead ([`super::json`]), with the same result.
    pub fn from_json(json: serde_json::Value) -> Value<'static> {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            J::String(s) => Value::Str(Cow::Owned(s)),
            J::Array(items) => Value::List(List::Owned(
                items.into_iter().map(Value::from_json).collect(),
            )),
            J::Object(object) => Value::Map(Map::Owned(
                object
                    .into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            )),
        }
    }

    /// The type's name in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "double",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Map(_) => "map",
            Value::List(_) => "list",
            Value::Time(_) => "time",
        }
    }

    /// Indexes a map by a string key or a list by an int. A missing map key is nil; an
    /// index out of range, or indexing anything else, is an error.
    pub fn index(self, key: &Value<'_>) -> Result<Value<'a>, EvalError> {
        match (self, key) {
            // An owned map gives its entry away instead of copying it.
            (Value::Map(Map::OwnedAttributes(entries)), Value::Str(k)) => Ok(entries
                .into_iter()
                .find(|kv| kv.key == *k)
                .map_or(Value::Nil, |kv| {
                    Value::from_any_owned(kv.value.unwrap_or_default())
                })),
            (Value::Map(m), Value::Str(k)) => Ok(m.get(k).unwrap_or(Value::Nil)),
            (Value::List(l), Value::Int(i)) => {
                let len = l.len();
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| l.get(i))
                    .ok_or_else(|| {
                        EvalError::new(format!("index {i} out of bounds: the list has {len} items"))
                    })
            }
            (Value::Map(_), k) => Err(EvalError::new(format!(
                "a map is indexed by a string, not by {}",
                k.type_name()
            ))),
            (Value::List(_), k) => Err(EvalError::new(format!(
                "a list is indexed by an int, not by {}",
                k.type_name()
            ))),
            (v, _) => Err(EvalError::new(format!(
                "a {} value cannot be indexed",
                v.type_name()
            ))),
        }
    }

    /// The value as OTTL's string-like getters convert it: strings as they are, numbers and
    /// booleans as text, bytes as hex, maps and lists as JSON; `None` for nil.
    pub fn to_string_like(self) -> Result<Option<Cow<'a, str>>, EvalError> {
        Ok(Some(match self {
            Value::Nil => return Ok(None),
            Value::Str(s) => s,
            Value::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Float(f) => Cow::Owned(format_float(f)),
            Value::Bytes(b) => Cow::Owned(hex::encode(b)),
            v @ (Value::Map(_) | Value::List(_)) => Cow::Owned(v.to_json()?.to_string()),
            Value::Time(t) => Cow::Owned(format_time(t)),
        }))
    }

    /// The value as OTTL's int-like getters convert it: a string that is not an integer is
    /// `None` (as in the Collector), a double is truncated.
    pub fn to_int_like(&self) -> Result<Option<i64>, EvalError> {
        match self {
            Value::Nil => Ok(None),
            Value::Int(i) => Ok(Some(*i)),
            Value::Float(f) => Ok(Some(*f as i64)),
            Value::Bool(b) => Ok(Some(i64::from(*b))),
            Value::Str(s) => Ok(s.parse::<i64>().ok()),
            v => Err(EvalError::new(format!(
                "unsupported type: {} cannot be converted to an int",
                v.type_name()
            ))),
        }
    }

    /// The value as OTTL's float-like getters convert it: a string that is not a number is
    /// an error (as in the Collector).
    pub fn to_float_like(&self) -> Result<Option<f64>, EvalError> {
        match self {
            Value::Nil => Ok(None),
            Value::Float(f) => Ok(Some(*f)),
            Value::Int(i) => Ok(Some(*i as f64)),
            Value::Bool(b) => Ok(Some(if *b { 1.0 } else { 0.0 })),
            Value::Str(s) => s.parse::<f64>().map(Some).map_err(|_| {
                EvalError::new(format!("cannot convert the string {s:?} to a double"))
            }),
            v => Err(EvalError::new(format!(
                "unsupported type: {} cannot be converted to a double",
                v.type_name()
            ))),
        }
    }

    /// The value as JSON (maps with sorted keys, bytes as hex, times as RFC 3339).
    pub fn to_json(&self) -> Result<serde_json::Value, EvalError> {
        use serde_json::Value as J;
        Ok(match self {
            Value::Nil => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .ok_or_else(|| EvalError::new(format!("json: unsupported value: {f}")))?,
            Value::Str(s) => J::String(s.to_string()),
            Value::Time(t) => J::String(format_time(*t)),
            // The Collector writes base64 here; Weft writes hex, as it shows bytes elsewhere.
            Value::Bytes(b) => J::String(hex::encode(b)),
            Value::Map(m) => {
                // Sorted keys (Go's encoding/json sorts map keys), the first of duplicates.
                let mut entries: Vec<(String, Value<'_>)> = Vec::new();
                m.for_each(|k, v| {
                    if !entries.iter().any(|(e, _)| e == k) {
                        entries.push((k.to_string(), v));
                    }
                });
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut object = serde_json::Map::new();
                for (k, v) in entries {
                    object.insert(k, v.to_json()?);
                }
                J::Object(object)
            }
            Value::List(l) => {
                let mut items = Vec::with_capacity(l.len());
                for i in 0..l.len() {
                    items.push(l.get(i).unwrap_or(Value::Nil).to_json()?);
                }
                J::Array(items)
            }
        })
    }
}

impl<'a> Map<'a> {
    /// The value of the first entry named `key`.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        match self {
            Map::Attributes(attrs) => attrs
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| Value::from_any(kv.value.as_ref())),
            Map::OwnedAttributes(attrs) => attrs
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| Value::from_any_owned(kv.value.clone().unwrap_or_default())),
            Map::Owned(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Map::Attributes(attrs) => attrs.len(),
            Map::OwnedAttributes(attrs) => attrs.len(),
            Map::Owned(entries) => entries.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries as OTLP key/values (an editor storing the map).
    pub fn to_key_values(&self) -> Result<Vec<KeyValue>, EvalError> {
        match self {
            Map::Attributes(attrs) => Ok(attrs.to_vec()),
            Map::OwnedAttributes(attrs) => Ok(attrs.clone()),
            Map::Owned(entries) => entries
                .iter()
                .map(|(k, v)| {
                    Ok(KeyValue {
                        key: k.clone(),
                        value: Some(v.to_any()?),
                        ..Default::default()
                    })
                })
                .collect(),
        }
    }

    /// The entries as OTLP key/values, moving what the map owns.
    pub fn into_key_values(self) -> Result<Vec<KeyValue>, EvalError> {
        match self {
            Map::Attributes(attrs) => Ok(attrs.to_vec()),
            Map::OwnedAttributes(attrs) => Ok(attrs),
            Map::Owned(entries) => entries
                .into_iter()
                .map(|(key, v)| {
                    Ok(KeyValue {
                        key,
                        value: Some(v.into_any()?),
                        ..Default::default()
                    })
                })
                .collect(),
        }
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&str, Value<'a>)) {
        match self {
            Map::Attributes(attrs) => {
                for kv in *attrs {
                    f(&kv.key, Value::from_any(kv.value.as_ref()));
                }
            }
            Map::OwnedAttributes(attrs) => {
                for kv in attrs {
                    f(
                        &kv.key,
                        Value::from_any_owned(kv.value.clone().unwrap_or_default()),
                    );
                }
            }
            Map::Owned(entries) => {
                for (k, v) in entries {
                    f(k, v.clone());
                }
            }
        }
    }
}

impl<'a> List<'a> {
    pub fn len(&self) -> usize {
        match self {
            List::Any(items) => items.len(),
            List::OwnedAny(items) => items.len(),
            List::Owned(items) => items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, index: usize) -> Option<Value<'a>> {
        match self {
            List::Any(items) => items.get(index).map(|v| Value::from_any(Some(v))),
            List::OwnedAny(items) => items.get(index).map(|v| Value::from_any_owned(v.clone())),
            List::Owned(items) => items.get(index).cloned(),
        }
    }
}

/// A double as the Collector prints it (pdata's `AsString`, ECMAScript style): plain digits
/// from 1e-6 to 1e21, an exponent outside.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        // Go writes a sign on positive exponents too.
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else {
        format!("{f}")
    }
}

/// A time as RFC 3339 in UTC with nanoseconds (Go prints `2006-01-02 15:04:05 +0000 UTC`;
/// Weft writes what Elasticsearch and humans parse).
pub fn format_time(nanos: i64) -> String {
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(nanos);
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `a op b` by OTTL's comparison rules: nil equals only nil; ints and doubles compare as
/// numbers; strings and bytes compare bytewise; booleans order false before true; maps and
/// lists only compare for (deep) equality; anything else is unequal, and every ordering
/// between different types is false.
pub fn compare(a: &Value<'_>, b: &Value<'_>, op: CompareOp) -> bool {
    use Value as V;
    let ordered = |ord: Option<Ordering>| match ord {
        Some(o) => match op {
            CompareOp::Eq => o == Ordering::Equal,
            CompareOp::Ne => o != Ordering::Equal,
            CompareOp::Lt => o == Ordering::Less,
            CompareOp::Le => o != Ordering::Greater,
            CompareOp::Gt => o == Ordering::Greater,
            CompareOp::Ge => o != Ordering::Less,
        },
        // NaN: unordered, and unequal to everything.
        None => op == CompareOp::Ne,
    };
    match (a, b) {
        (V::Nil, V::Nil) => matches!(op, CompareOp::Eq | CompareOp::Le | CompareOp::Ge),
        (V::Bool(x), V::Bool(y)) => ordered(Some(x.cmp(y))),
        (V::Int(x), V::Int(y)) => ordered(Some(x.cmp(y))),
        (V::Int(x), V::Float(y)) => ordered((*x as f64).partial_cmp(y)),
        (V::Float(x), V::Int(y)) => ordered(x.partial_cmp(&(*y as f64))),
        (V::Float(x), V::Float(y)) => ordered(x.partial_cmp(y)),
        (V::Str(x), V::Str(y)) => ordered(Some(x.as_bytes().cmp(y.as_bytes()))),
        (V::Bytes(x), V::Bytes(y)) => ordered(Some(x.as_ref().cmp(y.as_ref()))),
        (V::Time(x), V::Time(y)) => ordered(Some(x.cmp(y))),
        (V::Map(_), V::Map(_)) | (V::List(_), V::List(_)) => match op {
            CompareOp::Eq => deep_equal(a, b),
            CompareOp::Ne => !deep_equal(a, b),
            _ => false,
        },
        _ => op == CompareOp::Ne,
    }
}

/// Go's `reflect.DeepEqual` on the raw values: same types, same contents (an int is never
/// equal to a double), maps regardless of order.
fn deep_equal(a: &Value<'_>, b: &Value<'_>) -> bool {
    use Value as V;
    match (a, b) {
        (V::Nil, V::Nil) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Int(x), V::Int(y)) => x == y,
        (V::Float(x), V::Float(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Bytes(x), V::Bytes(y)) => x == y,
        (V::Time(x), V::Time(y)) => x == y,
        (V::List(x), V::List(y)) => {
            x.len() == y.len()
                && (0..x.len()).all(|i| match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => deep_equal(&p, &q),
                    _ => false,
                })
        }
        (V::Map(x), V::Map(y)) => {
            let keys = |m: &Map<'_>| {
                let mut keys: Vec<String> = Vec::new();
                m.for_each(|k, _| {
                    if !keys.iter().any(|e| e == k) {
                        keys.push(k.to_string());
                    }
                });
                keys
            };
            let kx = keys(x);
            kx.len() == keys(y).len()
                && kx.iter().all(|k| match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => deep_equal(&p, &q),
                    _ => false,
                })
        }
        _ => false,
    }
}

/// `a op b` for numbers: ints stay ints (wrapping on overflow, as Go's int64), an int with
/// a double is a double; division by zero is an error.
pub fn arithmetic<'a>(a: Value<'a>, op: MathOp, b: Value<'a>) -> Result<Value<'a>, EvalError> {
    let float = |x: f64, y: f64| -> Result<Value<'a>, EvalError> {
        Ok(Value::Float(match op {
            MathOp::Add => x + y,
            MathOp::Sub => x - y,
            MathOp::Mul => x * y,
            MathOp::Div if y == 0.0 => return Err(EvalError::new("attempted to divide by 0")),
            MathOp::Div => x / y,
        }))
    };
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Value::Int(match op {
            MathOp::Add => x.wrapping_add(y),
            MathOp::Sub => x.wrapping_sub(y),
            MathOp::Mul => x.wrapping_mul(y),
            MathOp::Div if y == 0 => return Err(EvalError::new("attempted to divide by 0")),
            MathOp::Div => x.wrapping_div(y),
        })),
        (Value::Int(x), Value::Float(y)) => float(x as f64, y),
        (Value::Float(x), Value::Int(y)) => float(x, y as f64),
        (Value::Float(x), Value::Float(y)) => float(x, y),
        (x, y) => Err(EvalError::new(format!(
            "cannot compute {} {} {}: arithmetic needs ints or doubles",
            x.type_name(),
            op.as_str(),
            y.type_name()
        ))),
    }
}
