//! OTLP/HTTP: `POST {traces_url_path}` and `POST {logs_url_path}`, protobuf or JSON.
//!
//! Checks run cheapest first: path (404), method (405), `Content-Type` (415),
//! `Content-Encoding` (400), body size as sent (413), then decompression bounded by the same
//! limit (413), decoding and checking (400), and finally the pipeline (429/503/400).
//! Every error answer carries a `google.rpc.Status` saying what was wrong, encoded like the
//! request (protobuf for `application/x-protobuf`, JSON otherwise).
//!
//! Routing is an exact match done here rather than by axum's router: the paths come from
//! the configuration and must not be read as route patterns.
//!
//! With `auth`, the authenticator runs before anything else: a request without valid
//! credentials gets 401 (with `WWW-Authenticate` and a `google.rpc.Status` UNAUTHENTICATED
//! body) whatever its path, its body is not read beyond a small drain, and nothing reaches
//! the pipeline. `read_timeout` bounds the time to receive the body once the headers are in:
//! a body still arriving then gets 408 and the connection is closed.
//!
//! The server itself ([`serve`]) runs each connection from the receiver's accept loop (see
//! `listener`) with hyper, enforcing `read_header_timeout` on every request's headers and
//! `idle_timeout` between requests, and finishes in-flight requests on shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use http::header::{
    ALLOW, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prost::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;
use weft_config::SignalKind;
use weft_proto::otlp_json;
use weft_proto::status::{code, Status as RpcStatus};

use super::answer::{code_for_http, Answer};
use super::compression::Encoding;
use super::listener::{Activity, Conn};
use super::receive::{Format, Rejection, SignalReceiver};
use super::RequestRefusals;
use crate::extensions::auth::ServerAuthenticator;
use crate::pipeline::{Payload, Signal};

/// How much of an unauthenticated request's body is read (and dropped) so the client reads
/// the 401 instead of a connection reset; beyond that the connection is closed. Go's
/// `net/http` drains the same amount.
const UNAUTHENTICATED_DRAIN: u64 = 256 * 1024;

/// What the HTTP server serves: the configured path of every signal, and the signals this
/// receiver feeds.
pub(crate) struct HttpRoutes {
    /// One per signal Weft carries, in signal order.
    pub(crate) routes: Vec<HttpRoute>,
    /// `max_request_body_size`: the body as sent, and again its decompressed size.
    pub(crate) limit: usize,
    /// The authenticator named by `auth::authenticator`, if any.
    pub(crate) auth: Option<Arc<dyn ServerAuthenticator>>,
    /// `read_timeout`: the time to receive the body once the headers are in.
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) refusals: RequestRefusals,
}

/// One signal's export path.
pub(crate) struct HttpRoute {
    pub(crate) path: String,
    pub(crate) signal: SignalKind,
    /// `None` when the receiver is in no pipeline of this signal: answered 404, saying so.
    pub(crate) export: Option<Arc<dyn HttpExport>>,
}

/// A signal's export handler, with the signal's type hidden so routes of every signal sit in
/// one table.
pub(crate) trait HttpExport: Send + Sync {
    fn export<'a>(&'a self, routes: &'a HttpRoutes, request: Request) -> BoxFuture<'a, Response>;
}

impl<T: Payload> HttpExport for SignalReceiver<T> {
    fn export<'a>(&'a self, routes: &'a HttpRoutes, request: Request) -> BoxFuture<'a, Response> {
        Box::pin(export(self, routes, request))
    }
}

/// The axum application of the receiver.
pub(crate) fn router(routes: Arc<HttpRoutes>) -> Router {
    Router::new().fallback(dispatch).with_state(routes)
}

/// The per-connection deadlines of the HTTP server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnTimeouts {
    /// `read_header_timeout`, for every request after the first (the first one is bounded
    /// by the accept loop's handshake deadline).
    pub(crate) header: Option<Duration>,
    /// `idle_timeout`: no request in flight for this long closes the connection.
    pub(crate) idle: Option<Duration>,
}

