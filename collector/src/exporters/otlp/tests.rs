//! The `otlp` exporter against a real tonic OTLP server in the same process.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Status};
use weft_config::{decode_component, ConfigPath, Diagnostics, Kind, SignalKind};
use weft_proto::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use weft_proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use weft_proto::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use weft_proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::exporters::helper::Retry;
use crate::pipeline::ConsumeError;
use crate::pipeline::{Logs, Traces};

/// A trace and logs backend answering each trace export with the next scripted answer
/// (then OK), and recording what it received.
#[derive(Default)]
struct Backend {
    answers: Mutex<VecDeque<Result<ExportTraceServiceResponse, Status>>>,
    traces: Mutex<Vec<(tonic::metadata::MetadataMap, ExportTraceServiceRequest)>>,
    logs: Mutex<Vec<ExportLogsServiceRequest>>,
}

#[derive(Clone)]
struct Svc(Arc<Backend>);

#[async_trait::async_trait]
impl TraceService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        self.0.traces.lock().push((metadata, request.into_inner()));
        let answer = self.0.answers.lock().pop_front();
        answer
            .unwrap_or(Ok(Default::default()))
            .map(tonic::Response::new)
    }
}

#[async_trait::async_trait]
impl LogsService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        self.0.logs.lock().push(request.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

/// Serves `backend` on 127.0.0.1 (gzip and zstd accepted) until the test's runtime ends.
async fn serve(
    answers: Vec<Result<ExportTraceServiceResponse, Status>>,
) -> (SocketAddr, Arc<Backend>) {
    let backend = Arc::new(Backend::default());
    *backend.answers.lock() = answers.into();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = Svc(backend.clone());
    let server = tonic::transport::Server::builder()
        .add_service(
            TraceServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd),
        )
        .add_service(LogsServiceServer::new(svc).accept_compressed(CompressionEncoding::Gzip))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);
    (addr, backend)
}

fn decode(yaml: &str) -> Result<Config, Diagnostics> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("otlp");
    match decode_component::<Config>(&value, &path, &mut diags) {
        Some(c) if !diags.has_errors() => Ok(c),
        _ => Err(diags),
    }
}

/// Plaintext to `addr`, fast deterministic retries, no queue (so `consume` reports the outcome).
fn config(addr: SocketAddr, extra: &str) -> Config {
    decode(&format!(
        "endpoint: {addr}
tls: {{insecure: true}}
sending_queue: {{enabled: false}}
retry_on_failure: {{initial_interval: 10ms, max_interval: 10ms, randomization_factor: 0, max_elapsed_time: 10s}}
{extra}"
    ))
    .unwrap_or_else(|d| panic!("{d}"))
}

fn ctx(t: &Telemetry) -> BuildContext {
    BuildContext::standalone("otlp", Kind::Exporter).with_telemetry(t)
}

fn traces(n: usize) -> Traces {
    Traces::from(
        weft_proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..n)
                        .map(|i| Span {
                            trace_id: vec![7; 16],
                            span_id: vec![i as u8 + 1; 8],
                            name: format!("span-{i}"),
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
    t.counter_value(name, &[("exporter", "otlp")])
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

/// A `grpc-status-details-bin` payload carrying a RetryInfo with `delay`.
fn retry_info_details(delay: Duration) -> bytes::Bytes {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    let status = weft_proto::status::Status {
        code: Code::ResourceExhausted as i32,
        message: "slow down".into(),
        details: vec![weft_proto::status::Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        }],
    };
    status.encode_to_vec().into()
}

#[tokio::test]
async fn unavailable_is_retried_until_ok() {
    let (addr, backend) = serve(vec![Err(Status::unavailable("restarting"))]).await;
    let t = Telemetry::new();
    export_traces(&config(addr, ""), &t, traces(3))
        .await
        .expect("delivered on the second attempt");
    assert_eq!(backend.traces.lock().len(), 2);
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 3);
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 0);
}

#[tokio::test]
async fn resource_exhausted_without_retry_info_is_not_retried() {
    let (addr, backend) = serve(vec![Err(Status::resource_exhausted("quota"))]).await;
    let t = Telemetry::new();
    let err = export_traces(&config(addr, ""), &t, traces(2))
        .await
        .expect_err("permanent");
    assert!(
        matches!(&err, ConsumeError::Permanent(m) if m.contains("quota")),
        "{err:?}"
    );
    assert_eq!(backend.traces.lock().len(), 1);
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 2);
}

#[tokio::test]
async fn resource_exhausted_with_retry_info_is_retried() {
    let details = retry_info_details(Duration::from_millis(20));
    let (addr, backend) = serve(vec![Err(Status::with_details(
        Code::ResourceExhausted,
        "slow down",
        details,
    ))])
    .await;
    let t = Telemetry::new();
    export_traces(&config(addr, ""), &t, traces(1))
        .await
        .expect("retried after the RetryInfo delay");
    assert_eq!(backend.traces.lock().len(), 2);
}

