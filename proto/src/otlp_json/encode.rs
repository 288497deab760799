//! OTLP/JSON encoding, written straight into a `String`.
//!
//! Fields holding their default value are omitted (as the proto3 JSON
//! mapping does), except oneof members and present optional messages, whose
//! presence is significant. 64-bit integers are written as decimal strings,
//! ids as lowercase hex, other bytes as padded standard base64, enums as
//! integers.

mod metrics;

use std::fmt::{Display, Write as _};

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
use crate::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::resource::v1::Resource;
use crate::status::{Any, Status};
use crate::trace::v1::{span, ResourceSpans, ScopeSpans, Span};

pub(super) use metrics::{metrics_request, metrics_response};

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

fn push_display(out: &mut String, v: impl Display) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{v}");
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, hence on a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            push_display(out, format_args!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn write_f64(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("\"NaN\"");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        // Debug is the shortest representation that round-trips, and uses
        // an exponent for very large/small magnitudes: always valid JSON.
        push_display(out, format_args!("{f:?}"));
    }
}

/// Writes `{ ... }`; `body` adds the members.
fn object(out: &mut String, body: impl FnOnce(&mut Obj<'_>)) {
    out.push('{');
    let mut obj = Obj { out, empty: true };
    body(&mut obj);
    obj.out.push('}');
}

struct Obj<'a> {
    out: &'a mut String,
    empty: bool,
}

impl Obj<'_> {
    /// Starts a member and returns the buffer to write its value into.
    fn key(&mut self, name: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
        self.out
    }

    fn string(&mut self, name: &str, v: &str) {
        if !v.is_empty() {
            write_str(self.key(name), v);
        }
    }

    fn hex_id(&mut self, name: &str, v: &[u8]) {
        if !v.is_empty() {
            let out = self.key(name);
            out.push('"');
            out.push_str(&hex::encode(v));
            out.push('"');
        }
    }

    /// uint32, fixed32, int32 and enums: a JSON number.
    fn int(&mut self, name: &str, v: impl Into<i64>) {
        let v = v.into();
        if v != 0 {
            push_display(self.key(name), v);
        }
    }

    /// fixed64, uint64 and int64: a decimal string.
    fn int64(&mut self, name: &str, v: impl Into<i128>) {
        let v = v.into();
        if v != 0 {
            push_display(self.key(name), format_args!("\"{v}\""));
        }
    }

    fn message<T>(&mut self, name: &str, v: Option<&T>, encode: fn(&mut String, &T)) {
        if let Some(v) = v {
            encode(self.key(name), v);
        }
    }

    fn array<T>(&mut self, name: &str, items: &[T], mut encode: impl FnMut(&mut String, &T)) {
        if items.is_empty() {
            return;
        }
        let out = self.key(name);
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            encode(out, item);
        }
        out.push(']');
    }
}

// ---------------------------------------------------------------------------
// common.v1 / resource.v1
// ---------------------------------------------------------------------------

fn any_value(out: &mut String, v: &AnyValue) {
    use any_value::Value as V;
    object(out, |o| match &v.value {
        None => {}
        Some(V::StringValue(s)) => write_str(o.key("stringValue"), s),
        Some(V::BoolValue(b)) => push_display(o.key("boolValue"), b),
        Some(V::IntValue(i)) => push_display(o.key("intValue"), format_args!("\"{i}\"")),
        Some(V::DoubleValue(f)) => write_f64(o.key("doubleValue"), *f),
        Some(V::ArrayValue(a)) => array_value(o.key("arrayValue"), a),
        Some(V::KvlistValue(l)) => kvlist_value(o.key("kvlistValue"), l),
        Some(V::BytesValue(b)) => {
            let out = o.key("bytesValue");
            out.push('"');
            base64::encode_into(b, out);
            out.push('"');
        }
        Some(V::StringValueStrindex(i)) => push_display(o.key("stringValueStrindex"), i),
    });
}

fn array_value(out: &mut String, a: &ArrayValue) {
    object(out, |o| o.array("values", &a.values, any_value));
}

fn kvlist_value(out: &mut String, l: &KeyValueList) {
    object(out, |o| o.array("values", &l.values, key_value));
}

fn key_value(out: &mut String, kv: &KeyValue) {
    object(out, |o| {
        o.string("key", &kv.key);
        o.message("value", kv.value.as_ref(), any_value);
        o.int("keyStrindex", kv.key_strindex);
    });
}

fn scope(out: &mut String, s: &InstrumentationScope) {
    object(out, |o| {
        o.string("name", &s.name);
        o.string("version", &s.version);
        o.array("attributes", &s.attributes, key_value);
        o.int("droppedAttributesCount", s.dropped_attributes_count);
    });
}

