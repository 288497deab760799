//! A decided trace's held spans and logs, as the trace view shows them: spans in tree order
//! (each after its parent, siblings by start time) with their offset and duration from the
//! trace's start, each span's logs and events under it, every attribute and body redacted
//! by the registered rules and cut at `max_value_bytes`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::LogRecord;
use weft_proto::trace::v1::Span;

use crate::processors::tail_sampling::decisions::Detail;
use crate::processors::tail_sampling::policy::severity_name;
use crate::processors::tail_sampling::trace::{decode_log, decode_span, Origin, Reads};
use crate::redaction::{self, Redact};

/// Text of at most `max` bytes (cut at a character boundary), and the full size when cut.
fn cut(text: &str, max: usize) -> (String, Option<usize>) {
    if text.len() <= max {
        return (text.to_string(), None);
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    (format!("{}…", &text[..at]), Some(text.len()))
}

/// An attribute value or body as text: strings as they are, other scalars as written,
/// bytes in hex, arrays and maps as JSON.
fn text_of(value: Option<&AnyValue>) -> String {
    fn to_json(v: Option<&any_value::Value>) -> Value {
        match v {
            Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
            Some(any_value::Value::IntValue(i)) => json!(i),
            Some(any_value::Value::DoubleValue(d)) => json!(d),
            Some(any_value::Value::BytesValue(b)) => Value::String(hex::encode(b)),
            Some(any_value::Value::ArrayValue(a)) => {
                Value::Array(a.values.iter().map(|v| to_json(v.value.as_ref())).collect())
            }
            Some(any_value::Value::KvlistValue(kv)) => Value::Object(
                kv.values
                    .iter()
                    .map(|kv| {
                        (
                            kv.key.clone(),
                            to_json(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                        )
                    })
                    .collect(),
            ),
            Some(_) | None => Value::Null,
        }
    }
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        None => String::new(),
        other => to_json(other).to_string(),
    }
}

/// Renders values for one trace view.
struct Renderer<'a> {
    rules: &'a [Arc<dyn Redact>],
    max: usize,
}

impl Renderer<'_> {
    fn value(&self, value: Option<&AnyValue>) -> Value {
        let (text, cut_from) = cut(&text_of(value), self.max);
        match cut_from {
            None => Value::String(text),
            Some(bytes) => json!({ "text": text, "cut_from_bytes": bytes }),
        }
    }

    fn attributes(&self, attributes: &[KeyValue]) -> Vec<Value> {
        let mut attributes = attributes.to_vec();
        redaction::apply(self.rules, &mut attributes);
        attributes
            .iter()
            .map(|kv| {
                let (key, _) = cut(&kv.key, self.max);
                json!({ "key": key, "value": self.value(kv.value.as_ref()) })
            })
            .collect()
    }

    fn body(&self, body: Option<&AnyValue>) -> Value {
        let mut body = body.cloned().unwrap_or_default();
        redaction::apply_body(self.rules, &mut body);
        self.value(Some(&body))
    }

    fn text(&self, text: &str) -> String {
        cut(text, self.max).0
    }
}

/// `error`, `warn`, … for colouring: from the number, else the text.
fn severity_class(record: &LogRecord) -> &'static str {
    let n = if record.severity_number != 0 {
        record.severity_number
    } else {
        crate::processors::tail_sampling::policy::severity_from_str(&record.severity_text)
            .unwrap_or(0)
    };
    match n {
        21.. => "fatal",
        17.. => "error",
        13.. => "warn",
        9.. => "info",
        5.. => "debug",
        1.. => "trace",
        _ => "unspecified",
    }
}

fn service_of(origin: &Origin) -> Option<String> {
    origin
        .resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .map(|kv| text_of(kv.value.as_ref()))
}

const SPAN_KINDS: [&str; 6] = [
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
];
const STATUS_CODES: [&str; 3] = ["unset", "ok", "error"];

