//! The `otlphttp` exporter against a real axum HTTP server in the same process.

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::Router;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use weft_config::{decode_component, ConfigPath, Diagnostics, Kind, SignalKind};
use weft_proto::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::exporters::helper::Retry;
use crate::pipeline::{ConsumeError, Payload};
use crate::pipeline::{Logs, Traces};

/// One scripted answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .push(("content-type", content_type.to_string()));
        self.body = body;
        self
    }
}

/// What the server received.
struct Received {
    path: String,
    headers: HeaderMap,
    /// The body as sent (still compressed).
    body: Vec<u8>,
}

#[derive(Default)]
struct Backend {
    answers: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<Received>>,
}

async fn handle(
    State(backend): State<Arc<Backend>>,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    backend.received.lock().push(Received {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    });
    let answer = backend
        .answers
        .lock()
        .pop_front()
        .unwrap_or(Answer::status(200));
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(answer.body)).unwrap()
}

/// Serves the scripted answers (then 200) on 127.0.0.1, any path, until the runtime ends.
async fn serve(answers: Vec<Answer>) -> (SocketAddr, Arc<Backend>) {
    let backend = Arc::new(Backend::default());
    *backend.answers.lock() = answers.into();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(handle).with_state(backend.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, backend)
}

fn decode(yaml: &str) -> Result<Config, Diagnostics> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("otlphttp");
    match decode_component::<Config>(&value, &path, &mut diags) {
        Some(c) if !diags.has_errors() => Ok(c),
        _ => Err(diags),
    }
}

/// `endpoint` at `addr`, fast deterministic retries, no queue, plus `extra` keys.
fn config(addr: SocketAddr, extra: &str) -> Config {
    decode(&format!(
        "endpoint: http://{addr}
sending_queue: {{enabled: false}}
retry_on_failure: {{initial_interval: 10ms, max_interval: 10ms, randomization_factor: 0, max_elapsed_time: 10s}}
{extra}"
    ))
    .unwrap_or_else(|d| panic!("{d}"))
}

fn ctx(t: &Telemetry) -> BuildContext {
    BuildContext::standalone("otlphttp", Kind::Exporter).with_telemetry(t)
}

fn traces(n: usize) -> Traces {
    Traces::from(
        weft_proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..n)
                        .map(|i| Span {
                            trace_id: vec![9; 16],
                            span_id: vec![i as u8 + 1; 8],
                            name: format!("GET /items/{i}"),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )
}

fn counter(t: &Telemetry, name: &str) -> u64 {
    t.counter_value(name, &[("exporter", "otlphttp")])
}

async fn export_traces(cfg: &Config, t: &Telemetry, data: Traces) -> Result<(), ConsumeError> {
    let built = build(ctx(t), cfg, &[SignalKind::Traces]).unwrap();
    built.component.start().await.unwrap();
    let result = built.consumers.get::<Traces>().unwrap().consume(data).await;
    built
        .component
        .shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    result
}

/// A single attempt, without the retry layer, to see how an answer was classified.
async fn one_attempt(addr: SocketAddr, t: &Telemetry) -> Result<(), ExportError> {
    let cfg = config(addr, "");
    let make = MakeHttp {
        telemetry: t.clone(),
        exporter: "otlphttp".to_string(),
        client: cfg.tls.http_client().unwrap(),
        headers: header_map(&cfg),
        config: &cfg,
    };
    let sender = make.sender::<Traces>().unwrap();
    sender.send(&traces(1)).await
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn retry_after_503_is_retried_and_the_request_is_well_formed() {
    let (addr, backend) = serve(vec![Answer::status(503).header("retry-after", "0")]).await;
    let t = Telemetry::new();
    let data = traces(3);
    let cfg = config(addr, "headers: {x-tenant: acme}");
    export_traces(&cfg, &t, data.clone())
        .await
        .expect("delivered on the second attempt");
    let received = backend.received.lock();
    assert_eq!(received.len(), 2);
    let r = &received[1];
    assert_eq!(r.path, "/v1/traces");
    assert_eq!(r.headers["x-tenant"], "acme");
    assert_eq!(r.headers["content-type"], "application/x-protobuf");
    assert_eq!(r.headers["content-encoding"], "gzip");
    assert_eq!(
        Traces::from_stored(bytes::Bytes::copy_from_slice(gunzip(&r.body).as_slice())).unwrap(),
        data
    );
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 3);
}

#[tokio::test]
async fn retryable_statuses_and_retry_after_are_classified() {
    let (addr, _backend) = serve(vec![
        Answer::status(503).header("retry-after", "7"),
        Answer::status(429).header("retry-after", "2"),
        Answer::status(429),
        Answer::status(502),
        Answer::status(504),
        Answer::status(500),
    ])
    .await;
    let t = Telemetry::new();
    let mut retries = Vec::new();
    for _ in 0..6 {
        retries.push(one_attempt(addr, &t).await.unwrap_err().retry);
    }
    assert_eq!(
        retries,
        [
            Retry::After(Duration::from_secs(7)),
            Retry::After(Duration::from_secs(2)),
            Retry::Backoff,
            Retry::Backoff,
            Retry::Backoff,
            Retry::Never,
        ]
    );
}

#[tokio::test]
async fn bad_request_is_permanent_and_carries_the_status_message() {
    let status = weft_proto::status::Status::new(3, "span 0: trace_id must be 16 bytes");
    let (addr, backend) = serve(vec![
        Answer::status(400).body(PROTOBUF, status.encode_to_vec())
    ])
    .await;
    let t = Telemetry::new();
    let err = export_traces(&config(addr, ""), &t, traces(2))
        .await
        .expect_err("permanent");
    assert!(
        matches!(&err, ConsumeError::Permanent(m)
            if m.contains("HTTP 400") && m.contains("trace_id must be 16 bytes")),
        "{err:?}"
    );
    assert_eq!(backend.received.lock().len(), 1, "not retried");
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 2);
}

