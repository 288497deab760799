//! Weft against the real backends: Jaeger v2 (built from the Go module proxy) and OpenSearch
//! 2.19 (an embedded node from Maven Central), both started by `scripts/services.sh`.
//! The clients are the official OpenTelemetry Python SDK.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value as Json};
use weft_integration_tests::{
    eventually, free_port, http_client, run_python_client, services, unique_name, Services, Weft,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The span ids Jaeger holds for `trace_id` (empty when it does not know the trace).
async fn jaeger_spans(s: &Services, trace_id: &str) -> BTreeSet<String> {
    let url = format!("{}/api/traces/{trace_id}", s.jaeger_query_url);
    let resp = http_client()
        .get(&url)
        .send()
        .await
        .expect("jaeger query answers");
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return BTreeSet::new();
    }
    let body: Json = resp.json().await.expect("jaeger answers JSON");
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["spans"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["spanID"].as_str().map(str::to_string))
        .collect()
}

fn grpc_ready(port: u16) -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], port))]
}

#[test]
fn kept_traces_land_in_jaeger_and_exactly_their_logs_in_opensearch() {
    let s = services();
    let rt = runtime();
    let grpc = free_port();
    let metrics = free_port();
    let prefix = unique_name("e2e-logs");
    let config = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  tail_sampling:
    decision_wait: 2s
    policies:
      - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
      - {{name: slow, type: latency, latency: {{threshold_ms: 1000}}}}
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
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [elasticsearch]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        jaeger = s.jaeger_otlp_grpc,
        opensearch = s.opensearch_url,
    );
    let weft = Weft::start(&config, &grpc_ready(grpc)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("manifest.json");
    let endpoint = format!("http://127.0.0.1:{grpc}");
    run_python_client(
        "emit_traffic.py",
        &[
            "--endpoint",
            &endpoint,
            "--traces",
            "200",
            "--error-share",
            "0.08",
            "--slow-share",
            "0.07",
            "--out",
            manifest_path.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", weft.log()));
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let traces = manifest["traces"].as_array().unwrap().clone();
    let kept: Vec<&Json> = traces
        .iter()
        .filter(|t| matches!(t["category"].as_str(), Some("error" | "slow")))
        .collect();
    assert_eq!(kept.len(), 16 + 14);

    // The decision tick (decision_wait: 2s) sends kept spans to Jaeger while weft runs.
    let last = kept.last().unwrap()["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let arrived = eventually(Duration::from_secs(60), || {
        (!rt.block_on(jaeger_spans(&s, &last)).is_empty()).then_some(())
    });
    assert!(
        arrived.is_some(),
        "kept trace {last} never reached Jaeger\n{}",
        weft.log()
    );
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");

    rt.block_on(async {
        let index = format!("{prefix}-*");
        s.refresh(&index).await;
        for t in &traces {
            let id = t["trace_id"].as_str().unwrap();
            let category = t["category"].as_str().unwrap();
            let expected_spans: BTreeSet<String> = t["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let in_jaeger = jaeger_spans(&s, id).await;
            let docs = s.search_lucene(&index, &format!("trace_id:\"{id}\"")).await;
            let mut bodies: Vec<String> = docs
                .iter()
                .map(|d| d["message"].as_str().unwrap_or_default().to_string())
                .collect();
            bodies.sort();
            if matches!(category, "error" | "slow") {
                assert_eq!(
                    in_jaeger, expected_spans,
                    "kept {category} trace {id}: all its spans in Jaeger"
                );
                let mut expected: Vec<String> = t["logs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                expected.sort();
                assert_eq!(
                    bodies, expected,
                    "kept {category} trace {id}: exactly its logs in OpenSearch"
                );
                for d in &docs {
                    assert_eq!(d["weft.sampled"], json!(true), "{d}");
                    assert_eq!(d["weft.root_service"], json!("frontend"), "{d}");
                    assert_eq!(d["weft.root_operation"], json!("GET /checkout"), "{d}");
                    let policy = d["weft.policy"].as_str().unwrap_or_default();
                    let expected_policy = if category == "error" {
                        "errors"
                    } else {
                        "slow"
                    };
                    assert_eq!(policy, expected_policy, "{d}");
                    assert_eq!(d["service.name"], json!("frontend"));
                    assert_eq!(d["span_id"].as_str().map(str::len), Some(16));
                }
            } else {
                assert!(
                    in_jaeger.is_empty(),
                    "dropped trace {id} must not be in Jaeger"
                );
                assert!(
                    docs.is_empty(),
                    "dropped trace {id}: no log in OpenSearch, found {docs:?}"
                );
            }
        }
        for body in manifest["orphan_logs"].as_array().unwrap() {
            let body = body.as_str().unwrap();
            let docs = s
                .search_lucene(&index, &format!("message:\"{body}\""))
                .await;
            let exact: Vec<&Json> = docs
                .iter()
                .filter(|d| d["message"] == json!(body))
                .collect();
            assert_eq!(
                exact.len(),
                1,
                "log without a trace {body:?} is indexed once"
            );
            assert!(exact[0].get("trace_id").is_none());
        }
        // The installed index template maps the ids as keywords, so term queries work.
        let url = format!("{}/{index}/_mapping", s.opensearch_url);
        let mapping: Json = http_client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (_, m) = mapping
            .as_object()
            .unwrap()
            .iter()
            .next()
            .expect("one index");
        assert_eq!(
            m["mappings"]["properties"]["trace_id"]["type"],
            json!("keyword"),
            "{m}"
        );
    });
}

/// Sends `emit.py`'s traces and logs (no sampling) through an elasticsearch exporter with
/// `exporter_yaml`, and returns the trace ids the SDK produced, the manifest and the logs.
fn logs_through(s: &Services, exporter_yaml: &str) -> Json {
    let grpc = free_port();
    let metrics = free_port();
    let config = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  elasticsearch:
{exporter_yaml}
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [elasticsearch]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#
    );
    let _ = s;
    let weft = Weft::start(&config, &grpc_ready(grpc)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("manifest.json");
    let endpoint = format!("http://127.0.0.1:{grpc}");
    run_python_client(
        "emit.py",
        &[
            "--endpoint",
            &endpoint,
            "--protocol",
            "grpc",
            "--traces",
            "5",
            "--out",
            manifest_path.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", weft.log()));
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");
    serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap()
}

fn manifest_logs(m: &Json) -> Vec<&Json> {
    m["logs"].as_array().unwrap().iter().collect()
}

#[test]
fn flat_documents_in_date_pattern_indices() {
    let s = services();
    let prefix = unique_name("flat");
    let m = logs_through(
        &s,
        &format!(
            "    endpoints: [{}]\n    logs_index: {prefix}-%{{+yyyy.MM.dd}}\n    mapping:\n      mode: flat\n",
            s.opensearch_url
        ),
    );
    runtime().block_on(async {
        s.refresh(&format!("{prefix}-*")).await;
        let url = format!("{}/_cat/indices/{prefix}-*?format=json", s.opensearch_url);
        let indices: Json = http_client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let names: Vec<&str> = indices
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["index"].as_str())
            .collect();
        assert!(!names.is_empty());
        for name in &names {
            let date = name.strip_prefix(&format!("{prefix}-")).unwrap();
            let parts: Vec<&str> = date.split('.').collect();
            assert!(
                parts.len() == 3
                    && parts[0].len() == 4
                    && parts[1].len() == 2
                    && parts[2].len() == 2,
                "{name}"
            );
        }
        let all = s.search_lucene(&format!("{prefix}-*"), "*").await;
        assert_eq!(all.len(), manifest_logs(&m).len(), "every log indexed once");
        let traced = manifest_logs(&m)
            .into_iter()
            .find(|l| !l["trace_id"].as_str().unwrap().is_empty())
            .unwrap();
        let tid = traced["trace_id"].as_str().unwrap();
        let docs = s
            .search_lucene(&format!("{prefix}-*"), &format!("trace_id:\"{tid}\""))
            .await;
        assert!(!docs.is_empty());
        let d = docs
            .iter()
            .find(|d| d["message"] == traced["body"])
            .expect("the log by its body");
        assert_eq!(d["span_id"], traced["span_id"]);
        assert_eq!(d["severity_text"], traced["severity_text"]);
        assert_eq!(
            d["level"],
            json!(traced["severity_text"].as_str().unwrap().to_lowercase())
        );
        assert_eq!(d["service.name"], json!("checkout"));
        assert!(d["@timestamp"].is_string());
        let biz = s
            .search_lucene(&format!("{prefix}-*"), "biz_user_id:*")
            .await;
        assert!(!biz.is_empty(), "business keys are kept as they are");
    });
}

#[test]
fn ecs_documents_in_a_data_stream() {
    let s = services();
    let dataset = unique_name("weftecs").replace('-', "_");
    let m = logs_through(
        &s,
        &format!(
            "    endpoints: [{}]\n    mapping:\n      mode: ecs\n    data_stream:\n      enabled: true\n      dataset: {dataset}\n      namespace: test\n      install_template: true\n",
            s.opensearch_url
        ),
    );
    let stream = format!("logs-{dataset}-test");
    runtime().block_on(async {
        let url = format!("{}/_data_stream/{stream}", s.opensearch_url);
        let resp = http_client().get(&url).send().await.unwrap();
        assert!(
            resp.status().is_success(),
            "data stream {stream} exists: {}",
            resp.status()
        );
        s.refresh(&stream).await;
        let all = s.search_lucene(&stream, "*").await;
        assert_eq!(all.len(), manifest_logs(&m).len(), "every log indexed once");
        let traced = manifest_logs(&m)
            .into_iter()
            .find(|l| !l["trace_id"].as_str().unwrap().is_empty())
            .unwrap();
        let tid = traced["trace_id"].as_str().unwrap();
        let docs = s
            .search_lucene(&stream, &format!("trace.id:\"{tid}\""))
            .await;
        let d = docs
            .iter()
            .find(|d| d["message"] == traced["body"])
            .expect("the log by its body");
        assert_eq!(
            d["span"]["id"].as_str().or(d["span.id"].as_str()),
            traced["span_id"].as_str()
        );
        let level = d["log"]["level"].as_str().or(d["log.level"].as_str());
        assert_eq!(
            level,
            Some(
                traced["severity_text"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .as_str()
            )
        );
        let service = d["service"]["name"].as_str().or(d["service.name"].as_str());
        assert_eq!(service, Some("checkout"));
        let ids: HashSet<&str> = all.iter().filter_map(|d| d["message"].as_str()).collect();
        assert!(ids.len() > 1);
    });
}
