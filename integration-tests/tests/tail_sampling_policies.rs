//! The tail-sampling policies added as one module each — `trace_flags`, `bytes_limiting` and
//! `ottl_condition` — end to end: a real `weft` whose `tail_sampling` window sends kept spans
//! to a file exporter, traces sent over OTLP/gRPC by a Rust OTLP client (so each trace's
//! flags, attributes and size are exactly what the test says), and exactly the expected
//! traces arriving, each with every span, once.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use prost::Message;
use weft_integration_tests::{eventually, free_port, http_get, loopback, metric_value, Weft};
use weft_proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::span::{Event, SpanKind};
use weft_proto::trace::v1::status::StatusCode;
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

fn config(grpc: u16, metrics: u16, dir: &Path, policies: &str) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  tail_sampling:
    decision_wait: 1s
    policies:
{policies}
exporters:
  file/traces:
    path: {dir}/traces.jsonl
    flush_interval: 100ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [file/traces]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        dir = dir.display()
    )
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// One test trace: its id (the first byte numbers it) and spans, sent as one request under
/// one resource whose `service.name` is `service`.
struct TestTrace {
    id: [u8; 16],
    service: &'static str,
    spans: Vec<Span>,
}

impl TestTrace {
    fn new(n: u8, service: &'static str, spans: Vec<Span>) -> Self {
        let mut id = [0x5a; 16];
        id[0] = n;
        let spans = spans
            .into_iter()
            .enumerate()
            .map(|(i, span)| Span {
                trace_id: id.to_vec(),
                span_id: vec![n, i as u8 + 1, 0, 0, 0, 0, 0, 1],
                parent_span_id: if i == 0 {
                    vec![]
                } else {
                    vec![n, 1, 0, 0, 0, 0, 0, 1]
                },
                start_time_unix_nano: 1_700_000_000_000_000_000,
                end_time_unix_nano: 1_700_000_000_010_000_000,
                ..span
            })
            .collect();
        Self { id, service, spans }
    }

    fn hex_id(&self) -> String {
        hex::encode(self.id)
    }

    fn request(&self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", text(self.service))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "weft.test".into(),
                        ..Default::default()
                    }),
                    spans: self.spans.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

fn span(name: &str) -> Span {
    Span {
        name: name.into(),
        ..Default::default()
    }
}

/// (trace id, span id) in hex of every span the file exporter wrote, with repeats.
fn exported(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read(dir.join("traces.jsonl")).unwrap_or_default();
    let mut out = Vec::new();
    for line in weft_integration_tests::written_lines(&text) {
        let req = weft_proto::otlp_json::decode_traces(line).expect("OTLP/JSON line");
        for s in req
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
        {
            out.push((hex::encode(&s.trace_id), hex::encode(&s.span_id)));
        }
    }
    out
}

