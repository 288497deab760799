//! OTLP/gRPC: `TraceService/Export` and `LogsService/Export` on one tonic server.
//!
//! The services are written against tonic's server machinery directly instead of the
//! generated `*ServiceServer`s, for one reason: the generated servers decode inside tonic's
//! codec, on the async worker thread, and report undecodable bytes as INTERNAL. Here the codec
//! hands over the raw (already decompressed, size-checked) message bytes, and
//! [`SignalReceiver::receive`] decodes them itself: off-thread when large, and answering
//! INVALID_ARGUMENT for bad data as the OTLP specification asks.
//!
//! tonic reports a message over `max_decoding_message_size` as OUT_OF_RANGE; gRPC (and the
//! Collector) answer RESOURCE_EXHAUSTED, so [`ExportService`] rewrites that one status.
//!
//! With `auth`, each call's metadata (its HTTP/2 headers) goes through the authenticator
//! before the message is read: a call without valid credentials is answered UNAUTHENTICATED
//! and nothing reaches the pipeline. Connections come from the receiver's accept loop (see
//! `listener`: connection cap, TLS, handshake deadline); tonic runs HTTP/2 on them with the
//! `keepalive::server_parameters` pings and connection ages.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_prost::ProstEncoder;
use tracing::Instrument;

use super::answer::Answer;
use super::compression::Encoding;
use super::listener::Conn;
use super::receive::{Format, ResponseOf, SignalReceiver};
use crate::extensions::auth::ServerAuthenticator;
use crate::pipeline::{Payload, Signal};

/// A codec whose requests are the message bytes as received and whose responses are prost
/// messages.
struct RawCodec<R>(PhantomData<fn() -> R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: prost::Message + Send + 'static> Codec for RawCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = ProstEncoder<R>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// Takes the whole message as `Bytes` (tonic's buffer is split off, not copied).
struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One OTLP export service (`T` picks traces or logs).
pub(crate) struct ExportService<T: Payload> {
    receiver: Arc<SignalReceiver<T>>,
    /// `max_recv_msg_size_mib` in bytes, enforced by tonic on the compressed and the
    /// decompressed message.
    max_message: usize,
    auth: Option<Arc<GrpcAuth>>,
    /// The receiver's span: tonic runs calls on tasks of its own, which do not inherit it.
    span: tracing::Span,
}

/// The authenticator of the gRPC server, and where its refusals are counted.
pub(crate) struct GrpcAuth {
    pub(crate) authenticator: Arc<dyn ServerAuthenticator>,
    /// `weft_receiver_requests_refused{reason="unauthenticated"}`.
    pub(crate) refused: Counter,
}

impl<T: Payload> Clone for ExportService<T> {
    fn clone(&self) -> Self {
        Self {
            receiver: self.receiver.clone(),
            max_message: self.max_message,
            auth: self.auth.clone(),
            span: self.span.clone(),
        }
    }
}

impl<T: Payload> ExportService<T> {
    pub(crate) fn new(
        receiver: Arc<SignalReceiver<T>>,
        max_message: usize,
        auth: Option<Arc<GrpcAuth>>,
        span: tracing::Span,
    ) -> Self {
        Self {
            receiver,
            max_message,
            auth,
            span,
        }
    }
}

impl<T: Payload> NamedService for ExportService<T> {
    const NAME: &'static str = T::Request::GRPC_SERVICE;
}

impl<T: Payload> tower::Service<http::Request<Body>> for ExportService<T> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let _in_span = self.span.clone().entered();
        if request.uri().path() != T::Request::GRPC_EXPORT_PATH {
            let message = format!(
                "unknown method {}: {} only has Export",
                request.uri().path(),
                T::Request::GRPC_SERVICE
            );
            return Box::pin(async move { Ok(tonic::Status::unimplemented(message).into_http()) });
        }
        if let Some(auth) = &self.auth {
            if let Err(message) = auth.authenticator.authenticate(request.headers()) {
                auth.refused.inc();
                tracing::debug!(transport = "grpc", code = ?tonic::Code::Unauthenticated, error = %message, "request rejected");
                return Box::pin(
                    async move { Ok(tonic::Status::unauthenticated(message).into_http()) },
                );
            }
        }
        let this = self.clone();
        let span = self.span.clone();
        Box::pin(
            async move {
                let mut grpc = Grpc::new(RawCodec::<ResponseOf<T>>::default())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .send_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Zstd)
                    .max_decoding_message_size(this.max_message);
                let response = grpc.unary(ExportMethod(this.receiver), request).await;
                Ok(oversize_is_resource_exhausted(response, this.max_message))
            }
            .instrument(span),
        )
    }
}

