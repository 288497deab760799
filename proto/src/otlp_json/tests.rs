use serde_json::{json, Value};

use super::decode::{any_value, Path};
use super::*;
use crate::collector::logs::v1::ExportLogsPartialSuccess;
use crate::collector::trace::v1::ExportTracePartialSuccess;
use crate::common::v1::{
    any_value::Value as V, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue,
    KeyValueList,
};
use crate::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use crate::resource::v1::Resource;
use crate::status::{code, Any};
use crate::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status as SpanStatus};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// opentelemetry-proto `examples/trace.json`.
const SPEC_TRACE: &str = r#"{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [
          {
            "key": "service.name",
            "value": {
              "stringValue": "my.service"
            }
          }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              {
                "key": "my.scope.attribute",
                "value": {
                  "stringValue": "some scope attribute"
                }
              }
            ]
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "parentSpanId": "EEE19B7EC3C1B173",
              "name": "I'm a server span",
              "startTimeUnixNano": 1544712660000000000,
              "endTimeUnixNano": 1544712661000000000,
              "kind": 2,
              "attributes": [
                {
                  "key": "my.span.attr",
                  "value": {
                    "stringValue": "some value"
                  }
                }
              ]
            }
          ]
        }
      ]
    }
  ]
}"#;

/// opentelemetry-proto `examples/logs.json`.
const SPEC_LOGS: &str = r#"{
  "resourceLogs": [
    {
      "resource": {
        "attributes": [
          {
            "key": "service.name",
            "value": {
              "stringValue": "my.service"
            }
          }
        ]
      },
      "scopeLogs": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              {
                "key": "my.scope.attribute",
                "value": {
                  "stringValue": "some scope attribute"
                }
              }
            ]
          },
          "logRecords": [
            {
              "timeUnixNano": "1544712660300000000",
              "observedTimeUnixNano": "1544712660300000000",
              "severityNumber": 10,
              "severityText": "Information",
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "body": {
                "stringValue": "Example log record"
              },
              "attributes": [
                {
                  "key": "string.attribute",
                  "value": {
                    "stringValue": "some string"
                  }
                },
                {
                  "key": "boolean.attribute",
                  "value": {
                    "boolValue": true
                  }
                },
                {
                  "key": "int.attribute",
                  "value": {
                    "intValue": "10"
                  }
                },
                {
                  "key": "double.attribute",
                  "value": {
                    "doubleValue": 637.704
                  }
                },
                {
                  "key": "array.attribute",
                  "value": {
                    "arrayValue": {
                      "values": [
                        {
                          "stringValue": "many"
                        },
                        {
                          "stringValue": "values"
                        }
                      ]
                    }
                  }
                },
                {
                  "key": "map.attribute",
                  "value": {
                    "kvlistValue": {
                      "values": [
                        {
                          "key": "some.map.key",
                          "value": {
                            "stringValue": "some value"
                          }
                        }
                      ]
                    }
                  }
                }
              ]
            }
          ]
        }
      ]
    }
  ]
}"#;

fn any(v: V) -> AnyValue {
    AnyValue { value: Some(v) }
}

fn kv(key: &str, v: V) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(any(v)),
        key_strindex: 0,
    }
}

fn str_kv(key: &str, v: &str) -> KeyValue {
    kv(key, V::StringValue(v.into()))
}

/// One attribute of every AnyValue kind, including edge values.
fn every_any_value() -> Vec<KeyValue> {
    vec![
        str_kv(
            "s",
            "quote \" backslash \\ newline \n tab \t ctl \u{1} \u{7f} é 🚀 \u{2028}",
        ),
        str_kv("empty", ""),
        kv("true", V::BoolValue(true)),
        kv("false", V::BoolValue(false)),
        kv("int0", V::IntValue(0)),
        kv("int_min", V::IntValue(i64::MIN)),
        kv("int_max", V::IntValue(i64::MAX)),
        kv("double", V::DoubleValue(637.704)),
        kv("double0", V::DoubleValue(0.0)),
        kv("double_tiny", V::DoubleValue(-1e-300)),
        kv("double_max", V::DoubleValue(f64::MAX)),
        kv("double_min_pos", V::DoubleValue(f64::MIN_POSITIVE)),
        kv("double_int", V::DoubleValue(1e21)),
        kv("inf", V::DoubleValue(f64::INFINITY)),
        kv("neg_inf", V::DoubleValue(f64::NEG_INFINITY)),
        kv("bytes", V::BytesValue((0..=255).collect())),
        kv("bytes_empty", V::BytesValue(Vec::new())),
        kv(
            "array",
            V::ArrayValue(ArrayValue {
                values: vec![
                    any(V::IntValue(1)),
                    AnyValue::default(),
                    any(V::ArrayValue(ArrayValue::default())),
                    any(V::KvlistValue(KeyValueList {
                        values: vec![str_kv("deep", "x")],
                    })),
                ],
            }),
        ),
        kv(
            "kvlist",
            V::KvlistValue(KeyValueList {
                values: vec![
                    kv("nested", V::KvlistValue(KeyValueList::default())),
                    KeyValue {
                        key: "no_value".into(),
                        value: None,
                        key_strindex: 0,
                    },
                ],
            }),
        ),
        kv("strindex", V::StringValueStrindex(7)),
        KeyValue {
            key: String::new(),
            value: Some(AnyValue::default()),
            key_strindex: 3,
        },
    ]
}

fn full_resource() -> Resource {
    Resource {
        attributes: every_any_value(),
        dropped_attributes_count: 1,
        entity_refs: vec![
            EntityRef {
                schema_url: "https://schema/entity".into(),
                r#type: "service".into(),
                id_keys: vec!["service.name".into(), "service.namespace".into()],
                description_keys: vec!["service.version".into()],
            },
            EntityRef::default(),
        ],
    }
}

fn full_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "scope".into(),
        version: "1.2.3".into(),
        attributes: vec![str_kv("scope.attr", "v")],
        dropped_attributes_count: 2,
    }
}

fn full_span() -> Span {
    Span {
        trace_id: (1..=16).collect(),
        span_id: (0xa1..=0xa8).collect(),
        trace_state: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
        parent_span_id: vec![0xff; 8],
        flags: 0x301,
        name: "GET /api/{id}".into(),
        kind: span::SpanKind::Consumer as i32,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: u64::MAX,
        attributes: every_any_value(),
        dropped_attributes_count: 3,
        events: vec![
            span::Event {
                time_unix_nano: 1_544_712_660_500_000_000,
                name: "exception".into(),
                attributes: vec![str_kv("exception.message", "boom")],
                dropped_attributes_count: 4,
            },
            span::Event::default(),
        ],
        dropped_events_count: 5,
        links: vec![
            span::Link {
                trace_id: vec![0xab; 16],
                span_id: vec![0xcd; 8],
                trace_state: "a=b".into(),
                attributes: vec![kv("link.i", V::IntValue(-42))],
                dropped_attributes_count: 6,
                flags: 0x100,
            },
            span::Link::default(),
        ],
        dropped_links_count: 7,
        status: Some(SpanStatus {
            message: "it failed".into(),
            code: status::StatusCode::Error as i32,
        }),
    }
}

fn full_traces() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(full_resource()),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(full_scope()),
                        spans: vec![
                            full_span(),
                            Span::default(),
                            Span {
                                status: Some(SpanStatus::default()),
                                kind: 99, // unknown enum values are kept
                                ..Default::default()
                            },
                        ],
                        schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                    },
                    ScopeSpans {
                        scope: Some(InstrumentationScope::default()),
                        ..Default::default()
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.20.0".into(),
            },
            ResourceSpans {
                resource: Some(Resource::default()),
                ..Default::default()
            },
            ResourceSpans::default(),
        ],
    }
}