fn entity_ref(out: &mut String, e: &EntityRef) {
    object(out, |o| {
        o.string("schemaUrl", &e.schema_url);
        o.string("type", &e.r#type);
        o.array("idKeys", &e.id_keys, |out, k| write_str(out, k));
        o.array("descriptionKeys", &e.description_keys, |out, k| {
            write_str(out, k)
        });
    });
}

fn resource(out: &mut String, r: &Resource) {
    object(out, |o| {
        o.array("attributes", &r.attributes, key_value);
        o.int("droppedAttributesCount", r.dropped_attributes_count);
        o.array("entityRefs", &r.entity_refs, entity_ref);
    });
}

// ---------------------------------------------------------------------------
// trace.v1
// ---------------------------------------------------------------------------

pub(super) fn trace_request(out: &mut String, r: &ExportTraceServiceRequest) {
    object(out, |o| {
        o.array("resourceSpans", &r.resource_spans, resource_spans)
    });
}

fn resource_spans(out: &mut String, r: &ResourceSpans) {
    object(out, |o| {
        o.message("resource", r.resource.as_ref(), resource);
        o.array("scopeSpans", &r.scope_spans, scope_spans);
        o.string("schemaUrl", &r.schema_url);
    });
}

fn scope_spans(out: &mut String, s: &ScopeSpans) {
    object(out, |o| {
        o.message("scope", s.scope.as_ref(), scope);
        o.array("spans", &s.spans, span);
        o.string("schemaUrl", &s.schema_url);
    });
}

fn span(out: &mut String, s: &Span) {
    object(out, |o| {
        o.hex_id("traceId", &s.trace_id);
        o.hex_id("spanId", &s.span_id);
        o.string("traceState", &s.trace_state);
        o.hex_id("parentSpanId", &s.parent_span_id);
        o.int("flags", s.flags);
        o.string("name", &s.name);
        o.int("kind", s.kind);
        o.int64("startTimeUnixNano", s.start_time_unix_nano);
        o.int64("endTimeUnixNano", s.end_time_unix_nano);
        o.array("attributes", &s.attributes, key_value);
        o.int("droppedAttributesCount", s.dropped_attributes_count);
        o.array("events", &s.events, event);
        o.int("droppedEventsCount", s.dropped_events_count);
        o.array("links", &s.links, link);
        o.int("droppedLinksCount", s.dropped_links_count);
        o.message("status", s.status.as_ref(), span_status);
    });
}

fn event(out: &mut String, e: &span::Event) {
    object(out, |o| {
        o.int64("timeUnixNano", e.time_unix_nano);
        o.string("name", &e.name);
        o.array("attributes", &e.attributes, key_value);
        o.int("droppedAttributesCount", e.dropped_attributes_count);
    });
}

fn link(out: &mut String, l: &span::Link) {
    object(out, |o| {
        o.hex_id("traceId", &l.trace_id);
        o.hex_id("spanId", &l.span_id);
        o.string("traceState", &l.trace_state);
        o.array("attributes", &l.attributes, key_value);
        o.int("droppedAttributesCount", l.dropped_attributes_count);
        o.int("flags", l.flags);
    });
}

fn span_status(out: &mut String, s: &crate::trace::v1::Status) {
    object(out, |o| {
        o.string("message", &s.message);
        o.int("code", s.code);
    });
}

pub(super) fn trace_response(out: &mut String, r: &ExportTraceServiceResponse) {
    object(out, |o| {
        o.message(
            "partialSuccess",
            r.partial_success.as_ref(),
            trace_partial_success,
        )
    });
}

fn trace_partial_success(out: &mut String, s: &ExportTracePartialSuccess) {
    object(out, |o| {
        o.int64("rejectedSpans", s.rejected_spans);
        o.string("errorMessage", &s.error_message);
    });
}

// ---------------------------------------------------------------------------
// logs.v1
// ---------------------------------------------------------------------------

pub(super) fn logs_request(out: &mut String, r: &ExportLogsServiceRequest) {
    object(out, |o| {
        o.array("resourceLogs", &r.resource_logs, resource_logs)
    });
}

fn resource_logs(out: &mut String, r: &ResourceLogs) {
    object(out, |o| {
        o.message("resource", r.resource.as_ref(), resource);
        o.array("scopeLogs", &r.scope_logs, scope_logs);
        o.string("schemaUrl", &r.schema_url);
    });
}

fn scope_logs(out: &mut String, s: &ScopeLogs) {
    object(out, |o| {
        o.message("scope", s.scope.as_ref(), scope);
        o.array("logRecords", &s.log_records, log_record);
        o.string("schemaUrl", &s.schema_url);
    });
}

fn log_record(out: &mut String, r: &LogRecord) {
    object(out, |o| {
        o.int64("timeUnixNano", r.time_unix_nano);
        o.int64("observedTimeUnixNano", r.observed_time_unix_nano);
        o.int("severityNumber", r.severity_number);
        o.string("severityText", &r.severity_text);
        o.message("body", r.body.as_ref(), any_value);
        o.array("attributes", &r.attributes, key_value);
        o.int("droppedAttributesCount", r.dropped_attributes_count);
        o.int("flags", r.flags);
        o.hex_id("traceId", &r.trace_id);
        o.hex_id("spanId", &r.span_id);
        o.string("eventName", &r.event_name);
    });
}

pub(super) fn logs_response(out: &mut String, r: &ExportLogsServiceResponse) {
    object(out, |o| {
        o.message(
            "partialSuccess",
            r.partial_success.as_ref(),
            logs_partial_success,
        )
    });
}

fn logs_partial_success(out: &mut String, s: &ExportLogsPartialSuccess) {
    object(out, |o| {
        o.int64("rejectedLogRecords", s.rejected_log_records);
        o.string("errorMessage", &s.error_message);
    });
}

// ---------------------------------------------------------------------------
// google.rpc.Status
// ---------------------------------------------------------------------------

/// `{"code":3,"message":"..."}`; `code` and `message` are always written,
/// `details` only when present.
pub(super) fn rpc_status(out: &mut String, s: &Status) {
    object(out, |o| {
        push_display(o.key("code"), s.code);
        write_str(o.key("message"), &s.message);
        o.array("details", &s.details, any_detail);
    });
}

/// Without a type registry an `Any` cannot be rendered as its embedded
/// message, so it is written as `{"@type": url, "value": base64}`.
fn any_detail(out: &mut String, a: &Any) {
    object(out, |o| {
        write_str(o.key("@type"), &a.type_url);
        let out = o.key("value");
        out.push('"');
        base64::encode_into(&a.value, out);
        out.push('"');
    });
}