/// Turns tonic's OUT_OF_RANGE for an oversized message (the only OUT_OF_RANGE these services
/// produce) into RESOURCE_EXHAUSTED. Errors before the handler runs are "trailers-only"
/// responses, so the status is in the headers.
fn oversize_is_resource_exhausted(
    response: http::Response<Body>,
    limit: usize,
) -> http::Response<Body> {
    let out_of_range = response
        .headers()
        .get(tonic::Status::GRPC_STATUS)
        .is_some_and(|v| v.as_bytes() == b"11");
    if !out_of_range {
        return response;
    }
    let original = tonic::Status::from_header_map(response.headers())
        .map(|s| s.message().to_string())
        .unwrap_or_default();
    tracing::debug!(transport = "grpc", error = %original, "request rejected");
    tonic::Status::resource_exhausted(format!(
        "{original} (max_recv_msg_size_mib allows {} MiB): send smaller batches",
        limit / (1024 * 1024)
    ))
    .into_http()
}

/// The `Export` handler: decode, check, hand to the pipeline, answer.
struct ExportMethod<T: Payload>(Arc<SignalReceiver<T>>);

impl<T: Payload> UnaryService<Bytes> for ExportMethod<T> {
    type Response = ResponseOf<T>;
    type Future = BoxFuture<'static, Result<tonic::Response<ResponseOf<T>>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let receiver = self.0.clone();
        Box::pin(async move {
            // tonic already decompressed and bounded the message: no limit to apply here.
            let body = request.into_inner();
            match receiver
                .receive(body, Encoding::Identity, Format::Protobuf, usize::MAX)
                .await
            {
                Ok(response) => Ok(tonic::Response::new(response)),
                Err(rejection) => {
                    let answer = Answer::of(&rejection);
                    tracing::debug!(
                        transport = "grpc",
                        code = ?answer.grpc,
                        error = %answer.message,
                        "request rejected"
                    );
                    Err(answer.grpc_status())
                }
            }
        })
    }
}

/// Adds the `Export` service of signal `T` to `builder` (the services of signals the
/// receiver does not feed are never added: tonic answers UNIMPLEMENTED for them).
pub(crate) fn add_service<T: Payload>(
    builder: &mut tonic::service::RoutesBuilder,
    receiver: Arc<SignalReceiver<T>>,
    max_message: usize,
    auth: Option<Arc<GrpcAuth>>,
    span: tracing::Span,
) {
    builder.add_service(ExportService::new(receiver, max_message, auth, span));
}

/// HTTP/2 settings of the gRPC server.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GrpcServerSettings {
    /// 0: no limit.
    pub(crate) max_concurrent_streams: u32,
    /// `keepalive::server_parameters::time`: ping after this long without activity.
    pub(crate) keepalive_time: Option<std::time::Duration>,
    /// `…::timeout`: close the connection when a ping is not answered within this.
    pub(crate) keepalive_timeout: Option<std::time::Duration>,
    /// `…::max_connection_age`: GOAWAY once a connection is this old.
    pub(crate) max_connection_age: Option<std::time::Duration>,
    /// `…::max_connection_age_grace`: then cut it after this much more.
    pub(crate) max_connection_age_grace: Option<std::time::Duration>,
}

/// The largest HTTP/2 DATA frame clients may send (`SETTINGS_MAX_FRAME_SIZE`). HTTP/2's
/// default, 16 KiB, cuts a 170 KB export into eleven frames, each one parsed, split off the
/// read buffer (which then moves what follows it into a new allocation) and copied into
/// the message; clients that honour the setting (tonic, grpc-java) send one. grpc-go
/// clients keep to 16 KiB whatever the server says, as the OpenTelemetry Collector does when
/// it serves. Flow control still bounds what a stream may have in flight.
const MAX_FRAME_SIZE: u32 = 1 << 20;

/// Serves `routes` on the connections from `incoming` until `stop`, then finishes in-flight
/// calls.
pub(crate) fn serve(
    incoming: mpsc::Receiver<Conn>,
    routes: Routes,
    settings: GrpcServerSettings,
    stop: CancellationToken,
) -> impl Future<Output = Result<(), tonic::transport::Error>> {
    let mut builder = Server::builder().max_frame_size(Some(MAX_FRAME_SIZE));
    if settings.max_concurrent_streams > 0 {
        builder = builder.max_concurrent_streams(settings.max_concurrent_streams);
    }
    if let Some(time) = settings.keepalive_time {
        builder = builder
            .http2_keepalive_interval(Some(time))
            .http2_keepalive_timeout(settings.keepalive_timeout);
    }
    if let Some(age) = settings.max_connection_age {
        builder = builder.max_connection_age(age);
    }
    if let Some(grace) = settings.max_connection_age_grace {
        builder = builder.max_connection_age_grace(grace);
    }
    let incoming = ReceiverStream::new(incoming).map(Ok::<_, std::io::Error>);
    builder
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
}
