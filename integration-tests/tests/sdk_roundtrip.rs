//! The official OpenTelemetry Python SDK → weft (otlp receiver, memory_limiter, batch,
//! otlphttp or otlp exporter) → a second weft (otlp receiver → file exporter). Every span and
//! log record the SDK produced must arrive exactly once, with ids, names, status, attributes,
//! resource and scope intact. The forwarding config is a plain Collector config.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{json, Value as Json};
use weft_integration_tests::{free_port, http_get, metric_value, run_python_client, Weft};
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};

struct Ports {
    grpc: u16,
    http: u16,
    metrics: u16,
}

impl Ports {
    fn new() -> Self {
        Self {
            grpc: free_port(),
            http: free_port(),
            metrics: free_port(),
        }
    }
    fn ready(&self) -> Vec<SocketAddr> {
        vec![
            SocketAddr::from(([127, 0, 0, 1], self.grpc)),
            SocketAddr::from(([127, 0, 0, 1], self.http)),
        ]
    }
}

fn sink_config(p: &Ports, dir: &std::path::Path) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  file/traces:
    path: {dir}/traces.jsonl
  file/logs:
    path: {dir}/logs.jsonl
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file/traces]
    logs:
      receivers: [otlp]
      exporters: [file/logs]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        grpc = p.grpc,
        http = p.http,
        metrics = p.metrics,
        dir = dir.display()
    )
}

/// An OTLP-in / OTLP-out Collector config with memory_limiter and batch, unchanged.
fn forwarder_config(p: &Ports, exporter: &str) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}

processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
  batch:
    send_batch_size: 100
    timeout: 200ms

exporters:
{exporter}

service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [{exporter_id}]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [{exporter_id}]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        grpc = p.grpc,
        http = p.http,
        metrics = p.metrics,
        exporter_id = exporter.trim().split(':').next().unwrap_or_default(),
    )
}

fn any_to_json(v: &AnyValue) -> Json {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(a)) => {
            Json::Array(a.values.iter().map(any_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => attrs_to_json(&kv.values),
        Some(any_value::Value::BytesValue(b)) => json!(hex::encode(b)),
        Some(any_value::Value::StringValueStrindex(i)) => json!(format!("strindex:{i}")),
        None => Json::Null,
    }
}

fn attrs_to_json(attrs: &[KeyValue]) -> Json {
    Json::Object(
        attrs
            .iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    kv.value.as_ref().map(any_to_json).unwrap_or(Json::Null),
                )
            })
            .collect(),
    )
}

/// Every resource attribute the SDK set must be on the received resource.
fn assert_resource(expected: &Json, got: &Json, what: &str) {
    for (k, v) in expected.as_object().expect("resource object") {
        assert_eq!(got.get(k), Some(v), "{what}: resource attribute {k}");
    }
}

fn read_lines(path: &std::path::Path) -> Vec<Vec<u8>> {
    weft_integration_tests::written_lines(&std::fs::read(path).unwrap_or_default())
        .map(<[u8]>::to_vec)
        .collect()
}

/// One received item: its fields as JSON, its resource attributes, its scope name.
type Received = Vec<(Json, Json, String)>;

