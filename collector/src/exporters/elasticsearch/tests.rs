//! The `elasticsearch` exporter against an in-process fake of the `_bulk` and
//! `_index_template` APIs (axum on 127.0.0.1:0) that stores documents by index and `_id` and
//! can be scripted to answer a whole request or single items with an error. What only a
//! real cluster can show (mappings, data streams, queries) is for the integration tests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::Router;
use chrono::TimeZone;
use http::HeaderMap;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use weft_config::{
    decode_component, ComponentConfig, ComponentId, ConfigPath, Diagnostics, Kind, SignalKind,
};
use weft_proto::common::v1::any_value::Value as Any;
use weft_proto::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

use super::bulk::{classify_item, parse_response, split_requests, Doc, ItemOutcome, ItemResult};
use super::config::{Compression, MappingSettings};
use super::index::{record_time, IndexPattern};
use super::mapping::{document_id, Fnv128, Origin};
use super::*;
use crate::exporters::helper::{ExportError, QueueSettings, RetrySettings, Sender as _};
use crate::pipeline::{ConsumeError, Payload};
use crate::pipeline::{Logs, Traces};
use crate::telemetry::Telemetry;

// ---------------------------------------------------------------------------------------
// The fake cluster.

/// One `_bulk` request as received.
struct BulkRequest {
    headers: HeaderMap,
    /// The body as sent (compressed when the exporter compresses).
    raw: Vec<u8>,
    /// `(op, index, id)` of each action, in order.
    actions: Vec<(String, String, String)>,
}

#[derive(Default)]
struct FakeState {
    /// `(index, _id)` → document.
    docs: BTreeMap<(String, String), Value>,
    bulks: Vec<BulkRequest>,
    templates: Vec<(String, Value)>,
    /// Statuses for whole `_bulk` requests, taken one per request before any item is read.
    whole: VecDeque<u16>,
    /// `(bulk request number, item position)` → status for that item.
    items: HashMap<(usize, usize), u16>,
    /// `_id` → statuses its next bulk items get, one per appearance.
    by_id: HashMap<String, VecDeque<u16>>,
}

#[derive(Default)]
struct FakeEs {
    state: Mutex<FakeState>,
}

impl FakeEs {
    fn doc_count(&self) -> usize {
        self.state.lock().docs.len()
    }
    fn bulk_count(&self) -> usize {
        self.state.lock().bulks.len()
    }
    fn indices(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .state
            .lock()
            .docs
            .keys()
            .map(|(i, _)| i.clone())
            .collect();
        v.dedup();
        v
    }
}

fn decode_body(headers: &HeaderMap, raw: &[u8]) -> Vec<u8> {
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        gunzip(raw)
    } else {
        raw.to_vec()
    }
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn json_response(status: u16, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn item_error(status: u16) -> Value {
    match status {
        429 => {
            json!({"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"})
        }
        409 => {
            json!({"type": "version_conflict_engine_exception", "reason": "document already exists"})
        }
        400 => {
            json!({"type": "mapper_parsing_exception", "reason": "failed to parse field [conflict] of type [long]"})
        }
        _ => {
            json!({"type": "unavailable_shards_exception", "reason": "primary shard is not active"})
        }
    }
}

async fn handle(
    State(es): State<Arc<FakeEs>>,
    method: http::Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let decoded = decode_body(&headers, &body);
    let mut st = es.state.lock();
    if method == http::Method::PUT {
        if let Some(name) = path.strip_prefix("/_index_template/") {
            let value: Value = serde_json::from_slice(&decoded).unwrap();
            st.templates.push((name.to_string(), value));
            return json_response(200, json!({"acknowledged": true}));
        }
    }
    assert_eq!(path, "/_bulk", "unexpected request {method} {uri}");
    let number = st.bulks.len();
    let text = String::from_utf8(decoded).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert!(text.ends_with('\n'), "NDJSON must end with a newline");
    assert_eq!(lines.len() % 2, 0, "action and source lines come in pairs");
    let mut actions = Vec::new();
    let mut sources = Vec::new();
    for pair in lines.chunks(2) {
        let action: Value = serde_json::from_str(pair[0]).unwrap();
        let (op, meta) = action.as_object().unwrap().iter().next().unwrap();
        actions.push((
            op.clone(),
            meta["_index"].as_str().unwrap().to_string(),
            meta["_id"].as_str().unwrap().to_string(),
        ));
        sources.push(serde_json::from_str::<Value>(pair[1]).unwrap());
    }
    st.bulks.push(BulkRequest {
        headers,
        raw: body.to_vec(),
        actions: actions.clone(),
    });
    if let Some(status) = st.whole.pop_front() {
        return json_response(
            status,
            json!({"error": {"type": "scripted", "reason": "scripted failure"}, "status": status}),
        );
    }
    let mut items = Vec::new();
    let mut errors = false;
    for (pos, ((op, index, id), source)) in actions.into_iter().zip(sources).enumerate() {
        let scripted = st
            .items
            .remove(&(number, pos))
            .or_else(|| st.by_id.get_mut(&id).and_then(VecDeque::pop_front));
        let key = (index.clone(), id.clone());
        let status = if let Some(s) = scripted {
            s
        } else if source.get("conflict").is_some() {
            400
        } else if op == "create" && st.docs.contains_key(&key) {
            409
        } else {
            let existed = st.docs.insert(key, source).is_some();
            if existed {
                200
            } else {
                201
            }
        };
        let mut item = json!({"_index": index, "_id": id, "status": status});
        if status >= 300 {
            errors = true;
            item["error"] = item_error(status);
        }
        items.push(json!({ op: item }));
    }
    json_response(200, json!({"took": 1, "errors": errors, "items": items}))
}

async fn serve() -> (SocketAddr, Arc<FakeEs>) {
    let es = Arc::new(FakeEs::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(handle).with_state(es.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, es)
}

/// An address nothing listens on: bound, then released.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

// ---------------------------------------------------------------------------------------
// Config and data helpers.

fn decode(yaml: &str) -> Result<Config, Diagnostics> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("elasticsearch");
    match decode_component::<Config>(&value, &path, &mut diags) {
        Some(c) if !diags.has_errors() => Ok(c),
        _ => Err(diags),
    }
}

fn errors_of(yaml: &str) -> Vec<String> {
    decode(yaml)
        .expect_err("the config should be rejected")
        .errors()
        .map(|d| d.to_string())
        .collect()
}

/// `addr` as the endpoint, synchronous sends (no queue), fast retries, plus `extra` keys.
fn config(addr: SocketAddr, extra: &str) -> Config {
    decode(&format!(
        "endpoints: [\"http://{addr}\"]
sending_queue: {{enabled: false}}
retry: {{initial_interval: 1ms, max_interval: 2ms}}
retry_on_failure: {{initial_interval: 5ms, max_interval: 5ms, randomization_factor: 0, max_elapsed_time: 10s}}
{extra}"
    ))
    .unwrap_or_else(|d| panic!("{d}"))
}

fn ctx(t: &Telemetry) -> BuildContext {
    BuildContext::standalone("elasticsearch", Kind::Exporter).with_telemetry(t)
}

fn counter(t: &Telemetry, name: &str) -> u64 {
    t.counter_value(name, &[("exporter", "elasticsearch")])
}

fn bulk_requests(t: &Telemetry, outcome: &str) -> u64 {
    t.counter_value(
        "otelcol_exporter_elasticsearch_bulk_requests",
        &[("exporter", "elasticsearch"), ("outcome", outcome)],
    )
}

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: &str) -> Any {
    Any::StringValue(v.to_string())
}

