//! The exporter's message cutting and its config errors (delivery to a real broker is in
//! the `kafka_tier` integration test).

use weft_config::{ConfigPath, Diagnostics};
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::pipeline::{Metrics, Traces};

fn diagnostics(yaml: &str) -> Vec<String> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("kafka");
    // Decoding validates.
    weft_config::decode_component::<Config>(&value, &path, &mut diags);
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
metrics: { topic: otlp_metrics, encoding: otlp_json }
partition_metrics_by_resource_attributes: true
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

fn sender<T: Payload>(partition: Option<RoutingKey>) -> KafkaSender<T> {
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
        route: partition.map(|key| (route::layout(T::SIGNAL).unwrap(), key)),
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
    let messages = sender::<Traces>(Some(RoutingKey::TraceId)).messages(&batch);
    assert_eq!(messages.len(), 3);
    for (key, payload) in &messages {
        let req = <ExportTraceServiceRequest as prost::Message>::decode(&payload[..]).unwrap();
        let spans: Vec<_> = req.resource_spans[0].scope_spans[0].spans.clone();
        assert_eq!(spans.len(), 2);
        for s in spans {
            assert_eq!(key.as_deref(), Some(hex::encode(&s.trace_id).as_str()));
        }
    }
    let whole = sender::<Traces>(None).messages(&batch);
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
    let err = sender::<Traces>(Some(RoutingKey::TraceId))
        .send(&batch)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.message.contains("writing to Kafka topic t"), "{err}");
}

#[test]
fn a_wrong_metrics_encoding_is_named_at_its_own_key() {
    let text = diagnostics("metrics: { encoding: avro }").join("\n");
    assert!(
        text.contains("exporters::kafka::metrics::encoding: unknown encoding \"avro\""),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[tokio::test]
async fn partitioning_metrics_by_resource_makes_one_message_per_resource() {
    use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
    use weft_proto::metrics::v1::{
        metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    use weft_proto::resource::v1::Resource;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let resource = |attrs: Vec<KeyValue>, points: usize| ResourceMetrics {
        resource: Some(Resource {
            attributes: attrs,
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![Metric {
                name: "m".into(),
                data: Some(metric::Data::Gauge(Gauge {
                    data_points: vec![NumberDataPoint::default(); points],
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    // The first and third resources are the same attributes in another order.
    let batch = Metrics::from(ExportMetricsServiceRequest {
        resource_metrics: vec![
            resource(vec![kv("service.name", "a"), kv("pod", "1")], 2),
            resource(vec![kv("service.name", "b")], 3),
            resource(vec![kv("pod", "1"), kv("service.name", "a")], 4),
        ],
    });
    let messages = sender::<Metrics>(Some(RoutingKey::Resource)).messages(&batch);
    assert_eq!(messages.len(), 2, "one message per distinct resource");
    let mut points = Vec::new();
    for (key, payload) in &messages {
        let key = key.as_deref().expect("keyed");
        assert_eq!(key.len(), 32, "16 bytes of hash, in hex: {key}");
        let req = <ExportMetricsServiceRequest as prost::Message>::decode(&payload[..]).unwrap();
        points.push(weft_proto::points::request_points(&req));
    }
    assert_eq!(points, [6, 3]);
    assert_ne!(messages[0].0, messages[1].0);
    // The same resource in a later batch gets the same key.
    let again = sender::<Metrics>(Some(RoutingKey::Resource)).messages(&batch);
    assert_eq!(again[0].0, messages[0].0);
    let whole = sender::<Metrics>(None).messages(&batch);
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].0, None);
}
