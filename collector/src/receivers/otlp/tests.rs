//! The receiver as a running component: real gRPC and HTTP servers on 127.0.0.1:0.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::Code;
use weft_config::{ComponentId, Kind};
use weft_proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use weft_proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use weft_proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use weft_proto::status::Status as RpcStatus;

use super::answer::{ProtoDuration, RetryInfo, RETRY_INFO_TYPE_URL};
use super::config::{AuthSettings, GrpcConfig, HttpConfig, OtlpReceiverConfig, Protocols};
use super::test_support::{logs, spans, Behaviour, TestConsumer};
use super::tls::test_certs::{pki, Pki};
use super::*;
use crate::component::SharedInstances;
use crate::pipeline::{ConsumeError, Consumer, Logs, Traces};

fn context(telemetry: &Telemetry) -> BuildContext {
    BuildContext::standalone("otlp", Kind::Receiver).with_telemetry(telemetry)
}

fn local() -> weft_config::Endpoint {
    weft_config::Endpoint::new("127.0.0.1", 0)
}

fn grpc_config(max_mib: u64) -> OtlpReceiverConfig {
    OtlpReceiverConfig {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: local(),
                max_recv_msg_size_mib: max_mib,
                ..GrpcConfig::default()
            }),
            http: None,
        },
        limits: Default::default(),
    }
}

/// A started receiver with test consumers for both signals.
struct Running {
    receiver: OtlpReceiver,
    telemetry: Telemetry,
    traces: Arc<TestConsumer<Traces>>,
}

async fn start(cfg: &OtlpReceiverConfig, behaviour: Behaviour, with_logs: bool) -> Running {
    let telemetry = Telemetry::new();
    let traces = Arc::new(TestConsumer::<Traces>::new(behaviour.clone()));
    let logs: Arc<TestConsumer<Logs>> = Arc::new(TestConsumer::new(behaviour));
    let mut consumers = Consumers::default().with::<Traces>(traces.clone());
    if with_logs {
        consumers.insert::<Logs>(logs);
    }
    let receiver = OtlpReceiver::new(context(&telemetry), cfg, consumers).unwrap();
    receiver.start().await.unwrap();
    Running {
        receiver,
        telemetry,
        traces,
    }
}

impl Running {
    async fn traces_client(&self) -> TraceServiceClient<tonic::transport::Channel> {
        let addr = self.receiver.grpc_address().unwrap();
        TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
    }

    fn grpc_counter(&self, name: &str) -> u64 {
        self.telemetry
            .counter_value(name, &[("receiver", "otlp"), ("transport", "grpc")])
    }

    async fn stop(&self) {
        self.receiver
            .shutdown(Instant::now() + Duration::from_secs(30))
            .await
            .unwrap();
    }
}

/// A trace export of about `bytes` bytes: one span with a long name (attribute values are
/// bounded on their own, see `weft_proto::limits`; a span name only by the message size).
fn big_request(bytes: usize) -> ExportTraceServiceRequest {
    let mut req = spans(1);
    req.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(bytes);
    req
}

/// Sends arbitrary bytes as the request message of `path`, as a broken client would.
async fn raw_call(
    addr: std::net::SocketAddr,
    path: &'static str,
    body: Bytes,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    #[derive(Default)]
    struct BytesCodec;
    struct BytesEncoder;
    impl Encoder for BytesEncoder {
        type Item = Bytes;
        type Error = tonic::Status;
        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            bytes::BufMut::put_slice(dst, &item);
            Ok(())
        }
    }
    impl Codec for BytesCodec {
        type Encode = Bytes;
        type Decode = ExportTraceServiceResponse;
        type Encoder = BytesEncoder;
        type Decoder = tonic_prost::ProstDecoder<ExportTraceServiceResponse>;
        fn encoder(&mut self) -> BytesEncoder {
            BytesEncoder
        }
        fn decoder(&mut self) -> Self::Decoder {
            tonic_prost::ProstDecoder::new(BufferSettings::default())
        }
    }
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        ::http::uri::PathAndQuery::from_static(path),
        BytesCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

