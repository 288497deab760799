//! Tail sampling with logs, end to end: the official Python SDK sends traces with logs inside
//! their spans to a real `weft` whose one `tail_sampling` id sits in both the traces and the
//! logs pipeline; the file exporters show exactly what was kept.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value as Json;
use weft_integration_tests::{eventually, free_port, run_python_client, Weft};
use weft_proto::common::v1::any_value;

fn config(grpc: u16, metrics: u16, dir: &Path, policies: &str) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  tail_sampling:
    decision_wait: 2s
    num_traces: 10000
    policies:
{policies}
exporters:
  file/traces:
    path: {dir}/traces.jsonl
    flush_interval: 100ms
  file/logs:
    path: {dir}/logs.jsonl
    flush_interval: 100ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [file/traces]
    logs:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [file/logs]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        dir = dir.display()
    )
}

/// (trace id hex, span id hex) of every exported span, with repeats.
fn exported_spans(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read(dir.join("traces.jsonl")).unwrap_or_default();
    let mut out = Vec::new();
    for line in weft_integration_tests::written_lines(&text) {
        let req = weft_proto::otlp_json::decode_traces(line).expect("OTLP/JSON line");
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push((hex::encode(&s.trace_id), hex::encode(&s.span_id)));
                }
            }
        }
    }
    out
}

struct ExportedLog {
    trace_id: String,
    body: String,
    attributes: HashMap<String, any_value::Value>,
}

fn exported_logs(dir: &Path) -> Vec<ExportedLog> {
    let text = std::fs::read(dir.join("logs.jsonl")).unwrap_or_default();
    let mut out = Vec::new();
    for line in weft_integration_tests::written_lines(&text) {
        let req = weft_proto::otlp_json::decode_logs(line).expect("OTLP/JSON line");
        for rl in req.resource_logs {
            for sl in rl.scope_logs {
                for r in sl.log_records {
                    let body = match r.body.and_then(|b| b.value) {
                        Some(any_value::Value::StringValue(s)) => s,
                        other => format!("{other:?}"),
                    };
                    let attributes = r
                        .attributes
                        .into_iter()
                        .filter_map(|kv| Some((kv.key, kv.value?.value?)))
                        .collect();
                    out.push(ExportedLog {
                        trace_id: hex::encode(&r.trace_id),
                        body,
                        attributes,
                    });
                }
            }
        }
    }
    out
}

struct Run {
    manifest: Json,
    dir: tempfile::TempDir,
}

/// Starts weft with `policies`, sends the workload, waits until `expect_kept` traces' spans
/// are out, then stops weft (which decides whatever is still pending).
fn run(policies: &str, client_args: &[&str], expect_kept_spans: usize) -> Run {
    let grpc = free_port();
    let metrics = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_path_buf();
    let weft = Weft::start(
        &config(grpc, metrics, &out, policies),
        &[SocketAddr::from(([127, 0, 0, 1], grpc))],
    )
    .unwrap();
    let manifest_path = out.join("manifest.json");
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let mut args = vec![
        "--endpoint",
        &endpoint,
        "--out",
        manifest_path.to_str().unwrap(),
    ];
    args.extend_from_slice(client_args);
    let client = run_python_client("emit_traffic.py", &args)
        .unwrap_or_else(|e| panic!("{e}\n{}", weft.log()));
    assert!(!client.contains("Failed to export"), "{client}");
    // Decisions come from the decision tick (decision_wait: 2s), not from shutdown.
    let reached = eventually(Duration::from_secs(60), || {
        (exported_spans(&out).len() >= expect_kept_spans).then_some(())
    });
    assert!(
        reached.is_some(),
        "kept spans did not arrive in time\n{}",
        weft.log()
    );
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");
    let manifest = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    Run { manifest, dir }
}

