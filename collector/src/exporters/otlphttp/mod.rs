//! The `otlphttp` exporter: OTLP over HTTP (reqwest), protobuf or JSON bodies, behind the
//! shared queue → retry → timeout layers of [`crate::exporters::helper`].
//!
//! Answers are classified as the OTLP/HTTP spec says: 429, 502, 503 and 504 are retryable,
//! 429 and 503 after the server's `Retry-After` (seconds or an HTTP date) when it sends one;
//! every other non-2xx status is permanent, with the server's `google.rpc.Status` message in
//! the error. A request that never got an answer (connection refused, reset) is retryable.

mod config;
#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::time::SystemTime;

use async_trait::async_trait;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER,
};
use http::StatusCode;
use prost::Message;
use weft_config::SignalKind;

pub use config::{Config, Encoding};

use crate::component::{BuildContext, BuiltExporter, ExporterFactory, Stability};
use crate::exporters::helper::{self, ExportError, MakeSender, PartialSuccess, Sender};
use crate::net::{compress, content_encoding, error_chain, parse_retry_after, Compression};
use crate::pipeline::{all_signals, Payload, Signal};
use crate::telemetry::Telemetry;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// How much of a response body is read: enough for any Status or partial-success answer.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>(
        "otlphttp",
        Stability::Beta,
        all_signals(),
        "Sends to an OTLP/HTTP endpoint (protobuf or JSON), with a sending queue and retries",
        build,
    )
}

fn build(ctx: BuildContext, cfg: &Config, signals: &[SignalKind]) -> anyhow::Result<BuiltExporter> {
    let id = ctx.id_str();
    let make = MakeHttp {
        telemetry: ctx.telemetry.clone(),
        exporter: id.clone(),
        client: cfg
            .tls
            .http_client()
            .map_err(|e| anyhow::anyhow!("exporter {id}: {e:#}"))?,
        headers: header_map(cfg),
        config: cfg,
    };
    helper::build_queued_exporter(
        &ctx,
        signals,
        &make,
        cfg.timeout.get(),
        &cfg.retry_on_failure,
        &cfg.sending_queue,
    )
}

/// What every signal's [`HttpSender`] shares: the client, the headers, the settings.
struct MakeHttp<'a> {
    telemetry: Telemetry,
    exporter: String,
    client: reqwest::Client,
    headers: HeaderMap,
    config: &'a Config,
}

impl MakeSender for MakeHttp<'_> {
    fn sender<T: Payload>(&self) -> anyhow::Result<impl Sender<T>> {
        let signal = T::SIGNAL;
        let url = self.config.signal_url(signal, T::Request::HTTP_PATH).ok_or_else(|| {
            anyhow::anyhow!(
                "exporter {} is used in a {signal} pipeline but has no URL for it: set endpoint or {signal}_endpoint",
                self.exporter
            )
        })?;
        Ok(HttpSender::<T> {
            client: self.client.clone(),
            url,
            headers: self.headers.clone(),
            compression: self.config.compression,
            encoding: self.config.encoding,
            partial: PartialSuccess::new(&self.telemetry, &self.exporter, T::ITEM),
            _signal: PhantomData,
        })
    }
}

/// `headers` as an HTTP header map; validation already rejected what cannot be converted.
fn header_map(cfg: &Config) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in &cfg.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            map.insert(k, v);
        }
    }
    map
}

/// One POST per attempt.
pub(crate) struct HttpSender<T> {
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    compression: Compression,
    encoding: Encoding,
    partial: PartialSuccess,
    _signal: PhantomData<fn() -> T>,
}

impl<T: Payload> HttpSender<T> {
    fn body(&self, data: &T) -> Result<Vec<u8>, ExportError> {
        let raw = match self.encoding {
            Encoding::Proto => data.to_bytes().to_vec(),
            Encoding::Json => data.request().encode_json(),
        };
        compress(raw, self.compression)
            .map_err(|e| ExportError::permanent(format!("cannot compress the request body: {e}")))
    }

    /// Logs and counts a partial success in a 2xx answer; an undecodable body is ignored.
    fn check_partial_success(&self, content_type: &str, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let response = if content_type.starts_with(JSON) {
            T::Request::decode_response_json(body).map_err(|e| e.to_string())
        } else {
            <T::Request as Signal>::Response::decode(body).map_err(|e| e.to_string())
        };
        match response {
            Ok(r) => {
                if let Some((rejected, message)) = T::Request::partial_success(&r) {
                    self.partial.report(rejected, message);
                }
            }
            Err(e) => tracing::debug!(
                url = %self.url, error = %e,
                "could not decode the success response body; ignoring it"
            ),
        }
    }
}

#[async_trait]
impl<T: Payload> Sender<T> for HttpSender<T> {
    async fn send(&self, data: &T) -> Result<(), ExportError> {
        let body = self.body(data)?;
        let content_type = match self.encoding {
            Encoding::Proto => PROTOBUF,
            Encoding::Json => JSON,
        };
        let mut request = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, content_type);
        if let Some(encoding) = content_encoding(self.compression) {
            request = request.header(CONTENT_ENCODING, encoding);
        }
        let response = request.body(body).send().await.map_err(|e| {
            ExportError::retryable(format!("cannot send to {}: {}", self.url, error_chain(&e)))
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let response_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = read_limited(response).await;
        if status.is_success() {
            self.check_partial_success(&response_type, &body);
            return Ok(());
        }
        let message = format!(
            "{} answered HTTP {status}: {}",
            self.url,
            error_detail(&response_type, &body)
        );
        Err(classify(
            status,
            retry_after.as_deref(),
            SystemTime::now(),
            message,
        ))
    }
}

/// The OTLP/HTTP spec's retry rules for a non-2xx answer.
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<&str>,
    now: SystemTime,
    message: String,
) -> ExportError {
    match status.as_u16() {
        429 | 503 => match retry_after.and_then(|v| parse_retry_after(v, now)) {
            Some(delay) => ExportError::throttled(message, delay),
            None => ExportError::retryable(message),
        },
        502 | 504 => ExportError::retryable(message),
        _ => ExportError::permanent(message),
    }
}

/// The message of an error answer: its `google.rpc.Status` (protobuf or JSON, by content
/// type), else the start of its text.
fn error_detail(content_type: &str, body: &[u8]) -> String {
    let status = if content_type.starts_with(PROTOBUF) {
        weft_proto::status::Status::decode(body).ok()
    } else if content_type.starts_with(JSON) {
        weft_proto::otlp_json::decode_status(body).ok()
    } else {
        None
    };
    if let Some(s) = status.filter(|s| !s.message.is_empty()) {
        return s.message;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    let text = text.trim();
    if text.is_empty() {
        "(no message in the response body)".to_string()
    } else {
        text.to_string()
    }
}

async fn read_limited(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    body
}
