//! The schema processor with the seed's schema (chapter 2.1): what is valid, what an invalid
//! record carries, what each action does, and what `weft validate` says about a schema.

use serde_json::json;
use weft_config::Kind;
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

use super::*;
use crate::pipeline::Logs;
use crate::processors::testutil::{config, records, Recorder};
use crate::telemetry::Telemetry;

/// The seed's schema, as written there.
const SEED_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["timestamp", "level", "service", "event"],
  "properties": {
    "timestamp": { "format": "date-time" },
    "level": { "enum": ["debug", "info", "warn", "error", "fatal"] },
    "service": { "type": "string", "minLength": 1 },
    "event": { "type": "string", "maxLength": 256 }
  }
}"#;

fn any(v: serde_json::Value) -> AnyValue {
    crate::ottl::Value::from_json(v).to_any().unwrap()
}

fn batch(bodies: Vec<AnyValue>) -> Logs {
    Logs::from(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| LogRecord {
                        body: Some(b),
                        attributes: vec![KeyValue {
                            key: "n".into(),
                            value: Some(any(json!(i))),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn processor(yaml: &str, t: &Telemetry) -> (Arc<dyn Processor<Logs>>, Arc<Recorder<Logs>>) {
    let (cfg, diags) = config::<Config>("processors::schema", yaml);
    assert!(diags.is_empty(), "{diags:#?}");
    let sink = Recorder::new();
    let ctx = BuildContext::standalone("schema", Kind::Processor).with_telemetry(t);
    (build(ctx, &cfg.unwrap(), sink.clone()).unwrap(), sink)
}

fn inline(action: &str) -> String {
    format!(
        "action: {action}\nschema: '{}'\n",
        SEED_SCHEMA.replace('\n', " ")
    )
}

/// `weft.schema.errors` of a record, or empty.
fn errors_of(record: &LogRecord) -> Vec<String> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == ERRORS_ATTRIBUTE)
        .map(|kv| match &kv.value.as_ref().unwrap().value {
            Some(any_value::Value::ArrayValue(a)) => a
                .values
                .iter()
                .map(|v| match &v.value {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect(),
            other => panic!("not a list: {other:?}"),
        })
        .unwrap_or_default()
}

fn seed_line(level: &str) -> serde_json::Value {
    json!({"timestamp": "2024-05-20T08:30:45.123Z", "level": level, "service": "user-api",
           "event": "login", "trace_id": "0af7651916cd43dd8448eb211c80319c",
           "context": {"user_id": 1001, "path": "/api/v1/users"}})
}

#[tokio::test]
async fn the_seed_schema_tags_what_breaks_it_with_pointer_and_rule() {
    let t = Telemetry::new();
    let (p, sink) = processor(&inline("tag"), &t);
    let mut missing_event = seed_line("info");
    missing_event.as_object_mut().unwrap().remove("event");
    let mut bad_time = seed_line("info");
    bad_time["timestamp"] = json!("20/05/2024 08:30");
    p.consume(batch(vec![
        any(seed_line("error")),
        any(seed_line("warning")),
        any(missing_event),
        any(bad_time),
        any(json!("a plain text line, not parsed")),
    ]))
    .await
    .unwrap();
    let got = records(&sink.batches.lock());
    assert_eq!(got.len(), 5, "tag keeps every record");
    assert!(errors_of(&got[0]).is_empty(), "valid: not tagged");
    let e = errors_of(&got[1]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("/level: enum: value is not one of"),
        "{e:?}"
    );
    assert!(
        !e[0].contains("warning"),
        "the value itself is never quoted: {e:?}"
    );
    assert_eq!(
        errors_of(&got[2]),
        ["/event: required: \"event\" is a required property"]
    );
    let e = errors_of(&got[3]);
    assert!(e[0].starts_with("/timestamp: format: "), "{e:?}");
    let e = errors_of(&got[4]);
    assert!(e[0].starts_with("/: type: "), "{e:?}");
    let count = |name: &str, labels: &[(&str, &str)]| t.counter_value(name, labels);
    assert_eq!(
        count(
            "weft_processor_schema_log_records",
            &[("processor", "schema"), ("outcome", "valid")]
        ),
        1
    );
    assert_eq!(
        count(
            "weft_processor_schema_log_records",
            &[("processor", "schema"), ("outcome", "invalid")]
        ),
        4
    );
    for reason in ["enum", "required", "format", "type"] {
        assert_eq!(
            count(
                "weft_processor_schema_errors",
                &[("processor", "schema"), ("reason", reason)]
            ),
            1,
            "{reason}"
        );
    }
}

#[tokio::test]
async fn drop_drops_invalid_records_counted_and_an_empty_batch_goes_nowhere() {
    let t = Telemetry::new();
    let (p, sink) = processor(&inline("drop"), &t);
    p.consume(batch(vec![any(seed_line("info")), any(seed_line("loud"))]))
        .await
        .unwrap();
    let got = records(&sink.batches.lock());
    assert_eq!(got.len(), 1);
    assert_eq!(
        t.counter_value(
            "weft_processor_schema_dropped_log_records",
            &[("processor", "schema")]
        ),
        1
    );
    p.consume(batch(vec![any(seed_line("loud"))]))
        .await
        .unwrap();
    assert_eq!(sink.batches.lock().len(), 1, "nothing left: nothing sent");
}

#[tokio::test]
async fn attributes_can_be_the_target() {
    let t = Telemetry::new();
    let (p, sink) = processor(
        "target: attributes\nschema: {type: object, required: [n, tenant]}\n",
        &t,
    );
    p.consume(batch(vec![any(json!("x"))])).await.unwrap();
    let got = records(&sink.batches.lock());
    assert_eq!(
        errors_of(&got[0]),
        ["/tenant: required: \"tenant\" is a required property"]
    );
}

#[tokio::test]
async fn hostile_values_are_invalid_never_a_crash() {
    let t = Telemetry::new();
    let (p, sink) = processor(&inline("tag"), &t);
    // 1 000 nested maps.
    let mut deep = AnyValue::default();
    for _ in 0..1000 {
        deep = AnyValue {
            value: Some(any_value::Value::KvlistValue(
                weft_proto::common::v1::KeyValueList {
                    values: vec![KeyValue {
                        key: "a".into(),
                        value: Some(deep),
                        ..Default::default()
                    }],
                },
            )),
        };
    }
    // A 10 MB event.
    let mut huge = seed_line("info");
    huge["event"] = json!("x".repeat(10 * 1024 * 1024));
    p.consume(batch(vec![deep, any(huge)])).await.unwrap();
    let got = records(&sink.batches.lock());
    assert_eq!(
        errors_of(&got[0]),
        ["/: depth: the value nests deeper than 128 levels"]
    );
    let e = errors_of(&got[1]);
    assert!(e[0].starts_with("/event: maxLength: "), "{e:?}");
    assert!(e[0].len() < 300, "the message stays short");
}

#[test]
fn the_schema_is_read_and_checked_with_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, SEED_SCHEMA).unwrap();
    let (cfg, diags) = config::<Config>(
        "processors::schema",
        &format!("schema_file: {}", good.display()),
    );
    assert!(diags.is_empty(), "{diags:#?}");
    assert!(
        cfg.unwrap().compiled.get().is_some(),
        "compiled once, by validation"
    );

    let not_json = dir.path().join("bad.json");
    std::fs::write(&not_json, "{\"type\": ").unwrap();
    let missing = dir.path().join("missing.json");
    let cases = [
        (
            format!("schema_file: {}", missing.display()),
            "error: processors::schema::schema_file: cannot read",
        ),
        (
            format!("schema_file: {}", not_json.display()),
            "error: processors::schema::schema_file: ",
        ),
        (
            "schema: {type: 12}".to_string(),
            "error: processors::schema::schema: not a valid JSON Schema: at /type:",
        ),
        (
            "schema: {type: string, pattern: '^(?=a)'}".to_string(),
            "error: processors::schema::schema: not a valid JSON Schema",
        ),
        (
            "schema: {$ref: 'https://example.com/s.json'}".to_string(),
            "error: processors::schema::schema: not a valid JSON Schema",
        ),
        (
            format!("schema: {{}}\nschema_file: {}", good.display()),
            "error: processors::schema::schema: schema and schema_file are two schemas",
        ),
        (
            "action: tag".to_string(),
            "error: processors::schema::schema: a schema is required",
        ),
        (
            "schema: '{\"type\": '".to_string(),
            "error: processors::schema::schema: not a JSON document",
        ),
    ];
    for (yaml, expect) in cases {
        let (_, diags) = config::<Config>("processors::schema", &yaml);
        assert!(
            diags.len() == 1 && diags[0].starts_with(expect),
            "{yaml}: expected {expect:?}, got {diags:#?}"
        );
    }
    let (_, diags) = config::<Config>("processors::schema", "schema: {}\naction: reroute");
    assert!(diags[0].contains("unknown variant"), "{diags:?}");
}

#[test]
fn only_route_expects_a_connector_after_it() {
    let (cfg, _) = config::<Config>("processors::schema", &inline("route"));
    assert!(cfg.unwrap().expects_connector_after().is_some());
    let (cfg, _) = config::<Config>("processors::schema", &inline("tag"));
    assert!(cfg.unwrap().expects_connector_after().is_none());
}
