//! What both transports share: turning a request body into a batch, handing it to the
//! pipeline, counting the outcome, and the [`Rejection`] that says why a request failed.
//!
//! Decoding is CPU work proportional to the body; above [`BLOCKING_THRESHOLD`] (and whenever
//! the body must be decompressed) it runs on tokio's blocking pool so a few large exports do
//! not stall every other connection on the async worker threads.

use std::sync::Arc;

use bytes::Bytes;
use weft_proto::collector::logs::v1::ExportLogsServiceResponse;
use weft_proto::collector::trace::v1::ExportTraceServiceResponse;
use weft_proto::{otlp_json, validate};

use super::compression::{decompress, Encoding};
use crate::pipeline::{ConsumeError, Consumer, Logs, Payload, Traces};
use crate::telemetry::ReceiverMetrics;

/// Bodies larger than this are decoded on the blocking pool. 64 KiB decodes in well under a
/// millisecond; beyond that the hop to another thread costs less than the stall it avoids.
pub(crate) const BLOCKING_THRESHOLD: usize = 64 * 1024;

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/x-protobuf`, and every gRPC message.
    Protobuf,
    /// `application/json`: OTLP/JSON.
    Json,
}

impl Format {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// What differs between the two signals for the receiver: names, JSON codec, validation.
pub(crate) trait OtlpSignal: Payload {
    /// The export response message of this signal's service.
    type Response: prost::Message + Default + Send + 'static;
    /// The request message's name, for error messages.
    const REQUEST: &'static str;
    /// The fully qualified gRPC service name.
    const GRPC_SERVICE: &'static str;
    /// The gRPC method path of `Export`.
    const GRPC_EXPORT_PATH: &'static str;

    fn decode_json(bytes: &[u8]) -> Result<Self, String>;
    /// Checks what protobuf cannot (id lengths), naming the offending field.
    fn check(&self) -> Result<(), String>;
    fn encode_response_json(response: &Self::Response) -> Vec<u8>;
}

impl OtlpSignal for Traces {
    type Response = ExportTraceServiceResponse;
    const REQUEST: &'static str = "ExportTraceServiceRequest";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const GRPC_EXPORT_PATH: &'static str =
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    fn decode_json(bytes: &[u8]) -> Result<Self, String> {
        otlp_json::decode_traces(bytes).map_err(|e| e.to_string())
    }
    fn check(&self) -> Result<(), String> {
        validate::validate_traces(self).map_err(|e| e.to_string())
    }
    fn encode_response_json(response: &Self::Response) -> Vec<u8> {
        otlp_json::encode_trace_response(response)
    }
}

impl OtlpSignal for Logs {
    type Response = ExportLogsServiceResponse;
    const REQUEST: &'static str = "ExportLogsServiceRequest";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const GRPC_EXPORT_PATH: &'static str =
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

    fn decode_json(bytes: &[u8]) -> Result<Self, String> {
        otlp_json::decode_logs(bytes).map_err(|e| e.to_string())
    }
    fn check(&self) -> Result<(), String> {
        validate::validate_logs(self).map_err(|e| e.to_string())
    }
    fn encode_response_json(response: &Self::Response) -> Vec<u8> {
        otlp_json::encode_logs_response(response)
    }
}

/// Why a request was not accepted. Each variant has one gRPC code and one HTTP status
/// (see `answer`); the message always says what was wrong and is sent to the client.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// Undecodable or invalid data: gRPC INVALID_ARGUMENT, HTTP 400. `items` is how many
    /// items the request held when it could be decoded (counted as refused), else 0.
    Invalid { message: String, items: usize },
    /// The body (or its decompressed form) is over the limit: RESOURCE_EXHAUSTED / 413.
    TooLarge(String),
    /// The pipeline did not take the data (see [`ConsumeError`] for the codes).
    Pipeline(ConsumeError),
    /// Weft itself failed (a decoding task panicked): INTERNAL / 500.
    Internal(String),
}

impl Rejection {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            items: 0,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Rejection::Invalid { message, .. }
            | Rejection::TooLarge(message)
            | Rejection::Internal(message) => message.clone(),
            Rejection::Pipeline(e) => e.to_string(),
        }
    }
}

/// Decodes and checks one request body; the whole of it runs on one thread.
pub(crate) fn decode<T: OtlpSignal>(bytes: &[u8], format: Format) -> Result<T, Rejection> {
    let data = match format {
        Format::Protobuf => T::decode(bytes).map_err(|e| {
            Rejection::invalid(format!(
                "cannot decode the body as a protobuf {}: {e}",
                T::REQUEST
            ))
        })?,
        Format::Json => T::decode_json(bytes).map_err(|e| {
            Rejection::invalid(format!(
                "cannot decode the body as an OTLP/JSON {}: {e}",
                T::REQUEST
            ))
        })?,
    };
    data.check().map_err(|e| Rejection::Invalid {
        message: format!("invalid {}: {e}", T::REQUEST),
        items: data.item_count(),
    })?;
    Ok(data)
}

/// Runs `f` on the blocking pool when `heavy`, inline otherwise.
pub(crate) async fn off_thread<R: Send + 'static>(
    heavy: bool,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Rejection> {
    if !heavy {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Rejection::Internal(format!("decoding the request failed: {e}")))
}

/// One signal on one transport: where its batches go and where they are counted.
pub(crate) struct SignalReceiver<T: Payload> {
    pub(crate) next: Arc<dyn Consumer<T>>,
    pub(crate) metrics: ReceiverMetrics,
}

impl<T: OtlpSignal> SignalReceiver<T> {
    pub(crate) fn new(next: Arc<dyn Consumer<T>>, metrics: ReceiverMetrics) -> Self {
        Self { next, metrics }
    }

    /// Decompresses (bounded by `limit` bytes), decodes and checks `body`, then hands it to
    /// the pipeline. `Ok` only once the pipeline took the data.
    pub(crate) async fn receive(
        &self,
        body: Bytes,
        encoding: Encoding,
        format: Format,
        limit: usize,
    ) -> Result<T::Response, Rejection> {
        let heavy = encoding != Encoding::Identity || body.len() > BLOCKING_THRESHOLD;
        let decoded = off_thread(heavy, move || {
            let raw = decompress(body, encoding, limit)?;
            decode::<T>(&raw, format)
        })
        .await
        .and_then(|r| r);
        let data = match decoded {
            Ok(data) => data,
            Err(rejection) => {
                if let Rejection::Invalid { items, .. } = &rejection {
                    self.metrics.refused.inc_by(*items as u64);
                }
                return Err(rejection);
            }
        };
        let items = data.item_count() as u64;
        if items == 0 {
            // Nothing to forward (the Collector answers an empty export the same way).
            return Ok(T::Response::default());
        }
        match self.next.consume(data).await {
            Ok(()) => {
                self.metrics.accepted.inc_by(items);
                Ok(T::Response::default())
            }
            Err(e) => {
                self.metrics.refused.inc_by(items);
                Err(Rejection::Pipeline(e))
            }
        }
    }
}
