//! `latency`: a trace's duration, from its earliest span start to its latest span end, at or
//! above `threshold_ms`; with `upper_threshold_ms` (0 = none), above `threshold_ms` and at
//! most `upper_threshold_ms`.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::enrich::Summary;
use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::{human_ms, Decision, Evaluate, Why};

/// The `latency` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "latency";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        "{threshold_ms: 2}",
        "{threshold_ms: 1, upper_threshold_ms: 3}",
    ];
    type Config = LatencyConfig;

    fn validate(c: &LatencyConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        if c.threshold_ms < 0 {
            diags.error(
                &path.key("threshold_ms"),
                "must be 0 or more (milliseconds)",
            );
        }
        if c.upper_threshold_ms < 0 {
            diags.error(
                &path.key("upper_threshold_ms"),
                "must be 0 (no upper bound) or more (milliseconds)",
            );
        } else if c.upper_threshold_ms != 0 && c.upper_threshold_ms <= c.threshold_ms {
            diags.error(
                &path.key("upper_threshold_ms"),
                format!(
                    "must be greater than threshold_ms ({}), or 0 for no upper bound: with an upper bound a trace must last more than threshold_ms and at most upper_threshold_ms",
                    c.threshold_ms
                ),
            );
        }
    }

    fn build(c: &LatencyConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(Latency {
            threshold_ms: c.threshold_ms,
            upper_threshold_ms: c.upper_threshold_ms,
        }))
    }

    fn reads(_: &LatencyConfig) -> Reads {
        Reads::SPAN_TIMES
    }
}

/// `latency`: trace duration (earliest span start to latest span end) at or above
/// `threshold_ms`; with `upper_threshold_ms` (0 = none), above `threshold_ms` and at most
/// `upper_threshold_ms`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    pub threshold_ms: i64,
    pub upper_threshold_ms: i64,
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
    fn decide(&self, trace: &TraceData, _now: Instant, why: &mut Why) -> Decision {
        let Some(start) = trace
            .spans
            .iter()
            .map(|e| e.span.start_time_unix_nano)
            .min()
        else {
            why.say(format_args!("no span to time"));
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
        if why.wanted() {
            why.say(format_args!("{}", self.words(duration_ms, sampled)));
        }
        if sampled {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }

    fn explains_from_summary(&self) -> bool {
        true
    }

    fn explain_not_sampled(&self, summary: &Summary) -> Option<String> {
        Some(if summary.span_count == 0 {
            "no span to time".to_string()
        } else {
            self.words(i128::from(summary.duration_ms), false)
        })
    }
}

impl Latency {
    /// Why a trace that lasted `duration_ms` was (`sampled`) or was not asked for.
    fn words(&self, duration_ms: i128, sampled: bool) -> String {
        let (lasted, bound) = (
            human_ms(duration_ms),
            human_ms(i128::from(self.threshold_ms)),
        );
        match (self.upper_threshold_ms, sampled) {
            (0, true) => format!("lasted {lasted} ≥ {bound}"),
            (0, false) => format!("lasted {lasted} < {bound}"),
            (upper, inside) => format!(
                "lasted {lasted}, {} ({bound}, {}]",
                if inside { "within" } else { "outside" },
                human_ms(i128::from(upper))
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn latency(threshold_ms: i64, upper_threshold_ms: i64) -> Latency {
        Latency {
            threshold_ms,
            upper_threshold_ms,
        }
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
}
