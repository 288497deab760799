//! `span_count`: the number of spans held for the trace is at least `min_spans` and, when
//! `max_spans` is not 0, at most `max_spans`.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::enrich::Summary;
use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::{Decision, Evaluate, Why};

/// The `span_count` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "span_count";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &["{min_spans: 2}", "{min_spans: 1, max_spans: 2}"];
    type Config = SpanCountConfig;

    fn validate(c: &SpanCountConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        if c.min_spans < 0 {
            diags.error(&path.key("min_spans"), "must be 0 or more");
        }
        if c.max_spans < 0 {
            diags.error(&path.key("max_spans"), "must be 0 (no maximum) or more");
        } else if c.max_spans != 0 && c.max_spans < c.min_spans {
            diags.error(
                &path.key("max_spans"),
                format!(
                    "must be 0 (no maximum) or at least min_spans ({})",
                    c.min_spans
                ),
            );
        }
    }

    fn build(c: &SpanCountConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(SpanCount {
            min_spans: i64::from(c.min_spans),
            max_spans: i64::from(c.max_spans),
        }))
    }

    fn reads(_: &SpanCountConfig) -> Reads {
        Reads::NOTHING
    }
}

/// `span_count`: at least `min_spans` and, unless `max_spans` is 0, at most `max_spans` spans.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanCountConfig {
    pub min_spans: i32,
    pub max_spans: i32,
}

/// `span_count`: the number of spans buffered for the trace is at least `min_spans` and, when
/// `max_spans` is not 0, at most `max_spans`.
#[derive(Debug)]
pub(super) struct SpanCount {
    pub(super) min_spans: i64,
    pub(super) max_spans: i64,
}

impl Evaluate for SpanCount {
    fn decide(&self, trace: &TraceData, _now: Instant, why: &mut Why) -> Decision {
        let count = trace.spans.len() as i64;
        let sampled = count >= self.min_spans && (self.max_spans == 0 || count <= self.max_spans);
        if why.wanted() {
            why.say(format_args!("{}", self.words(count, sampled)));
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
        Some(self.words(summary.span_count, false))
    }
}

impl SpanCount {
    fn words(&self, count: i64, sampled: bool) -> String {
        let max = if self.max_spans == 0 {
            "∞".to_string()
        } else {
            self.max_spans.to_string()
        };
        format!(
            "{count} span(s), {} [{}, {max}]",
            if sampled { "within" } else { "outside" },
            self.min_spans
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

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
}
