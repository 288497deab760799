//! The balancer against fake backends: routing per record, retries while a backend is down,
//! re-routing when the ring changes, all-or-nothing queueing, and the config's errors.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;
use weft_config::{ConfigPath, Diagnostics};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::metrics::v1::{
    metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::balancer::{Balancer, MakeBackendSender, RingListener, Settings};
use super::route::{self, RoutingKey};
use super::*;
use crate::exporters::helper::{ExportError, QueueSettings, RetrySettings, Sender};
use crate::pipeline::{ConsumeError, Consumer, Logs, Metrics, Payload, Traces};
use crate::telemetry::Telemetry;

/// (trace id, span id) pairs.
type Items = Vec<(Vec<u8>, Vec<u8>)>;

/// What every fake backend received, and which are down (failing) or stuck (never answering).
#[derive(Clone, Default)]
struct Backends {
    received: Arc<Mutex<HashMap<String, Items>>>,
    down: Arc<Mutex<HashSet<String>>>,
    stuck: Arc<Mutex<HashSet<String>>>,
    attempts: Arc<Mutex<HashMap<String, usize>>>,
}

struct Fake<T> {
    endpoint: String,
    backends: Backends,
    _t: std::marker::PhantomData<fn() -> T>,
}

#[async_trait]
impl<T: Payload> Sender<T> for Fake<T> {
    async fn send(&self, data: &T) -> Result<(), ExportError> {
        *self
            .backends
            .attempts
            .lock()
            .entry(self.endpoint.clone())
            .or_default() += 1;
        if self.backends.stuck.lock().contains(&self.endpoint) {
            std::future::pending::<()>().await;
        }
        if self.backends.down.lock().contains(&self.endpoint) {
            return Err(ExportError::retryable(format!("{} is down", self.endpoint)));
        }
        let items = ids(data);
        self.backends
            .received
            .lock()
            .entry(self.endpoint.clone())
            .or_default()
            .extend(items);
        Ok(())
    }
}

/// (trace id, span id) of every item of a batch.
fn ids<T: Payload>(data: &T) -> Items {
    let bytes = data.to_bytes();
    match T::SIGNAL {
        weft_config::SignalKind::Traces => {
            let req = <ExportTraceServiceRequest as prost::Message>::decode(bytes).unwrap();
            req.resource_spans
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans)
                .map(|s| (s.trace_id, s.span_id))
                .collect()
        }
        weft_config::SignalKind::Metrics => {
            // (service name, metric name ‖ the point's time): one per data point.
            let req = <ExportMetricsServiceRequest as prost::Message>::decode(bytes).unwrap();
            let mut out = Vec::new();
            for rm in req.resource_metrics {
                let service = rm
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        any_value::Value::StringValue(s) => Some(s.clone().into_bytes()),
                        _ => None,
                    })
                    .unwrap_or_default();
                for m in rm.scope_metrics.into_iter().flat_map(|s| s.metrics) {
                    let Some(metric::Data::Gauge(g)) = m.data else {
                        panic!("the tests send gauges")
                    };
                    for p in g.data_points {
                        let mut point = m.name.clone().into_bytes();
                        point.extend_from_slice(&p.time_unix_nano.to_be_bytes());
                        out.push((service.clone(), point));
                    }
                }
            }
            out
        }
        weft_config::SignalKind::Logs => {
            let req = <ExportLogsServiceRequest as prost::Message>::decode(bytes).unwrap();
            req.resource_logs
                .into_iter()
                .flat_map(|r| r.scope_logs)
                .flat_map(|s| s.log_records)
                .map(|l| (l.trace_id, l.span_id))
                .collect()
        }
    }
}

fn settings(queue_size: usize) -> Settings {
    Settings {
        queue: QueueSettings {
            queue_size,
            num_consumers: 2,
            ..QueueSettings::default()
        },
        retry: RetrySettings {
            initial_interval: weft_config::Duration::from_millis(5),
            max_interval: weft_config::Duration::from_millis(20),
            max_elapsed_time: weft_config::Duration::from_secs(0),
            ..RetrySettings::default()
        },
    }
}

