//! OTLP/JSON decoding from a [`serde_json::Value`] tree.
//!
//! Every message has one small decoder built on [`message`], which walks the
//! JSON object and hands each member to a per-field `match`. Field names are
//! matched in both their lowerCamelCase JSON form and their original proto
//! (snake_case) form; unknown members are ignored and `null` means "default".

mod metrics;

use serde_json::Value;

use super::{JsonError, MAX_ANY_VALUE_DEPTH};
use crate::base64;
use crate::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use crate::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use crate::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use crate::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use crate::resource::v1::Resource;
use crate::status::{Any, Status};
use crate::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span};

pub(super) use metrics::{metrics_request, metrics_response};

type Result<T> = std::result::Result<T, JsonError>;

const TRACE_ID_LEN: usize = 16;
const SPAN_ID_LEN: usize = 8;

// ---------------------------------------------------------------------------
// JSON paths for error messages
// ---------------------------------------------------------------------------

/// Location in the input document, built on the stack while descending and
/// only rendered to a string when an error is reported.
#[derive(Clone, Copy)]
pub(super) enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut cur = self;
        loop {
            match cur {
                Path::Root => break,
                Path::Field(parent, _) | Path::Index(parent, _) => {
                    segments.push(cur);
                    cur = parent;
                }
            }
        }
        let mut out = String::new();
        for seg in segments.iter().rev() {
            match seg {
                Path::Field(_, name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Path::Index(_, i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
                Path::Root => {}
            }
        }
        out
    }

    fn error(&self, message: impl Into<String>) -> JsonError {
        JsonError::new(self.render(), message.into())
    }
}

// ---------------------------------------------------------------------------
// Generic helpers
// ---------------------------------------------------------------------------

/// Parses the document, keeping serde_json's recursion limit (128).
pub(super) fn parse(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| JsonError::new(String::new(), format!("invalid JSON: {e}")))
}

/// `s` quoted and escaped for an error message, truncated if long.
fn quoted(s: &str) -> String {
    const MAX_CHARS: usize = 40;
    match s.char_indices().nth(MAX_CHARS) {
        None => format!("\"{}\"", s.escape_debug()),
        Some((cut, _)) => format!("\"{}...\"", s[..cut].escape_debug()),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", quoted(s)),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn unexpected(v: &Value, p: &Path<'_>, expected: &str) -> JsonError {
    p.error(format!("expected {expected}, got {}", describe(v)))
}

/// Decodes a JSON object (or `null`) into `T`, calling `field` for every
/// member with the member's own path.
fn message<T: Default>(
    v: &Value,
    p: &Path<'_>,
    mut field: impl FnMut(&mut T, &str, &Value, &Path<'_>) -> Result<()>,
) -> Result<T> {
    let mut msg = T::default();
    match v {
        Value::Null => {}
        Value::Object(members) => {
            for (key, value) in members {
                field(&mut msg, key, value, &p.field(key))?;
            }
        }
        other => return Err(unexpected(other, p, "object")),
    }
    Ok(msg)
}

/// Decodes a JSON array (or `null`) of items.
fn repeated<T>(
    v: &Value,
    p: &Path<'_>,
    mut item: impl FnMut(&Value, &Path<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| item(v, &p.index(i)))
            .collect(),
        other => Err(unexpected(other, p, "array")),
    }
}

/// Decodes an optional message field: `null` is `None`.
fn optional<T>(
    v: &Value,
    p: &Path<'_>,
    item: impl FnOnce(&Value, &Path<'_>) -> Result<T>,
) -> Result<Option<T>> {
    if v.is_null() {
        Ok(None)
    } else {
        item(v, p).map(Some)
    }
}

fn string(v: &Value, p: &Path<'_>) -> Result<String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        other => Err(unexpected(other, p, "string")),
    }
}

fn boolean(v: &Value, p: &Path<'_>) -> Result<bool> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        other => Err(unexpected(other, p, "boolean")),
    }
}

