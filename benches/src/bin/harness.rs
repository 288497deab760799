//! The wire contract between `weft-loadgen` and `weft-sink`: what a benchmark trace id says.
//!
//! The load generator sends the same pre-encoded requests over and over; to keep every trace
//! distinct (and the sink able to check it without decoding attributes) it stamps each trace
//! id at send time with:
//!
//! | bytes   | meaning                                                             |
//! |---------|---------------------------------------------------------------------|
//! | 0..8    | a unique key: `splitmix64(sequence number)`, a bijection, so unique |
//! | 8..14   | send time, microseconds since the Unix epoch, low 48 bits           |
//! | 14      | number of spans the trace has                                       |
//! | 15      | number of log records the trace has (0 when logs are not sent)      |
//!
//! The counts are also on every span as attributes (`bench.trace_span_count`,
//! `bench.trace_log_count`), for a human reading the data; the sink reads the id only, so it
//! can decode nothing but trace ids and stay cheap beside the process under test.

// Each binary uses its half of the contract.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, masked to the 48 bits a trace id carries.
pub fn now_micros48() -> u64 {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    us & MASK48
}

const MASK48: u64 = (1 << 48) - 1;

/// A bijection on u64 (splitmix64's finaliser): distinct sequence numbers give distinct,
/// well-spread keys, so sharded windows see an even spread.
pub fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds the trace id of trace number `seq`, sent at `sent_us` (48-bit micros).
pub fn make_trace_id(seq: u64, sent_us: u64, spans: u8, logs: u8) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&mix(seq).to_be_bytes());
    id[8..14].copy_from_slice(&(sent_us & MASK48).to_be_bytes()[2..]);
    id[14] = spans;
    id[15] = logs;
    id
}

/// What a benchmark trace id says; `None` for an id of the wrong length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceIdInfo {
    pub key: u64,
    pub sent_us: u64,
    pub spans: u8,
    pub logs: u8,
}

pub fn parse_trace_id(id: &[u8]) -> Option<TraceIdInfo> {
    if id.len() != 16 {
        return None;
    }
    let mut key = [0u8; 8];
    key.copy_from_slice(&id[..8]);
    let mut sent = [0u8; 8];
    sent[2..].copy_from_slice(&id[8..14]);
    Some(TraceIdInfo {
        key: u64::from_be_bytes(key),
        sent_us: u64::from_be_bytes(sent),
        spans: id[14],
        logs: id[15],
    })
}

/// Microseconds from `sent_us` to `now_us`, both 48-bit, across a wrap of the 48-bit clock.
pub fn elapsed_micros48(sent_us: u64, now_us: u64) -> u64 {
    now_us.wrapping_sub(sent_us) & MASK48
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trips() {
        let id = make_trace_id(42, 0x1234_5678_9abc, 17, 33);
        let info = parse_trace_id(&id).expect("16 bytes");
        assert_eq!(info.key, mix(42));
        assert_eq!(info.sent_us, 0x1234_5678_9abc);
        assert_eq!((info.spans, info.logs), (17, 33));
        assert_ne!(mix(1), mix(2));
        assert_eq!(elapsed_micros48(MASK48, 4), 5);
        assert!(parse_trace_id(&id[..8]).is_none());
    }
}
