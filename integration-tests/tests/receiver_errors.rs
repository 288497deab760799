//! The `otlp` receiver's error answers, against the real `weft` binary: one test per row of
//! the table in the receiver's documentation, each followed by a valid request that must
//! still succeed, and one test running every row against a single process.
//!
//! The retryable answers (503/429 with Retry-After, UNAVAILABLE/RESOURCE_EXHAUSTED with
//! RetryInfo) need a pipeline that refuses on purpose; they are covered by the receiver's
//! unit tests (`collector/src/receivers/otlp`).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::OnceLock;

use bytes_codec::raw_export;
use prost::Message;
use reqwest::StatusCode;
use tonic::codec::CompressionEncoding;
use tonic::Code;
use weft_integration_tests::{free_port, Weft};
use weft_proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::otlp_json;
use weft_proto::status::{code, Status as RpcStatus};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// The receiver's default `max_request_body_size`.
const BODY_LIMIT: usize = 20 * 1024 * 1024;
/// What weft may use at its peak while refusing a gzip bomb.
const RSS_BOUND: u64 = 200 * 1024 * 1024;

/// A running weft with the receiver's default limits, OTLP in and `debug` out.
struct Running {
    weft: Weft,
    grpc: SocketAddr,
    http: SocketAddr,
}

impl Running {
    fn start() -> Self {
        let grpc: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let config = format!(
            r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {grpc}
      http:
        endpoint: {http}
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
    logs:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    metrics:
      level: none
"#
        );
        let weft = Weft::start(&config, &[grpc, http]).expect("weft starts");
        Self { weft, grpc, http }
    }

    fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    fn peak_rss(&self) -> u64 {
        self.weft.peak_rss_bytes().expect("VmHWM of weft")
    }
}

fn spans(n: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![0xab; 16],
            span_id: vec![i as u8 + 1; 8],
            name: format!("span-{i}"),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn log_records(n: usize) -> ExportLogsServiceRequest {
    let log_records = (0..n)
        .map(|i| LogRecord {
            severity_text: format!("INFO-{i}"),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A trace export of a little over `bytes` bytes.
fn big_spans(bytes: usize) -> ExportTraceServiceRequest {
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

fn short_trace_id() -> ExportTraceServiceRequest {
    let mut req = spans(2);
    req.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1, 2, 3];
    req
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// 1 GiB of zeros as one gzip member (about 1 MB).
fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| gzip_zeros(1024))
}

/// `mib` MiB of zeros as one valid gzip member, streamed chunk by chunk without compressing
/// every chunk: after a full flush the compressor forgets its history, so each MiB of zeros
/// compresses to the same bytes, which are repeated; the CRC-32 is combined arithmetically.
/// (Compressing 1 GiB for real takes half a minute in a debug build.)
fn gzip_zeros(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, Crc, FlushCompress};

    fn deflate(c: &mut Compress, input: &[u8], flush: FlushCompress) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        let start = c.total_in();
        loop {
            let consumed = (c.total_in() - start) as usize;
            let status = c
                .compress_vec(&input[consumed..], &mut out, flush)
                .expect("deflate");
            let done = (c.total_in() - start) as usize == input.len();
            if done && (status == flate2::Status::StreamEnd || out.len() < out.capacity()) {
                return out;
            }
            out.reserve(out.capacity());
        }
    }

    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let chunk = deflate(&mut c, &zeros, FlushCompress::Full);
    let again = deflate(&mut c, &zeros, FlushCompress::Full);
    assert_eq!(
        chunk, again,
        "after a full flush every MiB compresses alike"
    );
    let end = deflate(&mut c, &[], FlushCompress::Finish);

    // RFC 1952: magic, deflate, no flags, no mtime, no extra flags, unknown OS.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut crc = Crc::new();
    let mut one = Crc::new();
    one.update(&zeros);
    for _ in 0..mib {
        out.extend_from_slice(&chunk);
        crc.combine(&one);
    }
    out.extend_from_slice(&end);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    let size = (mib as u64) << 20;
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out
}

#[test]
fn the_bomb_is_valid_gzip() {
    use std::io::Read;
    let small = gzip_zeros(3);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&small[..])
        .read_to_end(&mut out)
        .expect("valid gzip, checksum included");
    assert_eq!(out.len(), 3 << 20);
    assert!(out.iter().all(|&b| b == 0));
}

/// An HTTP answer with its `google.rpc.Status` body decoded by its Content-Type.
struct Reply {
    status: StatusCode,
    content_type: String,
    allow: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn rpc(&self) -> RpcStatus {
        match self.content_type.as_str() {
            PROTOBUF => RpcStatus::decode(&self.body[..]).expect("a protobuf google.rpc.Status"),
            JSON => otlp_json::decode_status(&self.body).expect("a JSON google.rpc.Status"),
            other => panic!("unexpected Content-Type {other:?}"),
        }
    }

