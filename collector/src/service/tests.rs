//! The service graph: pipelines joined by connectors, built downstream first; and the checks
//! that span components (signals per pipeline, connectors used on both sides, no cycle).
//!
//! The pipelines here are fed and drained by two test components registered next to the
//! built-in ones: `capture` (a receiver that hands its consumers to the test) and `record`
//! (an exporter that remembers every batch by signal).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::Deserialize;
use weft_config::{ComponentConfig, Kind, SignalKind};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::component::{BuiltExporter, ExporterFactory, ReceiverFactory, Stability};
use crate::pipeline::{
    all_signals, ConsumeError, Consumer, Consumers, Logs, MakeConsumer, Payload, Traces,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}
impl ComponentConfig for Empty {}

/// (signal, item count) of each batch an exporter got, in order.
type Batches = Vec<(SignalKind, usize)>;

/// What the test components saw: each `capture` receiver's consumers, and each `record`
/// exporter's batches as (signal, item count).
#[derive(Clone, Default)]
struct Seen {
    receivers: Arc<Mutex<HashMap<String, Consumers>>>,
    exported: Arc<Mutex<HashMap<String, Batches>>>,
    /// The service graph as a component built by the service sees it.
    graph: Arc<Mutex<Option<Arc<ServiceGraph>>>>,
}

impl Seen {
    fn receiver(&self, id: &str) -> Consumers {
        self.receivers
            .lock()
            .get(id)
            .cloned()
            .unwrap_or_else(|| panic!("receiver {id} was not built"))
    }

    fn exported(&self, id: &str) -> Vec<(SignalKind, usize)> {
        self.exported.lock().get(id).cloned().unwrap_or_default()
    }
}

struct Recorder {
    id: String,
    seen: Seen,
}

#[async_trait]
impl<T: Payload> Consumer<T> for Recorder {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        self.seen
            .exported
            .lock()
            .entry(self.id.clone())
            .or_default()
            .push((T::SIGNAL, data.item_count()));
        Ok(())
    }
}

struct MakeRecorder<'a> {
    id: String,
    seen: &'a Seen,
}

impl MakeConsumer for MakeRecorder<'_> {
    fn consumer<T: Payload>(&self) -> anyhow::Result<Arc<dyn Consumer<T>>> {
        Ok(Arc::new(Recorder {
            id: self.id.clone(),
            seen: self.seen.clone(),
        }))
    }
}

struct Nothing;
impl Component for Nothing {}