fn full_log_record() -> LogRecord {
    LogRecord {
        time_unix_nano: 1_544_712_660_300_000_000,
        observed_time_unix_nano: 1_544_712_660_300_000_001,
        severity_number: SeverityNumber::Fatal4 as i32,
        severity_text: "FATAL".into(),
        body: Some(any(V::KvlistValue(KeyValueList {
            values: every_any_value(),
        }))),
        attributes: every_any_value(),
        dropped_attributes_count: 8,
        flags: 1,
        trace_id: vec![0x5b; 16],
        span_id: vec![0xee; 8],
        event_name: "browser.page_view".into(),
    }
}

fn full_logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: Some(full_resource()),
                scope_logs: vec![
                    ScopeLogs {
                        scope: Some(full_scope()),
                        log_records: vec![
                            full_log_record(),
                            LogRecord::default(),
                            LogRecord {
                                body: Some(AnyValue::default()),
                                ..Default::default()
                            },
                        ],
                        schema_url: "https://schema/scope".into(),
                    },
                    ScopeLogs::default(),
                ],
                schema_url: "https://schema/resource".into(),
            },
            ResourceLogs::default(),
        ],
    }
}

fn traces(json: &str) -> ExportTraceServiceRequest {
    decode_traces(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn logs(json: &str) -> ExportLogsServiceRequest {
    decode_logs(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn first_span(req: &ExportTraceServiceRequest) -> &Span {
    &req.resource_spans[0].scope_spans[0].spans[0]
}

fn first_record(req: &ExportLogsServiceRequest) -> &LogRecord {
    &req.resource_logs[0].scope_logs[0].log_records[0]
}

/// A one-span trace document whose span has the given members.
fn span_doc(span: Value) -> String {
    json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).to_string()
}

/// A one-record logs document whose record has the given members.
fn record_doc(record: Value) -> String {
    json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}).to_string()
}

fn attr_doc(value: Value) -> String {
    span_doc(json!({"attributes": [{"key": "k", "value": value}]}))
}

fn attr(value: Value) -> AnyValue {
    let req = traces(&attr_doc(value));
    first_span(&req).attributes[0].value.clone().unwrap()
}

// ---------------------------------------------------------------------------
// Spec examples
// ---------------------------------------------------------------------------

#[test]
fn spec_trace_example() {
    let req = traces(SPEC_TRACE);
    assert_eq!(req.resource_spans.len(), 1);
    let rs = &req.resource_spans[0];
    assert_eq!(
        rs.resource.as_ref().unwrap().attributes,
        vec![str_kv("service.name", "my.service")]
    );
    let ss = &rs.scope_spans[0];
    assert_eq!(
        ss.scope,
        Some(InstrumentationScope {
            name: "my.library".into(),
            version: "1.0.0".into(),
            attributes: vec![str_kv("my.scope.attribute", "some scope attribute")],
            dropped_attributes_count: 0,
        })
    );
    assert_eq!(
        ss.spans,
        vec![Span {
            trace_id: hex::decode("5b8efff798038103d269b633813fc60c").unwrap(),
            span_id: hex::decode("eee19b7ec3c1b174").unwrap(),
            parent_span_id: hex::decode("eee19b7ec3c1b173").unwrap(),
            name: "I'm a server span".into(),
            start_time_unix_nano: 1_544_712_660_000_000_000,
            end_time_unix_nano: 1_544_712_661_000_000_000,
            kind: span::SpanKind::Server as i32,
            attributes: vec![str_kv("my.span.attr", "some value")],
            ..Default::default()
        }]
    );
    assert_eq!(crate::validate::validate_traces(&req), Ok(()));
    assert_eq!(
        traces(&String::from_utf8(encode_traces(&req)).unwrap()),
        req
    );
}

#[test]
fn spec_logs_example() {
    let req = logs(SPEC_LOGS);
    let rl = &req.resource_logs[0];
    assert_eq!(
        rl.resource.as_ref().unwrap().attributes,
        vec![str_kv("service.name", "my.service")]
    );
    assert_eq!(rl.scope_logs[0].scope.as_ref().unwrap().name, "my.library");
    let expected = LogRecord {
        time_unix_nano: 1_544_712_660_300_000_000,
        observed_time_unix_nano: 1_544_712_660_300_000_000,
        severity_number: SeverityNumber::Info2 as i32,
        severity_text: "Information".into(),
        trace_id: hex::decode("5b8efff798038103d269b633813fc60c").unwrap(),
        span_id: hex::decode("eee19b7ec3c1b174").unwrap(),
        body: Some(any(V::StringValue("Example log record".into()))),
        attributes: vec![
            str_kv("string.attribute", "some string"),
            kv("boolean.attribute", V::BoolValue(true)),
            kv("int.attribute", V::IntValue(10)),
            kv("double.attribute", V::DoubleValue(637.704)),
            kv(
                "array.attribute",
                V::ArrayValue(ArrayValue {
                    values: vec![
                        any(V::StringValue("many".into())),
                        any(V::StringValue("values".into())),
                    ],
                }),
            ),
            kv(
                "map.attribute",
                V::KvlistValue(KeyValueList {
                    values: vec![str_kv("some.map.key", "some value")],
                }),
            ),
        ],
        ..Default::default()
    };
    assert_eq!(rl.scope_logs[0].log_records, vec![expected]);
    assert_eq!(crate::validate::validate_logs(&req), Ok(()));
    assert_eq!(logs(&String::from_utf8(encode_logs(&req)).unwrap()), req);
}

// ---------------------------------------------------------------------------
// Encoding and round trips
// ---------------------------------------------------------------------------

#[test]
fn round_trip_full_traces() {
    let req = full_traces();
    let json = encode_traces(&req);
    let decoded = decode_traces(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(decoded, req);
    // Encoding is deterministic and stable.
    assert_eq!(encode_traces(&decoded), json);
}

#[test]
fn round_trip_full_logs() {
    let req = full_logs();
    let json = encode_logs(&req);
    let decoded = decode_logs(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(decoded, req);
    assert_eq!(encode_logs(&decoded), json);
}

#[test]
fn round_trip_nan() {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("nan", V::DoubleValue(f64::NAN))],
                ..Default::default()
            }),
            ..Default::default()
        }],
    };
    let json = encode_traces(&req);
    assert_eq!(
        String::from_utf8(json.clone()).unwrap(),
        r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"nan","value":{"doubleValue":"NaN"}}]}}]}"#
    );
    let decoded = decode_traces(&json).unwrap();
    let value = &decoded.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes[0]
        .value;
    assert!(matches!(value, Some(AnyValue { value: Some(V::DoubleValue(f)) }) if f.is_nan()));
}

