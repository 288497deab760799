//! Policies on the shape of a trace's spans: `always_sample`, `latency`, `status_code`,
//! `span_count` and `trace_state`.

use std::collections::HashSet;
use std::time::Instant;

use super::super::trace::TraceData;
use super::{Decision, Evaluate};

/// `always_sample`: every trace.
#[derive(Debug)]
pub(super) struct AlwaysSample;

impl Evaluate for AlwaysSample {
    fn evaluate(&self, _trace: &TraceData, _now: Instant) -> Decision {
        Decision::Sampled
    }
}

/// `latency`: the trace's duration, from its earliest span start to its latest span end, in
/// whole milliseconds (truncated, as Go's `Duration.Milliseconds`).
///
/// The comparisons are the Collector's: without an upper bound, `duration >= threshold_ms`;
/// with one, `threshold_ms < duration <= upper_threshold_ms` (note the strict lower bound).
/// A trace without spans is not sampled.
///
/// One difference, on purpose: the Collector checks the bounds while it widens the range span
/// by span, so with an upper bound a trace can be sampled on a partial range that later grows
/// past the bound (the outcome depends on span order). Weft checks the whole trace's duration,
/// which is what the Collector documents.
#[derive(Debug)]
pub(super) struct Latency {
    pub(super) threshold_ms: i64,
    /// 0 means no upper bound.
    pub(super) upper_threshold_ms: i64,
}

