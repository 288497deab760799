//! Arbitrary bytes as an OTLP/JSON body (`Content-Type: application/json`).
//!
//! Must hold for every input: decoding never panics nor overflows the stack, validation of
//! whatever decoded never panics, and the codec's promise holds: a decoded request encodes to
//! JSON that decodes to the same request (compared as protobuf bytes, so NaN doubles compare
//! equal), and encoding that again gives the same JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use weft_proto::limits::Limits;
use weft_proto::otlp_json::{
    decode_logs, decode_metrics, decode_traces, encode_logs, encode_metrics, encode_traces,
    JsonError,
};
use weft_proto::validate::{
    drop_malformed_metrics, validate_logs_with, validate_metrics_with, validate_traces_with,
};

fn round_trip<M: Message>(
    data: &[u8],
    decode: fn(&[u8]) -> Result<M, JsonError>,
    encode: fn(&M) -> Vec<u8>,
    validate: impl Fn(&M),
) {
    let Ok(message) = decode(data) else {
        return;
    };
    validate(&message);
    let json = encode(&message);
    let again = match decode(&json) {
        Ok(again) => again,
        Err(e) => panic!(
            "the encoder's output does not decode: {e}\n{}",
            String::from_utf8_lossy(&json)
        ),
    };
    assert_eq!(
        again.encode_to_vec(),
        message.encode_to_vec(),
        "encode -> decode changed the request; JSON: {}",
        String::from_utf8_lossy(&json)
    );
    assert_eq!(encode(&again), json, "encoding is not deterministic");
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    round_trip(data, decode_traces, encode_traces, |r| {
        let _ = validate_traces_with(r, &limits);
    });
    round_trip(data, decode_logs, encode_logs, |r| {
        let _ = validate_logs_with(r, &limits);
    });
    round_trip(data, decode_metrics, encode_metrics, |r| {
        let _ = validate_metrics_with(r, &limits);
        let _ = drop_malformed_metrics(&mut r.clone());
    });
});
