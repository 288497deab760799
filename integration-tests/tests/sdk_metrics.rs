//! The official OpenTelemetry Python SDK's metrics, with its default OTLP metric exporter
//! (gRPC and HTTP) → weft (otlp receiver, memory_limiter, a `batch` small enough to split
//! metrics between their data points, otlp or otlphttp exporter) → a second weft (otlp
//! receiver → file exporter). Every data point of every instrument kind the SDK exported
//! must arrive exactly once with its values intact (sums, buckets, bounds, scales, min/max,
//! exemplars with their trace ids), and the SDK must report no failed export and log no
//! warning.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value as Json};
use weft_integration_tests::{
    free_port, http_get, loopback, metric_value, run_python_client, Weft,
};
use weft_proto::common::v1::{any_value, KeyValue};
use weft_proto::metrics::v1::{exemplar, metric::Data, number_data_point, Exemplar, Metric};

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
        vec![loopback(self.grpc), loopback(self.http)]
    }
}

fn sink_config(p: &Ports, out: &Path) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  file:
    path: {out}/metrics.jsonl
    flush_interval: 100ms
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [file]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{metrics}"}}
"#,
        grpc = p.grpc,
        http = p.http,
        metrics = p.metrics,
        out = out.display()
    )
}

/// A plain Collector metrics pipeline; `batch` splits exports into 7-point batches, so
/// metrics are cut between their data points on the way.
fn forwarder_config(p: &Ports, exporter: &str) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  memory_limiter: {{check_interval: 1s, limit_mib: 1024, spike_limit_mib: 256}}
  batch: {{send_batch_size: 7, send_batch_max_size: 7, timeout: 100ms}}
exporters:
{exporter}
service:
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [{id}]
  telemetry:
    metrics: {{address: "127.0.0.1:{metrics}"}}
"#,
        grpc = p.grpc,
        http = p.http,
        metrics = p.metrics,
        id = exporter.trim().split(':').next().unwrap_or_default(),
    )
}

fn attributes(attrs: &[KeyValue]) -> Json {
    Json::Object(
        attrs
            .iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => json!(s),
                    Some(any_value::Value::BoolValue(b)) => json!(b),
                    Some(any_value::Value::IntValue(i)) => json!(i),
                    Some(any_value::Value::DoubleValue(d)) => json!(d),
                    other => panic!("unexpected attribute value {other:?}"),
                };
                (kv.key.clone(), v)
            })
            .collect(),
    )
}

fn number(v: Option<&number_data_point::Value>) -> Json {
    match v {
        Some(number_data_point::Value::AsInt(i)) => json!({"as_int": i}),
        Some(number_data_point::Value::AsDouble(d)) => json!({"as_double": d}),
        None => Json::Null,
    }
}

fn exemplars(list: &[Exemplar]) -> Json {
    Json::Array(
        list.iter()
            .map(|e| {
                let value = match e.value {
                    Some(exemplar::Value::AsInt(i)) => json!({"as_int": i}),
                    Some(exemplar::Value::AsDouble(d)) => json!({"as_double": d}),
                    None => Json::Null,
                };
                json!({
                    "trace_id": hex::encode(&e.trace_id),
                    "span_id": hex::encode(&e.span_id),
                    "time_unix_nano": e.time_unix_nano,
                    "value": value,
                })
            })
            .collect(),
    )
}

/// Every data point of `metric`, in the manifest's shape.
fn points(metric: &Metric, scope: &(String, String)) -> Vec<Json> {
    let head = |attrs: &[KeyValue], start: u64, time: u64| {
        json!({
            "metric": metric.name,
            "unit": metric.unit,
            "description": metric.description,
            "attributes": attributes(attrs),
            "start_time_unix_nano": start,
            "time_unix_nano": time,
            "scope": scope.0,
            "scope_version": scope.1,
        })
    };
    let with = |mut base: Json, more: Json| {
        let obj = base.as_object_mut().unwrap();
        obj.extend(more.as_object().unwrap().clone());
        base
    };
    match metric.data.as_ref().expect("every SDK metric has data") {
        Data::Sum(s) => s
            .data_points
            .iter()
            .map(|p| {
                with(
                    head(&p.attributes, p.start_time_unix_nano, p.time_unix_nano),
                    json!({"type": "sum", "monotonic": s.is_monotonic,
                           "temporality": s.aggregation_temporality,
                           "value": number(p.value.as_ref()), "exemplars": exemplars(&p.exemplars)}),
                )
            })
            .collect(),
        Data::Gauge(g) => g
            .data_points
            .iter()
            .map(|p| {
                with(
                    head(&p.attributes, p.start_time_unix_nano, p.time_unix_nano),
                    json!({"type": "gauge", "value": number(p.value.as_ref()),
                           "exemplars": exemplars(&p.exemplars)}),
                )
            })
            .collect(),
        Data::Histogram(h) => h
            .data_points
            .iter()
            .map(|p| {
                with(
                    head(&p.attributes, p.start_time_unix_nano, p.time_unix_nano),
                    json!({"type": "histogram", "temporality": h.aggregation_temporality,
                           "count": p.count, "sum": p.sum, "bucket_counts": p.bucket_counts,
                           "explicit_bounds": p.explicit_bounds, "min": p.min, "max": p.max,
                           "exemplars": exemplars(&p.exemplars)}),
                )
            })
            .collect(),
        Data::ExponentialHistogram(h) => h
            .data_points
            .iter()
            .map(|p| {
                let side = |b: &Option<weft_proto::metrics::v1::exponential_histogram_data_point::Buckets>| {
                    let b = b.clone().unwrap_or_default();
                    json!({"offset": b.offset, "bucket_counts": b.bucket_counts})
                };
                with(
                    head(&p.attributes, p.start_time_unix_nano, p.time_unix_nano),
                    json!({"type": "exponential_histogram", "temporality": h.aggregation_temporality,
                           "count": p.count, "sum": p.sum, "scale": p.scale,
                           "zero_count": p.zero_count, "positive": side(&p.positive),
                           "negative": side(&p.negative), "min": p.min, "max": p.max,
                           "exemplars": exemplars(&p.exemplars)}),
                )
            })
            .collect(),
        Data::Summary(_) => panic!("the Python SDK exports no summaries"),
    }
}

