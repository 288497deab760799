//! The debug exporter's text, close to what the Collector's debug exporter prints so the
//! output reads the same:
//! - basic: one summary line per batch;
//! - normal: the summary, then a line per resource, scope, and span or log record;
//! - detailed: the summary, then every field (the Collector's text marshaler layout).

use std::fmt::{self, Write};

use chrono::{DateTime, Utc};
use weft_proto::base64::encode as base64;
use weft_proto::common::v1::any_value::Value;
use weft_proto::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use weft_proto::logs::v1::{LogRecord, SeverityNumber};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::span::SpanKind;
use weft_proto::trace::v1::status::StatusCode;
use weft_proto::trace::v1::Span;

use super::Verbosity;
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

use crate::pipeline::{Logs, Metrics, Payload, Signal, Traces};

/// The text of one batch. The layout is each signal's own (the Collector's): a signal
/// without one here yet gets the summary line alone, so the exporter still works for it.
pub(crate) fn render<T: Payload>(
    data: &T,
    verbosity: Verbosity,
    exporter: &str,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    let any = data as &dyn std::any::Any;
    // Writing into a String cannot fail.
    let _ = if let Some(traces) = any.downcast_ref::<Traces>() {
        write_traces(&mut out, verbosity, exporter, now, &traces.request())
    } else if let Some(logs) = any.downcast_ref::<Logs>() {
        write_logs(&mut out, verbosity, exporter, now, &logs.request())
    } else if let Some(metrics) = any.downcast_ref::<Metrics>() {
        super::format_metrics::write_metrics(&mut out, verbosity, exporter, now, &metrics.request())
    } else {
        writeln!(
            out,
            "{}\tinfo\t{}\t{{\"kind\": \"exporter\", \"data_type\": \"{}\", \"name\": \"{exporter}\", \"{}\": {}}}",
            now.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            <T::Request as Signal>::REQUEST,
            T::SIGNAL,
            T::ITEM,
            data.item_count()
        )
    };
    out
}

fn summary(
    out: &mut String,
    now: DateTime<Utc>,
    what: &str,
    data_type: &str,
    exporter: &str,
    counts: [(&str, usize); 2],
) -> fmt::Result {
    writeln!(
        out,
        "{}\tinfo\t{what}\t{{\"kind\": \"exporter\", \"data_type\": \"{data_type}\", \"name\": \"{exporter}\", \"{}\": {}, \"{}\": {}}}",
        now.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        counts[0].0,
        counts[0].1,
        counts[1].0,
        counts[1].1
    )
}

fn write_traces(
    out: &mut String,
    verbosity: Verbosity,
    exporter: &str,
    now: DateTime<Utc>,
    data: &ExportTraceServiceRequest,
) -> fmt::Result {
    summary(
        out,
        now,
        "TracesExporter",
        "traces",
        exporter,
        [
            ("resource spans", data.resource_spans.len()),
            ("spans", Signal::items(data)),
        ],
    )?;
    match verbosity {
        Verbosity::Basic => Ok(()),
        Verbosity::Normal => normal_traces(out, data),
        Verbosity::Detailed => detailed_traces(out, data),
    }
}

fn write_logs(
    out: &mut String,
    verbosity: Verbosity,
    exporter: &str,
    now: DateTime<Utc>,
    data: &ExportLogsServiceRequest,
) -> fmt::Result {
    summary(
        out,
        now,
        "LogsExporter",
        "logs",
        exporter,
        [
            ("resource logs", data.resource_logs.len()),
            ("log records", Signal::items(data)),
        ],
    )?;
    match verbosity {
        Verbosity::Basic => Ok(()),
        Verbosity::Normal => normal_logs(out, data),
        Verbosity::Detailed => detailed_logs(out, data),
    }
}

// ---- normal: one line per item ----

