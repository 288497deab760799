//! Logs inside Jaeger, against the real Jaeger v2: with `attach_logs_as_span_events`, a kept
//! trace's logs become events of their spans, which Jaeger's query API shows as span `logs`
//! — including a log that arrived after the decision while the trace's spans still waited
//! (`attach_logs_wait`). The clients are the official OpenTelemetry Python SDK.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value as Json;
use weft_integration_tests::{
    eventually, free_port, http_get, metric_value, run_python_client, services, Weft,
};

fn metric(metrics: SocketAddr, series: &str) -> f64 {
    http_get(metrics, "/metrics")
        .ok()
        .and_then(|(_, body)| metric_value(&body, series))
        .unwrap_or(0.0)
}

/// GET `url`, blocking: (status, JSON body when it is JSON).
fn get_json(url: &str) -> Option<(u16, Json)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        let response = client.get(url).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.unwrap_or(Json::Null)))
    })
}

/// Jaeger's `/api/traces/{id}`: `Some(spans)` once it knows the trace.
fn jaeger_trace(query_url: &str, trace_id: &str) -> Option<Vec<Json>> {
    let (status, body) = get_json(&format!("{query_url}/api/traces/{trace_id}"))?;
    if status != 200 {
        return None;
    }
    let spans: Vec<Json> = body["data"]
        .as_array()?
        .iter()
        .flat_map(|t| t["spans"].as_array().cloned().unwrap_or_default())
        .collect();
    (!spans.is_empty()).then_some(spans)
}

/// The text values of a Jaeger span's logs, one list per log.
fn span_logs(span: &Json) -> Vec<Vec<String>> {
    span["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|log| {
            log["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["value"].as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn a_kept_trace_s_logs_are_span_logs_in_jaeger_including_one_that_came_after_the_decision() {
    let s = services();
    let grpc = free_port();
    let metrics = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  tail_sampling:
    decision_wait: 1s
    attach_logs_as_span_events: true
    # Long, so the late log below surely finds the spans waiting; the shutdown sends them.
    attach_logs_wait: 5m
    policies:
      - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
exporters:
  otlp/jaeger:
    endpoint: {jaeger}
    tls: {{insecure: true}}
  file/logs:
    path: {logs}
    flush_interval: 100ms
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [otlp/jaeger]}}
    logs: {{receivers: [otlp], processors: [tail_sampling], exporters: [file/logs]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        jaeger = s.jaeger_otlp_grpc,
        logs = dir.path().join("logs.jsonl").display(),
    );
    let weft = Weft::start(
        &config,
        &[
            weft_integration_tests::loopback(grpc),
            weft_integration_tests::loopback(metrics),
        ],
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let metrics_addr = weft_integration_tests::loopback(metrics);

    // A failing request: an ERROR log inside its failing child span.
    let sent = run_python_client(
        "emit_spans_and_logs.py",
        &[
            "--endpoint",
            &endpoint,
            "trace",
            "--error",
            "--log-severity",
            "ERROR",
            "--log-body",
            "card declined",
        ],
    )
    .unwrap();
    let ids: Json = serde_json::from_str(sent.lines().next().unwrap()).unwrap();
    let trace_id = ids["trace_id"].as_str().unwrap().to_string();
    let child = ids["child_span_id"].as_str().unwrap().to_string();
    let root = ids["root_span_id"].as_str().unwrap().to_string();

    let kept = r#"otelcol_processor_tail_sampling_global_count_traces_sampled_total{processor="tail_sampling",sampled="true"}"#;
    eventually(Duration::from_secs(60), || {
        (metric(metrics_addr, kept) >= 1.0).then_some(())
    })
    .unwrap_or_else(|| panic!("the trace was not decided\n{}", weft.log()));

    // After the decision: a log of the child span, as a retry handler writes it.
    run_python_client(
        "emit_spans_and_logs.py",
        &[
            "--endpoint",
            &endpoint,
            "log",
            "--trace-id",
            &trace_id,
            "--span-id",
            &child,
            "--body",
            "refund queued after the decision",
        ],
    )
    .unwrap();
    let attached = r#"weft_processor_tail_sampling_late_log_events_total{processor="tail_sampling",attached="true"}"#;
    assert_eq!(
        metric(metrics_addr, attached),
        1.0,
        "the late log joined the waiting spans\n{}",
        weft.log()
    );
    assert!(
        jaeger_trace(&s.jaeger_query_url, &trace_id).is_none(),
        "the spans wait for late logs before they leave"
    );

    // A shutdown sends the waiting spans at once.
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");

    let spans = eventually(Duration::from_secs(60), || {
        jaeger_trace(&s.jaeger_query_url, &trace_id).filter(|spans| spans.len() == 2)
    })
    .unwrap_or_else(|| panic!("Jaeger never showed the trace {trace_id}\n{log}"));
    let by_id = |id: &str| {
        spans
            .iter()
            .find(|sp| sp["spanID"] == id)
            .unwrap_or_else(|| panic!("span {id} in {spans:?}"))
    };
    let has = |logs: &[Vec<String>], text: &str| logs.iter().any(|l| l.iter().any(|v| v == text));
    let child_logs = span_logs(by_id(&child));
    assert!(
        has(&child_logs, "card declined"),
        "the ERROR log is a span log of the child: {child_logs:?}"
    );
    assert!(
        has(&child_logs, "ERROR"),
        "with its severity: {child_logs:?}"
    );
    assert!(
        has(&child_logs, "refund queued after the decision"),
        "the late log is a span log of the child too: {child_logs:?}"
    );
    let root_logs = span_logs(by_id(&root));
    assert!(
        has(&root_logs, "request received"),
        "the root's log is on the root: {root_logs:?}"
    );
    assert!(
        !has(&root_logs, "card declined"),
        "and only there: {root_logs:?}"
    );
}