#[test]
fn doubles_round_trip_bit_exact() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let specials = [
        0.0,
        -0.0,
        -1e-30,
        1e-300,
        5e-324,
        0.1,
        1.0 / 3.0,
        1e21,
        1e22,
        f64::MAX,
    ];
    let randoms = (0..5000).map(|_| f64::from_bits(rng.next()));
    let values: Vec<f64> = specials.into_iter().chain(randoms).collect();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: values.iter().map(|&f| kv("d", V::DoubleValue(f))).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
    };
    let decoded = decode_logs(&encode_logs(&req)).unwrap();
    let attrs = &decoded.resource_logs[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes;
    for (f, attr) in values.iter().zip(attrs) {
        match attr.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(V::DoubleValue(g)) if f.is_nan() => assert!(g.is_nan()),
            Some(V::DoubleValue(g)) => assert_eq!(f.to_bits(), g.to_bits(), "{f:?} -> {g:?}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn encoded_span_format() {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: hex::decode("5B8EFFF798038103D269B633813FC60C").unwrap(),
                    span_id: hex::decode("EEE19B7EC3C1B174").unwrap(),
                    flags: 1,
                    name: "n".into(),
                    kind: 2,
                    start_time_unix_nano: 1_544_712_660_000_000_000,
                    attributes: vec![
                        kv("i", V::IntValue(-10)),
                        kv("b", V::BytesValue(b"hi?".to_vec())),
                        kv("d", V::DoubleValue(1.5)),
                    ],
                    status: Some(SpanStatus {
                        message: String::new(),
                        code: 2,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let json = String::from_utf8(encode_traces(&req)).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"#,
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","#,
            r#""flags":1,"name":"n","kind":2,"startTimeUnixNano":"1544712660000000000","#,
            r#""attributes":[{"key":"i","value":{"intValue":"-10"}},"#,
            r#"{"key":"b","value":{"bytesValue":"aGk/"}},"#,
            r#"{"key":"d","value":{"doubleValue":1.5}}],"#,
            r#""status":{"code":2}}]}]}]}"#
        )
    );
}

#[test]
fn encoded_strings_are_valid_json() {
    let s = "quote \" backslash \\ ctl \u{0}\u{1f}\u{8}\u{c}\n\r\t é 🚀 \u{2028}";
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            schema_url: s.into(),
            ..Default::default()
        }],
    };
    let json = encode_logs(&req);
    let parsed: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(parsed["resourceLogs"][0]["schemaUrl"], s);
}

#[test]
fn empty_messages_encode_to_empty_objects() {
    assert_eq!(encode_traces(&ExportTraceServiceRequest::default()), b"{}");
    assert_eq!(encode_logs(&ExportLogsServiceRequest::default()), b"{}");
    assert_eq!(traces("{}"), ExportTraceServiceRequest::default());
    assert_eq!(logs("{}"), ExportLogsServiceRequest::default());
    assert_eq!(traces("null"), ExportTraceServiceRequest::default());
}

// ---------------------------------------------------------------------------
// Lenient decoding
// ---------------------------------------------------------------------------

#[test]
fn integers_as_strings_and_numbers() {
    for doc in [
        json!({"startTimeUnixNano": "18446744073709551615", "endTimeUnixNano": "1", "droppedAttributesCount": "4294967295", "flags": "257"}),
        json!({"startTimeUnixNano": 18446744073709551615u64, "endTimeUnixNano": 1, "droppedAttributesCount": 4294967295u32, "flags": 257}),
        json!({"startTimeUnixNano": 18446744073709551615u64, "endTimeUnixNano": 1.0, "droppedAttributesCount": 4294967295u32, "flags": 2.57e2}),
    ] {
        let req = traces(&span_doc(doc));
        let span = first_span(&req);
        assert_eq!(span.start_time_unix_nano, u64::MAX);
        assert_eq!(span.end_time_unix_nano, 1);
        assert_eq!(span.dropped_attributes_count, u32::MAX);
        assert_eq!(span.flags, 257);
    }
    assert_eq!(
        attr(json!({"intValue": "-9223372036854775808"})),
        any(V::IntValue(i64::MIN))
    );
    assert_eq!(
        attr(json!({"intValue": -9223372036854775808i64})),
        any(V::IntValue(i64::MIN))
    );
    assert_eq!(
        attr(json!({"intValue": 9223372036854775807i64})),
        any(V::IntValue(i64::MAX))
    );
    assert_eq!(attr(json!({"intValue": "0"})), any(V::IntValue(0)));
    assert_eq!(attr(json!({"intValue": 1e3})), any(V::IntValue(1000)));
    // Integers beyond 2^53 as JSON numbers are exact.
    let req = traces(&span_doc(
        json!({"startTimeUnixNano": 1544712660000000001u64}),
    ));
    assert_eq!(
        first_span(&req).start_time_unix_nano,
        1_544_712_660_000_000_001
    );

    let resp = decode_trace_response(br#"{"partialSuccess":{"rejectedSpans":5}}"#).unwrap();
    assert_eq!(resp.partial_success.unwrap().rejected_spans, 5);
}

#[test]
fn doubles() {
    assert_eq!(attr(json!({"doubleValue": 1})), any(V::DoubleValue(1.0)));
    assert_eq!(
        attr(json!({"doubleValue": -2.5e-3})),
        any(V::DoubleValue(-0.0025))
    );
    assert_eq!(
        attr(json!({"doubleValue": "1.25"})),
        any(V::DoubleValue(1.25))
    );
    assert_eq!(
        attr(json!({"doubleValue": "Infinity"})),
        any(V::DoubleValue(f64::INFINITY))
    );
    assert_eq!(
        attr(json!({"doubleValue": "-Infinity"})),
        any(V::DoubleValue(f64::NEG_INFINITY))
    );
    assert!(matches!(
        attr(json!({"doubleValue": "NaN"})).value,
        Some(V::DoubleValue(f)) if f.is_nan()
    ));
}

#[test]
fn enum_names() {
    let req = traces(&span_doc(json!({
        "kind": "SPAN_KIND_SERVER",
        "status": {"code": "STATUS_CODE_ERROR", "message": "m"}
    })));
    let span = first_span(&req);
    assert_eq!(span.kind, span::SpanKind::Server as i32);
    assert_eq!(
        span.status,
        Some(SpanStatus {
            message: "m".into(),
            code: status::StatusCode::Error as i32
        })
    );

    let req = logs(&record_doc(
        json!({"severityNumber": "SEVERITY_NUMBER_INFO"}),
    ));
    assert_eq!(
        first_record(&req).severity_number,
        SeverityNumber::Info as i32
    );
    let req = logs(&record_doc(
        json!({"severity_number": "SEVERITY_NUMBER_FATAL4"}),
    ));
    assert_eq!(first_record(&req).severity_number, 24);

    // Integers, numeric strings and unknown (open enum) values.
    let req = traces(&span_doc(json!({"kind": 5, "status": {"code": "1"}})));
    assert_eq!(first_span(&req).kind, 5);
    assert_eq!(first_span(&req).status.as_ref().unwrap().code, 1);
    let req = traces(&span_doc(json!({"kind": 42})));
    assert_eq!(first_span(&req).kind, 42);
}

#[test]
fn snake_case_field_names() {
    let doc = r#"{"resource_spans": [{
        "resource": {"attributes": [{"key": "k", "value": {"string_value": "v"}}],
                     "dropped_attributes_count": 1,
                     "entity_refs": [{"schema_url": "s", "type": "t", "id_keys": ["a"], "description_keys": ["b"]}]},
        "schema_url": "rs",
        "scope_spans": [{
            "schema_url": "ss",
            "scope": {"name": "n", "version": "v", "dropped_attributes_count": 2},
            "spans": [{
                "trace_id": "0102030405060708090a0b0c0d0e0f10",
                "span_id": "a1a2a3a4a5a6a7a8",
                "parent_span_id": "ffffffffffffffff",
                "trace_state": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
                "flags": 769,
                "name": "GET /api/{id}",
                "kind": "SPAN_KIND_CONSUMER",
                "start_time_unix_nano": "1544712660000000000",
                "end_time_unix_nano": "18446744073709551615",
                "dropped_attributes_count": 3,
                "dropped_events_count": 5,
                "dropped_links_count": 7,
                "events": [{"time_unix_nano": 1544712660500000000, "name": "exception",
                            "attributes": [{"key": "exception.message", "value": {"string_value": "boom"}}],
                            "dropped_attributes_count": 4}, {}],
                "links": [{"trace_id": "abababababababababababababababab", "span_id": "cdcdcdcdcdcdcdcd",
                           "trace_state": "a=b", "dropped_attributes_count": 6, "flags": 256,
                           "attributes": [{"key": "link.i", "value": {"int_value": -42}}]}, {}],
                "status": {"message": "it failed", "code": 2},
                "attributes": [
                    {"key": "a", "value": {"bool_value": true}},
                    {"key": "b", "value": {"double_value": 1.5}},
                    {"key": "c", "value": {"bytes_value": "AQI="}},
                    {"key": "d", "value": {"array_value": {"values": [{"int_value": "1"}]}}},
                    {"key": "e", "value": {"kvlist_value": {"values": [{"key": "x", "value": {}}]}}},
                    {"key": "f", "value": {"string_value_strindex": 7}},
                    {"key": "", "key_strindex": 3}
                ]
            }]
        }]
    }]}"#;
    let req = traces(doc);
    let rs = &req.resource_spans[0];
    assert_eq!(rs.schema_url, "rs");
    assert_eq!(rs.scope_spans[0].schema_url, "ss");
    let resource = rs.resource.as_ref().unwrap();
    assert_eq!(resource.dropped_attributes_count, 1);
    assert_eq!(resource.attributes, vec![str_kv("k", "v")]);
    assert_eq!(
        resource.entity_refs,
        vec![EntityRef {
            schema_url: "s".into(),
            r#type: "t".into(),
            id_keys: vec!["a".into()],
            description_keys: vec!["b".into()],
        }]
    );
    let scope = rs.scope_spans[0].scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.dropped_attributes_count),
        ("n", 2)
    );

    let expected_attrs = vec![
        kv("a", V::BoolValue(true)),
        kv("b", V::DoubleValue(1.5)),
        kv("c", V::BytesValue(vec![1, 2])),
        kv(
            "d",
            V::ArrayValue(ArrayValue {
                values: vec![any(V::IntValue(1))],
            }),
        ),
        kv(
            "e",
            V::KvlistValue(KeyValueList {
                values: vec![KeyValue {
                    key: "x".into(),
                    value: Some(AnyValue::default()),
                    key_strindex: 0,
                }],
            }),
        ),
        kv("f", V::StringValueStrindex(7)),
        KeyValue {
            key: String::new(),
            value: None,
            key_strindex: 3,
        },
    ];
    let expected = Span {
        attributes: expected_attrs,
        ..full_span()
    };
    assert_eq!(first_span(&req), &expected);

    let req = logs(
        &json!({"resource_logs": [{"schema_url": "r", "scope_logs": [{"schema_url": "s", "log_records": [{
            "time_unix_nano": "1", "observed_time_unix_nano": 2, "severity_number": 9,
            "severity_text": "INFO", "body": {"string_value": "b"}, "dropped_attributes_count": 3,
            "flags": 1, "trace_id": "5B8EFFF798038103D269B633813FC60C", "span_id": "EEE19B7EC3C1B174",
            "event_name": "ev"
        }]}]}]})
        .to_string(),
    );
    assert_eq!(req.resource_logs[0].schema_url, "r");
    assert_eq!(req.resource_logs[0].scope_logs[0].schema_url, "s");
    assert_eq!(
        first_record(&req),
        &LogRecord {
            time_unix_nano: 1,
            observed_time_unix_nano: 2,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(any(V::StringValue("b".into()))),
            attributes: vec![],
            dropped_attributes_count: 3,
            flags: 1,
            trace_id: hex::decode("5b8efff798038103d269b633813fc60c").unwrap(),
            span_id: hex::decode("eee19b7ec3c1b174").unwrap(),
            event_name: "ev".into(),
        }
    );

    let resp = decode_logs_response(
        br#"{"partial_success":{"rejected_log_records":"3","error_message":"x"}}"#,
    )
    .unwrap();
    assert_eq!(
        resp.partial_success,
        Some(ExportLogsPartialSuccess {
            rejected_log_records: 3,
            error_message: "x".into()
        })
    );
}

