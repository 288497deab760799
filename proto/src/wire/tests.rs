//! The scanners against the slow path they stand in for: prost decoding plus validation.

use prost::Message;

use super::*;
use crate::collector::logs::v1::ExportLogsServiceRequest;
use crate::collector::trace::v1::ExportTraceServiceRequest;
use crate::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use crate::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::resource::v1::Resource;
use crate::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use crate::validate::{validate_logs_with, validate_traces_with};

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn span(n: u8) -> Span {
    Span {
        trace_id: vec![n; 16],
        span_id: vec![n; 8],
        parent_span_id: if n.is_multiple_of(2) {
            vec![]
        } else {
            vec![9; 8]
        },
        name: format!("span {n}"),
        kind: 2,
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: vec![
            kv("http.route", s("/checkout")),
            kv("retries", any_value::Value::IntValue(3)),
            kv(
                "list",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(any_value::Value::BoolValue(true)),
                    }],
                }),
            ),
        ],
        events: vec![span::Event {
            time_unix_nano: 3,
            name: "exception".into(),
            attributes: vec![kv("exception.type", s("E"))],
            ..Default::default()
        }],
        links: vec![span::Link {
            trace_id: vec![7; 16],
            span_id: vec![7; 8],
            ..Default::default()
        }],
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
        flags: 0x100,
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("shop"))],
                ..Default::default()
            }),
            scope_spans: vec![
                ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        ..Default::default()
                    }),
                    spans: spans.clone(),
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                },
                ScopeSpans {
                    spans,
                    ..Default::default()
                },
            ],
            schema_url: String::new(),
        }],
    }
}

fn logs(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("shop"))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn record(n: u8) -> LogRecord {
    LogRecord {
        time_unix_nano: 1,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: Some(AnyValue {
            value: Some(s("payment failed")),
        }),
        attributes: vec![kv("user", s("u1"))],
        trace_id: if n == 0 { vec![] } else { vec![n; 16] },
        span_id: if n == 0 { vec![] } else { vec![n; 8] },
        ..Default::default()
    }
}

/// The property the scanners promise: an answer means the slow path accepts, with the same
/// count.
fn agrees_traces(body: &[u8], limits: &Limits) -> Option<usize> {
    let fast = scan_traces(body, limits);
    if let Some(n) = fast {
        let decoded = ExportTraceServiceRequest::decode(body).expect("scan accepted: decodes");
        validate_traces_with(&decoded, limits).expect("scan accepted: validates");
        let items: usize = decoded
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        assert_eq!(n, items);
        assert_eq!(count_items(body), items);
    }
    fast
}

fn agrees_logs(body: &[u8], limits: &Limits) -> Option<usize> {
    let fast = scan_logs(body, limits);
    if let Some(n) = fast {
        let decoded = ExportLogsServiceRequest::decode(body).expect("scan accepted: decodes");
        validate_logs_with(&decoded, limits).expect("scan accepted: validates");
        let items: usize = decoded
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        assert_eq!(n, items);
    }
    fast
}

#[test]
fn counts_valid_requests() {
    let limits = Limits::default();
    let body = traces((0..5).map(span).map(with_ids).collect()).encode_to_vec();
    assert_eq!(agrees_traces(&body, &limits), Some(10));
    let body = logs((0..4).map(record).collect()).encode_to_vec();
    assert_eq!(agrees_logs(&body, &limits), Some(4));
    assert_eq!(agrees_traces(&[], &limits), Some(0));
}

/// `span(0)` has all-zero ids; give every span a non-zero one.
fn with_ids(mut s: Span) -> Span {
    s.trace_id[0] = 1;
    s.span_id[0] = 1;
    s
}

#[test]
fn leaves_invalid_requests_to_the_slow_path() {
    let limits = Limits::default();
    let mut cases: Vec<(&str, Span)> = Vec::new();
    let mut no_trace = with_ids(span(1));
    no_trace.trace_id.clear();
    cases.push(("missing trace_id", no_trace));
    let mut zero = span(0);
    zero.span_id = vec![1; 8];
    cases.push(("zero trace_id", zero));
    let mut short_parent = with_ids(span(1));
    short_parent.parent_span_id = vec![1; 3];
    cases.push(("short parent", short_parent));
    let mut link = with_ids(span(1));
    link.links[0].span_id.clear();
    cases.push(("link without span_id", link));
    let mut many = with_ids(span(1));
    many.attributes = (0..129).map(|i| kv(&format!("k{i}"), s("v"))).collect();
    cases.push(("129 attributes", many));
    let mut long = with_ids(span(1));
    long.events[0].attributes[0] = kv("big", s(&"x".repeat(256 * 1024 + 1)));
    cases.push(("long value", long));
    let mut deep = with_ids(span(1));
    let mut value = AnyValue {
        value: Some(s("leaf")),
    };
    for _ in 0..21 {
        value = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![value],
            })),
        };
    }
    deep.attributes.push(KeyValue {
        key: "deep".into(),
        value: Some(value),
        ..Default::default()
    });
    cases.push(("21 levels", deep));
    for (what, span) in cases {
        let body = traces(vec![span]).encode_to_vec();
        assert_eq!(agrees_traces(&body, &limits), None, "{what}");
        let decoded = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        assert!(validate_traces_with(&decoded, &limits).is_err(), "{what}");
    }
    let mut bad = record(1);
    bad.span_id = vec![1; 7];
    let body = logs(vec![bad]).encode_to_vec();
    assert_eq!(agrees_logs(&body, &limits), None);
}

