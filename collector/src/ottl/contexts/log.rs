//! The `log` context: a log record with the resource and scope it arrived under, and the
//! statement group's `cache`, as the Collector's `ottllog` sees it. Paths may be written
//! bare (`body`) or qualified (`log.body`).

use std::borrow::Cow;

use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::LogRecord;

use super::super::ast::Path;
use super::super::value::{Map, Value};
use super::super::write::Place;
use super::super::{Context, EvalError, Writable};
use super::common::{
    check_keys, get_resource, get_scope, resource_path, resource_place, scope_path, scope_place,
    set_resource_field, set_scope_field, want_id, want_int, want_nanos, want_str, want_u32, Origin,
    OriginMut, ResourcePath, ScopePath,
};

/// The log context.
#[derive(Debug)]
pub struct Log;

/// What one evaluation in the log context looks at.
#[derive(Clone, Copy, Debug)]
pub struct LogData<'a> {
    pub record: &'a LogRecord,
    pub origin: Origin<'a>,
    /// The statement group's scratch map (empty for conditions outside `transform`).
    pub cache: &'a [KeyValue],
}

/// What one statement in the log context may change.
pub struct LogTarget<'a> {
    pub record: &'a mut LogRecord,
    pub origin: OriginMut<'a>,
    pub cache: &'a mut Vec<KeyValue>,
}

/// A resolved path of the log context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogPath {
    Resource(ResourcePath),
    Scope(ScopePath),
    Cache,
    TimeUnixNano,
    ObservedTimeUnixNano,
    Time,
    ObservedTime,
    SeverityNumber,
    SeverityText,
    Body,
    /// `body.string`: the body as a string (set: the body becomes that string).
    BodyString,
    Attributes,
    DroppedAttributesCount,
    Flags,
    TraceId,
    TraceIdString,
    SpanId,
    SpanIdString,
    EventName,
}

/// OTLP's severity numbers, as OTTL names them.
pub const LOG_ENUMS: &[(&str, i64)] = &[
    ("SEVERITY_NUMBER_UNSPECIFIED", 0),
    ("SEVERITY_NUMBER_TRACE", 1),
    ("SEVERITY_NUMBER_TRACE2", 2),
    ("SEVERITY_NUMBER_TRACE3", 3),
    ("SEVERITY_NUMBER_TRACE4", 4),
    ("SEVERITY_NUMBER_DEBUG", 5),
    ("SEVERITY_NUMBER_DEBUG2", 6),
    ("SEVERITY_NUMBER_DEBUG3", 7),
    ("SEVERITY_NUMBER_DEBUG4", 8),
    ("SEVERITY_NUMBER_INFO", 9),
    ("SEVERITY_NUMBER_INFO2", 10),
    ("SEVERITY_NUMBER_INFO3", 11),
    ("SEVERITY_NUMBER_INFO4", 12),
    ("SEVERITY_NUMBER_WARN", 13),
    ("SEVERITY_NUMBER_WARN2", 14),
    ("SEVERITY_NUMBER_WARN3", 15),
    ("SEVERITY_NUMBER_WARN4", 16),
    ("SEVERITY_NUMBER_ERROR", 17),
    ("SEVERITY_NUMBER_ERROR2", 18),
    ("SEVERITY_NUMBER_ERROR3", 19),
    ("SEVERITY_NUMBER_ERROR4", 20),
    ("SEVERITY_NUMBER_FATAL", 21),
    ("SEVERITY_NUMBER_FATAL2", 22),
    ("SEVERITY_NUMBER_FATAL3", 23),
    ("SEVERITY_NUMBER_FATAL4", 24),
];

