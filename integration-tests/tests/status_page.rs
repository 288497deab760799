//! The status page (`weft_status`), end to end: the real `weft` binary on the demo's
//! configuration, the demo shop's traffic through the official Python SDK, real Jaeger and
//! OpenSearch behind it, and the page driven in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `scripts/browser-env.sh`, through `selenium`). Then bad
//! input: page loads by the hundred during a traffic run change no decision and lose no
//! data, and a 5 MB attribute value is cut in the view (not in the data).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use weft_integration_tests::{
    eventually, free_port, loopback, python, run_python_client, services, workspace_root, Weft,
};

/// Chromium and chromedriver, installed (once) by the project's script.
fn browser() -> (String, String) {
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/browser-env.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/browser-env.sh runs");
    assert!(out.status.success(), "scripts/browser-env.sh failed");
    let text = String::from_utf8(out.stdout).expect("paths");
    let mut lines = text.lines();
    let chromium = lines.next().expect("chromium path").to_string();
    let driver = lines.next().expect("chromedriver path").to_string();
    (chromium, driver)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// GET `url` on a runtime of its own: (status, JSON body).
fn get_json(url: &str) -> Option<(u16, Json)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let r = client().get(url).send().await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.unwrap_or(Json::Null)))
    })
}

/// Waits until the page knows the decision on each of `ids`.
fn wait_for_decisions(base: &str, ids: &[&str], weft: &Weft) {
    for id in ids {
        eventually(Duration::from_secs(90), || {
            get_json(&format!("{base}/api/traces/{id}")).filter(|(s, _)| *s == 200)
        })
        .unwrap_or_else(|| panic!("trace {id} was never decided\n{}", weft.log()));
    }
}

/// Screenshots go here (kept after the run; one is the README's).
fn screenshots() -> PathBuf {
    workspace_root().join("target").join("status-page")
}