fn retry_delay(status: &tonic::Status) -> Option<ProtoDuration> {
    let rpc = RpcStatus::decode(status.details()).ok()?;
    let any = rpc
        .details
        .iter()
        .find(|a| a.type_url == RETRY_INFO_TYPE_URL)?;
    RetryInfo::decode(&any.value[..]).ok()?.retry_delay
}

#[tokio::test]
async fn grpc_exports_are_accepted_plain_and_compressed() {
    let r = start(&grpc_config(4), Behaviour::Accept, true).await;
    let request = spans(2);
    r.traces_client()
        .await
        .export(request.clone())
        .await
        .unwrap();
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        r.traces_client()
            .await
            .send_compressed(encoding)
            .accept_compressed(encoding)
            .export(request.clone())
            .await
            .unwrap();
    }
    let addr = r.receiver.grpc_address().unwrap();
    let mut logs_client = LogsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    logs_client.export(logs(3)).await.unwrap();
    assert_eq!(
        r.traces.received(),
        vec![request.clone(), request.clone(), request]
    );
    assert_eq!(r.grpc_counter("otelcol_receiver_accepted_spans"), 6);
    assert_eq!(r.grpc_counter("otelcol_receiver_accepted_log_records"), 3);
    r.stop().await;
}

#[tokio::test]
async fn grpc_oversized_messages_are_resource_exhausted() {
    let r = start(&grpc_config(1), Behaviour::Accept, false).await;
    let request = big_request(1_200_000);
    let status = r
        .traces_client()
        .await
        .export(request.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("the limit is: 1048576 bytes")
            && status
                .message()
                .contains("max_recv_msg_size_mib allows 1 MiB"),
        "{}",
        status.message()
    );
    // Compressed small, but over the limit once decompressed.
    let status = r
        .traces_client()
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .export(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("1048576 bytes"),
        "{}",
        status.message()
    );
    // Just under the limit is accepted (and decoded on the blocking pool).
    r.traces_client()
        .await
        .export(big_request(1_000_000))
        .await
        .unwrap();
    assert_eq!(r.traces.received().len(), 1);
    r.stop().await;
}

