//! `probabilistic`: keep a fixed share of traces, chosen by a hash of the trace id.
//!
//! The hash and the threshold are bit-for-bit the Collector's, so a fleet mixing Weft and
//! Collector instances (or layers of them) with the same `hash_salt` and percentage keeps the
//! same traces:
//! - hash: 64-bit FNV-1a over the salt's bytes, then the 16 trace id bytes;
//! - threshold: `u64::MAX × (percentage / 100)`, computed as Go's `math/big` does it (the
//!   product rounded to a 64-bit mantissa, nearest-even, then truncated to an integer);
//! - the trace is kept when `hash <= threshold`.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::{Decision, Evaluate};

/// The `probabilistic` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "probabilistic";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        "{sampling_percentage: 50}",
        "{sampling_percentage: 30, hash_salt: weft}",
    ];
    type Config = ProbabilisticConfig;

    fn validate(c: &ProbabilisticConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        let at = path.key("sampling_percentage");
        let p = c.sampling_percentage;
        if !p.is_finite() {
            diags.error(&at, "expected a percentage from 0 to 100");
        } else if p < 0.0 {
            // The Collector accepts it and keeps (almost) nothing: say so, do not fail a
            // configuration it runs.
            diags.warning(&at, format!("{p} is below 0: no trace is kept, as with 0"));
        } else if p > 100.0 {
            diags.warning(
                &at,
                format!("{p} is above 100: every trace is kept, as with 100"),
            );
        }
    }

    fn build(c: &ProbabilisticConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(Probabilistic::new(
            &c.hash_salt,
            c.sampling_percentage,
        )))
    }

    /// The trace id only, which every view has.
    fn reads(_: &ProbabilisticConfig) -> Reads {
        Reads::NOTHING
    }
}

/// `probabilistic`: `sampling_percentage` of traces by trace id hash, salted with
/// `hash_salt` (empty = the Collector's default salt).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticConfig {
    pub hash_salt: String,
    pub sampling_percentage: f64,
}

/// The salt the Collector uses when `hash_salt` is empty.
pub(super) const DEFAULT_HASH_SALT: &str = "default-hash-seed";

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug)]
pub(super) struct Probabilistic {
    salt: String,
    threshold: u64,
}

impl Probabilistic {
    pub(super) fn new(hash_salt: &str, sampling_percentage: f64) -> Self {
        let salt = if hash_salt.is_empty() {
            DEFAULT_HASH_SALT
        } else {
            hash_salt
        };
        Self {
            salt: salt.to_string(),
            threshold: threshold(sampling_percentage / 100.0),
        }
    }
}

impl Evaluate for Probabilistic {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        if hash_trace_id(&self.salt, &trace.trace_id) <= self.threshold {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

/// 64-bit FNV-1a over `salt` then `trace_id`.
pub(super) fn hash_trace_id(salt: &str, trace_id: &[u8; 16]) -> u64 {
    salt.as_bytes()
        .iter()
        .chain(trace_id)
        .fold(FNV_OFFSET_BASIS, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
        })
}

/// `u64::MAX × ratio` as Go computes it with `big.Float`: `u64::MAX` is exact at the 64-bit
/// precision `SetInt` gives it, the product is rounded to that precision (nearest, ties to
/// even), and `Uint64()` truncates toward zero, saturating at `u64::MAX` (ratio > 1) and 0
/// (ratio < 0).
pub(super) fn threshold(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio.is_infinite() {
        return u64::MAX;
    }
    // ratio = mantissa × 2^exponent, exactly.
    let bits = ratio.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    // The exact product fits in 117 bits.
    let product = u128::from(u64::MAX) * u128::from(mantissa);
    let bit_len = 128 - product.leading_zeros() as i32;
    let (rounded, exponent) = if bit_len > 64 {
        let shift = (bit_len - 64) as u32;
        let kept = product >> shift;
        let rest = product & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        let round_up = rest > half || (rest == half && kept & 1 == 1);
        (kept + u128::from(round_up), exponent + shift as i32)
    } else {
        (product, exponent)
    };
    // rounded × 2^exponent, truncated toward zero.
    let value = if exponent >= 0 {
        if exponent >= 64 || rounded.leading_zeros() < exponent as u32 + 64 {
            return u64::MAX;
        }
        rounded << exponent
    } else if -exponent >= 128 {
        0
    } else {
        rounded >> (-exponent) as u32
    };
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::testutil::*;
    use super::*;

    /// Thresholds produced by the Collector's own computation (Go's `math/big`, as in
    /// `calculateThreshold`), for percentages including ones where rounding to the 64-bit
    /// mantissa makes the result differ from a plain floor.
    const GO_THRESHOLDS: &[(f64, u64)] = &[
        (0.0, 0),
        (0.001, 184467440737095),
        (0.1, 18446744073709551),
        (1.0, 184467440737095519),
        (5.0, 922337203685477631),
        (10.0, 1844674407370955263),
        (12.5, 2305843009213693951),
        (25.0, 4611686018427387903),
        (33.0, 6087425544324152319),
        (33.333, 6148853202089604095),
        (50.0, 9223372036854775807),
        (66.6, 12285531553090559999),
        (75.0, 13835058055282163711),
        (99.0, 18262276632972455935),
        (99.999, 18446559606268813311),
        (100.0, u64::MAX),
        (150.0, u64::MAX),
        (-50.0, 0),
    ];

    #[test]
    fn threshold_matches_go_big_float() {
        for &(percentage, expected) in GO_THRESHOLDS {
            assert_eq!(threshold(percentage / 100.0), expected, "{percentage}%");
        }
    }

    #[test]
    fn threshold_edges() {
        assert_eq!(threshold(1.0), u64::MAX);
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(f64::MIN_POSITIVE), 0);
        assert_eq!(threshold(5e-324), 0); // subnormal
        assert_eq!(threshold(f64::INFINITY), u64::MAX);
        assert_eq!(threshold(f64::NAN), 0);
        // 2^-10 × (2^64 - 1) is exact at 64 bits: 2^54 - 2^-10, truncated.
        assert_eq!(threshold(1.0 / 1024.0), (1u64 << 54) - 1);
    }

