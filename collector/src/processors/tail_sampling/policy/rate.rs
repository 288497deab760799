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

use parking_lot::Mutex;

use super::super::trace::TraceData;
use super::{Decision, Evaluate};

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
    fn evaluate(&self, trace: &TraceData, now: Instant) -> Decision {
        if self.bucket.allow(trace.spans.len() as f64, now) {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

/// A token bucket with the arithmetic of Go's `rate.Limiter.AllowN` (so the same sequence of
/// requests is allowed), driven by the caller's clock.
#[derive(Debug)]
pub(super) struct TokenBucket {
    /// Tokens added per second.
    rate: f64,
    /// The most tokens the bucket holds.
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    /// When `tokens` was last updated; `None` before the first request (the bucket is full).
    last: Option<Instant>,
}

impl TokenBucket {
    pub(super) fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                last: None,
            }),
        }
    }

    /// Takes `n` tokens at `now` if the bucket has them (refilled for the time elapsed since
    /// the last successful request); a refused request changes nothing.
    pub(super) fn allow(&self, n: f64, now: Instant) -> bool {
        let mut state = self.state.lock();
        let available = match state.last {
            None => self.burst,
            Some(last) => {
                // A clock reading earlier than the last one adds nothing (Go clamps the same way).
                let elapsed = now.saturating_duration_since(last).as_secs_f64();
                (state.tokens + elapsed * self.rate).min(self.burst)
            }
        };
        if n > self.burst {
            return false;
        }
        let left = available - n;
        if left < 0.0 {
            // Go admits a deficit worth less than a nanosecond of refill (it compares the
            // truncated wait duration with zero).
            let wait_nanos = (-left / self.rate * 1e9) as i64;
            if wait_nanos > 0 {
                return false;
            }
        }
        state.tokens = left;
        state.last = Some(now);
        true
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