/// Serves `router` on the connections from `incoming` until `stop`, then lets every
/// connection finish its in-flight requests (idle ones close at once) before returning.
pub(crate) async fn serve(
    mut incoming: mpsc::Receiver<Conn>,
    router: Router,
    timeouts: ConnTimeouts,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    // Each connection task holds a sender; `recv` returns `None` once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => break,
            conn = incoming.recv() => match conn {
                Some(conn) => conn,
                None => break,
            },
        };
        tokio::spawn(
            serve_connection(
                conn,
                builder.clone(),
                router.clone(),
                timeouts,
                stop.clone(),
                done_tx.clone(),
            )
            .in_current_span(),
        );
    }
    drop(incoming);
    drop(done_tx);
    let _ = done_rx.recv().await;
    Ok(())
}

/// Runs one connection until the client closes it, it fails (a timeout included), it was
/// idle for `idle_timeout`, or the server stops (gracefully: in-flight requests finish).
async fn serve_connection(
    conn: Conn,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    timeouts: ConnTimeouts,
    stop: CancellationToken,
    _done: mpsc::Sender<()>,
) {
    let peer = conn.peer();
    let proven = conn.proof_handle();
    let activity = Arc::new(Activity::default());
    let accepted = Instant::now();
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            // The headers are in: the connection proved itself (ends the handshake deadline).
            proven.store(true, Ordering::Release);
            let in_flight = activity.begin();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(in_flight);
                response
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(conn), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        // While a request is in flight, look again one idle period later.
        let idle_check = match (closing, timeouts.idle) {
            (false, Some(t)) => Some(
                activity
                    .idle_deadline(accepted, t)
                    .unwrap_or_else(|| Instant::now() + t),
            ),
            _ => None,
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(transport = "http", peer = %peer, error = %e, "connection closed");
                }
                return;
            }
            _ = stop.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = sleep_until(idle_check), if idle_check.is_some() => {
                let idle = timeouts
                    .idle
                    .and_then(|t| activity.idle_deadline(accepted, t))
                    .is_some_and(|at| Instant::now() >= at);
                if idle {
                    tracing::debug!(transport = "http", peer = %peer, "closing an idle connection (idle_timeout)");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn dispatch(State(routes): State<Arc<HttpRoutes>>, request: Request) -> Response {
    let format = request_format(request.headers());
    if let Some(auth) = &routes.auth {
        if let Err(message) = auth.authenticate(request.headers()) {
            routes.refusals.unauthenticated.inc();
            return unauthenticated(
                message,
                auth.challenge(),
                format.unwrap_or(Format::Json),
                request.into_body(),
                routes.read_timeout,
            )
            .await;
        }
    }
    let path = request.uri().path();
    match routes.routes.iter().find(|r| r.path == path) {
        Some(HttpRoute {
            export: Some(export),
            ..
        }) => export.export(&routes, request).await,
        Some(route) => not_served(format, path, route.signal),
        None => {
            let served: Vec<String> = routes
                .routes
                .iter()
                .map(|r| format!("{} ({})", r.path, r.signal))
                .collect();
            let message = format!(
                "nothing is served at {path}: OTLP/HTTP exports go to {}",
                join_and(&served)
            );
            error_answer(
                StatusCode::NOT_FOUND,
                format.unwrap_or(Format::Json),
                message,
            )
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn not_served(format: Option<Format>, path: &str, signal: SignalKind) -> Response {
    let message =
        format!("nothing is served at {path}: this receiver is not in any {signal} pipeline");
    error_answer(
        StatusCode::NOT_FOUND,
        format.unwrap_or(Format::Json),
        message,
    )
}

/// The body format named by `Content-Type`, parameters (`; charset=utf-8`) ignored.
fn request_format(headers: &HeaderMap) -> Option<Format> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim();
    if media.eq_ignore_ascii_case("application/x-protobuf") {
        Some(Format::Protobuf)
    } else if media.eq_ignore_ascii_case("application/json") {
        Some(Format::Json)
    } else {
        None
    }
}

async fn export<T: Payload>(
    receiver: &SignalReceiver<T>,
    routes: &HttpRoutes,
    request: Request,
) -> Response {
    let limit = routes.limit;
    let (parts, body) = request.into_parts();
    let format = request_format(&parts.headers);
    if parts.method != Method::POST {
        let message = format!(
            "method {} is not allowed on {}: OTLP/HTTP exports are POSTed",
            parts.method,
            parts.uri.path()
        );
        let mut response = error_answer(
            StatusCode::METHOD_NOT_ALLOWED,
            format.unwrap_or(Format::Json),
            message,
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let Some(format) = format else {
        let got = parts
            .headers
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let message = match got {
            Some(got) => format!(
                "unsupported Content-Type {got:?}: send application/x-protobuf or application/json"
            ),
            None => "no Content-Type: send application/x-protobuf or application/json".to_string(),
        };
        return error_answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, Format::Json, message);
    };
    let encoding_header = parts
        .headers
        .get(CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let encoding = match Encoding::from_header(encoding_header.as_deref()) {
        Ok(e) => e,
        Err(message) => return error_answer(StatusCode::BAD_REQUEST, format, message),
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let read = read_body(body, limit, declared);
    let body = match routes.read_timeout {
        Some(t) => match tokio::time::timeout(t, read).await {
            Ok(read) => read,
            Err(_) => {
                routes.refusals.read_timeout.inc();
                return body_timeout_answer(format, t);
            }
        },
        None => read.await,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return rejection_answer(&rejection, format),
    };
    match receiver.receive(body, encoding, format, limit).await {
        Ok(response) => {
            let bytes = match format {
                Format::Protobuf => response.encode_to_vec(),
                Format::Json => T::Request::encode_response_json(&response),
            };
            answer(StatusCode::OK, format, bytes)
        }
        Err(rejection) => rejection_answer(&rejection, format),
    }
}

/// Reads the body, refusing it once it is over `limit`. A refused body is drained (up to
/// another `limit` bytes, without keeping it) so the client reads the 413 instead of a reset
/// connection; beyond that the connection is closed.
async fn read_body(
    mut body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Bytes, Rejection> {
    let too_large = || {
        Rejection::TooLarge(format!(
            "the request body is larger than max_request_body_size ({limit} bytes): send smaller batches"
        ))
    };
    if let Some(declared) = declared {
        if declared > limit as u64 {
            if declared - limit as u64 <= limit as u64 {
                drain(body, declared).await;
            }
            return Err(too_large());
        }
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Rejection::invalid(format!("cannot read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total > limit {
            drain(body, limit as u64).await;
            return Err(too_large());
        }
        chunks.push(data);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => {
            let mut all = BytesMut::with_capacity(total);
            for c in chunks {
                all.extend_from_slice(&c);
            }
            all.freeze()
        }
    })
}

/// Reads and drops up to `budget` more bytes of `body`.
async fn drain(mut body: Body, budget: u64) {
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > budget {
                return;
            }
        }
    }
}

fn answer(status: StatusCode, format: Format, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

fn encode_status(format: Format, status: &RpcStatus) -> Vec<u8> {
    match format {
        Format::Protobuf => status.encode_to_vec(),
        Format::Json => otlp_json::encode_status(status),
    }
}

/// An error answer not caused by a [`Rejection`] (routing, content negotiation).
fn error_answer(status: StatusCode, format: Format, message: String) -> Response {
    tracing::debug!(transport = "http", status = status.as_u16(), error = %message, "request rejected");
    let rpc = RpcStatus::new(code_for_http(status), message);
    answer(status, format, encode_status(format, &rpc))
}

/// 401 for a request the authenticator refused. Up to [`UNAUTHENTICATED_DRAIN`] bytes of its
/// body are read and dropped (within `read_timeout`) so the client reads the answer; the
/// connection is closed after it.
async fn unauthenticated(
    message: String,
    challenge: String,
    format: Format,
    body: Body,
    read_timeout: Option<Duration>,
) -> Response {
    tracing::debug!(transport = "http", status = 401, error = %message, "request rejected");
    let drain = drain(body, UNAUTHENTICATED_DRAIN);
    match read_timeout {
        Some(t) => {
            let _ = tokio::time::timeout(t, drain).await;
        }
        None => drain.await,
    }
    let rpc = RpcStatus::new(code::UNAUTHENTICATED, message);
    let mut response = answer(
        StatusCode::UNAUTHORIZED,
        format,
        encode_status(format, &rpc),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 408 for a body that did not arrive within `read_timeout`; the connection is closed.
fn body_timeout_answer(format: Format, timeout: Duration) -> Response {
    let message = format!(
        "the request body did not arrive within read_timeout ({timeout:?}): send faster or raise read_timeout"
    );
    tracing::debug!(transport = "http", status = 408, error = %message, "request rejected");
    let rpc = RpcStatus::new(code::DEADLINE_EXCEEDED, message);
    let mut response = answer(
        StatusCode::REQUEST_TIMEOUT,
        format,
        encode_status(format, &rpc),
    );
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn rejection_answer(rejection: &Rejection, format: Format) -> Response {
    let a = Answer::of(rejection);
    tracing::debug!(transport = "http", status = a.http.as_u16(), error = %a.message, "request rejected");
    let mut response = answer(a.http, format, encode_status(format, &a.rpc_status()));
    if let Some(secs) = a.retry_after_secs() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use futures::StreamExt;
    use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

    use super::super::answer::{RetryInfo, RETRY_INFO_TYPE_URL};
    use super::super::test_support::{logs, spans, Behaviour, TestConsumer};
    use super::*;
    use crate::pipeline::{Consumer, Logs, Traces};
    use crate::telemetry::{ReceiverMetrics, Telemetry};

    const LIMIT: usize = 64 * 1024;
    const READ_TIMEOUT: Duration = Duration::from_secs(30);

    struct Setup {
        app: Router,
        telemetry: Telemetry,
        traces: Arc<TestConsumer<Traces>>,
        logs: Arc<TestConsumer<Logs>>,
    }

    fn setup(behaviour: Behaviour) -> Setup {
        setup_with_auth(behaviour, None)
    }

    fn setup_with_auth(behaviour: Behaviour, auth: Option<Arc<dyn ServerAuthenticator>>) -> Setup {
        let telemetry = Telemetry::new();
        let traces = Arc::new(TestConsumer::new(behaviour.clone()));
        let logs = Arc::new(TestConsumer::new(behaviour));
        let routes = HttpRoutes {
            routes: vec![
                HttpRoute {
                    path: "/v1/traces".into(),
                    signal: SignalKind::Traces,
                    export: Some(Arc::new(SignalReceiver::new(
                        traces.clone() as Arc<dyn Consumer<Traces>>,
                        ReceiverMetrics::new(&telemetry, "otlp", "http", "spans"),
                    ))),
                },
                HttpRoute {
                    path: "/v1/logs".into(),
                    signal: SignalKind::Logs,
                    export: Some(Arc::new(SignalReceiver::new(
                        logs.clone() as Arc<dyn Consumer<Logs>>,
                        ReceiverMetrics::new(&telemetry, "otlp", "http", "log_records"),
                    ))),
                },
            ],
            limit: LIMIT,
            auth,
            read_timeout: Some(READ_TIMEOUT),
            refusals: RequestRefusals::new(&telemetry, "otlp", "http"),
        };
        Setup {
            app: router(Arc::new(routes)),
            telemetry,
            traces,
            logs,
        }
    }

    fn post(path: &str, content_type: &str, body: impl Into<Body>) -> http::Request<Body> {
        http::Request::post(path)
            .header(CONTENT_TYPE, content_type)
            .body(body.into())
            .unwrap()
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Reply {
        /// The `google.rpc.Status` body, decoded by the answer's Content-Type.
        fn rpc(&self) -> RpcStatus {
            match self.headers[CONTENT_TYPE].to_str().unwrap() {
                "application/x-protobuf" => RpcStatus::decode(&self.body[..]).unwrap(),
                "application/json" => otlp_json::decode_status(&self.body).unwrap(),
                other => panic!("unexpected content type {other}"),
            }
        }
    }

    async fn call(app: &Router, request: http::Request<Body>) -> Reply {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn protobuf_traces_are_accepted_and_counted() {
        let s = setup(Behaviour::Accept);
        let request = spans(3);
        let reply = call(
            &s.app,
            post(
                "/v1/traces",
                "application/x-protobuf",
                request.encode_to_vec(),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[CONTENT_TYPE], "application/x-protobuf");
        assert!(reply.body.is_empty(), "an empty ExportTraceServiceResponse");
        assert_eq!(s.traces.received(), vec![request]);
        assert_eq!(
            s.telemetry.counter_value(
                "otelcol_receiver_accepted_spans",
                &[("receiver", "otlp"), ("transport", "http")]
            ),
            3
        );
    }

    #[tokio::test]
    async fn json_logs_are_accepted_with_a_json_answer() {
        let s = setup(Behaviour::Accept);
        let request = logs(2);
        let body = otlp_json::encode_logs(&request);
        let reply = call(
            &s.app,
            post("/v1/logs", "application/json; charset=utf-8", body),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
        assert_eq!(&reply.body[..], b"{}");
        assert_eq!(s.logs.received(), vec![request]);
        assert_eq!(
            s.telemetry.counter_value(
                "otelcol_receiver_accepted_log_records",
                &[("receiver", "otlp"), ("transport", "http")]
            ),
            2
        );
    }

    #[tokio::test]
    async fn compressed_bodies_are_accepted() {
        let s = setup(Behaviour::Accept);
        let raw = spans(1).encode_to_vec();
        let bodies = [
            ("gzip", gzip(&raw)),
            ("zstd", zstd::encode_all(&raw[..], 3).unwrap()),
            ("deflate", {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                e.write_all(&raw).unwrap();
                e.finish().unwrap()
            }),
            ("identity", raw.clone()),
        ];
        for (encoding, body) in bodies {
            let mut request = post("/v1/traces", "application/x-protobuf", body);
            request
                .headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
            let reply = call(&s.app, request).await;
            assert_eq!(reply.status, StatusCode::OK, "{encoding}");
        }
        assert_eq!(s.traces.received().len(), 4);
    }

    #[tokio::test]
    async fn the_error_answer_table() {
        let s = setup(Behaviour::Accept);
        let mut bad_id = spans(1);
        bad_id.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1, 2, 3];
        let proto = "application/x-protobuf";
        let json = "application/json";
        // (request, status, google.rpc code, answer content type, text the message contains)
        let rows: Vec<(http::Request<Body>, u16, i32, &str, &str)> = vec![
            (
                post("/v1/traces", proto, &b"\xff\xff\xff"[..]),
                400,
                code::INVALID_ARGUMENT,
                proto,
                "cannot decode the body as a protobuf ExportTraceServiceRequest",
            ),
            (
                post("/v1/traces", json, "{not json"),
                400,
                code::INVALID_ARGUMENT,
                json,
                "cannot decode the body as an OTLP/JSON ExportTraceServiceRequest",
            ),
            (
                post("/v1/traces", proto, bad_id.encode_to_vec()),
                400,
                code::INVALID_ARGUMENT,
                proto,
                "trace_id must be 16 bytes, got 3",
            ),
            (
                post(
                    "/v1/logs",
                    json,
                    r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"0102"}]}]}]}"#,
                ),
                400,
                code::INVALID_ARGUMENT,
                json,
                "traceId",
            ),
            (
                post("/v1/traces", "text/plain", "hello"),
                415,
                code::INVALID_ARGUMENT,
                json,
                "unsupported Content-Type \"text/plain\"",
            ),
            (
                http::Request::post("/v1/traces")
                    .body(Body::empty())
                    .unwrap(),
                415,
                code::INVALID_ARGUMENT,
                json,
                "no Content-Type",
            ),
            (
                http::Request::get("/v1/traces")
                    .header(CONTENT_TYPE, proto)
                    .body(Body::empty())
                    .unwrap(),
                405,
                code::UNIMPLEMENTED,
                proto,
                "method GET is not allowed on /v1/traces",
            ),
            (
                http::Request::put("/v1/logs").body(Body::empty()).unwrap(),
                405,
                code::UNIMPLEMENTED,
                json,
                "method PUT is not allowed",
            ),
            (
                post("/v1/metrics", proto, Body::empty()),
                404,
                code::NOT_FOUND,
                proto,
                "nothing is served at /v1/metrics",
            ),
            (
                post("/v1/traces/", json, Body::empty()),
                404,
                code::NOT_FOUND,
                json,
                "nothing is served at /v1/traces/",
            ),
            (
                {
                    let mut r = post("/v1/traces", proto, spans(1).encode_to_vec());
                    r.headers_mut()
                        .insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
                    r
                },
                400,
                code::INVALID_ARGUMENT,
                proto,
                "unsupported Content-Encoding \"br\"",
            ),
            (
                {
                    let mut r = post("/v1/traces", proto, &b"not gzip"[..]);
                    r.headers_mut()
                        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    r
                },
                400,
                code::INVALID_ARGUMENT,
                proto,
                "cannot decompress the gzip body",
            ),
            (
                post("/v1/traces", proto, vec![0u8; LIMIT + 1]),
                413,
                code::RESOURCE_EXHAUSTED,
                proto,
                "larger than max_request_body_size (65536 bytes)",
            ),
            (
                {
                    let mut r = post("/v1/traces", json, gzip(&vec![b' '; LIMIT + 1]));
                    r.headers_mut()
                        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    r
                },
                413,
                code::RESOURCE_EXHAUSTED,
                json,
                "decompresses to more than max_request_body_size (65536 bytes)",
            ),
        ];
        for (request, status, rpc_code, content_type, text) in rows {
            let what = format!("{} {}", request.method(), request.uri());
            let reply = call(&s.app, request).await;
            assert_eq!(reply.status.as_u16(), status, "{what}: {:?}", reply.body);
            assert_eq!(reply.headers[CONTENT_TYPE], content_type, "{what}");
            let rpc = reply.rpc();
            assert_eq!(rpc.code, rpc_code, "{what}: {rpc:?}");
            assert!(rpc.message.contains(text), "{what}: {:?}", rpc.message);
            if status == 405 {
                assert_eq!(reply.headers[ALLOW], "POST");
            }
        }
        assert!(s.traces.received().is_empty());
        assert!(s.logs.received().is_empty());
        // The invalid-id request held one span: counted as refused.
        assert_eq!(
            s.telemetry.counter_value(
                "otelcol_receiver_refused_spans",
                &[("receiver", "otlp"), ("transport", "http")]
            ),
            1
        );
    }

    #[tokio::test]
    async fn a_streamed_body_over_the_limit_is_refused() {
        let s = setup(Behaviour::Accept);
        // No Content-Length: the limit is found while reading.
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..3)
            .map(|_| Ok(Bytes::from(vec![0u8; LIMIT / 2])))
            .collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let reply = call(&s.app, post("/v1/traces", "application/x-protobuf", body)).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(reply.rpc().code, code::RESOURCE_EXHAUSTED);
    }

    #[tokio::test]
    async fn pipeline_refusals_carry_retry_after() {
        let rows = [
            (
                Behaviour::Unavailable(Duration::from_millis(2500)),
                503,
                code::UNAVAILABLE,
                "3",
            ),
            (
                Behaviour::Exhausted(Duration::from_secs(7)),
                429,
                code::RESOURCE_EXHAUSTED,
                "7",
            ),
        ];
        for (behaviour, status, rpc_code, retry_after) in rows {
            let s = setup(behaviour);
            let reply = call(
                &s.app,
                post(
                    "/v1/traces",
                    "application/x-protobuf",
                    spans(2).encode_to_vec(),
                ),
            )
            .await;
            assert_eq!(reply.status.as_u16(), status);
            assert_eq!(reply.headers[RETRY_AFTER], retry_after);
            let rpc = reply.rpc();
            assert_eq!(rpc.code, rpc_code);
            assert_eq!(rpc.message, "refused by the test consumer");
            assert_eq!(rpc.details[0].type_url, RETRY_INFO_TYPE_URL);
            let info = RetryInfo::decode(&rpc.details[0].value[..]).unwrap();
            assert!(info.retry_delay.is_some());
            assert_eq!(
                s.telemetry.counter_value(
                    "otelcol_receiver_refused_spans",
                    &[("receiver", "otlp"), ("transport", "http")]
                ),
                2
            );
            assert_eq!(
                s.telemetry.counter_value(
                    "otelcol_receiver_accepted_spans",
                    &[("receiver", "otlp"), ("transport", "http")]
                ),
                0
            );
        }
        // The same over JSON: the body is a JSON Status.
        let s = setup(Behaviour::Exhausted(Duration::from_secs(1)));
        let reply = call(
            &s.app,
            post(
                "/v1/logs",
                "application/json",
                otlp_json::encode_logs(&logs(1)),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.headers[RETRY_AFTER], "1");
        assert_eq!(reply.rpc().code, code::RESOURCE_EXHAUSTED);
    }

    #[tokio::test]
    async fn a_permanent_pipeline_error_is_a_400() {
        let s = setup(Behaviour::Permanent);
        let reply = call(
            &s.app,
            post(
                "/v1/traces",
                "application/x-protobuf",
                spans(1).encode_to_vec(),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(reply.headers.get(RETRY_AFTER).is_none());
        assert_eq!(reply.rpc().message, "rejected by the test consumer");
    }

    #[tokio::test]
    async fn an_empty_export_succeeds_without_reaching_the_pipeline() {
        let s = setup(Behaviour::Unavailable(Duration::from_secs(1)));
        let empty = ExportTraceServiceRequest::default();
        let reply = call(
            &s.app,
            post(
                "/v1/traces",
                "application/x-protobuf",
                empty.encode_to_vec(),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(s.traces.received().is_empty());
    }

    #[tokio::test]
    async fn a_signal_without_a_pipeline_is_not_served() {
        let telemetry = Telemetry::new();
        let traces = Arc::new(TestConsumer::<Traces>::new(Behaviour::Accept));
        let app = router(Arc::new(HttpRoutes {
            routes: vec![
                HttpRoute {
                    path: "/t".into(),
                    signal: SignalKind::Traces,
                    export: Some(Arc::new(SignalReceiver::new(
                        traces as Arc<dyn Consumer<Traces>>,
                        ReceiverMetrics::new(&telemetry, "otlp", "http", "spans"),
                    ))),
                },
                HttpRoute {
                    path: "/l".into(),
                    signal: SignalKind::Logs,
                    export: None,
                },
            ],
            limit: LIMIT,
            auth: None,
            read_timeout: None,
            refusals: RequestRefusals::new(&telemetry, "otlp", "http"),
        }));
        let reply = call(&app, post("/l", "application/json", "{}")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(reply.rpc().message.contains("not in any logs pipeline"));
        let reply = call(&app, post("/t", "application/json", "{}")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    /// Accepts `Authorization: Bearer good` only.
    struct Bearer;
    impl ServerAuthenticator for Bearer {
        fn authenticate(&self, headers: &HeaderMap) -> Result<(), String> {
            match headers.get("authorization").map(|v| v.as_bytes()) {
                Some(b"Bearer good") => Ok(()),
                Some(_) => Err("the credentials in the authorization header are not valid".into()),
                None => Err("missing credentials".into()),
            }
        }
        fn challenge(&self) -> String {
            "Bearer".into()
        }
    }

    #[tokio::test]
    async fn without_valid_credentials_nothing_is_accepted() {
        let s = setup_with_auth(Behaviour::Accept, Some(Arc::new(Bearer)));
        let body = spans(2).encode_to_vec();
        let rows = [
            (None, "application/x-protobuf", "missing credentials"),
            (Some("Bearer bad"), "application/x-protobuf", "not valid"),
            (Some("Bearer bad"), "application/json", "not valid"),
        ];
        for (token, content_type, text) in rows {
            let mut request = post("/v1/traces", content_type, body.clone());
            if let Some(token) = token {
                request
                    .headers_mut()
                    .insert("authorization", HeaderValue::from_static(token));
            }
            let reply = call(&s.app, request).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert_eq!(reply.headers[WWW_AUTHENTICATE], "Bearer");
            assert_eq!(reply.headers[CONTENT_TYPE], content_type);
            let rpc = reply.rpc();
            assert_eq!(rpc.code, code::UNAUTHENTICATED);
            assert!(rpc.message.contains(text), "{:?}", rpc.message);
        }
        // Even a path that does not exist answers 401: nothing is learnt without credentials.
        let reply = call(&s.app, post("/nope", "application/json", "{}")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(s.traces.received().is_empty());
        let labels = [
            ("receiver", "otlp"),
            ("transport", "http"),
            ("reason", "unauthenticated"),
        ];
        assert_eq!(
            s.telemetry
                .counter_value("weft_receiver_requests_refused", &labels),
            4
        );
        assert_eq!(
            s.telemetry.counter_value(
                "otelcol_receiver_accepted_spans",
                &[("receiver", "otlp"), ("transport", "http")]
            ),
            0
        );

        let mut request = post("/v1/traces", "application/x-protobuf", body);
        request
            .headers_mut()
            .insert("authorization", HeaderValue::from_static("Bearer good"));
        let reply = call(&s.app, request).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(s.traces.received().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_slower_than_read_timeout_gets_408() {
        let s = setup(Behaviour::Accept);
        // The headers are in, but the body never finishes.
        let chunks =
            futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"\x0a"))])
                .chain(futures::stream::pending());
        let request = post(
            "/v1/traces",
            "application/x-protobuf",
            Body::from_stream(chunks),
        );
        let reply = call(&s.app, request).await;
        assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(reply.headers[CONNECTION], "close");
        let rpc = reply.rpc();
        assert_eq!(rpc.code, code::DEADLINE_EXCEEDED);
        assert!(
            rpc.message.contains("read_timeout (30s)"),
            "{}",
            rpc.message
        );
        assert!(s.traces.received().is_empty());
        let labels = [
            ("receiver", "otlp"),
            ("transport", "http"),
            ("reason", "read_timeout"),
        ];
        assert_eq!(
            s.telemetry
                .counter_value("weft_receiver_requests_refused", &labels),
            1
        );
    }
}
