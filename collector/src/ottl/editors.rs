//! The editors: what a statement does to telemetry, as the Collector's `ottlfuncs` define
//! them. Each is registered in [`super::functions::FUNCTIONS`]; the statement runner
//! ([`super::compile`]) evaluates the arguments first (so an editor never reads what it is
//! changing) and hands an editor either its target's map or the value to write.
//!
//! Where Weft differs from the Collector, on purpose:
//! - `limit` keeps the priority keys, then the first other entries in order (the Collector
//!   drops at random), so the same record always keeps the same keys;
//! - `truncate_all` always cuts at a character boundary (a Rust string is valid UTF-8;
//!   `utf8_safe: false` is accepted and means the same);
//! - `replace_pattern` and `replace_all_patterns` with a `function` hash each match's
//!   expanded replacement and put the result in that match's place.

// Every map editor has the `MapFn` signature (`&mut Vec`): some add entries.
#![allow(clippy::ptr_arg)]

use std::borrow::Cow;

use regex::{Captures, Regex};
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};

use super::functions::Args;
use super::value::Value;
use super::EvalError;

/// `set(target, value)`: the value, unless it is nil (then nothing happens, as in the
/// Collector).
pub(super) fn set(mut args: Args<'_>) -> Result<Option<Value<'_>>, EvalError> {
    match args.take(1) {
        Value::Nil => Ok(None),
        v => Ok(Some(v)),
    }
}

/// `replacementFormat`: a string with exactly one `%s`, filled with the replacement.
fn format_replacement(format: Option<&str>, replacement: String) -> Result<String, EvalError> {
    match format {
        None => Ok(replacement),
        Some(f) if f.matches("%s").count() == 1 => Ok(f.replacen("%s", &replacement, 1)),
        Some(f) => Err(EvalError::new(format!(
            "replacementFormat {f:?} must contain exactly one %s"
        ))),
    }
}

/// Every match of `regex` in `text` replaced: by the expanded `template` (`$1`, `${name}`,
/// `$$`), passed through the optional `function` converter and `replacementFormat`.
fn replace_matches(
    args: &Args<'_>,
    regex: &Regex,
    text: &str,
    template: &str,
    function_at: usize,
    format: Option<&str>,
) -> Result<String, EvalError> {
    if !args.given(function_at) && format.is_none() {
        return Ok(regex.replace_all(text, template).into_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in regex.captures_iter(text) {
        let whole = caps.get(0).expect("group 0 is the whole match");
        out.push_str(&text[last..whole.start()]);
        let mut expanded = String::new();
        Captures::expand(&caps, template, &mut expanded);
        let replaced = args.apply_function(function_at, expanded)?;
        out.push_str(&format_replacement(format, replaced)?);
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// `replace_pattern(target, regex, replacement, function?, replacementFormat?)`: the target
/// string with every match replaced; a target that is not a string is left as it is.
pub(super) fn replace_pattern(mut args: Args<'_>) -> Result<Option<Value<'_>>, EvalError> {
    let Value::Str(original) = args.take(0) else {
        return Ok(None);
    };
    let regex = args.regex(1)?;
    let template = args.string_like(2)?;
    let format = if args.given(4) {
        Some(args.string(4)?)
    } else {
        None
    };
    let replaced = replace_matches(&args, regex, &original, &template, 3, format.as_deref())?;
    Ok((replaced != *original).then_some(Value::Str(Cow::Owned(replaced))))
}

/// `delete_key(target, key)`.
pub(super) fn delete_key(map: &mut Vec<KeyValue>, mut args: Args<'_>) -> Result<(), EvalError> {
    let key = args.string(1)?;
    map.retain(|kv| kv.key != *key);
    Ok(())
}

/// `delete_matching_keys(target, pattern)`.
pub(super) fn delete_matching_keys(
    map: &mut Vec<KeyValue>,
    args: Args<'_>,
) -> Result<(), EvalError> {
    let regex = args.regex(1)?;
    map.retain(|kv| !regex.is_match(&kv.key));
    Ok(())
}

/// `keep_keys(target, keys)`.
pub(super) fn keep_keys(map: &mut Vec<KeyValue>, mut args: Args<'_>) -> Result<(), EvalError> {
    let keys = args.string_list(1)?;
    map.retain(|kv| keys.contains(&kv.key));
    Ok(())
}

/// `keep_matching_keys(target, pattern)`.
pub(super) fn keep_matching_keys(map: &mut Vec<KeyValue>, args: Args<'_>) -> Result<(), EvalError> {
    let regex = args.regex(1)?;
    map.retain(|kv| regex.is_match(&kv.key));
    Ok(())
}

/// `merge_maps(target, source, strategy)`: `insert` adds keys the target lacks, `update`
/// replaces keys it has, `upsert` both. The source must be a map.
pub(super) fn merge_maps(map: &mut Vec<KeyValue>, mut args: Args<'_>) -> Result<(), EvalError> {
    let strategy = args.string(2)?;
    let source = match args.take(1) {
        Value::Map(m) => m.into_key_values()?,
        v => {
            return Err(EvalError::new(format!(
                "merge_maps: the source must be a map, got {}",
                v.type_name()
            )))
        }
    };
    for entry in source {
        let existing = map.iter_mut().find(|kv| kv.key == entry.key);
        match (strategy.as_ref(), existing) {
            ("insert" | "upsert", None) => map.push(entry),
            ("update" | "upsert", Some(kv)) => kv.value = entry.value,
            ("insert", Some(_)) | ("update", None) => {}
            (other, _) => {
                return Err(EvalError::new(format!(
                    "merge_maps: invalid strategy {other:?}: expected insert, update or upsert"
                )))
            }
        }
    }
    Ok(())
}

/// `replace_all_patterns(target, mode, regex, replacement, function?, replacementFormat?)`:
/// in `value` mode every string value's matches are replaced; in `key` mode matching keys
/// are renamed.
pub(super) fn replace_all_patterns(
    map: &mut Vec<KeyValue>,
    mut args: Args<'_>,
) -> Result<(), EvalError> {
    let mode = args.string(1)?;
    let regex = args.regex(2)?;
    let template = args.string_like(3)?;
    let format = if args.given(5) {
        Some(args.string(5)?)
    } else {
        None
    };
    for kv in map.iter_mut() {
        match mode.as_ref() {
            "value" => {
                if let Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) = &mut kv.value
                {
                    if regex.is_match(s) {
                        *s = replace_matches(&args, regex, s, &template, 4, format.as_deref())?;
                    }
                }
            }
            "key" => {
                if regex.is_match(&kv.key) {
                    kv.key =
                        replace_matches(&args, regex, &kv.key, &template, 4, format.as_deref())?;
                }
            }
            other => {
                return Err(EvalError::new(format!(
                    "replace_all_patterns: invalid mode {other:?}: expected key or value"
                )))
            }
        }
    }
    Ok(())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `truncate_all(target, limit, utf8_safe?, truncation_marker?)`: every string value of the
/// map at most `limit` bytes, the marker included.
pub(super) fn truncate_all(map: &mut Vec<KeyValue>, mut args: Args<'_>) -> Result<(), EvalError> {
    let limit = args.int(1)?;
    let limit = usize::try_from(limit)
        .map_err(|_| EvalError::new(format!("truncate_all: limit {limit} cannot be negative")))?;
    // Weft's strings are always valid UTF-8: both settings cut at a character boundary.
    let _utf8_safe = args.bool_or(2, true)?;
    let marker = if args.given(3) {
        args.string(3)?.into_owned()
    } else {
        String::new()
    };
    if marker.len() > limit {
        return Err(EvalError::new(format!(
            "truncate_all: the truncation marker ({} bytes) is longer than the limit ({limit})",
            marker.len()
        )));
    }
    for kv in map.iter_mut() {
        if let Some(AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        }) = &mut kv.value
        {
            if s.len() > limit {
                let mut truncated = cut(s, limit - marker.len()).to_string();
                truncated.push_str(&marker);
                *s = truncated;
            }
        }
    }
    Ok(())
}

/// `limit(target, limit, priority_keys)`: at most `limit` entries, the priority keys kept
/// first, then the earliest others.
pub(super) fn limit(map: &mut Vec<KeyValue>, mut args: Args<'_>) -> Result<(), EvalError> {
    let limit = args.int(1)?;
    let limit = usize::try_from(limit)
        .map_err(|_| EvalError::new(format!("limit: limit {limit} cannot be negative")))?;
    let priority = args.string_list(2)?;
    if priority.len() > limit {
        return Err(EvalError::new(format!(
            "limit: {} priority keys cannot fit in a limit of {limit}",
            priority.len()
        )));
    }
    if map.len() <= limit {
        return Ok(());
    }
    let kept_priority = map.iter().filter(|kv| priority.contains(&kv.key)).count();
    let mut others = limit - kept_priority.min(limit);
    map.retain(|kv| {
        if priority.contains(&kv.key) {
            return true;
        }
        if others > 0 {
            others -= 1;
            return true;
        }
        false
    });
    Ok(())
}

/// `flatten(target, prefix?, depth?, resolveConflicts?)`: nested maps (and lists) become
/// dotted keys at the root, `depth` levels deep at most.
pub(super) fn flatten(map: &mut Vec<KeyValue>, mut args: Args<'_>) -> Result<(), EvalError> {
    let prefix = if args.given(1) {
        args.string(1)?.into_owned()
    } else {
        String::new()
    };
    let depth = if args.given(2) {
        let d = args.int(2)?;
        if d < 0 {
            return Err(EvalError::new(format!(
                "flatten: depth {d} cannot be negative"
            )));
        }
        d
    } else {
        i64::MAX
    };
    let resolve = args.bool_or(3, false)?;
    let mut out: Vec<KeyValue> = Vec::with_capacity(map.len());
    for kv in std::mem::take(map) {
        let key = if prefix.is_empty() {
            kv.key
        } else {
            format!("{prefix}.{}", kv.key)
        };
        flatten_into(&mut out, key, kv.value.unwrap_or_default(), depth, resolve);
    }
    *map = out;
    Ok(())
}

fn flatten_into(out: &mut Vec<KeyValue>, key: String, value: AnyValue, depth: i64, resolve: bool) {
    match value.value {
        Some(any_value::Value::KvlistValue(kv)) if depth > 0 => {
            for e in kv.values {
                let child = format!("{key}.{}", e.key);
                flatten_into(out, child, e.value.unwrap_or_default(), depth - 1, resolve);
            }
        }
        Some(any_value::Value::ArrayValue(list)) if depth > 0 => {
            for (i, item) in list.values.into_iter().enumerate() {
                let child = if resolve {
                    key.clone()
                } else {
                    format!("{key}.{i}")
                };
                flatten_into(out, child, item, depth - 1, resolve);
            }
        }
        other => {
            let value = Some(AnyValue { value: other });
            match out.iter().position(|kv| kv.key == key) {
                Some(_) if resolve => {
                    let mut n = 0;
                    let free = loop {
                        let candidate = format!("{key}.{n}");
                        if !out.iter().any(|kv| kv.key == candidate) {
                            break candidate;
                        }
                        n += 1;
                    };
                    out.push(KeyValue {
                        key: free,
                        value,
                        ..Default::default()
                    });
                }
                Some(p) => out[p].value = value,
                None => out.push(KeyValue {
                    key,
                    value,
                    ..Default::default()
                }),
            }
        }
    }
}