/// The trace view's `detail`: see the module documentation.
pub(crate) fn render(detail: &Detail, rules: &[Arc<dyn Redact>], max_value_bytes: usize) -> Value {
    let r = Renderer {
        rules,
        max: max_value_bytes,
    };
    let mut problems = Vec::new();
    // Resources, each once, by the origin they arrived under.
    let mut resources: Vec<Value> = Vec::new();
    let mut resource_index: HashMap<*const Origin, usize> = HashMap::new();
    let mut index_of = |origin: &Arc<Origin>| -> usize {
        *resource_index
            .entry(Arc::as_ptr(origin))
            .or_insert_with(|| {
                resources.push(json!({
                    "service": service_of(origin).map(|s| r.text(&s)),
                    "attributes": r.attributes(&origin.resource.attributes),
                    "scope": r.text(&origin.scope.name),
                }));
                resources.len() - 1
            })
    };

    let mut spans: Vec<(Span, usize, Option<String>)> = Vec::new();
    for (i, held) in detail.spans.iter().enumerate() {
        match decode_span(&held.encoded, Reads::ALL_SPAN) {
            Ok(span) => spans.push((span, index_of(&held.origin), service_of(&held.origin))),
            Err(e) => problems.push(format!("span {i} does not decode: {e}")),
        }
    }
    let first_late = detail.logs.len().saturating_sub(detail.late_logs);
    let mut logs: Vec<(LogRecord, usize, bool)> = Vec::new();
    for (i, held) in detail.logs.iter().enumerate() {
        match decode_log(&held.encoded, Reads::ALL_LOG) {
            Ok(record) => logs.push((record, index_of(&held.origin), i >= first_late)),
            Err(e) => problems.push(format!("log record {i} does not decode: {e}")),
        }
    }

    let start = spans
        .iter()
        .map(|(s, ..)| s.start_time_unix_nano)
        .chain(
            logs.iter()
                .map(|(l, ..)| l.time_unix_nano)
                .filter(|t| *t != 0),
        )
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|(s, ..)| s.end_time_unix_nano)
        .max()
        .unwrap_or(start)
        .max(start);
    let ms = |t: u64| -> f64 { (t.saturating_sub(start)) as f64 / 1e6 };

    // Tree order: roots (no parent, or a parent not in the trace) by start, each followed
    // by its children by start.
    let by_id: HashMap<&[u8], usize> = spans
        .iter()
        .enumerate()
        .map(|(i, (s, ..))| (&s.span_id[..], i))
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, (s, ..)) in spans.iter().enumerate() {
        match by_id.get(&s.parent_span_id[..]) {
            Some(&p) if p != i && !s.parent_span_id.is_empty() => {
                children.entry(p).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].0.start_time_unix_nano, i));
    by_start(&mut roots);
    for list in children.values_mut() {
        by_start(list);
    }
    let mut order: Vec<(usize, usize)> = Vec::new();
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    let mut seen = vec![false; spans.len()];
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue; // a cycle of parent ids: each span once
        }
        order.push((i, depth));
        if let Some(kids) = children.get(&i) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    // Spans left out by a parent cycle come last, at the top level.
    for (i, was_seen) in seen.iter().enumerate() {
        if !was_seen {
            order.push((i, 0));
        }
    }

    let log_json = |(record, resource, late): &(LogRecord, usize, bool)| {
        let time = if record.time_unix_nano != 0 {
            record.time_unix_nano
        } else {
            record.observed_time_unix_nano
        };
        json!({
            "time_unix_nano": time.to_string(),
            "offset_ms": if time == 0 { Value::Null } else { json!(ms(time)) },
            "severity": if record.severity_text.is_empty() {
                severity_name(record.severity_number)
            } else {
                r.text(&record.severity_text)
            },
            "severity_number": record.severity_number,
            "class": severity_class(record),
            "body": r.body(record.body.as_ref()),
            "attributes": r.attributes(&record.attributes),
            "span_id": hex::encode(&record.span_id),
            "resource": resource,
            "late": late,
        })
    };
    // Each span's logs in time order (arrival order among equal times; untimed last).
    logs.sort_by_key(|(l, ..)| {
        let t = if l.time_unix_nano != 0 {
            l.time_unix_nano
        } else {
            l.observed_time_unix_nano
        };
        (t == 0, t)
    });
    let mut logs_by_span: HashMap<&[u8], Vec<Value>> = HashMap::new();
    let mut unattached = Vec::new();
    for log in &logs {
        if by_id.contains_key(&log.0.span_id[..]) {
            logs_by_span
                .entry(&log.0.span_id[..])
                .or_default()
                .push(log_json(log));
        } else {
            unattached.push(log_json(log));
        }
    }
    let span_json: Vec<Value> = order
        .iter()
        .map(|&(i, depth)| {
            let (s, resource, service) = &spans[i];
            let status = s.status.as_ref();
            json!({
                "span_id": hex::encode(&s.span_id),
                "parent_span_id": hex::encode(&s.parent_span_id),
                "depth": depth,
                "name": r.text(&s.name),
                "service": service.as_deref().map(|x| r.text(x)),
                "resource": resource,
                "kind": SPAN_KINDS.get(s.kind as usize).copied().unwrap_or("unspecified"),
                "offset_ms": ms(s.start_time_unix_nano),
                "duration_ms": s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) as f64 / 1e6,
                "status": {
                    "code": STATUS_CODES.get(status.map_or(0, |st| st.code) as usize).copied().unwrap_or("unset"),
                    "message": r.text(status.map_or("", |st| st.message.as_str())),
                },
                "attributes": r.attributes(&s.attributes),
                "events": s.events.iter().map(|e| json!({
                    "name": r.text(&e.name),
                    "offset_ms": ms(e.time_unix_nano),
                    "attributes": r.attributes(&e.attributes),
                })).collect::<Vec<_>>(),
                "logs": logs_by_span.remove(&s.span_id[..]).unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "start_unix_nano": start.to_string(),
        "duration_ms": (end - start) as f64 / 1e6,
        "resources": resources,
        "spans": span_json,
        "unattached_logs": unattached,
        "late_logs": detail.late_logs,
        "problems": problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_a_character_boundary_and_says_from_what() {
        assert_eq!(cut("short", 10), ("short".to_string(), None));
        let (text, from) = cut("ééé", 3);
        assert_eq!((text.as_str(), from), ("é…", Some(6)));
    }

    #[test]
    fn values_read_as_text() {
        let v = |value| text_of(Some(&AnyValue { value: Some(value) }));
        assert_eq!(v(any_value::Value::StringValue("<b>".into())), "<b>");
        assert_eq!(v(any_value::Value::IntValue(3)), "3");
        assert_eq!(v(any_value::Value::BytesValue(vec![1, 255])), "\"01ff\"");
        assert_eq!(text_of(None), "");
    }
}
