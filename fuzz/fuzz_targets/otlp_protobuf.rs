//! Arbitrary bytes as an OTLP/gRPC or OTLP/HTTP protobuf body, through what the receiver does
//! with it: prost decoding of both export requests, then validation with the default limits.
//!
//! Must hold for every input: nothing panics or overflows the stack (prost's recursion limit
//! bounds decoding; the validator's depth bound bounds validation), and a request that passes
//! validation survives an encode/decode round trip unchanged. The round trip is compared on
//! the encoded bytes, which is stricter than `==` and does not trip over NaN doubles.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::limits::Limits;
use weft_proto::validate::{validate_logs_with, validate_traces_with};

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

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    round_trip::<ExportTraceServiceRequest>(data, |r| validate_traces_with(r, &limits).is_ok());
    round_trip::<ExportLogsServiceRequest>(data, |r| validate_logs_with(r, &limits).is_ok());
});
