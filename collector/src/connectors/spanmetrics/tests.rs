//! The connector against hand-made spans: names, dimensions, buckets, bounds, temporality,
//! and exemplars that wait for a window's verdict.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prost::Message;
use weft_config::{decode_component, ConfigPath, Diagnostics};
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::metrics::v1::{exemplar, metric::Data, number_data_point, Metric};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

use super::aggregate::{Aggregator, ConnectorMetrics, Settings};
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

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// A span of `trace` lasting `ms` milliseconds.
fn span(trace: u8, name: &str, ms: u64, error: bool, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![trace; 8],
        name: name.into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_000_000_000 + ms * 1_000_000,
        attributes: attrs,
        status: error.then(|| Status {
            code: status::StatusCode::Error as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service), kv("host.name", "node-1")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "http".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn config(yaml: &str) -> Config {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let cfg = decode_component::<Config>(&value, &ConfigPath::root(), &mut diags);
    assert!(!diags.has_errors(), "{diags}");
    cfg.unwrap()
}

fn aggregator(yaml: &str) -> (Aggregator, Telemetry) {
    let t = Telemetry::new();
    let a = Aggregator::new(
        Settings::new(&config(yaml)),
        ConnectorMetrics::new(&t, "spanmetrics"),
    );
    (a, t)
}

fn record(a: &Aggregator, req: &ExportTraceServiceRequest) {
    a.record(&req.encode_to_vec(), Instant::now(), 7_000);
}

fn flush(a: &Aggregator) -> ExportMetricsServiceRequest {
    a.flush(Instant::now(), 9_000)
        .expect("something to flush")
        .0
}

fn metrics(out: &ExportMetricsServiceRequest) -> Vec<&Metric> {
    out.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .collect()
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|a| a.key == key).and_then(|a| {
        a.value.as_ref().map(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            Some(any_value::Value::IntValue(i)) => i.to_string(),
            Some(any_value::Value::BoolValue(b)) => b.to_string(),
            other => format!("{other:?}"),
        })
    })
}

