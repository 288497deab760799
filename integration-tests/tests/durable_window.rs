//! The durable tail-sampling window: a weft whose `tail_sampling` keeps a write-ahead log
//! (`storage: file_storage`) is killed with SIGKILL while traces wait for their decision —
//! some already decided and delivered, others still waiting — and restarted on the same
//! folder. Everything the official Python SDK was told was accepted arrives, exactly once:
//! the decided traces are not sent again (their decisions are resumed from the log), the
//! waiting ones are decided after the restart at the time they were due.
//!
//! The same kill without `storage` loses what the window held (the last test), so the first
//! one can fail.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;
use weft_integration_tests::{
    eventually, file_sink_config, file_sink_received as received, free_port, http_get, loopback,
    metric_value, run_python_client, Weft,
};

const DECISION_WAIT: &str = "20s";

/// Weft with the tail sampler in front of an OTLP exporter to the sink. The exporter sends
/// synchronously (`sending_queue.enabled: false`): kept data counts as delivered once the
/// sink has it, so the window's log is the only place acknowledged data waits.
fn forwarder_config(grpc: u16, metrics: u16, sink_grpc: u16, storage: Option<&Path>) -> String {
    let (storage_key, extension, service_extensions) = match storage {
        Some(dir) => (
            "    storage: file_storage\n".to_string(),
            format!(
                "extensions:\n  file_storage:\n    directory: {}\n",
                dir.display()
            ),
            "  extensions: [file_storage]\n",
        ),
        None => (String::new(), String::new(), ""),
    };
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  tail_sampling:
    decision_wait: {DECISION_WAIT}
    num_traces: 10000
{storage_key}    policies:
      - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
      - {{name: slow, type: latency, latency: {{threshold_ms: 1000}}}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_grpc}
    tls:
      insecure: true
    sending_queue:
      enabled: false
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 0s
{extension}service:
{service_extensions}  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [otlp]
    logs:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [otlp]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#
    )
}

