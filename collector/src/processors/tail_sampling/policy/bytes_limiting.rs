//! `bytes_limiting`: keep traces while the bytes kept stay within `bytes_per_second`.
//!
//! The Collector's policy: a token bucket (Go's `rate.Limiter`, see [`TokenBucket`])
//! refilled at `bytes_per_second` tokens per second, holding at most `burst_capacity` tokens
//! (0: twice `bytes_per_second`), full at the start. A trace is kept when its size can be
//! taken from the bucket now; a trace larger than the burst capacity is never kept, and a
//! refused trace takes nothing.
//!
//! A trace's size is the Collector's: its spans encoded as an OTLP export request, each
//! batch's resource and scope once ([`TraceData::spans_request_size`]). Logs held with the
//! trace do not count (the Collector's policy is traces-only), so a trace with logs but no
//! span has size 0 and is always kept, as `rate_limiting` keeps a trace without spans.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::token_bucket::TokenBucket;
use super::{Decision, Evaluate, Why};

/// The `bytes_limiting` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

/// `bytes_limiting:` settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BytesLimitingConfig {
    /// Bytes kept per second on average.
    pub bytes_per_second: i64,
    /// The most bytes kept in a burst; 0 means twice `bytes_per_second`.
    pub burst_capacity: i64,
}

impl PolicyKind for Kind {
    const NAME: &'static str = "bytes_limiting";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        "{bytes_per_second: 600, burst_capacity: 1500}",
        "{bytes_per_second: 400}",
    ];
    type Config = BytesLimitingConfig;

    fn validate(c: &BytesLimitingConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        if c.bytes_per_second <= 0 {
            diags.error(
                &path.key("bytes_per_second"),
                "must be greater than 0: the bytes (encoded OTLP spans) kept per second",
            );
        }
        if c.burst_capacity < 0 {
            diags.error(
                &path.key("burst_capacity"),
                "must be 0 (twice bytes_per_second) or more",
            );
        } else if c.burst_capacity > 0 && c.burst_capacity < c.bytes_per_second {
            diags.warning(
                &path.key("burst_capacity"),
                format!(
                    "below bytes_per_second ({}): no trace larger than {} bytes is ever kept",
                    c.bytes_per_second, c.burst_capacity
                ),
            );
        }
    }

    fn build(c: &BytesLimitingConfig) -> Result<Box<dyn Evaluate>, String> {
        if c.bytes_per_second <= 0 || c.burst_capacity < 0 {
            return Err(format!(
                "bytes_limiting: bytes_per_second must be greater than 0 and burst_capacity 0 or more, got {} and {}",
                c.bytes_per_second, c.burst_capacity
            ));
        }
        Ok(Box::new(BytesLimiting::new(
            c.bytes_per_second,
            c.burst_capacity,
        )))
    }

    /// The spans' encoded sizes, and the resources and scopes of their envelopes.
    fn reads(_: &BytesLimitingConfig) -> Reads {
        Reads::BYTE_SIZES | Reads::RESOURCE
    }
}

#[derive(Debug)]
pub(super) struct BytesLimiting {
    bucket: TokenBucket,
}

impl BytesLimiting {
    /// `burst_capacity` 0 means the default, twice `bytes_per_second`.
    pub(super) fn new(bytes_per_second: i64, burst_capacity: i64) -> Self {
        let burst = if burst_capacity > 0 {
            burst_capacity
        } else {
            bytes_per_second.saturating_mul(2)
        };
        Self {
            bucket: TokenBucket::new(bytes_per_second as f64, burst as f64),
        }
    }
}

impl Evaluate for BytesLimiting {
    /// Spends its budget: explained at the decision, when the budget is what decided.
    fn deterministic(&self) -> bool {
        false
    }

