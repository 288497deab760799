//! The `span` context: a span with the resource and scope it arrived under, as the
//! Collector's `ottlspan` sees it. Paths may be written bare (`name`) or qualified
//! (`span.name`); `resource.*` and `instrumentation_scope.*` reach the span's origin.

use std::borrow::Cow;

use weft_proto::trace::v1::Span as SpanProto;

use super::super::ast::{Key, Path, Segment};
use super::super::value::{Map, Value};
use super::super::{Context, EvalError};
use super::common::{
    check_keys, get_resource, get_scope, resource_path, scope_path, Origin, ResourcePath, ScopePath,
};

/// The span context.
#[derive(Debug)]
pub struct Span;

/// What one evaluation in the span context looks at.
#[derive(Clone, Copy, Debug)]
pub struct SpanData<'a> {
    pub span: &'a SpanProto,
    pub origin: Origin<'a>,
}

/// A resolved path of the span context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanPath {
    Resource(ResourcePath),
    Scope(ScopePath),
    TraceId,
    TraceIdString,
    SpanId,
    SpanIdString,
    ParentSpanId,
    ParentSpanIdString,
    TraceState,
    /// `trace_state["key"]`: one member of the W3C tracestate.
    TraceStateKey(String),
    Name,
    Kind,
    KindString,
    KindDeprecatedString,
    StartTimeUnixNano,
    EndTimeUnixNano,
    Attributes,
    DroppedAttributesCount,
    DroppedEventsCount,
    DroppedLinksCount,
    StatusCode,
    StatusMessage,
    Flags,
}

/// OTLP's span kinds and status codes, as OTTL names them.
pub const SPAN_ENUMS: &[(&str, i64)] = &[
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
    ("STATUS_CODE_UNSET", 0),
    ("STATUS_CODE_OK", 1),
    ("STATUS_CODE_ERROR", 2),
];

impl Context for Span {
    const NAME: &'static str = "span";
    const PATHS: &'static str = "name, kind, status.code, attributes[\"k\"], trace_id, span_id, parent_span_id and their .string, trace_state, trace_state[\"k\"], kind.string, kind.deprecated_string, start_time_unix_nano, end_time_unix_nano, dropped_attributes_count, dropped_events_count, dropped_links_count, status.message, flags, resource.attributes[\"k\"], resource.dropped_attributes_count, resource.schema_url, instrumentation_scope.name, .version, .attributes[\"k\"], .dropped_attributes_count, .schema_url; each may be prefixed with span.";
    const ENUMS: &'static [(&'static str, i64)] = SPAN_ENUMS;
    type Path = SpanPath;
    type Data<'a> = SpanData<'a>;

    fn compile_path(path: &Path) -> Result<(SpanPath, usize), String> {
        let segments = match path.segments.as_slice() {
            [first, rest @ ..] if first.name == "span" && !rest.is_empty() => rest,
            all => all,
        };
        compile_span_path(segments)
    }

    fn get<'a>(data: &SpanData<'a>, path: &SpanPath) -> Result<Value<'a>, EvalError>
    where
        Self: 'a,
    {
        get_span(data, path)
    }
}

/// A span path without its context prefix; shared with the span event context (`span.*`).
pub(super) fn compile_span_path(segments: &[Segment]) -> Result<(SpanPath, usize), String> {
    let Some((first, rest)) = segments.split_first() else {
        return Err("empty path".to_string());
    };
    match first.name.as_str() {
        "resource" => {
            check_keys(&segments[..1], false)?;
            return Ok((SpanPath::Resource(resource_path(rest)?), 0));
        }
        "instrumentation_scope" | "scope" => {
            check_keys(&segments[..1], false)?;
            return Ok((SpanPath::Scope(scope_path(rest)?), 0));
        }
        _ => {}
    }
    let sub = rest.first().map(|s| s.name.as_str());
    if rest.len() > 1 {
        return Err("too many segments".to_string());
    }
    let path = match (first.name.as_str(), sub) {
        ("trace_id", None) => SpanPath::TraceId,
        ("trace_id", Some("string")) => SpanPath::TraceIdString,
        ("span_id", None) => SpanPath::SpanId,
        ("span_id", Some("string")) => SpanPath::SpanIdString,
        ("parent_span_id", None) => SpanPath::ParentSpanId,
        ("parent_span_id", Some("string")) => SpanPath::ParentSpanIdString,
        ("trace_state", None) => {
            check_keys(segments, true)?;
            return match first.keys.first() {
                None => Ok((SpanPath::TraceState, 0)),
                Some(Key::String(k)) if first.keys.len() == 1 => {
                    Ok((SpanPath::TraceStateKey(k.clone()), 1))
                }
                Some(_) => Err("trace_state takes one string key".to_string()),
            };
        }
        ("name", None) => SpanPath::Name,
        ("kind", None) => SpanPath::Kind,
        ("kind", Some("string")) => SpanPath::KindString,
        ("kind", Some("deprecated_string")) => SpanPath::KindDeprecatedString,
        ("start_time_unix_nano", None) => SpanPath::StartTimeUnixNano,
        ("end_time_unix_nano", None) => SpanPath::EndTimeUnixNano,
        ("start_time" | "end_time", None) => {
            return Err(
                "time values are not supported by Weft's OTTL: use start_time_unix_nano or end_time_unix_nano"
                    .to_string(),
            )
        }
        ("attributes", None) => {
            check_keys(segments, true)?;
            return Ok((SpanPath::Attributes, 0));
        }
        ("dropped_attributes_count", None) => SpanPath::DroppedAttributesCount,
        ("dropped_events_count", None) => SpanPath::DroppedEventsCount,
        ("dropped_links_count", None) => SpanPath::DroppedLinksCount,
        ("status", Some("code")) => SpanPath::StatusCode,
        ("status", Some("message")) => SpanPath::StatusMessage,
        ("flags", None) => SpanPath::Flags,
        _ => return Err("not a field of a span".to_string()),
    };
    check_keys(segments, false)?;
    Ok((path, 0))
}

