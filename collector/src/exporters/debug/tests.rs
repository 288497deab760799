//! The debug exporter's output, captured in a buffer instead of stdout.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use parking_lot::Mutex;
use weft_config::{decode_component, ConfigPath, Diagnostics, Kind, SignalKind};
use weft_proto::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::span::{Event, Link};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::format::{go_time, plain, render, typed};
use super::*;
use crate::pipeline::{Logs, Traces};
use crate::telemetry::Telemetry;

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v,
        ..Default::default()
    }
}

fn sample_traces() -> Traces {
    Traces::from(
        weft_proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("checkout"))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "io.weft.http".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    spans: vec![Span {
                        trace_id: vec![0xab; 16],
                        span_id: vec![0x01; 8],
                        parent_span_id: vec![0x02; 8],
                        name: "GET /cart".into(),
                        kind: 2,
                        start_time_unix_nano: 1_581_452_772_000_000_321,
                        end_time_unix_nano: 1_581_452_773_000_000_000,
                        attributes: vec![kv(
                            "http.status_code",
                            Some(AnyValue {
                                value: Some(any_value::Value::IntValue(500)),
                            }),
                        )],
                        status: Some(Status {
                            code: 2,
                            message: "boom".into(),
                        }),
                        events: vec![Event {
                            name: "exception".into(),
                            time_unix_nano: 1_581_452_772_500_000_000,
                            attributes: vec![kv("exception.message", s("boom"))],
                            ..Default::default()
                        }],
                        links: vec![Link {
                            trace_id: vec![0xcd; 16],
                            span_id: vec![0x03; 8],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )
}

fn sample_logs() -> Logs {
    Logs::from(weft_proto::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("checkout"))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        time_unix_nano: 1_581_452_773_000_000_789,
                        severity_number: 17,
                        severity_text: "ERROR".into(),
                        body: s("payment failed"),
                        attributes: vec![kv("order", s("A-17"))],
                        trace_id: vec![0xab; 16],
                        span_id: vec![0x01; 8],
                        flags: 1,
                        ..Default::default()
                    },
                    LogRecord {
                        severity_number: 9,
                        body: s("outside any span"),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

#[test]
fn basic_is_one_summary_line_per_batch() {
    let out = render(&sample_traces(), Verbosity::Basic, "debug", now());
    assert_eq!(
        out,
        "2024-05-01T12:00:00.000Z\tinfo\tTracesExporter\t{\"kind\": \"exporter\", \"data_type\": \"traces\", \"name\": \"debug\", \"resource spans\": 1, \"spans\": 1}\n"
    );
    let out = render(&sample_logs(), Verbosity::Basic, "debug/x", now());
    assert!(
        out.ends_with("\"name\": \"debug/x\", \"resource logs\": 1, \"log records\": 2}\n"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn normal_is_one_line_per_item() {
    let out = render(&sample_traces(), Verbosity::Normal, "debug", now());
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "ResourceSpans #0 service.name=checkout",
            "ScopeSpans #0 io.weft.http@1.2",
            "GET /cart abababababababababababababababab 0101010101010101 http.status_code=500",
        ]
    );
    let out = render(&sample_logs(), Verbosity::Normal, "debug", now());
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "ResourceLog #0 service.name=checkout",
            "ScopeLogs #0",
            "payment failed abababababababababababababababab 0101010101010101 severity=ERROR order=A-17",
            "outside any span - - severity=Info",
        ]
    );
}

#[test]
fn detailed_prints_every_field() {
    let out = render(&sample_traces(), Verbosity::Detailed, "debug", now());
    for expected in [
        "ResourceSpans #0\nResource SchemaURL: \nResource attributes:\n     -> service.name: Str(checkout)\n",
        "ScopeSpans #0\nScopeSpans SchemaURL: \nInstrumentationScope io.weft.http 1.2\n",
        "Span #0\n    Trace ID       : abababababababababababababababab\n    Parent ID      : 0202020202020202\n    ID             : 0101010101010101\n    Name           : GET /cart\n    Kind           : Server\n",
        "    Start time     : 2020-02-11 20:26:12.000000321 +0000 UTC\n    End time       : 2020-02-11 20:26:13 +0000 UTC\n",
        "    Status code    : Error\n    Status message : boom\n",
        "Attributes:\n     -> http.status_code: Int(500)\n",
        "Events:\nSpanEvent #0\n     -> Name: exception\n     -> Timestamp: 2020-02-11 20:26:12.5 +0000 UTC\n     -> DroppedAttributesCount: 0\n     -> Attributes::\n          -> exception.message: Str(boom)\n",
        "Links:\nSpanLink #0\n     -> Trace ID: cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\n     -> ID: 0303030303030303\n",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
    let out = render(&sample_logs(), Verbosity::Detailed, "debug", now());
    for expected in [
        "ResourceLog #0\n",
        "LogRecord #0\nObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC\nTimestamp: 2020-02-11 20:26:13.000000789 +0000 UTC\nSeverityText: ERROR\nSeverityNumber: Error(17)\nBody: Str(payment failed)\nAttributes:\n     -> order: Str(A-17)\nTrace ID: abababababababababababababababab\nSpan ID: 0101010101010101\nFlags: 1\n",
        "LogRecord #1\n",
        "SeverityNumber: Info(9)\n",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
}

#[test]
fn values_render_as_the_collector_shows_them() {
    let map = AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList {
            values: vec![
                kv("a", s("x")),
                kv(
                    "b",
                    Some(AnyValue {
                        value: Some(any_value::Value::ArrayValue(ArrayValue {
                            values: vec![
                                AnyValue {
                                    value: Some(any_value::Value::BoolValue(true)),
                                },
                                AnyValue {
                                    value: Some(any_value::Value::DoubleValue(1.5)),
                                },
                            ],
                        })),
                    }),
                ),
            ],
        })),
    };
    assert_eq!(typed(Some(&map)), r#"Map({"a":"x","b":[true,1.5]})"#);
    let bytes = AnyValue {
        value: Some(any_value::Value::BytesValue(b"hello".to_vec())),
    };
    assert_eq!(typed(Some(&bytes)), "Bytes(aGVsbG8=)");
    assert_eq!(typed(None), "Empty()");
    assert_eq!(typed(Some(&AnyValue::default())), "Empty()");
    assert_eq!(plain(&s("plain text").unwrap()), "plain text");
    assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(go_time(1_500_000_000), "1970-01-01 00:00:01.5 +0000 UTC");
}

/// A shared buffer standing in for stdout.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn decode(yaml: &str) -> Result<Config, Diagnostics> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("debug");
    match decode_component::<Config>(&value, &path, &mut diags) {
        Some(c) if !diags.has_errors() => Ok(c),
        _ => Err(diags),
    }
}

#[tokio::test]
async fn the_exporter_writes_each_batch_and_counts_it() {
    let t = Telemetry::new();
    let ctx = BuildContext::standalone("debug", Kind::Exporter).with_telemetry(&t);
    let out = Captured::default();
    let cfg = decode("verbosity: normal").unwrap();
    let built = DebugExporter::build(
        &ctx,
        &cfg,
        &[SignalKind::Traces, SignalKind::Logs],
        Box::new(out.clone()),
    )
    .unwrap();
    built
        .consumers
        .get::<Traces>()
        .unwrap()
        .consume(sample_traces())
        .await
        .unwrap();
    built
        .consumers
        .get::<Logs>()
        .unwrap()
        .consume(sample_logs())
        .await
        .unwrap();
    let text = String::from_utf8(out.0.lock().clone()).unwrap();
    assert!(text.contains("TracesExporter"), "{text}");
    assert!(text.contains("GET /cart abab"), "{text}");
    assert!(text.contains("payment failed abab"), "{text}");
    assert_eq!(
        t.counter_value("otelcol_exporter_sent_spans", &[("exporter", "debug")]),
        1
    );
    assert_eq!(
        t.counter_value(
            "otelcol_exporter_sent_log_records",
            &[("exporter", "debug")]
        ),
        2
    );
}

#[test]
fn sampling_follows_zap_per_second() {
    let start = Instant::now();
    let mut s = Sampler::new(2, 3);
    let admitted: Vec<bool> = (0..8).map(|_| s.admit(start)).collect();
    // The first two, then every third.
    assert_eq!(
        admitted,
        [true, true, false, false, true, false, false, true]
    );
    // A new second starts over.
    assert!(s.admit(start + Duration::from_secs(1)));
    let mut none_after = Sampler::new(1, 0);
    assert!(none_after.admit(start));
    assert!(!none_after.admit(start));
}

#[test]
fn config_defaults_and_keys() {
    let c = decode("{}").unwrap();
    assert_eq!(c.verbosity, Verbosity::Basic);
    assert_eq!((c.sampling_initial, c.sampling_thereafter), (2, 1));
    assert_eq!(
        decode("verbosity: detailed").unwrap().verbosity,
        Verbosity::Detailed
    );
    let bad = decode("verbosity: loud").unwrap_err().to_string();
    assert!(
        bad.contains("exporters::debug") && bad.contains("loud"),
        "{bad}"
    );
    let mut diags = Diagnostics::new();
    let value: serde_yaml::Value = serde_yaml::from_str("use_internal_logger: true").unwrap();
    decode_component::<Config>(&value, &ConfigPath::root(), &mut diags).unwrap();
    assert_eq!(diags.warnings().count(), 1, "{diags}");
}

fn sample_metrics() -> crate::pipeline::Metrics {
    use weft_proto::metrics::v1::{
        metric::Data, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    let number = |v: i64, attrs: Vec<KeyValue>| NumberDataPoint {
        attributes: attrs,
        time_unix_nano: 1_581_452_773_000_000_000,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    };
    crate::pipeline::Metrics::from(
        weft_proto::collector::metrics::v1::ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("checkout"))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "http.requests".into(),
                            unit: "{request}".into(),
                            data: Some(Data::Sum(Sum {
                                data_points: vec![
                                    number(7, vec![kv("route", s("/cart"))]),
                                    number(2, vec![kv("route", s("/pay"))]),
                                ],
                                aggregation_temporality: 2,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "queue.depth".into(),
                            data: Some(Data::Gauge(Gauge {
                                data_points: vec![number(3, vec![])],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "latency".into(),
                            unit: "ms".into(),
                            data: Some(Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    count: 3,
                                    sum: Some(12.5),
                                    bucket_counts: vec![1, 2],
                                    explicit_bounds: vec![5.0],
                                    ..Default::default()
                                }],
                                aggregation_temporality: 1,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )
}

#[test]
fn metrics_print_as_the_collector_prints_them() {
    let out = render(&sample_metrics(), Verbosity::Basic, "debug", now());
    assert_eq!(
        out,
        "2024-05-01T12:00:00.000Z\tinfo\tMetricsExporter\t{\"kind\": \"exporter\", \"data_type\": \"metrics\", \"name\": \"debug\", \"resource metrics\": 1, \"metrics\": 3, \"data points\": 4}\n"
    );
    let out = render(&sample_metrics(), Verbosity::Normal, "debug", now());
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "ResourceMetrics #0 service.name=checkout",
            "ScopeMetrics #0",
            "http.requests{route=/cart} 7",
            "http.requests{route=/pay} 2",
            "queue.depth 3",
            "latency count=3 sum=12.5 le5=1 inf=2",
        ]
    );
    let out = render(&sample_metrics(), Verbosity::Detailed, "debug", now());
    for expected in [
        "Metric #0\nDescriptor:\n     -> Name: http.requests\n     -> Description: \n     -> Unit: {request}\n     -> DataType: Sum\n     -> IsMonotonic: true\n     -> AggregationTemporality: Cumulative\nNumberDataPoints #0\nData point attributes:\n     -> route: Str(/cart)\n",
        "Timestamp: 2020-02-11 20:26:13 +0000 UTC\nValue: 7\n",
        "     -> DataType: Histogram\n     -> AggregationTemporality: Delta\nHistogramDataPoints #0\n",
        "Count: 3\nSum: 12.5\nExplicitBounds #0: 5\nBuckets #0, Count: 1\nBuckets #1, Count: 2\n",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
}