/// 2026-11-27T10:15:30.123456789Z in nanoseconds.
fn sample_nanos() -> u64 {
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 11, 27, 10, 15, 30)
        .unwrap();
    at.timestamp_nanos_opt().unwrap() as u64 + 123_456_789
}

const TRACE: [u8; 16] = [
    0x4d, 0x1e, 0x4f, 0x8a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x7a, 0x8b, 0x9c, 0x0d, 0x1e, 0x2f, 0x3a,
];

fn resource() -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", s("checkout")),
            kv("host.name", s("node-1")),
            kv("deployment.environment", s("prod")),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "checkout.http".to_string(),
        version: "1.2.0".to_string(),
        ..Default::default()
    }
}

/// The record the mapping tests spell out in full.
fn sample_record() -> LogRecord {
    LogRecord {
        time_unix_nano: sample_nanos(),
        observed_time_unix_nano: sample_nanos() + 1_000,
        severity_number: 17,
        severity_text: "ERROR".to_string(),
        body: Some(AnyValue {
            value: Some(s("payment declined")),
        }),
        trace_id: TRACE.to_vec(),
        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        attributes: vec![
            kv("biz_order_no", s("A-1001")),
            kv("biz_amount", Any::IntValue(1250)),
            kv("http.method", s("POST")),
            kv("weft.sampled", Any::BoolValue(true)),
            kv("weft.policy", s("errors")),
            kv("message", s("collides")),
            kv("service", s("user-api")),
            kv("ratio", Any::DoubleValue(0.5)),
            kv(
                "tags",
                Any::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(s("a")),
                        },
                        AnyValue {
                            value: Some(s("b")),
                        },
                    ],
                }),
            ),
            kv("raw", Any::BytesValue(vec![1, 2, 3])),
        ],
        ..Default::default()
    }
}

