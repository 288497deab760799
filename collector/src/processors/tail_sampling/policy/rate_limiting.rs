//! `rate_limiting`: keep traces while the spans kept stay within `spans_per_second`.
//!
//! This is the Collector's current implementation: a token bucket (Go's
//! `golang.org/x/time/rate` limiter) refilled continuously at `spans_per_second` tokens per
//! second, holding at most `burst_capacity` tokens (default twice `spans_per_second`), full at
//! the start. A trace is kept when its span count can be taken from the bucket now; a trace
//! larger than the burst capacity is never kept. Earlier Collector versions counted spans per
//! calendar second instead; over time both keep `spans_per_second` spans per second, the
//! bucket also lets a burst through after a quiet period.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::token_bucket::TokenBucket;
use super::{Decision, Evaluate, Why};

/// The `rate_limiting` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "rate_limiting";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &["{spans_per_second: 2, burst_capacity: 4}"];
    type Config = RateLimitingConfig;

    fn validate(c: &RateLimitingConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        if c.spans_per_second <= 0 {
            diags.error(
                &path.key("spans_per_second"),
                "must be greater than 0: the spans kept per second",
            );
        }
        if c.burst_capacity < 0 {
            diags.error(
                &path.key("burst_capacity"),
                "must be 0 (twice spans_per_second) or more",
            );
        }
    }

    fn build(c: &RateLimitingConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(RateLimiting::new(
            c.spans_per_second,
            c.burst_capacity,
        )))
    }

    fn reads(_: &RateLimitingConfig) -> Reads {
        Reads::NOTHING
    }
}

/// `rate_limiting`: at most `spans_per_second` spans kept per second on average, in bursts of
/// at most `burst_capacity` spans (0 = twice `spans_per_second`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitingConfig {
    pub spans_per_second: i64,
    pub burst_capacity: i64,
}

#[derive(Debug)]
pub(super) struct RateLimiting {
    bucket: TokenBucket,
}

impl RateLimiting {
    /// `burst_capacity` 0 means the default, twice `spans_per_second`.
    pub(super) fn new(spans_per_second: i64, burst_capacity: i64) -> Self {
        let burst = if burst_capacity > 0 {
            burst_capacity
        } else {
            spans_per_second.saturating_mul(2)
        };
        Self {
            bucket: TokenBucket::new(spans_per_second as f64, burst as f64),
        }
    }
}

impl Evaluate for RateLimiting {
    /// Spends its budget: explained at the decision, when the budget is what decided.
    fn deterministic(&self) -> bool {
        false
    }

    fn decide(&self, trace: &TraceData, now: Instant, why: &mut Why) -> Decision {
        let spans = trace.spans.len();
        let allowed = self.bucket.allow(spans as f64, now);
        why.say(format_args!(
            "{spans} span(s) {} the budget of {} spans/s (burst {})",
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
    use std::time::Duration;

    use super::super::testutil::*;
    use super::*;

    #[test]
    fn bucket_starts_full_at_twice_the_rate_and_refills_continuously() {
        let policy = RateLimiting::new(10, 0);
        let t0 = now();
        let five = trace_with_spans(5);
        // Burst capacity 20: four 5-span traces at once, then the bucket is empty.
        for i in 0..4 {
            assert_eq!(policy.evaluate(&five, t0), Decision::Sampled, "trace {i}");
        }
        assert_eq!(policy.evaluate(&five, t0), Decision::NotSampled);
        // 300ms later 3 tokens came back: not enough for 5, enough for 3.
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(policy.evaluate(&five, t1), Decision::NotSampled);
        assert_eq!(policy.evaluate(&trace_with_spans(3), t1), Decision::Sampled);
        // A second later 10 tokens are back.
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(policy.evaluate(&five, t2), Decision::Sampled);
        assert_eq!(policy.evaluate(&five, t2), Decision::Sampled);
        assert_eq!(policy.evaluate(&five, t2), Decision::NotSampled);
    }

    #[test]
    fn bucket_never_holds_more_than_the_burst_capacity() {
        let policy = RateLimiting::new(10, 15);
        let t0 = now();
        assert_eq!(
            policy.evaluate(&trace_with_spans(15), t0),
            Decision::Sampled
        );
        // After an hour of quiet, still only 15.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(
            policy.evaluate(&trace_with_spans(10), later),
            Decision::Sampled
        );
        assert_eq!(
            policy.evaluate(&trace_with_spans(6), later),
            Decision::NotSampled
        );
        assert_eq!(
            policy.evaluate(&trace_with_spans(5), later),
            Decision::Sampled
        );
    }

    #[test]
    fn trace_larger_than_the_burst_is_never_kept_and_costs_nothing() {
        let policy = RateLimiting::new(10, 0);
        let t0 = now();
        assert_eq!(
            policy.evaluate(&trace_with_spans(21), t0),
            Decision::NotSampled
        );
        assert_eq!(
            policy.evaluate(&trace_with_spans(20), t0),
            Decision::Sampled
        );
    }

    #[test]
    fn sustained_rate_is_spans_per_second() {
        let policy = RateLimiting::new(100, 0);
        let t0 = now();
        let one = trace_with_spans(1);
        let mut kept = 0;
        // 1000 single-span traces per simulated second for 10 seconds.
        for ms in 0..10_000u64 {
            let t = t0 + Duration::from_millis(ms);
            if policy.evaluate(&one, t) == Decision::Sampled {
                kept += 1;
            }
        }
        // The initial burst (200) plus 100 per second.
        assert!((1_190..=1_200).contains(&kept), "kept {kept}");
    }

    #[test]
    fn trace_without_spans_is_always_allowed() {
        let policy = RateLimiting::new(1, 1);
        let t0 = now();
        assert_eq!(policy.evaluate(&trace_with_spans(1), t0), Decision::Sampled);
        assert_eq!(
            policy.evaluate(&trace_of_logs(vec![log_with_body("x")]), t0),
            Decision::Sampled
        );
    }

    #[test]
    fn earlier_clock_readings_add_no_tokens() {
        let policy = RateLimiting::new(10, 10);
        let t0 = now() + Duration::from_secs(10);
        assert_eq!(
            policy.evaluate(&trace_with_spans(10), t0),
            Decision::Sampled
        );
        assert_eq!(
            policy.evaluate(&trace_with_spans(1), t0 - Duration::from_secs(5)),
            Decision::NotSampled
        );
    }
}
