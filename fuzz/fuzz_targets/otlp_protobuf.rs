//! Arbitrary bytes as an OTLP/gRPC or OTLP/HTTP protobuf body, through what the receiver does
//! with it: prost decoding of both export requests, then validation with the default limits.
//!
//! Must hold for every input: nothing panics or overflows the stack (prost's recursion limit
//! bounds decoding; the validator's depth bound bounds validation), and a request that passes
//! validation survives an encode/decode round trip unchanged. The round trip is compared on
//! the encoded bytes, which is stricter than `==` and does not trip over NaN doubles.
//!
//! And the receiver's fast path keeps its promise: whenever the wire scanner
//! (`weft_proto::wire::scan_*`) accepts a body, prost decodes it, the validator accepts it,
//! and the scanner's item count is the decoded request's. For metrics the promise has one
//! more clause: the data model check (`drop_malformed_metrics`) finds nothing to remove, and
//! the count is the request's data points.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::limits::Limits;
use weft_proto::points::request_points;
use weft_proto::validate::{
    drop_malformed_metrics, validate_logs_with, validate_metrics_with, validate_traces_with,
};
use weft_proto::wire;

/// Decodes `bytes` as `M`; when `valid` accepts it, checks that encoding is a fixpoint:
/// encode → decode → encode gives the same bytes and an equal message.
fn round_trip<M: Message + Default + PartialEq>(bytes: &[u8], valid: impl Fn(&M) -> bool) {
    let Ok(message) = M::decode(bytes) else {
        return;
    };
    if !valid(&message) {
        return;
    }
    let encoded = message.encode_to_vec();
    let again = M::decode(&encoded[..]).expect("a re-encoded valid request decodes");
    assert_eq!(
        again.encode_to_vec(),
        encoded,
        "re-encoding a decoded request changed it"
    );
}

/// The scanner's answer, checked against decoding and validation.
fn scan_agrees<M: Message + Default>(
    bytes: &[u8],
    scan: impl Fn(&[u8]) -> Option<usize>,
    valid_items: impl Fn(&M) -> Option<usize>,
) {
    if let Some(n) = scan(bytes) {
        let message = M::decode(bytes).expect("the scanner accepted a body prost cannot decode");
        let items = valid_items(&message).expect("the scanner accepted an invalid body");
        assert_eq!(n, items, "the scanner miscounted");
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    // Tight limits too, so inputs reach the limit checks.
    let tight = Limits {
        max_attributes: 2,
        max_value_bytes: 8,
        max_depth: 2,
    };
    for l in [limits, tight] {
        scan_agrees::<ExportTraceServiceRequest>(
            data,
            |b| wire::scan_traces(b, &l),
            |r| {
                validate_traces_with(r, &l).ok()?;
                Some(
                    r.resource_spans
                        .iter()
                        .flat_map(|r| &r.scope_spans)
                        .map(|s| s.spans.len())
                        .sum(),
                )
            },
        );
        scan_agrees::<ExportLogsServiceRequest>(
            data,
            |b| wire::scan_logs(b, &l),
            |r| {
                validate_logs_with(r, &l).ok()?;
                Some(
                    r.resource_logs
                        .iter()
                        .flat_map(|r| &r.scope_logs)
                        .map(|s| s.log_records.len())
                        .sum(),
                )
            },
        );
        scan_agrees::<ExportMetricsServiceRequest>(
            data,
            |b| wire::scan_metrics(b, &l),
            |r| {
                validate_metrics_with(r, &l).ok()?;
                let mut cleaned = r.clone();
                if drop_malformed_metrics(&mut cleaned).is_some() {
                    return None;
                }
                Some(request_points(r))
            },
        );
        if wire::scan_metrics(data, &l).is_some() {
            assert_eq!(
                wire::count_metric_points(data),
                wire::scan_metrics(data, &l).unwrap_or_default(),
                "count_metric_points disagrees with the scanner"
            );
        }
    }
    round_trip::<ExportTraceServiceRequest>(data, |r| validate_traces_with(r, &limits).is_ok());
    round_trip::<ExportLogsServiceRequest>(data, |r| validate_logs_with(r, &limits).is_ok());
    round_trip::<ExportMetricsServiceRequest>(data, |r| {
        // The data model check is idempotent: what it leaves has nothing more to remove.
        let mut cleaned = r.clone();
        let _ = drop_malformed_metrics(&mut cleaned);
        assert!(
            drop_malformed_metrics(&mut cleaned).is_none(),
            "the data model check is not idempotent"
        );
        validate_metrics_with(r, &limits).is_ok()
    });
});
