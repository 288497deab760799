//! Hand-written OTLP/JSON codec.
//!
//! Implements the [OTLP JSON Protobuf encoding][spec] for the trace, logs and
//! metrics export requests and responses, plus `google.rpc.Status` error bodies:
//!
//! * field names are lowerCamelCase; decoders also accept the original proto
//!   (snake_case) names;
//! * trace and span ids (of spans, links, log records and exemplars) are
//!   case-insensitive hex strings (not base64) and
//!   must be 16 / 8 bytes or empty; other `bytes` are base64 (standard or
//!   URL-safe, padding optional);
//! * enums are integers; decoders also accept the enum value names;
//! * 64-bit integers are written as decimal strings and read from strings or
//!   numbers; doubles additionally accept `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! * unknown fields are ignored and `null` means the default value (an unset
//!   oneof member or proto3 `optional`: a histogram's `sum`, `min`, `max`);
//!   two members of one oneof (`gauge` and `sum` in one metric) are an error;
//! * `AnyValue` arrays/kvlists may nest at most [`MAX_ANY_VALUE_DEPTH`] levels.
//!
//! Decoding never panics; a malformed document yields a [`JsonError`] naming
//! the offending JSON path, e.g.
//! `resourceSpans[0].scopeSpans[1].spans[3].traceId: invalid hex string "zz"`.
//!
//! [spec]: https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding

mod decode;
mod encode;
#[cfg(test)]
mod metrics_tests;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use crate::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use crate::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use crate::status::Status;
use decode::Path;

/// Maximum nesting of `arrayValue`/`kvlistValue` inside an `AnyValue`.
///
/// A decode-time ceiling that bounds the decoder's recursion; the receiver's configured
/// limit ([`crate::limits::Limits::max_depth`], default 31) is enforced after decoding by
/// [`crate::validate::validate_traces_with`] / [`crate::validate::validate_logs_with`], and
/// is clamped to this.
///
/// Note that serde_json's own recursion limit (128 JSON levels) is kept on,
/// and every AnyValue nesting level costs at least three JSON levels, so a
/// document usually hits that limit (reported as invalid JSON) first.
pub const MAX_ANY_VALUE_DEPTH: usize = 64;

/// A malformed OTLP/JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    path: String,
    message: String,
}

impl JsonError {
    fn new(path: String, message: String) -> Self {
        Self { path, message }
    }

    /// JSON path of the offending value, e.g. `resourceSpans[0].scopeSpans`;
    /// empty for syntax errors and errors at the document root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What was wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for JsonError {}

fn decode_with<T>(
    bytes: &[u8],
    decode: fn(&serde_json::Value, &Path<'_>) -> Result<T, JsonError>,
) -> Result<T, JsonError> {
    decode(&decode::parse(bytes)?, &Path::Root)
}

fn encode_with<T>(msg: &T, encode: fn(&mut String, &T)) -> Vec<u8> {
    let mut out = String::new();
    encode(&mut out, msg);
    out.into_bytes()
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_traces(bytes: &[u8]) -> Result<ExportTraceServiceRequest, JsonError> {
    decode_with(bytes, decode::trace_request)
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`.
pub fn decode_logs(bytes: &[u8]) -> Result<ExportLogsServiceRequest, JsonError> {
    decode_with(bytes, decode::logs_request)
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub fn decode_metrics(bytes: &[u8]) -> Result<ExportMetricsServiceRequest, JsonError> {
    decode_with(bytes, decode::metrics_request)
}

/// Encodes an `ExportMetricsServiceRequest` as OTLP/JSON.
pub fn encode_metrics(req: &ExportMetricsServiceRequest) -> Vec<u8> {
    encode_with(req, encode::metrics_request)
}

/// Encodes an `ExportMetricsServiceResponse` (`{}` on full success).
pub fn encode_metrics_response(resp: &ExportMetricsServiceResponse) -> Vec<u8> {
    encode_with(resp, encode::metrics_response)
}

/// Decodes an OTLP/JSON `ExportMetricsServiceResponse`.
pub fn decode_metrics_response(bytes: &[u8]) -> Result<ExportMetricsServiceResponse, JsonError> {
    decode_with(bytes, decode::metrics_response)
}

/// Encodes an `ExportTraceServiceRequest` as OTLP/JSON.
pub fn encode_traces(req: &ExportTraceServiceRequest) -> Vec<u8> {
    encode_with(req, encode::trace_request)
}

/// Encodes an `ExportLogsServiceRequest` as OTLP/JSON.
pub fn encode_logs(req: &ExportLogsServiceRequest) -> Vec<u8> {
    encode_with(req, encode::logs_request)
}

/// Encodes an `ExportTraceServiceResponse` (`{}` on full success).
pub fn encode_trace_response(resp: &ExportTraceServiceResponse) -> Vec<u8> {
    encode_with(resp, encode::trace_response)
}

/// Encodes an `ExportLogsServiceResponse` (`{}` on full success).
pub fn encode_logs_response(resp: &ExportLogsServiceResponse) -> Vec<u8> {
    encode_with(resp, encode::logs_response)
}

/// Decodes an OTLP/JSON `ExportTraceServiceResponse`.
pub fn decode_trace_response(bytes: &[u8]) -> Result<ExportTraceServiceResponse, JsonError> {
    decode_with(bytes, decode::trace_response)
}

/// Decodes an OTLP/JSON `ExportLogsServiceResponse`.
pub fn decode_logs_response(bytes: &[u8]) -> Result<ExportLogsServiceResponse, JsonError> {
    decode_with(bytes, decode::logs_response)
}

/// Encodes a `google.rpc.Status` error body: `{"code":3,"message":"..."}`
/// (plus `details` as `{"@type":…,"value":<base64>}` objects if any).
pub fn encode_status(status: &Status) -> Vec<u8> {
    encode_with(status, encode::rpc_status)
}

/// Decodes a `google.rpc.Status` error body. Details keep their `@type` and,
/// if it is a base64 string, their `value`.
pub fn decode_status(bytes: &[u8]) -> Result<Status, JsonError> {
    decode_with(bytes, decode::rpc_status)
}