fn logs_of(records: Vec<LogRecord>) -> Logs {
    Logs::from(weft_proto::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// `n` distinct records at the sample time.
fn logs(n: usize) -> Logs {
    logs_of(
        (0..n)
            .map(|i| LogRecord {
                time_unix_nano: sample_nanos() + i as u64,
                severity_text: "INFO".to_string(),
                body: Some(AnyValue {
                    value: Some(s(&format!("log line {i}"))),
                }),
                trace_id: TRACE.to_vec(),
                span_id: vec![1, 2, 3, 4, 5, 6, 7, i as u8 + 1],
                ..Default::default()
            })
            .collect(),
    )
}

async fn started(cfg: &Config, t: &Telemetry, signals: &[SignalKind]) -> BuiltExporter {
    let built = build(ctx(t), cfg, signals).unwrap();
    built.component.start().await.unwrap();
    built
}

async fn stop(built: BuiltExporter) {
    built
        .component
        .shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

async fn export_logs(cfg: &Config, t: &Telemetry, data: Logs) -> Result<(), ConsumeError> {
    let built = started(cfg, t, &[SignalKind::Logs]).await;
    let result = built.consumers.get::<Logs>().unwrap().consume(data).await;
    stop(built).await;
    result
}

// ---------------------------------------------------------------------------------------
// Bulk: items, retries, dead letters.

#[tokio::test]
async fn an_item_answered_429_is_retried_alone_and_nothing_is_lost_or_duplicated() {
    let (addr, es) = serve().await;
    es.state.lock().items.insert((0, 2), 429);
    let t = Telemetry::new();
    export_logs(&config(addr, ""), &t, logs(5)).await.unwrap();

    assert_eq!(es.doc_count(), 5, "every record indexed exactly once");
    let st = es.state.lock();
    assert_eq!(st.bulks.len(), 2, "the first bulk, then one retry");
    assert_eq!(
        st.bulks[1].actions.len(),
        1,
        "only the rejected item is sent again"
    );
    assert_eq!(st.bulks[1].actions[0], st.bulks[0].actions[2]);
    assert_eq!(st.bulks[0].actions[0].0, "index");
    assert_eq!(st.bulks[0].actions[0].1, "weft-logs-2026.11.27");
    drop(st);
    assert_eq!(
        counter(&t, "otelcol_exporter_elasticsearch_documents_retried"),
        1
    );
    assert_eq!(counter(&t, "otelcol_exporter_sent_log_records"), 5);
    assert_eq!(bulk_requests(&t, "success"), 2);
}

#[tokio::test]
async fn items_still_rejected_after_max_retries_send_the_batch_again_without_duplicates() {
    let (addr, es) = serve().await;
    let data = logs(3);
    // The ids the exporter will use, to script one document: rejected on its first three
    // appearances (the first bulk and both item retries), accepted on the fourth.
    let docs = data.documents(
        &DocBuilder {
            mapper: Mapper::new(MappingMode::Flat),
            target: Target::Pattern(IndexPattern::parse("weft-logs-%{+yyyy.MM.dd}").unwrap()),
        },
        chrono::Utc::now(),
    );
    es.state
        .lock()
        .by_id
        .insert(docs[1].id.clone(), VecDeque::from([503, 503, 503]));
    let t = Telemetry::new();
    export_logs(&config(addr, ""), &t, data).await.unwrap();

    assert_eq!(es.doc_count(), 3);
    let st = es.state.lock();
    // 3 docs, then 1, then 1 (max_retries: 2); the whole batch again: 3.
    let sizes: Vec<usize> = st.bulks.iter().map(|b| b.actions.len()).collect();
    assert_eq!(sizes, vec![3, 1, 1, 3]);
    drop(st);
    assert_eq!(
        counter(&t, "otelcol_exporter_elasticsearch_documents_retried"),
        2
    );
    assert_eq!(counter(&t, "otelcol_exporter_sent_log_records"), 3);
}

#[tokio::test]
async fn a_whole_request_500_is_retried_and_then_succeeds() {
    let (addr, es) = serve().await;
    es.state.lock().whole.push_back(500);
    let t = Telemetry::new();
    export_logs(&config(addr, ""), &t, logs(4)).await.unwrap();
    assert_eq!(es.doc_count(), 4);
    assert_eq!(es.bulk_count(), 2);
    assert_eq!(bulk_requests(&t, "failed_server"), 1);
    assert_eq!(bulk_requests(&t, "success"), 1);
}

#[tokio::test]
async fn a_whole_request_400_is_permanent() {
    let (addr, es) = serve().await;
    es.state.lock().whole.push_back(400);
    let t = Telemetry::new();
    let err = export_logs(&config(addr, ""), &t, logs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConsumeError::Permanent(m) if m.contains("HTTP 400") && m.contains("scripted failure")),
        "{err}"
    );
    assert_eq!(es.bulk_count(), 1, "not retried");
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_log_records"), 2);
}

#[tokio::test]
async fn a_whole_request_429_is_throttled_with_retry_after() {
    let (addr, es) = serve().await;
    es.state.lock().whole.push_back(429);
    let cfg = config(addr, "");
    let t = Telemetry::new();
    let sender = test_sender::<Logs>(&cfg, &t);
    let err = sender.send(&logs(1)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.message.contains("HTTP 429"), "{err}");
    assert_eq!(bulk_requests(&t, "too_many"), 1);
}

/// The bare sender of `cfg` for one attempt, without queue or retry layers.
fn test_sender<T: EsSignal>(cfg: &Config, t: &Telemetry) -> BulkSender<T> {
    BulkSender {
        exporter: "elasticsearch".to_string(),
        transport: Arc::new(Transport::new(cfg).unwrap()),
        builder: DocBuilder {
            mapper: Mapper::from_settings(&cfg.mapping),
            target: Target::Pattern(cfg.logs_pattern().unwrap()),
        },
        max_bytes: cfg.flush.bytes.bytes() as usize,
        retry: cfg.retry.clone(),
        path: bulk_path(&cfg.pipeline),
        template: None,
        dead_letter: None,
        metrics: BulkMetrics::new::<T>(t, "elasticsearch"),
        _signal: std::marker::PhantomData,
    }
}

#[tokio::test]
async fn a_mapping_conflict_goes_to_the_dead_letter_file_and_the_rest_is_indexed() {
    let (addr, es) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let mut data = logs(4);
    data.request_mut().resource_logs[0].scope_logs[0].log_records[1]
        .attributes
        .push(kv("conflict", s("not a number")));
    let t = Telemetry::new();
    let cfg = config(
        addr,
        &format!("dead_letter: {{path: \"{}\"}}", dead.display()),
    );
    export_logs(&cfg, &t, data).await.unwrap();

    assert_eq!(es.doc_count(), 3, "the other records are indexed");
    let text = std::fs::read_to_string(&dead).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let entry = &lines[0];
    assert_eq!(entry["index"], "weft-logs-2026.11.27");
    assert_eq!(entry["status"], 400);
    assert_eq!(entry["error"]["type"], "mapper_parsing_exception");
    assert_eq!(
        entry["error"]["reason"],
        "failed to parse field [conflict] of type [long]"
    );
    assert_eq!(entry["document"]["conflict"], "not a number");
    assert_eq!(entry["document"]["message"], "log line 1");
    assert!(entry["@timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(es.bulk_count(), 1, "a refused item is not retried");
    assert_eq!(
        counter(&t, "otelcol_exporter_elasticsearch_dead_letter_documents"),
        1
    );
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_log_records"), 0);
}

#[tokio::test]
async fn without_a_dead_letter_path_a_refused_document_counts_as_failed() {
    let (addr, es) = serve().await;
    let mut data = logs(2);
    data.request_mut().resource_logs[0].scope_logs[0].log_records[0]
        .attributes
        .push(kv("conflict", s("x")));
    let t = Telemetry::new();
    export_logs(&config(addr, ""), &t, data).await.unwrap();
    assert_eq!(es.doc_count(), 1);
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_log_records"), 1);
    assert_eq!(
        counter(&t, "otelcol_exporter_elasticsearch_dead_letter_documents"),
        0
    );
}

#[tokio::test]
async fn data_stream_mode_creates_with_ids_installs_its_template_and_409_is_success() {
    let (addr, es) = serve().await;
    let t = Telemetry::new();
    let cfg = config(
        addr,
        "data_stream: {enabled: true, dataset: payments, namespace: prod}",
    );
    let built = started(&cfg, &t, &[SignalKind::Logs]).await;
    let consumer = built.consumers.get::<Logs>().unwrap();
    consumer.consume(logs(3)).await.unwrap();
    // The same records again (a client retry upstream): all 409, all fine, no duplicates.
    consumer.consume(logs(3)).await.unwrap();
    stop(built).await;

    assert_eq!(es.doc_count(), 3);
    assert_eq!(es.indices(), vec!["logs-payments-prod".to_string()]);
    let st = es.state.lock();
    assert!(st
        .bulks
        .iter()
        .flat_map(|b| &b.actions)
        .all(|a| a.0 == "create"));
    assert_eq!(
        st.bulks[0].actions, st.bulks[1].actions,
        "same ids both times"
    );
    assert_eq!(st.templates.len(), 1, "installed once");
    let (name, body) = &st.templates[0];
    assert_eq!(name, "weft-logs-payments-prod");
    assert_eq!(
        body,
        &json!({
            "index_patterns": ["logs-payments-prod*"],
            "data_stream": {},
            "priority": 200,
            "template": {"mappings": {"properties": {
                "@timestamp": {"type": "date_nanos"},
                "trace_id": {"type": "keyword"},
                "span_id": {"type": "keyword"},
                "level": {"type": "keyword"},
                "duration_ms": {"type": "double"},
                "severity_text": {"type": "keyword"},
                "severity_number": {"type": "integer"},
                "message": {"type": "text"},
                "service": {"properties": {"name": {"type": "keyword"}}},
                "scope": {"properties": {"name": {"type": "keyword"}}},
            }}},
        })
    );
    drop(st);
    assert_eq!(counter(&t, "otelcol_exporter_sent_log_records"), 6);
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_log_records"), 0);
}

#[tokio::test]
async fn index_template_for_a_date_pattern_in_ecs_mode() {
    let (addr, es) = serve().await;
    let t = Telemetry::new();
    let cfg = config(
        addr,
        "logs_index: \"go-logs-%{+yyyy.MM.dd}\"\nindex_template: {install: true}\nmapping: {mode: ecs}",
    );
    export_logs(&cfg, &t, logs(1)).await.unwrap();
    let st = es.state.lock();
    assert_eq!(st.templates.len(), 1);
    let (name, body) = &st.templates[0];
    assert_eq!(name, "weft-go-logs");
    assert_eq!(body["index_patterns"], json!(["go-logs-*"]));
    assert!(body.get("data_stream").is_none());
    assert_eq!(
        body["template"]["mappings"]["properties"]["trace"],
        json!({"properties": {"id": {"type": "keyword"}}})
    );
    assert_eq!(st.bulks[0].actions[0].1, "go-logs-2026.11.27");
}

// ---------------------------------------------------------------------------------------
// Transport: failover, auth, headers, compression, request size.

#[tokio::test]
async fn a_closed_endpoint_fails_over_to_the_next_one() {
    let (addr, es) = serve().await;
    let down = closed_port().await;
    let cfg = decode(&format!(
        "endpoints: [\"http://{down}\", \"http://{addr}/\"]
sending_queue: {{enabled: false}}
retry_on_failure: {{enabled: false}}"
    ))
    .unwrap();
    let t = Telemetry::new();
    let built = started(&cfg, &t, &[SignalKind::Logs]).await;
    let consumer = built.consumers.get::<Logs>().unwrap();
    for _ in 0..3 {
        // No retry_on_failure: each of these succeeds only through the failover.
        consumer.consume(logs(2)).await.unwrap();
    }
    stop(built).await;
    assert_eq!(es.bulk_count(), 3);
    assert_eq!(es.doc_count(), 2);
    assert_eq!(bulk_requests(&t, "success"), 3);
}

#[tokio::test]
async fn no_reachable_endpoint_is_a_retryable_failure() {
    let down = closed_port().await;
    let cfg = config(down, "");
    let t = Telemetry::new();
    let err = test_sender::<Logs>(&cfg, &t)
        .send(&logs(1))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.message
            .contains("cannot reach any Elasticsearch endpoint"),
        "{err}"
    );
    assert_eq!(bulk_requests(&t, "unreachable"), 1);
}

async fn authorization_sent(extra: &str) -> String {
    let (addr, es) = serve().await;
    export_logs(&config(addr, extra), &Telemetry::new(), logs(1))
        .await
        .unwrap();
    let st = es.state.lock();
    st.bulks[0].headers["authorization"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn credentials_are_sent_as_the_configured_authorization() {
    assert_eq!(
        authorization_sent("user: elastic\npassword: changeme").await,
        "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="
    );
    assert_eq!(
        authorization_sent("api_key: VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==")
            .await,
        "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    );
    assert_eq!(
        authorization_sent("bearer_token: eyJhbGciOi.abc.def").await,
        "Bearer eyJhbGciOi.abc.def"
    );
}

#[tokio::test]
async fn bodies_are_gzip_ndjson_with_the_configured_headers_and_pipeline() {
    let (addr, es) = serve().await;
    let cfg = config(addr, "headers: {x-tenant: acme}\npipeline: \"weft logs\"");
    let t = Telemetry::new();
    export_logs(&cfg, &t, logs(2)).await.unwrap();
    let st = es.state.lock();
    let bulk = &st.bulks[0];
    assert_eq!(bulk.headers["content-encoding"], "gzip");
    assert_eq!(bulk.headers["content-type"], "application/x-ndjson");
    assert_eq!(bulk.headers["x-tenant"], "acme");
    assert!(bulk.headers.get("authorization").is_none());
    assert_eq!(&bulk.raw[..2], &[0x1f, 0x8b], "gzip magic");
    let text = String::from_utf8(gunzip(&bulk.raw)).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert_eq!(
        bulk_path("weft logs"),
        "/_bulk?filter_path=errors,error,status,items.*.status,items.*.error&pipeline=weft%20logs"
    );
}

#[tokio::test]
async fn compression_none_sends_plain_ndjson() {
    let (addr, es) = serve().await;
    let cfg = config(addr, "compression: none");
    assert_eq!(cfg.compression, Compression::None);
    export_logs(&cfg, &Telemetry::new(), logs(1)).await.unwrap();
    let st = es.state.lock();
    assert!(st.bulks[0].headers.get("content-encoding").is_none());
    assert_eq!(st.bulks[0].raw[0], b'{');
}

#[tokio::test]
async fn flush_bytes_splits_a_batch_into_several_bulk_requests() {
    let (addr, es) = serve().await;
    let cfg = config(addr, "flush: {bytes: 1200}");
    export_logs(&cfg, &Telemetry::new(), logs(10))
        .await
        .unwrap();
    assert_eq!(es.doc_count(), 10);
    let st = es.state.lock();
    assert!(st.bulks.len() > 2, "{} requests", st.bulks.len());
    for b in &st.bulks {
        assert!(
            gunzip(&b.raw).len() <= 1200,
            "each body within flush::bytes"
        );
    }
}

#[test]
fn split_requests_respects_the_limit_and_sends_an_oversized_document_alone() {
    let doc = |n: usize| Doc {
        index: "i".to_string(),
        id: "x".to_string(),
        action: vec![b'a'; 10],
        source: vec![b's'; n],
    };
    // Lengths with the two newlines: 22, 22, 102, 22.
    let docs = vec![doc(10), doc(10), doc(90), doc(10)];
    assert_eq!(
        split_requests(&docs, &[0, 1, 2, 3], 50),
        vec![vec![0, 1], vec![2], vec![3]]
    );
    assert_eq!(split_requests(&docs, &[3, 0], 1000), vec![vec![3, 0]]);
}

// ---------------------------------------------------------------------------------------
// Spans, the default layers (buffer and queue), the index names.

#[tokio::test]
async fn spans_go_to_traces_index_as_flat_documents() {
    let (addr, es) = serve().await;
    let start = sample_nanos();
    let traces = Traces::from(
        weft_proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans: vec![Span {
                        trace_id: TRACE.to_vec(),
                        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                        parent_span_id: vec![8, 7, 6, 5, 4, 3, 2, 1],
                        name: "POST /pay".to_string(),
                        kind: span::SpanKind::Server as i32,
                        start_time_unix_nano: start,
                        end_time_unix_nano: start + 1_500_000,
                        attributes: vec![kv("http.method", s("POST")), kv("name", s("dup"))],
                        status: Some(Status {
                            code: status::StatusCode::Error as i32,
                            message: "card declined".to_string(),
                        }),
                        events: vec![span::Event {
                            time_unix_nano: start + 1_000,
                            name: "exception".to_string(),
                            attributes: vec![kv("exception.type", s("Declined"))],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    );
    let t = Telemetry::new();
    let built = started(&config(addr, ""), &t, &[SignalKind::Traces]).await;
    built
        .consumers
        .get::<Traces>()
        .unwrap()
        .consume(traces)
        .await
        .unwrap();
    stop(built).await;
    let st = es.state.lock();
    let ((index, _), doc) = st.docs.iter().next().unwrap();
    assert_eq!(index, "weft-traces-2026.11.27");
    assert_eq!(
        doc,
        &json!({
            "@timestamp": "2026-11-27T10:15:30.123456789Z",
            "trace_id": "4d1e4f8a2b3c4d5e6f7a8b9c0d1e2f3a",
            "span_id": "0102030405060708",
            "parent_span_id": "0807060504030201",
            "name": "POST /pay",
            "kind": "server",
            "status.code": "error",
            "status.message": "card declined",
            "duration_ms": 1.5,
            "events": [{
                "name": "exception",
                "@timestamp": "2026-11-27T10:15:30.123457789Z",
                "attributes": {"exception.type": "Declined"},
            }],
            "service.name": "checkout",
            "resource.host.name": "node-1",
            "resource.deployment.environment": "prod",
            "scope.name": "checkout.http",
            "scope.version": "1.2.0",
            "http.method": "POST",
            "attributes.name": "dup",
        })
    );
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 1);
}

#[tokio::test]
async fn with_the_default_queue_and_buffer_shutdown_delivers_everything_in_one_request() {
    let (addr, es) = serve().await;
    // The default layers (sending_queue on, the flush buffer on), with an interval long
    // enough that only shutdown flushes: it hands the buffer to the queue and drains it.
    let cfg = decode(&format!(
        "endpoint: \"http://{addr}\"\nflush: {{interval: 1h}}"
    ))
    .unwrap();
    let t = Telemetry::new();
    let built = started(&cfg, &t, &[SignalKind::Logs]).await;
    let consumer = built.consumers.get::<Logs>().unwrap();
    for _ in 0..3 {
        consumer.consume(logs(2)).await.unwrap();
    }
    stop(built).await;
    assert_eq!(
        es.bulk_count(),
        1,
        "three pipeline batches, one bulk request"
    );
    assert_eq!(
        es.doc_count(),
        2,
        "the same two records three times: one copy each"
    );
    assert_eq!(es.state.lock().bulks[0].actions.len(), 6);
}

#[test]
fn date_patterns_render_from_the_record_time_in_utc() {
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 11, 27, 23, 59, 59)
        .unwrap();
    let render = |p: &str| IndexPattern::parse(p).unwrap().render(at);
    assert_eq!(render("go-logs-%{+yyyy.MM.dd}"), "go-logs-2026.11.27");
    assert_eq!(render("go-logs-%{+YYYY.MM.dd}"), "go-logs-2026.11.27");
    assert_eq!(render("logs-%{+yy.MM}-x"), "logs-26.11-x");
    assert_eq!(render("hourly-%{+yyyy.MM.dd.HH}"), "hourly-2026.11.27.23");
    assert_eq!(render("static-index"), "static-index");
    let p = IndexPattern::parse("go-logs-%{+yyyy.MM.dd}").unwrap();
    assert_eq!(p.template_patterns(), vec!["go-logs-*".to_string()]);
    assert_eq!(p.template_stem(), "go-logs");

    // The record's time, else observed, else now.
    let now = chrono::Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(
        record_time(sample_nanos(), 5, now).to_rfc3339(),
        "2026-11-27T10:15:30.123456789+00:00"
    );
    assert_eq!(record_time(0, 1_000_000_000, now).timestamp(), 1);
    assert_eq!(record_time(0, 0, now), now);
}

#[tokio::test]
async fn records_of_two_days_go_to_two_indices() {
    let (addr, es) = serve().await;
    let mut data = logs(2);
    data.request_mut().resource_logs[0].scope_logs[0].log_records[1].time_unix_nano +=
        86_400 * 1_000_000_000;
    let cfg = config(addr, "logs_index: \"go-logs-%{+yyyy.MM.dd}\"");
    export_logs(&cfg, &Telemetry::new(), data).await.unwrap();
    assert_eq!(
        es.indices(),
        vec![
            "go-logs-2026.11.27".to_string(),
            "go-logs-2026.11.28".to_string()
        ]
    );
}

#[test]
fn bad_patterns_are_explained() {
    let err = |p: &str| IndexPattern::parse(p).unwrap_err();
    assert!(err("Go-logs").contains("lower case"), "{}", err("Go-logs"));
    assert!(err("logs-%{+yyyy.mm.dd}").contains("unsupported date token \"mm\""));
    assert!(err("logs-%{+yyyy").contains("unclosed"));
    assert!(err("logs-%{host}").contains("only Logstash date references"));
    assert!(err("logs idx").contains("' '"));
    assert!(err("_logs").contains("must not start"));
    assert!(err("").contains("empty"));
}

// ---------------------------------------------------------------------------------------
// Documents and ids.

fn origin<'a>(r: &'a Resource, sc: &'a InstrumentationScope) -> Origin<'a> {
    Origin {
        resource: Some(r),
        scope: Some(sc),
    }
}

#[test]
fn the_flat_document_of_a_sample_record() {
    let (r, sc) = (resource(), scope());
    let record = sample_record();
    let at = record_time(record.time_unix_nano, 0, chrono::Utc::now());
    let doc = Mapper::new(MappingMode::Flat).log(origin(&r, &sc), &record, at);
    assert_eq!(
        doc,
        json!({
            "@timestamp": "2026-11-27T10:15:30.123456789Z",
            "trace_id": "4d1e4f8a2b3c4d5e6f7a8b9c0d1e2f3a",
            "span_id": "0102030405060708",
            "severity_text": "ERROR",
            "severity_number": 17,
            "level": "error",
            "message": "payment declined",
            "service.name": "checkout",
            "resource.host.name": "node-1",
            "resource.deployment.environment": "prod",
            "scope.name": "checkout.http",
            "scope.version": "1.2.0",
            "biz_order_no": "A-1001",
            "biz_amount": 1250,
            "http.method": "POST",
            "weft.sampled": true,
            "weft.policy": "errors",
            "attributes.message": "collides",
            "attributes.service": "user-api",
            "ratio": 0.5,
            "tags": ["a", "b"],
            "raw": "AQID",
        })
    );
}

#[test]
fn the_ecs_document_of_a_sample_record() {
    let (r, sc) = (resource(), scope());
    let record = sample_record();
    let at = record_time(record.time_unix_nano, 0, chrono::Utc::now());
    let doc = Mapper::new(MappingMode::Ecs).log(origin(&r, &sc), &record, at);
    assert_eq!(
        doc,
        json!({
            "@timestamp": "2026-11-27T10:15:30.123456789Z",
            "trace.id": "4d1e4f8a2b3c4d5e6f7a8b9c0d1e2f3a",
            "span.id": "0102030405060708",
            "log.level": "error",
            "event.severity": 17,
            "log.logger": "checkout.http",
            "message": "payment declined",
            "service.name": "checkout",
            "host.name": "node-1",
            "service.environment": "prod",
            "labels.biz_order_no": "A-1001",
            "numeric_labels.biz_amount": 1250,
            "http.request.method": "POST",
            "labels.weft_sampled": "true",
            "labels.weft_policy": "errors",
            "labels.message": "collides",
            "labels.service": "user-api",
            "numeric_labels.ratio": 0.5,
            "labels.tags": "[\"a\",\"b\"]",
            "labels.raw": "AQID",
        })
    );
}

#[test]
fn a_structured_body_is_kept_and_rendered_as_the_message() {
    let (r, sc) = (resource(), scope());
    let record = LogRecord {
        time_unix_nano: sample_nanos(),
        severity_number: 13,
        body: Some(AnyValue {
            value: Some(Any::KvlistValue(weft_proto::common::v1::KeyValueList {
                values: vec![kv("user", s("u1")), kv("n", Any::IntValue(2))],
            })),
        }),
        ..Default::default()
    };
    let doc = Mapper::new(MappingMode::Flat).log(origin(&r, &sc), &record, chrono::Utc::now());
    assert_eq!(doc["body"], json!({"user": "u1", "n": 2}));
    assert_eq!(doc["message"], "{\"n\":2,\"user\":\"u1\"}");
    assert_eq!(doc["level"], "warn", "from the severity number");
    assert!(doc.get("trace_id").is_none(), "no empty ids");
    assert!(doc.get("severity_text").is_none());
}

#[test]
fn flat_documents_carry_the_seeds_level_words_and_duration_ms() {
    let (r, sc) = (resource(), scope());
    let record = |text: &str, number: i32, attrs: Vec<KeyValue>| LogRecord {
        severity_text: text.to_string(),
        severity_number: number,
        attributes: attrs,
        ..Default::default()
    };
    let int = |k: &str, v: i64| kv(k, Any::IntValue(v));
    let flat = Mapper::new(MappingMode::Flat);
    let doc = |m: &Mapper, rec: &LogRecord| m.log(origin(&r, &sc), rec, chrono::Utc::now());
    // Python's logging says WARNING (13) and CRITICAL (21); zap says warn and fatal.
    assert_eq!(doc(&flat, &record("WARNING", 13, vec![]))["level"], "warn");
    assert_eq!(doc(&flat, &record("CRITICAL", 0, vec![]))["level"], "fatal");
    assert_eq!(doc(&flat, &record("warning", 0, vec![]))["level"], "warn");
    assert_eq!(doc(&flat, &record("dpanic", 0, vec![]))["level"], "dpanic");
    // An enriched log gets duration_ms from its trace; one with its own keeps it.
    let enriched = doc(
        &flat,
        &record("ERROR", 17, vec![int("weft.trace_duration_ms", 742)]),
    );
    assert_eq!(enriched["duration_ms"], 742);
    assert_eq!(enriched["weft.trace_duration_ms"], 742, "nothing renamed");
    let own = doc(
        &flat,
        &record(
            "ERROR",
            17,
            vec![int("weft.trace_duration_ms", 742), int("duration_ms", 12)],
        ),
    );
    assert_eq!(own["duration_ms"], 12);
    assert!(doc(&flat, &record("INFO", 9, vec![]))
        .get("duration_ms")
        .is_none());
    // Configurable: the text as it came, another enrichment prefix, or no duration_ms.
    let settings: MappingSettings = serde_yaml::from_str(
        "{mode: flat, level: severity_text, duration_ms_from: x.trace_duration_ms}",
    )
    .unwrap();
    let custom = Mapper::from_settings(&settings);
    let d = doc(
        &custom,
        &record("WARNING", 13, vec![int("x.trace_duration_ms", 9)]),
    );
    assert_eq!(
        (d["level"].clone(), d["duration_ms"].clone()),
        (json!("warning"), json!(9))
    );
    let none = Mapper::from_settings(&serde_yaml::from_str("{duration_ms_from: ''}").unwrap());
    let d = doc(
        &none,
        &record("ERROR", 17, vec![int("weft.trace_duration_ms", 742)]),
    );
    assert!(d.get("duration_ms").is_none());
}

#[test]
fn document_ids_are_stable_and_differ_between_records() {
    let (r, sc) = (resource(), scope());
    let record = sample_record();
    let id = document_id(origin(&r, &sc), &record);
    // Pinned: the id must not change between runs or releases, or a re-sent batch after an
    // upgrade would be stored twice.
    assert_eq!(id, document_id(origin(&r, &sc), &record.clone()));
    assert_eq!(id.len(), 32);
    assert_eq!(id, "7cec98bb126cf7758c6160cfd9c154c4");
    let mut other = record.clone();
    other.time_unix_nano += 1;
    assert_ne!(id, document_id(origin(&r, &sc), &other));
    let other_scope = InstrumentationScope {
        name: "other".to_string(),
        ..Default::default()
    };
    assert_ne!(id, document_id(origin(&r, &other_scope), &record));
}

#[test]
fn the_hash_is_fnv1a_128() {
    // The published FNV-1a 128-bit test vectors.
    let hash = |data: &[u8]| {
        let mut h = Fnv128::new();
        h.bytes(data);
        format!("{:032x}", h.0)
    };
    assert_eq!(hash(b""), "6c62272e07bb014262b821756295c58d");
    assert_eq!(hash(b"a"), "d228cb696f1a8caf78912b704e4a8964");
    assert_eq!(hash(b"foobar"), "343e1662793c64bf6f0d3597ba446f18");
}

// ---------------------------------------------------------------------------------------
// Bulk answers.

#[test]
fn bulk_answers_are_read_item_by_item() {
    let body = br#"{"errors":true,"items":[
        {"create":{"status":201}},
        {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
        {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
        {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad","caused_by":{"type":"x","reason":"not a long"}}}},
        {"create":{"status":500,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}}
    ]}"#;
    let items = parse_response(body, 5).unwrap();
    assert_eq!(items[3].reason, "bad: not a long");
    let retry_on = [429];
    let outcomes: Vec<ItemOutcome> = items
        .iter()
        .map(|i| classify_item(bulk::BulkOp::Create, i, &retry_on))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ItemOutcome::Indexed,
            ItemOutcome::AlreadyThere,
            ItemOutcome::Retry,
            ItemOutcome::Refused,
            ItemOutcome::Retry, // by its type, though 500 is not in retry_on_status here
        ]
    );
    let conflict = ItemResult {
        status: 409,
        error_type: String::new(),
        reason: String::new(),
    };
    assert_eq!(
        classify_item(bulk::BulkOp::Index, &conflict, &retry_on),
        ItemOutcome::Refused,
        "409 is success only for create"
    );
    assert!(parse_response(body, 4)
        .unwrap_err()
        .contains("5 items for 4 documents"));
    assert_eq!(parse_response(br#"{"errors":false}"#, 2).unwrap().len(), 2);
    assert!(parse_response(b"<html>", 1)
        .unwrap_err()
        .contains("not JSON"));
}

// ---------------------------------------------------------------------------------------
// The flush buffer, against a recording sender and the paused clock.

#[derive(Clone, Default)]
struct Recording {
    batches: Arc<Mutex<Vec<usize>>>,
}

#[async_trait]
impl crate::exporters::helper::Sender<Logs> for Recording {
    async fn send(&self, data: &Logs) -> Result<(), ExportError> {
        self.batches.lock().push(data.item_count());
        Ok(())
    }
}

fn buffered(max_bytes: usize, interval: Duration) -> (Arc<Batcher<Logs>>, Recording) {
    buffered_with_queue(max_bytes, interval, 10)
}

fn buffered_with_queue(
    max_bytes: usize,
    interval: Duration,
    queue_size: usize,
) -> (Arc<Batcher<Logs>>, Recording) {
    let t = Telemetry::new();
    let id = ComponentId::new("elasticsearch", None);
    let rec = Recording::default();
    let queue = crate::exporters::helper::build(
        &id,
        &t,
        rec.clone(),
        Duration::from_secs(5),
        &RetrySettings::default(),
        &QueueSettings {
            enabled: true,
            num_consumers: 1,
            queue_size,
            storage: None,
        },
    );
    let metrics =
        crate::telemetry::ExporterMetrics::new(&t, "elasticsearch", "log_records", "logs");
    (
        Arc::new(Batcher::new(
            "elasticsearch".into(),
            queue,
            max_bytes,
            interval,
            metrics,
        )),
        rec,
    )
}

/// Lets the queue's worker run until it has sent `n` batches (virtual time stands still).
async fn until_sent(rec: &Recording, n: usize) {
    for _ in 0..1000 {
        if rec.batches.lock().len() >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("only {:?} sent", rec.batches.lock());
}

#[tokio::test(start_paused = true)]
async fn the_buffer_flushes_after_the_interval() {
    let (b, rec) = buffered(1 << 20, Duration::from_secs(1));
    b.start().await.unwrap();
    b.consume(logs(2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.consume(logs(3)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rec.batches.lock().is_empty(), "still within the interval");
    tokio::time::sleep(Duration::from_millis(200)).await;
    until_sent(&rec, 1).await;
    assert_eq!(*rec.batches.lock(), vec![5], "one merged batch");
    b.shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_buffer_flushes_at_flush_bytes_without_waiting() {
    let size = logs(2).encoded_len();
    let (b, rec) = buffered(size * 2, Duration::from_secs(3600));
    b.start().await.unwrap();
    b.consume(logs(2)).await.unwrap();
    b.consume(logs(2)).await.unwrap();
    until_sent(&rec, 1).await;
    assert_eq!(*rec.batches.lock(), vec![4]);
    // What is left goes out at shutdown.
    b.consume(logs(1)).await.unwrap();
    b.shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(*rec.batches.lock(), vec![4, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_and_a_full_buffer_refuse_new_data_without_losing_what_was_taken() {
    let size = logs(2).encoded_len();
    // Not started yet: the queue (room for one batch) is not being drained.
    let (b, rec) = buffered_with_queue(size, Duration::from_secs(3600), 1);
    b.consume(logs(2)).await.unwrap(); // buffer full → queued
    b.consume(logs(2)).await.unwrap(); // buffer full, queue full → kept in the buffer
    let err = b.consume(logs(2)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("are full"), "{err}");
    b.start().await.unwrap();
    b.shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        *rec.batches.lock(),
        vec![2, 2],
        "everything taken was delivered"
    );
}

// ---------------------------------------------------------------------------------------
// Configuration.

#[test]
fn defaults_follow_the_collector_where_it_has_the_key() {
    let cfg = decode("endpoint: http://localhost:9200").unwrap();
    assert_eq!(cfg.timeout.get(), Duration::from_secs(90));
    assert_eq!(cfg.flush.bytes.bytes(), 5_000_000);
    assert_eq!(cfg.flush.interval.get(), Duration::from_secs(1));
    assert!(cfg.retry.enabled);
    assert_eq!(cfg.retry.max_retries, 2);
    assert_eq!(cfg.retry.initial_interval.get(), Duration::from_millis(100));
    assert_eq!(cfg.retry.max_interval.get(), Duration::from_secs(60));
    assert_eq!(cfg.retry.retry_on_status, vec![429, 500, 502, 503, 504]);
    assert_eq!(cfg.compression, Compression::Gzip);
    assert_eq!(cfg.mapping.mode, MappingMode::Flat);
    assert_eq!(
        cfg.logs_pattern().unwrap().as_str(),
        "weft-logs-%{+yyyy.MM.dd}"
    );
    assert_eq!(
        cfg.traces_pattern().unwrap().as_str(),
        "weft-traces-%{+yyyy.MM.dd}"
    );
    assert!(!cfg.data_stream.enabled);
    assert_eq!(cfg.data_stream.dataset, "generic");
    assert_eq!(cfg.data_stream.namespace, "default");
    assert!(cfg.data_stream.install_template);
    assert_eq!(cfg.queue_settings().num_consumers, 10);
    let cfg = decode("endpoint: http://localhost:9200\nnum_workers: 3").unwrap();
    assert_eq!(cfg.queue_settings().num_consumers, 3);
}

#[test]
fn config_errors_name_their_path() {
    let errs = errors_of("{}");
    assert_eq!(
        errs,
        vec!["error: exporters::elasticsearch::endpoints: required: exactly one of endpoint and endpoints, e.g. endpoints: [\"http://127.0.0.1:9200\"]".to_string()]
    );
    let errs = errors_of("endpoints: [\"http://ok:9200\", \"htp://x\", \"\"]");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].contains("endpoints[1]: \"htp://x\" must start with http:// or https://"),
        "{errs:?}"
    );
    assert!(
        errs[1].contains("endpoints[2]: must not be empty"),
        "{errs:?}"
    );

    let errs = errors_of(
        "endpoint: http://es:9200
logs_index: \"Go-%{+yyyy.mm.dd}\"
user: elastic
api_key: abc
data_stream: {dataset: \"my-app\"}
retry: {retry_on_status: [200]}",
    );
    let joined = errs.join("\n");
    for expected in [
        "exporters::elasticsearch::logs_index: \"Go-\" contains 'G'",
        "exporters::elasticsearch::password: required when user is set",
        "exporters::elasticsearch::api_key: only one authentication method may be set, found user and api_key",
        "exporters::elasticsearch::data_stream::dataset: \"my-app\" contains '-'",
        "exporters::elasticsearch::retry::retry_on_status[0]: 200 is not an HTTP error status",
    ] {
        assert!(joined.contains(expected), "missing {expected:?} in:\n{joined}");
    }
    assert_eq!(errs.len(), 5, "{joined}");

    let errs = errors_of(
        "endpoint: http://es:9200
endpoints: [\"http://es2:9200\"]
password: x
logs_index: logs
data_stream: {enabled: true}
index_template: {install: true}
headers: {Authorization: \"Basic x\"}
num_workers: 0",
    );
    let joined = errs.join("\n");
    for expected in [
        "::endpoint: exactly one of endpoint and endpoints",
        "::user: required when password is set",
        "::logs_index: not used with data_stream::enabled",
        "::index_template::install: applies to the date-pattern mode only",
        "::num_workers: must be at least 1",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in:\n{joined}"
        );
    }

    let errs = errors_of("endpoint: http://es:9200\napi_key: k\nheaders: {authorization: x}");
    assert!(
        errs[0].contains("headers::authorization: conflicts with api_key"),
        "{errs:?}"
    );
    let errs = errors_of("endpoint: http://es:9200\nmapping: {mode: otel}");
    assert!(
        errs[0].contains("mapping::mode") && errs[0].contains("unknown variant"),
        "{errs:?}"
    );
    let errs = errors_of("endpoint: http://es:9200\nauth: {authenticator: basicauth}");
    assert!(errs[0].contains("unknown field \"auth\""), "{errs:?}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let cfg = decode(
        "endpoint: http://es:9200
user: elastic
password: hunter2-password
headers: {x-token: header-secret}",
    )
    .unwrap();
    let text = format!("{cfg:?}");
    assert!(!text.contains("hunter2-password"), "{text}");
    assert!(!text.contains("header-secret"), "{text}");
    assert!(text.contains("[REDACTED]"));
    assert!(text.contains("elastic"), "the user name is not a secret");
    let key = Secret::new("abc");
    assert_eq!(format!("{key}"), "[REDACTED]");
    assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    let cfg = decode("endpoint: http://es:9200\napi_key: the-key\nbearer_token: \"\"").unwrap();
    assert!(!format!("{cfg:?}").contains("the-key"));
    assert!(cfg.validate_is_clean());
}

impl Config {
    /// Whether validation finds nothing wrong, for tests that decode without `decode`.
    fn validate_is_clean(&self) -> bool {
        let mut d = Diagnostics::new();
        self.validate(&ConfigPath::root(), &mut d);
        !d.has_errors()
    }
}
