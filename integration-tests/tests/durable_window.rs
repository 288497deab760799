//! The durable tail-sampling window: a weft whose `tail_sampling` keeps a write-ahead log
//! (`storage: file_storage`) is killed with SIGKILL while traces wait for their decision —
//! some already decided and delivered, others still waiting — and restarted on the same
//! folder. Everything the official Python SDK was told was accepted arrives, exactly once:
//! the decided traces are not sent again (their decisions are resumed from the log), the
//! waiting ones are decided after the restart (once data flows again, or when the hold
//! for it runs out).
//!
//! The same kill without `storage` loses what the window held (the last test), so the first
//! one can fail.
//!
//! A SIGTERM is not a crash: a durable window keeps its waiting traces in the log instead of
//! deciding them on what arrived so far, and the next start decides them, with the
//! spans that arrive after the restart joined in (the middle test: the error that makes a
//! trace worth keeping arrives only after the restart).

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

    // Restart on the same folder: B is decided when the hold runs out (nothing new comes:
    // decision_wait + 30 s), A is not sent again.
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

/// The forwarder of [`a_sigterm_keeps_waiting_traces_and_the_next_start_decides_them_on_all_their_spans`]:
/// traces with a root are decided 1 s after it; traces without one wait `decision_wait`
/// (long enough for a restart and the second part to arrive).
fn restart_config(grpc: u16, metrics: u16, sink_grpc: u16, storage: &Path) -> String {
    forwarder_config(grpc, metrics, sink_grpc, Some(storage)).replace(
        &format!("decision_wait: {DECISION_WAIT}"),
        "decision_wait: 30s\n    decision_wait_after_root_received: 1s",
    )
}

/// `log` without its ANSI colour sequences (`ESC [ … m`), so fields read as `key=value`.
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `emit_split.py` for one phase; returns its manifest.
fn send_split(grpc: u16, out: &Path, phase: &str, weft: &Weft) -> Json {
    let manifest = out.join(format!("split-{phase}.json"));
    let first = out.join("split-first.json");
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let mut args = vec![
        "--endpoint",
        &endpoint,
        "--phase",
        phase,
        "--out",
        manifest.to_str().unwrap(),
    ];
    if phase == "rest" {
        args.extend(["--manifest", first.to_str().unwrap()]);
    }
    let client =
        run_python_client("emit_split.py", &args).unwrap_or_else(|e| panic!("{e}\n{}", weft.log()));
    assert!(
        !client.contains("Failed to export"),
        "the SDK was told its data was accepted:\n{client}"
    );
    serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap()
}

/// The kept spans and logs of the traces of `part` ("complete" or "split") whose `error` is
/// set, and the ids of the others.
fn split_expected(manifest: &Json, part: &str) -> Expected {
    let mut e = Expected {
        kept_spans: HashSet::new(),
        kept_logs: HashSet::new(),
        dropped_traces: HashSet::new(),
    };
    for t in manifest[part].as_array().unwrap() {
        let id = t["trace_id"].as_str().unwrap().to_string();
        if !t["error"].as_bool().unwrap() {
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

#[test]
fn a_sigterm_keeps_waiting_traces_and_the_next_start_decides_them_on_all_their_spans() {
    let storage = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (fwd_grpc, fwd_metrics) = (free_port(), free_port());
    let (sink_grpc, sink_metrics) = (free_port(), free_port());
    let sink = Weft::start(
        &file_sink_config(sink_grpc, sink_metrics, out.path()),
        &[loopback(sink_grpc)],
    )
    .unwrap();
    let config = restart_config(fwd_grpc, fwd_metrics, sink_grpc, storage.path());
    let fwd = Weft::start(&config, &[loopback(fwd_grpc)]).unwrap();

    // Whole traces, decided 1 s after their root, and the first part of traces whose root
    // never comes (they wait decision_wait): all OK so far.
    let first = send_split(fwd_grpc, out.path(), "first", &fwd);
    let complete = split_expected(&first, "complete");
    let whole_traces = first["complete"].as_array().unwrap().len() as f64;
    let split_traces = first["split"].as_array().unwrap().len();
    let decided = eventually(Duration::from_secs(60), || {
        let (spans, _) = received(out.path());
        let spans: HashSet<_> = spans.into_iter().collect();
        (metric(fwd_metrics, DECISIONS_WRITTEN) >= whole_traces
            && complete.kept_spans.is_subset(&spans))
        .then_some(())
    });
    assert!(
        decided.is_some(),
        "the whole traces were decided and delivered\n{}",
        fwd.log()
    );
    let waiting = metric(fwd_metrics, ON_MEMORY);
    assert_eq!(
        waiting,
        split_traces as f64,
        "scenario: the split traces wait at the SIGTERM\n{}",
        fwd.log()
    );

    let (status, log) = fwd.terminate().unwrap();
    assert!(status.success(), "a clean exit\n{log}");
    let log = without_colours(&log);
    assert!(
        log.contains("undecided traces kept in the durable window's log")
            && log.contains(&format!("pending_traces={split_traces}")),
        "says it kept the waiting traces for the next start:\n{log}"
    );
    let (spans, _) = received(out.path());
    let split_ids: HashSet<&str> = first["split"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert!(
        spans.iter().all(|(t, _)| !split_ids.contains(t.as_str())),
        "nothing of a waiting trace was decided at the SIGTERM"
    );

    // The restart, then the rest of the split traces: an error for some of them.
    let fwd = Weft::start(&config, &[loopback(fwd_grpc)]).unwrap();
    let rest = send_split(fwd_grpc, out.path(), "rest", &fwd);
    let split = split_expected(&rest, "split");
    let mut all = split_expected(&rest, "complete");
    all.kept_spans.extend(split.kept_spans.iter().cloned());
    all.kept_logs.extend(split.kept_logs.iter().cloned());
    all.dropped_traces
        .extend(split.dropped_traces.iter().cloned());
    let done = eventually(Duration::from_secs(90), || {
        let (spans, logs) = received(out.path());
        let spans: HashSet<_> = spans.into_iter().collect();
        let logs: HashSet<_> = logs.into_iter().collect();
        (all.kept_spans.is_subset(&spans) && all.kept_logs.is_subset(&logs)).then_some(())
    });
    let replayed = metric(fwd_metrics, REPLAYED_SPANS);
    let (status, fwd_log) = fwd.terminate().unwrap();
    assert!(status.success(), "{fwd_log}");
    let (status, log) = sink.terminate().unwrap();
    assert!(status.success(), "{log}");
    let (spans, logs) = received(out.path());
    assert!(
        done.is_some(),
        "after the restart the kept traces arrive whole: {} of {} spans, {} of {} logs\n--- forwarder ---\n{fwd_log}",
        all.kept_spans
            .intersection(&spans.iter().cloned().collect())
            .count(),
        all.kept_spans.len(),
        all.kept_logs
            .intersection(&logs.iter().cloned().collect())
            .count(),
        all.kept_logs.len(),
    );
    assert_eq!(
        replayed, split_traces as f64,
        "the replay re-ingested the first part of each split trace, nothing of the decided ones\n{fwd_log}"
    );

    // Each kept trace once, on all its spans (before and after the restart); nothing of a
    // dropped one; the whole traces decided before the SIGTERM not sent again.
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
    assert!(
        !split.kept_spans.is_empty()
            && split.kept_spans.len() == 2 * split_expected(&first, "split").kept_spans.len(),
        "scenario: each kept split trace has a span from before and one from after the restart"
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