#[test]
fn a_log_body_is_limited_in_depth_only() {
    let limits = Limits::default();
    let mut r = record(1);
    r.body = Some(AnyValue {
        value: Some(s(&"x".repeat(300 * 1024))),
    });
    let body = logs(vec![r]).encode_to_vec();
    assert_eq!(agrees_logs(&body, &limits), Some(1));
}

#[test]
fn odd_wire_shapes_take_the_slow_path() {
    let limits = Limits::default();
    let good = traces(vec![with_ids(span(1))]).encode_to_vec();
    // Truncated.
    assert_eq!(agrees_traces(&good[..good.len() - 1], &limits), None);
    // A group (wire type 3) as an unknown field.
    let mut grouped = good.clone();
    grouped.extend_from_slice(&[(7 << 3) | 3, (7 << 3) | 4]);
    assert_eq!(agrees_traces(&grouped, &limits), None);
    // A singular message twice: protobuf merges them, the slow path sees the merge.
    let rs = ResourceSpans {
        resource: Some(Resource::default()),
        ..Default::default()
    }
    .encode_to_vec();
    let mut twice = Vec::new();
    let mut inner = rs.clone();
    inner.extend_from_slice(&Resource::default().encode_to_vec());
    put_len_field(&mut inner, 1, &[]);
    put_len_field(&mut twice, 1, &inner);
    assert_eq!(agrees_traces(&twice, &limits), None);
    // Unknown fields of every wire type are skipped, as prost does.
    let mut unknown = good.clone();
    unknown.extend_from_slice(&[2 << 3, 1, (3 << 3) | 5, 0, 0, 0, 0]);
    put_len_field(&mut unknown, 4, b"\xff\xfe");
    put_varint(&mut unknown, 1000 << 3);
    put_varint(&mut unknown, 5);
    assert_eq!(agrees_traces(&unknown, &limits), Some(2));
    // Invalid UTF-8 in a string.
    let mut bad_name = with_ids(span(1));
    bad_name.name = "ok".into();
    let mut body = traces(vec![bad_name]).encode_to_vec();
    let at = body.windows(2).position(|w| w == b"ok").unwrap();
    body[at] = 0xff;
    assert_eq!(agrees_traces(&body, &limits), None);
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());
}

/// The `loadbalancing` exporter routes an encoded record by its first trace id: a record with
/// a second one must never be scanned, so that prost (which keeps the last) re-encodes it.
#[test]
fn a_record_with_two_trace_ids_takes_the_slow_path() {
    let limits = Limits::default();
    // One request → one group → one scope → `record`.
    let wrap = |record: &[u8]| {
        let mut scoped = Vec::new();
        put_len_field(&mut scoped, 2, record);
        let mut group = Vec::new();
        put_len_field(&mut group, 2, &scoped);
        let mut body = Vec::new();
        put_len_field(&mut body, 1, &group);
        body
    };
    let span = with_ids(span(1)).encode_to_vec();
    assert_eq!(agrees_traces(&wrap(&span), &limits), Some(1));
    let mut second = span;
    put_len_field(&mut second, 1, &[9; 16]);
    assert_eq!(agrees_traces(&wrap(&second), &limits), None);
    let record = record(1).encode_to_vec();
    assert_eq!(agrees_logs(&wrap(&record), &limits), Some(1));
    let mut second = record;
    put_len_field(&mut second, 9, &[9; 16]);
    assert_eq!(agrees_logs(&wrap(&second), &limits), None);
}

#[test]
fn mutated_requests_never_break_the_promise() {
    // A deterministic xorshift: the same mutations on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let limits = Limits {
        max_attributes: 3,
        max_value_bytes: 16,
        max_depth: 2,
    };
    let t = traces((1..4).map(span).collect()).encode_to_vec();
    let l = logs((0..3).map(record).collect()).encode_to_vec();
    let mut accepted = 0;
    for i in 0..20_000 {
        let mut body = if i % 2 == 0 { t.clone() } else { l.clone() };
        for _ in 0..(1 + next() % 3) {
            let at = (next() as usize) % body.len();
            match next() % 3 {
                0 => body[at] = next() as u8,
                1 => {
                    body.remove(at);
                }
                _ => body.insert(at, next() as u8),
            }
        }
        let fast = if i % 2 == 0 {
            agrees_traces(&body, &limits)
        } else {
            agrees_logs(&body, &limits)
        };
        accepted += usize::from(fast.is_some());
    }
    // Some mutations (inside strings and numbers) stay valid: the check above ran on them.
    assert!(
        accepted > 100,
        "only {accepted} mutated bodies were accepted"
    );
}

