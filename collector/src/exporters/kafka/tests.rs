//! The exporter's message cutting and its config errors (delivery to a real broker is in
//! the `kafka_tier` integration test).

use weft_config::{ConfigPath, Diagnostics};
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::pipeline::Traces;

fn diagnostics(yaml: &str) -> Vec<String> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("kafka");
    if let Some(cfg) = weft_config::decode_component::<Config>(&value, &path, &mut diags) {
        weft_config::ComponentConfig::validate(&cfg, &path, &mut diags);
    }
    diags.errors().map(ToString::to_string).collect()
}

#[test]
fn the_collectors_keys_are_accepted_and_mistakes_named() {
    let ok = diagnostics(
        r#"
brokers: ["kafka-0:9092", "kafka-1:9092"]
traces: { topic: otlp_spans }
logs: { topic: otlp_logs, encoding: otlp_json }
encoding: otlp_proto
partition_traces_by_id: true
partition_logs_by_trace_id: true
producer: { compression: zstd, max_message_bytes: 2000000, required_acks: -1 }
auth:
  sasl: { username: weft, password: secret, mechanism: SCRAM-SHA-512 }
  tls: { ca_file: /etc/kafka/ca.pem }
"#,
    );
    assert!(ok.is_empty(), "{ok:?}");
    let text = diagnostics(
        r#"
brokers: [kafka]
encoding: avro
producer: { compression: brotli, required_acks: 2 }
auth: { sasl: { username: u, password: p, mechanism: GSSAPI } }
"#,
    )
    .join("\n");
    for expected in [
        "exporters::kafka::brokers[0]: \"kafka\" is not a host:port",
        "exporters::kafka::encoding: unknown encoding \"avro\"",
        "exporters::kafka::producer::compression: unknown compression \"brotli\"",
        "exporters::kafka::producer::required_acks: must be 0, 1 or -1",
        "exporters::kafka::auth::sasl::mechanism: \"GSSAPI\" is not supported",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
}

fn sender(by_trace: bool) -> KafkaSender<Traces> {
    let producer: FutureProducer<LoggingContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:1")
        .set("message.timeout.ms", "1000")
        .create_with_context(LoggingContext::new("kafka".into()))
        .unwrap();
    KafkaSender {
        producer: Arc::new(producer),
        log: LoggingContext::new("kafka".into()),
        topic: "t".into(),
        encoding: Encoding::Proto,
        layout: route::layout(SignalKind::Traces).filter(|_| by_trace),
        timeout: Duration::from_secs(1),
        _signal: PhantomData,
    }
}

#[tokio::test]
async fn partitioning_by_trace_makes_one_message_per_trace_keyed_by_its_id() {
    let spans = (0..6u8)
        .map(|i| Span {
            trace_id: vec![i % 3 + 1; 16],
            span_id: vec![i + 1; 8],
            ..Default::default()
        })
        .collect();
    let batch = Traces::from(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let messages = sender(true).messages(&batch);
    assert_eq!(messages.len(), 3);
    for (key, payload) in &messages {
        let req = <ExportTraceServiceRequest as prost::Message>::decode(&payload[..]).unwrap();
        let spans: Vec<_> = req.resource_spans[0].scope_spans[0].spans.clone();
        assert_eq!(spans.len(), 2);
        for s in spans {
            assert_eq!(key.as_deref(), Some(hex::encode(&s.trace_id).as_str()));
        }
    }
    let whole = sender(false).messages(&batch);
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].0, None);
}

#[tokio::test]
async fn an_unreachable_broker_is_a_retryable_send_failure_not_a_crash() {
    let batch = Traces::from(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![1; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let err = sender(true).send(&batch).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.message.contains("writing to Kafka topic t"), "{err}");
}