/// The built-in registry plus `capture` and `record`, reporting to `seen`.
fn registry(seen: &Seen) -> Registry {
    let mut registry = Registry::builtin();
    let receivers = seen.clone();
    registry.receivers.push(ReceiverFactory::new::<Empty>(
        "capture",
        Stability::Development,
        all_signals(),
        "test: hands its consumers to the test",
        move |ctx, _cfg, next| {
            receivers.receivers.lock().insert(ctx.id_str(), next);
            *receivers.graph.lock() = ctx.shared.service_graph();
            Ok(Arc::new(Nothing) as Arc<dyn Component>)
        },
    ));
    let exporters = seen.clone();
    registry.exporters.push(ExporterFactory::new::<Empty>(
        "record",
        Stability::Development,
        all_signals(),
        "test: remembers every batch",
        move |ctx, _cfg, signals| {
            let make = MakeRecorder {
                id: ctx.id_str(),
                seen: &exporters,
            };
            Ok(BuiltExporter {
                consumers: Consumers::build(signals, &make)?,
                component: Arc::new(Nothing),
            })
        },
    ));
    registry
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(yaml: &str, registry: &Registry) -> LoadedConfig {
    load_config(yaml, &no_env, registry)
}

fn errors(loaded: &LoadedConfig) -> Vec<String> {
    loaded.diagnostics.errors().map(|d| d.to_string()).collect()
}

fn spans(n: usize) -> Traces {
    Traces::from(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn records(n: usize) -> Logs {
    Logs::from(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

async fn started(yaml: &str, seen: &Seen) -> Service {
    let registry = registry(seen);
    let loaded = load(yaml, &registry);
    assert!(loaded.is_valid(), "{}", loaded.diagnostics);
    let service = Service::build(&loaded, &registry).expect("builds");
    service.start().await.expect("starts");
    service
}

const NO_METRICS: &str = "  telemetry: {metrics: {level: none}}\n";

#[tokio::test]
async fn forward_joins_pipelines_and_splits_them_again() {
    let seen = Seen::default();
    let yaml = format!(
        r#"
receivers: {{capture/a: , capture/b: }}
connectors: {{forward: }}
processors: {{batch: {{timeout: 1ms}}}}
exporters: {{record/x: , record/y: }}
service:
  pipelines:
    traces/a: {{receivers: [capture/a], exporters: [forward]}}
    traces/b: {{receivers: [capture/b], exporters: [forward]}}
    traces/x: {{receivers: [forward], exporters: [record/x]}}
    traces/y: {{receivers: [forward], processors: [batch], exporters: [record/y]}}
    logs: {{receivers: [capture/a], exporters: [forward]}}
    logs/x: {{receivers: [forward], exporters: [record/x]}}
{NO_METRICS}"#
    );
    let service = started(&yaml, &seen).await;
    let a = seen.receiver("capture/a");
    let b = seen.receiver("capture/b");
    assert_eq!(a.signals(), [SignalKind::Traces, SignalKind::Logs]);
    assert_eq!(b.signals(), [SignalKind::Traces]);
    a.get::<Traces>().unwrap().consume(spans(2)).await.unwrap();
    b.get::<Traces>().unwrap().consume(spans(3)).await.unwrap();
    a.get::<Logs>().unwrap().consume(records(4)).await.unwrap();
    // Shutdown flushes the batch processor in traces/y.
    service
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
    let x = seen.exported("record/x");
    assert_eq!(
        x,
        [
            (SignalKind::Traces, 2),
            (SignalKind::Traces, 3),
            (SignalKind::Logs, 4)
        ]
    );
    let y: usize = seen
        .exported("record/y")
        .iter()
        .map(|(signal, n)| {
            assert_eq!(*signal, SignalKind::Traces);
            n
        })
        .sum();
    assert_eq!(y, 5, "traces/y got every span from both pipelines");
}

#[tokio::test]
async fn components_see_the_graph_and_each_processor_counts_what_passes() {
    let seen = Seen::default();
    let yaml = format!(
        r#"
receivers: {{capture: }}
connectors: {{forward: }}
processors: {{batch: {{timeout: 1ms}}, memory_limiter: {{check_interval: 1s, limit_mib: 100000}}}}
exporters: {{record: }}
extensions: {{health_check: {{endpoint: "127.0.0.1:0"}}}}
service:
  extensions: [health_check]
  pipelines:
    traces: {{receivers: [capture], processors: [memory_limiter, batch], exporters: [forward]}}
    traces/out: {{receivers: [forward], exporters: [record]}}
{NO_METRICS}"#
    );
    let service = started(&yaml, &seen).await;
    let graph = seen
        .graph
        .lock()
        .clone()
        .expect("the service shares its graph");
    let ids = |list: &[ComponentId]| list.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(graph.pipelines.len(), 2);
    assert_eq!(graph.pipelines[0].id.to_string(), "traces");
    assert_eq!(
        ids(&graph.pipelines[0].processors),
        ["memory_limiter", "batch"]
    );
    assert_eq!(ids(&graph.pipelines[0].exporters), ["forward"]);
    assert_eq!(ids(&graph.connectors), ["forward"]);
    assert_eq!(ids(&graph.extensions), ["health_check"]);

    let entry = seen.receiver("capture");
    entry
        .get::<Traces>()
        .unwrap()
        .consume(spans(4))
        .await
        .unwrap();
    service
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
    let count = |name: &str, processor: &str| {
        service
            .telemetry()
            .counter_value(name, &[("processor", processor), ("otel_signal", "traces")])
    };
    for processor in ["memory_limiter", "batch"] {
        assert_eq!(count("otelcol_processor_incoming_items", processor), 4);
        assert_eq!(count("otelcol_processor_outgoing_items", processor), 4);
    }
    assert_eq!(seen.exported("record"), [(SignalKind::Traces, 4)]);
}

#[tokio::test]
async fn a_connector_used_in_a_chain_is_built_once_per_signal_pair() {
    let seen = Seen::default();
    // in → forward/1 → middle → forward/2 → out: pipelines must be built back to front.
    let yaml = format!(
        r#"
receivers: {{capture: }}
connectors: {{forward/1: , forward/2: }}
exporters: {{record: }}
service:
  pipelines:
    traces/out: {{receivers: [forward/2], exporters: [record]}}
    traces/in: {{receivers: [capture], exporters: [forward/1]}}
    traces/middle: {{receivers: [forward/1], exporters: [forward/2]}}
{NO_METRICS}"#
    );
    let service = started(&yaml, &seen).await;
    seen.receiver("capture")
        .get::<Traces>()
        .unwrap()
        .consume(spans(7))
        .await
        .unwrap();
    service
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(seen.exported("record"), [(SignalKind::Traces, 7)]);
}

#[test]
fn connectors_are_checked_for_use_on_both_sides_signals_and_cycles() {
    let seen = Seen::default();
    let registry = registry(&seen);
    let loaded = load(
        r#"
receivers: {capture: }
connectors: {forward/only_out: , forward/only_in: , forward/loop: , forward/mixed: }
exporters: {record: }
service:
  pipelines:
    traces/a: {receivers: [capture], exporters: [forward/only_out, forward/mixed]}
    traces/b: {receivers: [forward/only_in], exporters: [record]}
    logs/m: {receivers: [forward/mixed], exporters: [record]}
    logs/c: {receivers: [capture, forward/loop], exporters: [forward/loop]}
"#,
        &registry,
    );
    let all = errors(&loaded);
    let expect = [
        "error: connectors::forward/only_out: connector \"forward/only_out\" is an exporter of a pipeline but no pipeline receives from it",
        "error: connectors::forward/only_in: connector \"forward/only_in\" is a receiver of a pipeline but no pipeline exports to it",
        "error: service::pipelines: connectors make a cycle through pipelines \"logs/c\"",
        "error: service::pipelines::traces/a::exporters[1]: connector \"forward/mixed\" is an exporter of this traces pipeline, but none of the pipelines on its other side (\"logs/m\") has a signal it can connect to; it connects traces to traces, logs to logs",
        "error: service::pipelines::logs/m::receivers[0]: connector \"forward/mixed\" is a receiver of this logs pipeline, but none of the pipelines on its other side (\"traces/a\") has a signal it can connect to",
    ];
    for e in expect {
        assert!(
            all.iter().any(|m| m.starts_with(e)),
            "missing {e:?} in {all:#?}"
        );
    }
    assert_eq!(all.len(), expect.len(), "{all:#?}");
}

#[test]
fn an_id_defined_as_receiver_and_connector_is_ambiguous() {
    let seen = Seen::default();
    let registry = registry(&seen);
    let loaded = load(
        r#"
receivers: {capture: }
connectors: {capture: }
exporters: {record: }
service:
  pipelines:
    traces: {receivers: [capture], exporters: [record]}
"#,
        &registry,
    );
    let all = errors(&loaded);
    assert!(
        all.iter().any(|m| m.contains(
            "service::pipelines::traces::receivers[0]: \"capture\" is defined both under receivers and under connectors"
        )),
        "{all:#?}"
    );
}

#[test]
fn a_component_in_a_pipeline_of_a_signal_it_does_not_take_is_an_error() {
    let seen = Seen::default();
    let mut registry = registry(&seen);
    // A processor registered for traces only takes no logs.
    registry.processors.push(
        crate::component::ProcessorFactory::new::<Empty>(
            "traces_only",
            Stability::Development,
            "test",
        )
        .signal::<ExportTraceServiceRequest, Empty>(|_, _, next| Ok(Arc::new(Pass(next)))),
    );
    let loaded = load(
        r#"
receivers: {capture: }
processors: {traces_only: }
exporters: {record: }
service:
  pipelines:
    traces: {receivers: [capture], processors: [traces_only], exporters: [record]}
    logs: {receivers: [capture], processors: [traces_only], exporters: [record]}
"#,
        &registry,
    );
    assert_eq!(
        errors(&loaded),
        ["error: service::pipelines::logs::processors[0]: processor \"traces_only\" does not support logs pipelines (it takes traces)"]
    );
}

/// A processor that passes batches on.
struct Pass<T>(Arc<dyn Consumer<T>>);

#[async_trait]
impl<T: Payload> Consumer<T> for Pass<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        self.0.consume(data).await
    }
}

impl<T: Payload> Component for Pass<T> {}

#[test]
fn every_factory_registers_build_functions_of_its_own_config_type() {
    // `ProcessorFactory::signal` and `ConnectorFactory::connect` panic on a mismatch: building
    // the registry is the check.
    let registry = Registry::builtin();
    for kind in Kind::ALL {
        for info in registry.infos(kind) {
            if matches!(kind, Kind::Receiver | Kind::Processor | Kind::Exporter) {
                assert!(
                    !info.signals.is_empty(),
                    "{} takes no signal",
                    info.type_name
                );
            }
        }
    }
}

/// Records with the given `service.name` resources, one record each.
fn records_of(services: &[&str]) -> Logs {
    use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
    Logs::from(ExportLogsServiceRequest {
        resource_logs: services
            .iter()
            .map(|s| ResourceLogs {
                resource: Some(weft_proto::resource::v1::Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(s.to_string())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default()],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    })
}

#[tokio::test]
async fn routing_sends_each_record_to_the_pipeline_its_route_names() {
    let seen = Seen::default();
    let yaml = format!(
        r#"
receivers: {{capture: }}
connectors:
  routing:
    default_pipelines: [logs/infra]
    table:
      - condition: IsMatch(attributes["service.name"], "^(order|payment)-")
        pipelines: [logs/business]
      - condition: attributes["service.name"] == "kafka"
        pipelines: [traces/x, logs/infra]
exporters: {{record/business: , record/infra: , record/traces: }}
service:
  pipelines:
    logs/in: {{receivers: [capture], exporters: [routing]}}
    logs/business: {{receivers: [routing], exporters: [record/business]}}
    logs/infra: {{receivers: [routing], exporters: [record/infra]}}
    traces/in: {{receivers: [capture], exporters: [routing]}}
    traces/x: {{receivers: [routing], exporters: [record/traces]}}
{NO_METRICS}"#
    );
    let service = started(&yaml, &seen).await;
    let logs = seen.receiver("capture").get::<Logs>().unwrap();
    logs.consume(records_of(&["order-api", "kafka", "payment-api", "redis"]))
        .await
        .unwrap();
    service
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(seen.exported("record/business"), [(SignalKind::Logs, 2)]);
    assert_eq!(
        seen.exported("record/infra"),
        [(SignalKind::Logs, 2)],
        "kafka by its route (whose traces pipeline is not for logs), redis by default"
    );
    assert!(seen.exported("record/traces").is_empty());
}

#[test]
fn routing_tables_name_pipelines_that_exist_receive_from_it_and_take_its_signal() {
    let seen = Seen::default();
    let registry = registry(&seen);
    let loaded = load(
        r#"
receivers: {capture: }
connectors:
  routing:
    default_pipelines: [logs/missing]
    table:
      - {condition: 'true', pipelines: [logs/a, logs/not_receiving, "metrics/x"]}
      - {context: span, condition: 'name == "x"', pipelines: [logs/b]}
      - {context: log, condition: 'body == "x"', pipelines: [traces/t]}
exporters: {record: }
service:
  pipelines:
    logs/in: {receivers: [capture], exporters: [routing]}
    logs/a: {receivers: [routing], exporters: [record]}
    logs/b: {receivers: [routing], exporters: [record]}
    logs/never: {receivers: [routing], exporters: [record]}
    logs/not_receiving: {receivers: [capture], exporters: [record]}
    traces/t: {receivers: [routing], exporters: [record]}
"#,
        &registry,
    );
    let all: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    let expect = [
        "error: connectors::routing::table[0]::pipelines[1]: pipeline \"logs/not_receiving\" does not list connector \"routing\" under its receivers",
        "error: connectors::routing::table[0]::pipelines[2]: references pipeline \"metrics/x\" which is not defined under service::pipelines",
        "error: connectors::routing::table[1]::pipelines[0]: pipeline \"logs/b\" is a logs pipeline, but this key sends only traces data",
        "error: connectors::routing::table[2]::pipelines[0]: pipeline \"traces/t\" is a traces pipeline, but this key sends only logs data",
        "error: connectors::routing::default_pipelines[0]: references pipeline \"logs/missing\" which is not defined under service::pipelines",
        "warning: service::pipelines::logs/never::receivers[0]: pipeline \"logs/never\" receives from connector \"routing\", but no route of it names this pipeline",
    ];
    for e in expect {
        assert!(
            all.iter().any(|m| m.starts_with(e)),
            "missing {e:?} in {all:#?}"
        );
    }
    // traces/t is fed by no traces pipeline: the generic connector check says so too.
    assert!(
        all.iter()
            .any(|m| m.starts_with("error: service::pipelines::traces/t::receivers[0]")),
        "{all:#?}"
    );
    assert_eq!(all.len(), expect.len() + 1, "{all:#?}");
}

#[test]
fn a_schema_that_routes_warns_when_its_pipeline_exports_to_no_connector() {
    let seen = Seen::default();
    let registry = registry(&seen);
    let yaml = |exporters: &str| {
        format!(
            r#"
receivers: {{capture: }}
processors:
  schema: {{action: route, schema: {{type: object}}}}
connectors:
  routing:
    default_pipelines: [logs/valid]
    table: [{{context: log, condition: 'attributes["weft.schema.errors"] != nil', pipelines: [logs/dead]}}]
exporters: {{record: }}
service:
  pipelines:
    logs/in: {{receivers: [capture], processors: [schema], exporters: [{exporters}]}}
    logs/valid: {{receivers: [routing], exporters: [record]}}
    logs/dead: {{receivers: [routing], exporters: [record]}}
    logs/other: {{receivers: [capture], exporters: [routing]}}
"#
        )
    };
    let warnings = |loaded: &LoadedConfig| -> Vec<String> {
        loaded
            .diagnostics
            .warnings()
            .map(|d| d.to_string())
            .collect()
    };
    let loaded = load(&yaml("routing"), &registry);
    assert!(loaded.is_valid(), "{}", loaded.diagnostics);
    assert!(warnings(&loaded).is_empty(), "{:#?}", warnings(&loaded));
    let loaded = load(&yaml("record"), &registry);
    assert!(
        loaded.is_valid(),
        "a warning, not an error: {}",
        loaded.diagnostics
    );
    assert_eq!(
        warnings(&loaded),
        ["warning: service::pipelines::logs/in::processors[0]: processor \"schema\": action: route tags invalid records with weft.schema.errors for a routing connector after it to send to a dead-letter pipeline; but this pipeline exports to no connector"]
    );
}

/// The signals column of `weft components` is the one place that says which signals a
/// component takes: a description that names some signals (what it carries) names every
/// one the component takes, so it cannot go stale when a signal is added (`otlp` once said
/// "traces and logs" while it carried metrics).
#[test]
fn a_description_naming_signals_names_all_the_component_takes() {
    let registry = Registry::builtin();
    let words = [
        (SignalKind::Traces, ["traces", "spans"]),
        (SignalKind::Logs, ["logs", "log records"]),
        (SignalKind::Metrics, ["metrics", "metrics"]),
    ];
    for kind in Kind::ALL {
        for info in registry.infos(kind) {
            let takes: Vec<SignalKind> = match registry.connector(info.type_name) {
                Some(c) if kind == Kind::Connector => c
                    .pairs()
                    .into_iter()
                    .flat_map(|(from, to)| [from, to])
                    .collect(),
                _ => info.signals.clone(),
            };
            let text = info.description.to_lowercase();
            let named: Vec<SignalKind> = words
                .iter()
                .filter(|(_, w)| {
                    w.iter().any(|w| {
                        text.match_indices(w).any(|(at, _)| {
                            let before = text[..at].chars().next_back();
                            let after = text[at + w.len()..].chars().next();
                            !before.is_some_and(char::is_alphanumeric)
                                && !after.is_some_and(char::is_alphanumeric)
                        })
                    })
                })
                .map(|(s, _)| *s)
                .collect();
            if named.is_empty() {
                continue;
            }
            for signal in &takes {
                assert!(
                    named.contains(signal),
                    "{} {}: its description names {named:?} but not {signal}, which it takes: \"{}\"",
                    kind.singular(),
                    info.type_name,
                    info.description
                );
            }
        }
    }
}