impl Evaluate for Latency {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let Some(start) = trace
            .spans
            .iter()
            .map(|e| e.span.start_time_unix_nano)
            .min()
        else {
            return Decision::NotSampled;
        };
        let end = trace
            .spans
            .iter()
            .map(|e| e.span.end_time_unix_nano)
            .max()
            .unwrap_or(start);
        // Signed: a trace whose spans end before they start has a negative duration.
        let duration_ms = (i128::from(end) - i128::from(start)) / 1_000_000;
        let threshold = i128::from(self.threshold_ms);
        let sampled = if self.upper_threshold_ms == 0 {
            duration_ms >= threshold
        } else {
            threshold < duration_ms && duration_ms <= i128::from(self.upper_threshold_ms)
        };
        if sampled {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

/// `status_code`: any span whose status code is one of the configured ones (a span without a
/// status is `UNSET`).
#[derive(Debug)]
pub(super) struct StatusCodeFilter {
    /// OTLP status code numbers: 0 UNSET, 1 OK, 2 ERROR.
    pub(super) codes: Vec<i32>,
}

impl Evaluate for StatusCodeFilter {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let hit = trace.spans.iter().any(|e| {
            let code = e.span.status.as_ref().map_or(0, |s| s.code);
            self.codes.contains(&code)
        });
        if hit {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

/// `span_count`: the number of spans buffered for the trace is at least `min_spans` and, when
/// `max_spans` is not 0, at most `max_spans`.
#[derive(Debug)]
pub(super) struct SpanCount {
    pub(super) min_spans: i64,
    pub(super) max_spans: i64,
}

impl Evaluate for SpanCount {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let count = trace.spans.len() as i64;
        let sampled = count >= self.min_spans && (self.max_spans == 0 || count <= self.max_spans);
        if sampled {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

/// `trace_state`: any span whose W3C `tracestate` has `key` set to one of the values. A
/// malformed tracestate matches nothing (the Collector's parser rejects it as a whole).
#[derive(Debug)]
pub(super) struct TraceStateFilter {
    pub(super) key: String,
    /// Empty values, and values too long to fit a tracestate member with the key, are left
    /// out: they can never match.
    pub(super) values: HashSet<String>,
}

impl TraceStateFilter {
    pub(super) fn new(key: &str, values: &[String]) -> Self {
        let values = values
            .iter()
            .filter(|v| !v.is_empty() && key.len() + v.len() < 256)
            .cloned()
            .collect();
        Self {
            key: key.to_string(),
            values,
        }
    }
}

impl Evaluate for TraceStateFilter {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let hit = trace.spans.iter().any(|e| {
            trace_state_get(&e.span.trace_state, &self.key).is_some_and(|v| self.values.contains(v))
        });
        if hit {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

/// The most list members a W3C tracestate may have.
const MAX_TRACE_STATE_MEMBERS: usize = 32;

/// The value of `key` in a W3C tracestate header, or `None` when the key is absent or the
/// header is malformed (bad key or value characters, duplicate keys, too many members).
pub(super) fn trace_state_get<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    let mut found = None;
    let mut seen: Vec<&str> = Vec::new();
    for member in raw.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue; // empty list members are allowed
        }
        let (k, v) = member.split_once('=')?;
        if !valid_trace_state_key(k) || !valid_trace_state_value(v) || seen.contains(&k) {
            return None;
        }
        seen.push(k);
        if seen.len() > MAX_TRACE_STATE_MEMBERS {
            return None;
        }
        if k == key {
            found = Some(v);
        }
    }
    found
}

/// `simple-key` or `tenant@system`, lowercase letters, digits and `_-*/`, at most 256 chars.
fn valid_trace_state_key(key: &str) -> bool {
    let allowed = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '*' | '/');
    let valid_part = |part: &str, first_digit_ok: bool| {
        let mut chars = part.chars();
        match chars.next() {
            Some(c) if c.is_ascii_lowercase() || (first_digit_ok && c.is_ascii_digit()) => {}
            _ => return false,
        }
        chars.all(allowed)
    };
    if key.is_empty() || key.len() > 256 {
        return false;
    }
    match key.split_once('@') {
        None => valid_part(key, false),
        Some((tenant, system)) => {
            tenant.len() <= 241
                && system.len() <= 14
                && valid_part(tenant, true)
                && valid_part(system, false)
        }
    }
}

/// Printable ASCII except `,` and `=`, not ending in a space, 1 to 256 chars.
fn valid_trace_state_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

#[cfg(test)]
mod tests {
    use weft_proto::trace::v1::status::StatusCode;
    use weft_proto::trace::v1::Span;

    use super::super::testutil::*;
    use super::*;

    fn latency(threshold_ms: i64, upper_threshold_ms: i64) -> Latency {
        Latency {
            threshold_ms,
            upper_threshold_ms,
        }
    }

    #[test]
    fn always_sample_samples_even_an_empty_trace() {
        assert_eq!(
            AlwaysSample.evaluate(&trace_of(vec![]), now()),
            Decision::Sampled
        );
    }

    #[test]
    fn latency_spans_earliest_start_to_latest_end() {
        // Neither span alone lasts 1s, together they cover 0..1200ms.
        let trace = trace_of(vec![span_ms(0, 600), span_ms(500, 1200)]);
        assert_eq!(latency(1000, 0).evaluate(&trace, now()), Decision::Sampled);
        assert_eq!(
            latency(1201, 0).evaluate(&trace, now()),
            Decision::NotSampled
        );
        // Without an upper bound the threshold itself is included.
        assert_eq!(latency(1200, 0).evaluate(&trace, now()), Decision::Sampled);
    }

    #[test]
    fn latency_truncates_to_whole_milliseconds() {
        let mut span = span_ms(0, 999);
        span.end_time_unix_nano += 999_999; // 999.999999 ms
        let trace = trace_of(vec![span]);
        assert_eq!(
            latency(1000, 0).evaluate(&trace, now()),
            Decision::NotSampled
        );
        assert_eq!(latency(999, 0).evaluate(&trace, now()), Decision::Sampled);
    }

    #[test]
    fn latency_with_upper_bound_has_a_strict_lower_bound() {
        let at = |ms| trace_of(vec![span_ms(0, ms)]);
        let policy = latency(1000, 2000);
        assert_eq!(policy.evaluate(&at(1000), now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&at(1001), now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&at(2000), now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&at(2001), now()), Decision::NotSampled);
    }

    #[test]
    fn latency_upper_bound_applies_to_the_whole_trace_whatever_the_span_order() {
        let policy = latency(1000, 2000);
        let short_first = trace_of(vec![span_ms(0, 1500), span_ms(0, 5000)]);
        let long_first = trace_of(vec![span_ms(0, 5000), span_ms(0, 1500)]);
        assert_eq!(policy.evaluate(&short_first, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&long_first, now()), Decision::NotSampled);
    }

    #[test]
    fn latency_without_spans_is_not_sampled() {
        assert_eq!(
            latency(0, 0).evaluate(&trace_of_logs(vec![log_with_body("x")]), now()),
            Decision::NotSampled
        );
    }

    #[test]
    fn status_code_matches_any_span() {
        let errors = StatusCodeFilter { codes: vec![2] };
        let with_error = trace_of(vec![
            span_status(StatusCode::Ok),
            span_status(StatusCode::Error),
        ]);
        let all_ok = trace_of(vec![
            span_status(StatusCode::Ok),
            span_status(StatusCode::Unset),
        ]);
        assert_eq!(errors.evaluate(&with_error, now()), Decision::Sampled);
        assert_eq!(errors.evaluate(&all_ok, now()), Decision::NotSampled);

        // A span without any status counts as UNSET.
        let unset = StatusCodeFilter { codes: vec![0] };
        let no_status = trace_of(vec![Span {
            status: None,
            ..span_with(&[])
        }]);
        assert_eq!(unset.evaluate(&no_status, now()), Decision::Sampled);
        assert_eq!(
            unset.evaluate(&trace_of(vec![]), now()),
            Decision::NotSampled
        );
    }

    #[test]
    fn span_count_bounds_are_inclusive_and_zero_max_is_unbounded() {
        let bounded = SpanCount {
            min_spans: 2,
            max_spans: 3,
        };
        let unbounded = SpanCount {
            min_spans: 2,
            max_spans: 0,
        };
        for (n, in_bounds) in [(1, false), (2, true), (3, true), (4, false)] {
            let expected = if in_bounds {
                Decision::Sampled
            } else {
                Decision::NotSampled
            };
            assert_eq!(
                bounded.evaluate(&trace_with_spans(n), now()),
                expected,
                "{n} spans"
            );
        }
        assert_eq!(
            unbounded.evaluate(&trace_with_spans(1000), now()),
            Decision::Sampled
        );
        assert_eq!(
            unbounded.evaluate(&trace_with_spans(1), now()),
            Decision::NotSampled
        );
    }

    fn span_with_state(state: &str) -> Span {
        Span {
            trace_state: state.to_string(),
            ..span_with(&[])
        }
    }

    #[test]
    fn trace_state_matches_key_and_value_of_any_span() {
        let policy = TraceStateFilter::new("tenant", &["gold".to_string(), "silver".to_string()]);
        let gold = trace_of(vec![
            span_with_state(""),
            span_with_state("rojo=00f067aa0ba902b7, tenant=gold"),
        ]);
        let bronze = trace_of(vec![span_with_state("tenant=bronze")]);
        let other_key = trace_of(vec![span_with_state("plan=gold")]);
        assert_eq!(policy.evaluate(&gold, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&bronze, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&other_key, now()), Decision::NotSampled);
    }

    #[test]
    fn trace_state_malformed_header_matches_nothing() {
        let policy = TraceStateFilter::new("tenant", &["gold".to_string()]);
        for bad in [
            "tenant=gold,novalue",
            "tenant=gold,Upper=x",
            "tenant=gold,tenant=gold",
            "tenant=gold,k=a=b",
        ] {
            let trace = trace_of(vec![span_with_state(bad)]);
            assert_eq!(
                policy.evaluate(&trace, now()),
                Decision::NotSampled,
                "{bad}"
            );
        }
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        let trace = trace_of(vec![span_with_state(&format!(
            "tenant=gold,{}",
            too_many.join(",")
        ))]);
        assert_eq!(policy.evaluate(&trace, now()), Decision::NotSampled);
    }

    #[test]
    fn trace_state_parser_accepts_multi_tenant_keys_and_empty_members() {
        assert_eq!(trace_state_get("a=1,,t1@sys=2 ,\tb=3", "t1@sys"), Some("2"));
        assert_eq!(trace_state_get("a=1", "b"), None);
        assert_eq!(trace_state_get("", "a"), None);
    }
}