#[tokio::test]
async fn grpc_bad_data_is_invalid_argument() {
    let r = start(&grpc_config(4), Behaviour::Accept, false).await;
    let addr = r.receiver.grpc_address().unwrap();
    let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    let status = raw_call(addr, path, Bytes::from_static(b"\xff\xff\xff\xff"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("cannot decode the body as a protobuf ExportTraceServiceRequest"),
        "{}",
        status.message()
    );

    let mut bad = spans(2);
    bad.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1, 2, 3];
    let status = r.traces_client().await.export(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "invalid ExportTraceServiceRequest: resource_spans[0].scope_spans[0].spans[1]: trace_id must be 16 bytes, got 3"
    );
    assert_eq!(r.grpc_counter("otelcol_receiver_refused_spans"), 2);
    assert!(r.traces.received().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn grpc_refusals_are_retryable_with_retry_info() {
    let rows = [
        (
            Behaviour::Unavailable(Duration::from_millis(1500)),
            Code::Unavailable,
            ProtoDuration {
                seconds: 1,
                nanos: 500_000_000,
            },
        ),
        (
            Behaviour::Exhausted(Duration::from_secs(4)),
            Code::ResourceExhausted,
            ProtoDuration {
                seconds: 4,
                nanos: 0,
            },
        ),
    ];
    for (behaviour, code, delay) in rows {
        let r = start(&grpc_config(4), behaviour, false).await;
        let status = r.traces_client().await.export(spans(3)).await.unwrap_err();
        assert_eq!(status.code(), code);
        assert_eq!(status.message(), "refused by the test consumer");
        assert_eq!(retry_delay(&status), Some(delay));
        assert_eq!(r.grpc_counter("otelcol_receiver_refused_spans"), 3);
        assert_eq!(r.grpc_counter("otelcol_receiver_accepted_spans"), 0);
        r.stop().await;
    }
    let r = start(&grpc_config(4), Behaviour::Permanent, false).await;
    let status = r.traces_client().await.export(spans(1)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(retry_delay(&status), None);
    r.stop().await;
}

#[tokio::test]
async fn a_signal_without_a_pipeline_is_unimplemented() {
    let r = start(&grpc_config(4), Behaviour::Accept, false).await;
    let addr = r.receiver.grpc_address().unwrap();
    let status = LogsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .export(logs(1))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    r.stop().await;
}

#[tokio::test]
async fn http_server_runs_next_to_grpc() {
    let cfg = OtlpReceiverConfig {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: local(),
                ..GrpcConfig::default()
            }),
            http: Some(HttpConfig {
                endpoint: local(),
                ..HttpConfig::default()
            }),
        },
        limits: Default::default(),
    };
    let r = start(&cfg, Behaviour::Accept, true).await;
    let addr = r.receiver.http_address().unwrap();
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(spans(1).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(r.traces.received().len(), 1);
    r.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_port_in_use_fails_the_start_naming_the_endpoint() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = OtlpReceiverConfig {
        protocols: Protocols {
            grpc: None,
            http: Some(HttpConfig {
                endpoint: weft_config::Endpoint::new("127.0.0.1", port),
                ..HttpConfig::default()
            }),
        },
        limits: Default::default(),
    };
    let telemetry = Telemetry::new();
    let consumers = Consumers::default()
        .with::<Traces>(Arc::new(TestConsumer::<Traces>::new(Behaviour::Accept)));
    let receiver = OtlpReceiver::new(context(&telemetry), &cfg, consumers).unwrap();
    let err = format!("{:#}", receiver.start().await.unwrap_err());
    assert!(
        err.contains(&format!("cannot listen for OTLP/HTTP on 127.0.0.1:{port}")),
        "{err}"
    );
}

/// Lets one call in and holds it until released.
struct Gate {
    entered: Semaphore,
    release: Semaphore,
}

#[async_trait]
impl Consumer<Traces> for Gate {
    async fn consume(&self, _data: Traces) -> Result<(), ConsumeError> {
        self.entered.add_permits(1);
        self.release.acquire().await.unwrap().forget();
        Ok(())
    }
}

async fn gated() -> (Arc<Gate>, OtlpReceiver) {
    let gate = Arc::new(Gate {
        entered: Semaphore::new(0),
        release: Semaphore::new(0),
    });
    let telemetry = Telemetry::new();
    let consumers = Consumers::default().with::<Traces>(gate.clone());
    let receiver = OtlpReceiver::new(context(&telemetry), &grpc_config(4), consumers).unwrap();
    receiver.start().await.unwrap();
    (gate, receiver)
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() {
    let (gate, receiver) = gated().await;
    let addr = receiver.grpc_address().unwrap();
    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let call = tokio::spawn(async move { client.export(spans(1)).await });
    gate.entered.acquire().await.unwrap().forget();

    let mut shutdown = Box::pin(receiver.shutdown(Instant::now() + Duration::from_secs(30)));
    // The first poll stops the servers; the call in flight keeps the shutdown waiting.
    assert!(futures::poll!(&mut shutdown).is_pending());
    gate.release.add_permits(1);
    assert!(call.await.unwrap().is_ok());
    shutdown.await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_at_the_deadline() {
    let (gate, receiver) = gated().await;
    let addr = receiver.grpc_address().unwrap();
    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let call = tokio::spawn(async move { client.export(spans(1)).await });
    gate.entered.acquire().await.unwrap().forget();
    // Not released before the deadline: the shutdown returns at its deadline anyway.
    let deadline = Instant::now() + Duration::from_secs(5);
    receiver.shutdown(deadline).await.unwrap();
    assert!(tokio::time::Instant::now() >= tokio::time::Instant::from_std(deadline));
    gate.release.add_permits(1);
    let _ = call.await.unwrap();
}

// ---- TLS, mTLS, bearer auth, slow clients -------------------------------------------------

/// Writes the test PKI into `dir`: ca.crt, server.crt/key, client.crt/key.
fn write_pki(dir: &Path, pki: &Pki) {
    for (name, pem) in [
        ("ca.crt", &pki.ca_pem),
        ("server.crt", &pki.server_cert_pem),
        ("server.key", &pki.server_key_pem),
        ("client.crt", &pki.client_cert_pem),
        ("client.key", &pki.client_key_pem),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
}

fn server_tls(dir: &Path, mtls: bool) -> TlsServerSettings {
    TlsServerSettings {
        cert_file: Some(dir.join("server.crt")),
        key_file: Some(dir.join("server.key")),
        client_ca_file: mtls.then(|| dir.join("ca.crt")),
        ..TlsServerSettings::default()
    }
}

fn both(grpc: GrpcConfig, http: HttpConfig) -> OtlpReceiverConfig {
    OtlpReceiverConfig {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: local(),
                ..grpc
            }),
            http: Some(HttpConfig {
                endpoint: local(),
                ..http
            }),
        },
        limits: Default::default(),
    }
}

async fn start_with(cfg: &OtlpReceiverConfig, shared: SharedInstances) -> Running {
    let telemetry = Telemetry::new();
    let traces = Arc::new(TestConsumer::<Traces>::new(Behaviour::Accept));
    let consumers = Consumers::default().with::<Traces>(traces.clone());
    let ctx = BuildContext {
        shared,
        ..context(&telemetry)
    };
    let receiver = OtlpReceiver::new(ctx, cfg, consumers).unwrap();
    receiver.start().await.unwrap();
    Running {
        receiver,
        telemetry,
        traces,
    }
}

/// A TLS gRPC client trusting the test CA, optionally presenting the client certificate.
async fn tls_channel(
    addr: std::net::SocketAddr,
    pki: &Pki,
    identity: bool,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            &pki.client_cert_pem,
            &pki.client_key_pem,
        ));
    }
    tonic::transport::Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// An HTTPS client trusting the test CA only, optionally presenting the client certificate.