pub(super) fn get_span<'a>(data: &SpanData<'a>, path: &SpanPath) -> Result<Value<'a>, EvalError> {
    let span = data.span;
    Ok(match path {
        SpanPath::Resource(p) => get_resource(&data.origin, p),
        SpanPath::Scope(p) => get_scope(&data.origin, p),
        SpanPath::TraceId => Value::Bytes(Cow::Borrowed(&span.trace_id)),
        SpanPath::TraceIdString => Value::Str(Cow::Owned(hex::encode(&span.trace_id))),
        SpanPath::SpanId => Value::Bytes(Cow::Borrowed(&span.span_id)),
        SpanPath::SpanIdString => Value::Str(Cow::Owned(hex::encode(&span.span_id))),
        SpanPath::ParentSpanId => Value::Bytes(Cow::Borrowed(&span.parent_span_id)),
        SpanPath::ParentSpanIdString => Value::Str(Cow::Owned(hex::encode(&span.parent_span_id))),
        SpanPath::TraceState => Value::Str(Cow::Borrowed(&span.trace_state)),
        SpanPath::TraceStateKey(key) => trace_state_member(&span.trace_state, key)?,
        SpanPath::Name => Value::Str(Cow::Borrowed(&span.name)),
        SpanPath::Kind => Value::Int(i64::from(span.kind)),
        SpanPath::KindString => Value::Str(Cow::Borrowed(kind_name(span.kind).0)),
        SpanPath::KindDeprecatedString => Value::Str(Cow::Borrowed(kind_name(span.kind).1)),
        // Go reads the uint64 nanoseconds as an int64.
        SpanPath::StartTimeUnixNano => Value::Int(span.start_time_unix_nano as i64),
        SpanPath::EndTimeUnixNano => Value::Int(span.end_time_unix_nano as i64),
        SpanPath::Attributes => Value::Map(Map::Attributes(&span.attributes)),
        SpanPath::DroppedAttributesCount => Value::Int(i64::from(span.dropped_attributes_count)),
        SpanPath::DroppedEventsCount => Value::Int(i64::from(span.dropped_events_count)),
        SpanPath::DroppedLinksCount => Value::Int(i64::from(span.dropped_links_count)),
        SpanPath::StatusCode => Value::Int(i64::from(span.status.as_ref().map_or(0, |s| s.code))),
        SpanPath::StatusMessage => Value::Str(Cow::Borrowed(
            span.status.as_ref().map_or("", |s| s.message.as_str()),
        )),
        SpanPath::Flags => Value::Int(i64::from(span.flags)),
    })
}

/// pdata's `SpanKind.String()` and the enum's proto name.
fn kind_name(kind: i32) -> (&'static str, &'static str) {
    match kind {
        0 => ("Unspecified", "SPAN_KIND_UNSPECIFIED"),
        1 => ("Internal", "SPAN_KIND_INTERNAL"),
        2 => ("Server", "SPAN_KIND_SERVER"),
        3 => ("Client", "SPAN_KIND_CLIENT"),
        4 => ("Producer", "SPAN_KIND_PRODUCER"),
        5 => ("Consumer", "SPAN_KIND_CONSUMER"),
        _ => ("", ""),
    }
}

/// The value of `key` in a W3C tracestate (`k1=v1,k2=v2`), nil when absent; a member
/// without `=` makes the header invalid, an error as in the Collector.
fn trace_state_member<'a>(raw: &'a str, key: &str) -> Result<Value<'a>, EvalError> {
    let mut found = None;
    for member in raw.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let Some((k, v)) = member.split_once('=') else {
            return Err(EvalError::new(format!(
                "invalid tracestate {raw:?}: member {member:?} has no \"=\""
            )));
        };
        if k == key && found.is_none() {
            found = Some(v);
        }
    }
    Ok(found.map_or(Value::Nil, |v| Value::Str(Cow::Borrowed(v))))
}
