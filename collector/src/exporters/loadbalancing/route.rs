//! Splitting a batch between backends, record by record, on the protobuf wire.
//!
//! A batch from a sidecar mixes many traces. Each span and each log record goes to the
//! backend that owns its routing key; a batch is therefore cut into one request per backend,
//! without decoding it: the resource and scope envelopes around the records are copied as
//! they are (field by field), and the records' own bytes are copied unchanged. A batch whose
//! records all go to one backend is passed on as it is, without a copy.
//!
//! Spans and log records sit at the same place in both requests (field 1 resource group →
//! field 2 scope group → field 2 record); only the field holding the trace id differs
//! ([`Layout`]). A signal routed by something else (metrics by resource or metric name, when
//! that signal arrives) adds its own [`Layout`] and key extraction here.

use weft_config::SignalKind;
use weft_proto::wire::{self, Fields, Value};

/// What records are routed by: the Collector's `routing_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingKey {
    /// The record's trace id (16 bytes). Spans and logs of one trace meet at one backend.
    TraceId,
    /// The resource's `service.name`: every record of a service goes to one backend.
    Service,
}

/// Where a signal's records keep their trace id, on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Field number of the trace id in a record: 1 in a `Span`, 9 in a `LogRecord`.
    trace_id: u32,
}

/// The layout of `kind`'s records; `None` for a signal the exporter cannot route yet.
pub fn layout(kind: SignalKind) -> Option<Layout> {
    match kind {
        SignalKind::Traces => Some(Layout { trace_id: 1 }),
        SignalKind::Logs => Some(Layout { trace_id: 9 }),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// What one record is routed by, handed to the chooser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKey<'a> {
    /// A trace id, or a service name (the resource's `service.name`, empty when absent).
    Key(&'a [u8]),
    /// A log record without a trace id (routing by trace id): spread round-robin.
    None,
}

/// The body cut into one request per destination: (destination, encoded request, records).
pub type Parts = Vec<(usize, Vec<u8>, usize)>;

/// How [`split`] answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Split {
    /// Every record goes to this destination: send the batch as it is.
    Whole(usize),
    /// The batch's records go to several destinations.
    Parts(Parts),
    /// No records.
    Empty,
}

/// The body is valid protobuf outside the shape the wire walker reads (a group, an over-long
/// varint): re-encode it with prost and split that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the batch is not in the shape the wire walker reads")]
pub struct Unreadable;

/// Cuts the encoded export request `body` by destination: `choose` names the destination
/// of each record from its [`RecordKey`]. [`Unreadable`] when the body is not in the shape
/// the wire walker reads (the caller then re-encodes it with prost and tries again).
pub fn split(
    body: &[u8],
    layout: Layout,
    key: RoutingKey,
    choose: impl FnMut(RecordKey<'_>) -> usize,
) -> Result<Split, Unreadable> {
    split_walk(body, layout, key, choose).map_err(|()| Unreadable)
}

fn split_walk(
    body: &[u8],
    layout: Layout,
    key: RoutingKey,
    mut choose: impl FnMut(RecordKey<'_>) -> usize,
) -> Result<Split, ()> {
    // Pass 1: every record's destination, in order.
    let mut destinations = Vec::new();
    for group in len_fields(body, 1) {
        let group = group?;
        let service = match key {
            RoutingKey::Service => service_name(group)?,
            RoutingKey::TraceId => &[][..],
        };
        for scoped in len_fields(group, 2) {
            for record in len_fields(scoped?, 2) {
                let record = record?;
                let record_key = match key {
                    RoutingKey::Service => RecordKey::Key(service),
                    RoutingKey::TraceId => match trace_id(record, layout.trace_id)? {
                        Some(id) => RecordKey::Key(id),
                        None => RecordKey::None,
                    },
                };
                destinations.push(choose(record_key));
            }
        }
    }
    let Some(&first) = destinations.first() else {
        return Ok(Split::Empty);
    };
    if destinations.iter().all(|&d| d == first) {
        return Ok(Split::Whole(first));
    }
    // Pass 2: the requests, each record under a copy of its resource and scope envelope.
    let count = destinations.iter().max().map_or(0, |m| m + 1);
    let mut out: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); count];
    let mut resources: Vec<Vec<u8>> = vec![Vec::new(); count];
    let mut scopes: Vec<Vec<u8>> = vec![Vec::new(); count];
    let mut next = destinations.into_iter();
    for field in Fields::new(body) {
        let (number, value) = field?;
        let Value::Len(group) = value else { continue };
        if number != 1 {
            continue;
        }
        let group_head = head(group)?;
        for field in Fields::new(group) {
            let (number, value) = field?;
            let (2, Value::Len(scoped)) = (number, value) else {
                continue;
            };
            let scope_head = head(scoped)?;
            for record in len_fields(scoped, 2) {
                let record = record?;
                let d = next.next().ok_or(())?;
                wire::put_len_field(&mut scopes[d], 2, record);
                out[d].1 += 1;
            }
            for (d, records) in scopes.iter_mut().enumerate() {
                if records.is_empty() {
                    continue;
                }
                wire::put_len_header(&mut resources[d], 2, scope_head.len() + records.len());
                resources[d].extend_from_slice(&scope_head);
                resources[d].extend_from_slice(records);
                records.clear();
            }
        }
        for (d, scoped) in resources.iter_mut().enumerate() {
            if scoped.is_empty() {
                continue;
            }
            wire::put_len_header(&mut out[d].0, 1, group_head.len() + scoped.len());
            out[d].0.extend_from_slice(&group_head);
            out[d].0.extend_from_slice(scoped);
            scoped.clear();
        }
    }
    Ok(Split::Parts(
        out.into_iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(d, (bytes, n))| (d, bytes, n))
            .collect(),
    ))
}

