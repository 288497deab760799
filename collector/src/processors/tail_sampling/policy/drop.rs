//! `drop`: when every sub-policy (`drop_sub_policy`, plain policies only) samples a trace, it
//! is dropped, whatever the other policies say. The Collector evaluates `drop` policies
//! first, so their verdict short-circuits the rest.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::config::{build_all, reads_of, validate_list, Level, PolicyConfig};
use super::kind::{Nesting, PolicyKind, Section};
use super::{Decision, Evaluate, Why};

/// The `drop` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "drop";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::TopOnly;
    const RUNS_FIRST: bool = true;
    const EXAMPLES: &'static [&'static str] = &[
        "{drop_sub_policy: [{name: k, type: string_attribute, string_attribute: {key: k, values: [b]}}, {name: l, type: latency, latency: {threshold_ms: 1}}]}",
    ];
    type Config = DropConfig;

    fn validate(c: &DropConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        let list = path.key("drop_sub_policy");
        if c.drop_sub_policy.is_empty() {
            diags.error(&list, "expected at least one sub-policy");
        }
        validate_list(&c.drop_sub_policy, &list, Level::DropSub, diags);
    }

    fn build(c: &DropConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(Drop {
            subs: build_all(&c.drop_sub_policy)?,
        }))
    }

    fn reads(c: &DropConfig) -> Reads {
        reads_of(&c.drop_sub_policy)
    }
}

/// `drop`: when every sub-policy samples, the trace is dropped whatever the other policies say.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropConfig {
    pub drop_sub_policy: Vec<PolicyConfig>,
}

/// `drop`: Dropped when every sub-policy samples, which overrides every other policy; else
/// NotSampled.
#[derive(Debug)]
pub(super) struct Drop {
    pub(super) subs: Vec<Box<dyn Evaluate>>,
}

impl Evaluate for Drop {
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

    fn try_decide(
        &self,
        trace: &TraceData,
        now: Instant,
        ignored: &mut Vec<String>,
        why: &mut Why,
    ) -> Result<Decision, String> {
        match super::all_subs_match(&self.subs, trace, now, ignored, why)? {
            Ok(reasons) => {
                why.say(format_args!(
                    "every sub-policy matches, so the trace is dropped: {}",
                    reasons
                ));
                Ok(Decision::Dropped)
            }
            Err(against) => {
                why.say(format_args!(
                    "not every sub-policy matches, so no drop: {}",
                    against
                ));
                Ok(Decision::NotSampled)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn drop_when_every_sub_policy_samples() {
        use Decision::*;
        let cases: &[(&[Decision], Decision)] = &[
            (&[Sampled, Sampled], Dropped),
            (&[InvertSampled], Dropped),
            (&[Sampled, NotSampled], NotSampled),
            (&[Sampled, InvertNotSampled], NotSampled),
        ];
        for (decisions, expected) in cases {
            let drop = Drop {
                subs: subs(decisions),
            };
            assert_eq!(
                drop.evaluate(&trace_with_spans(1), now()),
                *expected,
                "{decisions:?}"
            );
        }
    }
}
