//! The token bucket behind `rate_limiting` and `bytes_limiting`: the arithmetic of Go's
//! `golang.org/x/time/rate.Limiter.AllowN`, which the Collector uses for both, so the same
//! sequence of requests is allowed; driven by the caller's clock.

use std::time::Instant;

use parking_lot::Mutex;

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
