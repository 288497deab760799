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

    /// The values looked for, as a reason lists them: `in ["a", "b"]`, `matching ["^b"]`.
    pub(super) fn describe(&self) -> String {
        match self {
            StringMatcher::Exact(values) => {
                let mut sorted: Vec<String> = values.iter().cloned().collect();
                sorted.sort();
                show_values(&sorted, false)
            }
            StringMatcher::Regex(set) => show_values(set.patterns(), true),
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

    /// The value as a reason quotes it: strings quoted (and clipped), numbers and booleans
    /// as written, other types by their kind.
    pub(super) fn show(self) -> String {
        match self.0 {
            Some(Value::StringValue(s)) => format!("{:?}", super::clip(s, 80)),
            Some(Value::IntValue(i)) => i.to_string(),
            Some(Value::DoubleValue(d)) => d.to_string(),
            Some(Value::BoolValue(b)) => b.to_string(),
            Some(Value::BytesValue(b)) => format!("{} bytes", b.len()),
            Some(Value::ArrayValue(_)) => "an array".to_string(),
            Some(Value::KvlistValue(_)) => "a map".to_string(),
            Some(_) | None => "empty".to_string(),
        }
    }
}

/// Where a match was found: on an item (span or log record, by index in the trace) or on
/// the resource the item at that index arrived under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hit {
    Resource(usize),
    Item(usize),
}

/// `span #2 "Charge" has k = "v"` / `the resource of span #2 has k = "v"` (`item` is `span`
/// or `log`), for a hit of an attribute policy on `key`.
pub(super) fn describe_hit(trace: &TraceData, hit: Hit, key: &str) -> String {
    let (item, index, attributes, name) = match hit {
        Hit::Item(i) if !trace.spans.is_empty() && i < trace.spans.len() => {
            let span = &trace.spans[i].span;
            ("span", i, &span.attributes[..], span.name.as_str())
        }
        Hit::Resource(i) if i < trace.spans.len() => (
            "span",
            i,
            &trace.spans[i].origin.resource.attributes[..],
            "",
        ),
        Hit::Item(i) => (
            "log",
            i,
            trace
                .logs
                .get(i)
                .map_or(&[][..], |l| &l.record.attributes[..]),
            "",
        ),
        Hit::Resource(i) => (
            "log",
            i,
            trace
                .logs
                .get(i)
                .map_or(&[][..], |l| &l.origin.resource.attributes[..]),
            "",
        ),
    };
    let value = find_attr(attributes, key).map_or_else(|| "empty".to_string(), Attr::show);
    let on = match hit {
        Hit::Resource(_) => format!("the resource of {item} #{}", index + 1),
        Hit::Item(_) => format!(
            "{item} #{} {}",
            index + 1,
            super::status_code::quoted_name(name)
        ),
    };
    format!("{} has {key} = {value}", on.trim_end())
}

/// The first attribute named `key`, if any (pdata's `Map.Get`).
pub(super) fn find_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<Attr<'a>> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| Attr(kv.value.as_ref().and_then(|v| v.value.as_ref())))
}

/// The first resource the trace's spans arrived under that satisfies `on_resource`, or span
/// that satisfies `on_span`. Each resource is checked once per run of spans sharing it (spans
/// of one batch share one [`Origin`]), as the Collector checks each `ResourceSpans` once.
pub(super) fn any_span_or_its_resource(
    trace: &TraceData,
    on_resource: impl Fn(&Resource) -> bool,
    on_span: impl Fn(&weft_proto::trace::v1::Span) -> bool,
) -> Option<Hit> {
    let mut last: Option<&Arc<Origin>> = None;
    for (index, entry) in trace.spans.iter().enumerate() {
        if last.is_none_or(|o| !Arc::ptr_eq(o, &entry.origin)) {
            last = Some(&entry.origin);
            if on_resource(&entry.origin.resource) {
                return Some(Hit::Resource(index));
            }
        }
        if on_span(&entry.span) {
            return Some(Hit::Item(index));
        }
    }
    None
}

/// The same walk over the trace's log records and the resources they arrived under.
pub(super) fn any_log_or_its_resource(
    trace: &TraceData,
    on_resource: impl Fn(&Resource) -> bool,
    on_log: impl Fn(&weft_proto::logs::v1::LogRecord) -> bool,
) -> Option<Hit> {
    let mut last: Option<&Arc<Origin>> = None;
    for (index, entry) in trace.logs.iter().enumerate() {
        if last.is_none_or(|o| !Arc::ptr_eq(o, &entry.origin)) {
            last = Some(&entry.origin);
            if on_resource(&entry.origin.resource) {
                return Some(Hit::Resource(index));
            }
        }
        if on_log(&entry.record) {
            return Some(Hit::Item(index));
        }
    }
    None
}

/// What an attribute policy on `key` says: where it matched, or that nothing did (`what`
/// describes the values looked for: `in ["a", "b"]`, `in [3, 5]`, `= true`). `items` is
/// `span` or `log`.
pub(super) fn say_attribute(
    why: &mut super::Why,
    trace: &TraceData,
    hit: Option<Hit>,
    key: &str,
    what: &str,
    items: &str,
    invert: bool,
) {
    if !why.wanted() {
        return;
    }
    let count = if items == "span" {
        trace.spans.len()
    } else {
        trace.logs.len()
    };
    match (hit, invert) {
        (Some(hit), false) => why.say(format_args!("{}", describe_hit(trace, hit, key))),
        (Some(hit), true) => why.say(format_args!(
            "{} (invert_match: a match is against the trace)",
            describe_hit(trace, hit, key)
        )),
        (None, false) => why.say(format_args!(
            "no {items} (of {count}) or its resource has {key} {what}"
        )),
        (None, true) => why.say(format_args!(
            "no {items} (of {count}) or its resource has {key} {what} (invert_match: no match is for the trace)"
        )),
    }
}

/// The configured values as a reason lists them: `["a", "b"]` (at most 5, then `…`).
pub(super) fn show_values(values: &[String], regex: bool) -> String {
    let shown: Vec<String> = values
        .iter()
        .take(5)
        .map(|v| format!("{:?}", super::clip(v, 40)))
        .collect();
    let more = if values.len() > 5 { ", …" } else { "" };
    let op = if regex { "matching" } else { "in" };
    format!("{op} [{}{more}]", shown.join(", "))
}

/// The decision of a matching policy: with `invert_match`, a match means
/// [`Decision::InvertNotSampled`] and no match [`Decision::InvertSampled`] (so a trace without
/// any span, or without the key, is inverted-sampled, as in the Collector).
pub(super) fn match_decision(matched: Option<Hit>, invert: bool) -> Decision {
    let matched = matched.is_some();
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
