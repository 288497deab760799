//! Jaeger and OpenSearch both go away for 30 s mid-stream and come back on the same data:
//! every kept span and log still ends up in its backend, exactly once.
//!
//! The backends are private instances of the project's own Jaeger v2 (with its on-disk
//! store, so a restart keeps what it had) and OpenSearch, started, stopped and restarted by
//! `scripts/services.sh`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value as Json};
use weft_integration_tests::{
    eventually, free_port, run_python_client, unique_name, workspace_root, Weft,
};

/// Runs `scripts/services.sh <args>` and returns its KEY=VALUE lines.
fn services(args: &[&str]) -> HashMap<String, String> {
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/services.sh"))
        .args(args)
        .output()
        .expect("services.sh runs");
    assert!(
        out.status.success(),
        "services.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Stops the private backends when the test ends, pass or fail.
struct Backends<'a>(&'a Path);

impl Drop for Backends<'_> {
    fn drop(&mut self) {
        let dir = self.0.to_str().unwrap_or_default();
        for kind in ["stop-jaeger", "stop-opensearch"] {
            let _ = Command::new("bash")
                .arg(workspace_root().join("scripts/services.sh"))
                .args([kind, dir, "--kill"])
                .output();
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Span ids as Jaeger returns them, with repeats (a duplicate would show twice).
async fn jaeger_span_ids(query: &str, trace_id: &str) -> Vec<String> {
    let Ok(resp) = client()
        .get(format!("{query}/api/traces/{trace_id}"))
        .send()
        .await
    else {
        return Vec::new();
    };
    if !resp.status().is_success() {
        return Vec::new();
    }
    let body: Json = resp.json().await.unwrap_or_default();
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["spans"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["spanID"].as_str().map(str::to_string))
        .collect()
}

async fn log_bodies(opensearch: &str, index: &str, trace_id: &str) -> Vec<String> {
    let _ = client()
        .post(format!("{opensearch}/{index}/_refresh"))
        .send()
        .await;
    let query = json!({"query": {"query_string": {"query": format!("trace_id:\"{trace_id}\"")}}, "size": 1000});
    let Ok(resp) = client()
        .post(format!("{opensearch}/{index}/_search"))
        .json(&query)
        .send()
        .await
    else {
        return Vec::new();
    };
    let body: Json = resp.json().await.unwrap_or_default();
    let mut bodies: Vec<String> = body["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["_source"]["message"].as_str().map(str::to_string))
        .collect();
    bodies.sort();
    bodies
}

fn send(grpc: u16, dir: &Path, name: &str, seed: &str, weft: &Weft) -> Json {
    let manifest = dir.join(format!("{name}.json"));
    let endpoint = format!("http://127.0.0.1:{grpc}");
    run_python_client(
        "emit_traffic.py",
        &[
            "--endpoint",
            &endpoint,
            "--traces",
            "60",
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
    serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap()
}

#[test]
fn kept_data_survives_a_30s_outage_of_both_backends_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let backends_dir = dir.path().join("backends");
    std::fs::create_dir_all(&backends_dir).unwrap();
    let b = backends_dir.to_str().unwrap();
    let _guard = Backends(&backends_dir);
    let os = services(&["start-opensearch", b, "--fresh"]);
    let jg = services(&["start-jaeger", b, "--persistent", "--fresh"]);
    let opensearch = os["OPENSEARCH_URL"].clone();
    let jaeger_query = jg["JAEGER_QUERY_URL"].clone();
    let prefix = unique_name("outage");
    let index = format!("{prefix}-*");

    let grpc = free_port();
    let metrics = free_port();
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
    policies:
      - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
      - {{name: slow, type: latency, latency: {{threshold_ms: 1000}}}}
exporters:
  otlp/jaeger:
    endpoint: {jaeger}
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 500ms, max_interval: 2s, max_elapsed_time: 0s}}
  elasticsearch:
    endpoints: [{opensearch}]
    logs_index: {prefix}-%{{+yyyy.MM.dd}}
    flush: {{interval: 200ms}}
    retry_on_failure: {{initial_interval: 500ms, max_interval: 2s, max_elapsed_time: 0s}}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [otlp/jaeger]}}
    logs: {{receivers: [otlp], processors: [tail_sampling], exporters: [elasticsearch]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        jaeger = jg["JAEGER_OTLP_GRPC"],
    );
    let weft = Weft::start(&config, &[SocketAddr::from(([127, 0, 0, 1], grpc))]).unwrap();

    let mut manifests = vec![send(grpc, dir.path(), "before", "1", &weft)];
    // Both backends go away (a clean stop: their data stays) while traffic goes on.
    services(&["stop-jaeger", b]);
    services(&["stop-opensearch", b]);
    manifests.push(send(grpc, dir.path(), "during", "2", &weft));
    std::thread::sleep(Duration::from_secs(30));
    let os2 = services(&["start-opensearch", b]);
    let jg2 = services(&["start-jaeger", b, "--persistent"]);
    assert_eq!(
        os2["OPENSEARCH_URL"], opensearch,
        "restarted on the same address"
    );
    assert_eq!(jg2["JAEGER_OTLP_GRPC"], jg["JAEGER_OTLP_GRPC"]);
    manifests.push(send(grpc, dir.path(), "after", "3", &weft));

    let kept: Vec<(String, Vec<String>, Vec<String>)> = manifests
        .iter()
        .flat_map(|m| m["traces"].as_array().cloned().unwrap_or_default())
        .filter(|t| matches!(t["category"].as_str(), Some("error" | "slow")))
        .map(|t| {
            let spans = t["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            let mut logs: Vec<String> = t["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            logs.sort();
            (t["trace_id"].as_str().unwrap().to_string(), spans, logs)
        })
        .collect();
    assert_eq!(kept.len(), 3 * 12);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let all_there = eventually(Duration::from_secs(120), || {
        rt.block_on(async {
            for (id, spans, logs) in &kept {
                let mut got = jaeger_span_ids(&jaeger_query, id).await;
                got.sort();
                let mut want = spans.clone();
                want.sort();
                if got != want || &log_bodies(&opensearch, &index, id).await != logs {
                    return None;
                }
            }
            Some(())
        })
    });
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");
    if all_there.is_none() {
        rt.block_on(async {
            for (id, spans, logs) in &kept {
                let got = jaeger_span_ids(&jaeger_query, id).await;
                let bodies = log_bodies(&opensearch, &index, id).await;
                assert_eq!(
                    got.len(),
                    spans.len(),
                    "trace {id}: spans in Jaeger {got:?}, want {spans:?}\n{log}"
                );
                assert_eq!(&bodies, logs, "trace {id}: logs in OpenSearch\n{log}");
            }
        });
        panic!("not every kept item arrived\n{log}");
    }
}