/// Calls per `(span.name, status.code)`.
fn calls(out: &ExportMetricsServiceRequest) -> Vec<(String, String, i64)> {
    let mut v: Vec<_> = metrics(out)
        .into_iter()
        .filter(|m| m.name.ends_with(".calls"))
        .flat_map(|m| match &m.data {
            Some(Data::Sum(s)) => s.data_points.clone(),
            _ => panic!("calls is a sum"),
        })
        .map(|p| {
            let Some(number_data_point::Value::AsInt(n)) = p.value else {
                panic!("an int count")
            };
            (
                attr(&p.attributes, "span.name").unwrap_or_default(),
                attr(&p.attributes, "status.code").unwrap_or_default(),
                n,
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn calls_and_durations_are_named_and_bucketed_as_the_collector_does() {
    let (a, _) = aggregator("");
    record(
        &a,
        &request(
            "checkout",
            vec![
                span(1, "GET /cart", 3, false, vec![]),
                span(2, "GET /cart", 45, false, vec![]),
                span(3, "GET /cart", 45, true, vec![]),
                span(4, "POST /pay", 20_000, false, vec![]),
            ],
        ),
    );
    let out = flush(&a);
    let rm = &out.resource_metrics[0];
    // The resource's attributes, the Collector's scope name.
    let resource = &rm.resource.as_ref().unwrap().attributes;
    assert_eq!(attr(resource, "host.name").as_deref(), Some("node-1"));
    assert_eq!(
        rm.scope_metrics[0].scope.as_ref().unwrap().name,
        "spanmetricsconnector"
    );
    let names: Vec<&str> = metrics(&out).iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["traces.span.metrics.calls", "traces.span.metrics.duration"]
    );
    assert_eq!(
        calls(&out),
        [
            ("GET /cart".into(), "STATUS_CODE_ERROR".into(), 1),
            ("GET /cart".into(), "STATUS_CODE_UNSET".into(), 2),
            ("POST /pay".into(), "STATUS_CODE_UNSET".into(), 1),
        ]
    );
    let calls_metric = metrics(&out)[0];
    let Some(Data::Sum(sum)) = &calls_metric.data else {
        panic!()
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 2);
    let p = &sum.data_points[0];
    assert_eq!(
        attr(&p.attributes, "service.name").as_deref(),
        Some("checkout")
    );
    assert_eq!(
        attr(&p.attributes, "span.kind").as_deref(),
        Some("SPAN_KIND_SERVER")
    );
    assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (7_000, 9_000));
    // Durations in milliseconds, in the default buckets (upper-inclusive).
    let duration = metrics(&out)[1];
    assert_eq!(duration.unit, "ms");
    let Some(Data::Histogram(h)) = &duration.data else {
        panic!()
    };
    let unset_cart = h
        .data_points
        .iter()
        .find(|p| {
            attr(&p.attributes, "span.name").as_deref() == Some("GET /cart")
                && attr(&p.attributes, "status.code").as_deref() == Some("STATUS_CODE_UNSET")
        })
        .unwrap();
    assert_eq!(
        unset_cart.explicit_bounds[..6],
        [2.0, 4.0, 6.0, 8.0, 10.0, 50.0]
    );
    assert_eq!(unset_cart.count, 2);
    assert_eq!(unset_cart.sum, Some(48.0));
    // 3 ms → (2, 4]; 45 ms → (10, 50].
    assert_eq!(unset_cart.bucket_counts[1], 1);
    assert_eq!(unset_cart.bucket_counts[5], 1);
    assert_eq!(unset_cart.bucket_counts.iter().sum::<u64>(), 2);
    let pay = h
        .data_points
        .iter()
        .find(|p| attr(&p.attributes, "span.name").as_deref() == Some("POST /pay"))
        .unwrap();
    // 20 s is above the last bound (15 s): the overflow bucket.
    assert_eq!(*pay.bucket_counts.last().unwrap(), 1);
    // Cumulative: the same totals again, plus what came since.
    record(
        &a,
        &request("checkout", vec![span(5, "POST /pay", 1, false, vec![])]),
    );
    let again = flush(&a);
    assert!(calls(&again).contains(&("POST /pay".into(), "STATUS_CODE_UNSET".into(), 2)));
}

#[test]
fn dimensions_come_from_the_span_then_the_resource_then_the_default() {
    let (a, _) = aggregator(
        "dimensions: [{name: http.route}, {name: host.name}, {name: region, default: eu}, {name: absent}]\n\
         exclude_dimensions: [status.code]\nnamespace: ''\nhistogram: {unit: s}",
    );
    record(
        &a,
        &request(
            "shop",
            vec![
                span(
                    1,
                    "a",
                    500,
                    true,
                    vec![kv("http.route", "/x"), int("code", 1)],
                ),
                span(
                    2,
                    "a",
                    500,
                    false,
                    vec![kv("http.route", "/x"), kv("region", "us")],
                ),
            ],
        ),
    );
    let out = flush(&a);
    let names: Vec<&str> = metrics(&out).iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["calls", "duration"]);
    let Some(Data::Sum(sum)) = &metrics(&out)[0].data else {
        panic!()
    };
    let mut points: Vec<_> = sum
        .data_points
        .iter()
        .map(|p| {
            (
                attr(&p.attributes, "http.route"),
                attr(&p.attributes, "host.name"),
                attr(&p.attributes, "region"),
                attr(&p.attributes, "absent"),
                attr(&p.attributes, "status.code"),
            )
        })
        .collect();
    points.sort();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        points,
        [
            (some("/x"), some("node-1"), some("eu"), None, None),
            (some("/x"), some("node-1"), some("us"), None, None),
        ]
    );
    let Some(Data::Histogram(h)) = &metrics(&out)[1].data else {
        panic!()
    };
    assert_eq!(metrics(&out)[1].unit, "s");
    assert_eq!(h.data_points[0].explicit_bounds[0], 0.002);
    assert_eq!(h.data_points[0].sum, Some(0.5));
}

