//! `status_code`: any span whose status code is one of `status_codes` (`OK`, `ERROR`,
//! `UNSET`; a span without a status is `UNSET`).

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::enrich::Summary;
use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::{Decision, Evaluate, Why};

/// The status code names the Collector accepts, with their OTLP numbers.
const STATUS_CODES: [(&str, i32); 3] = [("UNSET", 0), ("OK", 1), ("ERROR", 2)];

/// The `status_code` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "status_code";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] =
        &["{status_codes: [ERROR]}", "{status_codes: [OK, UNSET]}"];
    type Config = StatusCodeConfig;

    fn validate(c: &StatusCodeConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        let list = path.key("status_codes");
        if c.status_codes.is_empty() {
            diags.error(
                &list,
                "expected at least one status code to filter on: OK, ERROR or UNSET",
            );
        }
        for (index, code) in c.status_codes.iter().enumerate() {
            if !STATUS_CODES.iter().any(|(name, _)| name == code) {
                diags.error(
                    &list.index(index),
                    format!(
                        "unknown status code {code:?}: expected OK, ERROR or UNSET (upper case)"
                    ),
                );
            }
        }
    }

    fn build(c: &StatusCodeConfig) -> Result<Box<dyn Evaluate>, String> {
        let codes = c
            .status_codes
            .iter()
            .map(|name| {
                STATUS_CODES
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, code)| *code)
                    .ok_or_else(|| format!("unknown status code {name:?}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Box::new(StatusCodeFilter { codes }))
    }

    fn reads(_: &StatusCodeConfig) -> Reads {
        Reads::SPAN_STATUS
    }
}

/// A status code's name (`ERROR`), or its number when it has none.
fn code_name(code: i32) -> &'static str {
    STATUS_CODES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("(unknown)", |(name, _)| name)
}

/// `"name" ` for a span with a name, nothing otherwise (its name is not always decoded).
pub(super) fn quoted_name(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("{:?} ", super::clip(name, 60))
    }
}

/// `status_code`: any span with one of `status_codes` (`OK`, `ERROR`, `UNSET`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusCodeConfig {
    pub status_codes: Vec<String>,
}

/// `status_code`: any span whose status code is one of the configured ones (a span without a
/// status is `UNSET`).
#[derive(Debug)]
pub(super) struct StatusCodeFilter {
    /// OTLP status code numbers: 0 UNSET, 1 OK, 2 ERROR.
    pub(super) codes: Vec<i32>,
}

impl Evaluate for StatusCodeFilter {
    fn decide(&self, trace: &TraceData, _now: Instant, why: &mut Why) -> Decision {
        let code_of =
            |e: &super::super::trace::SpanEntry| e.span.status.as_ref().map_or(0, |s| s.code);
        let hit = trace
            .spans
            .iter()
            .position(|e| self.codes.contains(&code_of(e)));
        if why.wanted() {
            match hit {
                Some(i) => {
                    let span = &trace.spans[i].span;
                    why.say(format_args!(
                        "span #{} {}has status {}",
                        i + 1,
                        quoted_name(&span.name),
                        code_name(code_of(&trace.spans[i]))
                    ));
                }
                None => why.say(format_args!("{}", self.none_has(trace.spans.len()))),
            }
        }
        if hit.is_some() {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }

    fn explains_from_summary(&self) -> bool {
        true
    }

    fn explain_not_sampled(&self, summary: &Summary) -> Option<String> {
        Some(self.none_has(summary.span_count as usize))
    }
}

impl StatusCodeFilter {
    /// Why a trace of `spans` spans, none with one of the codes, was not asked for.
    fn none_has(&self, spans: usize) -> String {
        let names: Vec<&str> = self.codes.iter().map(|c| code_name(*c)).collect();
        format!("none of {spans} span(s) has status {}", names.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use weft_proto::trace::v1::status::StatusCode;
    use weft_proto::trace::v1::Span;

    use super::super::testutil::*;
    use super::*;

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
}
