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
use prost::Message;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;
use weft_config::SignalKind;

pub use config::{Config, KeepaliveSettings, Target};

use crate::component::{BuildContext, BuiltExporter, ExporterFactory, Stability};
use crate::exporters::helper::{self, ExportError, MakeSender, PartialSuccess, Sender};
use crate::net::{error_chain, Compression, SkipVerify};
use crate::pipeline::{all_signals, Payload, Signal};
use crate::telemetry::Telemetry;

pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>(
        "otlp",
        Stability::Beta,
        all_signals(),
        "Sends to an OTLP/gRPC endpoint, with a sending queue and retries",
        build,
    )
}

fn build(ctx: BuildContext, cfg: &Config, signals: &[SignalKind]) -> anyhow::Result<BuiltExporter> {
    let id = ctx.id_str();
    let make = MakeGrpc::new(&ctx.telemetry, id.clone(), cfg)
        .map_err(|e| anyhow::anyhow!("exporter {id}: {e:#}"))?;
    helper::build_queued_exporter(
        &ctx,
        signals,
        &make,
        cfg.timeout.get(),
        &cfg.retry_on_failure,
        &cfg.sending_queue,
    )
}

/// What every signal's [`GrpcSender`] shares: one connection, the headers, compression.
/// Also the per-backend client of the `loadbalancing` exporter (one per backend endpoint).
pub(crate) struct MakeGrpc {
    telemetry: Telemetry,
    exporter: String,
    connection: Arc<Connection>,
    headers: MetadataMap,
    compression: Option<CompressionEncoding>,
    timeout: Duration,
}

impl MakeGrpc {
    /// The client `cfg` describes, for the exporter `exporter` (its metrics label). Reads the
    /// TLS files now; connects lazily, on the first send.
    pub(crate) fn new(
        telemetry: &Telemetry,
        exporter: String,
        cfg: &Config,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            telemetry: telemetry.clone(),
            exporter,
            connection: Arc::new(Connection {
                endpoint: tonic_endpoint(cfg)?,
                channel: OnceLock::new(),
                display: cfg.endpoint.clone(),
            }),
            headers: metadata(cfg),
            compression: match cfg.compression {
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
                Compression::None => None,
            },
            timeout: cfg.timeout.get(),
        })
    }
}

impl MakeSender for MakeGrpc {
    fn sender<T: Payload>(&self) -> anyhow::Result<impl Sender<T>> {
        Ok(self.grpc_sender::<T>())
    }
}

impl MakeGrpc {
    /// The sender of signal `T`, by its concrete type.
    pub(crate) fn grpc_sender<T: Payload>(&self) -> GrpcSender<T> {
        GrpcSender::<T> {
            connection: self.connection.clone(),
            headers: self.headers.clone(),
            compression: self.compression,
            timeout: self.timeout,
            partial: PartialSuccess::new(&self.telemetry, &self.exporter, T::ITEM),
            _signal: PhantomData,
        }
    }
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
        return Ok(endpoint.tls_config_with_verifier(tls, Arc::new(SkipVerify::default()))?);
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

#[async_trait]
impl<T: Payload> Sender<T> for GrpcSender<T> {
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
        let codec = EncodedCodec::<T, <T::Request as Signal>::Response>::default();
        let path = PathAndQuery::from_static(T::Request::GRPC_EXPORT_PATH);
        match grpc.unary(request, path, codec).await {
            Ok(response) => {
                if let Some((rejected, message)) = T::Request::partial_success(response.get_ref()) {
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
        // The length is known: one allocation for the frame instead of doubling the buffer
        // from tonic's 8 KiB while copying it each time (a 5 MB batch grew ten times: 9.7% of
        // pass-through's CPU in `perf`, the copies and the new pages' faults).
        item.write_to(dst, |dst, len| dst.reserve(len));
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