#[test]
fn past_the_cardinality_limit_new_series_overflow_and_are_counted() {
    let (a, t) = aggregator("aggregation_cardinality_limit: 2");
    let spans = (0..5u8)
        .map(|i| span(i, &format!("op{i}"), 1, false, vec![]))
        .collect();
    record(&a, &request("svc", spans));
    let out = flush(&a);
    let c = calls(&out);
    assert_eq!(c.len(), 3, "{c:?}");
    // Two real series and one overflow series holding the other three spans.
    assert_eq!(c.iter().map(|(_, _, n)| n).sum::<i64>(), 5);
    let Some(Data::Sum(sum)) = &metrics(&out)[0].data else {
        panic!()
    };
    let overflow = sum
        .data_points
        .iter()
        .find(|p| attr(&p.attributes, "otel.metric.overflow").as_deref() == Some("true"))
        .unwrap();
    assert_eq!(overflow.value, Some(number_data_point::Value::AsInt(3)));
    assert_eq!(
        t.counter_value(
            "weft_connector_spanmetrics_overflow_spans",
            &[("connector", "spanmetrics")]
        ),
        3
    );
}

#[test]
fn a_million_distinct_span_names_stay_within_the_bound() {
    let (a, t) = aggregator("aggregation_cardinality_limit: 1000\nhistogram: {disable: true}");
    for batch in 0..100u32 {
        let spans = (0..10_000u32)
            .map(|i| span(1, &format!("user-{}", batch * 10_000 + i), 1, false, vec![]))
            .collect();
        record(&a, &request("svc", spans));
    }
    let out = flush(&a);
    let c = calls(&out);
    assert_eq!(c.len(), 1001);
    assert_eq!(c.iter().map(|(_, _, n)| n).sum::<i64>(), 1_000_000);
    assert_eq!(
        t.counter_value(
            "weft_connector_spanmetrics_overflow_spans",
            &[("connector", "spanmetrics")]
        ),
        999_000
    );
}

#[test]
fn resources_beyond_the_cache_evict_the_least_recent() {
    let (a, t) = aggregator("resource_metrics_cache_size: 2");
    for service in ["a", "b", "c"] {
        record(&a, &request(service, vec![span(1, "op", 1, false, vec![])]));
    }
    let out = flush(&a);
    let services: Vec<String> = out
        .resource_metrics
        .iter()
        .map(|r| attr(&r.resource.as_ref().unwrap().attributes, "service.name").unwrap())
        .collect();
    assert_eq!(services.len(), 2);
    assert!(!services.contains(&"a".to_string()), "{services:?}");
    assert_eq!(
        t.counter_value(
            "weft_connector_spanmetrics_series_dropped",
            &[("connector", "spanmetrics"), ("reason", "resource_evicted")]
        ),
        1
    );
}

#[test]
fn delta_sends_only_what_came_since_and_puts_back_a_refused_flush() {
    let (a, _) = aggregator("aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA");
    record(&a, &request("svc", vec![span(1, "op", 1, false, vec![])]));
    let (first, taken) = a.flush(Instant::now(), 9_000).unwrap();
    assert_eq!(
        calls(&first),
        [("op".into(), "STATUS_CODE_UNSET".into(), 1)]
    );
    let Some(Data::Sum(sum)) = &metrics(&first)[0].data else {
        panic!()
    };
    assert_eq!(sum.aggregation_temporality, 1);
    // The pipeline refused it: back it goes, and the next flush carries both spans.
    a.restore(taken.expect("delta takes its data"));
    record(&a, &request("svc", vec![span(2, "op", 1, false, vec![])]));
    let (second, _) = a.flush(Instant::now(), 11_000).unwrap();
    assert_eq!(
        calls(&second),
        [("op".into(), "STATUS_CODE_UNSET".into(), 2)]
    );
    // Nothing since: nothing to send.
    assert!(a.flush(Instant::now(), 12_000).is_none());
}

#[test]
fn exponential_histograms_hold_every_duration() {
    let (a, _) = aggregator("histogram: {exponential: {max_size: 10}}");
    let spans = [0u64, 1, 2, 5, 50, 500, 5_000]
        .iter()
        .enumerate()
        .map(|(i, ms)| span(i as u8, "op", *ms, false, vec![]))
        .collect();
    record(&a, &request("svc", spans));
    let out = flush(&a);
    let Some(Data::ExponentialHistogram(h)) = &metrics(&out)[1].data else {
        panic!("an exponential histogram")
    };
    let p = &h.data_points[0];
    assert_eq!(p.count, 7);
    assert_eq!(p.zero_count, 1);
    let positive = p.positive.as_ref().unwrap();
    assert!(positive.bucket_counts.len() <= 10);
    assert_eq!(positive.bucket_counts.iter().sum::<u64>(), 6);
    assert_eq!((p.min, p.max), (Some(0.0), Some(5_000.0)));
    assert_eq!(p.sum, Some(5_558.0));
}

