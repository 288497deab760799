//! SIGTERM while the backend is down: Weft exits within its shutdown deadline
//! (`weft::service::SHUTDOWN_DEADLINE`, 25 s, under Kubernetes' 30 s grace period) with a
//! clean status, and
//! - with a persistent sending queue (`file_storage`), what it acknowledged stays on disk and
//!   is delivered, exactly once, by the next start; the queue does not wait for the backend
//!   at all (nothing is abandoned at the deadline: its workers stop when shutdown begins);
//! - with an in-memory queue, what it could not deliver is logged (`dropping data`, with the
//!   item count) so nothing disappears silently.
//!
//! The client is the official OpenTelemetry Python SDK (`clients/emit.py`); the backend is a
//! second Weft writing what it receives to files, down (nothing listening on its port) until
//! the restart. The forwarder has a `batch` processor with a long timeout in front of the
//! exporter, so at SIGTERM part of the acknowledged data is still in the batch processor and
//! shutdown has to flush it into the queue before the queue is closed.

// The measured numbers (exit time, what was kept or dropped) are printed for
// docs/RELIABILITY.md: `cargo test --test shutdown -- --nocapture`.
#![allow(clippy::print_stdout)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use weft_integration_tests::{
    eventually, file_sink_config, file_sink_received, free_port, loopback, run_python_client, Weft,
};

/// How long Weft's shutdown may take in all.
fn shutdown_deadline() -> Duration {
    weft::service::SHUTDOWN_DEADLINE
}

/// How much later than the deadline the process may be gone: the time to leave the runtime
/// and exit, and to notice it (the harness polls every 50 ms), on a loaded machine.
const EXIT_MARGIN: Duration = Duration::from_secs(5);

/// The forwarder: OTLP in, `batch` (7 items a batch, a timeout far beyond the test, so the
/// last partial batch is only sent by shutdown), OTLP out to `backend` with retries that never
/// give up on their own, so only the shutdown deadline ends them. JSON logs, for the test to
/// read the fields of the drop messages.
fn forwarder_config(grpc: u16, metrics: u16, backend: u16, storage: Option<&Path>) -> String {
    let (queue_storage, extension, extensions) = match storage {
        Some(dir) => (
            "storage: file_storage",
            format!(
                "extensions:\n  file_storage:\n    directory: {}\n",
                dir.display()
            ),
            "extensions: [file_storage]",
        ),
        None => ("queue_size: 1000", String::new(), "extensions: []"),
    };
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  batch:
    send_batch_size: 7
    send_batch_max_size: 7
    timeout: 10m
exporters:
  otlp:
    endpoint: 127.0.0.1:{backend}
    tls:
      insecure: true
    timeout: 2s
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 0s
    sending_queue:
      {queue_storage}
      num_consumers: 2
{extension}
service:
  {extensions}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
    logs: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
  telemetry:
    logs:
      encoding: json
    metrics:
      address: 127.0.0.1:{metrics}
"#
    )
}

