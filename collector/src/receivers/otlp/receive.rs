//! What both transports share: turning a request body into a batch, handing it to the
//! pipeline, counting the outcome, and the [`Rejection`] that says why a request failed.
//!
//! Every request is checked after decoding and before the pipeline, the same way on both
//! transports: ids, then the [`Limits`] (attribute counts, key and value lengths, `AnyValue`
//! depth); a request over a limit is refused whole with INVALID_ARGUMENT / 400 and a message
//! naming the field and the limit. A body nested too deeply to decode at all (protobuf's
//! recursion limit) gets the same answer, never a stack overflow.
//!
//! Metrics have data model rules beyond the limits (a histogram's buckets must match its
//! bounds, a metric needs a name, a sum cannot be NaN): the points that break them are
//! removed and the rest accepted, answered with the OTLP partial success
//! (`rejected_data_points` and the first problem's path), and counted as refused.
//!
//! A protobuf body is checked on the wire without decoding it ([`wire`]): a few hundred
//! microseconds for a 1 MiB body, so it runs inline below [`BLOCKING_THRESHOLD`]. Bodies
//! that must be decompressed or decoded (OTLP/JSON, and protobuf outside the scanner's
//! subset) cost more: above [`DECODE_BLOCKING_THRESHOLD`], and whenever the body is
//! compressed, they run on tokio's blocking pool so a few large exports do not stall every
//! other connection on the async worker threads.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use weft_proto::limits::{self, Limits};

use super::compression::{decompress, DecompressError, Encoding};
use crate::pipeline::{ConsumeError, Consumer, Payload, Signal};
use crate::telemetry::ReceiverMetrics;

/// Uncompressed protobuf bodies larger than this are checked on the blocking pool. Scanning
/// runs at over 1 GB/s, so below it the hop to another thread costs more than it saves.
pub(crate) const BLOCKING_THRESHOLD: usize = 1024 * 1024;

/// OTLP/JSON bodies larger than this are decoded on the blocking pool: 64 KiB decodes in
/// well under a millisecond; beyond that the hop costs less than the stall it avoids.
pub(crate) const DECODE_BLOCKING_THRESHOLD: usize = 64 * 1024;

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

/// The export response of the signal batches of type `T` carry.
pub(crate) type ResponseOf<T> = <<T as Payload>::Request as Signal>::Response;

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

