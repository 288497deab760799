//! The `otlp` exporter: OTLP over gRPC (tonic), behind the shared queue → retry → timeout
//! layers of [`crate::exporters::helper`].
//!
//! Failures are classified once, here, as the OTLP spec says: CANCELLED, DEADLINE_EXCEEDED,
//! ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are retryable; RESOURCE_EXHAUSTED only
//! when the server attached a `google.rpc.RetryInfo` (then after its `retry_delay`); every
//! other code is permanent. A connection that cannot be made is UNAVAILABLE, so retryable.

mod config;
#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use http::uri::PathAndQuery;
use prometheus_client::metrics::counter::Counter;
use prost::Message;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;
use weft_config::Signal;
use weft_proto::collector::logs::v1::ExportLogsServiceResponse;
use weft_proto::collector::trace::v1::ExportTraceServiceResponse;
use weft_proto::otlp_json::{self, JsonError};

pub use config::{Compression, Config, KeepaliveSettings, LoadedTls, Target, TlsClientSettings};

use crate::component::{BuildContext, BuiltExporter, ExporterFactory, Stability};
use crate::exporters::helper::{self, ExportError, Sender};
use crate::pipeline::{Logs, Payload, Traces};
use crate::telemetry::Telemetry;

pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>(
        "otlp",
        Stability::Beta,
        "Sends traces and logs to an OTLP/gRPC endpoint, with a sending queue and retries",
        build,
    )
}

fn build(ctx: BuildContext, cfg: &Config, signals: &[Signal]) -> anyhow::Result<BuiltExporter> {
    let id = ctx.id_str();
    let endpoint = tonic_endpoint(cfg).map_err(|e| anyhow::anyhow!("exporter {id}: {e:#}"))?;
    let shared = Arc::new(Connection {
        endpoint,
        channel: OnceLock::new(),
        display: cfg.endpoint.clone(),
    });
    let headers = metadata(cfg);
    let compression = match cfg.compression {
        Compression::Gzip => Some(CompressionEncoding::Gzip),
        Compression::Zstd => Some(CompressionEncoding::Zstd),
        Compression::None => None,
    };
    let timeout = cfg.timeout.get();
    let traces = signals
        .contains(&Signal::Traces)
        .then(|| {
            let sender = GrpcSender::<Traces>::new(
                &ctx.telemetry,
                &id,
                shared.clone(),
                headers.clone(),
                compression,
                timeout,
            );
            helper::build_queued(
                &ctx,
                sender,
                timeout,
                &cfg.retry_on_failure,
                &cfg.sending_queue,
            )
        })
        .transpose()?;
    let logs = signals
        .contains(&Signal::Logs)
        .then(|| {
            let sender = GrpcSender::<Logs>::new(
                &ctx.telemetry,
                &id,
                shared.clone(),
                headers.clone(),
                compression,
                timeout,
            );
            helper::build_queued(
                &ctx,
                sender,
                timeout,
                &cfg.retry_on_failure,
                &cfg.sending_queue,
            )
        })
        .transpose()?;
    Ok(helper::built(traces, logs))
}

/// The tonic endpoint for `cfg`: URI, TLS (files read now) and keepalive. No connection yet.
pub(crate) fn tonic_endpoint(cfg: &Config) -> anyhow::Result<Endpoint> {
    let target = cfg.target().map_err(|e| anyhow::anyhow!("endpoint: {e}"))?;
    let mut endpoint = Endpoint::from_shared(target.uri())?
        .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))?
        .connect_timeout(Duration::from_secs(10));
    if let Some(ka) = &cfg.keepalive {
        endpoint = endpoint
            .http2_keep_alive_interval(ka.time.get())
            .keep_alive_timeout(ka.timeout.get())
            .keep_alive_while_idle(ka.permit_without_stream);
    }
    if !target.tls {
        return Ok(endpoint);
    }
    let loaded = cfg.tls.load()?;
    let mut tls = ClientTlsConfig::new();
    if let Some(name) = &cfg.tls.server_name_override {
        tls = tls.domain_name(name.clone());
    }
    if let Some((cert, key)) = loaded.identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    if cfg.tls.insecure_skip_verify {
        // A custom verifier replaces the roots: setting any here would be an error.
        return Ok(endpoint.tls_config_with_verifier(tls, Arc::new(SkipVerify::new()))?);
    }
    tls = match loaded.ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
        None => tls.with_native_roots(),
    };
    endpoint.tls_config(tls).map_err(|e| {
        anyhow::anyhow!(
            "tls: {}; set tls::ca_file, or tls::insecure: true for a plaintext endpoint",
            error_chain(&e)
        )
    })
}