/// Checks the sink's files against the SDK manifests: each item exactly once, intact.
fn verify(dir: &std::path::Path, manifests: &[Json]) {
    let mut spans: HashMap<(String, String), Received> = HashMap::new();
    for line in read_lines(&dir.join("traces.jsonl")) {
        let req =
            weft_proto::otlp_json::decode_traces(&line).expect("file exporter writes OTLP/JSON");
        for rs in &req.resource_spans {
            let resource = attrs_to_json(&rs.resource.clone().unwrap_or_default().attributes);
            for ss in &rs.scope_spans {
                let scope = ss.scope.clone().unwrap_or_default().name;
                for s in &ss.spans {
                    let status = s.status.clone().unwrap_or_default();
                    let got = json!({
                        "trace_id": hex::encode(&s.trace_id),
                        "span_id": hex::encode(&s.span_id),
                        "parent_span_id": hex::encode(&s.parent_span_id),
                        "name": s.name,
                        "kind": s.kind,
                        "status_code": status.code,
                        "status_message": status.message,
                        "attributes": attrs_to_json(&s.attributes),
                        "start_time_unix_nano": s.start_time_unix_nano,
                        "end_time_unix_nano": s.end_time_unix_nano,
                    });
                    spans
                        .entry((hex::encode(&s.trace_id), hex::encode(&s.span_id)))
                        .or_default()
                        .push((got, resource.clone(), scope.clone()));
                }
            }
        }
    }
    let mut logs: HashMap<(String, String, String, Json), Received> = HashMap::new();
    for line in read_lines(&dir.join("logs.jsonl")) {
        let req =
            weft_proto::otlp_json::decode_logs(&line).expect("file exporter writes OTLP/JSON");
        for rl in &req.resource_logs {
            let resource = attrs_to_json(&rl.resource.clone().unwrap_or_default().attributes);
            for sl in &rl.scope_logs {
                let scope = sl.scope.clone().unwrap_or_default().name;
                for r in &sl.log_records {
                    let body = r.body.as_ref().map(any_to_json).unwrap_or(Json::Null);
                    let got = json!({
                        "trace_id": hex::encode(&r.trace_id),
                        "span_id": hex::encode(&r.span_id),
                        "body": body,
                        "severity_number": r.severity_number,
                        "severity_text": r.severity_text,
                        "attributes": attrs_to_json(&r.attributes),
                    });
                    let service = resource.get("service.name").cloned().unwrap_or(Json::Null);
                    logs.entry((
                        hex::encode(&r.trace_id),
                        hex::encode(&r.span_id),
                        body.to_string(),
                        service,
                    ))
                    .or_default()
                    .push((got, resource.clone(), scope.clone()));
                }
            }
        }
    }

    let mut expected_spans = 0;
    let mut expected_logs = 0;
    for m in manifests {
        for s in m["spans"].as_array().expect("spans") {
            expected_spans += 1;
            let key = (
                s["trace_id"].as_str().unwrap().to_string(),
                s["span_id"].as_str().unwrap().to_string(),
            );
            let found = spans.get(&key).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(
                found.len(),
                1,
                "span {key:?} must arrive exactly once, arrived {} times",
                found.len()
            );
            let (got, resource, scope) = &found[0];
            for field in [
                "trace_id",
                "span_id",
                "parent_span_id",
                "name",
                "kind",
                "status_code",
                "status_message",
                "attributes",
                "start_time_unix_nano",
                "end_time_unix_nano",
            ] {
                assert_eq!(got[field], s[field], "span {key:?} field {field}");
            }
            assert_eq!(scope, s["scope"].as_str().unwrap(), "span {key:?} scope");
            assert_resource(&m["resource"], resource, "span");
        }
        for l in m["logs"].as_array().expect("logs") {
            expected_logs += 1;
            let service = m["resource"]["service.name"].clone();
            let key = (
                l["trace_id"].as_str().unwrap().to_string(),
                l["span_id"].as_str().unwrap().to_string(),
                l["body"].to_string(),
                service,
            );
            let found = logs.get(&key).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(
                found.len(),
                1,
                "log {key:?} must arrive exactly once, arrived {} times",
                found.len()
            );
            let (got, resource, scope) = &found[0];
            for field in [
                "trace_id",
                "span_id",
                "body",
                "severity_number",
                "severity_text",
                "attributes",
            ] {
                assert_eq!(got[field], l[field], "log {key:?} field {field}");
            }
            assert_eq!(scope, l["scope"].as_str().unwrap(), "log {key:?} scope");
            assert_resource(&m["resource"], resource, "log");
        }
    }
    let got_spans: usize = spans.values().map(Vec::len).sum();
    let got_logs: usize = logs.values().map(Vec::len).sum();
    assert_eq!(got_spans, expected_spans, "no extra spans");
    assert_eq!(got_logs, expected_logs, "no extra logs");
    assert!(
        expected_spans >= 90 && expected_logs >= 100,
        "the clients emitted a real workload"
    );
}