#[test]
fn envelope_writers_produce_what_prost_reads() {
    let span = with_ids(span(1)).encode_to_vec();
    let mut scope = Vec::new();
    put_len_field(&mut scope, 2, &span);
    put_len_field(&mut scope, 2, &span);
    let mut rs = Vec::new();
    put_len_header(&mut rs, 2, scope.len());
    assert_eq!(rs.len(), len_header_len(2, scope.len()));
    rs.extend_from_slice(&scope);
    let mut body = Vec::new();
    put_len_field(&mut body, 1, &rs);
    let decoded = ExportTraceServiceRequest::decode(&body[..]).unwrap();
    assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 2);
    assert_eq!(count_items(&body), 2);
    for v in [0u64, 1, 127, 128, 300, 1 << 40, u64::MAX] {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        assert_eq!(out.len(), varint_len(v));
        assert_eq!(varint(&mut &out[..]), Ok(v));
    }
}

#[test]
fn non_ascii_strings_are_checked_as_utf8() {
    let limits = Limits::default();
    let mut named = with_ids(span(1));
    named.name = "café ☕ 支付".into();
    let body = traces(vec![named]).encode_to_vec();
    assert_eq!(agrees_traces(&body, &limits), Some(2));
    // Cut the last character in half: no longer UTF-8.
    let at = body.windows(3).position(|w| w == "付".as_bytes()).unwrap();
    let mut broken = body.clone();
    broken[at + 2] = b'x';
    assert_eq!(agrees_traces(&broken, &limits), None);
    assert!(ExportTraceServiceRequest::decode(&broken[..]).is_err());
}

#[test]
fn the_plain_attribute_check_accepts_only_what_the_field_walk_accepts() {
    let limits = Limits {
        max_attributes: 8,
        max_value_bytes: 12,
        max_depth: 2,
    };
    let scanner = Scanner { limits: &limits };
    let long = "x".repeat(200);
    let shapes = [
        kv("http.route", s("/checkout")),
        kv("k", any_value::Value::IntValue(-1)),
        kv("ok", any_value::Value::BoolValue(true)),
        kv("ratio", any_value::Value::DoubleValue(0.5)),
        kv("url.full", s("https://shop.example/a")),
        kv("long", s(&long)),
        kv("ünï", s("☕")),
        KeyValue {
            key: "empty".into(),
            value: Some(AnyValue { value: None }),
            ..Default::default()
        },
        kv(
            "list",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(s("a")),
                }],
            }),
        ),
    ];
    // The shapes SDKs send take the plain check; the rest (a value over the limit, a list)
    // are left to the walk.
    let plain: Vec<bool> = shapes
        .iter()
        .map(|kv| scanner.plain_key_value(&kv.encode_to_vec(), true, 4))
        .collect();
    assert_eq!(
        plain,
        [true, true, true, true, false, false, true, true, false]
    );
    // Every one-byte change of each: whatever the plain check accepts, the walk accepts.
    let mut checked = 0;
    for kv in &shapes {
        let bytes = kv.encode_to_vec();
        for at in 0..bytes.len() {
            for byte in [
                0x00, 0x01, 0x0a, 0x10, 0x12, 0x18, 0x21, 0x7f, 0x80, 0xc3, 0xff,
            ] {
                let mut changed = bytes.clone();
                changed[at] = byte;
                for lengths in [true, false] {
                    if scanner.plain_key_value(&changed, lengths, 4) {
                        checked += 1;
                        assert_eq!(
                            scanner.any_key_value(&changed, 0, lengths, 4),
                            Ok(()),
                            "{changed:02x?}"
                        );
                    }
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} changed attributes were plain"
    );
    // Near the nesting limit the plain check steps aside.
    let bytes = shapes[0].encode_to_vec();
    assert!(!scanner.plain_key_value(&bytes, true, MAX_NESTING));
}

#[test]
fn skip_run_passes_over_one_repeated_field_and_leaves_errors_to_the_iterator() {
    let mut msg = Vec::new();
    put_len_field(&mut msg, 1, b"id");
    for value in [&b"a"[..], b"bb", b""] {
        put_len_field(&mut msg, 9, value);
    }
    put_len_field(&mut msg, 2, b"x");
    put_len_field(&mut msg, 9, b"c");
    let seen = |bytes: &[u8]| {
        let mut fields = Fields::new(bytes);
        let mut seen = Vec::new();
        while let Some(field) = fields.next() {
            match field {
                Ok((number, _)) => {
                    seen.push(Some(number));
                    if number == 9 {
                        fields.skip_run(9);
                    }
                }
                Err(()) => seen.push(None),
            }
        }
        seen
    };
    assert_eq!(seen(&msg), [Some(1), Some(9), Some(2), Some(9)]);
    // A field of the run cut short: the skip stops before it, and the iterator says so.
    let mut cut = msg[..msg.len() - 6].to_vec();
    put_len_header(&mut cut, 9, 5);
    cut.push(b'z');
    assert_eq!(seen(&cut), [Some(1), Some(9), None]);
}
