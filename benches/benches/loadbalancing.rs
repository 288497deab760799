//! The `loadbalancing` exporter's hot path: cutting a sidecar's mixed batch into one request
//! per gateway, per span, by trace id — on the wire (what the exporter does) against decoding
//! with prost, regrouping and encoding again (what a decode-based exporter would do); and an
//! SDK's metrics export cut per data point by stream (`routing_key: streamID`, the most
//! cutting a metrics key does) or per metric by name.
//!
//! `cargo bench -p weft-benches --bench loadbalancing`

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use weft::exporters::loadbalancing::route::{self, RecordKey, RoutingKey, Split};
use weft::exporters::loadbalancing::Ring;
use weft_config::SignalKind;
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::metrics::v1::{
    metric, number_data_point, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// 512 spans of 64 traces, interleaved as a sidecar's batch holds them, with the attributes
/// an HTTP server span carries.
fn sidecar_batch() -> Vec<u8> {
    let attr = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let spans = (0..512u32)
        .map(|i| {
            let t = i % 64;
            let mut trace_id = vec![0u8; 16];
            trace_id[..4].copy_from_slice(&t.to_be_bytes());
            trace_id[8..12].copy_from_slice(&t.wrapping_mul(2_654_435_761).to_le_bytes());
            Span {
                trace_id,
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                parent_span_id: vec![7; 8],
                name: "GET /api/orders/{id}".into(),
                kind: 2,
                start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i),
                end_time_unix_nano: 1_700_000_000_050_000_000 + u64::from(i),
                attributes: vec![
                    attr("http.request.method", "GET"),
                    attr("http.route", "/api/orders/{id}"),
                    attr("url.path", "/api/orders/12345"),
                    attr("server.address", "orders.internal"),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name", "orders"),
                    attr("k8s.pod.name", "orders-7d9f"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.flask".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn bench(c: &mut Criterion) {
    let body = sidecar_batch();
    let ring = Ring::new(&["gw-0:4317".into(), "gw-1:4317".into(), "gw-2:4317".into()]);
    let layout = route::layout(SignalKind::Traces).unwrap();
    let mut group = c.benchmark_group("loadbalancing_split_512_spans_3_backends");
    group.throughput(Throughput::Elements(512));
    group.bench_function("wire", |b| {
        b.iter(|| {
            let split = route::split(&body, layout, RoutingKey::TraceId, |key| match key {
                RecordKey::Key(k) => ring.owner(k).unwrap_or(0),
                RecordKey::None => 0,
            });
            match split {
                Ok(Split::Parts(parts)) => parts.len(),
                _ => unreachable!("64 traces reach every backend"),
            }
        })
    });
    group.bench_function("decode_regroup_encode", |b| {
        b.iter(|| {
            let req = ExportTraceServiceRequest::decode(&body[..]).unwrap();
            let mut out: HashMap<usize, ExportTraceServiceRequest> = HashMap::new();
            for rs in req.resource_spans {
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        let d = ring.owner(&span.trace_id).unwrap_or(0);
                        let r = out.entry(d).or_default();
                        if r.resource_spans.is_empty() {
                            r.resource_spans.push(ResourceSpans {
                                resource: rs.resource.clone(),
                                schema_url: rs.schema_url.clone(),
                                scope_spans: vec![ScopeSpans {
                                    scope: ss.scope.clone(),
                                    schema_url: ss.schema_url.clone(),
                                    spans: Vec::new(),
                                }],
                            });
                        }
                        r.resource_spans[0].scope_spans[0].spans.push(span);
                    }
                }
            }
            out.values().map(|r| r.encode_to_vec().len()).sum::<usize>()
        })
    });
    group.finish();
}

/// An SDK's export: one resource, 16 metrics (8 counters, 8 histograms) of 32 attribute sets
/// each, 512 data points.
fn sdk_metrics_export() -> Vec<u8> {
    let attr = |k: &str, v: String| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        ..Default::default()
    };
    let attrs = |p: u32| {
        vec![
            attr("http.route", format!("/api/{p}")),
            attr("region", "eu".into()),
        ]
    };
    let metrics = (0..16u32)
        .map(|m| Metric {
            name: format!("app.metric.{m}"),
            unit: "s".into(),
            data: Some(if m % 2 == 0 {
                metric::Data::Sum(Sum {
                    data_points: (0..32)
                        .map(|p| NumberDataPoint {
                            attributes: attrs(p),
                            time_unix_nano: 1_700_000_000_000_000_000,
                            value: Some(number_data_point::Value::AsInt(i64::from(p))),
                            ..Default::default()
                        })
                        .collect(),
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })
            } else {
                metric::Data::Histogram(Histogram {
                    data_points: (0..32)
                        .map(|p| HistogramDataPoint {
                            attributes: attrs(p),
                            time_unix_nano: 1_700_000_000_000_000_000,
                            count: 3,
                            bucket_counts: vec![1, 1, 1, 0],
                            explicit_bounds: vec![0.1, 1.0, 10.0],
                            ..Default::default()
                        })
                        .collect(),
                    aggregation_temporality: 2,
                })
            }),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name", "orders".into()),
                    attr("k8s.pod.name", "orders-7d9f".into()),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn bench_metrics(c: &mut Criterion) {
    let body = sdk_metrics_export();
    let ring = Ring::new(&["gw-0:4317".into(), "gw-1:4317".into(), "gw-2:4317".into()]);
    let layout = route::layout(SignalKind::Metrics).unwrap();
    let mut group = c.benchmark_group("loadbalancing_split_512_metric_points_3_backends");
    group.throughput(Throughput::Elements(512));
    for key in [RoutingKey::StreamId, RoutingKey::Metric] {
        group.bench_function(key.name(), |b| {
            b.iter(|| {
                let split = route::split(&body, layout, key, |k| match k {
                    RecordKey::Key(k) => ring.owner(k).unwrap_or(0),
                    RecordKey::None => 0,
                });
                match split {
                    Ok(Split::Parts(parts)) => parts.len(),
                    _ => unreachable!("the streams and names reach every backend"),
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_metrics);
criterion_main!(benches);
