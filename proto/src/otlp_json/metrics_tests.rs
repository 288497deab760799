//! The OTLP/JSON codec on metrics: the specification's example, every point type, and the
//! encodings that differ from traces and logs (oneof values, optional doubles, 64-bit
//! integer lists, exemplar ids).

use prost::Message;
use serde_json::{json, Value};

use super::*;
use crate::collector::metrics::v1::ExportMetricsPartialSuccess;
use crate::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};

/// opentelemetry-proto `examples/metrics.json` (its histogram's three buckets for one bound
/// are kept as written: the codec carries what it is given; the data model check is
/// `validate::drop_malformed_metrics`'s).
const SPEC_METRICS: &str = r#"{
  "resourceMetrics": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeMetrics": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "metrics": [
        {"name": "my.counter", "unit": "1", "description": "I`m a Counter",
         "sum": {"aggregationTemporality": 1, "isMonotonic": true,
                 "dataPoints": [{"asDouble": 5, "startTimeUnixNano": 1544712660300000000,
                                 "timeUnixNano": 1544712660300000000,
                                 "attributes": [{"key": "my.counter.attr", "value": {"stringValue": "some value"}}]}]}},
        {"name": "my.gauge", "unit": "1", "description": "I`m a Gauge",
         "gauge": {"dataPoints": [{"asDouble": 10, "timeUnixNano": 1544712660300000000,
                                   "attributes": [{"key": "my.gauge.attr", "value": {"stringValue": "some value"}}]}]}},
        {"name": "my.histogram", "unit": "1", "description": "I`m a Histogram",
         "histogram": {"aggregationTemporality": 1,
                       "dataPoints": [{"startTimeUnixNano": 1544712660300000000, "timeUnixNano": 1544712660300000000,
                                       "count": 3, "sum": 3, "bucketCounts": [1,1,1], "explicitBounds": [1],
                                       "min": 1, "max": 1,
                                       "attributes": [{"key": "my.histogram.attr", "value": {"stringValue": "some value"}}]}]}}
      ]
    }]
  }]
}"#;

fn metrics_of(req: &ExportMetricsServiceRequest) -> &[Metric] {
    &req.resource_metrics[0].scope_metrics[0].metrics
}

#[test]
fn the_specification_example_decodes() {
    let req = decode_metrics(SPEC_METRICS.as_bytes()).unwrap();
    let metrics = metrics_of(&req);
    assert_eq!(metrics.len(), 3);
    let Some(Data::Sum(sum)) = &metrics[0].data else {
        panic!("a sum")
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsDouble(5.0))
    );
    assert_eq!(sum.data_points[0].start_time_unix_nano, 1544712660300000000);
    let Some(Data::Histogram(h)) = &metrics[2].data else {
        panic!("a histogram")
    };
    let p = &h.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (3, Some(3.0), Some(1.0), Some(1.0))
    );
    assert_eq!(
        (p.bucket_counts.as_slice(), p.explicit_bounds.as_slice()),
        (&[1, 1, 1][..], &[1.0][..])
    );
    // And back: the same request.
    let again = decode_metrics(&encode_metrics(&req)).unwrap();
    assert_eq!(again, req);
}

