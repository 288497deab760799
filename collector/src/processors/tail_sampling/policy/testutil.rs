//! Builders for the policy tests: traces, spans, logs and attribute values in a line each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use weft_proto::common::v1::any_value::Value;
use weft_proto::common::v1::{AnyValue, KeyValue};
use weft_proto::logs::v1::LogRecord;
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::status::StatusCode;
use weft_proto::trace::v1::{Span, Status};

use prost::Message;

use super::super::trace::{LogEntry, Origin, SpanEntry, TraceData};
use super::{Decision, Evaluate};

/// A fixed instant for policies that ignore time (the base of simulated clocks elsewhere).
pub(super) fn now() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

pub(super) fn s(v: &str) -> Value {
    Value::StringValue(v.to_string())
}
pub(super) fn i(v: i64) -> Value {
    Value::IntValue(v)
}
pub(super) fn d(v: f64) -> Value {
    Value::DoubleValue(v)
}
pub(super) fn b(v: bool) -> Value {
    Value::BoolValue(v)
}

pub(super) fn attrs(pairs: &[(&str, Value)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.to_string(),
            value: Some(AnyValue {
                value: Some(v.clone()),
            }),
            ..Default::default()
        })
        .collect()
}

pub(super) fn origin_with(pairs: &[(&str, Value)]) -> Arc<Origin> {
    Arc::new(Origin {
        resource: Resource {
            attributes: attrs(pairs),
            ..Default::default()
        },
        ..Default::default()
    })
}

pub(super) fn span_with(pairs: &[(&str, Value)]) -> Span {
    Span {
        name: "op".into(),
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_001_000_000,
        attributes: attrs(pairs),
        ..Default::default()
    }
}

/// A span from `start_ms` to `end_ms` (milliseconds since an arbitrary epoch).
pub(super) fn span_ms(start_ms: u64, end_ms: u64) -> Span {
    Span {
        start_time_unix_nano: 1_700_000_000_000_000_000 + start_ms * 1_000_000,
        end_time_unix_nano: 1_700_000_000_000_000_000 + end_ms * 1_000_000,
        ..span_with(&[])
    }
}

pub(super) fn span_status(code: StatusCode) -> Span {
    Span {
        status: Some(Status {
            code: code as i32,
            message: String::new(),
        }),
        ..span_with(&[])
    }
}

pub(super) fn log_with_body(body: &str) -> LogRecord {
    LogRecord {
        body: Some(AnyValue {
            value: Some(s(body)),
        }),
        ..Default::default()
    }
}

pub(super) fn log_severity(number: i32, text: &str) -> LogRecord {
    LogRecord {
        severity_number: number,
        severity_text: text.to_string(),
        ..log_with_body("message")
    }
}

pub(super) fn log_attrs(pairs: &[(&str, Value)]) -> LogRecord {
    LogRecord {
        attributes: attrs(pairs),
        ..log_with_body("message")
    }
}

/// A trace of `spans`, all under one empty resource.
pub(super) fn trace_of(spans: Vec<Span>) -> TraceData {
    let origin = Arc::new(Origin::default());
    trace_from(
        spans.into_iter().map(|s| (origin.clone(), s)).collect(),
        vec![],
    )
}

/// A trace of `logs` only, all under one empty resource.
pub(super) fn trace_of_logs(logs: Vec<LogRecord>) -> TraceData {
    let origin = Arc::new(Origin::default());
    trace_from(
        vec![],
        logs.into_iter().map(|l| (origin.clone(), l)).collect(),
    )
}

pub(super) fn trace_from(
    spans: Vec<(Arc<Origin>, Span)>,
    logs: Vec<(Arc<Origin>, LogRecord)>,
) -> TraceData {
    TraceData {
        trace_id: [7; 16],
        spans: spans
            .into_iter()
            .map(|(origin, span)| SpanEntry {
                encoded_len: span.encoded_len(),
                origin,
                span,
            })
            .collect(),
        logs: logs
            .into_iter()
            .map(|(origin, record)| LogEntry { origin, record })
            .collect(),
    }
}

/// A trace with `n` plain spans.
pub(super) fn trace_with_spans(n: usize) -> TraceData {
    trace_of((0..n).map(|_| span_with(&[])).collect())
}

/// A sub-policy with a fixed answer that counts how often it is asked.
#[derive(Debug)]
pub(super) struct Fixed {
    decision: Decision,
    calls: Arc<AtomicUsize>,
}

pub(super) fn fixed(decision: Decision) -> (Box<dyn Evaluate>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    (
        Box::new(Fixed {
            decision,
            calls: calls.clone(),
        }),
        calls,
    )
}

impl Evaluate for Fixed {
    fn evaluate(&self, _trace: &TraceData, _now: Instant) -> Decision {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.decision
    }
}

pub(super) fn subs(decisions: &[Decision]) -> Vec<Box<dyn Evaluate>> {
    decisions.iter().map(|d| fixed(*d).0).collect()
}