fn normal_traces(out: &mut String, data: &ExportTraceServiceRequest) -> fmt::Result {
    for (i, rs) in data.resource_spans.iter().enumerate() {
        normal_resource(out, "ResourceSpans", i, rs.resource.as_ref())?;
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            normal_scope(out, "ScopeSpans", j, ss.scope.as_ref())?;
            for span in &ss.spans {
                write!(
                    out,
                    "{} {} {}",
                    or_dash(&span.name),
                    or_dash(&hex::encode(&span.trace_id)),
                    or_dash(&hex::encode(&span.span_id)),
                )?;
                inline_attributes(out, &span.attributes)?;
                out.push('\n');
            }
        }
    }
    Ok(())
}

fn normal_logs(out: &mut String, data: &ExportLogsServiceRequest) -> fmt::Result {
    for (i, rl) in data.resource_logs.iter().enumerate() {
        normal_resource(out, "ResourceLog", i, rl.resource.as_ref())?;
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            normal_scope(out, "ScopeLogs", j, sl.scope.as_ref())?;
            for log in &sl.log_records {
                let body = log.body.as_ref().map(plain).unwrap_or_default();
                write!(
                    out,
                    "{} {} {}",
                    or_dash(&body),
                    or_dash(&hex::encode(&log.trace_id)),
                    or_dash(&hex::encode(&log.span_id)),
                )?;
                let severity = if log.severity_text.is_empty() {
                    severity_name(log.severity_number)
                } else {
                    log.severity_text.clone()
                };
                if !severity.is_empty() {
                    write!(out, " severity={severity}")?;
                }
                inline_attributes(out, &log.attributes)?;
                out.push('\n');
            }
        }
    }
    Ok(())
}

pub(super) fn normal_resource(
    out: &mut String,
    label: &str,
    i: usize,
    resource: Option<&Resource>,
) -> fmt::Result {
    write!(out, "{label} #{i}")?;
    if let Some(r) = resource {
        inline_attributes(out, &r.attributes)?;
    }
    out.push('\n');
    Ok(())
}

pub(super) fn normal_scope(
    out: &mut String,
    label: &str,
    i: usize,
    scope: Option<&InstrumentationScope>,
) -> fmt::Result {
    write!(out, "{label} #{i}")?;
    if let Some(s) = scope {
        if !s.name.is_empty() {
            write!(out, " {}", s.name)?;
            if !s.version.is_empty() {
                write!(out, "@{}", s.version)?;
            }
        }
        inline_attributes(out, &s.attributes)?;
    }
    out.push('\n');
    Ok(())
}

fn inline_attributes(out: &mut String, attributes: &[KeyValue]) -> fmt::Result {
    for kv in attributes {
        let value = kv.value.as_ref().map(plain).unwrap_or_default();
        write!(out, " {}={}", kv.key, value)?;
    }
    Ok(())
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

// ---- detailed: every field ----

fn detailed_traces(out: &mut String, data: &ExportTraceServiceRequest) -> fmt::Result {
    for (i, rs) in data.resource_spans.iter().enumerate() {
        writeln!(out, "ResourceSpans #{i}")?;
        detailed_resource(out, &rs.schema_url, rs.resource.as_ref())?;
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            writeln!(out, "ScopeSpans #{j}")?;
            detailed_scope(out, "ScopeSpans", &ss.schema_url, ss.scope.as_ref())?;
            for (k, span) in ss.spans.iter().enumerate() {
                writeln!(out, "Span #{k}")?;
                detailed_span(out, span)?;
            }
        }
    }
    Ok(())
}