#[test]
fn the_status_page_in_a_real_browser() {
    let s = services();
    let (chromium, driver) = browser();
    let [grpc, http, health, metrics, status] = [(); 5].map(|_| free_port());
    let config = std::fs::read_to_string(workspace_root().join("config/demo.yaml")).unwrap();
    let env = [
        ("WEFT_OTLP_GRPC_ENDPOINT", format!("127.0.0.1:{grpc}")),
        ("WEFT_OTLP_HTTP_ENDPOINT", format!("127.0.0.1:{http}")),
        ("WEFT_HEALTH_ENDPOINT", format!("127.0.0.1:{health}")),
        ("WEFT_METRICS_ENDPOINT", format!("127.0.0.1:{metrics}")),
        ("WEFT_STATUS_ENDPOINT", format!("127.0.0.1:{status}")),
        ("JAEGER_OTLP_GRPC", s.jaeger_otlp_grpc.clone()),
        ("JAEGER_QUERY_URL", s.jaeger_query_url.clone()),
        ("OPENSEARCH_URL", s.opensearch_url.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let weft = Weft::start_in_with_env(
        tempfile::tempdir().unwrap(),
        &config,
        &[loopback(grpc), loopback(status)],
        &env,
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{status}");
    let endpoint = format!("http://127.0.0.1:{grpc}");

    // The demo shop's traffic, as `make run` sends it.
    let summary_path = weft.dir.path().join("summary.json");
    let shop = Command::new(python())
        .arg(workspace_root().join("examples/demo/shop.py"))
        .args([
            "--endpoint",
            &endpoint,
            "--requests",
            "120",
            "--rate",
            "200",
        ])
        .arg("--summary")
        .arg(&summary_path)
        .output()
        .expect("the demo shop runs");
    assert!(
        shop.status.success(),
        "{}",
        String::from_utf8_lossy(&shop.stderr)
    );
    let summary: Json =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let kept = summary["error"][0]
        .as_str()
        .expect("an error trace")
        .to_string();
    let dropped = summary["ok"][0].as_str().expect("an ok trace").to_string();

    // A trace whose span name and log body are markup.
    let xss_name = "<img src=x onerror=alert(1)>";
    let sent = run_python_client(
        "emit_spans_and_logs.py",
        &[
            "--endpoint",
            &endpoint,
            "trace",
            "--error",
            "--child-name",
            xss_name,
            "--log-severity",
            "ERROR",
            "--log-body",
            "<script>alert(2)</script>",
        ],
    )
    .unwrap();
    let xss: Json = serde_json::from_str(sent.lines().next().unwrap()).unwrap();
    let xss = xss["trace_id"].as_str().unwrap().to_string();
    wait_for_decisions(&base, &[&kept, &dropped, &xss], &weft);

    let out = screenshots();
    let unknown = "0123456789abcdef0123456789abcdef";
    let checked = run_python_client(
        "status_page_browser.py",
        &[
            "--base",
            &base,
            "--chromium",
            &chromium,
            "--driver",
            &driver,
            "--kept",
            &kept,
            "--dropped",
            &dropped,
            "--xss",
            &xss,
            "--xss-name",
            xss_name,
            "--unknown",
            unknown,
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\n--- weft log ---\n{}", weft.log()));
    let result: Json = serde_json::from_str(checked.lines().next().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {checked}"));
    assert!(result["spans_in"].as_f64().unwrap() >= 480.0, "{result}");
    assert!(
        result["kept_span_names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "Charge"),
        "{result}"
    );
    for name in [
        "pipelines",
        "window",
        "decisions",
        "trace-kept",
        "trace-dropped",
        "trace-markup",
        "trace-unknown",
    ] {
        let path = out.join(format!("{name}.png"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "screenshot {} ({size} bytes)",
            path.display()
        );
    }
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");
}

/// (trace id, span id) of every span the file exporter wrote, and the value of each span's
/// `payload` attribute's length when it has one.
fn exported(dir: &Path) -> (Vec<(String, String)>, Vec<usize>) {
    let text = std::fs::read(dir.join("traces.jsonl")).unwrap_or_default();
    let mut spans = Vec::new();
    let mut payloads = Vec::new();
    for line in weft_integration_tests::written_lines(&text) {
        let req = weft_proto::otlp_json::decode_traces(line).expect("OTLP/JSON line");
        for s in req
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
        {
            for kv in &s.attributes {
                if kv.key == "payload" {
                    if let Some(weft_proto::common::v1::any_value::Value::StringValue(v)) =
                        kv.value.as_ref().and_then(|v| v.value.as_ref())
                    {
                        payloads.push(v.len());
                    }
                }
            }
            spans.push((hex::encode(&s.trace_id), hex::encode(&s.span_id)));
        }
    }
    (spans, payloads)
}

#[test]
fn page_loads_by_the_hundred_during_traffic_change_no_decision_and_lose_nothing() {
    let grpc = free_port();
    let metrics = free_port();
    let status = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_path_buf();
    let config = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        max_recv_msg_size_mib: 16
    limits:
      max_attribute_value_bytes: 8MiB
processors:
  tail_sampling:
    decision_wait: 2s
    policies:
      - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
      - {{name: slow, type: latency, latency: {{threshold_ms: 1000}}}}
exporters:
  file/traces:
    path: {out}/traces.jsonl
    flush_interval: 100ms
  file/logs:
    path: {out}/logs.jsonl
    flush_interval: 100ms
extensions:
  weft_status:
    endpoint: 127.0.0.1:{status}
    max_value_bytes: 4KiB
    decisions: {{size: 5000, keep_dropped_detail: true}}
service:
  extensions: [weft_status]
  pipelines:
    traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [file/traces]}}
    logs: {{receivers: [otlp], processors: [tail_sampling], exporters: [file/logs]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        out = out.display()
    );
    let weft = Weft::start(&config, &[loopback(grpc), loopback(status)]).unwrap();
    let base = format!("http://127.0.0.1:{status}");

    // A hundred readers load every view, over and over, until the traffic is decided.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Failures::default());
    let readers = {
        let (stop, rounds, failures, base) =
            (stop.clone(), rounds.clone(), failures.clone(), base.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let tasks: Vec<_> = (0..100)
                    .map(|_| {
                        let (stop, rounds, failures, base) =
                            (stop.clone(), rounds.clone(), failures.clone(), base.clone());
                        tokio::spawn(async move {
                            let c = client();
                            loop {
                                load_every_view(&c, &base, &failures).await;
                                rounds.fetch_add(1, Ordering::Relaxed);
                                if stop.load(Ordering::Relaxed) {
                                    break;
                                }
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
    };

    let manifest_path = out.join("manifest.json");
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let sent = run_python_client(
        "emit_traffic.py",
        &[
            "--endpoint",
            &endpoint,
            "--traces",
            "800",
            "--out",
            manifest_path.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", weft.log()));
    assert!(!sent.contains("Failed to export"), "{sent}");
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let traces = manifest["traces"].as_array().unwrap();
    let kept: Vec<&Json> = traces
        .iter()
        .filter(|t| matches!(t["category"].as_str(), Some("error" | "slow")))
        .collect();
    let expected: HashSet<(String, String)> = kept
        .iter()
        .flat_map(|t| {
            let id = t["trace_id"].as_str().unwrap().to_string();
            t["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |s| (id.clone(), s.as_str().unwrap().to_string()))
        })
        .collect();
    // Every trace decided, as the page says: each of them in the ring.
    let decided = eventually(Duration::from_secs(90), || {
        let (_, d) = get_json(&format!("{base}/api/decisions?limit=1"))?;
        (d["matching"].as_u64()? >= traces.len() as u64).then_some(d)
    });
    assert!(
        decided.is_some(),
        "not every trace was decided\n{}",
        weft.log()
    );
    let arrived = eventually(Duration::from_secs(60), || {
        let (spans, _) = exported(&out);
        (spans.len() >= expected.len()).then_some(spans)
    })
    .unwrap_or_else(|| panic!("kept spans did not all arrive\n{}", weft.log()));
    stop.store(true, Ordering::Relaxed);
    readers.join().expect("the readers finish");
    assert!(
        rounds.load(Ordering::Relaxed) >= 100,
        "each reader loaded every view at least once"
    );
    assert_eq!(
        failures.list(),
        Vec::<String>::new(),
        "every page load was answered"
    );

    // The sampler decided as without readers: exactly the error and slow traces, each span
    // once, nothing of the others.
    let got: HashSet<(String, String)> = arrived.iter().cloned().collect();
    assert_eq!(got.len(), arrived.len(), "no span exported twice");
    assert_eq!(got, expected, "exactly the spans of the kept traces");
    let (_, kept_list) = get_json(&format!("{base}/api/decisions?verdict=kept&limit=1")).unwrap();
    assert_eq!(kept_list["matching"].as_u64(), Some(kept.len() as u64));

    // A 5 MB attribute value: cut in the view, whole in the data.
    let sent = run_python_client(
        "emit_spans_and_logs.py",
        &[
            "--endpoint",
            &endpoint,
            "trace",
            "--error",
            "--attribute-bytes",
            "5242880",
        ],
    )
    .unwrap();
    let big: Json = serde_json::from_str(sent.lines().next().unwrap()).unwrap();
    let big = big["trace_id"].as_str().unwrap().to_string();
    let view = eventually(Duration::from_secs(60), || {
        get_json(&format!("{base}/api/traces/{big}")).filter(|(s, _)| *s == 200)
    })
    .unwrap_or_else(|| {
        panic!(
            "the trace with a 5 MB attribute was not decided\n{}",
            weft.log()
        )
    })
    .1;
    let child = view["detail"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Charge")
        .expect("the child span");
    let payload = child["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "payload")
        .expect("the payload attribute");
    assert_eq!(payload["value"]["cut_from_bytes"], 5_242_880);
    assert!(payload["value"]["text"].as_str().unwrap().len() <= 4096 + 3);
    let whole = eventually(Duration::from_secs(60), || {
        let (_, payloads) = exported(&out);
        payloads.first().copied()
    });
    assert_eq!(
        whole,
        Some(5_242_880),
        "the exported span keeps the whole value"
    );

    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");
}

/// One reader's round: the app, every JSON view, and the trace view of a few decisions.
async fn load_every_view(c: &reqwest::Client, base: &str, failures: &Failures) {
    let mut ids = Vec::new();
    for path in [
        "/",
        "/static/app.js",
        "/api/pipelines",
        "/api/window",
        "/api/decisions?limit=20",
    ] {
        match c.get(format!("{base}{path}")).send().await {
            Ok(r) if r.status().is_success() => {
                if path.starts_with("/api/decisions") {
                    if let Ok(body) = r.json::<Json>().await {
                        ids.extend(
                            body["decisions"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .take(3)
                                .filter_map(|d| d["trace_id"].as_str().map(str::to_string)),
                        );
                    }
                }
            }
            Ok(r) => failures.push(format!("{path}: {}", r.status())),
            Err(e) => failures.push(format!("{path}: {e}")),
        }
    }
    for id in ids {
        match c.get(format!("{base}/api/traces/{id}")).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => failures.push(format!("/api/traces/{id}: {}", r.status())),
            Err(e) => failures.push(format!("/api/traces/{id}: {e}")),
        }
    }
}

/// What the readers saw go wrong (the first 20), shared between their tasks.
#[derive(Default)]
struct Failures(std::sync::Mutex<Vec<String>>);

impl Failures {
    fn push(&self, failure: String) {
        let mut list = self.0.lock().expect("not poisoned");
        if list.len() < 20 {
            list.push(failure);
        }
    }

    fn list(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }
}