fn https_client(pki: &Pki, identity: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap());
    if identity {
        let pem = format!("{}\n{}", pki.client_cert_pem, pki.client_key_pem);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn post_traces(
    client: &reqwest::Client,
    url: String,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(spans(1).encode_to_vec())
        .send()
        .await
}

#[tokio::test]
async fn tls_on_both_protocols_and_plaintext_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    write_pki(dir.path(), &pki);
    let cfg = both(
        GrpcConfig {
            tls: Some(server_tls(dir.path(), false)),
            ..GrpcConfig::default()
        },
        HttpConfig {
            tls: Some(server_tls(dir.path(), false)),
            ..HttpConfig::default()
        },
    );
    let r = start_with(&cfg, SharedInstances::default()).await;
    let grpc = r.receiver.grpc_address().unwrap();
    let http = r.receiver.http_address().unwrap();

    let channel = tls_channel(grpc, &pki, false).await.unwrap();
    TraceServiceClient::new(channel)
        .export(spans(2))
        .await
        .unwrap();
    let response = post_traces(
        &https_client(&pki, false),
        format!("https://{http}/v1/traces"),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(r.traces.received().len(), 2);

    // Plaintext on the TLS ports gets no answer.
    let plain = TraceServiceClient::connect(format!("http://{grpc}")).await;
    if let Ok(mut client) = plain {
        assert!(client.export(spans(1)).await.is_err());
    }
    assert!(
        post_traces(&reqwest::Client::new(), format!("http://{http}/v1/traces"))
            .await
            .is_err()
    );
    assert_eq!(r.traces.received().len(), 2);
    let failed = r.telemetry.counter_value(
        "weft_receiver_tls_handshakes_failed",
        &[("receiver", "otlp"), ("transport", "http")],
    );
    assert!(failed >= 1, "{failed}");
    r.stop().await;
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    write_pki(dir.path(), &pki);
    let cfg = both(
        GrpcConfig {
            tls: Some(server_tls(dir.path(), true)),
            ..GrpcConfig::default()
        },
        HttpConfig {
            tls: Some(server_tls(dir.path(), true)),
            ..HttpConfig::default()
        },
    );
    let r = start_with(&cfg, SharedInstances::default()).await;
    let grpc = r.receiver.grpc_address().unwrap();
    let url = format!("https://{}/v1/traces", r.receiver.http_address().unwrap());

    // Without a certificate: refused on both.
    if let Ok(channel) = tls_channel(grpc, &pki, false).await {
        assert!(TraceServiceClient::new(channel)
            .export(spans(1))
            .await
            .is_err());
    }
    assert!(post_traces(&https_client(&pki, false), url.clone())
        .await
        .is_err());
    // A certificate from another CA: refused too.
    let stranger = super::tls::test_certs::pki();
    let foreign = Pki {
        ca_pem: pki.ca_pem.clone(),
        client_cert_pem: stranger.client_cert_pem.clone(),
        client_key_pem: stranger.client_key_pem.clone(),
        ..stranger
    };
    assert!(post_traces(&https_client(&foreign, true), url.clone())
        .await
        .is_err());
    assert!(r.traces.received().is_empty());

    // With the client certificate: accepted on both.
    let channel = tls_channel(grpc, &pki, true).await.unwrap();
    TraceServiceClient::new(channel)
        .export(spans(1))
        .await
        .unwrap();
    let response = post_traces(&https_client(&pki, true), url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(r.traces.received().len(), 2);
    r.stop().await;
}

#[tokio::test]
async fn a_missing_certificate_fails_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = both(
        GrpcConfig::default(),
        HttpConfig {
            tls: Some(server_tls(dir.path(), false)),
            ..HttpConfig::default()
        },
    );
    let telemetry = Telemetry::new();
    let consumers = Consumers::default()
        .with::<Traces>(Arc::new(TestConsumer::<Traces>::new(Behaviour::Accept)));
    let receiver = OtlpReceiver::new(context(&telemetry), &cfg, consumers).unwrap();
    let e = format!("{:#}", receiver.start().await.unwrap_err());
    assert!(
        e.starts_with("receivers::otlp::protocols::http::tls::cert_file: cannot read ")
            && e.contains("server.crt"),
        "{e}"
    );
    // Nothing was left listening.
    assert!(receiver.grpc_address().is_none());
}

/// Builds and starts a real `bearertokenauth` extension with `token`.
async fn bearer_extension(shared: &SharedInstances, token: &str) -> Arc<dyn Component> {
    let factory = crate::extensions::bearertokenauth::factory();
    let value: serde_yaml::Value = serde_yaml::from_str(&format!("token: {token}")).unwrap();
    let mut diags = weft_config::Diagnostics::new();
    let cfg = factory
        .info
        .decode(&value, &weft_config::ConfigPath::root(), &mut diags)
        .unwrap();
    let ctx = BuildContext {
        id: ComponentId::new("bearertokenauth", None),
        kind: Kind::Extension,
        telemetry: Telemetry::new(),
        health: Health::default(),
        shared: shared.clone(),
    };
    let ext = factory.build(ctx, &cfg).unwrap();
    ext.start().await.unwrap();
    ext
}

fn with_auth() -> Option<AuthSettings> {
    serde_yaml::from_str("authenticator: bearertokenauth").unwrap()
}

#[tokio::test]
async fn bearer_auth_on_both_protocols() {
    let shared = SharedInstances::default();
    let _ext = bearer_extension(&shared, "s3cret").await;
    let cfg = both(
        GrpcConfig {
            auth: with_auth(),
            ..GrpcConfig::default()
        },
        HttpConfig {
            auth: with_auth(),
            ..HttpConfig::default()
        },
    );
    let r = start_with(&cfg, shared).await;
    let grpc = r.receiver.grpc_address().unwrap();
    let http = r.receiver.http_address().unwrap();

    for token in [None, Some("Bearer wrong"), Some("s3cret")] {
        let mut request = tonic::Request::new(spans(1));
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", token.parse().unwrap());
        }
        let status = TraceServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap()
            .export(request)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
        assert!(!status.message().contains("wrong"), "{}", status.message());

        let mut post = reqwest::Client::new()
            .post(format!("http://{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(spans(1).encode_to_vec());
        if let Some(token) = token {
            post = post.header("authorization", token);
        }
        let response = post.send().await.unwrap();
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    assert!(r.traces.received().is_empty());
    for transport in ["grpc", "http"] {
        let refused = r.telemetry.counter_value(
            "weft_receiver_requests_refused",
            &[
                ("receiver", "otlp"),
                ("transport", transport),
                ("reason", "unauthenticated"),
            ],
        );
        assert_eq!(refused, 3, "{transport}");
    }

    let mut request = tonic::Request::new(spans(1));
    request
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    TraceServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap()
        .export(request)
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .header("authorization", "Bearer s3cret")
        .body(spans(1).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(r.traces.received().len(), 2);
    r.stop().await;
}

#[tokio::test]
async fn an_authenticator_that_is_not_running_fails_the_build() {
    let cfg = both(
        GrpcConfig {
            auth: with_auth(),
            ..GrpcConfig::default()
        },
        HttpConfig::default(),
    );
    let telemetry = Telemetry::new();
    let consumers = Consumers::default()
        .with::<Traces>(Arc::new(TestConsumer::<Traces>::new(Behaviour::Accept)));
    let e = OtlpReceiver::new(context(&telemetry), &cfg, consumers)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "receivers::otlp::protocols::grpc::auth::authenticator: extension \"bearertokenauth\" is not running or is not an authenticator: define it under extensions and list it in service::extensions (Weft's authenticator is bearertokenauth)"
    );
}

fn http_only(http: HttpConfig) -> OtlpReceiverConfig {
    OtlpReceiverConfig {
        protocols: Protocols {
            grpc: None,
            http: Some(HttpConfig {
                endpoint: local(),
                ..http
            }),
        },
        limits: Default::default(),
    }
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

const REQUEST_HEAD: &str =
    "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n";

#[tokio::test(start_paused = true)]
async fn slow_headers_are_cut_off_at_read_header_timeout() {
    let cfg = http_only(HttpConfig {
        read_header_timeout: weft_config::Duration::from_secs(5),
        ..HttpConfig::default()
    });
    let r = start_with(&cfg, SharedInstances::default()).await;
    let addr = r.receiver.http_address().unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Byte by byte, one a second: never done within 5 s.
    let start = tokio::time::Instant::now();
    for b in REQUEST_HEAD.bytes() {
        if slow.write_all(&[b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::ZERO, slow.read(&mut probe)).await {
            break;
        }
    }
    let answer = read_to_close(&mut slow).await;
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    assert!(tokio::time::Instant::now() - start < Duration::from_secs(10));
    // Others are still served.
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(spans(1).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed_at_idle_timeout() {
    let cfg = http_only(HttpConfig {
        read_header_timeout: weft_config::Duration::from_secs(600),
        idle_timeout: weft_config::Duration::from_secs(5),
        ..HttpConfig::default()
    });
    let r = start_with(&cfg, SharedInstances::default()).await;
    let addr = r.receiver.http_address().unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = spans(1).encode_to_vec();
    conn.write_all(format!("{REQUEST_HEAD}Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    conn.write_all(&body).await.unwrap();
    let answered_at = tokio::time::Instant::now();
    let answer = read_to_close(&mut conn).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let waited = tokio::time::Instant::now() - answered_at;
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(600),
        "{waited:?}"
    );
    assert_eq!(r.traces.received().len(), 1);
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_grpc_connection_without_a_handshake_is_closed() {
    let cfg = OtlpReceiverConfig {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: local(),
                handshake_timeout: weft_config::Duration::from_secs(3),
                ..GrpcConfig::default()
            }),
            http: None,
        },
        limits: Default::default(),
    };
    let r = start_with(&cfg, SharedInstances::default()).await;
    let addr = r.receiver.grpc_address().unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connected_at = tokio::time::Instant::now();
    // The server's own SETTINGS may arrive; then the connection is closed.
    let _ = read_to_close(&mut silent).await;
    let waited = tokio::time::Instant::now() - connected_at;
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    // A real client still gets through.
    r.traces_client().await.export(spans(1)).await.unwrap();
    r.stop().await;
}

#[tokio::test]
async fn grpc_connections_over_the_cap_are_refused() {
    let cfg = OtlpReceiverConfig {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: local(),
                max_connections: 1,
                ..GrpcConfig::default()
            }),
            http: None,
        },
        limits: Default::default(),
    };
    let r = start_with(&cfg, SharedInstances::default()).await;
    let mut first = r.traces_client().await;
    first.export(spans(1)).await.unwrap();
    // The one slot is taken by `first`: another connection is closed at once.
    let addr = r.receiver.grpc_address().unwrap();
    let second = TraceServiceClient::connect(format!("http://{addr}")).await;
    if let Ok(mut second) = second {
        assert!(second.export(spans(1)).await.is_err());
    }
    assert!(r.grpc_counter("weft_receiver_connections_refused") >= 1);
    // The first connection is still served.
    first.export(spans(1)).await.unwrap();
    assert_eq!(r.traces.received().len(), 2);
    r.stop().await;
}