#[test]
fn events_are_counted_by_their_attributes() {
    let (a, _) = aggregator("events: {enabled: true, dimensions: [{name: exception.type}]}");
    let mut s = span(1, "op", 1, true, vec![]);
    s.events = vec![
        span::Event {
            name: "exception".into(),
            attributes: vec![kv("exception.type", "IOError")],
            ..Default::default()
        },
        span::Event {
            name: "exception".into(),
            attributes: vec![kv("exception.type", "IOError")],
            ..Default::default()
        },
    ];
    record(&a, &request("svc", vec![s]));
    let out = flush(&a);
    let events = metrics(&out)
        .into_iter()
        .find(|m| m.name == "traces.span.metrics.events")
        .expect("an events metric");
    let Some(Data::Sum(sum)) = &events.data else {
        panic!()
    };
    assert_eq!(sum.data_points.len(), 1);
    let p = &sum.data_points[0];
    assert_eq!(
        attr(&p.attributes, "exception.type").as_deref(),
        Some("IOError")
    );
    assert_eq!(p.value, Some(number_data_point::Value::AsInt(2)));
}

fn exemplar_traces(out: &ExportMetricsServiceRequest) -> Vec<u8> {
    let mut v: Vec<u8> = metrics(out)
        .into_iter()
        .filter_map(|m| match &m.data {
            Some(Data::Histogram(h)) => Some(h.data_points.clone()),
            _ => None,
        })
        .flatten()
        .flat_map(|p| p.exemplars)
        .map(|e| e.trace_id[0])
        .collect();
    v.sort();
    v
}

#[test]
fn exemplars_without_a_window_are_the_first_spans_of_each_flush() {
    let (a, _) = aggregator("exemplars: {enabled: true, max_per_data_point: 2}");
    let spans = (1..=4).map(|i| span(i, "op", 7, false, vec![])).collect();
    record(&a, &request("svc", spans));
    let out = flush(&a);
    assert_eq!(exemplar_traces(&out), [1, 2]);
    let Some(Data::Histogram(h)) = &metrics(&out)[1].data else {
        panic!()
    };
    let e = &h.data_points[0].exemplars[0];
    assert_eq!(e.span_id, vec![1; 8]);
    assert_eq!(e.value, Some(exemplar::Value::AsDouble(7.0)));
    // The next flush has none until new spans come.
    record(
        &a,
        &request("svc", vec![span(9, "other", 1, false, vec![])]),
    );
    assert_eq!(exemplar_traces(&flush(&a)), [9]);
}

#[test]
fn with_a_window_only_kept_traces_become_exemplars() {
    let (a, t) = aggregator(
        "exemplars: {enabled: true, max_per_data_point: 5, tail_sampling: tail_sampling}",
    );
    let spans = (1..=6).map(|i| span(i, "op", 7, false, vec![])).collect();
    record(&a, &request("svc", spans));
    // Before any verdict: no exemplar.
    assert_eq!(exemplar_traces(&flush(&a)), Vec::<u8>::new());
    for (trace, sampled) in [(2u8, true), (3, false), (5, true), (6, false)] {
        a.decided(&crate::verdicts::Verdict {
            trace_id: &[trace; 16],
            sampled,
            policy: None,
            reason: "decision_wait",
            root: None,
            spans: 1,
            logs_by_severity: &[],
            logs_kept: 0,
        });
    }
    assert_eq!(exemplar_traces(&flush(&a)), [2, 5]);
    let outcome = |o| {
        t.counter_value(
            "weft_connector_spanmetrics_exemplars",
            &[("connector", "spanmetrics"), ("outcome", o)],
        )
    };
    assert_eq!((outcome("kept"), outcome("dropped")), (2, 2));
}

