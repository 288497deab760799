//! `and`: a trace is sampled when every sub-policy (`and_sub_policy`, plain policies only)
//! samples it.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::config::{build_all, reads_of, validate_list, Level, PolicyConfig};
use super::kind::{Nesting, PolicyKind, Section};
use super::{Decision, Evaluate, Why};

/// The `and` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "and";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::TopOrComposite;
    const EXAMPLES: &'static [&'static str] = &[
        "{and_sub_policy: [{name: s, type: status_code, status_code: {status_codes: [ERROR]}}, {name: k, type: string_attribute, string_attribute: {key: k, values: [a]}}]}",
        "{and_sub_policy: [{name: n, type: span_count, span_count: {min_spans: 2}}, {name: l, type: log_body, log_body: {values: [a]}}, {name: t, type: trace_flags}]}",
    ];
    type Config = AndConfig;

    fn validate(c: &AndConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        let list = path.key("and_sub_policy");
        if c.and_sub_policy.is_empty() {
            diags.error(&list, "expected at least one sub-policy");
        }
        validate_list(&c.and_sub_policy, &list, Level::AndSub, diags);
    }

    fn build(c: &AndConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(And {
            subs: build_all(&c.and_sub_policy)?,
        }))
    }

    fn reads(c: &AndConfig) -> Reads {
        reads_of(&c.and_sub_policy)
    }
}

/// `and`: every sub-policy samples.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AndConfig {
    pub and_sub_policy: Vec<PolicyConfig>,
}

/// `and`: Sampled when every sub-policy samples (inverted decisions count as their plain
/// counterpart). Stops at the first sub-policy against, so a later stateful sub-policy (a
/// `rate_limiting`) is only charged for traces the earlier ones accepted.
#[derive(Debug)]
pub(super) struct And {
    pub(super) subs: Vec<Box<dyn Evaluate>>,
}

impl Evaluate for And {
    fn deterministic(&self) -> bool {
        self.subs.iter().all(|s| s.deterministic())
    }

    fn decide(&self, trace: &TraceData, now: Instant, why: &mut Why) -> Decision {
        self.try_decide(trace, now, &mut Vec::new(), why)
            .unwrap_or_else(|e| {
                why.say(format_args!("a sub-policy failed: {e}"));
                Decision::NotSampled
            })
    }

    /// Stops at the first sub-policy against; a sub-policy's error is the policy's error.
    fn try_decide(
        &self,
        trace: &TraceData,
        now: Instant,
        ignored: &mut Vec<String>,
        why: &mut Why,
    ) -> Result<Decision, String> {
        match super::all_subs_match(&self.subs, trace, now, ignored, why)? {
            Ok(reasons) => {
                why.say(format_args!("every sub-policy matches: {}", reasons));
                Ok(Decision::Sampled)
            }
            Err(against) => {
                why.say(format_args!("not every sub-policy matches: {}", against));
                Ok(Decision::NotSampled)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::testutil::*;
    use super::*;

    #[test]
    fn and_needs_every_sub_policy() {
        use Decision::*;
        let cases: &[(&[Decision], Decision)] = &[
            (&[Sampled, Sampled], Sampled),
            (&[Sampled, InvertSampled], Sampled),
            (&[Sampled, NotSampled], NotSampled),
            (&[InvertNotSampled, Sampled], NotSampled),
        ];
        for (decisions, expected) in cases {
            let and = And {
                subs: subs(decisions),
            };
            assert_eq!(
                and.evaluate(&trace_with_spans(1), now()),
                *expected,
                "{decisions:?}"
            );
        }
    }

    #[test]
    fn and_stops_at_the_first_sub_policy_against() {
        let (first, _) = fixed(Decision::NotSampled);
        let (second, calls) = fixed(Decision::Sampled);
        let and = And {
            subs: vec![first, second],
        };
        assert_eq!(
            and.evaluate(&trace_with_spans(1), now()),
            Decision::NotSampled
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}