#[tokio::test]
async fn error_bodies_in_json_or_text_are_reported() {
    let status = weft_proto::status::Status::new(7, "tenant acme may not write");
    let (addr, _backend) = serve(vec![
        Answer::status(403).body(JSON, weft_proto::otlp_json::encode_status(&status)),
        Answer::status(404).body("text/plain", b"no such route\n".to_vec()),
    ])
    .await;
    let t = Telemetry::new();
    let json = one_attempt(addr, &t).await.unwrap_err();
    assert!(json.message.contains("tenant acme may not write"), "{json}");
    let text = one_attempt(addr, &t).await.unwrap_err();
    assert!(text.message.ends_with("no such route"), "{text}");
}

#[tokio::test]
async fn json_encoding_sends_otlp_json() {
    let (addr, backend) = serve(vec![]).await;
    let t = Telemetry::new();
    let data = traces(2);
    export_traces(
        &config(addr, "encoding: json\ncompression: none"),
        &t,
        data.clone(),
    )
    .await
    .unwrap();
    let received = backend.received.lock();
    assert_eq!(received[0].headers["content-type"], "application/json");
    assert!(received[0].headers.get("content-encoding").is_none());
    assert_eq!(
        weft_proto::otlp_json::decode_traces(&received[0].body).unwrap(),
        *data.request()
    );
}

#[tokio::test]
async fn zstd_compression_is_used_when_asked() {
    let (addr, backend) = serve(vec![]).await;
    let t = Telemetry::new();
    let data = traces(1);
    export_traces(&config(addr, "compression: zstd"), &t, data.clone())
        .await
        .unwrap();
    let received = backend.received.lock();
    assert_eq!(received[0].headers["content-encoding"], "zstd");
    let raw = zstd::decode_all(received[0].body.as_slice()).unwrap();
    assert_eq!(
        Traces::from_stored(bytes::Bytes::copy_from_slice(raw.as_slice())).unwrap(),
        data
    );
}

#[tokio::test]
async fn partial_success_is_counted_and_not_retried() {
    let response = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 4,
            error_message: "4 spans dropped by the backend's sampler".into(),
        }),
    };
    let json = weft_proto::otlp_json::encode_trace_response(&response);
    let (addr, backend) = serve(vec![
        Answer::status(200).body(PROTOBUF, response.encode_to_vec()),
        Answer::status(200).body(JSON, json),
    ])
    .await;
    let t = Telemetry::new();
    export_traces(&config(addr, ""), &t, traces(5))
        .await
        .unwrap();
    export_traces(&config(addr, "encoding: json"), &t, traces(5))
        .await
        .unwrap();
    assert_eq!(backend.received.lock().len(), 2);
    assert_eq!(
        counter(&t, "otelcol_exporter_partial_success_rejected_spans"),
        8
    );
}

