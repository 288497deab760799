//! Shared pieces of the attribute and log policies: matching strings against the configured
//! values (and checking those values), reading attributes the way the Collector's pdata
//! does, and walking a trace's resources with its spans or logs.

use std::collections::HashSet;
use std::sync::Arc;

use regex::RegexSet;
use weft_config::{ConfigPath, Diagnostics};
use weft_proto::common::v1::any_value::Value;
use weft_proto::common::v1::KeyValue;
use weft_proto::resource::v1::Resource;

use super::super::trace::{Origin, TraceData};
use super::Decision;

/// The `values` of `string_attribute`, `log_body` and `log_attribute`: exact strings, or
/// regular expressions with `enabled_regex_matching: true`.
#[derive(Debug)]
pub(super) enum StringMatcher {
    /// Exact match against any of the values. Empty values are left out, as in the
    /// Collector: an empty string never matches.
    Exact(HashSet<String>),
    /// A match of any expression anywhere in the string (not anchored: write `^…$` to match
    /// the whole value), as Go's `regexp.MatchString` does.
    Regex(RegexSet),
}

impl StringMatcher {
    /// Builds the matcher; fails only on an invalid expression (which validation reports with
    /// its path before anything is built).
    pub(super) fn new(values: &[String], regex: bool) -> Result<Self, String> {
        if regex {
            RegexSet::new(values)
                .map(StringMatcher::Regex)
                .map_err(|e| format!("invalid regular expression: {e}"))
        } else {
            Ok(StringMatcher::Exact(
                values.iter().filter(|v| !v.is_empty()).cloned().collect(),
            ))
        }
    }

    pub(super) fn matches(&self, text: &str) -> bool {
        match self {
            StringMatcher::Exact(values) => values.contains(text),
            StringMatcher::Regex(set) => set.is_match(text),
        }
    }
}

/// An attribute found by key, read as the Collector's `pcommon.Value` reads: the accessor of
/// another type than the stored one gives that type's zero value (`""`, `0`, `false`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Attr<'a>(Option<&'a Value>);

impl<'a> Attr<'a> {
    pub(super) fn as_str(self) -> &'a str {
        match self.0 {
            Some(Value::StringValue(s)) => s,
            _ => "",
        }
    }

    pub(super) fn as_int(self) -> i64 {
        match self.0 {
            Some(Value::IntValue(i)) => *i,
            _ => 0,
        }
    }

    pub(super) fn as_bool(self) -> bool {
        matches!(self.0, Some(Value::BoolValue(true)))
    }
}

/// The first attribute named `key`, if any (pdata's `Map.Get`).
pub(super) fn find_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<Attr<'a>> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| Attr(kv.value.as_ref().and_then(|v| v.value.as_ref())))
}

/// Whether any resource the trace's spans arrived under satisfies `on_resource`, or any span
/// satisfies `on_span`. Each resource is checked once per run of spans sharing it (spans of one
/// batch share one [`Origin`]), as the Collector checks each `ResourceSpans` once.
pub(super) fn any_span_or_its_resource(
    trace: &TraceData,
    on_resource: impl Fn(&Resource) -> bool,
    on_span: impl Fn(&weft_proto::trace::v1::Span) -> bool,
) -> bool {
    let mut last: Option<&Arc<Origin>> = None;
    for entry in &trace.spans {
        if last.is_none_or(|o| !Arc::ptr_eq(o, &entry.origin)) {
            last = Some(&entry.origin);
            if on_resource(&entry.origin.resource) {
                return true;
            }
        }
        if on_span(&entry.span) {
            return true;
        }
    }
    false
}

/// The same walk over the trace's log records and the resources they arrived under.
pub(super) fn any_log_or_its_resource(
    trace: &TraceData,
    on_resource: impl Fn(&Resource) -> bool,
    on_log: impl Fn(&weft_proto::logs::v1::LogRecord) -> bool,
) -> bool {
    let mut last: Option<&Arc<Origin>> = None;
    for entry in &trace.logs {
        if last.is_none_or(|o| !Arc::ptr_eq(o, &entry.origin)) {
            last = Some(&entry.origin);
            if on_resource(&entry.origin.resource) {
                return true;
            }
        }
        if on_log(&entry.record) {
            return true;
        }
    }
    false
}

/// The decision of a matching policy: with `invert_match`, a match means
/// [`Decision::InvertNotSampled`] and no match [`Decision::InvertSampled`] (so a trace without
/// any span, or without the key, is inverted-sampled, as in the Collector).
pub(super) fn match_decision(matched: bool, invert: bool) -> Decision {
    match (invert, matched) {
        (false, true) => Decision::Sampled,
        (false, false) => Decision::NotSampled,
        (true, true) => Decision::InvertNotSampled,
        (true, false) => Decision::InvertSampled,
    }
}

/// Checks one list of strings as regular expressions, reporting each invalid one at its index.
pub(super) fn validate_regexes(values: &[String], path: &ConfigPath, diags: &mut Diagnostics) {
    for (index, value) in values.iter().enumerate() {
        if let Err(e) = regex::Regex::new(value) {
            diags.error(
                &path.index(index),
                format!("invalid regular expression {value:?}: {e}"),
            );
        }
    }
}

pub(super) fn require_key(key: &str, path: &ConfigPath, diags: &mut Diagnostics) {
    if key.is_empty() {
        diags.error(&path.key("key"), "required: the attribute to look at");
    }
}

pub(super) fn require_values(values: &[String], path: &ConfigPath, diags: &mut Diagnostics) {
    if values.is_empty() {
        diags.error(&path.key("values"), "expected at least one value to match");
    }
}