impl Context for Log {
    const NAME: &'static str = "log";
    const PATHS: &'static str = "body, body[\"k\"], body.string, attributes[\"k\"], severity_text, severity_number, time, observed_time, time_unix_nano, observed_time_unix_nano, trace_id, span_id and their .string, flags, event_name, dropped_attributes_count, cache[\"k\"], resource.attributes[\"k\"], resource.dropped_attributes_count, resource.schema_url, instrumentation_scope.name, .version, .attributes[\"k\"], .dropped_attributes_count, .schema_url; each may be prefixed with log.";
    const ENUMS: &'static [(&'static str, i64)] = LOG_ENUMS;
    type Path = LogPath;
    type Data<'a> = LogData<'a>;

    fn compile_path(path: &Path) -> Result<(LogPath, usize), String> {
        let segments = match path.segments.as_slice() {
            [first, rest @ ..] if first.name == "log" && !rest.is_empty() => rest,
            all => all,
        };
        let Some((first, rest)) = segments.split_first() else {
            return Err("empty path".to_string());
        };
        match first.name.as_str() {
            "resource" => {
                check_keys(&segments[..1], false)?;
                return Ok((LogPath::Resource(resource_path(rest)?), 0));
            }
            "instrumentation_scope" | "scope" => {
                check_keys(&segments[..1], false)?;
                return Ok((LogPath::Scope(scope_path(rest)?), 0));
            }
            "cache" | "attributes" | "body" if rest.is_empty() => {
                check_keys(segments, true)?;
                let p = match first.name.as_str() {
                    "cache" => LogPath::Cache,
                    "attributes" => LogPath::Attributes,
                    _ => LogPath::Body,
                };
                return Ok((p, 0));
            }
            _ => {}
        }
        let sub = rest.first().map(|s| s.name.as_str());
        if rest.len() > 1 {
            return Err("too many segments".to_string());
        }
        let path = match (first.name.as_str(), sub) {
            ("body", Some("string")) => LogPath::BodyString,
            ("time_unix_nano", None) => LogPath::TimeUnixNano,
            ("observed_time_unix_nano", None) => LogPath::ObservedTimeUnixNano,
            ("time", None) => LogPath::Time,
            ("observed_time", None) => LogPath::ObservedTime,
            ("severity_number", None) => LogPath::SeverityNumber,
            ("severity_text", None) => LogPath::SeverityText,
            ("dropped_attributes_count", None) => LogPath::DroppedAttributesCount,
            ("flags", None) => LogPath::Flags,
            ("trace_id", None) => LogPath::TraceId,
            ("trace_id", Some("string")) => LogPath::TraceIdString,
            ("span_id", None) => LogPath::SpanId,
            ("span_id", Some("string")) => LogPath::SpanIdString,
            ("event_name", None) => LogPath::EventName,
            _ => return Err("not a field of a log record".to_string()),
        };
        check_keys(segments, false)?;
        Ok((path, 0))
    }

    fn reborrow<'s, 'l: 's>(data: &'s LogData<'l>) -> LogData<'s> {
        *data
    }

    fn get<'a>(data: &LogData<'a>, path: &LogPath) -> Result<Value<'a>, EvalError>
    where
        Self: 'a,
    {
        let r = data.record;
        Ok(match path {
            LogPath::Resource(p) => get_resource(&data.origin, p),
            LogPath::Scope(p) => get_scope(&data.origin, p),
            LogPath::Cache => Value::Map(Map::Attributes(data.cache)),
            LogPath::TimeUnixNano => Value::Int(r.time_unix_nano as i64),
            LogPath::ObservedTimeUnixNano => Value::Int(r.observed_time_unix_nano as i64),
            LogPath::Time => Value::Time(r.time_unix_nano as i64),
            LogPath::ObservedTime => Value::Time(r.observed_time_unix_nano as i64),
            LogPath::SeverityNumber => Value::Int(i64::from(r.severity_number)),
            LogPath::SeverityText => Value::Str(Cow::Borrowed(&r.severity_text)),
            LogPath::Body => Value::from_any(r.body.as_ref()),
            LogPath::BodyString => Value::Str(
                Value::from_any(r.body.as_ref())
                    .to_string_like()?
                    .unwrap_or(Cow::Borrowed("")),
            ),
            LogPath::Attributes => Value::Map(Map::Attributes(&r.attributes)),
            LogPath::DroppedAttributesCount => Value::Int(i64::from(r.dropped_attributes_count)),
            LogPath::Flags => Value::Int(i64::from(r.flags)),
            LogPath::TraceId => Value::Bytes(Cow::Borrowed(&r.trace_id)),
            LogPath::TraceIdString => Value::Str(Cow::Owned(hex::encode(&r.trace_id))),
            LogPath::SpanId => Value::Bytes(Cow::Borrowed(&r.span_id)),
            LogPath::SpanIdString => Value::Str(Cow::Owned(hex::encode(&r.span_id))),
            LogPath::EventName => Value::Str(Cow::Borrowed(&r.event_name)),
        })
    }
}

