//! `weft-floor`: the "do nothing" reference of `make bench-compare` (issue 16).
//!
//! A tonic server on the same OTLP gRPC paths as Weft's receiver (traces, logs, metrics). It
//! takes each export request as raw bytes — tonic's buffer split off, as Weft's receiver takes
//! it — and answers an empty (OK) response without decoding it. Same HTTP/2 server, same
//! runtime, same machine: whatever it costs per span is what any gRPC collector written on this
//! stack pays before doing any work, so Weft's throughput per CPU-second as a share of the
//! floor's says how close Weft is to the limit, independent of the peer.
//!
//! `weft-floor --listen 127.0.0.1:4317` serves until SIGTERM or Ctrl-C.

#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::{Buf, Bytes};
use clap::Parser;
use tonic::codec::{
    BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder,
};
use tonic::codegen::{http, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{NamedService, UnaryService};

#[derive(Parser, Debug)]
#[command(
    name = "weft-floor",
    about = "Accepts OTLP gRPC exports as raw bytes and answers OK without decoding"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4317")]
    listen: SocketAddr,
}

/// The three export paths the floor answers.
const PATHS: [&str; 3] = [
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
];

/// Requests as the bytes received; responses as an empty message (every OTLP
/// Export*ServiceResponse with no partial success encodes to zero bytes).
struct FloorCodec;

impl Codec for FloorCodec {
    type Encode = ();
    type Decode = Bytes;
    type Encoder = EmptyEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> EmptyEncoder {
        EmptyEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

struct EmptyEncoder;

impl Encoder for EmptyEncoder {
    type Item = ();
    type Error = tonic::Status;
    fn encode(&mut self, _item: (), _dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        Ok(())
    }
    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The handler: drops the bytes, answers OK.
struct Accept;

impl UnaryService<Bytes> for Accept {
    type Response = ();
    type Future = std::future::Ready<Result<tonic::Response<()>, tonic::Status>>;
    fn call(&mut self, _request: tonic::Request<Bytes>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(())))
    }
}

/// One service per OTLP signal, told apart by `NamedService::NAME` only (tonic's router routes
/// by service name, then the path is checked here).
#[derive(Clone, Copy)]
struct Floor<const N: usize>;

impl NamedService for Floor<0> {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}
impl NamedService for Floor<1> {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}
impl NamedService for Floor<2> {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
}

impl<const N: usize, B> Service<http::Request<B>> for Floor<N>
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != PATHS[N] {
            return Box::pin(async {
                Ok(tonic::Status::unimplemented("only Export is served").into_http())
            });
        }
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(FloorCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(1 << 30);
            Ok(grpc.unary(Accept, req).await)
        })
    }
}

/// Serves the three export paths on `listener` until `shutdown` completes.
async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        // Weft's receiver lets clients send DATA frames of up to 1 MiB; the floor allows the
        // same, so that `floor_pct` compares work, not HTTP/2 settings.
        .max_frame_size(Some(1 << 20))
        .add_service(Floor::<0>)
        .add_service(Floor::<1>)
        .add_service(Floor::<2>)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
        .context("serving OTLP gRPC")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!("weft-floor ready grpc={}", args.listen);
    serve(listener, weft_benches::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
    use weft_proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
    use weft_proto::common::v1::AnyValue;
    use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    async fn call<Req, Resp>(
        grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
        path: &'static str,
        req: Req,
    ) -> Result<Resp, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        grpc.ready().await.expect("channel ready");
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        grpc.unary(
            tonic::Request::new(req),
            http::uri::PathAndQuery::from_static(path),
            codec,
        )
        .await
        .map(tonic::Response::into_inner)
    }

    #[tokio::test]
    async fn answers_every_export_ok_and_anything_else_unimplemented() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, async {
            let _ = stopped.await;
        }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);

        let spans = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "GET /".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let answer: ExportTraceServiceResponse = call(&mut grpc, PATHS[0], spans).await.unwrap();
        assert_eq!(answer, ExportTraceServiceResponse::default());

        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        body: Some(AnyValue::default()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let answer: ExportLogsServiceResponse = call(&mut grpc, PATHS[1], logs).await.unwrap();
        assert_eq!(answer, ExportLogsServiceResponse::default());

        // Bytes that are no protobuf are still accepted: the floor never decodes.
        let junk = weft_proto::common::v1::AnyValue {
            value: Some(weft_proto::common::v1::any_value::Value::StringValue(
                "not an export request".into(),
            )),
        };
        let answer: Result<ExportTraceServiceResponse, _> = call(&mut grpc, PATHS[0], junk).await;
        assert!(answer.is_ok(), "{answer:?}");

        let other: Result<ExportTraceServiceResponse, _> = call(
            &mut grpc,
            "/opentelemetry.proto.collector.trace.v1.TraceService/Other",
            ExportTraceServiceRequest::default(),
        )
        .await;
        assert_eq!(other.unwrap_err().code(), tonic::Code::Unimplemented);

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