#[tokio::test]
async fn signal_paths_and_endpoint_overrides() {
    let (addr, backend) = serve(vec![]).await;
    let t = Telemetry::new();
    let cfg = decode(&format!(
        "endpoint: http://{addr}/otlp/
traces_endpoint: http://{addr}/custom/spans
sending_queue: {{enabled: false}}"
    ))
    .unwrap();
    let built = build(ctx(&t), &cfg, &[SignalKind::Traces, SignalKind::Logs]).unwrap();
    built.component.start().await.unwrap();
    built
        .consumers
        .get::<Traces>()
        .unwrap()
        .consume(traces(1))
        .await
        .unwrap();
    let logs = Logs::from(weft_proto::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 2],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    built
        .consumers
        .get::<Logs>()
        .unwrap()
        .consume(logs)
        .await
        .unwrap();
    built
        .component
        .shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    let paths: Vec<String> = backend
        .received
        .lock()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/custom/spans", "/otlp/v1/logs"]);
    assert_eq!(counter(&t, "otelcol_exporter_sent_log_records"), 2);
}

#[tokio::test]
async fn an_unreachable_backend_is_retryable() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let t = Telemetry::new();
    let err = one_attempt(addr, &t).await.unwrap_err();
    assert_eq!(err.retry, Retry::Backoff, "{err}");
    assert!(err.message.contains("cannot send to"), "{err}");
}

#[test]
fn retry_after_accepts_seconds_and_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
        Some(Duration::ZERO),
        "a date in the past means retry now"
    );
    assert_eq!(parse_retry_after("soon", now), None);
    let e = classify(
        StatusCode::SERVICE_UNAVAILABLE,
        Some("soon"),
        now,
        "x".into(),
    );
    assert_eq!(
        e.retry,
        Retry::Backoff,
        "an unreadable Retry-After still retries"
    );
    let e = classify(StatusCode::BAD_GATEWAY, Some("9"), now, "x".into());
    assert_eq!(
        e.retry,
        Retry::Backoff,
        "Retry-After counts on 429 and 503 only"
    );
}

#[test]
fn defaults_and_validation() {
    let c = decode("endpoint: https://otel.example.com").unwrap();
    assert_eq!(c.timeout.get(), Duration::from_secs(30));
    assert_eq!(c.compression, Compression::Gzip);
    assert_eq!(c.encoding, Encoding::Proto);
    assert_eq!(
        c.signal_url(SignalKind::Traces, "v1/traces").unwrap(),
        "https://otel.example.com/v1/traces"
    );

    let diags = decode("{}").unwrap_err().to_string();
    assert!(
        diags.contains("exporters::otlphttp::endpoint: at least one endpoint"),
        "{diags}"
    );
    let diags = decode(
        "endpoint: otel.example.com:4318
logs_endpoint: ftp://x/logs
encoding: yaml",
    )
    .unwrap_err();
    let text = diags.to_string();
    // `encoding` fails decoding, which stops before validation: it is reported alone.
    assert!(text.contains("encoding"), "{text}");
    let diags = decode(
        "endpoint: otel.example.com:4318
logs_endpoint: ftp://x/logs
tls: {key_file: k.pem, server_name_override: x}
headers: {'a b': c}",
    )
    .unwrap_err();
    let text = diags.to_string();
    for expected in [
        "exporters::otlphttp::endpoint: \"otel.example.com:4318\" must start with http:// or https://",
        "exporters::otlphttp::logs_endpoint",
        "exporters::otlphttp::tls::cert_file",
        "exporters::otlphttp::tls::server_name_override",
        "exporters::otlphttp::headers::a b",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }

    let mut diags = Diagnostics::new();
    let value: serde_yaml::Value = serde_yaml::from_str(
        "{endpoint: 'http://c:4318', metrics_endpoint: 'http://c:4318/v1/metrics'}",
    )
    .unwrap();
    let cfg = decode_component::<Config>(&value, &ConfigPath::root(), &mut diags).unwrap();
    assert!(diags.is_empty(), "{diags}");
    assert_eq!(
        cfg.signal_url(SignalKind::Metrics, "v1/metrics").as_deref(),
        Some("http://c:4318/v1/metrics")
    );
    let only_metrics = decode("metrics_endpoint: https://m:4318/custom").unwrap();
    assert_eq!(
        only_metrics
            .signal_url(SignalKind::Metrics, "v1/metrics")
            .as_deref(),
        Some("https://m:4318/custom")
    );
    assert_eq!(
        only_metrics.signal_url(SignalKind::Traces, "v1/traces"),
        None
    );
}

#[test]
fn a_signal_without_a_url_fails_the_build() {
    let t = Telemetry::new();
    let cfg = decode("traces_endpoint: http://c:4318/v1/traces").unwrap();
    assert!(build(ctx(&t), &cfg, &[SignalKind::Traces]).is_ok());
    let err = build(ctx(&t), &cfg, &[SignalKind::Logs])
        .err()
        .expect("no logs URL")
        .to_string();
    assert!(err.contains("logs_endpoint"), "{err}");
}