/// An error with its causes, e.g. "transport error: no native certs found".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `headers` as gRPC metadata; validation already rejected what cannot be converted.
fn metadata(cfg: &Config) -> MetadataMap {
    let mut map = MetadataMap::new();
    for (k, v) in &cfg.headers {
        if let (Ok(k), Ok(v)) = (
            AsciiMetadataKey::from_bytes(k.as_bytes()),
            AsciiMetadataValue::try_from(v.as_str()),
        ) {
            map.insert(k, v);
        }
    }
    map
}

/// What the OTLP exporters need to know about a signal beyond [`Payload`]: its gRPC method,
/// its HTTP path, its response and how that response reports a partial success.
pub(crate) trait OtlpSignal: Payload {
    type Response: prost::Message + Default + Send + 'static;
    /// The gRPC method path, e.g. `/opentelemetry.proto.collector.trace.v1.TraceService/Export`.
    const GRPC_PATH: &'static str;
    /// Appended to an `otlphttp` base endpoint, e.g. `v1/traces`.
    const HTTP_PATH: &'static str;

    fn encode_json(&self) -> Vec<u8>;
    fn decode_json_response(bytes: &[u8]) -> Result<Self::Response, JsonError>;
    /// The rejected item count and message of a partial success, if the response has one.
    fn partial_success(response: &Self::Response) -> Option<(i64, &str)>;
}

impl OtlpSignal for Traces {
    type Response = ExportTraceServiceResponse;
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const HTTP_PATH: &'static str = "v1/traces";

    fn encode_json(&self) -> Vec<u8> {
        otlp_json::encode_traces(&self.request())
    }
    fn decode_json_response(bytes: &[u8]) -> Result<Self::Response, JsonError> {
        otlp_json::decode_trace_response(bytes)
    }
    fn partial_success(response: &Self::Response) -> Option<(i64, &str)> {
        response
            .partial_success
            .as_ref()
            .map(|p| (p.rejected_spans, p.error_message.as_str()))
    }
}

impl OtlpSignal for Logs {
    type Response = ExportLogsServiceResponse;
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const HTTP_PATH: &'static str = "v1/logs";

    fn encode_json(&self) -> Vec<u8> {
        otlp_json::encode_logs(&self.request())
    }
    fn decode_json_response(bytes: &[u8]) -> Result<Self::Response, JsonError> {
        otlp_json::decode_logs_response(bytes)
    }
    fn partial_success(response: &Self::Response) -> Option<(i64, &str)> {
        response
            .partial_success
            .as_ref()
            .map(|p| (p.rejected_log_records, p.error_message.as_str()))
    }
}

/// Logs and counts the items a backend accepted the request for but rejected anyway.
///
/// A partial success is not retried: the OTLP spec says the server has already decided, and
/// sending the same items again would get the same answer.
#[derive(Clone)]
pub(crate) struct PartialSuccess {
    exporter: String,
    item: &'static str,
    rejected: Counter,
}

impl PartialSuccess {
    pub(crate) fn new(telemetry: &Telemetry, exporter: &str, item: &'static str) -> Self {
        Self {
            exporter: exporter.to_string(),
            item,
            rejected: telemetry.counter(
                &format!("otelcol_exporter_partial_success_rejected_{item}"),
                &format!("Number of {item} the destination accepted the request for but rejected."),
                &[("exporter", exporter)],
            ),
        }
    }

    pub(crate) fn report(&self, rejected: i64, message: &str) {
        if rejected <= 0 && message.is_empty() {
            return;
        }
        if rejected > 0 {
            self.rejected.inc_by(rejected as u64);
        }
        tracing::warn!(
            component = %self.exporter,
            rejected,
            error = message,
            "the destination rejected {rejected} {} of an accepted request (partial success); they are not retried",
            self.item
        );
    }
}

/// The one channel both signals' senders share, made on first use: building it needs a
/// running tokio runtime, and a lazy channel lets Weft start while the backend is down.
struct Connection {
    endpoint: Endpoint,
    channel: OnceLock<Channel>,
    display: String,
}

impl Connection {
    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone()
    }
}

/// One `Export` call per attempt.
pub(crate) struct GrpcSender<T> {
    connection: Arc<Connection>,
    headers: MetadataMap,
    compression: Option<CompressionEncoding>,
    timeout: Duration,
    partial: PartialSuccess,
    _signal: PhantomData<fn() -> T>,
}