fn detailed_span(out: &mut String, span: &Span) -> fmt::Result {
    let status = span.status.clone().unwrap_or_default();
    writeln!(out, "    Trace ID       : {}", hex::encode(&span.trace_id))?;
    writeln!(
        out,
        "    Parent ID      : {}",
        hex::encode(&span.parent_span_id)
    )?;
    writeln!(out, "    ID             : {}", hex::encode(&span.span_id))?;
    writeln!(out, "    Name           : {}", span.name)?;
    writeln!(out, "    Kind           : {}", span_kind_name(span.kind))?;
    if !span.trace_state.is_empty() {
        writeln!(out, "    TraceState     : {}", span.trace_state)?;
    }
    writeln!(
        out,
        "    Start time     : {}",
        go_time(span.start_time_unix_nano)
    )?;
    writeln!(
        out,
        "    End time       : {}",
        go_time(span.end_time_unix_nano)
    )?;
    writeln!(
        out,
        "    Status code    : {}",
        status_code_name(status.code)
    )?;
    writeln!(out, "    Status message : {}", status.message)?;
    if span.flags != 0 {
        writeln!(out, "    Flags          : {}", span.flags)?;
    }
    detailed_attributes(out, "Attributes:", "     -> ", &span.attributes)?;
    if !span.events.is_empty() {
        writeln!(out, "Events:")?;
        for (i, e) in span.events.iter().enumerate() {
            writeln!(out, "SpanEvent #{i}")?;
            writeln!(out, "     -> Name: {}", e.name)?;
            writeln!(out, "     -> Timestamp: {}", go_time(e.time_unix_nano))?;
            writeln!(
                out,
                "     -> DroppedAttributesCount: {}",
                e.dropped_attributes_count
            )?;
            detailed_attributes(out, "     -> Attributes::", "          -> ", &e.attributes)?;
        }
    }
    if !span.links.is_empty() {
        writeln!(out, "Links:")?;
        for (i, l) in span.links.iter().enumerate() {
            writeln!(out, "SpanLink #{i}")?;
            writeln!(out, "     -> Trace ID: {}", hex::encode(&l.trace_id))?;
            writeln!(out, "     -> ID: {}", hex::encode(&l.span_id))?;
            writeln!(out, "     -> TraceState: {}", l.trace_state)?;
            writeln!(
                out,
                "     -> DroppedAttributesCount: {}",
                l.dropped_attributes_count
            )?;
            detailed_attributes(out, "     -> Attributes::", "          -> ", &l.attributes)?;
        }
    }
    Ok(())
}

fn detailed_logs(out: &mut String, data: &ExportLogsServiceRequest) -> fmt::Result {
    for (i, rl) in data.resource_logs.iter().enumerate() {
        writeln!(out, "ResourceLog #{i}")?;
        detailed_resource(out, &rl.schema_url, rl.resource.as_ref())?;
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            writeln!(out, "ScopeLogs #{j}")?;
            detailed_scope(out, "ScopeLogs", &sl.schema_url, sl.scope.as_ref())?;
            for (k, log) in sl.log_records.iter().enumerate() {
                writeln!(out, "LogRecord #{k}")?;
                detailed_log(out, log)?;
            }
        }
    }
    Ok(())
}

fn detailed_log(out: &mut String, log: &LogRecord) -> fmt::Result {
    writeln!(
        out,
        "ObservedTimestamp: {}",
        go_time(log.observed_time_unix_nano)
    )?;
    writeln!(out, "Timestamp: {}", go_time(log.time_unix_nano))?;
    writeln!(out, "SeverityText: {}", log.severity_text)?;
    writeln!(
        out,
        "SeverityNumber: {}({})",
        severity_name(log.severity_number),
        log.severity_number
    )?;
    if !log.event_name.is_empty() {
        writeln!(out, "EventName: {}", log.event_name)?;
    }
    writeln!(out, "Body: {}", typed(log.body.as_ref()))?;
    detailed_attributes(out, "Attributes:", "     -> ", &log.attributes)?;
    writeln!(out, "Trace ID: {}", hex::encode(&log.trace_id))?;
    writeln!(out, "Span ID: {}", hex::encode(&log.span_id))?;
    writeln!(out, "Flags: {}", log.flags)
}

pub(super) fn detailed_resource(
    out: &mut String,
    schema_url: &str,
    resource: Option<&Resource>,
) -> fmt::Result {
    writeln!(out, "Resource SchemaURL: {schema_url}")?;
    if let Some(r) = resource {
        detailed_attributes(out, "Resource attributes:", "     -> ", &r.attributes)?;
    }
    Ok(())
}