fn check_exact(run: &Run, kept_categories: &[&str]) {
    let dir = run.dir.path();
    let traces = run.manifest["traces"].as_array().unwrap();
    let spans = exported_spans(dir);
    let logs = exported_logs(dir);

    let unique: HashSet<&(String, String)> = spans.iter().collect();
    assert_eq!(unique.len(), spans.len(), "no span is exported twice");
    let mut kept = 0;
    for t in traces {
        let id = t["trace_id"].as_str().unwrap();
        let category = t["category"].as_str().unwrap();
        let expected_spans: HashSet<(String, String)> = t["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (id.to_string(), s.as_str().unwrap().to_string()))
            .collect();
        let got_spans: HashSet<(String, String)> =
            spans.iter().filter(|(tid, _)| tid == id).cloned().collect();
        let mut expected_logs: Vec<&str> = t["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let mut got_logs: Vec<&ExportedLog> = logs.iter().filter(|l| l.trace_id == id).collect();
        if kept_categories.contains(&category) {
            kept += 1;
            assert_eq!(
                got_spans, expected_spans,
                "kept {category} trace {id}: every span, once"
            );
            expected_logs.sort_unstable();
            let mut bodies: Vec<&str> = got_logs.iter().map(|l| l.body.as_str()).collect();
            bodies.sort_unstable();
            assert_eq!(
                bodies, expected_logs,
                "kept {category} trace {id}: every log, once"
            );
            got_logs.sort_by(|a, b| a.body.cmp(&b.body));
            for l in &got_logs {
                assert_eq!(
                    l.attributes.get("weft.sampled"),
                    Some(&any_value::Value::BoolValue(true)),
                    "{id}"
                );
                assert!(
                    matches!(
                        l.attributes.get("weft.policy"),
                        Some(any_value::Value::StringValue(_))
                    ),
                    "{id}"
                );
                assert_eq!(
                    l.attributes.get("weft.root_service"),
                    Some(&any_value::Value::StringValue("frontend".into()))
                );
                assert_eq!(
                    l.attributes.get("weft.root_operation"),
                    Some(&any_value::Value::StringValue("GET /checkout".into()))
                );
            }
        } else {
            assert!(
                got_spans.is_empty(),
                "dropped {category} trace {id}: no span may arrive"
            );
            assert!(
                got_logs.is_empty(),
                "dropped {category} trace {id}: no log may arrive"
            );
        }
    }
    assert!(kept > 0);
    let orphans: Vec<&str> = run.manifest["orphan_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for body in &orphans {
        let n = logs
            .iter()
            .filter(|l| l.trace_id.is_empty() && l.body == *body)
            .count();
        assert_eq!(n, 1, "log without a trace {body:?} passes exactly once");
    }
    let expected_logs: usize = traces
        .iter()
        .filter(|t| kept_categories.contains(&t["category"].as_str().unwrap()))
        .map(|t| t["logs"].as_array().unwrap().len())
        .sum::<usize>()
        + orphans.len();
    assert_eq!(logs.len(), expected_logs, "no other log arrives");
}

#[test]
fn exactly_the_error_and_slow_traces_arrive_with_every_span_and_log() {
    let policies = "      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n      - {name: slow, type: latency, latency: {threshold_ms: 1000}}";
    // 600 traces: 48 with an error span, 42 slow; 3 spans each.
    let run = run(
        policies,
        &[
            "--traces",
            "600",
            "--error-share",
            "0.08",
            "--slow-share",
            "0.07",
        ],
        90 * 3,
    );
    let counts =
        run.manifest["traces"]
            .as_array()
            .unwrap()
            .iter()
            .fold(HashMap::new(), |mut m, t| {
                *m.entry(t["category"].as_str().unwrap().to_string())
                    .or_insert(0) += 1;
                m
            });
    assert_eq!(counts.get("error"), Some(&48));
    assert_eq!(counts.get("slow"), Some(&42));
    check_exact(&run, &["error", "slow"]);
}

#[test]
fn an_error_log_alone_keeps_a_trace_whose_spans_are_all_ok() {
    let policies =
        "      - {name: error-logs, type: log_severity, log_severity: {min_severity: ERROR}}";
    let run = run(
        policies,
        &[
            "--traces",
            "60",
            "--error-share",
            "0",
            "--slow-share",
            "0",
            "--log-error-share",
            "0.1",
        ],
        6 * 3,
    );
    check_exact(&run, &["log_error"]);
    let logs = exported_logs(run.dir.path());
    assert!(logs
        .iter()
        .filter(|l| !l.trace_id.is_empty())
        .all(|l| l.attributes.get("weft.policy")
            == Some(&any_value::Value::StringValue("error-logs".into()))));
}