impl<T: OtlpSignal> GrpcSender<T> {
    fn new(
        telemetry: &Telemetry,
        exporter: &str,
        connection: Arc<Connection>,
        headers: MetadataMap,
        compression: Option<CompressionEncoding>,
        timeout: Duration,
    ) -> Self {
        Self {
            connection,
            headers,
            compression,
            timeout,
            partial: PartialSuccess::new(telemetry, exporter, T::ITEM),
            _signal: PhantomData,
        }
    }
}

#[async_trait]
impl<T: OtlpSignal> Sender<T> for GrpcSender<T> {
    async fn send(&self, data: &T) -> Result<(), ExportError> {
        let mut grpc = tonic::client::Grpc::new(self.connection.channel())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        if let Some(c) = self.compression {
            grpc = grpc.send_compressed(c);
        }
        grpc.ready().await.map_err(|e| {
            ExportError::retryable(format!(
                "cannot connect to {}: {e}",
                self.connection.display
            ))
        })?;
        // An encoded batch is shared, not copied, until its bytes go into the frame.
        let mut request = tonic::Request::new(data.clone());
        *request.metadata_mut() = self.headers.clone();
        if !self.timeout.is_zero() {
            request.set_timeout(self.timeout);
        }
        let codec = EncodedCodec::<T, T::Response>::default();
        match grpc
            .unary(request, PathAndQuery::from_static(T::GRPC_PATH), codec)
            .await
        {
            Ok(response) => {
                if let Some((rejected, message)) = T::partial_success(response.get_ref()) {
                    self.partial.report(rejected, message);
                }
                Ok(())
            }
            Err(status) => Err(map_status(&status, &self.connection.display)),
        }
    }
}

/// A client codec whose requests are batches written as they are held (an encoded batch's
/// bytes go into the frame unchanged) and whose responses are prost messages.
struct EncodedCodec<T, R>(PhantomData<fn() -> (T, R)>);

impl<T, R> Default for EncodedCodec<T, R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: Payload, R: prost::Message + Default + Send + 'static> Codec for EncodedCodec<T, R> {
    type Encode = T;
    type Decode = R;
    type Encoder = BatchEncoder<T>;
    type Decoder = tonic_prost::ProstDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        BatchEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::new(BufferSettings::default())
    }
}

/// Writes a batch's encoding into the gRPC frame.
struct BatchEncoder<T>(PhantomData<fn() -> T>);

impl<T: Payload> Encoder for BatchEncoder<T> {
    type Item = T;
    type Error = tonic::Status;

    fn encode(&mut self, item: T, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        item.write_to(dst);
        Ok(())
    }
}

/// Classifies a gRPC failure as the OTLP spec says (see the module docs).
pub(crate) fn map_status(status: &tonic::Status, endpoint: &str) -> ExportError {
    let retry_info = retry_info(status.details());
    let message = format!(
        "{endpoint} answered {:?}: {}",
        status.code(),
        status.message()
    );
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => match retry_info {
            Some(Some(delay)) => ExportError::throttled(message, delay),
            _ => ExportError::retryable(message),
        },
        Code::ResourceExhausted => match retry_info {
            Some(delay) => ExportError::throttled(message, delay.unwrap_or_default()),
            None => ExportError::permanent(format!(
                "{message} (without RetryInfo, which the OTLP spec treats as not retryable)"
            )),
        },
        _ => ExportError::permanent(message),
    }
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// From `grpc-status-details-bin` (a `google.rpc.Status`): `None` when there is no
/// RetryInfo, `Some(None)` when there is one without a delay.
fn retry_info(details: &[u8]) -> Option<Option<Duration>> {
    if details.is_empty() {
        return None;
    }
    let status = weft_proto::status::Status::decode(details).ok()?;
    let any = status
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.RetryInfo"))?;
    let info = RetryInfo::decode(any.value.as_slice()).ok()?;
    Some(info.retry_delay.map(|d| {
        Duration::from_secs(d.seconds.max(0) as u64) + Duration::from_nanos(d.nanos.max(0) as u64)
    }))
}

/// `tls::insecure_skip_verify`: accepts any certificate chain and host name (as Go's
/// `InsecureSkipVerify`), but still checks that the server holds the certificate's key.
#[derive(Debug)]
struct SkipVerify {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl SkipVerify {
    fn new() -> Self {
        Self {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