    /// Asserts an error answer: status, body encoding, code and a piece of the message.
    fn assert_error(&self, status: u16, content_type: &str, rpc_code: i32, text: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {:?}", self.body);
        assert_eq!(self.content_type, content_type);
        let rpc = self.rpc();
        assert_eq!(rpc.code, rpc_code, "{rpc:?}");
        assert!(
            rpc.message.contains(text),
            "{:?} should contain {text:?}",
            rpc.message
        );
    }
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("an HTTP answer");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let allow = header("allow");
    let status = response.status();
    let body = response.bytes().await.expect("the answer's body").to_vec();
    Reply {
        status,
        content_type,
        allow,
        body,
    }
}

async fn post(
    w: &Running,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut request = reqwest::Client::new()
        .post(w.http_url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    send(request).await
}

async fn traces_client(w: &Running) -> TraceServiceClient<tonic::transport::Channel> {
    TraceServiceClient::connect(w.grpc_url())
        .await
        .expect("connect to weft's gRPC endpoint")
}

/// A request with nothing wrong succeeds over both transports and both signals.
async fn still_serves(w: &Running) {
    if let Err(status) = traces_client(w).await.export(spans(3)).await {
        panic!(
            "a valid gRPC trace export was refused: {status:?}\n--- weft log ---\n{}",
            w.weft.log()
        );
    }
    LogsServiceClient::connect(w.grpc_url())
        .await
        .unwrap()
        .export(log_records(2))
        .await
        .expect("a valid gRPC logs export is accepted");
    let reply = post(w, "/v1/traces", PROTOBUF, None, spans(2).encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, PROTOBUF);
    let reply = post(
        w,
        "/v1/logs",
        JSON,
        None,
        otlp_json::encode_logs(&log_records(1)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, JSON);
    assert_eq!(reply.body, b"{}");
}

// ---- the rows ----

async fn grpc_oversized_message(w: &Running) {
    let status = traces_client(w)
        .await
        .export(big_spans(5 * 1024 * 1024))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("4194304"),
        "the message names the limit: {}",
        status.message()
    );
}

async fn grpc_undecodable(w: &Running) {
    let status = raw_export(w.grpc_url(), b"\xff\xff\xff\xff\xff".to_vec())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("cannot decode"),
        "{}",
        status.message()
    );
}

async fn grpc_short_trace_id(w: &Running) {
    let status = traces_client(w)
        .await
        .export(short_trace_id())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("trace_id must be 16 bytes, got 3"),
        "{}",
        status.message()
    );
}

async fn grpc_gzip_accepted(w: &Running) {
    traces_client(w)
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .export(spans(1))
        .await
        .expect("a gzip-compressed gRPC export is accepted");
}

async fn http_undecodable_protobuf(w: &Running) {
    let reply = post(w, "/v1/traces", PROTOBUF, None, b"\xff\xff\xff".to_vec()).await;
    reply.assert_error(400, PROTOBUF, code::INVALID_ARGUMENT, "cannot decode");
}

async fn http_undecodable_json(w: &Running) {
    let reply = post(w, "/v1/logs", JSON, None, b"{\"resourceLogs\": [".to_vec()).await;
    reply.assert_error(400, JSON, code::INVALID_ARGUMENT, "cannot decode");
}

async fn http_invalid_id(w: &Running) {
    let reply = post(
        w,
        "/v1/traces",
        PROTOBUF,
        None,
        short_trace_id().encode_to_vec(),
    )
    .await;
    reply.assert_error(400, PROTOBUF, code::INVALID_ARGUMENT, "trace_id");
    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"010203","spanId":"0102030405060708"}]}]}]}"#;
    let reply = post(w, "/v1/traces", JSON, None, json.as_bytes().to_vec()).await;
    reply.assert_error(400, JSON, code::INVALID_ARGUMENT, "traceId");
}

async fn http_unsupported_media_type(w: &Running) {
    let reply = post(w, "/v1/traces", "text/plain", None, b"hello".to_vec()).await;
    reply.assert_error(
        415,
        JSON,
        code::INVALID_ARGUMENT,
        "unsupported Content-Type",
    );
}

async fn http_method_not_allowed(w: &Running) {
    let reply = send(
        reqwest::Client::new()
            .get(w.http_url("/v1/traces"))
            .header("content-type", PROTOBUF),
    )
    .await;
    reply.assert_error(
        405,
        PROTOBUF,
        code::UNIMPLEMENTED,
        "method GET is not allowed",
    );
    assert_eq!(reply.allow.as_deref(), Some("POST"));
}

async fn http_not_found(w: &Running) {
    let reply = post(w, "/v1/metrics", JSON, None, b"{}".to_vec()).await;
    reply.assert_error(
        404,
        JSON,
        code::NOT_FOUND,
        "nothing is served at /v1/metrics",
    );
}

async fn http_unknown_encoding(w: &Running) {
    let reply = post(
        w,
        "/v1/traces",
        PROTOBUF,
        Some("br"),
        spans(1).encode_to_vec(),
    )
    .await;
    reply.assert_error(
        400,
        PROTOBUF,
        code::INVALID_ARGUMENT,
        "Content-Encoding \"br\"",
    );
}