#[test]
fn ids_are_case_insensitive_hex() {
    let req = traces(&span_doc(json!({
        "traceId": "5b8EFFF798038103d269b633813fc60C",
        "spanId": "eEe19B7ec3c1b174",
        "parentSpanId": ""
    })));
    let span = first_span(&req);
    assert_eq!(
        span.trace_id,
        hex::decode("5b8efff798038103d269b633813fc60c").unwrap()
    );
    assert_eq!(span.span_id, hex::decode("eee19b7ec3c1b174").unwrap());
    assert!(span.parent_span_id.is_empty());

    let req = logs(&record_doc(json!({"traceId": "", "spanId": null})));
    assert!(first_record(&req).trace_id.is_empty());
    assert!(first_record(&req).span_id.is_empty());
}

#[test]
fn bytes_are_base64() {
    let expected = any(V::BytesValue(vec![0xfb, 0xff, 0xbf]));
    assert_eq!(attr(json!({"bytesValue": "+/+/"})), expected);
    assert_eq!(attr(json!({"bytesValue": "-_-_"})), expected);
    let two = any(V::BytesValue(vec![0xfb, 0xff]));
    assert_eq!(attr(json!({"bytesValue": "+/8="})), two);
    assert_eq!(attr(json!({"bytesValue": "-_8"})), two);
    assert_eq!(attr(json!({"bytesValue": ""})), any(V::BytesValue(vec![])));
}

#[test]
fn any_value_shapes() {
    assert_eq!(attr(json!({})), AnyValue::default());
    assert_eq!(attr(json!({"unknownValue": 1})), AnyValue::default());
    assert_eq!(attr(json!({"stringValue": null})), AnyValue::default());
    assert_eq!(
        attr(json!({"stringValue": ""})),
        any(V::StringValue(String::new()))
    );
    assert_eq!(attr(json!({"boolValue": false})), any(V::BoolValue(false)));
    assert_eq!(
        attr(json!({"arrayValue": {}})),
        any(V::ArrayValue(ArrayValue::default()))
    );
    assert_eq!(
        attr(json!({"kvlistValue": {"values": null}})),
        any(V::KvlistValue(KeyValueList::default()))
    );
    // `null` for the value of a KeyValue means "not set".
    let req = traces(&attr_doc(Value::Null));
    assert_eq!(first_span(&req).attributes[0].value, None);
}

#[test]
fn unknown_fields_are_ignored() {
    let doc = json!({
        "futureTopLevel": {"a": [1, 2, {"b": null}]},
        "resourceSpans": [{
            "resource": {"attributes": [], "somethingNew": true},
            "instrumentationLibrarySpans": [{"spans": [{"traceId": "not even hex"}]}],
            "scopeSpans": [{
                "scope": {"name": "s", "extra": "x"},
                "spans": [{
                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                    "newField": [[["deep"]]],
                    "status": {"code": 1, "deprecatedCode": 2},
                    "events": [{"name": "e", "x": 1}],
                    "links": [{"traceId": "5B8EFFF798038103D269B633813FC60C", "y": {}}],
                    "attributes": [{"key": "k", "value": {"stringValue": "v"}, "z": 0}]
                }]
            }]
        }]
    });
    let req = traces(&doc.to_string());
    let span = first_span(&req);
    assert_eq!(span.status.as_ref().unwrap().code, 1);
    assert_eq!(span.events[0].name, "e");
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.attributes, vec![str_kv("k", "v")]);
}