#[tokio::test]
async fn invalid_argument_is_permanent() {
    let (addr, backend) = serve(vec![Err(Status::invalid_argument("span id is 3 bytes"))]).await;
    let t = Telemetry::new();
    let err = export_traces(&config(addr, ""), &t, traces(1))
        .await
        .expect_err("permanent");
    assert!(err.to_string().contains("span id is 3 bytes"), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(backend.traces.lock().len(), 1);
}

#[tokio::test]
async fn partial_success_is_counted_and_not_retried() {
    let (addr, backend) = serve(vec![Ok(ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 2,
            error_message: "2 spans too old".into(),
        }),
    })])
    .await;
    let t = Telemetry::new();
    export_traces(&config(addr, ""), &t, traces(5))
        .await
        .unwrap();
    assert_eq!(backend.traces.lock().len(), 1);
    assert_eq!(
        counter(&t, "otelcol_exporter_partial_success_rejected_spans"),
        2
    );
}

#[tokio::test]
async fn headers_arrive_as_metadata_and_gzip_is_used() {
    let (addr, backend) = serve(vec![]).await;
    let t = Telemetry::new();
    let data = traces(2);
    let cfg = config(
        addr,
        "headers: {x-tenant: acme, authorization: Bearer s3cret}",
    );
    export_traces(&cfg, &t, data.clone()).await.unwrap();
    let seen = backend.traces.lock();
    let (metadata, received) = &seen[0];
    assert_eq!(received, &*data.request(), "the request arrives intact");
    assert_eq!(metadata.get("x-tenant").unwrap(), "acme");
    assert_eq!(metadata.get("authorization").unwrap(), "Bearer s3cret");
    assert_eq!(metadata.get("grpc-encoding").unwrap(), "gzip");
    assert!(metadata
        .get("user-agent")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("weft/"));
}

#[tokio::test]
async fn zstd_and_no_compression_are_honoured() {
    let (addr, backend) = serve(vec![]).await;
    let t = Telemetry::new();
    export_traces(&config(addr, "compression: zstd"), &t, traces(1))
        .await
        .unwrap();
    export_traces(&config(addr, "compression: none"), &t, traces(1))
        .await
        .unwrap();
    let seen = backend.traces.lock();
    assert_eq!(seen[0].0.get("grpc-encoding").unwrap(), "zstd");
    assert!(seen[1].0.get("grpc-encoding").is_none());
}

#[tokio::test]
async fn logs_go_to_the_logs_service() {
    let (addr, backend) = serve(vec![]).await;
    let t = Telemetry::new();
    let built = build(ctx(&t), &config(addr, ""), &[SignalKind::Logs]).unwrap();
    assert!(built.consumers.get::<Traces>().is_none());
    built.component.start().await.unwrap();
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 4],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    built
        .consumers
        .get::<Logs>()
        .unwrap()
        .consume(logs.clone().into())
        .await
        .unwrap();
    built
        .component
        .shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(backend.logs.lock().as_slice(), &[logs]);
    assert_eq!(counter(&t, "otelcol_exporter_sent_log_records"), 4);
}

#[tokio::test]
async fn an_unreachable_backend_is_retryable_and_does_not_fail_start() {
    // A port nobody listens on: bind, note it, close it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let t = Telemetry::new();
    let cfg = decode(&format!(
        "{{endpoint: '{addr}', tls: {{insecure: true}}, sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}"
    ))
    .unwrap();
    let err = export_traces(&cfg, &t, traces(1))
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(err, ConsumeError::Refused { .. }),
        "a connection failure is retryable: {err:?}"
    );
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 1);
}

#[test]
fn status_codes_map_as_the_otlp_spec_says() {
    for code in [
        Code::Cancelled,
        Code::DeadlineExceeded,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unavailable,
        Code::DataLoss,
    ] {
        let e = map_status(&Status::new(code, "x"), "backend:4317");
        assert_eq!(e.retry, Retry::Backoff, "{code:?}");
    }
    for code in [
        Code::Unknown,
        Code::InvalidArgument,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Unimplemented,
        Code::Internal,
        Code::Unauthenticated,
    ] {
        let e = map_status(&Status::new(code, "x"), "backend:4317");
        assert_eq!(e.retry, Retry::Never, "{code:?}");
    }
    // RetryInfo makes RESOURCE_EXHAUSTED retryable, and sets the delay of any retryable code.
    let delay = Duration::from_millis(1500);
    for code in [Code::ResourceExhausted, Code::Unavailable] {
        let status = Status::with_details(code, "slow down", retry_info_details(delay));
        let e = map_status(&status, "backend:4317");
        assert_eq!(e.retry, Retry::After(delay), "{code:?}");
        assert!(e.message.contains("backend:4317") && e.message.contains("slow down"));
    }
    // RetryInfo on a permanent code changes nothing.
    let status = Status::with_details(Code::InvalidArgument, "bad", retry_info_details(delay));
    assert_eq!(map_status(&status, "b").retry, Retry::Never);
}

