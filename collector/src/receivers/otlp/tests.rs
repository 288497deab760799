//! The receiver as a running component: real gRPC and HTTP servers on 127.0.0.1:0.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use tokio::sync::Semaphore;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::Code;
use weft_config::{ComponentId, Kind};
use weft_proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use weft_proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use weft_proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::status::Status as RpcStatus;

use super::answer::{ProtoDuration, RetryInfo, RETRY_INFO_TYPE_URL};
use super::config::{GrpcConfig, HttpConfig, OtlpReceiverConfig, Protocols};
use super::test_support::{logs, spans, Behaviour, TestConsumer};
use super::*;
use crate::pipeline::{ConsumeError, Consumer};

fn context(telemetry: &Telemetry) -> BuildContext {
    BuildContext {
        id: ComponentId::new("otlp", None),
        kind: Kind::Receiver,
        telemetry: telemetry.clone(),
        health: Health::default(),
        shared: Default::default(),
    }
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
    let consumers = ReceiverConsumers {
        traces: Some(traces.clone()),
        logs: with_logs.then_some(logs as Arc<dyn Consumer<Logs>>),
    };
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

/// A trace export of about `bytes` bytes: one span with a large attribute.
fn big_request(bytes: usize) -> ExportTraceServiceRequest {
    let mut req = spans(1);
    req.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(KeyValue {
            key: "payload".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(bytes))),
            }),
            ..Default::default()
        });
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
    };
    let telemetry = Telemetry::new();
    let consumers = ReceiverConsumers {
        traces: Some(Arc::new(TestConsumer::<Traces>::new(Behaviour::Accept))),
        logs: None,
    };
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
    let consumers = ReceiverConsumers {
        traces: Some(gate.clone()),
        logs: None,
    };
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
