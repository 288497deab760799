//! `spanmetrics` beside a `tail_sampling` window that keeps about 10% of the traces, fed by
//! the official Python SDK: the calls counter per service, span name, kind and status counts
//! 100% of the spans the SDK sent, every duration lands in its bucket, and every exemplar
//! names a trace the window kept (one that reached the trace exporter). `samplingmetrics`
//! counts the same decisions: kept + dropped = every trace, kept = what was exported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value as Json;
use weft_integration_tests::{eventually, free_port, loopback, run_python_client, Weft};
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::common::v1::{any_value, KeyValue};
use weft_proto::metrics::v1::{metric::Data, number_data_point};

const BOUNDS_MS: [f64; 3] = [5.0, 50.0, 500.0];

fn config(grpc: u16, http: u16, metrics: u16, out: &Path) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  tail_sampling:
    decision_wait: 2s
    policies:
      - {{name: baseline, type: probabilistic, probabilistic: {{sampling_percentage: 10}}}}
connectors:
  spanmetrics:
    metrics_flush_interval: 1s
    histogram: {{explicit: {{buckets: [5ms, 50ms, 500ms]}}}}
    exemplars: {{enabled: true, max_per_data_point: 5, tail_sampling: tail_sampling}}
  samplingmetrics:
    tail_sampling: tail_sampling
    metrics_flush_interval: 1s
exporters:
  file/traces: {{path: "{out}/traces.jsonl", flush_interval: 100ms}}
  file/logs: {{path: "{out}/logs.jsonl", flush_interval: 100ms}}
  file/metrics: {{path: "{out}/metrics.jsonl", flush_interval: 100ms}}
service:
  pipelines:
    traces/all: {{receivers: [otlp], exporters: [spanmetrics]}}
    traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [file/traces, samplingmetrics]}}
    logs: {{receivers: [otlp], processors: [tail_sampling], exporters: [file/logs]}}
    metrics: {{receivers: [spanmetrics, samplingmetrics], exporters: [file/metrics]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{metrics}"}}
"#,
        out = out.display()
    )
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    weft_integration_tests::written_lines(&std::fs::read(path).unwrap_or_default())
        .map(<[u8]>::to_vec)
        .collect()
}

fn text(attrs: &[KeyValue], key: &str) -> String {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            any_value::Value::BoolValue(b) => Some(b.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// (service, span name, kind, status) of a series, as spanmetrics names them.
type SeriesKey = (String, String, String, String);

struct Metrics {
    /// The last flush's calls and bucket counts per series.
    calls: BTreeMap<SeriesKey, i64>,
    buckets: BTreeMap<SeriesKey, Vec<u64>>,
    /// Every exemplar's trace id, over every flush.
    exemplar_traces: BTreeSet<String>,
    /// samplingmetrics' last flush: traces by `sampled`.
    decided: BTreeMap<String, i64>,
}

fn read_metrics(out: &Path) -> Metrics {
    let mut m = Metrics {
        calls: BTreeMap::new(),
        buckets: BTreeMap::new(),
        exemplar_traces: BTreeSet::new(),
        decided: BTreeMap::new(),
    };
    for line in lines(&out.join("metrics.jsonl")) {
        let req: ExportMetricsServiceRequest =
            weft_proto::otlp_json::decode_metrics(&line).expect("OTLP/JSON");
        let mut calls = BTreeMap::new();
        let mut buckets = BTreeMap::new();
        let mut decided = BTreeMap::new();
        for metric in req
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
        {
            let key = |a: &[KeyValue]| {
                (
                    text(a, "service.name"),
                    text(a, "span.name"),
                    text(a, "span.kind"),
                    text(a, "status.code"),
                )
            };
            match (metric.name.as_str(), &metric.data) {
                ("traces.span.metrics.calls", Some(Data::Sum(s))) => {
                    for p in &s.data_points {
                        let Some(number_data_point::Value::AsInt(n)) = p.value else {
                            panic!("calls are ints")
                        };
                        calls.insert(key(&p.attributes), n);
                        for e in &p.exemplars {
                            m.exemplar_traces.insert(hex::encode(&e.trace_id));
                        }
                    }
                }
                ("traces.span.metrics.duration", Some(Data::Histogram(h))) => {
                    for p in &h.data_points {
                        assert_eq!(p.explicit_bounds, BOUNDS_MS);
                        buckets.insert(key(&p.attributes), p.bucket_counts.clone());
                        for e in &p.exemplars {
                            m.exemplar_traces.insert(hex::encode(&e.trace_id));
                        }
                    }
                }
                ("weft.sampling.traces", Some(Data::Sum(s))) => {
                    for p in &s.data_points {
                        let Some(number_data_point::Value::AsInt(n)) = p.value else {
                            panic!("counts are ints")
                        };
                        *decided.entry(text(&p.attributes, "sampled")).or_default() += n;
                    }
                }
                _ => {}
            }
        }
        if !calls.is_empty() {
            m.calls = calls;
            m.buckets = buckets;
        }
        if !decided.is_empty() {
            m.decided = decided;
        }
    }
    m
}

fn kind_name(kind: i64) -> &'static str {
    [
        "SPAN_KIND_UNSPECIFIED",
        "SPAN_KIND_INTERNAL",
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
        "SPAN_KIND_CONSUMER",
    ][kind as usize]
}

fn status_name(code: i64) -> &'static str {
    ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"][code as usize]
}

