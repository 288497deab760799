//! Where scenario g's time goes: the `transform` and `redaction` processors on a batch of
//! log records whose bodies are zap/zerolog JSON lines (bench-compare's `--payload
//! json-logs` shape), each step measured alone. Every variant receives the request encoded,
//! as the receiver hands it on, and its next stage encodes it again, as the `otlp` exporter
//! does, so decode and encode are in every number; `decode+encode` is that floor.
//!
//! `cargo bench -p weft-benches --bench governance -- --warm-up-time 1 --measurement-time 5`

use std::sync::Arc;

use async_trait::async_trait;
use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use prost::Message;
use weft::component::{AnyConfig, BuildContext, Processor, SharedInstances};
use weft::pipeline::{ConsumeError, Consumer, Logs, Payload};
use weft::processors::{redaction, transform};
use weft::telemetry::Telemetry;
use weft_config::{ComponentId, ConfigPath, Diagnostics, Kind};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource;

/// Records per request: 20 traces × ~2 lines, as the load generator sends.
const RECORDS: usize = 40;

/// The statements of bench-compare's scenario g, in order; variants take a prefix.
const STATEMENTS: [&str; 5] = [
    r#"set(body, ParseJSON(body)) where IsString(body)"#,
    r#"set(trace_id.string, body["trace_id"]) where IsString(body["trace_id"])"#,
    r#"set(span_id.string, body["span_id"]) where IsString(body["span_id"])"#,
    r#"set(severity_text, body["level"]) where IsString(body["level"])"#,
    r#"set(severity_number, SEVERITY_NUMBER_ERROR) where body["level"] == "error""#,
];

const REDACTION: &str = r#"
allow_all_keys: true
ignored_keys: [trace_id, span_id]
blocked_values:
  - '\d{17}[\dXx]'
  - '1[3-9]\d{9}'
  - '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+'
  - '\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}'
  - '[Bb]earer [A-Za-z0-9._~+/-]+=*'
summary: silent
"#;

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One line as zap (even `i`) or zerolog writes it; every third carries personal data.
fn line(i: usize) -> String {
    let trace = format!("{:032x}", 0x5eed_0000_u128 + (i as u128 / 2));
    let span = format!("{:016x}", 0xa000 + i);
    let level = if i.is_multiple_of(13) {
        "error"
    } else {
        "info"
    };
    let pii = match i % 6 {
        0 => format!(",\"user_phone\":\"138{:08}\"", 1_000_000 + i),
        3 => ",\"user_email\":\"li.wei@example.com\"".to_string(),
        _ => String::new(),
    };
    if i.is_multiple_of(2) {
        format!(
            "{{\"level\":\"{level}\",\"ts\":\"2026-12-03T14:00:0{}.123Z\",\"caller\":\"order/handler.go:88\",\"msg\":\"order created\",\"service\":\"checkout\",\"trace_id\":\"{trace}\",\"span_id\":\"{span}\",\"biz_order_id\":\"ord-{i:08}\",\"duration_ms\":{}{pii}}}",
            i % 10,
            40 + i
        )
    } else {
        format!(
            "{{\"level\":\"{level}\",\"time\":\"2026-12-03T14:00:0{}Z\",\"service\":\"payments\",\"trace_id\":\"{trace}\",\"span_id\":\"{span}\",\"event\":\"stock_reserved\",\"biz_order_id\":\"ord-{i:08}\",\"biz_amount_cents\":{}{pii},\"message\":\"stock reserved\"}}",
            i % 10,
            100 + i
        )
    }
}

fn request() -> Vec<u8> {
    let records = (0..RECORDS)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(line(i))),
            }),
            attributes: vec![kv("log.iostream", "stdout")],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("service.namespace", "shop"),
                    kv("deployment.environment.name", "production"),
                    kv("host.name", "node-11"),
                    kv("k8s.namespace.name", "shop"),
                    kv("k8s.pod.name", "checkout-7d9f8b6c4-x1q2z"),
                    kv("telemetry.sdk.language", "java"),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The exporter's part: the batch encoded again, then dropped.
struct Encode;