/// The identity of a point: its service, metric, attributes and collection time.
fn key(service: &Json, point: &Json) -> String {
    format!(
        "{service}|{}|{}|{}",
        point["metric"], point["attributes"], point["time_unix_nano"]
    )
}

/// Checks the sink's file against the manifests: every point exactly once, intact.
fn verify(out: &Path, manifests: &[Json]) {
    let mut received: HashMap<String, Vec<Json>> = HashMap::new();
    let text = std::fs::read(out.join("metrics.jsonl")).unwrap_or_default();
    for line in weft_integration_tests::written_lines(&text) {
        let req = weft_proto::otlp_json::decode_metrics(line).expect("OTLP/JSON line");
        for rm in &req.resource_metrics {
            let resource = attributes(&rm.resource.clone().unwrap_or_default().attributes);
            let service = resource["service.name"].clone();
            for sm in &rm.scope_metrics {
                let scope = sm.scope.clone().unwrap_or_default();
                for metric in &sm.metrics {
                    for point in points(metric, &(scope.name.clone(), scope.version.clone())) {
                        received
                            .entry(key(&service, &point))
                            .or_default()
                            .push(point);
                    }
                }
            }
        }
    }
    let mut expected = 0;
    let mut kinds = std::collections::BTreeSet::new();
    let mut with_exemplars = 0;
    for m in manifests {
        let service = m["resource"]["service.name"].clone();
        for point in m["points"].as_array().expect("points") {
            expected += 1;
            kinds.insert(point["type"].as_str().unwrap().to_string());
            with_exemplars += usize::from(
                point["exemplars"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["trace_id"] != "")),
            );
            let k = key(&service, point);
            let found = received.get(&k).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(found.len(), 1, "point {k} arrived {} times", found.len());
            assert_eq!(&found[0], point, "point {k} changed on the way");
        }
    }
    let got: usize = received.values().map(Vec::len).sum();
    assert_eq!(got, expected, "no extra points");
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["exponential_histogram", "gauge", "histogram", "sum"],
        "every point type the SDK makes"
    );
    assert!(
        expected >= 60,
        "the SDK exported a real workload: {expected}"
    );
    assert!(
        with_exemplars > 0,
        "some points carry exemplars with trace ids"
    );
}

fn roundtrip(exporter: impl Fn(&Ports) -> String) {
    let out = tempfile::tempdir().unwrap();
    let sink_ports = Ports::new();
    let sink = Weft::start(&sink_config(&sink_ports, out.path()), &sink_ports.ready()).unwrap();
    let fwd_ports = Ports::new();
    let fwd = Weft::start(
        &forwarder_config(&fwd_ports, &exporter(&sink_ports)),
        &fwd_ports.ready(),
    )
    .unwrap();

    let mut manifests = Vec::new();
    for (protocol, port, service, seed) in [
        ("grpc", fwd_ports.grpc, "inventory", "3"),
        ("http", fwd_ports.http, "billing", "4"),
    ] {
        let manifest_path = out.path().join(format!("manifest-{protocol}.json"));
        let output = run_python_client(
            "emit_metrics.py",
            &[
                "--endpoint",
                &format!("http://127.0.0.1:{port}"),
                "--protocol",
                protocol,
                "--service",
                service,
                "--seed",
                seed,
                "--out",
                manifest_path.to_str().unwrap(),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}\n--- forwarder log ---\n{}", fwd.log()));
        let manifest: Json =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
        assert_eq!(manifest["failed_exports"], 0, "{output}");
        assert_eq!(manifest["sdk_problems"], json!([]), "{output}");
        manifests.push(manifest);
    }

    // Counted under the Collector's names, per transport.
    let (status, exposition) = http_get(loopback(fwd_ports.metrics), "/metrics").unwrap();
    assert_eq!(status, 200);
    for (transport, manifest) in [("grpc", &manifests[0]), ("http", &manifests[1])] {
        let points = manifest["points"].as_array().unwrap().len() as f64;
        assert_eq!(
            metric_value(
                &exposition,
                &format!("otelcol_receiver_accepted_metric_points_total{{receiver=\"otlp\",transport=\"{transport}\"}}")
            ),
            Some(points),
            "{exposition}"
        );
    }

    // SIGTERM flushes batch and drains the exporter; the sink then flushes its file.
    let (status, log) = fwd.terminate().unwrap();
    assert!(status.success(), "forwarder exit: {status}\n{log}");
    let (status, log) = sink.terminate().unwrap();
    assert!(status.success(), "sink exit: {status}\n{log}");
    verify(out.path(), &manifests);
}

#[test]
fn sdk_metrics_through_weft_otlp_grpc_arrive_intact() {
    roundtrip(|sink| {
        format!(
            "  otlp:\n    endpoint: 127.0.0.1:{}\n    tls:\n      insecure: true\n",
            sink.grpc
        )
    });
}

#[test]
fn sdk_metrics_through_weft_otlphttp_arrive_intact() {
    roundtrip(|sink| {
        format!(
            "  otlphttp:\n    endpoint: http://127.0.0.1:{}\n    encoding: json\n",
            sink.http
        )
    });
}