/// Starts weft with `policies`, sends `traces` one request each, in order, waits until the
/// spans of `kept` are out, reads `metrics` (series names), stops weft (which decides what
/// is still pending), and checks that exactly the spans of `kept` arrived, each once.
fn run(policies: &str, traces: &[TestTrace], kept: &[u8], metrics: &[&str]) -> Vec<f64> {
    let grpc = free_port();
    let metrics_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_path_buf();
    let weft = Weft::start(
        &config(grpc, metrics_port, &out, policies),
        &[SocketAddr::from(([127, 0, 0, 1], grpc))],
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(async {
            let mut client =
                TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await?;
            // One at a time: the window sees (and decides) the traces in this order.
            for trace in traces {
                client.export(trace.request()).await?;
            }
            anyhow::Ok(())
        })
        .unwrap_or_else(|e| panic!("sending failed: {e}\n{}", weft.log()));
    let expected: HashSet<(String, String)> = traces
        .iter()
        .filter(|t| kept.contains(&t.id[0]))
        .flat_map(|t| {
            t.spans
                .iter()
                .map(|s| (t.hex_id(), hex::encode(&s.span_id)))
        })
        .collect();
    // The decision tick decides after decision_wait (1s), not the shutdown.
    let arrived = eventually(Duration::from_secs(30), || {
        (exported(&out).len() >= expected.len()).then_some(())
    });
    assert!(
        arrived.is_some(),
        "kept spans did not arrive\n{}",
        weft.log()
    );
    let (_, exposition) = http_get(loopback(metrics_port), "/metrics").unwrap();
    let values = metrics
        .iter()
        .map(|series| metric_value(&exposition, series).unwrap_or(0.0))
        .collect();
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");

    let spans = exported(&out);
    let unique: HashSet<(String, String)> = spans.iter().cloned().collect();
    assert_eq!(unique.len(), spans.len(), "no span is exported twice");
    let by_trace = |set: &HashSet<(String, String)>| {
        let mut m: HashMap<String, usize> = HashMap::new();
        for (t, _) in set {
            *m.entry(t.clone()).or_default() += 1;
        }
        m
    };
    assert_eq!(
        by_trace(&unique),
        by_trace(&expected),
        "kept traces (trace id → spans)\n{log}"
    );
    assert_eq!(unique, expected);
    values
}

#[test]
fn trace_flags_keeps_exactly_the_traces_with_a_sampled_span() {
    let flagged = |name: &str, flags: u32| Span {
        flags,
        ..span(name)
    };
    let traces = [
        TestTrace::new(1, "checkout", vec![flagged("GET /", 0x01)]),
        TestTrace::new(
            2,
            "checkout",
            vec![flagged("GET /", 0x00), flagged("SELECT", 0x00)],
        ),
        // Remote-parent bits on their own are not "sampled"; the child's bit 0 is.
        TestTrace::new(
            3,
            "checkout",
            vec![flagged("GET /", 0x100), flagged("SELECT", 0x301)],
        ),
        TestTrace::new(
            4,
            "checkout",
            vec![flagged("GET /", 0x300), flagged("SELECT", 0x200)],
        ),
        TestTrace::new(
            5,
            "checkout",
            vec![span("GET /"), span("SELECT"), span("POST")],
        ),
        TestTrace::new(
            6,
            "checkout",
            vec![flagged("GET /", 0x00), flagged("SELECT", 0x01)],
        ),
    ];
    run(
        "      - {name: sampled-upstream, type: trace_flags}",
        &traces,
        &[1, 3, 6],
        &[],
    );
}

#[test]
fn bytes_limiting_keeps_traces_while_their_bytes_fit_the_bucket() {
    let padded = |n: u8, pad: usize| {
        TestTrace::new(
            n,
            "checkout",
            vec![Span {
                attributes: vec![kv("padding", text(&"p".repeat(pad)))],
                ..span("GET /")
            }],
        )
    };
    let traces = [
        padded(1, 300),
        padded(2, 5000),
        padded(3, 300),
        padded(4, 300),
    ];
    // A trace's size is its spans as an OTLP request, resource and scope once: here each
    // request holds exactly one trace.
    let sizes: Vec<usize> = traces.iter().map(|t| t.request().encoded_len()).collect();
    assert!(sizes[0] + sizes[2] <= 1000, "{sizes:?}");
    // At 1 byte per second the bucket refills by at most a few dozen bytes during the test.
    assert!(sizes[0] + sizes[2] + sizes[3] > 1000 + 200, "{sizes:?}");
    assert!(sizes[1] > 1000, "{sizes:?}");
    // Burst 1000 bytes, full at the start: trace 1 fits, trace 2 is larger than the burst and
    // takes nothing, trace 3 fits in what is left, trace 4 no longer does.
    run(
        "      - {name: budget, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1, burst_capacity: 1000}}",
        &traces,
        &[1, 3],
        &[],
    );
}

#[test]
fn ottl_conditions_keep_exactly_the_matching_traces_and_count_failures() {
    let with = |name: &str, kind: SpanKind, code: StatusCode, attrs: Vec<KeyValue>| Span {
        kind: kind as i32,
        status: Some(Status {
            code: code as i32,
            ..Default::default()
        }),
        attributes: attrs,
        ..span(name)
    };
    let server = SpanKind::Server;
    let client = SpanKind::Client;
    let route = |r: &str| vec![kv("http.route", text(r))];
    let exception = |kind: SpanKind| Span {
        events: vec![Event {
            name: "exception".into(),
            attributes: vec![kv("exception.type", text("TimeoutError"))],
            ..Default::default()
        }],
        ..with("call", kind, StatusCode::Unset, vec![])
    };
    let traces = [
        // 1: a failing checkout.
        TestTrace::new(
            1,
            "frontend",
            vec![
                with("GET", server, StatusCode::Ok, vec![]),
                with("POST", client, StatusCode::Error, route("/checkout")),
            ],
        ),
        // 2: a checkout that went well; 3: an error elsewhere.
        TestTrace::new(
            2,
            "frontend",
            vec![with("POST", server, StatusCode::Ok, route("/checkout"))],
        ),
        TestTrace::new(
            3,
            "frontend",
            vec![with("GET", server, StatusCode::Error, route("/home"))],
        ),
        // 4: an exception event on a server span; 5: on a client span.
        TestTrace::new(4, "frontend", vec![exception(server)]),
        TestTrace::new(5, "frontend", vec![exception(client)]),
        // 6: the payments service; 7: its health check.
        TestTrace::new(6, "payments", vec![span("charge")]),
        TestTrace::new(7, "payments", vec![span("health")]),
        // 8: "retries" is text, so `retries * 2` fails: the policy fails on this trace.
        TestTrace::new(
            8,
            "frontend",
            vec![with(
                "GET",
                server,
                StatusCode::Ok,
                vec![kv("retries", text("many"))],
            )],
        ),
        // 9: retries 5 * 2 > 6.
        TestTrace::new(
            9,
            "frontend",
            vec![with(
                "GET",
                server,
                StatusCode::Ok,
                vec![kv("retries", any_value::Value::IntValue(5))],
            )],
        ),
        // 10: no attributes at all: every condition reads nil.
        TestTrace::new(10, "frontend", vec![span("GET")]),
    ];
    let policies = r#"      - name: checkout-errors
        type: ottl_condition
        ottl_condition:
          span:
            - 'attributes["http.route"] == "/checkout" and status.code == STATUS_CODE_ERROR'
            - 'attributes["retries"] != nil and attributes["retries"] * 2 > 6'
      - name: payments
        type: ottl_condition
        ottl_condition:
          error_mode: ignore
          span:
            - 'IsMatch(resource.attributes["service.name"], "^pay") and not (name == "health")'
          spanevent:
            - 'name == "exception" and span.kind == SPAN_KIND_SERVER'"#;
    let metrics = run(
        policies,
        &traces,
        &[1, 4, 6, 9],
        &[
            r#"otelcol_processor_tail_sampling_sampling_policy_evaluation_error_total{processor="tail_sampling"}"#,
            r#"otelcol_processor_tail_sampling_count_traces_sampled_total{processor="tail_sampling",policy="checkout-errors",sampled="true"}"#,
            r#"otelcol_processor_tail_sampling_count_traces_sampled_total{processor="tail_sampling",policy="payments",sampled="true"}"#,
        ],
    );
    assert_eq!(
        metrics,
        vec![1.0, 2.0, 2.0],
        "evaluation errors, kept by each policy"
    );
}
