//! A real Prometheus server (v0.316.0 from the Go module proxy) scrapes weft's `prometheus`
//! exporter, which exposes what the `spanmetrics` connector computed from the official
//! Python SDK's spans. PromQL over Prometheus's HTTP API must see the target up, every
//! service in `sum(rate(traces_span_metrics_calls_total[1m])) by (service_name)`, and calls
//! totals equal to the spans the SDK sent.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use weft_integration_tests::{
    eventually, free_port, loopback, run_python_client, Prometheus, Weft,
};

fn config(grpc: u16, http: u16, scrape: u16, metrics: u16) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
connectors:
  spanmetrics:
    metrics_flush_interval: 1s
    exemplars: {{enabled: true}}
exporters:
  prometheus:
    endpoint: "127.0.0.1:{scrape}"
    enable_open_metrics: true
  debug:
    verbosity: basic
    sampling_initial: 0
    sampling_thereafter: 0
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [spanmetrics]}}
    logs: {{receivers: [otlp], exporters: [debug]}}
    metrics: {{receivers: [spanmetrics], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{metrics}"}}
"#
    )
}

/// `{label value: sample value}` of an instant vector answer.
fn by_label(answer: &str, label: &str) -> BTreeMap<String, f64> {
    let json: Json = serde_json::from_str(answer).expect("Prometheus answers JSON");
    assert_eq!(json["status"], "success", "{answer}");
    json["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|r| {
            let key = r["metric"][label].as_str().unwrap_or_default().to_string();
            let value: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
            (key, value)
        })
        .collect()
}

#[test]
fn prometheus_scrapes_span_metrics_and_promql_sees_every_service() {
    let (grpc, http, scrape, metrics) = (free_port(), free_port(), free_port(), free_port());
    let weft = Weft::start(
        &config(grpc, http, scrape, metrics),
        &[loopback(grpc), loopback(http), loopback(scrape)],
    )
    .unwrap();
    let prometheus = Prometheus::start(loopback(scrape)).unwrap();

    let out = tempfile::tempdir().unwrap();
    let mut sent = BTreeMap::new();
    for (protocol, port, service) in [("grpc", grpc, "checkout"), ("http", http, "payments")] {
        let manifest = out.path().join(format!("{service}.json"));
        run_python_client(
            "emit.py",
            &[
                "--endpoint",
                &format!("http://127.0.0.1:{port}"),
                "--protocol",
                protocol,
                "--traces",
                "20",
                "--service",
                service,
                "--out",
                manifest.to_str().unwrap(),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}\n--- weft ---\n{}", weft.log()));
        let m: Json = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        sent.insert(
            service.to_string(),
            m["spans"].as_array().unwrap().len() as f64,
        );
    }

    // The target is up: Prometheus parsed the exposition.
    let up = eventually(Duration::from_secs(60), || {
        let up = by_label(&prometheus.query("up{job=\"weft\"}").ok()?, "job");
        (up.get("weft") == Some(&1.0)).then_some(())
    });
    assert!(
        up.is_some(),
        "the weft target never came up\n--- prometheus ---\n{}",
        prometheus.log()
    );

    // Every service the SDK sent, with all its spans counted (nothing samples here).
    let totals = eventually(Duration::from_secs(60), || {
        let totals = by_label(
            &prometheus
                .query("sum(traces_span_metrics_calls_total) by (service_name)")
                .ok()?,
            "service_name",
        );
        (totals == sent).then_some(totals)
    });
    assert!(
        totals.is_some(),
        "calls per service never matched {sent:?}: {}\n--- prometheus ---\n{}",
        prometheus
            .query("sum(traces_span_metrics_calls_total) by (service_name)")
            .unwrap_or_default(),
        prometheus.log()
    );

    // The query dashboards use.
    let rates = eventually(Duration::from_secs(60), || {
        let rates = by_label(
            &prometheus
                .query("sum(rate(traces_span_metrics_calls_total[1m])) by (service_name)")
                .ok()?,
            "service_name",
        );
        (rates.keys().cloned().collect::<Vec<_>>() == ["checkout", "payments"]).then_some(rates)
    });
    assert!(rates.is_some(), "rate() did not return both services");

    // Durations: the histogram's buckets are there, one +Inf bucket per series.
    let buckets = by_label(
        &prometheus
            .query("count(traces_span_metrics_duration_milliseconds_bucket{le=\"+Inf\"}) by (service_name)")
            .unwrap(),
        "service_name",
    );
    assert_eq!(
        buckets.keys().cloned().collect::<Vec<_>>(),
        ["checkout", "payments"]
    );

    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "weft exit: {status}\n{log}");
}
