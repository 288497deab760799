//! The exporter's store and exposition: names and labels as the Collector writes them,
//! accumulation, bounds, escaping, and the scrape endpoint.

use std::time::{Duration, Instant};

use weft_config::{decode_component, ConfigPath, Diagnostics, Kind as ComponentKind};
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use weft_proto::resource::v1::Resource;

use super::expose::{render, Exposition};
use super::store::{Naming, Store, StoreMetrics};
use super::*;
use crate::telemetry::Telemetry;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("service.namespace", "shop"),
                    kv("service.instance.id", "pod-1"),
                    kv("host.name", "node-7"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "spanmetricsconnector".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn sum(name: &str, monotonic: bool, temporality: i32, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: "how many".into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn point(v: i64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    }
}

struct Setup {
    store: Store,
    naming: Naming,
    metrics: StoreMetrics,
    telemetry: Telemetry,
    max_series: usize,
}

fn setup(naming: Naming) -> Setup {
    let telemetry = Telemetry::new();
    Setup {
        store: Store::default(),
        naming,
        metrics: StoreMetrics::new(&telemetry, "prometheus"),
        telemetry,
        max_series: 100,
    }
}

fn naming() -> Naming {
    Naming {
        namespace: String::new(),
        const_labels: Default::default(),
        suffixes: true,
        resource_to_labels: false,
        exemplars: false,
    }
}

impl Setup {
    fn update(&mut self, req: &ExportMetricsServiceRequest) {
        self.store.update(
            req,
            &self.naming,
            self.max_series,
            &self.metrics,
            Instant::now(),
        );
    }

    fn render(self) -> (String, Telemetry) {
        let exposition = Exposition {
            store: std::sync::Arc::new(parking_lot::Mutex::new(self.store)),
            expiration: Duration::from_secs(300),
            exemplars: self.naming.exemplars,
        };
        (render(&exposition), self.telemetry)
    }

    fn dropped(&self, reason: &str) -> u64 {
        self.telemetry.counter_value(
            "weft_exporter_prometheus_points_dropped",
            &[("exporter", "prometheus"), ("reason", reason)],
        )
    }
}

#[test]
fn spanmetrics_output_reads_as_the_collector_exposes_it() {
    let mut s = setup(naming());
    let attrs = || {
        vec![
            kv("service.name", "checkout"),
            kv("span.name", "GET /cart"),
            kv("span.kind", "SPAN_KIND_SERVER"),
            kv("status.code", "STATUS_CODE_UNSET"),
        ]
    };
    s.update(&request(vec![
        sum(
            "traces.span.metrics.calls",
            true,
            2,
            vec![point(3, attrs())],
        ),
        Metric {
            name: "traces.span.metrics.duration".into(),
            unit: "ms".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: attrs(),
                    count: 3,
                    sum: Some(57.5),
                    bucket_counts: vec![1, 2, 0],
                    explicit_bounds: vec![2.0, 50.0],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
    ]));
    let (text, _) = s.render();
    let labels = "instance=\"pod-1\",job=\"shop/checkout\",otel_scope_name=\"spanmetricsconnector\",service_name=\"checkout\",span_kind=\"SPAN_KIND_SERVER\",span_name=\"GET /cart\",status_code=\"STATUS_CODE_UNSET\"";
    for expected in [
        "# TYPE traces_span_metrics_calls counter\n".to_string(),
        "# HELP traces_span_metrics_calls how many\n".to_string(),
        format!("traces_span_metrics_calls_total{{{labels}}} 3.0\n"),
        "# TYPE traces_span_metrics_duration_milliseconds histogram\n".to_string(),
        format!("traces_span_metrics_duration_milliseconds_sum{{{labels}}} 57.5\n"),
        format!("traces_span_metrics_duration_milliseconds_count{{{labels}}} 3\n"),
        format!("traces_span_metrics_duration_milliseconds_bucket{{le=\"2.0\",{labels}}} 1\n"),
        format!("traces_span_metrics_duration_milliseconds_bucket{{le=\"50.0\",{labels}}} 3\n"),
        format!("traces_span_metrics_duration_milliseconds_bucket{{le=\"+Inf\",{labels}}} 3\n"),
        // The resource's other attributes, once, on target_info.
        "target_info{host_name=\"node-7\",instance=\"pod-1\",job=\"shop/checkout\"} 1.0\n"
            .to_string(),
        "# EOF\n".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
    }
}

#[test]
fn namespace_const_labels_and_resource_labels() {
    let mut s = setup(Naming {
        namespace: "weft".into(),
        const_labels: [("region".to_string(), "eu".to_string())].into(),
        resource_to_labels: true,
        ..naming()
    });
    s.update(&request(vec![Metric {
        name: "queue.depth".into(),
        unit: "{item}".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point(4, vec![kv("queue", "mail")])],
        })),
        ..Default::default()
    }]));
    let (text, _) = s.render();
    assert!(
        text.contains("weft_queue_depth{host_name=\"node-7\",instance=\"pod-1\",job=\"shop/checkout\",otel_scope_name=\"spanmetricsconnector\",queue=\"mail\",region=\"eu\",service_instance_id=\"pod-1\",service_name=\"checkout\",service_namespace=\"shop\"} 4.0\n"),
        "{text}"
    );
    // Resource attributes on every series: no target_info.
    assert!(!text.contains("target_info"), "{text}");
}