/// The length-delimited fields `number` of `msg`; `Err` on a malformed field.
fn len_fields(msg: &[u8], number: u32) -> impl Iterator<Item = Result<&[u8], ()>> {
    Fields::new(msg).filter_map(move |field| match field {
        Ok((n, Value::Len(bytes))) if n == number => Some(Ok(bytes)),
        Ok(_) => None,
        Err(()) => Some(Err(())),
    })
}

/// Every field of an envelope (resource group, scope group) except its records (field 2),
/// re-encoded as they were: the resource or scope, the schema URL, unknown fields.
fn head(msg: &[u8]) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    for field in Fields::new(msg) {
        let (number, value) = field?;
        if number == 2 {
            continue;
        }
        put_field(&mut out, number, value);
    }
    Ok(out)
}

/// Appends one field as it was on the wire.
fn put_field(out: &mut Vec<u8>, number: u32, value: Value<'_>) {
    let key = |wire_type: u64| (u64::from(number) << 3) | wire_type;
    match value {
        Value::Varint(v) => {
            wire::put_varint(out, key(0));
            wire::put_varint(out, v);
        }
        Value::I64(v) => {
            wire::put_varint(out, key(1));
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Len(bytes) => wire::put_len_field(out, number, bytes),
        Value::I32(v) => {
            wire::put_varint(out, key(5));
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A record's trace id (field `number`), `None` when absent or empty. The receiver checked
/// that a present one is 16 bytes.
fn trace_id(record: &[u8], number: u32) -> Result<Option<&[u8]>, ()> {
    let mut id = None;
    for field in Fields::new(record) {
        if let (n, Value::Len(bytes)) = field? {
            if n == number {
                id = Some(bytes).filter(|b| !b.is_empty());
            }
        }
    }
    Ok(id)
}

/// The `service.name` string of a resource group's resource (field 1 → attributes 1 →
/// KeyValue{1 key, 2 AnyValue{1 string}}); empty when there is none.
fn service_name(group: &[u8]) -> Result<&[u8], ()> {
    let mut name: &[u8] = &[];
    for resource in len_fields(group, 1) {
        for kv in len_fields(resource?, 1) {
            let kv = kv?;
            let mut key: &[u8] = &[];
            let mut value = None;
            for field in Fields::new(kv) {
                match field? {
                    (1, Value::Len(k)) => key = k,
                    (2, Value::Len(v)) => value = Some(v),
                    _ => {}
                }
            }
            if key != b"service.name" {
                continue;
            }
            if let Some(v) = value {
                for s in len_fields(v, 1) {
                    name = s?;
                }
            }
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
    use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
    use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
    use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weft_proto::resource::v1::Resource;
    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn service(name: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(name.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("span {id}"),
            ..Default::default()
        }
    }

    /// Two services, two scopes in the first, spans of traces 1, 2 and 3 mixed.
    fn mixed() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: service("frontend"),
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "http".into(),
                                ..Default::default()
                            }),
                            spans: vec![span(1, 1), span(2, 2), span(1, 3)],
                            schema_url: "s".into(),
                        },
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "db".into(),
                                ..Default::default()
                            }),
                            spans: vec![span(3, 4)],
                            ..Default::default()
                        },
                    ],
                },
                ResourceSpans {
                    resource: service("payments"),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span(2, 5), span(3, 6)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    /// Destination = the trace id's first byte, minus one.
    fn by_trace(key: RecordKey<'_>) -> usize {
        match key {
            RecordKey::Key(k) => usize::from(k[0]) - 1,
            RecordKey::None => panic!("every span has a trace id"),
        }
    }

    #[test]
    fn spans_are_routed_one_by_one_under_copies_of_their_envelopes() {
        let body = mixed().encode_to_vec();
        let layout = layout(SignalKind::Traces).unwrap();
        let Ok(Split::Parts(parts)) = split(&body, layout, RoutingKey::TraceId, by_trace) else {
            panic!("three traces make three parts");
        };
        assert_eq!(parts.len(), 3);
        let mut seen = 0;
        for (d, bytes, n) in parts {
            let req = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
            let mut count = 0;
            for rs in &req.resource_spans {
                let original = mixed()
                    .resource_spans
                    .into_iter()
                    .find(|o| o.resource == rs.resource)
                    .expect("the resource is copied whole");
                assert_eq!(rs.schema_url, original.schema_url);
                for ss in &rs.scope_spans {
                    let scope = original
                        .scope_spans
                        .iter()
                        .find(|o| o.scope == ss.scope)
                        .expect("the scope is copied whole");
                    assert_eq!(ss.schema_url, scope.schema_url);
                    for s in &ss.spans {
                        assert_eq!(usize::from(s.trace_id[0]) - 1, d);
                        assert!(scope.spans.contains(s), "spans are copied unchanged");
                        count += 1;
                    }
                }
            }
            assert_eq!(count, n);
            seen += n;
        }
        assert_eq!(seen, 6, "every span goes somewhere, once");
    }

    #[test]
    fn a_batch_of_one_destination_is_not_copied() {
        let body = mixed().encode_to_vec();
        let layout = layout(SignalKind::Traces).unwrap();
        assert_eq!(
            split(&body, layout, RoutingKey::TraceId, |_| 4),
            Ok(Split::Whole(4))
        );
        assert_eq!(
            split(&[], layout, RoutingKey::TraceId, |_| 4),
            Ok(Split::Empty)
        );
    }

    #[test]
    fn routing_by_service_reads_the_resource() {
        let body = mixed().encode_to_vec();
        let layout = layout(SignalKind::Traces).unwrap();
        let mut keys = Vec::new();
        let Ok(Split::Parts(parts)) = split(&body, layout, RoutingKey::Service, |key| {
            let RecordKey::Key(k) = key else { panic!() };
            keys.push(String::from_utf8(k.to_vec()).unwrap());
            usize::from(k == b"payments")
        }) else {
            panic!("two services make two parts");
        };
        assert_eq!(
            keys,
            ["frontend", "frontend", "frontend", "frontend", "payments", "payments"]
        );
        assert_eq!(parts.iter().map(|p| p.2).collect::<Vec<_>>(), [4, 2]);
    }

    #[test]
    fn logs_are_routed_by_their_trace_id_and_logs_without_one_say_so() {
        let record = |trace: Option<u8>, body: &str| LogRecord {
            trace_id: trace.map(|t| vec![t; 16]).unwrap_or_default(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body.into())),
            }),
            ..Default::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: service("frontend"),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(Some(1), "a"),
                        record(None, "orphan"),
                        record(Some(2), "b"),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = req.encode_to_vec();
        let layout = layout(SignalKind::Logs).unwrap();
        let mut orphans = 0;
        let Ok(Split::Parts(parts)) = split(&body, layout, RoutingKey::TraceId, |key| match key {
            RecordKey::Key(k) => usize::from(k[0]) - 1,
            RecordKey::None => {
                orphans += 1;
                2
            }
        }) else {
            panic!()
        };
        assert_eq!(orphans, 1);
        let bodies: Vec<(usize, Vec<String>)> = parts
            .iter()
            .map(|(d, bytes, _)| {
                let req = ExportLogsServiceRequest::decode(&bytes[..]).unwrap();
                let bodies = req.resource_logs[0].scope_logs[0]
                    .log_records
                    .iter()
                    .map(|r| match &r.body.as_ref().unwrap().value {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        _ => String::new(),
                    })
                    .collect();
                (*d, bodies)
            })
            .collect();
        assert_eq!(
            bodies,
            [
                (0, vec!["a".to_string()]),
                (1, vec!["b".to_string()]),
                (2, vec!["orphan".to_string()])
            ]
        );
    }

    #[test]
    fn a_body_the_walker_cannot_read_is_an_error_not_a_loss() {
        let layout = layout(SignalKind::Traces).unwrap();
        // A group (wire type 3) is outside what the walker reads.
        assert_eq!(
            split(&[0x0b], layout, RoutingKey::TraceId, |_| 0),
            Err(Unreadable)
        );
    }
}