#[test]
fn config_mistakes_are_reported_with_their_path() {
    let value: serde_yaml::Value = serde_yaml::from_str(
        "dimensions: [{name: span.name}, {name: x}, {name: x}]\n\
         histogram: {explicit: {buckets: [10ms, 5ms]}, exponential: {max_size: 1}}\n\
         metrics_flush_interval: 0s\n\
         events: {enabled: true}\n\
         exemplars: {max_per_data_point: 0, tail_sampling: 'bad id'}\n\
         aggregation_temporality: SOMETIMES",
    )
    .unwrap();
    let mut diags = Diagnostics::new();
    decode_component::<Config>(&value, &ConfigPath::root().key("spanmetrics"), &mut diags);
    let text = diags.to_string();
    assert!(
        text.contains("spanmetrics::aggregation_temporality: unknown variant \"SOMETIMES\""),
        "{text}"
    );
    let value: serde_yaml::Value = serde_yaml::from_str(
        "dimensions: [{name: span.name}, {name: x}, {name: x}]\n\
         histogram: {explicit: {buckets: [10ms, 5ms]}, exponential: {max_size: 1}}\n\
         metrics_flush_interval: 0s\n\
         events: {enabled: true}\n\
         exemplars: {max_per_data_point: 0, tail_sampling: 'bad id'}",
    )
    .unwrap();
    let mut diags = Diagnostics::new();
    decode_component::<Config>(&value, &ConfigPath::root().key("spanmetrics"), &mut diags);
    let text = diags.to_string();
    for expected in [
        "spanmetrics::dimensions[0]::name: duplicate dimension name \"span.name\"",
        "spanmetrics::dimensions[2]::name: duplicate dimension name \"x\"",
        "spanmetrics::histogram: use either `explicit` or `exponential`",
        "spanmetrics::histogram::explicit::buckets: bucket bounds must be strictly increasing",
        "spanmetrics::histogram::exponential::max_size: must be at least 2",
        "spanmetrics::metrics_flush_interval: must be greater than 0",
        "spanmetrics::events::dimensions: no dimensions configured for events",
        "spanmetrics::exemplars::max_per_data_point: must be at least 1",
        "spanmetrics::exemplars::tail_sampling: \"bad id\" is not a component id",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

/// A metrics consumer that records what it gets.
struct Sink(Mutex<Vec<Metrics>>);

#[async_trait::async_trait]
impl Consumer<Metrics> for Sink {
    async fn consume(&self, data: Metrics) -> Result<(), ConsumeError> {
        self.0.lock().push(data);
        Ok(())
    }
}

#[tokio::test]
async fn the_connector_flushes_on_its_interval_and_at_shutdown() {
    let ctx = BuildContext::standalone("spanmetrics", weft_config::Kind::Connector);
    let sink = Arc::new(Sink(Mutex::new(Vec::new())));
    let cfg = config("metrics_flush_interval: 50ms");
    let connector = build(
        ctx,
        &cfg,
        vec![(
            "metrics".parse().unwrap(),
            sink.clone() as Arc<dyn Consumer<Metrics>>,
        )],
    )
    .unwrap();
    connector.start().await.unwrap();
    let req = request("svc", vec![span(1, "op", 1, false, vec![])]);
    connector
        .consume(Traces::from_encoded(req.encode_to_vec().into(), 1))
        .await
        .unwrap();
    // The interval flush arrives (no timing is asserted: only that it does).
    for _ in 0..200 {
        if !sink.0.lock().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!sink.0.lock().is_empty(), "an interval flush");
    connector
        .shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    let last = sink.0.lock().last().unwrap().request().into_owned();
    assert_eq!(calls(&last), [("op".into(), "STATUS_CODE_UNSET".into(), 1)]);
}

#[tokio::test]
async fn a_window_that_is_not_there_fails_the_start() {
    let ctx = BuildContext::standalone("spanmetrics", weft_config::Kind::Connector);
    let cfg = config("exemplars: {enabled: true, tail_sampling: tail_sampling/missing}");
    let connector = build(ctx, &cfg, Vec::new()).unwrap();
    let err = connector.start().await.unwrap_err().to_string();
    assert!(err.contains("\"tail_sampling/missing\""), "{err}");
}