    fn decide(&self, trace: &TraceData, now: Instant, why: &mut Why) -> Decision {
        let size = trace.spans_request_size();
        let allowed = self.bucket.allow(size as f64, now);
        why.say(format_args!(
            "{size} bytes of spans {} the budget of {} bytes/s (burst {})",
            if allowed { "within" } else { "over" },
            self.bucket.rate(),
            self.bucket.burst()
        ));
        if allowed {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use weft_proto::trace::v1::Span;

    use super::super::super::trace::Origin;
    use super::super::testutil::*;
    use super::*;

    /// A trace of one span whose OTLP request size is exactly `size` bytes (an empty
    /// resource and scope, the span's name padding it out).
    fn trace_of_size(size: u64) -> TraceData {
        let mut trace = trace_of(vec![Span::default()]);
        let base = trace.spans_request_size();
        assert!(
            size >= base + 2,
            "{size} is below the smallest trace ({})",
            base + 2
        );
        // A name of n bytes adds 2 + n bytes while n < 128.
        let name_len = (size - base - 2) as usize;
        assert!(name_len < 128);
        trace = trace_of(vec![Span {
            name: "x".repeat(name_len),
            ..Default::default()
        }]);
        assert_eq!(trace.spans_request_size(), size);
        trace
    }

    #[test]
    fn bucket_starts_full_at_twice_the_rate_and_refills_continuously() {
        let policy = BytesLimiting::new(50, 0);
        let t0 = now();
        let forty = trace_of_size(40);
        // Burst 100: two 40-byte traces at once, not a third.
        assert_eq!(policy.evaluate(&forty, t0), Decision::Sampled);
        assert_eq!(policy.evaluate(&forty, t0), Decision::Sampled);
        assert_eq!(policy.evaluate(&forty, t0), Decision::NotSampled);
        // 20 left; 400 ms later 20 more came back: exactly 40.
        let t1 = t0 + Duration::from_millis(400);
        assert_eq!(policy.evaluate(&forty, t1), Decision::Sampled);
        assert_eq!(
            policy.evaluate(&trace_of_size(20), t1),
            Decision::NotSampled
        );
    }

    #[test]
    fn a_trace_larger_than_the_burst_is_never_kept_and_takes_nothing() {
        let policy = BytesLimiting::new(10, 100);
        let t0 = now();
        assert_eq!(
            policy.evaluate(&trace_of_size(101), t0),
            Decision::NotSampled
        );
        // An hour later the bucket is still capped at the burst: still too large.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(
            policy.evaluate(&trace_of_size(101), later),
            Decision::NotSampled
        );
        // The refusals took nothing: exactly the burst still fits.
        assert_eq!(
            policy.evaluate(&trace_of_size(100), later),
            Decision::Sampled
        );
        assert_eq!(
            policy.evaluate(&trace_of_size(30), later),
            Decision::NotSampled
        );
    }

    #[test]
    fn a_huge_trace_is_counted_whole() {
        // 10 000 spans under one resource: the size grows with every span, and the policy
        // compares the whole.
        let spans: Vec<Span> = (0..10_000).map(|_| span_with(&[("k", s("v"))])).collect();
        let trace = trace_of(spans);
        let size = trace.spans_request_size();
        assert!(size > 10_000 * 20, "{size}");
        let roomy = BytesLimiting::new(1, size as i64);
        assert_eq!(roomy.evaluate(&trace, now()), Decision::Sampled);
        let tight = BytesLimiting::new(1, size as i64 - 1);
        assert_eq!(tight.evaluate(&trace, now()), Decision::NotSampled);
    }

    #[test]
    fn logs_do_not_count_and_a_trace_without_spans_is_always_kept() {
        let policy = BytesLimiting::new(1, 1);
        let t0 = now();
        let logs_only = trace_of_logs((0..100).map(|_| log_with_body("a long line")).collect());
        assert_eq!(logs_only.spans_request_size(), 0);
        for _ in 0..3 {
            assert_eq!(policy.evaluate(&logs_only, t0), Decision::Sampled);
        }
    }

    #[test]
    fn resources_and_scopes_count_once_per_batch() {
        let origin = origin_with(&[("service.name", s("checkout"))]);
        let one_batch = trace_from(
            vec![
                (origin.clone(), Span::default()),
                (origin.clone(), Span::default()),
            ],
            vec![],
        );
        let two_batches = trace_from(
            vec![
                (origin.clone(), Span::default()),
                (
                    Arc::new(Origin {
                        resource: origin.resource.clone(),
                        ..Default::default()
                    }),
                    Span::default(),
                ),
            ],
            vec![],
        );
        assert!(two_batches.spans_request_size() > one_batch.spans_request_size());
    }

    #[test]
    fn the_default_burst_is_twice_the_rate_even_near_the_limit() {
        let policy = BytesLimiting::new(i64::MAX, 0);
        assert_eq!(
            policy.evaluate(&trace_of_size(40), now()),
            Decision::Sampled
        );
    }
}
