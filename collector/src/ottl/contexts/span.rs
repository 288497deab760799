//! The `span` context: a span with the resource and scope it arrived under, as the
//! Collector's `ottlspan` sees it. Paths may be written bare (`name`) or qualified
//! (`span.name`); `resource.*` and `instrumentation_scope.*` reach the span's origin.

use std::borrow::Cow;

use weft_proto::common::v1::KeyValue;
use weft_proto::trace::v1::{Span as SpanProto, Status};

use super::super::ast::{Key, Path, Segment};
use super::super::value::{Map, Value};
use super::super::write::Place;
use super::super::{Context, EvalError, Writable};
use super::common::{
    check_keys, get_resource, get_scope, resource_path, resource_place, scope_path, scope_place,
    set_resource_field, set_scope_field, want_id, want_int, want_nanos, want_str, want_u32, Origin,
    OriginMut, ResourcePath, ScopePath,
};

/// The span context.
#[derive(Debug)]
pub struct Span;

/// What one evaluation in the span context looks at.
#[derive(Clone, Copy, Debug)]
pub struct SpanData<'a> {
    pub span: &'a SpanProto,
    pub origin: Origin<'a>,
    /// The statement group's scratch map (empty for conditions outside `transform`).
    pub cache: &'a [KeyValue],
}

impl<'a> SpanData<'a> {
    /// A span with its origin and no cache (conditions).
    pub fn new(span: &'a SpanProto, origin: Origin<'a>) -> Self {
        Self {
            span,
            origin,
            cache: &[],
        }
    }
}

/// What one statement in the span context may change.
pub struct SpanTarget<'a> {
    pub span: &'a mut SpanProto,
    pub origin: OriginMut<'a>,
    pub cache: &'a mut Vec<KeyValue>,
}

/// A resolved path of the span context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanPath {
    Resource(ResourcePath),
    Scope(ScopePath),
    Cache,
    StartTime,
    EndTime,
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
    const PATHS: &'static str = "name, kind, status.code, attributes[\"k\"], trace_id, span_id, parent_span_id and their .string, trace_state, trace_state[\"k\"], kind.string, kind.deprecated_string, start_time, end_time, start_time_unix_nano, end_time_unix_nano, cache[\"k\"], dropped_attributes_count, dropped_events_count, dropped_links_count, status.message, flags, resource.attributes[\"k\"], resource.dropped_attributes_count, resource.schema_url, instrumentation_scope.name, .version, .attributes[\"k\"], .dropped_attributes_count, .schema_url; each may be prefixed with span.";
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

    fn reborrow<'s, 'l: 's>(data: &'s SpanData<'l>) -> SpanData<'s> {
        *data
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
        ("start_time", None) => SpanPath::StartTime,
        ("end_time", None) => SpanPath::EndTime,
        ("cache", None) => {
            check_keys(segments, true)?;
            return Ok((SpanPath::Cache, 0));
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
        SpanPath::Cache => Value::Map(Map::Attributes(data.cache)),
        SpanPath::StartTime => Value::Time(span.start_time_unix_nano as i64),
        SpanPath::EndTime => Value::Time(span.end_time_unix_nano as i64),
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

impl Writable for Span {
    type Target<'a> = SpanTarget<'a>;

    fn view<'t>(target: &'t SpanTarget<'_>) -> SpanData<'t> {
        SpanData {
            span: target.span,
            origin: target.origin.view(),
            cache: target.cache,
        }
    }

    fn place<'t>(target: &'t mut SpanTarget<'_>, path: &SpanPath) -> Result<Place<'t>, EvalError> {
        Ok(match path {
            SpanPath::Resource(p) => resource_place(target.origin.resource, p),
            SpanPath::Scope(p) => scope_place(target.origin.scope, p),
            SpanPath::Cache => Place::Attributes(target.cache),
            SpanPath::Attributes => Place::Attributes(&mut target.span.attributes),
            _ => Place::Field,
        })
    }

    fn set_field(
        target: &mut SpanTarget<'_>,
        path: &SpanPath,
        value: &Value<'_>,
    ) -> Result<(), EvalError> {
        let span = &mut *target.span;
        match path {
            SpanPath::Resource(p) => {
                return set_resource_field(
                    target.origin.resource,
                    target.origin.resource_schema_url,
                    p,
                    value,
                )
            }
            SpanPath::Scope(p) => {
                return set_scope_field(
                    target.origin.scope,
                    target.origin.scope_schema_url,
                    p,
                    value,
                )
            }
            SpanPath::TraceId => span.trace_id = want_id("trace_id", value, 16, false)?,
            SpanPath::TraceIdString => span.trace_id = want_id("trace_id.string", value, 16, true)?,
            SpanPath::SpanId => span.span_id = want_id("span_id", value, 8, false)?,
            SpanPath::SpanIdString => span.span_id = want_id("span_id.string", value, 8, true)?,
            SpanPath::ParentSpanId => {
                span.parent_span_id = want_id("parent_span_id", value, 8, false)?
            }
            SpanPath::ParentSpanIdString => {
                span.parent_span_id = want_id("parent_span_id.string", value, 8, true)?
            }
            SpanPath::TraceState => span.trace_state = want_str("trace_state", value)?,
            SpanPath::Name => span.name = want_str("name", value)?,
            SpanPath::Kind => {
                let k = want_int("kind", value)?;
                span.kind = i32::try_from(k)
                    .ok()
                    .filter(|k| (0..=5).contains(k))
                    .ok_or_else(|| EvalError::new(format!("kind: {k} is not a span kind")))?;
            }
            SpanPath::StartTimeUnixNano | SpanPath::StartTime => {
                span.start_time_unix_nano = want_nanos("start_time", value)?
            }
            SpanPath::EndTimeUnixNano | SpanPath::EndTime => {
                span.end_time_unix_nano = want_nanos("end_time", value)?
            }
            SpanPath::DroppedAttributesCount => {
                span.dropped_attributes_count = want_u32("dropped_attributes_count", value)?
            }
            SpanPath::DroppedEventsCount => {
                span.dropped_events_count = want_u32("dropped_events_count", value)?
            }
            SpanPath::DroppedLinksCount => {
                span.dropped_links_count = want_u32("dropped_links_count", value)?
            }
            SpanPath::StatusCode => {
                let c = want_int("status.code", value)?;
                let code = i32::try_from(c)
                    .ok()
                    .filter(|c| (0..=2).contains(c))
                    .ok_or_else(|| EvalError::new(format!("status.code: {c} is not a status")))?;
                span.status.get_or_insert_with(Status::default).code = code;
            }
            SpanPath::StatusMessage => {
                span.status.get_or_insert_with(Status::default).message =
                    want_str("status.message", value)?
            }
            SpanPath::Flags => span.flags = want_u32("flags", value)?,
            SpanPath::Cache
            | SpanPath::Attributes
            | SpanPath::TraceStateKey(_)
            | SpanPath::KindString
            | SpanPath::KindDeprecatedString => {
                return Err(EvalError::new("this path cannot be set as a field"))
            }
        }
        Ok(())
    }

    fn check_writable(path: &SpanPath) -> Result<(), String> {
        match path {
            SpanPath::KindString | SpanPath::KindDeprecatedString => {
                Err("kind.string is derived from kind: set kind instead".to_string())
            }
            SpanPath::TraceStateKey(_) => {
                Err("a trace_state member cannot be set on its own: set trace_state".to_string())
            }
            _ => Ok(()),
        }
    }
}