fn balancer<T: Payload>(backends: &Backends, queue_size: usize) -> (Arc<Balancer<T>>, Telemetry) {
    balancer_by(RoutingKey::TraceId, backends, queue_size)
}

fn balancer_by<T: Payload>(
    key: RoutingKey,
    backends: &Backends,
    queue_size: usize,
) -> (Arc<Balancer<T>>, Telemetry) {
    let telemetry = Telemetry::new();
    let b = backends.clone();
    let make: MakeBackendSender<T> = Box::new(move |endpoint: &str| {
        Ok(Arc::new(Fake::<T> {
            endpoint: endpoint.to_string(),
            backends: b.clone(),
            _t: std::marker::PhantomData,
        }) as Arc<dyn Sender<T>>)
    });
    let balancer = Balancer::new(
        "loadbalancing".into(),
        &telemetry,
        key,
        route::layout(T::SIGNAL).unwrap(),
        settings(queue_size),
        make,
        tracing::Span::none(),
    );
    (Arc::new(balancer), telemetry)
}

fn endpoints(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn trace_id(i: u32) -> Vec<u8> {
    let mut id = vec![0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    id[4..8].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
    id
}

/// `traces` traces of `spans` spans each, the spans of all traces interleaved in one batch.
fn batch(first: u32, traces: u32, spans: u8) -> Traces {
    let mut all = Vec::new();
    for s in 0..spans {
        for t in first..first + traces {
            all.push(Span {
                trace_id: trace_id(t),
                span_id: vec![s + 1; 8],
                ..Default::default()
            });
        }
    }
    Traces::from(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: all,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// Waits (polling; the test's outcome never depends on how long it takes) until `check`.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

fn total(backends: &Backends) -> usize {
    backends.received.lock().values().map(Vec::len).sum()
}

#[tokio::test]
async fn every_span_goes_to_the_owner_of_its_trace_and_nowhere_else() {
    let backends = Backends::default();
    let (lb, _) = balancer::<Traces>(&backends, 100);
    let list = endpoints(&["a:4317", "b:4317", "c:4317"]);
    lb.update(&list).unwrap();
    lb.consume(batch(0, 60, 3)).await.unwrap();
    until("all 180 spans arrived", || total(&backends) == 180).await;
    let ring = Ring::new(&list);
    let received = backends.received.lock();
    assert_eq!(received.len(), 3, "60 traces reach every backend");
    for (endpoint, items) in received.iter() {
        for (trace, _) in items {
            assert_eq!(ring.owner_endpoint(trace), Some(endpoint.as_str()));
        }
    }
}

#[tokio::test]
async fn a_backend_that_is_down_keeps_its_data_and_gets_it_when_back() {
    let backends = Backends::default();
    backends.down.lock().insert("b:4317".into());
    let (lb, telemetry) = balancer::<Traces>(&backends, 100);
    let list = endpoints(&["a:4317", "b:4317"]);
    lb.update(&list).unwrap();
    lb.consume(batch(0, 40, 2)).await.unwrap();
    until("b was tried several times", || {
        backends.attempts.lock().get("b:4317").copied().unwrap_or(0) >= 3
    })
    .await;
    let ring = Ring::new(&list);
    let owned_by_b = (0..40)
        .filter(|t| ring.owner_endpoint(&trace_id(*t)) == Some("b:4317"))
        .count();
    assert!(owned_by_b > 0);
    assert!(!backends.received.lock().contains_key("b:4317"));
    backends.down.lock().clear();
    until("b got its spans", || {
        backends.received.lock().get("b:4317").map_or(0, Vec::len) == owned_by_b * 2
    })
    .await;
    assert_eq!(total(&backends), 80);
    let failures = telemetry.counter_value(
        "otelcol_loadbalancer_backend_outcome",
        &[
            ("exporter", "loadbalancing"),
            ("endpoint", "b:4317"),
            ("success", "false"),
        ],
    );
    assert!(failures >= 3, "{failures}");
}

#[tokio::test]
async fn data_queued_for_a_backend_that_leaves_the_ring_goes_to_the_new_owner() {
    let backends = Backends::default();
    backends.down.lock().insert("c:4317".into());
    let (lb, telemetry) = balancer::<Traces>(&backends, 100);
    lb.update(&endpoints(&["a:4317", "b:4317", "c:4317"]))
        .unwrap();
    for i in 0..5 {
        lb.consume(batch(i * 20, 20, 2)).await.unwrap();
    }
    until("c was tried", || {
        backends.attempts.lock().get("c:4317").copied().unwrap_or(0) >= 2
    })
    .await;
    // c leaves: its queued batches, and the ones failing in its workers, go to a and b.
    let two = endpoints(&["a:4317", "b:4317"]);
    lb.update(&two).unwrap();
    until("every span arrived", || total(&backends) == 200).await;
    let ring = Ring::new(&two);
    let received = backends.received.lock();
    assert!(!received.contains_key("c:4317"));
    let mut seen = HashSet::new();
    for (endpoint, items) in received.iter() {
        for item in items {
            assert_eq!(ring.owner_endpoint(&item.0), Some(endpoint.as_str()));
            assert!(seen.insert(item.clone()), "a span was delivered twice");
        }
    }
    assert!(
        telemetry.counter_value(
            "weft_loadbalancer_rerouted_spans",
            &[("exporter", "loadbalancing")]
        ) > 0
    );
}

#[tokio::test]
async fn a_full_queue_refuses_the_whole_batch_and_queues_none_of_it() {
    let backends = Backends::default();
    backends.stuck.lock().insert("b:4317".into());
    let (lb, _) = balancer::<Traces>(&backends, 1);
    let list = endpoints(&["a:4317", "b:4317"]);
    lb.update(&list).unwrap();
    let ring = Ring::new(&list);
    let for_a = |n: u32| {
        (0..n)
            .filter(|t| ring.owner_endpoint(&trace_id(*t)) == Some("a:4317"))
            .count()
    };
    // b's two workers each hold one batch (stuck); the third waits in its queue.
    for i in 0..3 {
        lb.consume(batch(i * 10, 10, 1)).await.unwrap();
        until("the batch left the queues", || {
            backends.received.lock().get("a:4317").map_or(0, Vec::len) == for_a((i + 1) * 10)
                && backends.attempts.lock().get("b:4317").copied().unwrap_or(0)
                    == (i as usize + 1).min(2)
        })
        .await;
    }
    let before = total(&backends);
    let refused = lb.consume(batch(100, 10, 1)).await;
    assert!(
        matches!(refused, Err(ConsumeError::Refused { .. })),
        "{refused:?}"
    );
    // Give a wrongly queued part every chance to be sent before looking.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        total(&backends),
        before,
        "no part of a refused batch was sent"
    );
}

#[tokio::test]
async fn without_a_backend_data_is_refused_with_a_retryable_answer() {
    let backends = Backends::default();
    let (lb, _) = balancer::<Traces>(&backends, 10);
    let result = lb.consume(batch(0, 1, 1)).await;
    assert!(
        matches!(result, Err(ConsumeError::Refused { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn logs_follow_their_trace_and_logs_without_one_are_spread() {
    let backends = Backends::default();
    let (lb, _) = balancer::<Logs>(&backends, 100);
    let list = endpoints(&["a:4317", "b:4317", "c:4317"]);
    lb.update(&list).unwrap();
    let mut records: Vec<LogRecord> = (0..30)
        .map(|t| LogRecord {
            trace_id: trace_id(t),
            span_id: vec![1; 8],
            ..Default::default()
        })
        .collect();
    records.extend((0..30).map(|i| LogRecord {
        span_id: vec![i as u8; 8],
        ..Default::default()
    }));
    let logs = Logs::from(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    lb.consume(logs).await.unwrap();
    until("all 60 logs arrived", || total(&backends) == 60).await;
    let ring = Ring::new(&list);
    let received = backends.received.lock();
    for (endpoint, items) in received.iter() {
        let orphans = items.iter().filter(|(t, _)| t.is_empty()).count();
        assert_eq!(
            orphans, 10,
            "round-robin gives each backend a third of the orphans"
        );
        for (trace, _) in items.iter().filter(|(t, _)| !t.is_empty()) {
            assert_eq!(ring.owner_endpoint(trace), Some(endpoint.as_str()));
        }
    }
}

#[tokio::test]
async fn shutdown_delivers_what_is_queued() {
    let backends = Backends::default();
    let (lb, _) = balancer::<Traces>(&backends, 100);
    lb.update(&endpoints(&["a:4317", "b:4317"])).unwrap();
    lb.consume(batch(0, 50, 2)).await.unwrap();
    lb.shutdown(std::time::Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(total(&backends), 100);
    assert_eq!(lb.endpoints(), ["a:4317", "b:4317"]);
}

/// `services` services (`svc-<first + i>`), each one resource with two gauges of `points`
/// points each, the resources of one batch in service order.
fn metrics_batch(first: u32, services: u32, points: u64) -> Metrics {
    let gauge = |name: &str| Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: (0..points)
                .map(|t| NumberDataPoint {
                    time_unix_nano: t + 1,
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    Metrics::from(ExportMetricsServiceRequest {
        resource_metrics: (first..first + services)
            .map(|i| ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("svc-{i}"))),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge("cpu"), gauge("memory")],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    })
}

#[tokio::test]
async fn metrics_go_to_the_owner_of_their_service_and_follow_it_when_the_ring_changes() {
    let backends = Backends::default();
    backends.down.lock().insert("c:4317".into());
    let (lb, telemetry) = balancer_by::<Metrics>(RoutingKey::Service, &backends, 100);
    lb.update(&endpoints(&["a:4317", "b:4317", "c:4317"]))
        .unwrap();
    for i in 0..4 {
        lb.consume(metrics_batch(i * 10, 10, 3)).await.unwrap();
    }
    until("c was tried", || {
        backends.attempts.lock().get("c:4317").copied().unwrap_or(0) >= 2
    })
    .await;
    // c leaves while its queue holds its services' points: they go to their new owners.
    let two = endpoints(&["a:4317", "b:4317"]);
    lb.update(&two).unwrap();
    // 40 services × 2 gauges × 3 points.
    until("every point arrived", || total(&backends) == 240).await;
    let ring = Ring::new(&two);
    let received = backends.received.lock();
    assert!(!received.contains_key("c:4317"));
    let mut seen = HashSet::new();
    for (endpoint, items) in received.iter() {
        for (service, point) in items {
            assert_eq!(ring.owner_endpoint(service), Some(endpoint.as_str()));
            assert!(
                seen.insert((service.clone(), point.clone())),
                "a point was delivered twice"
            );
        }
    }
    assert!(
        telemetry.counter_value(
            "weft_loadbalancer_rerouted_metric_points",
            &[("exporter", "loadbalancing")]
        ) > 0
    );
}

#[tokio::test]
async fn metrics_routed_by_name_split_a_resource_between_backends() {
    let backends = Backends::default();
    let (lb, _) = balancer_by::<Metrics>(RoutingKey::Metric, &backends, 100);
    let list = endpoints(&["a:4317", "b:4317", "c:4317"]);
    lb.update(&list).unwrap();
    lb.consume(metrics_batch(0, 5, 2)).await.unwrap();
    until("all 20 points arrived", || total(&backends) == 20).await;
    let ring = Ring::new(&list);
    for (endpoint, items) in backends.received.lock().iter() {
        for (_, point) in items {
            let name = &point[..point.len() - 8];
            assert_eq!(ring.owner_endpoint(name), Some(endpoint.as_str()));
        }
    }
}

fn diagnostics(yaml: &str) -> Vec<String> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("loadbalancing");
    // Decoding validates.
    weft_config::decode_component::<Config>(&value, &path, &mut diags);
    diags.errors().map(ToString::to_string).collect()
}

#[test]
fn the_collectors_config_is_accepted() {
    let errors = diagnostics(
        r#"
routing_key: traceID
protocol:
  otlp:
    timeout: 1s
    tls: { insecure: true }
resolver:
  dns:
    hostname: weft-gateway-headless.observability.svc.cluster.local
    port: "4317"
    interval: 5s
    timeout: 1s
"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn config_mistakes_are_reported_with_their_paths() {
    let errors = diagnostics(
        r#"
routing_key: traceId
protocol:
  otlp:
    sending_queue: { storage: file_storage }
resolver:
  static: { hostnames: [] }
  dns: { hostname: x }
"#,
    );
    let text = errors.join("\n");
    assert!(
        text.contains(
            "exporters::loadbalancing::routing_key: unknown routing key \"traceId\", expected \"traceID\" (the default) or \"service\" (traces and logs) or \"service\" (the default), \"resource\", \"metric\" or \"streamID\" (metrics)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "exporters::loadbalancing::resolver: only one of static, dns, k8s may be set"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "protocol::otlp::sending_queue::storage: a persistent queue is not supported"
        ),
        "{text}"
    );
    let errors =
        diagnostics("resolver: { dns: { hostname: gw, port: http, nameserver: nowhere } }");
    let text = errors.join("\n");
    assert!(
        text.contains("resolver::dns::port: \"http\" is not a port number"),
        "{text}"
    );
    assert!(
        text.contains("resolver::dns::nameserver: \"nowhere\" is not an ip:port"),
        "{text}"
    );
    assert!(diagnostics("resolver: { k8s: { service: gw.ns, ports: [4317] } }").is_empty());
    let errors = diagnostics("resolver: { k8s: { service: gw.ns.svc } }");
    assert!(
        errors
            .join("\n")
            .contains("resolver: k8s::service: \"gw.ns.svc\" lacks the cluster domain"),
        "{errors:?}"
    );
    let errors = diagnostics("resolver: { static: { hostnames: [a] } }\nprotocl: {}");
    assert!(errors.join("\n").contains("unknown field"), "{errors:?}");
}

/// The errors of `yaml`'s exporter listed in a pipeline of `signal`.
fn signal_errors(yaml: &str, signal: weft_config::SignalKind) -> Vec<String> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("loadbalancing");
    let cfg = weft_config::decode_component::<Config>(&value, &path, &mut diags).unwrap();
    weft_config::ComponentConfig::validate_signal(&cfg, signal, &path, &mut diags);
    diags.errors().map(ToString::to_string).collect()
}

#[test]
fn each_signal_takes_its_own_routing_keys() {
    use weft_config::SignalKind::{Logs, Metrics, Traces};
    let resolver = "resolver: { static: { hostnames: [a] } }\n";
    // Unset: every signal takes its default (trace id for spans and logs, service for metrics).
    let unset = weft_config::decode_component::<Config>(
        &serde_yaml::from_str(resolver).unwrap(),
        &ConfigPath::root(),
        &mut Diagnostics::new(),
    )
    .unwrap();
    assert_eq!(unset.routing_key(Traces), Ok(RoutingKey::TraceId));
    assert_eq!(unset.routing_key(Logs), Ok(RoutingKey::TraceId));
    assert_eq!(unset.routing_key(Metrics), Ok(RoutingKey::Service));
    for signal in [Traces, Logs, Metrics] {
        assert!(signal_errors(resolver, signal).is_empty());
        assert!(signal_errors(&format!("{resolver}routing_key: service"), signal).is_empty());
    }
    for key in ["resource", "metric", "streamID"] {
        let yaml = format!("{resolver}routing_key: {key}");
        assert!(signal_errors(&yaml, Metrics).is_empty(), "{key}");
        assert!(diagnostics(&yaml).is_empty(), "{key}");
        let errors = signal_errors(&yaml, Traces).join("\n");
        assert!(
            errors.contains(&format!("exporters::loadbalancing::routing_key: \"{key}\" cannot route traces, and a traces pipeline lists this exporter; traces take \"traceID\" (the default) or \"service\"")),
            "{errors}"
        );
    }
    let errors = signal_errors(&format!("{resolver}routing_key: traceID"), Metrics).join("\n");
    assert!(
        errors.contains("exporters::loadbalancing::routing_key: \"traceID\" cannot route metrics, and a metrics pipeline lists this exporter; metrics take \"service\" (the default), \"resource\", \"metric\" or \"streamID\""),
        "{errors}"
    );
}