#[test]
fn label_values_cannot_break_the_exposition() {
    let mut s = setup(naming());
    s.update(&request(vec![Metric {
        name: "g".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point(1, vec![kv("path", "a\"b\\c\nd} 99")])],
        })),
        ..Default::default()
    }]));
    let (text, _) = s.render();
    assert!(
        text.contains("path=\"a\\\"b\\\\c\\nd} 99\"} 1.0\n"),
        "{text}"
    );
    // Every sample line is one line.
    assert_eq!(text.lines().filter(|l| l.starts_with("g{")).count(), 1);
}

#[test]
fn deltas_accumulate_and_delta_updown_sums_are_dropped_and_counted() {
    let mut s = setup(naming());
    for _ in 0..3 {
        s.update(&request(vec![
            sum("requests", true, 1, vec![point(5, vec![])]),
            sum("inflight", false, 1, vec![point(2, vec![])]),
            sum("connections", false, 2, vec![point(7, vec![])]),
        ]));
    }
    assert_eq!(s.dropped("delta_updown"), 3);
    let (text, _) = s.render();
    assert!(text.contains("requests_total{instance=\"pod-1\",job=\"shop/checkout\",otel_scope_name=\"spanmetricsconnector\"} 15.0\n"), "{text}");
    assert!(text.contains("# TYPE connections gauge\n"), "{text}");
    assert!(!text.contains("inflight"), "{text}");
}

#[test]
fn a_million_distinct_label_values_stay_within_max_series() {
    let mut s = setup(naming());
    s.max_series = 1000;
    for batch in 0..100 {
        let points = (0..10_000)
            .map(|i| point(1, vec![kv("user", &format!("u{}", batch * 10_000 + i))]))
            .collect();
        s.update(&request(vec![sum("logins", true, 2, points)]));
    }
    assert_eq!(s.store.series_count(), 1000);
    // 999 of the points found room (target_info took one series), the rest are counted.
    assert_eq!(s.dropped("max_series"), 1_000_000 - 999);
    let (text, _) = s.render();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("logins_total{"))
            .count(),
        999
    );
}

#[test]
fn summaries_and_exponential_histograms_are_exposed() {
    let mut s = setup(naming());
    s.update(&request(vec![
        Metric {
            name: "rpc.latency".into(),
            unit: "s".into(),
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    count: 10,
                    sum: 2.5,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.99,
                        value: 0.9,
                    }],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
        Metric {
            name: "payload".into(),
            unit: "By".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    count: 4,
                    sum: Some(13.0),
                    scale: 0,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: 1,
                        bucket_counts: vec![2, 1],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
    ]));
    let (text, _) = s.render();
    let l = "instance=\"pod-1\",job=\"shop/checkout\",otel_scope_name=\"spanmetricsconnector\"";
    for expected in [
        format!("rpc_latency_seconds{{{l},quantile=\"0.99\"}} 0.9\n"),
        format!("rpc_latency_seconds_sum{{{l}}} 2.5\n"),
        format!("rpc_latency_seconds_count{{{l}}} 10.0\n"),
        // Scale 0: bucket 1 is (2, 4], bucket 2 is (4, 8].
        format!("payload_bytes_bucket{{le=\"0.0\",{l}}} 1\n"),
        format!("payload_bytes_bucket{{le=\"4.0\",{l}}} 3\n"),
        format!("payload_bytes_bucket{{le=\"8.0\",{l}}} 4\n"),
        format!("payload_bytes_bucket{{le=\"+Inf\",{l}}} 4\n"),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
    }
}