    #[test]
    fn fnv1a_standard_vectors() {
        // The published FNV-1a 64 test vectors, through the salt part of the input.
        let fnv = |data: &str| {
            data.bytes().fold(FNV_OFFSET_BASIS, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
            })
        };
        assert_eq!(fnv(""), 0xcbf29ce484222325);
        assert_eq!(fnv("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv("foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn hash_matches_the_collector() {
        // Produced with Go's hash/fnv exactly as the Collector's hashTraceID uses it.
        let ids: [[u8; 16]; 4] = [
            [0; 16],
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
            [0xff; 16],
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36,
            ],
        ];
        let expected_default = [
            16254958829412527165u64,
            15838989281584434349,
            1711019809656077869,
            11908981664384643253,
        ];
        let expected_test_salt = [
            9316101679626017984u64,
            643542913863792944,
            5329741664083342512,
            12373566994375301436,
        ];
        for (id, want) in ids.iter().zip(expected_default) {
            assert_eq!(hash_trace_id(DEFAULT_HASH_SALT, id), want);
        }
        for (id, want) in ids.iter().zip(expected_test_salt) {
            assert_eq!(hash_trace_id("test-salt", id), want);
        }
    }

    fn trace_with_id(id: [u8; 16]) -> TraceData {
        TraceData {
            trace_id: id,
            ..trace_with_spans(1)
        }
    }

    #[test]
    fn decision_follows_hash_and_threshold() {
        let id = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        // hash(default salt, id) = 15838989281584434349, i.e. 85.86% of u64::MAX.
        assert_eq!(
            Probabilistic::new("", 86.0).evaluate(&trace_with_id(id), now()),
            Decision::Sampled
        );
        assert_eq!(
            Probabilistic::new("", 85.0).evaluate(&trace_with_id(id), now()),
            Decision::NotSampled
        );
        // An explicit salt equal to the default behaves as the empty one.
        assert_eq!(
            Probabilistic::new(DEFAULT_HASH_SALT, 86.0).evaluate(&trace_with_id(id), now()),
            Decision::Sampled
        );
        // With "test-salt" the same id hashes to 3.49%.
        assert_eq!(
            Probabilistic::new("test-salt", 4.0).evaluate(&trace_with_id(id), now()),
            Decision::Sampled
        );
        assert_eq!(
            Probabilistic::new("test-salt", 3.0).evaluate(&trace_with_id(id), now()),
            Decision::NotSampled
        );
    }

    #[test]
    fn share_of_random_ids_is_close_to_the_percentage() {
        // Seeded: the test checks the distribution, it must not flake on an unlucky draw.
        let mut rng = StdRng::seed_from_u64(1);
        let ids: Vec<[u8; 16]> = (0..10_000).map(|_| rng.random()).collect();
        for percentage in [0.0, 10.0, 33.0, 50.0, 100.0] {
            let policy = Probabilistic::new("", percentage);
            let kept = ids
                .iter()
                .filter(|id| policy.evaluate(&trace_with_id(**id), now()) == Decision::Sampled)
                .count();
            let share = kept as f64 / ids.len() as f64 * 100.0;
            // 10 000 draws: the standard deviation is at most 0.5 points; allow 4 of them.
            assert!(
                (share - percentage).abs() <= 2.0,
                "{percentage}%: kept {share:.2}%"
            );
        }
    }
}
