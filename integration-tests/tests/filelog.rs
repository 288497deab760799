//! The `filelog` receiver end to end, through the real `weft` binary:
//!
//! - a real Go service (`examples/goshop`: zap, zerolog, the OpenTelemetry Go SDK with
//!   otelhttp and the OTLP gRPC exporter) writes CRI container log files and sends spans;
//!   Weft reads the files (`filelog` + `container` + `json_parser`), joins the lines to their
//!   traces in one `tail_sampling` window, and exports to real Jaeger and real OpenSearch;
//!   the files are rotated in the middle of the run;
//! - `kill -9` in the middle of a file, then a restart: no line lost;
//! - hostile files (a 100 MB line, invalid UTF-8, a binary file, a truncated file, a symlink
//!   loop, a directory) next to a normal one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value as Json};
use weft_integration_tests::{
    eventually, file_sink_config, file_sink_received, free_port, goshop, http_client, http_get,
    loopback, metric_value, services, unique_name, Services, Weft,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn jaeger_has(s: &Services, trace_id: &str) -> bool {
    let url = format!("{}/api/traces/{trace_id}", s.jaeger_query_url);
    let resp = http_client()
        .get(&url)
        .send()
        .await
        .expect("jaeger query answers");
    if !resp.status().is_success() {
        return false;
    }
    let body: Json = resp.json().await.expect("jaeger answers JSON");
    body["data"].as_array().is_some_and(|d| {
        d.iter()
            .any(|t| !t["spans"].as_array().unwrap_or(&vec![]).is_empty())
    })
}

fn metrics(addr: SocketAddr) -> String {
    http_get(addr, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

/// The `filelog` receivers of the Go shop's two containers: zap (checkout) and zerolog
/// (payment), each the README's preset on top of the `container` operator.
fn shop_receivers(pods: &Path, glob: &str) -> String {
    format!(
        r#"
  filelog/zap:
    include: [{pods}/*_*_*/checkout/{glob}]
    start_at: beginning
    include_file_path: true
    poll_interval: 100ms
    operators:
      - type: container
      - type: json_parser
        timestamp: {{parse_from: attributes.ts, layout_type: epoch, layout: s.us}}
        severity: {{parse_from: attributes.level}}
        trace:
          trace_id: {{parse_from: attributes.trace_id}}
          span_id: {{parse_from: attributes.span_id}}
      - {{type: move, from: attributes.msg, to: body}}
  filelog/zerolog:
    include: [{pods}/*_*_*/payment/{glob}]
    start_at: beginning
    include_file_path: true
    poll_interval: 100ms
    operators:
      - type: container
      - type: json_parser
        timestamp: {{parse_from: attributes.time, layout_type: gotime, layout: '2006-01-02T15:04:05.999999999Z07:00'}}
        severity: {{parse_from: attributes.level}}
        trace:
          trace_id: {{parse_from: attributes.trace_id}}
          span_id: {{parse_from: attributes.span_id}}
      - {{type: move, from: attributes.message, to: body}}
"#,
        pods = pods.display()
    )
}

#[test]
fn go_shop_file_logs_join_their_traces_in_jaeger_and_opensearch() {
    run_shop(false);
}

/// The files reach the receiver only after every trace was decided: each line follows its
/// trace's remembered decision (kept → exported, enriched; dropped → dropped).
#[test]
fn late_file_logs_follow_the_cached_decision() {
    run_shop(true);
}

/// Sum of every sample of `name` (all label sets).
fn metric_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The Go shop against Weft, Jaeger and OpenSearch. `late`: the shop writes its files
/// elsewhere and they are moved where the receiver looks only once every trace is decided.
fn run_shop(late: bool) {
    let s = services();
    let shop = goshop();
    let rt = runtime();
    let grpc = free_port();
    let metrics_port = free_port();
    let prefix = unique_name("filelog-shop");
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let written = if late {
        dir.path().join("staging")
    } else {
        pods.clone()
    };
    // Late, the rotated file is moved in with the current one: read both from the start.
    let glob = if late { "*.log*" } else { "*.log" };
    let config = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
{receivers}
processors:
  tail_sampling:
    decision_wait: 3s
    policies:
      - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
      - {{name: slow, type: latency, latency: {{threshold_ms: 250}}}}
exporters:
  otlp/jaeger:
    endpoint: {jaeger}
    tls:
      insecure: true
  elasticsearch:
    endpoints: [{opensearch}]
    logs_index: {prefix}-%{{+yyyy.MM.dd}}
    index_template:
      install: true
    flush:
      interval: 200ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [otlp/jaeger]
    logs:
      receivers: [filelog/zap, filelog/zerolog]
      processors: [tail_sampling]
      exporters: [elasticsearch]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
"#,
        receivers = shop_receivers(&pods, glob),
        jaeger = s.jaeger_otlp_grpc,
        opensearch = s.opensearch_url,
    );
    let weft = Weft::start(&config, &[loopback(grpc), loopback(metrics_port)]).unwrap();
    let manifest_path = dir.path().join("manifest.json");
    // 60 checkouts; the files are rotated (renamed away, a new 0.log created) after 30; lines
    // longer than 1 KiB are split by the CRI writer into P/F parts.
    let out = Command::new(&shop)
        .args(["-otlp", &format!("127.0.0.1:{grpc}"), "-pods-dir"])
        .arg(&written)
        .args([
            "-requests",
            "60",
            "-error-share",
            "0.15",
            "-slow-share",
            "0.15",
            "-big-share",
            "0.2",
            "-slow-ms",
            "300",
            "-cri-max-line",
            "1024",
            "-rotate-after",
            "30",
            "-seed",
            "7",
            "-heartbeats",
            "4",
            "-manifest",
        ])
        .arg(&manifest_path)
        .output()
        .expect("the Go shop runs");
    assert!(
        out.status.success(),
        "goshop failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        weft.log()
    );
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let traces = manifest["traces"].as_array().unwrap().clone();
    let orphans: Vec<String> = manifest["orphan_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let kept: Vec<&Json> = traces
        .iter()
        .filter(|t| matches!(t["category"].as_str(), Some("error" | "slow")))
        .collect();
    assert!(
        kept.len() >= 5 && kept.len() < traces.len(),
        "a mix of kept and dropped traces"
    );
    let total_lines: usize = traces
        .iter()
        .map(|t| t["logs"].as_array().unwrap().len())
        .sum::<usize>()
        + orphans.len();

    // The run was rotated and had split lines: the test exercises both.
    let pod_dir = std::fs::read_dir(&written)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rotated = std::fs::read_dir(pod_dir.join("checkout")).unwrap().count();
    assert_eq!(rotated, 2, "0.log and its rotated predecessor");
    let mut partial_lines = 0;
    for container in ["checkout", "payment"] {
        for f in std::fs::read_dir(pod_dir.join(container)).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            partial_lines += text.matches(" stdout P ").count();
        }
    }
    assert!(partial_lines > 0, "some lines were split by the CRI writer");

    let maddr = loopback(metrics_port);
    if late {
        // Every trace decided (its spans arrived, decision_wait passed), then the files appear.
        let decided = eventually(Duration::from_secs(60), || {
            let n = metric_sum(
                &metrics(maddr),
                "otelcol_processor_tail_sampling_global_count_traces_sampled_total",
            );
            (n as usize >= traces.len()).then_some(n)
        });
        assert!(
            decided.is_some(),
            "not every trace was decided\n{}",
            metrics(maddr)
        );
        std::fs::create_dir_all(&pods).unwrap();
        std::fs::rename(&pod_dir, pods.join(pod_dir.file_name().unwrap())).unwrap();
    }
    // Every line was read and taken by the window before Weft is stopped.
    let read_all = eventually(Duration::from_secs(60), || {
        let m = metrics(maddr);
        let read: f64 = ["filelog/zap", "filelog/zerolog"]
            .iter()
            .filter_map(|r| {
                metric_value(&m, &format!("otelcol_receiver_accepted_log_records_total{{receiver=\"{r}\",transport=\"file\"}}"))
            })
            .sum();
        (read as usize >= total_lines).then_some(read)
    });
    assert!(
        read_all.is_some(),
        "not every line was read ({total_lines} expected)\n{}",
        metrics(maddr)
    );
    let last_kept = kept.last().unwrap()["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let in_jaeger = eventually(Duration::from_secs(60), || {
        rt.block_on(jaeger_has(&s, &last_kept)).then_some(())
    });
    assert!(
        in_jaeger.is_some(),
        "kept trace {last_kept} never reached Jaeger\n{}",
        weft.log()
    );
    let m = metrics(maddr);
    assert_eq!(
        metric_value(&m, "weft_receiver_operator_errors_total{receiver=\"filelog/zap\",operator=\"json_parser\"}").unwrap_or(0.0),
        0.0,
        "every zap line parsed (split lines joined first)\n{m}"
    );
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");

    rt.block_on(async {
        let index = format!("{prefix}-*");
        s.refresh(&index).await;
        let all = s.search_lucene(&index, "*").await;
        let expected_docs = kept
            .iter()
            .map(|t| t["logs"].as_array().unwrap().len())
            .sum::<usize>()
            + orphans.len();
        assert_eq!(
            all.len(),
            expected_docs,
            "kept traces' lines and orphan lines, each once"
        );
        for t in &traces {
            let id = t["trace_id"].as_str().unwrap();
            let category = t["category"].as_str().unwrap();
            let docs = s.search_lucene(&index, &format!("trace_id:\"{id}\"")).await;
            let mut messages: Vec<String> = docs
                .iter()
                .map(|d| d["message"].as_str().unwrap_or_default().to_string())
                .collect();
            messages.sort();
            if matches!(category, "error" | "slow") {
                let mut expected: Vec<String> = t["logs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                expected.sort();
                assert_eq!(
                    messages, expected,
                    "kept {category} trace {id}: exactly its file lines"
                );
                let policy = if category == "error" {
                    "errors"
                } else {
                    "slow"
                };
                for d in &docs {
                    assert_eq!(d["weft.sampled"], json!(true), "{d}");
                    assert_eq!(d["weft.policy"], json!(policy), "{d}");
                    assert_eq!(d["weft.root_operation"], json!("GET /checkout"), "{d}");
                    assert_eq!(d["resource.k8s.namespace.name"], json!("shop"), "{d}");
                    assert!(
                        d["@timestamp"]
                            .as_str()
                            .is_some_and(|t| !t.starts_with("1970")),
                        "{d}"
                    );
                }
            } else {
                assert!(
                    docs.is_empty(),
                    "dropped trace {id}: none of its lines, found {docs:?}"
                );
            }
        }
        for body in &orphans {
            let docs = s
                .search_lucene(&index, &format!("message:\"{body}\""))
                .await;
            let exact = docs.iter().filter(|d| d["message"] == json!(body)).count();
            assert_eq!(exact, 1, "line outside any trace {body:?} is indexed once");
        }
    });
}

/// Appends `lines` numbered lines from `from`, in bursts, to `path`.
fn write_lines(path: &Path, from: usize, lines: usize, burst: usize, pause: Duration) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut i = from;
    while i < from + lines {
        let mut chunk = String::new();
        for n in i..(i + burst).min(from + lines) {
            chunk.push_str(&format!("{{\"level\":\"info\",\"msg\":\"line-{n:06}\"}}\n"));
        }
        f.write_all(chunk.as_bytes()).unwrap();
        i += burst;
        std::thread::sleep(pause);
    }
}

#[test]
fn kill_9_mid_file_and_restart_loses_no_line() {
    let sink_grpc = free_port();
    let sink_metrics = free_port();
    let sink_out = tempfile::tempdir().unwrap();
    let _sink = Weft::start(
        &file_sink_config(sink_grpc, sink_metrics, sink_out.path()),
        &[loopback(sink_grpc)],
    )
    .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = logs.path().join("app.log");
    let metrics_port = free_port();
    let config = format!(
        r#"
extensions:
  file_storage:
    directory: {state}
receivers:
  filelog:
    include: [{logs}/*.log]
    start_at: beginning
    poll_interval: 50ms
    storage: file_storage
    operators:
      - {{type: json_parser}}
      - {{type: move, from: attributes.msg, to: body}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_grpc}
    tls: {{insecure: true}}
    sending_queue: {{enabled: false}}
service:
  extensions: [file_storage]
  pipelines:
    logs: {{receivers: [filelog], exporters: [otlp]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
"#,
        state = state.path().display(),
        logs = logs.path().display(),
    );
    const TOTAL: usize = 30_000;
    let weft = Weft::start(&config, &[loopback(metrics_port)]).unwrap();
    let writer = {
        let file = file.clone();
        std::thread::spawn(move || write_lines(&file, 0, TOTAL, 500, Duration::from_millis(40)))
    };
    let received = |out: &Path| -> Vec<String> {
        file_sink_received(out)
            .1
            .into_iter()
            .map(|l| l.split('|').nth(1).unwrap_or_default().to_string())
            .collect()
    };
    // Cheap progress checks (decoding the sink's whole file every poll would eat the CPU the
    // processes under test need): every delivered line is one `"line-` in the file.
    let delivered = |out: &Path| -> usize {
        let text = std::fs::read(out.join("logs.jsonl")).unwrap_or_default();
        text.windows(6).filter(|w| w == b"\"line-").count()
    };
    let midway = eventually(Duration::from_secs(60), || {
        let n = delivered(sink_out.path());
        (n >= 3000).then_some(n)
    });
    assert!(
        midway.is_some(),
        "the sink never got 3000 lines\n{}",
        weft.log()
    );
    // kill -9 while the file is still being written and read.
    let status = Command::new("kill")
        .args(["-KILL", &weft.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    drop(weft);
    let before_restart = received(sink_out.path()).len();
    assert!(before_restart < TOTAL, "killed mid-file");
    let weft = Weft::start_in(
        tempfile::tempdir().unwrap(),
        &config,
        &[loopback(metrics_port)],
    )
    .unwrap();
    writer.join().unwrap();
    let all = eventually(Duration::from_secs(120), || {
        if delivered(sink_out.path()) < TOTAL {
            return None;
        }
        let got = received(sink_out.path());
        let distinct: BTreeSet<&String> = got.iter().collect();
        (distinct.len() >= TOTAL).then(|| got.clone())
    });
    let got = all.unwrap_or_else(|| {
        let got = received(sink_out.path());
        let distinct: BTreeSet<&String> = got.iter().collect();
        panic!(
            "{} of {TOTAL} distinct lines after the restart\n{}",
            distinct.len(),
            weft.log()
        )
    });
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for l in &got {
        *counts.entry(l).or_default() += 1;
    }
    let expected: BTreeSet<String> = (0..TOTAL).map(|n| format!("line-{n:06}")).collect();
    assert_eq!(
        counts
            .keys()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        expected,
        "every line, none invented"
    );
    let repeated = got.len() - TOTAL;
    // At-least-once: only what was read but not yet committed at the kill is read again:
    // at most the batches in flight (1024 records each).
    assert!(repeated <= 2048, "{repeated} lines read twice");
    eprintln!("kill -9 at {before_restart} delivered lines; {repeated} lines delivered twice after the restart");
}

#[test]
fn hostile_files_are_skipped_or_cut_while_the_others_are_served() {
    let sink_grpc = free_port();
    let sink_metrics = free_port();
    let sink_out = tempfile::tempdir().unwrap();
    let _sink = Weft::start(
        &file_sink_config(sink_grpc, sink_metrics, sink_out.path()),
        &[loopback(sink_grpc)],
    )
    .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let d = logs.path();
    // A 100 MB line between two normal ones.
    {
        let mut f = std::fs::File::create(d.join("huge.log")).unwrap();
        f.write_all(b"before the huge line\n").unwrap();
        let block = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&block).unwrap();
        }
        f.write_all(b"\nafter the huge line\n").unwrap();
    }
    std::fs::write(d.join("latin1.log"), b"caf\xe9 au lait\n").unwrap();
    std::fs::write(
        d.join("binary.log"),
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\n",
    )
    .unwrap();
    std::fs::create_dir(d.join("folder.log")).unwrap();
    std::os::unix::fs::symlink(d.join("b.log"), d.join("a.log")).unwrap();
    std::os::unix::fs::symlink(d.join("a.log"), d.join("b.log")).unwrap();
    std::fs::write(
        d.join("shrinking.log"),
        "first version, long enough to be cut\n",
    )
    .unwrap();
    std::fs::write(d.join("normal.log"), "normal one\n").unwrap();
    let metrics_port = free_port();
    let config = format!(
        r#"
receivers:
  filelog:
    include: [{logs}/*.log]
    start_at: beginning
    poll_interval: 50ms
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_grpc}
    tls: {{insecure: true}}
service:
  pipelines:
    logs: {{receivers: [filelog], exporters: [otlp]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
"#,
        logs = d.display(),
    );
    let weft = Weft::start(&config, &[loopback(metrics_port)]).unwrap();
    let maddr = loopback(metrics_port);
    let bodies = |out: &Path| -> Vec<String> {
        file_sink_received(out)
            .1
            .into_iter()
            .map(|l| l.split_once('|').unwrap().1.to_string())
            .collect()
    };
    // The sink's file is decoded only once it holds what is awaited (decoding it at every
    // poll would take the CPU the process under test needs).
    let holds = |needles: &[&str]| {
        let text = std::fs::read_to_string(sink_out.path().join("logs.jsonl")).unwrap_or_default();
        needles.iter().all(|n| text.contains(n))
    };
    // shrinking.log's first version too: a file rewritten before it was read at all is a
    // new file, not a truncated one.
    let shrinking = "first version, long enough to be cut";
    let first = eventually(Duration::from_secs(60), || {
        if !holds(&["after the huge line", "normal one", shrinking]) {
            return None;
        }
        let b = bodies(sink_out.path());
        (b.iter().any(|l| l == "after the huge line")
            && b.iter().any(|l| l == "normal one")
            && b.iter().any(|l| l == shrinking))
        .then_some(b)
    });
    assert!(
        first.is_some(),
        "{:?}\n{}",
        bodies(sink_out.path()),
        weft.log()
    );
    // Truncated while being read, then written anew: read again from its start.
    std::fs::write(d.join("shrinking.log"), "second\n").unwrap();
    std::fs::write(d.join("normal.log"), "normal one\nnormal two\n").unwrap();
    let done = eventually(Duration::from_secs(30), || {
        if !holds(&["\"second\"", "normal two"]) {
            return None;
        }
        let b = bodies(sink_out.path());
        (b.iter().any(|l| l == "second") && b.iter().any(|l| l == "normal two")).then_some(b)
    });
    let b = done.unwrap_or_else(|| panic!("{:?}\n{}", bodies(sink_out.path()), weft.log()));
    let huge: Vec<&String> = b.iter().filter(|l| l.starts_with("xxx")).collect();
    assert_eq!(huge.len(), 1, "the 100 MB line is one record, cut");
    assert_eq!(huge[0].len(), 1 << 20, "cut at max_log_size (1 MiB)");
    assert!(b.contains(&"caf\u{fffd} au lait".to_string()), "{b:?}");
    assert!(
        !b.iter().any(|l| l.contains("ELF")),
        "the binary file is not read"
    );
    let m = metrics(maddr);
    let value = |series: &str| metric_value(&m, series).unwrap_or(0.0);
    assert_eq!(
        value("weft_receiver_filelog_records_truncated_total{receiver=\"filelog\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        value("weft_receiver_filelog_invalid_utf8_records_total{receiver=\"filelog\"}"),
        1.0
    );
    assert_eq!(
        value("weft_receiver_filelog_files_truncated_total{receiver=\"filelog\"}"),
        1.0
    );
    for (reason, n) in [("binary", 1.0), ("directory", 1.0), ("symlink_loop", 2.0)] {
        assert_eq!(
            value(&format!("weft_receiver_filelog_files_skipped_total{{receiver=\"filelog\",reason=\"{reason}\"}}")),
            n,
            "{reason}\n{m}"
        );
    }
    let rss = weft.peak_rss_bytes().unwrap();
    assert!(
        rss < 200 << 20,
        "peak RSS {} MiB while reading a 100 MB line",
        rss >> 20
    );
    let log = weft.log();
    for expected in [
        "it looks like a binary file",
        "a directory matched the include glob",
        "a loop of symbolic links",
        "not valid UTF-8",
        "truncated in place",
    ] {
        assert!(
            log.contains(expected),
            "no log line with {expected:?}\n{log}"
        );
    }
}