/// Any integer type: accepts a JSON number (integral, possibly written with
/// a fraction or exponent such as `1e3`) or a decimal string, range-checked
/// against `T`.
fn integer<T: TryFrom<i128> + Default>(v: &Value, p: &Path<'_>, type_name: &str) -> Result<T> {
    let n: i128 = match v {
        Value::Null => return Ok(T::default()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                i128::from(u)
            } else if let Some(i) = n.as_i64() {
                i128::from(i)
            } else {
                match n.as_f64() {
                    // Saturating cast; out-of-range values fail below.
                    Some(f) if f.fract() == 0.0 => f as i128,
                    _ => return Err(p.error(format!("expected an integer, got number {n}"))),
                }
            }
        }
        Value::String(s) => s
            .parse()
            .map_err(|_| p.error(format!("invalid integer string {}", quoted(s))))?,
        other => return Err(unexpected(other, p, "integer")),
    };
    T::try_from(n).map_err(|_| p.error(format!("{n} is out of range for {type_name}")))
}

fn uint32(v: &Value, p: &Path<'_>) -> Result<u32> {
    integer(v, p, "uint32")
}

fn int32(v: &Value, p: &Path<'_>) -> Result<i32> {
    integer(v, p, "int32")
}

fn uint64(v: &Value, p: &Path<'_>) -> Result<u64> {
    integer(v, p, "uint64")
}

fn int64(v: &Value, p: &Path<'_>) -> Result<i64> {
    integer(v, p, "int64")
}

fn double(v: &Value, p: &Path<'_>) -> Result<f64> {
    match v {
        Value::Null => Ok(0.0),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| p.error(format!("invalid number {n}"))),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            // Rust also parses "inf"/"nan"; only finite values are numbers.
            _ => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| p.error(format!("invalid number string {}", quoted(s)))),
        },
        other => Err(unexpected(other, p, "number")),
    }
}

/// An enum: its integer value (number or string), or its proto name.
fn enumeration(v: &Value, p: &Path<'_>, from_name: fn(&str) -> Option<i32>) -> Result<i32> {
    if let Value::String(s) = v {
        if let Some(n) = from_name(s) {
            return Ok(n);
        }
        if s.parse::<i128>().is_err() {
            return Err(p.error(format!("unknown enum value {}", quoted(s))));
        }
    }
    int32(v, p)
}