#[test]
fn null_means_default() {
    let req = traces(&span_doc(json!({
        "traceId": null, "spanId": null, "traceState": null, "parentSpanId": null,
        "flags": null, "name": null, "kind": null, "startTimeUnixNano": null,
        "endTimeUnixNano": null, "attributes": null, "droppedAttributesCount": null,
        "events": null, "droppedEventsCount": null, "links": null,
        "droppedLinksCount": null, "status": null
    })));
    assert_eq!(first_span(&req), &Span::default());
    let req = traces(r#"{"resourceSpans":[{"resource":null,"scopeSpans":null,"schemaUrl":null}]}"#);
    assert_eq!(req.resource_spans, vec![ResourceSpans::default()]);
    let req = logs(&record_doc(
        json!({"body": null, "eventName": null, "severityNumber": null}),
    ));
    assert_eq!(first_record(&req), &LogRecord::default());
}

// ---------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------

fn trace_err(json: &str) -> String {
    match decode_traces(json.as_bytes()) {
        Ok(req) => panic!("expected an error for {json}, got {req:?}"),
        Err(e) => e.to_string(),
    }
}

fn logs_err(json: &str) -> String {
    match decode_logs(json.as_bytes()) {
        Ok(req) => panic!("expected an error for {json}, got {req:?}"),
        Err(e) => e.to_string(),
    }
}

const SPAN: &str = "resourceSpans[0].scopeSpans[0].spans[0]";
const ATTR: &str = "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value";
const RECORD: &str = "resourceLogs[0].scopeLogs[0].logRecords[0]";

#[test]
fn error_path_names_nested_indices() {
    let doc = json!({"resourceSpans": [{"scopeSpans": [
        {"spans": []},
        {"spans": [{}, {}, {}, {"traceId": "zz8EFFF798038103D269B633813FC60C"}]}
    ]}]});
    let err = decode_traces(doc.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        err.path(),
        "resourceSpans[0].scopeSpans[1].spans[3].traceId"
    );
    assert_eq!(
        err.message(),
        r#"invalid hex string "zz8EFFF798038103D269B633813FC60C""#
    );
    assert_eq!(
        err.to_string(),
        r#"resourceSpans[0].scopeSpans[1].spans[3].traceId: invalid hex string "zz8EFFF798038103D269B633813FC60C""#
    );
}

#[test]
fn malformed_spans() {
    let cases: Vec<(Value, String)> = vec![
        (
            json!({"traceId": "abc"}),
            format!(r#"{SPAN}.traceId: invalid hex string "abc""#),
        ),
        (
            json!({"traceId": "0102"}),
            format!("{SPAN}.traceId: must be 16 bytes (32 hex digits) or empty, got 2 bytes"),
        ),
        (
            json!({"traceId": "0102030405060708090a0b0c0d0e0f1011"}),
            format!("{SPAN}.traceId: must be 16 bytes (32 hex digits) or empty, got 17 bytes"),
        ),
        (
            json!({"traceId": "AQIDBAUGBwgJCgsMDQ4PEA=="}),
            format!(r#"{SPAN}.traceId: invalid hex string "AQIDBAUGBwgJCgsMDQ4PEA==""#),
        ),
        (
            json!({"traceId": 5}),
            format!("{SPAN}.traceId: expected hex string, got number 5"),
        ),
        (
            json!({"traceId": "z".repeat(100)}),
            format!(
                r#"{SPAN}.traceId: invalid hex string "{}...""#,
                "z".repeat(40)
            ),
        ),
        (
            json!({"spanId": "0102030405060708090a0b0c0d0e0f10"}),
            format!("{SPAN}.spanId: must be 8 bytes (16 hex digits) or empty, got 16 bytes"),
        ),
        (
            json!({"parentSpanId": "01"}),
            format!("{SPAN}.parentSpanId: must be 8 bytes (16 hex digits) or empty, got 1 bytes"),
        ),
        (
            json!({"parentSpanId": "g000000000000000"}),
            format!(r#"{SPAN}.parentSpanId: invalid hex string "g000000000000000""#),
        ),
        (
            json!({"name": 5}),
            format!("{SPAN}.name: expected string, got number 5"),
        ),
        (
            json!({"name": ["a"]}),
            format!("{SPAN}.name: expected string, got array"),
        ),
        (
            json!({"traceState": {}}),
            format!("{SPAN}.traceState: expected string, got object"),
        ),
        (
            json!({"startTimeUnixNano": [1]}),
            format!("{SPAN}.startTimeUnixNano: expected integer, got array"),
        ),
        (
            json!({"startTimeUnixNano": {}}),
            format!("{SPAN}.startTimeUnixNano: expected integer, got object"),
        ),
        (
            json!({"startTimeUnixNano": true}),
            format!("{SPAN}.startTimeUnixNano: expected integer, got boolean true"),
        ),
        (
            json!({"startTimeUnixNano": "-1"}),
            format!("{SPAN}.startTimeUnixNano: -1 is out of range for uint64"),
        ),
        (
            json!({"startTimeUnixNano": -1}),
            format!("{SPAN}.startTimeUnixNano: -1 is out of range for uint64"),
        ),
        (
            json!({"endTimeUnixNano": "18446744073709551616"}),
            format!("{SPAN}.endTimeUnixNano: 18446744073709551616 is out of range for uint64"),
        ),
        (
            json!({"endTimeUnixNano": 1.5}),
            format!("{SPAN}.endTimeUnixNano: expected an integer, got number 1.5"),
        ),
        (
            json!({"endTimeUnixNano": "abc"}),
            format!(r#"{SPAN}.endTimeUnixNano: invalid integer string "abc""#),
        ),
        (
            json!({"endTimeUnixNano": "1.0"}),
            format!(r#"{SPAN}.endTimeUnixNano: invalid integer string "1.0""#),
        ),
        (
            json!({"endTimeUnixNano": ""}),
            format!(r#"{SPAN}.endTimeUnixNano: invalid integer string """#),
        ),
        (
            json!({"endTimeUnixNano": " 1"}),
            format!(r#"{SPAN}.endTimeUnixNano: invalid integer string " 1""#),
        ),
        (
            json!({"droppedAttributesCount": 4294967296u64}),
            format!("{SPAN}.droppedAttributesCount: 4294967296 is out of range for uint32"),
        ),
        (
            json!({"droppedEventsCount": -1}),
            format!("{SPAN}.droppedEventsCount: -1 is out of range for uint32"),
        ),
        (
            json!({"droppedLinksCount": "x"}),
            format!(r#"{SPAN}.droppedLinksCount: invalid integer string "x""#),
        ),
        (
            json!({"flags": 4294967296u64}),
            format!("{SPAN}.flags: 4294967296 is out of range for uint32"),
        ),
        (
            json!({"kind": "SPAN_KIND_BOGUS"}),
            format!(r#"{SPAN}.kind: unknown enum value "SPAN_KIND_BOGUS""#),
        ),
        (
            json!({"kind": "span_kind_server"}),
            format!(r#"{SPAN}.kind: unknown enum value "span_kind_server""#),
        ),
        (
            json!({"kind": 2147483648u64}),
            format!("{SPAN}.kind: 2147483648 is out of range for int32"),
        ),
        (
            json!({"kind": true}),
            format!("{SPAN}.kind: expected integer, got boolean true"),
        ),
        (
            json!({"kind": 2.5}),
            format!("{SPAN}.kind: expected an integer, got number 2.5"),
        ),
        (
            json!({"status": "ok"}),
            format!(r#"{SPAN}.status: expected object, got string "ok""#),
        ),
        (
            json!({"status": {"code": "STATUS_CODE_BAD"}}),
            format!(r#"{SPAN}.status.code: unknown enum value "STATUS_CODE_BAD""#),
        ),
        (
            json!({"status": {"message": 1}}),
            format!("{SPAN}.status.message: expected string, got number 1"),
        ),
        (
            json!({"attributes": {}}),
            format!("{SPAN}.attributes: expected array, got object"),
        ),
        (
            json!({"attributes": [1]}),
            format!("{SPAN}.attributes[0]: expected object, got number 1"),
        ),
        (
            json!({"attributes": [{"key": 1}]}),
            format!("{SPAN}.attributes[0].key: expected string, got number 1"),
        ),
        (
            json!({"attributes": [{"key": "k", "keyStrindex": "x"}]}),
            format!(r#"{SPAN}.attributes[0].keyStrindex: invalid integer string "x""#),
        ),
        (
            json!({"events": [{}, {"timeUnixNano": "x"}]}),
            format!(r#"{SPAN}.events[1].timeUnixNano: invalid integer string "x""#),
        ),
        (
            json!({"events": [{"name": null, "attributes": [[]]}]}),
            format!("{SPAN}.events[0].attributes[0]: expected object, got array"),
        ),
        (
            json!({"events": [{"droppedAttributesCount": -5}]}),
            format!("{SPAN}.events[0].droppedAttributesCount: -5 is out of range for uint32"),
        ),
        (
            json!({"events": "e"}),
            format!(r#"{SPAN}.events: expected array, got string "e""#),
        ),
        (
            json!({"links": [{"spanId": "zz"}]}),
            format!(r#"{SPAN}.links[0].spanId: invalid hex string "zz""#),
        ),
        (
            json!({"links": [{"traceId": "00"}]}),
            format!(
                "{SPAN}.links[0].traceId: must be 16 bytes (32 hex digits) or empty, got 1 bytes"
            ),
        ),
        (
            json!({"links": [{"flags": "f"}]}),
            format!(r#"{SPAN}.links[0].flags: invalid integer string "f""#),
        ),
        (
            json!({"links": [{"traceState": false}]}),
            format!("{SPAN}.links[0].traceState: expected string, got boolean false"),
        ),
        (
            json!({"links": [{"attributes": [{"value": 1}]}]}),
            format!("{SPAN}.links[0].attributes[0].value: expected object, got number 1"),
        ),
        (
            json!({"links": [{"droppedAttributesCount": 0.5}]}),
            format!("{SPAN}.links[0].droppedAttributesCount: expected an integer, got number 0.5"),
        ),
    ];
    for (span, expected) in cases {
        assert_eq!(trace_err(&span_doc(span)), expected);
    }
}

#[test]
fn malformed_any_values() {
    let cases: Vec<(Value, String)> = vec![
        (
            json!("str"),
            format!(r#"{ATTR}: expected object, got string "str""#),
        ),
        (json!([]), format!("{ATTR}: expected object, got array")),
        (
            json!({"stringValue": 1}),
            format!("{ATTR}.stringValue: expected string, got number 1"),
        ),
        (
            json!({"boolValue": "true"}),
            format!(r#"{ATTR}.boolValue: expected boolean, got string "true""#),
        ),
        (
            json!({"boolValue": 1}),
            format!("{ATTR}.boolValue: expected boolean, got number 1"),
        ),
        (
            json!({"intValue": "1.5"}),
            format!(r#"{ATTR}.intValue: invalid integer string "1.5""#),
        ),
        (
            json!({"intValue": "9223372036854775808"}),
            format!("{ATTR}.intValue: 9223372036854775808 is out of range for int64"),
        ),
        (
            json!({"intValue": 9223372036854775808u64}),
            format!("{ATTR}.intValue: 9223372036854775808 is out of range for int64"),
        ),
        (
            json!({"intValue": 1e19}),
            format!("{ATTR}.intValue: 10000000000000000000 is out of range for int64"),
        ),
        (
            json!({"intValue": [1]}),
            format!("{ATTR}.intValue: expected integer, got array"),
        ),
        (
            json!({"doubleValue": "abc"}),
            format!(r#"{ATTR}.doubleValue: invalid number string "abc""#),
        ),
        (
            json!({"doubleValue": "inf"}),
            format!(r#"{ATTR}.doubleValue: invalid number string "inf""#),
        ),
        (
            json!({"doubleValue": "nan"}),
            format!(r#"{ATTR}.doubleValue: invalid number string "nan""#),
        ),
        (
            json!({"doubleValue": "1e999"}),
            format!(r#"{ATTR}.doubleValue: invalid number string "1e999""#),
        ),
        (
            json!({"doubleValue": true}),
            format!("{ATTR}.doubleValue: expected number, got boolean true"),
        ),
        (
            json!({"doubleValue": [1.0]}),
            format!("{ATTR}.doubleValue: expected number, got array"),
        ),
        (
            json!({"bytesValue": "!!"}),
            format!(r#"{ATTR}.bytesValue: invalid base64 string "!!""#),
        ),
        (
            json!({"bytesValue": "A"}),
            format!(r#"{ATTR}.bytesValue: invalid base64 string "A""#),
        ),
        (
            json!({"bytesValue": [1, 2]}),
            format!("{ATTR}.bytesValue: expected base64 string, got array"),
        ),
        (
            json!({"arrayValue": []}),
            format!("{ATTR}.arrayValue: expected object, got array"),
        ),
        (
            json!({"arrayValue": {"values": {}}}),
            format!("{ATTR}.arrayValue.values: expected array, got object"),
        ),
        (
            json!({"arrayValue": {"values": [{}, 1]}}),
            format!("{ATTR}.arrayValue.values[1]: expected object, got number 1"),
        ),
        (
            json!({"kvlistValue": [{"key": "k"}]}),
            format!("{ATTR}.kvlistValue: expected object, got array"),
        ),
        (
            json!({"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "x"}}]}}),
            format!(r#"{ATTR}.kvlistValue.values[0].value.intValue: invalid integer string "x""#),
        ),
        (
            json!({"stringValueStrindex": 2147483648u64}),
            format!("{ATTR}.stringValueStrindex: 2147483648 is out of range for int32"),
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(trace_err(&attr_doc(value)), expected);
    }
}

#[test]
fn any_value_with_two_values_is_rejected() {
    let err =
        decode_traces(attr_doc(json!({"intValue": 1, "stringValue": "x"})).as_bytes()).unwrap_err();
    assert!(err.path().starts_with(ATTR), "{err}");
    assert_eq!(
        err.message(),
        "AnyValue must have at most one value field set"
    );
}

#[test]
fn malformed_structure() {
    let cases = [
        ("[]", "expected object, got array".to_string()),
        ("\"x\"", r#"expected object, got string "x""#.to_string()),
        ("1", "expected object, got number 1".to_string()),
        (r#"{"resourceSpans": {}}"#, "resourceSpans: expected array, got object".into()),
        (r#"{"resourceSpans": ["x"]}"#, r#"resourceSpans[0]: expected object, got string "x""#.into()),
        (r#"{"resource_spans": [1]}"#, "resource_spans[0]: expected object, got number 1".into()),
        (r#"{"resourceSpans": [{"resource": []}]}"#, "resourceSpans[0].resource: expected object, got array".into()),
        (r#"{"resourceSpans": [{"resource": {"attributes": [{"key": 1}]}}]}"#, "resourceSpans[0].resource.attributes[0].key: expected string, got number 1".into()),
        (r#"{"resourceSpans": [{"resource": {"droppedAttributesCount": "x"}}]}"#, r#"resourceSpans[0].resource.droppedAttributesCount: invalid integer string "x""#.into()),
        (r#"{"resourceSpans": [{"resource": {"entityRefs": [{"idKeys": [1]}]}}]}"#, "resourceSpans[0].resource.entityRefs[0].idKeys[0]: expected string, got number 1".into()),
        (r#"{"resourceSpans": [{"resource": {"entityRefs": [{"type": {}}]}}]}"#, "resourceSpans[0].resource.entityRefs[0].type: expected string, got object".into()),
        (r#"{"resourceSpans": [{"schemaUrl": 1}]}"#, "resourceSpans[0].schemaUrl: expected string, got number 1".into()),
        (r#"{"resourceSpans": [{"scopeSpans": {}}]}"#, "resourceSpans[0].scopeSpans: expected array, got object".into()),
        (r#"{"resourceSpans": [{"scopeSpans": [{"scope": 1}]}]}"#, "resourceSpans[0].scopeSpans[0].scope: expected object, got number 1".into()),
        (r#"{"resourceSpans": [{"scopeSpans": [{"scope": {"name": 1}}]}]}"#, "resourceSpans[0].scopeSpans[0].scope.name: expected string, got number 1".into()),
        (r#"{"resourceSpans": [{"scopeSpans": [{"scope": {"version": []}}]}]}"#, "resourceSpans[0].scopeSpans[0].scope.version: expected string, got array".into()),
        (r#"{"resourceSpans": [{"scopeSpans": [{"scope": {"droppedAttributesCount": -1}}]}]}"#, "resourceSpans[0].scopeSpans[0].scope.droppedAttributesCount: -1 is out of range for uint32".into()),
        (r#"{"resourceSpans": [{"scopeSpans": [{"schemaUrl": false}]}]}"#, "resourceSpans[0].scopeSpans[0].schemaUrl: expected string, got boolean false".into()),
        (r#"{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}"#, "resourceSpans[0].scopeSpans[0].spans: expected array, got object".into()),
        (r#"{"resourceSpans": [{"scopeSpans": [{"spans": [[]]}]}]}"#, "resourceSpans[0].scopeSpans[0].spans[0]: expected object, got array".into()),
        (r#"{"resource_spans": [{"scope_spans": [{"spans": [{"trace_id": "x"}]}]}]}"#, r#"resource_spans[0].scope_spans[0].spans[0].trace_id: invalid hex string "x""#.into()),
    ];
    for (json, expected) in cases {
        assert_eq!(trace_err(json), expected, "{json}");
    }
}

#[test]
fn malformed_logs() {
    let cases: Vec<(Value, String)> = vec![
        (
            json!({"severityNumber": "SEVERITY_NUMBER_LOUD"}),
            format!(r#"{RECORD}.severityNumber: unknown enum value "SEVERITY_NUMBER_LOUD""#),
        ),
        (
            json!({"severityNumber": [9]}),
            format!("{RECORD}.severityNumber: expected integer, got array"),
        ),
        (
            json!({"severityText": 9}),
            format!("{RECORD}.severityText: expected string, got number 9"),
        ),
        (
            json!({"timeUnixNano": "-5"}),
            format!("{RECORD}.timeUnixNano: -5 is out of range for uint64"),
        ),
        (
            json!({"observedTimeUnixNano": "now"}),
            format!(r#"{RECORD}.observedTimeUnixNano: invalid integer string "now""#),
        ),
        (
            json!({"traceId": "0102"}),
            format!("{RECORD}.traceId: must be 16 bytes (32 hex digits) or empty, got 2 bytes"),
        ),
        (
            json!({"traceId": "XYZ"}),
            format!(r#"{RECORD}.traceId: invalid hex string "XYZ""#),
        ),
        (
            json!({"spanId": "010203040506070809"}),
            format!("{RECORD}.spanId: must be 8 bytes (16 hex digits) or empty, got 9 bytes"),
        ),
        (
            json!({"spanId": {}}),
            format!("{RECORD}.spanId: expected hex string, got object"),
        ),
        (
            json!({"body": "text"}),
            format!(r#"{RECORD}.body: expected object, got string "text""#),
        ),
        (
            json!({"body": {"kvlistValue": {"values": [{"key": "k", "value": {"arrayValue": {"values": [{"doubleValue": "x"}]}}}]}}}),
            format!(
                r#"{RECORD}.body.kvlistValue.values[0].value.arrayValue.values[0].doubleValue: invalid number string "x""#
            ),
        ),
        (
            json!({"attributes": [{"key": "k", "value": {"boolValue": 0}}]}),
            format!("{RECORD}.attributes[0].value.boolValue: expected boolean, got number 0"),
        ),
        (
            json!({"droppedAttributesCount": "1e3"}),
            format!(r#"{RECORD}.droppedAttributesCount: invalid integer string "1e3""#),
        ),
        (
            json!({"flags": -1}),
            format!("{RECORD}.flags: -1 is out of range for uint32"),
        ),
        (
            json!({"eventName": 1}),
            format!("{RECORD}.eventName: expected string, got number 1"),
        ),
    ];
    for (record, expected) in cases {
        assert_eq!(logs_err(&record_doc(record)), expected);
    }
    assert_eq!(
        logs_err(r#"{"resourceLogs": 1}"#),
        "resourceLogs: expected array, got number 1"
    );
    assert_eq!(
        logs_err(r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": {}}]}]}"#),
        "resourceLogs[0].scopeLogs[0].logRecords: expected array, got object"
    );
    assert_eq!(
        logs_err(r#"{"resourceLogs": [{"scopeLogs": [{"scope": {"attributes": 1}}]}]}"#),
        "resourceLogs[0].scopeLogs[0].scope.attributes: expected array, got number 1"
    );
}

#[test]
fn invalid_json_syntax() {
    for bad in [
        "",
        " ",
        "{",
        "{\"resourceSpans\": [}",
        "{} x",
        "{'a': 1}",
        "{\"a\": 01}",
        "\u{feff}{}",
        "{\"a\": NaN}",
        "{\"a\": \"\\x\"}",
    ] {
        let err = decode_traces(bad.as_bytes()).unwrap_err();
        assert_eq!(err.path(), "", "{bad:?}");
        assert!(
            err.message().starts_with("invalid JSON: "),
            "{bad:?}: {err}"
        );
    }
    let err = decode_logs(b"{\"a\": \"\xff\"}").unwrap_err();
    assert!(err.message().starts_with("invalid JSON: "), "{err}");
}

#[test]
fn error_messages_escape_input() {
    let err = trace_err(&span_doc(json!({"traceId": "\u{1b}[31m\"\n"})));
    assert_eq!(
        err,
        format!(r#"{SPAN}.traceId: invalid hex string "\u{{1b}}[31m\"\n""#)
    );
    // Truncation respects char boundaries.
    let err = trace_err(&span_doc(json!({"traceId": "é".repeat(50)})));
    assert!(
        err.ends_with(&format!("\"{}...\"", "é".repeat(40))),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Nesting depth
// ---------------------------------------------------------------------------

/// An AnyValue with `levels` nested arrayValue/kvlistValue (alternating).
fn nested(levels: usize) -> Value {
    let mut v = json!({"stringValue": "leaf"});
    for i in 0..levels {
        v = if i % 2 == 0 {
            json!({"arrayValue": {"values": [v]}})
        } else {
            json!({"kvlistValue": {"values": [{"key": "k", "value": v}]}})
        };
    }
    v
}

fn depth_of(v: &AnyValue) -> usize {
    match &v.value {
        Some(V::ArrayValue(a)) => 1 + a.values.iter().map(depth_of).max().unwrap_or(0),
        Some(V::KvlistValue(l)) => {
            1 + l
                .values
                .iter()
                .filter_map(|kv| kv.value.as_ref())
                .map(depth_of)
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

#[test]
fn any_value_depth_cap() {
    // Built directly as a Value: a JSON document this deep would hit
    // serde_json's recursion limit first.
    let ok = any_value(&nested(MAX_ANY_VALUE_DEPTH), &Path::Root, 0).unwrap();
    assert_eq!(depth_of(&ok), MAX_ANY_VALUE_DEPTH);

    let err = any_value(&nested(MAX_ANY_VALUE_DEPTH + 1), &Path::Root, 0).unwrap_err();
    assert_eq!(
        err.message(),
        "AnyValue nesting exceeds the maximum depth of 64"
    );
    assert!(
        err.path()
            .starts_with("arrayValue.values[0].kvlistValue.values[0].value."),
        "{err}"
    );
    assert!(err.path().ends_with("arrayValue"), "{err}");
    assert_eq!(err.path().matches("Value").count(), MAX_ANY_VALUE_DEPTH + 1);
}

#[test]
fn deep_json_is_rejected_without_panicking() {
    // Moderately deep AnyValues decode fine.
    let req = traces(&attr_doc(nested(20)));
    assert_eq!(
        depth_of(first_span(&req).attributes[0].value.as_ref().unwrap()),
        20
    );

    // Deeper ones trip serde_json's recursion limit.
    let err = decode_traces(attr_doc(nested(100)).as_bytes()).unwrap_err();
    assert!(err.message().contains("recursion limit"), "{err}");

    // Pathological nesting of raw arrays/objects.
    let deep = "[".repeat(100_000);
    assert!(decode_traces(deep.as_bytes()).is_err());
    let deep = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    assert!(decode_logs(deep.as_bytes()).is_err());
}

// ---------------------------------------------------------------------------
// Robustness: decoding arbitrary input never panics
// ---------------------------------------------------------------------------

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn json_pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                json_pointers(item, format!("{prefix}/{i}"), out);
            }
        }
        Value::Object(members) => {
            for (k, item) in members {
                let k = k.replace('~', "~0").replace('/', "~1");
                json_pointers(item, format!("{prefix}/{k}"), out);
            }
        }
        _ => {}
    }
    out.push(prefix);
}

/// `full_traces()` with each kind of AnyValue appearing only once, to keep
/// the per-node tests fast.
fn fuzz_traces() -> ExportTraceServiceRequest {
    let mut req = full_traces();
    let rs = &mut req.resource_spans[0];
    rs.resource.as_mut().unwrap().attributes.truncate(1);
    rs.scope_spans[0].spans.truncate(2);
    req
}

fn fuzz_logs() -> ExportLogsServiceRequest {
    let mut req = full_logs();
    let rl = &mut req.resource_logs[0];
    rl.resource.as_mut().unwrap().attributes.truncate(1);
    rl.scope_logs[0].log_records[0].body = Some(any(V::StringValue("b".into())));
    req
}

/// Decodes; whatever decodes successfully must re-encode stably.
fn check_traces(bytes: &[u8]) {
    if let Ok(req) = decode_traces(bytes) {
        let json = encode_traces(&req);
        assert_eq!(encode_traces(&decode_traces(&json).unwrap()), json);
    }
}

fn check_logs(bytes: &[u8]) {
    if let Ok(req) = decode_logs(bytes) {
        let json = encode_logs(&req);
        assert_eq!(encode_logs(&decode_logs(&json).unwrap()), json);
    }
}

#[test]
fn every_node_replaced_by_every_type() {
    let replacements = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!("NaN"),
        json!([]),
        json!([{}]),
        json!({}),
        json!({"values": [1]}),
    ];
    let docs = [
        (
            serde_json::from_slice::<Value>(&encode_traces(&fuzz_traces())).unwrap(),
            check_traces as fn(&[u8]),
        ),
        (
            serde_json::from_slice::<Value>(&encode_logs(&fuzz_logs())).unwrap(),
            check_logs,
        ),
    ];
    for (doc, decode) in docs {
        let mut pointers = Vec::new();
        json_pointers(&doc, String::new(), &mut pointers);
        assert!(pointers.len() > 100, "{}", pointers.len());
        for ptr in &pointers {
            for r in &replacements {
                let mut mutated = doc.clone();
                *mutated.pointer_mut(ptr).unwrap() = r.clone();
                decode(mutated.to_string().as_bytes());
            }
        }
    }
}

#[test]
fn random_byte_mutations_and_truncations() {
    let docs = [
        (encode_traces(&fuzz_traces()), check_traces as fn(&[u8])),
        (encode_logs(&fuzz_logs()), check_logs),
    ];
    let alphabet = b"{}[]:,\"\\0123456789-+.eEnulltrufasNI xzAF_=/";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (json, check) in docs {
        for len in 0..json.len() {
            check(&json[..len]);
        }
        for _ in 0..2000 {
            let mut mutated = json.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(mutated.len());
                match rng.below(3) {
                    0 => mutated[i] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        mutated.remove(i);
                    }
                    _ => mutated.insert(i, alphabet[rng.below(alphabet.len())]),
                }
            }
            check_traces(&mutated);
            check_logs(&mutated);
            let _ = decode_trace_response(&mutated);
            let _ = decode_logs_response(&mutated);
            let _ = decode_status(&mutated);
        }
    }
}

// ---------------------------------------------------------------------------
// Responses and Status
// ---------------------------------------------------------------------------

#[test]
fn trace_response_round_trip() {
    let ok = ExportTraceServiceResponse::default();
    assert_eq!(encode_trace_response(&ok), b"{}");
    assert_eq!(decode_trace_response(b"{}").unwrap(), ok);

    let partial = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 3,
            error_message: "3 spans had invalid ids".into(),
        }),
    };
    let json = encode_trace_response(&partial);
    assert_eq!(
        String::from_utf8(json.clone()).unwrap(),
        r#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"3 spans had invalid ids"}}"#
    );
    assert_eq!(decode_trace_response(&json).unwrap(), partial);

    let empty_partial = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess::default()),
    };
    assert_eq!(
        encode_trace_response(&empty_partial),
        br#"{"partialSuccess":{}}"#
    );
    assert_eq!(
        decode_trace_response(&encode_trace_response(&empty_partial)).unwrap(),
        empty_partial
    );

    assert_eq!(
        decode_trace_response(br#"{"partialSuccess":{"rejectedSpans":"x"}}"#)
            .unwrap_err()
            .to_string(),
        r#"partialSuccess.rejectedSpans: invalid integer string "x""#
    );
    assert_eq!(
        decode_trace_response(br#"{"partialSuccess":{"errorMessage":1}}"#)
            .unwrap_err()
            .to_string(),
        "partialSuccess.errorMessage: expected string, got number 1"
    );
}

#[test]
fn logs_response_round_trip() {
    assert_eq!(
        encode_logs_response(&ExportLogsServiceResponse::default()),
        b"{}"
    );
    let partial = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: -1,
            error_message: "quota \"exceeded\"".into(),
        }),
    };
    let json = encode_logs_response(&partial);
    assert_eq!(
        String::from_utf8(json.clone()).unwrap(),
        r#"{"partialSuccess":{"rejectedLogRecords":"-1","errorMessage":"quota \"exceeded\""}}"#
    );
    assert_eq!(decode_logs_response(&json).unwrap(), partial);
    assert_eq!(
        decode_logs_response(br#"{"partialSuccess":[]}"#)
            .unwrap_err()
            .to_string(),
        "partialSuccess: expected object, got array"
    );
}

#[test]
fn status_json() {
    let status = Status::new(code::INVALID_ARGUMENT, "bad \"request\"");
    let json = encode_status(&status);
    assert_eq!(
        String::from_utf8(json.clone()).unwrap(),
        r#"{"code":3,"message":"bad \"request\""}"#
    );
    assert_eq!(decode_status(&json).unwrap(), status);
    assert_eq!(
        encode_status(&Status::default()),
        br#"{"code":0,"message":""}"#
    );

    let with_details = Status {
        code: code::UNAVAILABLE,
        message: "later".into(),
        details: vec![Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: vec![0x0a, 0x02, 0x08, 0x05],
        }],
    };
    let json = encode_status(&with_details);
    assert_eq!(
        String::from_utf8(json.clone()).unwrap(),
        r#"{"code":14,"message":"later","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","value":"CgIIBQ=="}]}"#
    );
    assert_eq!(decode_status(&json).unwrap(), with_details);

    // Details in their canonical (embedded-JSON) form keep only the type.
    let decoded = decode_status(
        br#"{"code":"8","message":"m","details":[{"@type":"t","retryDelay":"1s"}],"extra":1}"#,
    )
    .unwrap();
    assert_eq!(decoded.code, code::RESOURCE_EXHAUSTED);
    assert_eq!(
        decoded.details,
        vec![Any {
            type_url: "t".into(),
            value: vec![]
        }]
    );
    assert_eq!(
        decode_status(br#"{"code":"x"}"#).unwrap_err().to_string(),
        r#"code: invalid integer string "x""#
    );
    assert_eq!(
        decode_status(br#"{"details":{}}"#).unwrap_err().to_string(),
        "details: expected array, got object"
    );
}
