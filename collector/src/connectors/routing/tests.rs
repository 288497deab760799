//! The routing connector on its own: which record goes where, grouped per pipeline; the
//! error modes; what a table may say. (Through the service, with the pipeline checks:
//! `service/tests.rs`.)

use std::sync::Arc;

use async_trait::async_trait;
use weft_config::{Kind, PipelineId};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource as ResourceProto;

use super::*;
use crate::pipeline::Logs;
use crate::processors::testutil::{attr, config, kv, records, string, Recorder};
use crate::telemetry::Telemetry;

/// One resource per service, each with records `(body, severity_text)`.
fn batch(resources: &[(&str, &[(&str, &str)])]) -> Logs {
    let request = ExportLogsServiceRequest {
        resource_logs: resources
            .iter()
            .map(|(service, recs)| ResourceLogs {
                resource: Some(ResourceProto {
                    attributes: vec![kv("service.name", string(service))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: recs
                        .iter()
                        .map(|(body, severity)| LogRecord {
                            body: Some(string(body)),
                            severity_text: severity.to_string(),
                            attributes: vec![kv("body", string(body))],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    };
    let n = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    Logs::from_encoded(prost::Message::encode_to_vec(&request).into(), n)
}

/// A consumer that refuses everything, retryably or not.
struct Refuses(bool);

#[async_trait]
impl Consumer<Logs> for Refuses {
    async fn consume(&self, _: Logs) -> Result<(), ConsumeError> {
        Err(if self.0 {
            ConsumeError::unavailable("full", std::time::Duration::from_secs(1))
        } else {
            ConsumeError::Permanent("bad".into())
        })
    }
}

struct Built {
    connector: Arc<dyn Processor<Logs>>,
    sinks: Vec<Arc<Recorder<Logs>>>,
}

fn build_with(yaml: &str, t: &Telemetry, pipelines: &[&str]) -> Built {
    let (cfg, diags) = config::<Config>("connectors::routing", yaml);
    assert!(diags.iter().all(|d| d.starts_with("warning")), "{diags:#?}");
    let sinks: Vec<_> = pipelines.iter().map(|_| Recorder::new()).collect();
    let targets = pipelines
        .iter()
        .zip(&sinks)
        .map(|(p, s)| {
            (
                p.parse::<PipelineId>().unwrap(),
                s.clone() as Arc<dyn Consumer<Logs>>,
            )
        })
        .collect();
    let ctx = BuildContext::standalone("routing", Kind::Connector).with_telemetry(t);
    let connector = build::<ExportLogsServiceRequest>(ctx, &cfg.unwrap(), targets).unwrap();
    Built { connector, sinks }
}

/// The bodies each sink got, in order.
fn bodies(sink: &Recorder<Logs>) -> Vec<String> {
    records(&sink.batches.lock())
        .iter()
        .map(|r| attr(r, "body"))
        .collect()
}

/// The service names of the resources each sink got.
fn services(sink: &Recorder<Logs>) -> Vec<String> {
    sink.batches
        .lock()
        .iter()
        .flat_map(|b| b.request().into_owned().resource_logs)
        .map(|r| {
            let res = r.resource.unwrap_or_default();
            crate::ottl::Value::from_any(res.attributes[0].value.as_ref())
                .to_string_like()
                .unwrap()
                .unwrap()
                .into_owned()
        })
        .collect()
}

const TABLE: &str = r#"
default_pipelines: [logs/infra]
table:
  - context: log
    condition: severity_text == "ERROR"
    pipelines: [logs/errors]
  - condition: IsMatch(attributes["service.name"], "^(order|payment)-")
    pipelines: [logs/business]
"#;

const PIPELINES: &[&str] = &["logs/business", "logs/errors", "logs/infra"];

#[tokio::test]
async fn each_record_goes_to_the_first_route_that_holds_grouped_per_pipeline() {
    let t = Telemetry::new();
    let b = build_with(TABLE, &t, PIPELINES);
    b.connector
        .consume(batch(&[
            (
                "order-api",
                &[("o1", "INFO"), ("o2", "ERROR"), ("o3", "WARN")],
            ),
            ("kafka", &[("k1", "INFO"), ("k2", "ERROR")]),
            ("payment-api", &[("p1", "INFO")]),
        ]))
        .await
        .unwrap();
    let [business, errors, infra] = [&b.sinks[0], &b.sinks[1], &b.sinks[2]];
    assert_eq!(bodies(business), ["o1", "o3", "p1"]);
    assert_eq!(bodies(errors), ["o2", "k2"], "the first route wins");
    assert_eq!(bodies(infra), ["k1"], "no route: the default pipelines");
    // One batch per pipeline, each record under a copy of its own resource.
    for sink in [business, errors, infra] {
        assert_eq!(sink.batches.lock().len(), 1);
    }
    assert_eq!(services(business), ["order-api", "payment-api"]);
    assert_eq!(services(errors), ["order-api", "kafka"]);
    let routed = |p: &str| {
        t.counter_value(
            "weft_connector_routing_routed_log_records",
            &[("connector", "routing"), ("pipeline", p)],
        )
    };
    assert_eq!(
        (
            routed("logs/business"),
            routed("logs/errors"),
            routed("logs/infra")
        ),
        (3, 2, 1)
    );
}

#[tokio::test]
async fn a_batch_all_for_one_pipeline_goes_on_still_encoded() {
    let t = Telemetry::new();
    let b = build_with(TABLE, &t, PIPELINES);
    b.connector
        .consume(batch(&[("order-api", &[("o1", "INFO"), ("o2", "DEBUG")])]))
        .await
        .unwrap();
    let got = b.sinks[0].batches.lock();
    assert_eq!(got.len(), 1);
    assert!(got[0].is_encoded(), "not decoded and encoded again");
}

#[tokio::test]
async fn match_once_false_sends_a_record_to_every_route_that_holds() {
    let t = Telemetry::new();
    let b = build_with(&format!("match_once: false\n{TABLE}"), &t, PIPELINES);
    b.connector
        .consume(batch(&[("order-api", &[("o1", "ERROR"), ("o2", "INFO")])]))
        .await
        .unwrap();
    assert_eq!(bodies(&b.sinks[0]), ["o1", "o2"]);
    assert_eq!(bodies(&b.sinks[1]), ["o1"]);
    assert!(bodies(&b.sinks[2]).is_empty());
}

#[tokio::test]
async fn without_default_pipelines_unrouted_records_are_dropped_and_counted() {
    let t = Telemetry::new();
    let yaml = "table: [{context: log, condition: 'severity_text == \"ERROR\"', pipelines: [logs/errors]}]";
    let b = build_with(yaml, &t, &["logs/errors"]);
    b.connector
        .consume(batch(&[(
            "a",
            &[("x", "INFO"), ("y", "ERROR"), ("z", "INFO")],
        )]))
        .await
        .unwrap();
    assert_eq!(bodies(&b.sinks[0]), ["y"]);
    assert_eq!(
        t.counter_value(
            "weft_connector_routing_unrouted_log_records",
            &[("connector", "routing")]
        ),
        2
    );
    // Nothing routed at all: nothing is sent, and the answer is Ok.
    b.connector
        .consume(batch(&[("a", &[("x", "INFO")])]))
        .await
        .unwrap();
    assert_eq!(b.sinks[0].batches.lock().len(), 1);
}

#[tokio::test]
async fn errors_follow_the_error_mode() {
    // Int() of a string that is not a number is nil; nil > 1 is false. A string compared
    // with `*` is an error.
    let table = |mode: &str| {
        format!(
            "error_mode: {mode}\ndefault_pipelines: [logs/infra]\ntable:\n  - context: log\n    condition: 'body * 2 > 1'\n    pipelines: [logs/errors]\n"
        )
    };
    let t = Telemetry::new();
    let b = build_with(&table("propagate"), &t, &["logs/errors", "logs/infra"]);
    let err = b
        .connector
        .consume(batch(&[("a", &[("x", "INFO")])]))
        .await
        .unwrap_err();
    assert!(matches!(err, ConsumeError::Permanent(_)), "{err:?}");
    assert!(b.sinks.iter().all(|s| s.batches.lock().is_empty()));

    let t = Telemetry::new();
    let b = build_with(&table("ignore"), &t, &["logs/errors", "logs/infra"]);
    b.connector
        .consume(batch(&[("a", &[("x", "INFO"), ("y", "INFO")])]))
        .await
        .unwrap();
    assert_eq!(
        bodies(&b.sinks[1]),
        ["x", "y"],
        "failed records go to the default"
    );
    assert_eq!(
        t.counter_value(
            "weft_connector_routing_errors",
            &[("connector", "routing"), ("data_type", "logs")]
        ),
        2
    );
}

#[tokio::test]
async fn a_refusal_from_any_pipeline_goes_back_retryable_first() {
    let (cfg, _) = config::<Config>("connectors::routing", TABLE);
    let ok = Recorder::new();
    let targets: ConnectorTargets<Logs> = vec![
        ("logs/business".parse().unwrap(), Arc::new(Refuses(false))),
        ("logs/errors".parse().unwrap(), Arc::new(Refuses(true))),
        ("logs/infra".parse().unwrap(), ok.clone()),
    ];
    let ctx = BuildContext::standalone("routing", Kind::Connector);
    let c = build::<ExportLogsServiceRequest>(ctx, &cfg.unwrap(), targets).unwrap();
    let err = c
        .consume(batch(&[
            ("order-api", &[("o1", "INFO"), ("o2", "ERROR")]),
            ("kafka", &[("k1", "INFO")]),
        ]))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(
        records(&ok.batches.lock()).len(),
        1,
        "the others were still fed"
    );
}

#[tokio::test]
async fn a_statement_routes_as_its_condition() {
    let t = Telemetry::new();
    let yaml = r#"
default_pipelines: [logs/infra]
table:
  - statement: route() where attributes["service.name"] == "kafka"
    pipelines: [logs/errors]
"#;
    let b = build_with(yaml, &t, &["logs/errors", "logs/infra"]);
    b.connector
        .consume(batch(&[
            ("kafka", &[("k", "INFO")]),
            ("web", &[("w", "INFO")]),
        ]))
        .await
        .unwrap();
    assert_eq!(bodies(&b.sinks[0]), ["k"]);
    assert_eq!(bodies(&b.sinks[1]), ["w"]);
}

#[test]
fn every_mistake_in_a_table_is_reported_with_its_path() {
    let (_, diags) = config::<Config>(
        "connectors::routing",
        r#"
table:
  - condition: attributes["a"] ==
    pipelines: [logs/a]
  - context: request
    condition: request["X-Tenant"] == "acme"
    pipelines: [logs/a]
  - pipelines: [logs/a]
  - condition: 'true'
    statement: route()
    pipelines: [logs/a]
  - statement: set(attributes["a"], 1)
    pipelines: [logs/a]
  - context: log
    condition: severity == 1
    pipelines: []
"#,
    );
    let expect = [
        "error: connectors::routing::table[0]::condition: column 19: expected a value",
        "error: connectors::routing::table[1]::context: the request context",
        "error: connectors::routing::table[2]: a route needs a condition (or a statement)",
        "error: connectors::routing::table[3]: a route has either a condition or a statement, not both",
        "error: connectors::routing::table[4]::statement: column 1: a routing statement is `route() where <condition>`, not \"set\"",
        "error: connectors::routing::table[5]::pipelines: a route needs at least one pipeline",
        "error: connectors::routing::table[5]::condition: column 1: unsupported path \"severity\" in the log context",
        "warning: connectors::routing::default_pipelines: no default_pipelines",
    ];
    for e in expect {
        assert!(
            diags.iter().any(|d| d.starts_with(e)),
            "missing {e:?} in {diags:#?}"
        );
    }
    assert_eq!(diags.len(), expect.len(), "{diags:#?}");
    let (_, diags) = config::<Config>("connectors::routing", "{}");
    assert_eq!(
        diags,
        ["error: connectors::routing::table: the routing table is empty: add at least one route {condition, pipelines}"]
    );
}