/// A trace or span id: a case-insensitive hex string of exactly `len`
/// bytes, or empty.
fn hex_id(v: &Value, p: &Path<'_>, len: usize) -> Result<Vec<u8>> {
    let s = match v {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => s,
        other => return Err(unexpected(other, p, "hex string")),
    };
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let bytes = hex::decode(s).map_err(|_| p.error(format!("invalid hex string {}", quoted(s))))?;
    if bytes.len() != len {
        return Err(p.error(format!(
            "must be {len} bytes ({} hex digits) or empty, got {} bytes",
            len * 2,
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn trace_id(v: &Value, p: &Path<'_>) -> Result<Vec<u8>> {
    hex_id(v, p, TRACE_ID_LEN)
}

fn span_id(v: &Value, p: &Path<'_>) -> Result<Vec<u8>> {
    hex_id(v, p, SPAN_ID_LEN)
}

/// A non-id `bytes` field: base64, standard or URL-safe, padding optional.
fn bytes(v: &Value, p: &Path<'_>) -> Result<Vec<u8>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => {
            base64::decode(s).ok_or_else(|| p.error(format!("invalid base64 string {}", quoted(s))))
        }
        other => Err(unexpected(other, p, "base64 string")),
    }
}

// ---------------------------------------------------------------------------
// common.v1 / resource.v1
// ---------------------------------------------------------------------------

/// `depth` is the number of arrayValue/kvlistValue levels enclosing `v`.
pub(super) fn any_value(v: &Value, p: &Path<'_>, depth: usize) -> Result<AnyValue> {
    use any_value::Value as V;
    message(v, p, |av: &mut AnyValue, key, v, p| {
        if v.is_null() {
            return Ok(());
        }
        let value = match key {
            "stringValue" | "string_value" => V::StringValue(string(v, p)?),
            "boolValue" | "bool_value" => V::BoolValue(boolean(v, p)?),
            "intValue" | "int_value" => V::IntValue(int64(v, p)?),
            "doubleValue" | "double_value" => V::DoubleValue(double(v, p)?),
            "arrayValue" | "array_value" => V::ArrayValue(array_value(v, p, depth + 1)?),
            "kvlistValue" | "kvlist_value" => V::KvlistValue(kvlist_value(v, p, depth + 1)?),
            "bytesValue" | "bytes_value" => V::BytesValue(bytes(v, p)?),
            "stringValueStrindex" | "string_value_strindex" => V::StringValueStrindex(int32(v, p)?),
            _ => return Ok(()),
        };
        if av.value.is_some() {
            return Err(p.error("AnyValue must have at most one value field set"));
        }
        av.value = Some(value);
        Ok(())
    })
}

fn check_depth(p: &Path<'_>, depth: usize) -> Result<()> {
    if depth > MAX_ANY_VALUE_DEPTH {
        return Err(p.error(format!(
            "AnyValue nesting exceeds the maximum depth of {MAX_ANY_VALUE_DEPTH}"
        )));
    }
    Ok(())
}

fn array_value(v: &Value, p: &Path<'_>, depth: usize) -> Result<ArrayValue> {
    check_depth(p, depth)?;
    message(v, p, |a: &mut ArrayValue, key, v, p| {
        if key == "values" {
            a.values = repeated(v, p, |v, p| any_value(v, p, depth))?;
        }
        Ok(())
    })
}

fn kvlist_value(v: &Value, p: &Path<'_>, depth: usize) -> Result<KeyValueList> {
    check_depth(p, depth)?;
    message(v, p, |l: &mut KeyValueList, key, v, p| {
        if key == "values" {
            l.values = repeated(v, p, |v, p| key_value(v, p, depth))?;
        }
        Ok(())
    })
}

fn key_value(v: &Value, p: &Path<'_>, depth: usize) -> Result<KeyValue> {
    message(v, p, |kv: &mut KeyValue, key, v, p| {
        match key {
            "key" => kv.key = string(v, p)?,
            "value" => kv.value = optional(v, p, |v, p| any_value(v, p, depth))?,
            "keyStrindex" | "key_strindex" => kv.key_strindex = int32(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn attributes(v: &Value, p: &Path<'_>) -> Result<Vec<KeyValue>> {
    repeated(v, p, |v, p| key_value(v, p, 0))
}

fn scope(v: &Value, p: &Path<'_>) -> Result<InstrumentationScope> {
    message(v, p, |s: &mut InstrumentationScope, key, v, p| {
        match key {
            "name" => s.name = string(v, p)?,
            "version" => s.version = string(v, p)?,
            "attributes" => s.attributes = attributes(v, p)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                s.dropped_attributes_count = uint32(v, p)?
            }
            _ => {}
        }
        Ok(())
    })
}

fn entity_ref(v: &Value, p: &Path<'_>) -> Result<EntityRef> {
    message(v, p, |e: &mut EntityRef, key, v, p| {
        match key {
            "schemaUrl" | "schema_url" => e.schema_url = string(v, p)?,
            "type" => e.r#type = string(v, p)?,
            "idKeys" | "id_keys" => e.id_keys = repeated(v, p, string)?,
            "descriptionKeys" | "description_keys" => e.description_keys = repeated(v, p, string)?,
            _ => {}
        }
        Ok(())
    })
}

fn resource(v: &Value, p: &Path<'_>) -> Result<Resource> {
    message(v, p, |r: &mut Resource, key, v, p| {
        match key {
            "attributes" => r.attributes = attributes(v, p)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                r.dropped_attributes_count = uint32(v, p)?
            }
            "entityRefs" | "entity_refs" => r.entity_refs = repeated(v, p, entity_ref)?,
            _ => {}
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// trace.v1
// ---------------------------------------------------------------------------

pub(super) fn trace_request(v: &Value, p: &Path<'_>) -> Result<ExportTraceServiceRequest> {
    message(v, p, |r: &mut ExportTraceServiceRequest, key, v, p| {
        if let "resourceSpans" | "resource_spans" = key {
            r.resource_spans = repeated(v, p, resource_spans)?;
        }
        Ok(())
    })
}

fn resource_spans(v: &Value, p: &Path<'_>) -> Result<ResourceSpans> {
    message(v, p, |r: &mut ResourceSpans, key, v, p| {
        match key {
            "resource" => r.resource = optional(v, p, resource)?,
            "scopeSpans" | "scope_spans" => r.scope_spans = repeated(v, p, scope_spans)?,
            "schemaUrl" | "schema_url" => r.schema_url = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn scope_spans(v: &Value, p: &Path<'_>) -> Result<ScopeSpans> {
    message(v, p, |s: &mut ScopeSpans, key, v, p| {
        match key {
            "scope" => s.scope = optional(v, p, scope)?,
            "spans" => s.spans = repeated(v, p, span)?,
            "schemaUrl" | "schema_url" => s.schema_url = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn span_kind(name: &str) -> Option<i32> {
    span::SpanKind::from_str_name(name).map(|k| k as i32)
}

fn status_code(name: &str) -> Option<i32> {
    status::StatusCode::from_str_name(name).map(|c| c as i32)
}

fn span(v: &Value, p: &Path<'_>) -> Result<Span> {
    message(v, p, |s: &mut Span, key, v, p| {
        match key {
            "traceId" | "trace_id" => s.trace_id = trace_id(v, p)?,
            "spanId" | "span_id" => s.span_id = span_id(v, p)?,
            "traceState" | "trace_state" => s.trace_state = string(v, p)?,
            "parentSpanId" | "parent_span_id" => s.parent_span_id = span_id(v, p)?,
            "flags" => s.flags = uint32(v, p)?,
            "name" => s.name = string(v, p)?,
            "kind" => s.kind = enumeration(v, p, span_kind)?,
            "startTimeUnixNano" | "start_time_unix_nano" => s.start_time_unix_nano = uint64(v, p)?,
            "endTimeUnixNano" | "end_time_unix_nano" => s.end_time_unix_nano = uint64(v, p)?,
            "attributes" => s.attributes = attributes(v, p)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                s.dropped_attributes_count = uint32(v, p)?
            }
            "events" => s.events = repeated(v, p, event)?,
            "droppedEventsCount" | "dropped_events_count" => s.dropped_events_count = uint32(v, p)?,
            "links" => s.links = repeated(v, p, link)?,
            "droppedLinksCount" | "dropped_links_count" => s.dropped_links_count = uint32(v, p)?,
            "status" => s.status = optional(v, p, span_status)?,
            _ => {}
        }
        Ok(())
    })
}

fn event(v: &Value, p: &Path<'_>) -> Result<span::Event> {
    message(v, p, |e: &mut span::Event, key, v, p| {
        match key {
            "timeUnixNano" | "time_unix_nano" => e.time_unix_nano = uint64(v, p)?,
            "name" => e.name = string(v, p)?,
            "attributes" => e.attributes = attributes(v, p)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                e.dropped_attributes_count = uint32(v, p)?
            }
            _ => {}
        }
        Ok(())
    })
}

fn link(v: &Value, p: &Path<'_>) -> Result<span::Link> {
    message(v, p, |l: &mut span::Link, key, v, p| {
        match key {
            "traceId" | "trace_id" => l.trace_id = trace_id(v, p)?,
            "spanId" | "span_id" => l.span_id = span_id(v, p)?,
            "traceState" | "trace_state" => l.trace_state = string(v, p)?,
            "attributes" => l.attributes = attributes(v, p)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                l.dropped_attributes_count = uint32(v, p)?
            }
            "flags" => l.flags = uint32(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn span_status(v: &Value, p: &Path<'_>) -> Result<crate::trace::v1::Status> {
    message(v, p, |s: &mut crate::trace::v1::Status, key, v, p| {
        match key {
            "message" => s.message = string(v, p)?,
            "code" => s.code = enumeration(v, p, status_code)?,
            _ => {}
        }
        Ok(())
    })
}

pub(super) fn trace_response(v: &Value, p: &Path<'_>) -> Result<ExportTraceServiceResponse> {
    message(v, p, |r: &mut ExportTraceServiceResponse, key, v, p| {
        if let "partialSuccess" | "partial_success" = key {
            r.partial_success = optional(v, p, trace_partial_success)?;
        }
        Ok(())
    })
}

fn trace_partial_success(v: &Value, p: &Path<'_>) -> Result<ExportTracePartialSuccess> {
    message(v, p, |s: &mut ExportTracePartialSuccess, key, v, p| {
        match key {
            "rejectedSpans" | "rejected_spans" => s.rejected_spans = int64(v, p)?,
            "errorMessage" | "error_message" => s.error_message = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// logs.v1
// ---------------------------------------------------------------------------

pub(super) fn logs_request(v: &Value, p: &Path<'_>) -> Result<ExportLogsServiceRequest> {
    message(v, p, |r: &mut ExportLogsServiceRequest, key, v, p| {
        if let "resourceLogs" | "resource_logs" = key {
            r.resource_logs = repeated(v, p, resource_logs)?;
        }
        Ok(())
    })
}

fn resource_logs(v: &Value, p: &Path<'_>) -> Result<ResourceLogs> {
    message(v, p, |r: &mut ResourceLogs, key, v, p| {
        match key {
            "resource" => r.resource = optional(v, p, resource)?,
            "scopeLogs" | "scope_logs" => r.scope_logs = repeated(v, p, scope_logs)?,
            "schemaUrl" | "schema_url" => r.schema_url = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn scope_logs(v: &Value, p: &Path<'_>) -> Result<ScopeLogs> {
    message(v, p, |s: &mut ScopeLogs, key, v, p| {
        match key {
            "scope" => s.scope = optional(v, p, scope)?,
            "logRecords" | "log_records" => s.log_records = repeated(v, p, log_record)?,
            "schemaUrl" | "schema_url" => s.schema_url = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn severity_number(name: &str) -> Option<i32> {
    SeverityNumber::from_str_name(name).map(|s| s as i32)
}

fn log_record(v: &Value, p: &Path<'_>) -> Result<LogRecord> {
    message(v, p, |r: &mut LogRecord, key, v, p| {
        match key {
            "timeUnixNano" | "time_unix_nano" => r.time_unix_nano = uint64(v, p)?,
            "observedTimeUnixNano" | "observed_time_unix_nano" => {
                r.observed_time_unix_nano = uint64(v, p)?
            }
            "severityNumber" | "severity_number" => {
                r.severity_number = enumeration(v, p, severity_number)?
            }
            "severityText" | "severity_text" => r.severity_text = string(v, p)?,
            "body" => r.body = optional(v, p, |v, p| any_value(v, p, 0))?,
            "attributes" => r.attributes = attributes(v, p)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                r.dropped_attributes_count = uint32(v, p)?
            }
            "flags" => r.flags = uint32(v, p)?,
            "traceId" | "trace_id" => r.trace_id = trace_id(v, p)?,
            "spanId" | "span_id" => r.span_id = span_id(v, p)?,
            "eventName" | "event_name" => r.event_name = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

pub(super) fn logs_response(v: &Value, p: &Path<'_>) -> Result<ExportLogsServiceResponse> {
    message(v, p, |r: &mut ExportLogsServiceResponse, key, v, p| {
        if let "partialSuccess" | "partial_success" = key {
            r.partial_success = optional(v, p, logs_partial_success)?;
        }
        Ok(())
    })
}

fn logs_partial_success(v: &Value, p: &Path<'_>) -> Result<ExportLogsPartialSuccess> {
    message(v, p, |s: &mut ExportLogsPartialSuccess, key, v, p| {
        match key {
            "rejectedLogRecords" | "rejected_log_records" => s.rejected_log_records = int64(v, p)?,
            "errorMessage" | "error_message" => s.error_message = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// google.rpc.Status
// ---------------------------------------------------------------------------

pub(super) fn rpc_status(v: &Value, p: &Path<'_>) -> Result<Status> {
    message(v, p, |s: &mut Status, key, v, p| {
        match key {
            "code" => s.code = int32(v, p)?,
            "message" => s.message = string(v, p)?,
            "details" => s.details = repeated(v, p, any_detail)?,
            _ => {}
        }
        Ok(())
    })
}

/// A `google.protobuf.Any` detail. Without a type registry the embedded
/// message cannot be decoded, so only `@type` and a base64 `value` (the form
/// [`super::encode_status`] writes) are kept; other members are ignored.
fn any_detail(v: &Value, p: &Path<'_>) -> Result<Any> {
    message(v, p, |a: &mut Any, key, v, p| {
        match key {
            "@type" | "typeUrl" | "type_url" => a.type_url = string(v, p)?,
            "value" => {
                if let Value::String(s) = v {
                    a.value = base64::decode(s).unwrap_or_default();
                }
            }
            _ => {}
        }
        Ok(())
    })
}