#[async_trait]
impl Consumer<Logs> for Encode {
    async fn consume(&self, data: Logs) -> Result<(), ConsumeError> {
        std::hint::black_box(data.to_bytes());
        Ok(())
    }
}

fn ctx(type_name: &str) -> BuildContext {
    BuildContext {
        id: ComponentId::new(type_name, None),
        kind: Kind::Processor,
        telemetry: Telemetry::new(),
        health: Default::default(),
        shared: SharedInstances::default(),
    }
}

fn decode<C: weft_config::ComponentConfig>(yaml: &str) -> C {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("bench config");
    let mut diags = Diagnostics::new();
    let cfg = weft_config::decode_component(&value, &ConfigPath::root(), &mut diags);
    assert!(diags.is_empty(), "{diags:?}");
    cfg.expect("valid config")
}

fn transform(statements: &[&str], next: Arc<dyn Consumer<Logs>>) -> Arc<dyn Processor<Logs>> {
    let mut yaml =
        "error_mode: ignore\nlog_statements:\n  - context: log\n    statements:\n".to_string();
    for s in statements {
        yaml.push_str(&format!("      - '{s}'\n"));
    }
    let cfg: transform::Config = decode(&yaml);
    transform::factory()
        .build_typed(ctx("transform"), &(Arc::new(cfg) as AnyConfig), next)
        .expect("transform")
}

fn redaction(next: Arc<dyn Consumer<Logs>>) -> Arc<dyn Processor<Logs>> {
    let cfg: redaction::Config = decode(REDACTION);
    redaction::factory()
        .build_typed(ctx("redaction"), &(Arc::new(cfg) as AnyConfig), next)
        .expect("redaction")
}

fn governance(c: &mut Criterion) {
    let body = bytes::Bytes::from(request());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let encode: Arc<dyn Consumer<Logs>> = Arc::new(Encode);
    // A statement that never applies: the batch is decoded and encoded, nothing else.
    let never = r#"set(attributes["never"], true) where severity_number == 99"#;
    let variants: Vec<(&str, Arc<dyn Processor<Logs>>)> = vec![
        ("decode+encode", transform(&[never], encode.clone())),
        ("ParseJSON", transform(&STATEMENTS[..1], encode.clone())),
        (
            "ParseJSON+trace_id",
            transform(&STATEMENTS[..2], encode.clone()),
        ),
        (
            "ParseJSON+3 sets",
            transform(&STATEMENTS[..4], encode.clone()),
        ),
        (
            "transform (5 statements)",
            transform(&STATEMENTS, encode.clone()),
        ),
        ("redaction of string bodies", redaction(encode.clone())),
        (
            "transform then redaction",
            transform(&STATEMENTS, redaction(encode.clone())),
        ),
    ];
    let mut g = c.benchmark_group("governance");
    g.throughput(Throughput::Elements(RECORDS as u64));
    // ParseJSON's steps on the same lines, outside any processor: before, the JSON parse,
    // then the conversion into an OTTL value and into the record's body; now, one parse.
    let lines: Vec<String> = (0..RECORDS).map(line).collect();
    g.bench_function("serde_json::from_str alone", |b| {
        b.iter(|| {
            for l in &lines {
                std::hint::black_box(serde_json::from_str::<serde_json::Value>(l).expect("json"));
            }
        })
    });
    g.bench_function("from_str + Value::from_json + to_any", |b| {
        b.iter(|| {
            for l in &lines {
                let json = serde_json::from_str::<serde_json::Value>(l).expect("json");
                let v = weft::ottl::Value::from_json(json);
                std::hint::black_box(v.to_any().expect("any"));
            }
        })
    });
    // What ParseJSON does now: the text parsed straight into the record's value type.
    g.bench_function("ottl::json::parse", |b| {
        b.iter(|| {
            for l in &lines {
                std::hint::black_box(weft::ottl::json::parse(l).expect("json"));
            }
        })
    });
    for (name, p) in variants {
        g.bench_function(name, |b| {
            b.iter_batched(
                || Logs::from_encoded(body.clone(), RECORDS),
                |batch| rt.block_on(p.consume(batch)).expect("consumed"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, governance);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