async fn http_compressed_accepted(w: &Running) {
    let raw = spans(2).encode_to_vec();
    let deflate = {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&raw).unwrap();
        e.finish().unwrap()
    };
    let zstd = zstd::encode_all(&raw[..], 3).unwrap();
    for (encoding, body) in [("gzip", gzip(&raw)), ("zstd", zstd), ("deflate", deflate)] {
        let reply = post(w, "/v1/traces", PROTOBUF, Some(encoding), body).await;
        assert_eq!(reply.status, StatusCode::OK, "{encoding}: {:?}", reply.body);
    }
    let json = otlp_json::encode_logs(&log_records(3));
    let reply = post(w, "/v1/logs", JSON, Some("gzip"), gzip(&json)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, b"{}");
}

async fn http_body_over_the_limit(w: &Running) {
    let reply = post(w, "/v1/traces", PROTOBUF, None, vec![0u8; BODY_LIMIT + 1]).await;
    reply.assert_error(
        413,
        PROTOBUF,
        code::RESOURCE_EXHAUSTED,
        "larger than max_request_body_size (20971520 bytes)",
    );
}

async fn http_gzip_bomb(w: &Running) {
    let bomb = gzip_bomb().to_vec();
    assert!(
        bomb.len() < 2 << 20,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    let reply = post(w, "/v1/traces", PROTOBUF, Some("gzip"), bomb).await;
    reply.assert_error(
        413,
        PROTOBUF,
        code::RESOURCE_EXHAUSTED,
        "decompresses to more than max_request_body_size",
    );
    let peak = w.peak_rss();
    assert!(
        peak < RSS_BOUND,
        "weft's peak RSS was {} MiB refusing a 1 GiB gzip bomb",
        peak >> 20
    );
}

// ---- one test per row, each on its own weft, each followed by a valid request ----

macro_rules! row_test {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let w = Running::start();
            super::$name(&w).await;
            still_serves(&w).await;
        }
    )*};
}

mod row {
    use super::*;

    row_test!(
        grpc_oversized_message,
        grpc_undecodable,
        grpc_short_trace_id,
        grpc_gzip_accepted,
        http_undecodable_protobuf,
        http_undecodable_json,
        http_invalid_id,
        http_unsupported_media_type,
        http_method_not_allowed,
        http_not_found,
        http_unknown_encoding,
        http_compressed_accepted,
        http_body_over_the_limit,
        http_gzip_bomb,
    );
}

/// Every row against one process; it still answers a valid request afterwards, and its peak
/// memory stayed bounded through all of them (the gzip bomb included).
#[tokio::test]
async fn every_row_then_a_valid_request() {
    let w = Running::start();
    grpc_oversized_message(&w).await;
    grpc_undecodable(&w).await;
    grpc_short_trace_id(&w).await;
    grpc_gzip_accepted(&w).await;
    http_undecodable_protobuf(&w).await;
    http_undecodable_json(&w).await;
    http_invalid_id(&w).await;
    http_unsupported_media_type(&w).await;
    http_method_not_allowed(&w).await;
    http_not_found(&w).await;
    http_unknown_encoding(&w).await;
    http_compressed_accepted(&w).await;
    http_body_over_the_limit(&w).await;
    http_gzip_bomb(&w).await;
    still_serves(&w).await;
    assert!(w.peak_rss() < RSS_BOUND);
}

/// A gRPC client that sends arbitrary bytes as the Export request message.
mod bytes_codec {
    use prost::bytes::{BufMut, Bytes};
    use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use weft_proto::collector::trace::v1::ExportTraceServiceResponse;

    struct RawCodec;
    struct RawEncoder;
    struct ResponseDecoder;

    impl Encoder for RawEncoder {
        type Item = Bytes;
        type Error = tonic::Status;
        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for ResponseDecoder {
        type Item = ExportTraceServiceResponse;
        type Error = tonic::Status;
        fn decode(
            &mut self,
            src: &mut DecodeBuf<'_>,
        ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
            prost::Message::decode(src)
                .map(Some)
                .map_err(|e| tonic::Status::internal(e.to_string()))
        }
        fn buffer_settings(&self) -> BufferSettings {
            BufferSettings::default()
        }
    }

    impl Codec for RawCodec {
        type Encode = Bytes;
        type Decode = ExportTraceServiceResponse;
        type Encoder = RawEncoder;
        type Decoder = ResponseDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> ResponseDecoder {
            ResponseDecoder
        }
    }

    /// Calls `TraceService/Export` with `body` as the (possibly broken) message.
    pub async fn raw_export(
        url: String,
        body: Vec<u8>,
    ) -> Result<ExportTraceServiceResponse, tonic::Status> {
        let channel = tonic::transport::Channel::from_shared(url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        grpc.unary(
            tonic::Request::new(Bytes::from(body)),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            ),
            RawCodec,
        )
        .await
        .map(tonic::Response::into_inner)
    }
}