/// Sends 20 traces (60 spans, ~65 logs) with the Python SDK; returns the manifest of what the
/// SDK produced, after checking the SDK was told all of it was accepted.
fn emit(grpc: u16, out: &Path, weft: &Weft) -> Json {
    let manifest_path = out.join("manifest.json");
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let client = run_python_client(
        "emit.py",
        &[
            "--endpoint",
            &endpoint,
            "--protocol",
            "grpc",
            "--traces",
            "20",
            "--out",
            manifest_path.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\n--- weft ---\n{}", weft.log()));
    assert!(
        !client.contains("Failed to export"),
        "the SDK was told its data was accepted:\n{client}"
    );
    serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap()
}

fn expected_spans(manifest: &Json) -> HashSet<String> {
    manifest["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["span_id"].as_str().unwrap().to_string())
        .collect()
}

/// Logs keyed by trace id and body (bodies repeat across traces, and the orphan logs have
/// distinct bodies).
fn log_key(trace_id: &str, body: &str) -> String {
    format!("{trace_id}|{body}")
}

fn expected_logs(manifest: &Json) -> HashMap<String, usize> {
    let mut logs = HashMap::new();
    for l in manifest["logs"].as_array().unwrap() {
        let key = log_key(l["trace_id"].as_str().unwrap(), l["body"].as_str().unwrap());
        *logs.entry(key).or_default() += 1;
    }
    logs
}

/// How many times each span id and each log (keyed by [`log_key`]) arrived at the backend.
fn received(out: &Path) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let (spans, logs) = file_sink_received(out);
    let mut by_span = HashMap::new();
    for (_, span_id) in spans {
        *by_span.entry(span_id).or_default() += 1;
    }
    let mut by_log = HashMap::new();
    for log in logs {
        *by_log.entry(log).or_default() += 1;
    }
    (by_span, by_log)
}

/// Sends SIGTERM and returns how long the process took to exit, its log, and whether it
/// exited cleanly.
fn sigterm(weft: Weft) -> (Duration, String) {
    let start = Instant::now();
    let (status, log) = weft.terminate().unwrap_or_else(|e| panic!("{e:#}"));
    let took = start.elapsed();
    assert!(
        status.success(),
        "a clean exit after SIGTERM, got {status}\n{log}"
    );
    (took, log)
}

/// The JSON log lines of a Weft log (others, like a panic message, are skipped).
fn json_lines(log: &str) -> Vec<Json> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .collect()
}

#[test]
fn sigterm_with_the_backend_down_keeps_the_persistent_queue_for_the_next_start() {
    let storage = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (fwd_grpc, fwd_metrics) = (free_port(), free_port());
    let (sink_grpc, sink_metrics) = (free_port(), free_port());
    let config = forwarder_config(fwd_grpc, fwd_metrics, sink_grpc, Some(storage.path()));

    // The backend is down: nothing listens on sink_grpc.
    let fwd = Weft::start(&config, &[loopback(fwd_grpc)]).unwrap();
    let manifest = emit(fwd_grpc, out.path(), &fwd);
    let (spans_sent, logs_sent) = (expected_spans(&manifest), expected_logs(&manifest));
    assert!(
        spans_sent.len() % 7 != 0,
        "a partial batch is left in the batch processor: {} spans",
        spans_sent.len()
    );

    let deadline = shutdown_deadline();
    let (took, log) = sigterm(fwd);
    println!(
        "persistent queue, backend down: exited {took:?} after SIGTERM (deadline {deadline:?})"
    );
    assert!(
        took <= deadline + EXIT_MARGIN,
        "exits within the shutdown deadline ({deadline:?} + {EXIT_MARGIN:?}), took {took:?}\n{log}"
    );
    let kept: u64 = json_lines(&log)
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("stay in the persistent queue"))
        })
        .filter_map(|l| l["batches"].as_u64())
        .sum();
    println!("persistent queue: {kept} batches kept on disk at shutdown");
    assert!(
        kept > 0,
        "says how many batches stay queued for the next start:\n{log}"
    );
    // It stopped when shutdown began, not at the deadline: no attempt was cut off by it, and
    // every batch it kept is there because shutdown began, not because time ran out.
    let lines = json_lines(&log);
    let at_deadline: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.contains("deadline"))
        .collect();
    assert!(
        at_deadline.is_empty(),
        "nothing waited for the shutdown deadline: {at_deadline:?}\n{log}"
    );
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("not waiting for the backend"))),
        "says it did not wait for the backend:\n{log}"
    );

    // The backend comes back, then Weft on the same storage.
    let sink = Weft::start(
        &file_sink_config(sink_grpc, sink_metrics, out.path()),
        &[loopback(sink_grpc)],
    )
    .unwrap();
    let fwd = Weft::start(&config, &[loopback(fwd_grpc)]).unwrap();
    let total_logs: usize = logs_sent.values().sum();
    let all_arrived = eventually(Duration::from_secs(60), || {
        let (spans, logs) = received(out.path());
        (spans_sent.iter().all(|s| spans.contains_key(s))
            && logs.values().sum::<usize>() >= total_logs
            && logs_sent.keys().all(|k| logs.contains_key(k)))
        .then_some(())
    });
    let (spans, logs) = received(out.path());
    assert!(
        all_arrived.is_some(),
        "after the restart everything acknowledged arrives: {} of {} spans, {} of {} logs\n--- forwarder ---\n{}",
        spans_sent.iter().filter(|s| spans.contains_key(*s)).count(),
        spans_sent.len(),
        logs.values().sum::<usize>(),
        total_logs,
        fwd.log()
    );
    assert!(
        fwd.log().contains("resuming the persistent queue"),
        "{}",
        fwd.log()
    );
    // Let anything still queued (a duplicate would be) arrive before counting.
    std::thread::sleep(Duration::from_secs(1));
    let (status, fwd_log) = fwd.terminate().unwrap();
    assert!(status.success(), "{fwd_log}");
    let (status, sink_log) = sink.terminate().unwrap();
    assert!(status.success(), "{sink_log}");
    let (spans, logs) = received(out.path());
    let twice: Vec<_> = spans.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "each span exactly once: {twice:?}");
    let unknown: Vec<_> = spans.keys().filter(|s| !spans_sent.contains(*s)).collect();
    assert!(unknown.is_empty(), "only the SDK's spans: {unknown:?}");
    assert_eq!(logs, logs_sent, "each log exactly once");
    println!(
        "persistent queue: {} spans and {} logs acknowledged before SIGTERM, all delivered exactly once after the restart",
        spans_sent.len(),
        total_logs
    );
}

#[test]
fn sigterm_with_the_backend_down_and_an_in_memory_queue_exits_and_reports_what_it_dropped() {
    let out = tempfile::tempdir().unwrap();
    let (fwd_grpc, fwd_metrics, backend) = (free_port(), free_port(), free_port());
    let config = forwarder_config(fwd_grpc, fwd_metrics, backend, None);

    let fwd = Weft::start(&config, &[loopback(fwd_grpc)]).unwrap();
    let manifest = emit(fwd_grpc, out.path(), &fwd);
    let spans_sent = expected_spans(&manifest).len() as u64;
    let logs_sent: usize = expected_logs(&manifest).values().sum();

    let deadline = shutdown_deadline();
    let (took, log) = sigterm(fwd);
    println!(
        "in-memory queue, backend down: exited {took:?} after SIGTERM (deadline {deadline:?})"
    );
    assert!(
        took <= deadline + EXIT_MARGIN,
        "exits within the shutdown deadline ({deadline:?} + {EXIT_MARGIN:?}), took {took:?}\n{log}"
    );

    // Everything acknowledged was lost with the process (the backend never came up), and
    // every item of it is accounted for in a `dropping data` line.
    let mut dropped: HashMap<String, u64> = HashMap::new();
    for line in json_lines(&log) {
        let message = line["message"].as_str().unwrap_or_default();
        if message.starts_with("dropping data") {
            *dropped.entry(message.to_string()).or_default() +=
                line["dropped_items"].as_u64().unwrap_or(0);
        }
    }
    println!("in-memory queue: dropped at shutdown {dropped:?}; sent {spans_sent} spans, {logs_sent} logs");
    assert_eq!(
        dropped.values().sum::<u64>(),
        spans_sent + logs_sent as u64,
        "every undelivered span and log is reported dropped ({spans_sent} spans + {logs_sent} logs):\n{log}"
    );
}