fn roundtrip(exporter: impl Fn(&Ports) -> String) {
    let sink_ports = Ports::new();
    // The files outlive the sink process (whose own temp dir goes with it).
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_path_buf();
    let sink = Weft::start(&sink_config(&sink_ports, &out_dir), &sink_ports.ready()).unwrap();

    let fwd_ports = Ports::new();
    let fwd = Weft::start(
        &forwarder_config(&fwd_ports, &exporter(&sink_ports)),
        &fwd_ports.ready(),
    )
    .unwrap();

    let mut manifests = Vec::new();
    for (protocol, endpoint, service, seed) in [
        (
            "grpc",
            format!("http://127.0.0.1:{}", fwd_ports.grpc),
            "checkout",
            "11",
        ),
        (
            "http",
            format!("http://127.0.0.1:{}", fwd_ports.http),
            "payments",
            "12",
        ),
    ] {
        let manifest_path = out_dir.join(format!("manifest-{protocol}.json"));
        let out = run_python_client(
            "emit.py",
            &[
                "--endpoint",
                &endpoint,
                "--protocol",
                protocol,
                "--traces",
                "30",
                "--service",
                service,
                "--seed",
                seed,
                "--out",
                manifest_path.to_str().unwrap(),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}\n--- forwarder log ---\n{}", fwd.log()));
        assert!(
            !out.contains("Failed to export"),
            "the SDK reported a failed export:\n{out}"
        );
        let text = std::fs::read_to_string(&manifest_path).unwrap();
        manifests.push(serde_json::from_str::<Json>(&text).unwrap());
    }

    // The receiver counted what it accepted, per transport, under the Collector's names.
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], fwd_ports.metrics));
    let (status, exposition) = http_get(metrics_addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    for (transport, manifest) in [("grpc", &manifests[0]), ("http", &manifests[1])] {
        let spans = manifest["spans"].as_array().unwrap().len() as f64;
        let logs = manifest["logs"].as_array().unwrap().len() as f64;
        let series = |name: &str| format!("{name}{{receiver=\"otlp\",transport=\"{transport}\"}}");
        assert_eq!(
            metric_value(
                &exposition,
                &series("otelcol_receiver_accepted_spans_total")
            ),
            Some(spans),
            "{exposition}"
        );
        assert_eq!(
            metric_value(
                &exposition,
                &series("otelcol_receiver_accepted_log_records_total")
            ),
            Some(logs),
            "{exposition}"
        );
    }

    // SIGTERM flushes the batch processor and drains the exporter into the sink; then the
    // sink's own shutdown flushes its files.
    let (status, fwd_log) = fwd.terminate().unwrap();
    assert!(status.success(), "forwarder exit: {status}\n{fwd_log}");
    let (status, sink_log) = sink.terminate().unwrap();
    assert!(status.success(), "sink exit: {status}\n{sink_log}");
    verify(&out_dir, &manifests);
}

#[test]
fn sdk_to_weft_otlphttp_to_weft_file_loses_nothing() {
    roundtrip(|sink| {
        format!(
            "  otlphttp:\n    endpoint: http://127.0.0.1:{}\n    compression: gzip\n",
            sink.http
        )
    });
}

#[test]
fn sdk_to_weft_otlp_grpc_to_weft_file_loses_nothing() {
    roundtrip(|sink| {
        format!(
            "  otlp:\n    endpoint: 127.0.0.1:{}\n    tls:\n      insecure: true\n",
            sink.grpc
        )
    });
}