impl From<DecompressError> for Rejection {
    fn from(e: DecompressError) -> Self {
        match e {
            DecompressError::TooLarge(message) => Rejection::TooLarge(message),
            DecompressError::Corrupt(message) => Rejection::invalid(message),
            DecompressError::Internal(message) => Rejection::Internal(message),
        }
    }
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

/// What decoding accepted: the batch, and the items the data model check removed from it
/// (how many, and why) for the partial success answer.
pub(crate) struct Decoded<T> {
    pub(crate) batch: T,
    pub(crate) dropped: Option<(usize, String)>,
}

/// Checks one request body against `limits` and makes it a batch; the whole of it runs on
/// one thread. A protobuf body the wire scanner accepts stays the bytes it arrived in;
/// anything else is decoded, and the decoder or the validator words the answer.
pub(crate) fn decode<T: Payload>(
    bytes: Bytes,
    format: Format,
    limits: &Limits,
) -> Result<Decoded<T>, Rejection> {
    if format == Format::Protobuf {
        if let Some(items) = T::Request::scan(&bytes, limits) {
            return Ok(Decoded {
                batch: T::from_encoded(bytes, items),
                dropped: None,
            });
        }
    }
    let mut request = match format {
        Format::Protobuf => T::Request::decode(&bytes[..]).map_err(|e| {
            // prost's message for this one lists every field of the 100 levels it went down.
            let reason = if limits::is_recursion_limit(&e) {
                format!(
                    "messages nest more than {} levels deep; {}",
                    limits::PROTOBUF_RECURSION_LIMIT,
                    limits::depth_hint(limits)
                )
            } else {
                e.to_string()
            };
            Rejection::invalid(format!(
                "cannot decode the body as a protobuf {}: {reason}",
                T::Request::REQUEST
            ))
        })?,
        Format::Json => T::Request::decode_json(&bytes).map_err(|(e, too_deep)| {
            let hint = if too_deep {
                format!(" ({})", limits::depth_hint(limits))
            } else {
                String::new()
            };
            Rejection::invalid(format!(
                "cannot decode the body as an OTLP/JSON {}: {e}{hint}",
                T::Request::REQUEST
            ))
        })?,
    };
    request.validate(limits).map_err(|e| Rejection::Invalid {
        message: format!("invalid {}: {e}", T::Request::REQUEST),
        items: request.items(),
    })?;
    let dropped = request.drop_malformed();
    Ok(Decoded {
        batch: T::from_request(request),
        dropped,
    })
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

/// One signal on one transport: where its batches go, where they are counted and what
/// [`Limits`] they must respect.
pub(crate) struct SignalReceiver<T: Payload> {
    pub(crate) next: Arc<dyn Consumer<T>>,
    pub(crate) metrics: ReceiverMetrics,
    pub(crate) limits: Limits,
}

impl<T: Payload> SignalReceiver<T> {
    /// A receiver enforcing the default [`Limits`].
    pub(crate) fn new(next: Arc<dyn Consumer<T>>, metrics: ReceiverMetrics) -> Self {
        Self {
            next,
            metrics,
            limits: Limits::default(),
        }
    }

    /// Enforces `limits` instead of the defaults (from the receiver's configuration).
    pub(crate) fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Decompresses (bounded by `limit` bytes), decodes and checks `body`, then hands it to
    /// the pipeline. `Ok` only once the pipeline took the data.
    pub(crate) async fn receive(
        &self,
        body: Bytes,
        encoding: Encoding,
        format: Format,
        limit: usize,
    ) -> Result<ResponseOf<T>, Rejection> {
        let threshold = match format {
            Format::Protobuf => BLOCKING_THRESHOLD,
            Format::Json => DECODE_BLOCKING_THRESHOLD,
        };
        let heavy = encoding != Encoding::Identity || body.len() > threshold;
        let limits = self.limits;
        let decoded = off_thread(heavy, move || {
            let raw = decompress(body, encoding, limit)?;
            decode::<T>(raw, format, &limits)
        })
        .await
        .and_then(|r| r);
        let Decoded {
            batch: data,
            dropped,
        } = match decoded {
            Ok(decoded) => decoded,
            Err(rejection) => {
                if let Rejection::Invalid { items, .. } = &rejection {
                    self.metrics.refused.inc_by(*items as u64);
                }
                return Err(rejection);
            }
        };
        // The answer once the rest is taken: a partial success naming what was dropped.
        let response = || match &dropped {
            None => ResponseOf::<T>::default(),
            Some((rejected, message)) => T::Request::partial_response(*rejected, message.clone()),
        };
        if let Some((rejected, message)) = &dropped {
            self.metrics.refused.inc_by(*rejected as u64);
            tracing::debug!(
                error = %message,
                "accepted a request without the data points the data model forbids"
            );
        }
        let items = data.item_count() as u64;
        if items == 0 {
            // Nothing to forward (the Collector answers an empty export the same way).
            return Ok(response());
        }
        match self.next.consume(data).await {
            Ok(()) => {
                self.metrics.accepted.inc_by(items);
                Ok(response())
            }
            Err(e) => {
                self.metrics.refused.inc_by(items);
                Err(Rejection::Pipeline(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The limits on the shared path: what both transports answer for a request over one.

    use prost::Message;
    use weft_proto::common::v1::{any_value, AnyValue, KeyValue};

    use super::super::answer::Answer;
    use super::super::test_support::{logs, spans, Behaviour, TestConsumer};
    use super::*;
    use crate::pipeline::{Logs, Traces};
    use crate::telemetry::Telemetry;
    use weft_proto::otlp_json;

    struct Setup<T: Payload> {
        receiver: SignalReceiver<T>,
        consumer: Arc<TestConsumer<T>>,
        telemetry: Telemetry,
    }

    fn setup<T: Payload>(item: &str) -> Setup<T> {
        let telemetry = Telemetry::new();
        let consumer = Arc::new(TestConsumer::<T>::new(Behaviour::Accept));
        let receiver = SignalReceiver::new(
            consumer.clone() as Arc<dyn Consumer<T>>,
            ReceiverMetrics::new(&telemetry, "otlp", "grpc", item),
        );
        Setup {
            receiver,
            consumer,
            telemetry,
        }
    }

    impl<T: Payload> Setup<T> {
        async fn send(&self, body: Vec<u8>, format: Format) -> Result<ResponseOf<T>, Rejection> {
            self.receiver
                .receive(body.into(), Encoding::Identity, format, usize::MAX)
                .await
        }

        fn refused(&self, item: &str) -> u64 {
            self.telemetry.counter_value(
                &format!("otelcol_receiver_refused_{item}"),
                &[("receiver", "otlp"), ("transport", "grpc")],
            )
        }
    }

    fn attributes(n: usize) -> Vec<KeyValue> {
        (0..n)
            .map(|i| KeyValue {
                key: format!("k{i}"),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(i as i64)),
                }),
                ..Default::default()
            })
            .collect()
    }

    /// The rejection's answer must be INVALID_ARGUMENT / 400 carrying `message`.
    fn assert_invalid(rejection: &Rejection, message: &str) {
        let answer = Answer::of(rejection);
        assert_eq!(answer.grpc, tonic::Code::InvalidArgument, "{rejection:?}");
        assert_eq!(answer.http.as_u16(), 400, "{rejection:?}");
        assert_eq!(answer.message, message);
    }

    #[tokio::test]
    async fn too_many_attributes_are_refused_on_both_encodings() {
        let s = setup::<Traces>("spans");
        let mut at_limit = spans(2);
        at_limit.resource_spans[0].scope_spans[0].spans[1].attributes = attributes(128);
        for body in [
            at_limit.encode_to_vec(),
            otlp_json::encode_traces(&at_limit),
        ] {
            let format = if body[0] == b'{' {
                Format::Json
            } else {
                Format::Protobuf
            };
            s.send(body, format).await.unwrap();
        }
        assert_eq!(s.consumer.received().len(), 2);

        let mut over = spans(2);
        over.resource_spans[0].scope_spans[0].spans[1].attributes = attributes(5000);
        for (body, format) in [
            (over.encode_to_vec(), Format::Protobuf),
            (otlp_json::encode_traces(&over), Format::Json),
        ] {
            let rejection = s.send(body, format).await.unwrap_err();
            assert_invalid(
                &rejection,
                "invalid ExportTraceServiceRequest: resource_spans[0].scope_spans[0].spans[1]\
                 .attributes: 5000 attributes, the limit is 128",
            );
        }
        // Nothing reached the pipeline; both spans of each request are counted as refused.
        assert_eq!(s.consumer.received().len(), 2);
        assert_eq!(s.refused("spans"), 4);
    }

    #[tokio::test]
    async fn configured_limits_apply_to_logs() {
        let mut s = setup::<Logs>("log_records");
        s.receiver = s.receiver.with_limits(Limits {
            max_value_bytes: 8,
            ..Limits::default()
        });
        let mut request = logs(1);
        request.resource_logs[0].scope_logs[0].log_records[0].attributes = vec![KeyValue {
            key: "user.name".into(),
            value: None,
            ..Default::default()
        }];
        let rejection = s
            .send(request.encode_to_vec(), Format::Protobuf)
            .await
            .unwrap_err();
        assert_invalid(
            &rejection,
            "invalid ExportLogsServiceRequest: resource_logs[0].scope_logs[0].log_records[0]\
             .attributes[0].key: key of 9 bytes, the limit is 8 bytes",
        );
        assert_eq!(s.refused("log_records"), 1);
        assert!(s.consumer.received().is_empty());
    }

    /// Metrics whose points the data model forbids: those points are dropped, the rest is
    /// accepted, and the answer is a partial success naming the first problem.
    #[tokio::test]
    async fn malformed_metric_points_get_a_partial_success_on_both_encodings() {
        use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
        use weft_proto::metrics::v1::{
            metric::Data, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric,
            NumberDataPoint, ResourceMetrics, ScopeMetrics,
        };
        let s = setup::<crate::pipeline::Metrics>("metric_points");
        let histogram = |bounds: Vec<f64>| HistogramDataPoint {
            count: 3,
            bucket_counts: vec![1, 2],
            explicit_bounds: bounds,
            sum: Some(4.0),
            ..Default::default()
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "latency".into(),
                            data: Some(Data::Histogram(Histogram {
                                data_points: vec![histogram(vec![1.0]), histogram(vec![1.0, 2.0])],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "nan_sum".into(),
                            data: Some(Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    sum: Some(f64::NAN),
                                    ..histogram(vec![1.0])
                                }],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: String::new(),
                            data: Some(Data::Gauge(Gauge {
                                data_points: vec![NumberDataPoint {
                                    value: Some(number_data_point::Value::AsDouble(f64::NAN)),
                                    ..Default::default()
                                }],
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        for (body, format) in [
            (request.encode_to_vec(), Format::Protobuf),
            (otlp_json::encode_metrics(&request), Format::Json),
        ] {
            let response = s.send(body, format).await.unwrap();
            let partial = response.partial_success.expect("a partial success");
            assert_eq!(partial.rejected_data_points, 3);
            assert_eq!(
                partial.error_message,
                "3 data points rejected by the OTLP data model; first: resource_metrics[0]\
                 .scope_metrics[0].metrics[0].histogram.data_points[1]: 2 bucket_counts for 2 \
                 explicit_bounds: expected 3 (or none) (2 more problems)"
            );
        }
        // The good point of each request went on; the three bad ones (bucket counts that do
        // not match the bounds, a NaN sum, a nameless metric) are counted as refused.
        let received = s.consumer.received();
        assert_eq!(received.len(), 2);
        assert!(received.iter().all(|b| b.item_count() == 1));
        assert_eq!(s.refused("metric_points"), 6);
    }

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A length-delimited protobuf field.
    fn field(tag: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 8);
        varint(((tag << 3) | 2) as usize, &mut out);
        varint(body.len(), &mut out);
        out.extend_from_slice(body);
        out
    }

    /// An encoded `AnyValue` nesting `levels` arrays, built as bytes: prost could neither
    /// encode nor drop a value this deep without overflowing the stack.
    fn deep_any_value(levels: usize) -> Vec<u8> {
        let mut v = field(1, b"leaf");
        for _ in 0..levels {
            v = field(5, &field(1, &v)); // AnyValue.array_value.values[0]
        }
        v
    }

    /// A trace request whose span has the attribute "k" = `value`, and a logs request whose
    /// record has the body `value` (both encoded `AnyValue`s).
    fn requests_holding(value: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let kv = [field(1, b"k"), field(2, value)].concat();
        let span = [field(1, &[1; 16]), field(2, &[2; 8]), field(9, &kv)].concat();
        let traces = field(1, &field(2, &field(2, &span)));
        let logs = field(1, &field(2, &field(2, &field(5, value))));
        (traces, logs)
    }

    #[tokio::test]
    async fn ten_thousand_levels_of_protobuf_get_invalid_argument() {
        let message = "messages nest more than 100 levels deep; AnyValue values may nest at \
                       most 20 array_value/kvlist_value levels";
        let t = setup::<Traces>("spans");
        let l = setup::<Logs>("log_records");
        // 200 levels is a small body checked inline; 10 000, padded with an unknown field
        // (which decoding skips) to over a MiB, goes to the blocking pool.
        for levels in [200, 10_000] {
            let (mut traces, mut logs) = requests_holding(&deep_any_value(levels));
            if levels == 10_000 {
                let padding = field(15, &vec![0; BLOCKING_THRESHOLD]);
                traces.extend_from_slice(&padding);
                logs.extend_from_slice(&padding);
            }
            assert_eq!(traces.len() > BLOCKING_THRESHOLD, levels == 10_000);
            let rejection = t.send(traces, Format::Protobuf).await.unwrap_err();
            assert_invalid(
                &rejection,
                &format!(
                    "cannot decode the body as a protobuf ExportTraceServiceRequest: {message}"
                ),
            );
            let rejection = l.send(logs, Format::Protobuf).await.unwrap_err();
            assert_invalid(
                &rejection,
                &format!(
                    "cannot decode the body as a protobuf ExportLogsServiceRequest: {message}"
                ),
            );
        }
        assert!(t.consumer.received().is_empty() && l.consumer.received().is_empty());

        // Decodable but over the limit: the validator names the place.
        let (traces, _) = requests_holding(&deep_any_value(21));
        let rejection = t.send(traces, Format::Protobuf).await.unwrap_err();
        let answer = Answer::of(&rejection);
        assert_eq!(answer.grpc, tonic::Code::InvalidArgument);
        assert!(
            answer.message.ends_with(
                "attribute \"k\": array_value/kvlist_value nested more than 20 levels deep, \
                 the limit is 20"
            ),
            "{}",
            answer.message
        );
        assert_eq!(t.refused("spans"), 1);
    }

    #[tokio::test]
    async fn deep_json_gets_invalid_argument_with_the_limit() {
        // Decodable, but over the default depth of 20: the validator's answer.
        let mut value = r#"{"stringValue":"x"}"#.to_string();
        for _ in 0..21 {
            value = format!(r#"{{"arrayValue":{{"values":[{value}]}}}}"#);
        }
        let doc = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{value}}}]}}]}}]}}"#
        );
        let s = setup::<Logs>("log_records");
        let rejection = s.send(doc.into_bytes(), Format::Json).await.unwrap_err();
        let answer = Answer::of(&rejection);
        assert_eq!(answer.grpc, tonic::Code::InvalidArgument);
        assert!(
            answer.message.starts_with(
                "invalid ExportLogsServiceRequest: resource_logs[0].scope_logs[0]\
                 .log_records[0].body.array_value.values[0]"
            ),
            "{}",
            answer.message
        );
        assert!(
            answer.message.ends_with(
                "array_value/kvlist_value nested more than 20 levels deep, the limit is 20"
            ),
            "{}",
            answer.message
        );
        assert_eq!(s.refused("log_records"), 1);

        // Too deep for JSON itself: the decoder's answer, with the limit.
        let deep = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}{}}}]}}]}}]}}"#,
            r#"{"arrayValue":{"values":["#.repeat(10_000),
            "]}}".repeat(10_000)
        );
        let rejection = s.send(deep.into_bytes(), Format::Json).await.unwrap_err();
        let answer = Answer::of(&rejection);
        assert_eq!(answer.http.as_u16(), 400);
        assert!(
            answer.message.starts_with(
                "cannot decode the body as an OTLP/JSON ExportLogsServiceRequest: invalid JSON: \
                 recursion limit exceeded"
            ),
            "{}",
            answer.message
        );
        assert!(
            answer
                .message
                .ends_with("(AnyValue values may nest at most 20 array_value/kvlist_value levels)"),
            "{}",
            answer.message
        );
    }
}