#[test]
fn span_metrics_count_every_span_and_exemplars_point_only_at_kept_traces() {
    let out = tempfile::tempdir().unwrap();
    let (grpc, http, metrics_port) = (free_port(), free_port(), free_port());
    let weft = Weft::start(
        &config(grpc, http, metrics_port, out.path()),
        &[loopback(grpc), loopback(http)],
    )
    .unwrap();

    // What the SDK sent: calls and bucket counts per series, and the traces.
    let mut calls: BTreeMap<SeriesKey, i64> = BTreeMap::new();
    let mut buckets: BTreeMap<SeriesKey, Vec<u64>> = BTreeMap::new();
    let mut traces = BTreeSet::new();
    for (protocol, port, service, seed) in [
        ("grpc", grpc, "checkout", "21"),
        ("http", http, "payments", "22"),
    ] {
        let manifest = out.path().join(format!("{service}.json"));
        run_python_client(
            "emit.py",
            &[
                "--endpoint",
                &format!("http://127.0.0.1:{port}"),
                "--protocol",
                protocol,
                "--traces",
                "100",
                "--service",
                service,
                "--seed",
                seed,
                "--out",
                manifest.to_str().unwrap(),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}\n--- weft ---\n{}", weft.log()));
        let m: Json = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        for s in m["spans"].as_array().unwrap() {
            let key = (
                service.to_string(),
                s["name"].as_str().unwrap().to_string(),
                kind_name(s["kind"].as_i64().unwrap()).to_string(),
                status_name(s["status_code"].as_i64().unwrap()).to_string(),
            );
            *calls.entry(key.clone()).or_default() += 1;
            let ms = (s["end_time_unix_nano"].as_u64().unwrap()
                - s["start_time_unix_nano"].as_u64().unwrap()) as f64
                / 1e6;
            let bucket = BOUNDS_MS.partition_point(|b| *b < ms);
            buckets.entry(key).or_insert_with(|| vec![0; 4])[bucket] += 1;
            traces.insert(s["trace_id"].as_str().unwrap().to_string());
        }
    }

    // Wait until every trace is decided (samplingmetrics says so) and the span metrics
    // flushed after it: then the file holds the final totals and every exemplar.
    let total = traces.len() as i64;
    let settled = eventually(Duration::from_secs(60), || {
        let m = read_metrics(out.path());
        let decided: i64 = m.decided.values().sum();
        (decided == total && m.calls == calls).then_some(())
    });
    let m = read_metrics(out.path());
    assert!(
        settled.is_some(),
        "never settled: decided {:?} of {total}; calls {:?}\nexpected {calls:?}\n--- weft ---\n{}",
        m.decided,
        m.calls,
        weft.log()
    );
    // One more flush, so exemplars attached by the last decisions are written.
    std::thread::sleep(Duration::from_millis(1500));
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "weft exit: {status}\n{log}");
    let m = read_metrics(out.path());

    // 100% of the spans, per service, span name, kind and status; durations in their buckets.
    assert_eq!(m.calls, calls);
    assert_eq!(m.buckets, buckets);

    // What the window kept reached the trace exporter: every exemplar is one of those.
    let mut kept = BTreeSet::new();
    for line in lines(&out.path().join("traces.jsonl")) {
        let req = weft_proto::otlp_json::decode_traces(&line).unwrap();
        for s in req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            kept.insert(hex::encode(&s.trace_id));
        }
    }
    assert!(
        !kept.is_empty() && kept.len() < traces.len() / 2,
        "about a tenth of {} traces kept, got {}",
        traces.len(),
        kept.len()
    );
    assert!(
        !m.exemplar_traces.is_empty(),
        "some exemplars were attached"
    );
    let strays: Vec<_> = m.exemplar_traces.difference(&kept).collect();
    assert!(
        strays.is_empty(),
        "exemplars of traces that were not kept: {strays:?}"
    );

    // samplingmetrics: the same decisions.
    assert_eq!(
        m.decided.get("true").copied().unwrap_or(0),
        kept.len() as i64
    );
    assert_eq!(m.decided.values().sum::<i64>(), total);
}