fn every_point_type() -> ExportMetricsServiceRequest {
    let exemplar = Exemplar {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        time_unix_nano: u64::MAX,
        value: Some(exemplar::Value::AsInt(0)),
        ..Default::default()
    };
    let metrics = vec![
        Metric {
            name: "gauge".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![
                    NumberDataPoint {
                        value: Some(number_data_point::Value::AsDouble(0.0)),
                        ..Default::default()
                    },
                    NumberDataPoint {
                        value: Some(number_data_point::Value::AsDouble(f64::NEG_INFINITY)),
                        flags: 1,
                        ..Default::default()
                    },
                ],
            })),
            ..Default::default()
        },
        Metric {
            name: "updown".into(),
            unit: "{request}".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    value: Some(number_data_point::Value::AsInt(i64::MIN)),
                    exemplars: vec![exemplar.clone()],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
                is_monotonic: false,
            })),
            ..Default::default()
        },
        Metric {
            name: "histogram".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: u64::MAX,
                    sum: Some(0.0),
                    bucket_counts: vec![0, u64::MAX],
                    explicit_bounds: vec![-0.5],
                    min: Some(f64::NAN),
                    max: None,
                    exemplars: vec![Exemplar {
                        value: Some(exemplar::Value::AsDouble(f64::INFINITY)),
                        ..exemplar.clone()
                    }],
                    ..Default::default()
                }],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        },
        Metric {
            name: "exponential".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    count: 4,
                    scale: -3,
                    zero_count: 1,
                    zero_threshold: 1e-300,
                    positive: Some(Buckets {
                        offset: -7,
                        bucket_counts: vec![1, 2],
                    }),
                    negative: Some(Buckets::default()),
                    sum: Some(-2.5),
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "summary".into(),
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    count: 2,
                    sum: 3.25,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.0,
                            value: 1.0,
                        },
                        ValueAtQuantile {
                            quantile: 1.0,
                            value: 2.25,
                        },
                    ],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
        // A metric without data, which decodes as one.
        Metric {
            name: "empty".into(),
            ..Default::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn every_point_type_round_trips_exactly() {
    let req = every_point_type();
    let json = encode_metrics(&req);
    let again = decode_metrics(&json).unwrap();
    // Compared as protobuf: NaN is not equal to itself.
    assert_eq!(again.encode_to_vec(), req.encode_to_vec());
    assert_eq!(encode_metrics(&again), json);
}

#[test]
fn the_encoding_follows_the_specification() {
    let doc: Value = serde_json::from_slice(&encode_metrics(&every_point_type())).unwrap();
    let m = &doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
    // A oneof value of 0 is written; 64-bit integers are strings; non-finite doubles are
    // the spec's strings.
    assert_eq!(m[0]["gauge"]["dataPoints"][0], json!({"asDouble": 0.0}));
    assert_eq!(
        m[0]["gauge"]["dataPoints"][1],
        json!({"asDouble": "-Infinity", "flags": 1})
    );
    let point = &m[1]["sum"]["dataPoints"][0];
    assert_eq!(point["asInt"], json!("-9223372036854775808"));
    // Exemplar ids are hex, not base64.
    assert_eq!(
        point["exemplars"][0],
        json!({"timeUnixNano": "18446744073709551615", "asInt": "0",
               "spanId": "0102030405060708", "traceId": "0102030405060708090a0b0c0d0e0f10"})
    );
    assert_eq!(m[1]["sum"]["aggregationTemporality"], json!(2));
    assert!(m[1]["sum"].get("isMonotonic").is_none());
    let h = &m[2]["histogram"]["dataPoints"][0];
    // A present optional double is written even when 0; an absent one is not.
    assert_eq!(h["sum"], json!(0.0));
    assert_eq!(h["min"], json!("NaN"));
    assert!(h.get("max").is_none());
    assert_eq!(h["bucketCounts"], json!(["0", "18446744073709551615"]));
    assert_eq!(h["explicitBounds"], json!([-0.5]));
    assert_eq!(h["exemplars"][0]["asDouble"], json!("Infinity"));
    let e = &m[3]["exponentialHistogram"]["dataPoints"][0];
    assert_eq!(e["scale"], json!(-3));
    assert_eq!(
        e["positive"],
        json!({"offset": -7, "bucketCounts": ["1", "2"]})
    );
    assert_eq!(e["negative"], json!({}));
    assert_eq!(e["zeroThreshold"], json!(1e-300));
    let q = &m[4]["summary"]["dataPoints"][0]["quantileValues"];
    assert_eq!(
        q,
        &json!([{"value": 1.0}, {"quantile": 1.0, "value": 2.25}])
    );
    assert_eq!(m[5], json!({"name": "empty"}));
}

#[test]
fn proto_names_numbers_and_enum_names_are_accepted() {
    let doc = r#"{"resource_metrics":[{"scope_metrics":[{"metrics":[
        {"name":"h","exponential_histogram":{"aggregation_temporality":"AGGREGATION_TEMPORALITY_CUMULATIVE",
          "data_points":[{"count":"3","zero_count":3,"scale":"2","sum":null,"start_time_unix_nano":"17",
                          "time_unix_nano":18,"zero_threshold":"Infinity"}]}},
        {"name":"s","sum":{"is_monotonic":true,"data_points":[{"as_int":7,
          "exemplars":[{"trace_id":"0102030405060708090A0B0C0D0E0F10","span_id":"","as_double":"NaN",
                        "filtered_attributes":[{"key":"k","value":{"intValue":"1"}}]}]}]}}
    ]}]}]}"#;
    let req = decode_metrics(doc.as_bytes()).unwrap();
    let metrics = metrics_of(&req);
    let Some(Data::ExponentialHistogram(h)) = &metrics[0].data else {
        panic!("an exponential histogram")
    };
    assert_eq!(h.aggregation_temporality, 2);
    let p = &h.data_points[0];
    assert_eq!((p.count, p.zero_count, p.scale, p.sum), (3, 3, 2, None));
    assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (17, 18));
    assert_eq!(p.zero_threshold, f64::INFINITY);
    let Some(Data::Sum(s)) = &metrics[1].data else {
        panic!("a sum")
    };
    let e = &s.data_points[0].exemplars[0];
    assert_eq!(e.trace_id, (1..=16).collect::<Vec<u8>>());
    assert!(e.span_id.is_empty());
    assert!(matches!(e.value, Some(exemplar::Value::AsDouble(v)) if v.is_nan()));
    assert_eq!(e.filtered_attributes.len(), 1);
}

#[test]
fn malformed_documents_name_the_field() {
    let cases = [
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{},"sum":{}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].sum: Metric must have at most one of its oneof fields set",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asInt":"1","asDouble":2}]}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asInt: NumberDataPoint must have at most one of its oneof fields set",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[{"exemplars":[{"traceId":"abc"}]}]}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].exemplars[0].traceId: invalid hex string \"abc\"",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"histogram":{"dataPoints":[{"bucketCounts":["1","-1"]}]}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].bucketCounts[1]: -1 is out of range for uint64",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"histogram":{"dataPoints":[{"sum":"inf"}]}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].sum: invalid number string \"inf\"",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"aggregationTemporality":"SOMETIMES"}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality: unknown enum value \"SOMETIMES\"",
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(
            decode_metrics(doc.as_bytes()).unwrap_err().to_string(),
            expected
        );
    }
}

#[test]
fn responses_carry_the_rejected_data_points() {
    let response = ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 3,
            error_message: "bad".into(),
        }),
    };
    let json = encode_metrics_response(&response);
    assert_eq!(
        serde_json::from_slice::<Value>(&json).unwrap(),
        json!({"partialSuccess": {"rejectedDataPoints": "3", "errorMessage": "bad"}})
    );
    assert_eq!(decode_metrics_response(&json).unwrap(), response);
    assert_eq!(
        encode_metrics_response(&ExportMetricsServiceResponse::default()),
        b"{}"
    );
}