/// Sends 40 traces (4 with an error, 4 slow: kept) through the SDK; returns its manifest.
fn send(grpc: u16, out: &Path, name: &str, seed: &str, weft: &Weft) -> Json {
    let manifest = out.join(format!("{name}.json"));
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let client = run_python_client(
        "emit_traffic.py",
        &[
            "--endpoint",
            &endpoint,
            "--traces",
            "40",
            "--error-share",
            "0.1",
            "--slow-share",
            "0.1",
            "--orphan-logs",
            "0",
            "--seed",
            seed,
            "--out",
            manifest.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", weft.log()));
    assert!(
        !client.contains("Failed to export"),
        "the SDK was told its data was accepted:\n{client}"
    );
    serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap()
}

/// What the manifests say must arrive (kept traces) and must not (dropped ones).
struct Expected {
    kept_spans: HashSet<(String, String)>,
    kept_logs: HashSet<String>,
    dropped_traces: HashSet<String>,
}

fn expected(manifests: &[&Json]) -> Expected {
    let mut e = Expected {
        kept_spans: HashSet::new(),
        kept_logs: HashSet::new(),
        dropped_traces: HashSet::new(),
    };
    for t in manifests
        .iter()
        .flat_map(|m| m["traces"].as_array().unwrap())
    {
        let id = t["trace_id"].as_str().unwrap().to_string();
        if !matches!(t["category"].as_str().unwrap(), "error" | "slow") {
            e.dropped_traces.insert(id);
            continue;
        }
        for s in t["spans"].as_array().unwrap() {
            e.kept_spans
                .insert((id.clone(), s.as_str().unwrap().to_string()));
        }
        for l in t["logs"].as_array().unwrap() {
            e.kept_logs.insert(format!("{id}|{}", l.as_str().unwrap()));
        }
    }
    e
}

fn metric(weft_metrics: u16, series: &str) -> f64 {
    http_get(loopback(weft_metrics), "/metrics")
        .ok()
        .and_then(|(_, body)| metric_value(&body, series))
        .unwrap_or(0.0)
}

const ON_MEMORY: &str =
    "otelcol_processor_tail_sampling_sampling_traces_on_memory{processor=\"tail_sampling\"}";
const DECISIONS_WRITTEN: &str =
    "weft_processor_tail_sampling_wal_decisions_written_total{processor=\"tail_sampling\"}";

const REPLAYED_SPANS: &str =
    "weft_processor_tail_sampling_wal_replayed_items_total{processor=\"tail_sampling\",item=\"spans\"}";

fn kill(weft: &Weft) {
    let status = Command::new("kill")
        .args(["-KILL", &weft.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_killed_durable_window_resumes_its_decisions_and_delivers_everything_exactly_once() {
    let storage = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (fwd_grpc, fwd_metrics) = (free_port(), free_port());
    let (sink_grpc, sink_metrics) = (free_port(), free_port());
    let sink = Weft::start(
        &file_sink_config(sink_grpc, sink_metrics, out.path()),
        &[loopback(sink_grpc)],
    )
    .unwrap();
    let fwd_config = forwarder_config(fwd_grpc, fwd_metrics, sink_grpc, Some(storage.path()));
    let fwd = Weft::start(&fwd_config, &[loopback(fwd_grpc)]).unwrap();

    // Batch A, then batch B well after it: when A's traces are decided (20 s after they
    // arrived), B's are still waiting.
    let a = send(fwd_grpc, out.path(), "a", "1", &fwd);
    std::thread::sleep(Duration::from_secs(8));
    let b = send(fwd_grpc, out.path(), "b", "2", &fwd);
    let a_traces = a["traces"].as_array().unwrap().len() as f64;
    let b_traces = b["traces"].as_array().unwrap().len() as f64;

    // Kill once A's decisions are on disk (its kept traces delivered before that), while B
    // waits.
    let decided = eventually(Duration::from_secs(60), || {
        (metric(fwd_metrics, DECISIONS_WRITTEN) >= a_traces).then_some(())
    });
    assert!(decided.is_some(), "batch A was not decided\n{}", fwd.log());
    let waiting = metric(fwd_metrics, ON_MEMORY);
    kill(&fwd);
    assert_eq!(
        waiting,
        b_traces,
        "scenario: batch B is still waiting for its decision at the kill\n{}",
        fwd.log()
    );
    let a_kept = expected(&[&a]);
    // The sink accepted them before the kill; its file exporter writes within its
    // flush_interval, so give the file a moment.
    let delivered = eventually(Duration::from_secs(10), || {
        let (spans, _) = received(out.path());
        let spans: HashSet<_> = spans.into_iter().collect();
        a_kept.kept_spans.is_subset(&spans).then_some(())
    });
    assert!(
        delivered.is_some(),
        "A's kept spans were delivered before the kill"
    );
    drop(fwd);

    // Restart on the same folder: B is decided when due, A is not sent again.
    let fwd = Weft::start(&fwd_config, &[loopback(fwd_grpc)]).unwrap();
    let all = expected(&[&a, &b]);
    let done = eventually(Duration::from_secs(90), || {
        let (spans, logs) = received(out.path());
        let spans: HashSet<_> = spans.into_iter().collect();
        let logs: HashSet<_> = logs.into_iter().collect();
        (all.kept_spans.is_subset(&spans) && all.kept_logs.is_subset(&logs)).then_some(())
    });
    // The replay re-ingested B's spans only: A's were skipped, their decisions resumed.
    let replayed = metric(fwd_metrics, REPLAYED_SPANS);
    let (status, fwd_log) = fwd.terminate().unwrap();
    assert!(status.success(), "{fwd_log}");
    let (status, log) = sink.terminate().unwrap();
    assert!(status.success(), "{log}");
    let (spans, logs) = received(out.path());
    let b_spans: usize = b["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(replayed, b_spans as f64, "{fwd_log}");
    assert!(
        done.is_some(),
        "after the restart every acknowledged kept span and log arrives: {} of {} spans, {} of {} logs\n--- forwarder ---\n{fwd_log}",
        all.kept_spans
            .intersection(&spans.iter().cloned().collect())
            .count(),
        all.kept_spans.len(),
        all.kept_logs
            .intersection(&logs.iter().cloned().collect())
            .count(),
        all.kept_logs.len(),
    );
    assert!(
        fwd_log.contains("resuming the durable window: replayed its log"),
        "{fwd_log}"
    );

    // Exactly once, and nothing of a dropped trace.
    let mut span_counts: HashMap<&(String, String), usize> = HashMap::new();
    for s in &spans {
        *span_counts.entry(s).or_default() += 1;
    }
    let twice: Vec<_> = span_counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "spans delivered more than once: {twice:?}"
    );
    let mut log_counts: HashMap<&String, usize> = HashMap::new();
    for l in &logs {
        *log_counts.entry(l).or_default() += 1;
    }
    let twice: Vec<_> = log_counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "logs delivered more than once: {twice:?}");
    assert_eq!(spans.len(), all.kept_spans.len(), "no other span arrives");
    assert_eq!(logs.len(), all.kept_logs.len(), "no other log arrives");
    assert!(
        spans.iter().all(|(t, _)| !all.dropped_traces.contains(t)),
        "a dropped trace's span arrived"
    );
}

#[test]
fn without_storage_a_killed_window_loses_what_it_held() {
    let out = tempfile::tempdir().unwrap();
    let (fwd_grpc, fwd_metrics) = (free_port(), free_port());
    let (sink_grpc, sink_metrics) = (free_port(), free_port());
    let sink = Weft::start(
        &file_sink_config(sink_grpc, sink_metrics, out.path()),
        &[loopback(sink_grpc)],
    )
    .unwrap();
    let fwd_config = forwarder_config(fwd_grpc, fwd_metrics, sink_grpc, None);
    let fwd = Weft::start(&fwd_config, &[loopback(fwd_grpc)]).unwrap();
    let a = send(fwd_grpc, out.path(), "a", "1", &fwd);
    let traces = a["traces"].as_array().unwrap().len() as f64;
    let waiting = eventually(Duration::from_secs(30), || {
        (metric(fwd_metrics, ON_MEMORY) == traces).then_some(())
    });
    assert!(waiting.is_some(), "{}", fwd.log());
    kill(&fwd);
    drop(fwd);

    let fwd = Weft::start(&fwd_config, &[loopback(fwd_grpc)]).unwrap();
    // SIGTERM decides what the window holds: nothing, it was lost with the process.
    let (status, log) = fwd.terminate().unwrap();
    assert!(status.success(), "{log}");
    let (status, log) = sink.terminate().unwrap();
    assert!(status.success(), "{log}");
    let (spans, logs) = received(out.path());
    let kept = expected(&[&a]);
    assert!(!kept.kept_spans.is_empty());
    assert!(
        spans.is_empty() && logs.is_empty(),
        "an in-memory window cannot survive kill -9: {} spans arrived",
        spans.len()
    );
}
