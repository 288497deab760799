//! Nothing acknowledged is lost: a weft whose exporter queue is on disk (`file_storage`) is
//! killed with SIGKILL while its backend is down; restarted, it delivers everything the SDK
//! was told was accepted.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;
use weft_integration_tests::{
    eventually, file_sink_config, file_sink_received, free_port, loopback, run_python_client, Weft,
};

fn forwarder_config(grpc: u16, metrics: u16, sink_grpc: u16, storage: &Path) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_grpc}
    tls:
      insecure: true
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 0s
    sending_queue:
      storage: file_storage
      num_consumers: 2
extensions:
  file_storage:
    directory: {storage}
service:
  extensions: [file_storage]
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp]}}
    logs: {{receivers: [otlp], exporters: [otlp]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        storage = storage.display()
    )
}

/// Spans as a set (a resend would show in the logs' count), logs in order.
fn received(out: &Path) -> (HashSet<(String, String)>, Vec<String>) {
    let (spans, logs) = file_sink_received(out);
    (spans.into_iter().collect(), logs)
}

#[test]
fn a_killed_weft_delivers_its_persistent_queue_after_restart() {
    let storage = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (fwd_grpc, fwd_metrics) = (free_port(), free_port());
    let (sink_grpc, sink_metrics) = (free_port(), free_port());
    let fwd_config = forwarder_config(fwd_grpc, fwd_metrics, sink_grpc, storage.path());

    // The backend is down; the SDK's data is acknowledged into the on-disk queue.
    let fwd = Weft::start(&fwd_config, &[loopback(fwd_grpc)]).unwrap();
    let manifest_path = out.path().join("manifest.json");
    let endpoint = format!("http://127.0.0.1:{fwd_grpc}");
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
    .unwrap_or_else(|e| panic!("{e}\n{}", fwd.log()));
    assert!(
        !client.contains("Failed to export"),
        "the SDK was told its data was accepted:\n{client}"
    );
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();

    // kill -9: no shutdown, no flush.
    let status = Command::new("kill")
        .args(["-KILL", &fwd.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let segments = std::fs::read_dir(storage.path()).unwrap().count();
    assert!(segments >= 2, "one queue folder per signal");
    drop(fwd);

    // The backend comes back, and so does weft on the same storage.
    let sink = Weft::start(
        &file_sink_config(sink_grpc, sink_metrics, out.path()),
        &[loopback(sink_grpc)],
    )
    .unwrap();
    let fwd = Weft::start(&fwd_config, &[loopback(fwd_grpc)]).unwrap();
    let expected_spans: HashSet<(String, String)> = manifest["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["trace_id"].as_str().unwrap().to_string(),
                s["span_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected_logs: HashSet<String> = manifest["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}|{}",
                l["trace_id"].as_str().unwrap(),
                l["body"].as_str().unwrap()
            )
        })
        .collect();
    let done = eventually(Duration::from_secs(60), || {
        let (spans, logs) = received(out.path());
        let logs: HashSet<String> = logs.into_iter().collect();
        (expected_spans.is_subset(&spans) && expected_logs.is_subset(&logs)).then_some(())
    });
    let (spans, logs) = received(out.path());
    assert!(
        done.is_some(),
        "after the restart, every acknowledged span and log arrives: {} of {} spans, {} of {} logs\n--- forwarder ---\n{}",
        expected_spans.intersection(&spans).count(),
        expected_spans.len(),
        logs.iter().collect::<HashSet<_>>().len(),
        expected_logs.len(),
        fwd.log()
    );
    assert!(
        fwd.log().contains("resuming the persistent queue"),
        "{}",
        fwd.log()
    );
    let (status, log) = fwd.terminate().unwrap();
    assert!(status.success(), "{log}");
    let (status, log) = sink.terminate().unwrap();
    assert!(status.success(), "{log}");
}