pub(super) fn detailed_scope(
    out: &mut String,
    label: &str,
    schema_url: &str,
    scope: Option<&InstrumentationScope>,
) -> fmt::Result {
    writeln!(out, "{label} SchemaURL: {schema_url}")?;
    let scope = scope.cloned().unwrap_or_default();
    writeln!(out, "InstrumentationScope {} {}", scope.name, scope.version)?;
    detailed_attributes(
        out,
        "InstrumentationScope attributes:",
        "     -> ",
        &scope.attributes,
    )
}

pub(super) fn detailed_attributes(
    out: &mut String,
    header: &str,
    indent: &str,
    attributes: &[KeyValue],
) -> fmt::Result {
    if attributes.is_empty() {
        return Ok(());
    }
    writeln!(out, "{header}")?;
    for kv in attributes {
        writeln!(out, "{indent}{}: {}", kv.key, typed(kv.value.as_ref()))?;
    }
    Ok(())
}

// ---- values, names, times ----

/// A value as the Collector's detailed output shows it: `Str(x)`, `Int(5)`, `Map({...})`.
pub(crate) fn typed(value: Option<&AnyValue>) -> String {
    let Some((any, v)) = value.and_then(|a| a.value.as_ref().map(|v| (a, v))) else {
        return "Empty()".to_string();
    };
    let kind = match v {
        Value::StringValue(_) | Value::StringValueStrindex(_) => "Str",
        Value::BoolValue(_) => "Bool",
        Value::IntValue(_) => "Int",
        Value::DoubleValue(_) => "Double",
        Value::ArrayValue(_) => "Slice",
        Value::KvlistValue(_) => "Map",
        Value::BytesValue(_) => "Bytes",
    };
    format!("{kind}({})", plain(any))
}

/// A value as plain text: strings as they are, everything else as JSON.
pub(crate) fn plain(value: &AnyValue) -> String {
    match &value.value {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::StringValueStrindex(i)) => format!("#{i}"),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => base64(b),
        Some(_) => to_json(value).to_string(),
    }
}

fn to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &value.value {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::StringValueStrindex(i)) => J::String(format!("#{i}")),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(J::Number)
            .unwrap_or_else(|| J::String(d.to_string())),
        Some(Value::BytesValue(b)) => J::String(base64(b)),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(to_json).collect()),
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|e| {
                    (
                        e.key.clone(),
                        e.value.as_ref().map(to_json).unwrap_or(J::Null),
                    )
                })
                .collect(),
        ),
    }
}

/// `SPAN_KIND_SERVER` → `Server`.
fn span_kind_name(kind: i32) -> String {
    SpanKind::try_from(kind)
        .map(|k| title(k.as_str_name().trim_start_matches("SPAN_KIND_")))
        .unwrap_or_else(|_| kind.to_string())
}

/// `STATUS_CODE_ERROR` → `Error`.
fn status_code_name(code: i32) -> String {
    StatusCode::try_from(code)
        .map(|c| title(c.as_str_name().trim_start_matches("STATUS_CODE_")))
        .unwrap_or_else(|_| code.to_string())
}

/// `SEVERITY_NUMBER_INFO2` → `Info2`; 0 → `Unspecified`.
fn severity_name(number: i32) -> String {
    SeverityNumber::try_from(number)
        .map(|s| title(s.as_str_name().trim_start_matches("SEVERITY_NUMBER_")))
        .unwrap_or_else(|_| number.to_string())
}

fn title(upper: &str) -> String {
    let lower = upper.to_ascii_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Nanoseconds since the epoch as Go prints a `time.Time` in UTC:
/// `2020-02-11 20:26:12.000000321 +0000 UTC` (trailing zeros of the fraction dropped).
pub(crate) fn go_time(unix_nanos: u64) -> String {
    let secs = (unix_nanos / 1_000_000_000) as i64;
    let nanos = (unix_nanos % 1_000_000_000) as u32;
    let Some(t) = DateTime::<Utc>::from_timestamp(secs, nanos) else {
        return unix_nanos.to_string();
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}