#[test]
fn endpoint_forms_and_tls_decision_follow_the_collector() {
    let target = |yaml: &str| decode(yaml).unwrap().target().unwrap();
    // Bare host:port with the default tls (insecure: false) means TLS.
    assert_eq!(
        target("endpoint: jaeger:4317"),
        Target {
            authority: "jaeger:4317".into(),
            tls: true
        }
    );
    assert!(!target("{endpoint: 'jaeger:4317', tls: {insecure: true}}").tls);
    assert!(!target("{endpoint: 'http://jaeger:4317', tls: {insecure: true}}").tls);
    assert!(target("endpoint: http://jaeger:4317").tls);
    // https:// always means TLS; the scheme is stripped.
    let t = target("{endpoint: 'https://otel.example.com:443', tls: {insecure: true}}");
    assert_eq!(t.authority, "otel.example.com:443");
    assert!(t.tls);
    assert_eq!(t.uri(), "https://otel.example.com:443");
    assert_eq!(target("endpoint: '[::1]:4317'").authority, "[::1]:4317");
}

#[test]
fn defaults_are_the_collectors() {
    let c = decode("endpoint: jaeger:4317").unwrap();
    assert_eq!(c.timeout.get(), Duration::from_secs(5));
    assert_eq!(c.compression, Compression::Gzip);
    assert!(!c.tls.insecure);
    assert!(c.sending_queue.enabled);
    assert_eq!(c.sending_queue.queue_size, 1000);
    assert_eq!(c.sending_queue.num_consumers, 10);
    assert!(c.retry_on_failure.enabled);
    assert_eq!(
        c.retry_on_failure.initial_interval.get(),
        Duration::from_secs(5)
    );
    assert_eq!(
        c.retry_on_failure.max_interval.get(),
        Duration::from_secs(30)
    );
    assert_eq!(
        c.retry_on_failure.max_elapsed_time.get(),
        Duration::from_secs(300)
    );
}

#[test]
fn every_config_problem_is_reported_with_its_path() {
    let diags = decode(
        "endpoint: jaeger
tls: {cert_file: /etc/weft/client.pem}
headers: {'bad header': x}
sending_queue: {queue_size: 0}
retry_on_failure: {multiplier: 0.5}",
    )
    .unwrap_err();
    let text = diags.to_string();
    for expected in [
        "exporters::otlp::endpoint: \"jaeger\" has no port",
        "exporters::otlp::tls::key_file",
        "exporters::otlp::headers::bad header",
        "exporters::otlp::sending_queue::queue_size",
        "exporters::otlp::retry_on_failure::multiplier",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert_eq!(diags.errors().count(), 5, "{text}");

    let missing = decode("tls: {insecure: true}").unwrap_err().to_string();
    assert!(
        missing.contains("exporters::otlp::endpoint: required"),
        "{missing}"
    );
    let typo = decode("{endpoint: 'a:1', compresion: gzip}")
        .unwrap_err()
        .to_string();
    assert!(typo.contains("unknown field \"compresion\""), "{typo}");
    let bad = decode("{endpoint: 'a:1', compression: snappy}")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("snappy"), "{bad}");
}

#[tokio::test]
async fn tls_settings_are_loaded_at_build() {
    let t = Telemetry::new();
    // The default: TLS with the system's roots (or, on a system without any, an error
    // that says what to set).
    let cfg = decode("endpoint: otel.example.com:4317").unwrap();
    if let Err(e) = build(ctx(&t), &cfg, &[SignalKind::Traces]) {
        assert!(e.to_string().contains("tls::ca_file"), "{e}");
    }
    // Skipping verification builds without any CA.
    let cfg =
        decode("{endpoint: 'otel.example.com:4317', tls: {insecure_skip_verify: true}}").unwrap();
    assert!(build(ctx(&t), &cfg, &[SignalKind::Traces]).is_ok());
    // A missing CA file fails the build and says which key and file.
    let cfg =
        decode("{endpoint: 'otel.example.com:4317', tls: {ca_file: /nonexistent/ca.pem}}").unwrap();
    let err = build(ctx(&t), &cfg, &[SignalKind::Traces])
        .err()
        .expect("no such file")
        .to_string();
    assert!(
        err.contains("tls::ca_file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}