impl Writable for Log {
    type Target<'a> = LogTarget<'a>;

    fn view<'t>(target: &'t LogTarget<'_>) -> LogData<'t> {
        LogData {
            record: target.record,
            origin: target.origin.view(),
            cache: target.cache,
        }
    }

    fn place<'t>(target: &'t mut LogTarget<'_>, path: &LogPath) -> Result<Place<'t>, EvalError> {
        Ok(match path {
            LogPath::Resource(p) => resource_place(target.origin.resource, p),
            LogPath::Scope(p) => scope_place(target.origin.scope, p),
            LogPath::Cache => Place::Attributes(target.cache),
            LogPath::Attributes => Place::Attributes(&mut target.record.attributes),
            LogPath::Body => Place::Value(&mut target.record.body),
            _ => Place::Field,
        })
    }

    fn set_field(
        target: &mut LogTarget<'_>,
        path: &LogPath,
        value: &Value<'_>,
    ) -> Result<(), EvalError> {
        let r = &mut *target.record;
        match path {
            LogPath::Resource(p) => {
                return set_resource_field(
                    target.origin.resource,
                    target.origin.resource_schema_url,
                    p,
                    value,
                )
            }
            LogPath::Scope(p) => {
                return set_scope_field(
                    target.origin.scope,
                    target.origin.scope_schema_url,
                    p,
                    value,
                )
            }
            LogPath::TimeUnixNano => r.time_unix_nano = want_nanos("time_unix_nano", value)?,
            LogPath::ObservedTimeUnixNano => {
                r.observed_time_unix_nano = want_nanos("observed_time_unix_nano", value)?
            }
            LogPath::Time => {
                let Value::Time(_) = value else {
                    return Err(EvalError::new(format!(
                        "time takes a time (Time(...)), not {}; or set time_unix_nano",
                        value.type_name()
                    )));
                };
                r.time_unix_nano = want_nanos("time", value)?
            }
            LogPath::ObservedTime => {
                let Value::Time(_) = value else {
                    return Err(EvalError::new(format!(
                        "observed_time takes a time (Time(...)), not {}",
                        value.type_name()
                    )));
                };
                r.observed_time_unix_nano = want_nanos("observed_time", value)?
            }
            LogPath::SeverityNumber => {
                let n = want_int("severity_number", value)?;
                r.severity_number = i32::try_from(n)
                    .map_err(|_| EvalError::new(format!("severity_number: {n} is out of range")))?;
            }
            LogPath::SeverityText => r.severity_text = want_str("severity_text", value)?,
            LogPath::BodyString => {
                r.body = Some(AnyValue {
                    value: Some(any_value::Value::StringValue(want_str(
                        "body.string",
                        value,
                    )?)),
                })
            }
            LogPath::DroppedAttributesCount => {
                r.dropped_attributes_count = want_u32("dropped_attributes_count", value)?
            }
            LogPath::Flags => r.flags = want_u32("flags", value)?,
            LogPath::TraceId => r.trace_id = want_id("trace_id", value, 16, false)?,
            LogPath::TraceIdString => r.trace_id = want_id("trace_id.string", value, 16, true)?,
            LogPath::SpanId => r.span_id = want_id("span_id", value, 8, false)?,
            LogPath::SpanIdString => r.span_id = want_id("span_id.string", value, 8, true)?,
            LogPath::EventName => r.event_name = want_str("event_name", value)?,
            LogPath::Cache | LogPath::Attributes | LogPath::Body => {
                return Err(EvalError::new("this path is written as a map or value"))
            }
        }
        Ok(())
    }

    fn check_writable(_path: &LogPath) -> Result<(), String> {
        // Every path of a log record can be set.
        Ok(())
    }
}
