//! Writing through a path: where an editor's target leads ([`Place`]) and how keys below it
//! are followed or created, with the Collector's rules (`pkg/ottl/contexts/internal/ctxutil`):
//!
//! - `set` creates what is missing: `set(attributes["a"]["b"], 1)` makes `a` a map when it is
//!   absent or empty; an int key on an empty value makes a list long enough to hold it;
//! - a key into a value of another type (a string indexed like a map) is an error;
//! - map editors (`delete_key`, `keep_keys`, …) never create: their target must already be
//!   a map.
//!
//! Creating a list is bounded ([`MAX_CREATED_LIST`]): a statement with a huge index is an
//! error, not a gigabyte of empty values.

use weft_proto::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};

use super::value::Value;
use super::EvalError;

/// The longest list `set` creates to reach an int key of an empty value.
pub const MAX_CREATED_LIST: usize = 10_000;

/// Where a path leads when an editor writes to it.
pub enum Place<'t> {
    /// An attribute list: of the item, its resource or scope, or the cache.
    Attributes(&'t mut Vec<KeyValue>),
    /// A value slot: a log body (absent until set).
    Value(&'t mut Option<AnyValue>),
    /// A field of the item itself (`severity_number`, `name`, `trace_id.string`): set by the
    /// context's [`super::Writable::set_field`], never indexed.
    Field,
}

fn key_name<'k>(key: &'k Value<'_>) -> Result<&'k str, EvalError> {
    match key {
        Value::Str(s) => Ok(s),
        other => Err(EvalError::new(format!(
            "a map must be indexed by a string, not by {}",
            other.type_name()
        ))),
    }
}

fn key_index(key: &Value<'_>) -> Result<i64, EvalError> {
    match key {
        Value::Int(i) => Ok(*i),
        other => Err(EvalError::new(format!(
            "a list must be indexed by an int, not by {}",
            other.type_name()
        ))),
    }
}

/// The slot of `key` in `attrs` (the first entry of that name), added when absent.
fn entry<'t>(attrs: &'t mut Vec<KeyValue>, key: &str) -> &'t mut Option<AnyValue> {
    let position = match attrs.iter().position(|kv| kv.key == key) {
        Some(p) => p,
        None => {
            attrs.push(KeyValue {
                key: key.to_string(),
                value: None,
                ..Default::default()
            });
            attrs.len() - 1
        }
    };
    &mut attrs[position].value
}

/// Sets the value `keys` lead to below `place` (not a [`Place::Field`]) to `value`, moving
/// what the value owns into the telemetry.
pub fn set_at(place: Place<'_>, keys: &[Value<'_>], value: Value<'_>) -> Result<(), EvalError> {
    match place {
        Place::Field => Err(EvalError::new("this field cannot be indexed")),
        Place::Attributes(attrs) => match keys.split_first() {
            None => match value {
                Value::Map(m) => {
                    *attrs = m.into_key_values()?;
                    Ok(())
                }
                other => Err(EvalError::new(format!(
                    "attributes can only be set to a map, not to {}",
                    other.type_name()
                ))),
            },
            Some((first, rest)) => set_in(entry(attrs, key_name(first)?), rest, value),
        },
        Place::Value(slot) => set_in(slot, keys, value),
    }
}

