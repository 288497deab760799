//! The `Retry-After` header (RFC 9110 §10.2.3), which HTTP backends send with 429 and 503.

use std::time::{Duration, SystemTime};

/// `Retry-After` as delay-seconds or an HTTP date; a date in the past means no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}