#[test]
fn counters_carry_exemplars_with_open_metrics() {
    let mut s = setup(Naming {
        exemplars: true,
        ..naming()
    });
    let mut p = point(3, vec![]);
    p.exemplars = vec![Exemplar {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        value: Some(exemplar::Value::AsDouble(12.0)),
        ..Default::default()
    }];
    s.update(&request(vec![sum("calls", true, 2, vec![p])]));
    let (text, _) = s.render();
    assert!(
        text.contains("calls_total{instance=\"pod-1\",job=\"shop/checkout\",otel_scope_name=\"spanmetricsconnector\"} 3.0 # {trace_id=\"abababababababababababababababab\",span_id=\"0101010101010101\"} 1.0\n"),
        "{text}"
    );
}

#[test]
fn a_name_taken_by_another_type_is_counted_not_mixed() {
    let mut s = setup(naming());
    s.update(&request(vec![Metric {
        name: "x".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point(1, vec![])],
        })),
        ..Default::default()
    }]));
    s.update(&request(vec![Metric {
        name: "x".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint::default()],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    }]));
    assert_eq!(s.dropped("type_conflict"), 1);
}

#[test]
fn series_expire() {
    let mut s = setup(naming());
    s.update(&request(vec![sum("c", true, 2, vec![point(1, vec![])])]));
    s.store.expire(
        Instant::now() + Duration::from_secs(301),
        Duration::from_secs(300),
    );
    assert_eq!(s.store.series_count(), 0);
}

#[test]
fn config_is_checked() {
    let value: serde_yaml::Value = serde_yaml::from_str(
        "const_labels: {'bad-label': x}\nsend_timestamps: true\ntranslation_strategy: NoTranslation\nmax_series: 0\ntls: {cert_file: x}",
    )
    .unwrap();
    let mut diags = Diagnostics::new();
    decode_component::<Config>(&value, &ConfigPath::root().key("prometheus"), &mut diags);
    let text = diags.to_string();
    for expected in [
        "prometheus::endpoint: required",
        "prometheus::const_labels::bad-label: not a Prometheus label name",
        "prometheus::send_timestamps: not supported",
        "prometheus::translation_strategy: \"NoTranslation\" is not supported",
        "prometheus::max_series: must be at least 1",
        "prometheus::tls: not supported",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[tokio::test]
async fn the_endpoint_serves_what_the_pipeline_delivered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let value: serde_yaml::Value =
        serde_yaml::from_str(&format!("endpoint: 127.0.0.1:{port}\nnamespace: app")).unwrap();
    let mut diags = Diagnostics::new();
    let cfg = decode_component::<Config>(&value, &ConfigPath::root(), &mut diags).unwrap();
    let ctx = BuildContext::standalone("prometheus", ComponentKind::Exporter);
    let telemetry = ctx.telemetry.clone();
    let built = build(ctx, &cfg, &[SignalKind::Metrics]).unwrap();
    built.component.start().await.unwrap();
    let consumer = built.consumers.get::<Metrics>().unwrap();
    consumer
        .consume(Metrics::from_request(request(vec![sum(
            "orders",
            true,
            2,
            vec![point(7, vec![])],
        )])))
        .await
        .unwrap();
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("app_orders_total{instance=\"pod-1\",job=\"shop/checkout\",otel_scope_name=\"spanmetricsconnector\"} 7.0\n"), "{body}");
    built.component.shutdown(Instant::now()).await.unwrap();
    assert_eq!(
        telemetry.counter_value(
            "otelcol_exporter_sent_metric_points",
            &[("exporter", "prometheus")]
        ),
        1
    );
}
