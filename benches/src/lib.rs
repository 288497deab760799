//! Payloads shared by Weft's benches: realistic OTLP requests built once, up front.

use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// `traces` traces of `spans_per_trace` spans each, 15 attributes per span, across 3 services.
pub fn traces_request(traces: usize, spans_per_trace: usize) -> ExportTraceServiceRequest {
    let services = ["checkout", "payments", "inventory"];
    let mut resource_spans: Vec<ResourceSpans> = services
        .iter()
        .map(|s| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", any_value::Value::StringValue(s.to_string())),
                    kv(
                        "service.version",
                        any_value::Value::StringValue("1.4.2".into()),
                    ),
                    kv("host.name", any_value::Value::StringValue("node-17".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    version: "2.1.0".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    for t in 0..traces {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&(t as u64 + 1).to_be_bytes());
        for s in 0..spans_per_trace {
            let mut attributes = vec![
                kv(
                    "http.request.method",
                    any_value::Value::StringValue("GET".into()),
                ),
                kv(
                    "http.route",
                    any_value::Value::StringValue("/api/orders/{id}".into()),
                ),
                kv("http.response.status_code", any_value::Value::IntValue(200)),
                kv(
                    "url.full",
                    any_value::Value::StringValue(format!(
                        "https://shop.example.com/api/orders/{t}"
                    )),
                ),
                kv(
                    "server.address",
                    any_value::Value::StringValue("shop.example.com".into()),
                ),
                kv(
                    "network.protocol.version",
                    any_value::Value::StringValue("1.1".into()),
                ),
                kv(
                    "user_agent.original",
                    any_value::Value::StringValue("Mozilla/5.0 (X11; Linux x86_64)".into()),
                ),
                kv(
                    "biz_order_id",
                    any_value::Value::StringValue(format!("ord-{t:08}")),
                ),
                kv(
                    "biz_user_id",
                    any_value::Value::StringValue(format!("u-{}", t % 997)),
                ),
                kv("retry", any_value::Value::BoolValue(false)),
                kv("db.rows", any_value::Value::IntValue(s as i64)),
                kv("load", any_value::Value::DoubleValue(0.25)),
            ];
            attributes.extend((0..3).map(|i| {
                kv(
                    &format!("custom.tag.{i}"),
                    any_value::Value::StringValue("value".into()),
                )
            }));
            let span = Span {
                trace_id: trace_id.to_vec(),
                span_id: ((t * 100 + s) as u64 + 1).to_be_bytes().to_vec(),
                parent_span_id: if s == 0 {
                    vec![]
                } else {
                    ((t * 100) as u64 + 1).to_be_bytes().to_vec()
                },
                name: format!("GET /api/orders/{{id}} step {s}"),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: 1_700_000_000_000_000_000 + (t * 1000 + s) as u64,
                end_time_unix_nano: 1_700_000_000_000_500_000 + (t * 1000 + s) as u64,
                attributes,
                status: Some(Status {
                    code: status::StatusCode::Ok as i32,
                    ..Default::default()
                }),
                ..Default::default()
            };
            resource_spans[s % services.len()].scope_spans[0]
                .spans
                .push(span);
        }
    }
    ExportTraceServiceRequest { resource_spans }
}

/// Completes on SIGTERM or Ctrl-C: the harness servers' (weft-sink, weft-floor) shutdown.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