fn set_in(
    slot: &mut Option<AnyValue>,
    keys: &[Value<'_>],
    value: Value<'_>,
) -> Result<(), EvalError> {
    let Some((first, rest)) = keys.split_first() else {
        *slot = Some(value.into_any()?);
        return Ok(());
    };
    let current = slot.get_or_insert_with(AnyValue::default);
    match &mut current.value {
        Some(any_value::Value::KvlistValue(kv)) => {
            set_in(entry(&mut kv.values, key_name(first)?), rest, value)
        }
        Some(any_value::Value::ArrayValue(list)) => {
            let i = key_index(first)?;
            let len = list.values.len();
            let item = usize::try_from(i)
                .ok()
                .and_then(|i| list.values.get_mut(i))
                .ok_or_else(|| {
                    EvalError::new(format!("index {i} out of bounds: the list has {len} items"))
                })?;
            let mut inner = Some(std::mem::take(item));
            let result = set_in(&mut inner, rest, value);
            *item = inner.unwrap_or_default();
            result
        }
        empty @ None => match first {
            Value::Str(k) => {
                let mut map = KeyValueList::default();
                let result = set_in(entry(&mut map.values, k), rest, value);
                *empty = Some(any_value::Value::KvlistValue(map));
                result
            }
            Value::Int(i) => {
                let i = usize::try_from(*i)
                    .ok()
                    .filter(|i| *i < MAX_CREATED_LIST)
                    .ok_or_else(|| {
                        EvalError::new(format!(
                            "index {i} cannot create a list: it must be from 0 to {}",
                            MAX_CREATED_LIST - 1
                        ))
                    })?;
                let mut list = ArrayValue {
                    values: vec![AnyValue::default(); i + 1],
                };
                let mut inner = Some(AnyValue::default());
                let result = set_in(&mut inner, rest, value);
                list.values[i] = inner.unwrap_or_default();
                *empty = Some(any_value::Value::ArrayValue(list));
                result
            }
            other => Err(EvalError::new(format!(
                "a key must be a string or an int, got {}",
                other.type_name()
            ))),
        },
        Some(_) => Err(EvalError::new(format!(
            "a {} value cannot be indexed",
            Value::from_any(Some(current)).type_name()
        ))),
    }
}

/// The map `keys` lead to below `place`, for map editors: it must exist and be a map.
pub fn map_at<'t>(
    place: Place<'t>,
    keys: &[Value<'_>],
) -> Result<&'t mut Vec<KeyValue>, EvalError> {
    match place {
        Place::Field => Err(EvalError::new("the target is not a map")),
        Place::Attributes(attrs) => match keys.split_first() {
            None => Ok(attrs),
            Some((first, rest)) => {
                let key = key_name(first)?;
                let found = attrs
                    .iter_mut()
                    .find(|kv| kv.key == key)
                    .ok_or_else(|| EvalError::new(format!("the target map has no key {key:?}")))?;
                map_in(found.value.as_mut(), rest)
            }
        },
        Place::Value(slot) => map_in(slot.as_mut(), keys),
    }
}

fn map_in<'t>(
    value: Option<&'t mut AnyValue>,
    keys: &[Value<'_>],
) -> Result<&'t mut Vec<KeyValue>, EvalError> {
    let Some(value) = value else {
        return Err(EvalError::new("the target is not a map but nil"));
    };
    let type_name = Value::from_any(Some(value)).type_name();
    match (keys.split_first(), &mut value.value) {
        (None, Some(any_value::Value::KvlistValue(kv))) => Ok(&mut kv.values),
        (None, _) => Err(EvalError::new(format!(
            "the target is not a map but a {type_name}"
        ))),
        (Some((first, rest)), Some(any_value::Value::KvlistValue(kv))) => {
            let key = key_name(first)?;
            let found = kv
                .values
                .iter_mut()
                .find(|e| e.key == key)
                .ok_or_else(|| EvalError::new(format!("the target map has no key {key:?}")))?;
            map_in(found.value.as_mut(), rest)
        }
        (Some((first, rest)), Some(any_value::Value::ArrayValue(list))) => {
            let i = key_index(first)?;
            let len = list.values.len();
            let item = usize::try_from(i)
                .ok()
                .and_then(|i| list.values.get_mut(i))
                .ok_or_else(|| {
                    EvalError::new(format!("index {i} out of bounds: the list has {len} items"))
                })?;
            map_in(Some(item), rest)
        }
        (Some(_), _) => Err(EvalError::new(format!(
            "a {type_name} value cannot be indexed"
        ))),
    }
}
