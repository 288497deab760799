//! `composite`: sub-policies (`composite_sub_policy`: plain policies and `and`) in
//! `policy_order`, each with a share (`rate_allocation`) of `max_total_spans_per_second`.

use std::collections::HashSet;
use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::config::{reads_of, validate_list, Level, PolicyConfig};
use super::kind::{Nesting, PolicyKind, Section};
use super::{Decision, Evaluate, Why};

use parking_lot::Mutex;

/// The `composite` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "composite";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::TopOnly;
    const EXAMPLES: &'static [&'static str] = &[
        "{max_total_spans_per_second: 6, policy_order: [e, rest], composite_sub_policy: [{name: e, type: status_code, status_code: {status_codes: [ERROR]}}, {name: rest, type: and, and: {and_sub_policy: [{name: n, type: numeric_attribute, numeric_attribute: {key: n, min_value: 2}}]}}], rate_allocation: [{policy: e, percent: 50}, {policy: rest, percent: 50}]}",
    ];
    type Config = CompositeConfig;

    fn validate(c: &CompositeConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        c.validate(path, diags);
    }

    fn build(c: &CompositeConfig) -> Result<Box<dyn Evaluate>, String> {
        c.build()
    }

    fn reads(c: &CompositeConfig) -> Reads {
        reads_of(&c.composite_sub_policy)
    }
}

/// `composite`: sub-policies in `policy_order`, each with a share (`rate_allocation`) of
/// `max_total_spans_per_second`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompositeConfig {
    pub max_total_spans_per_second: i64,
    /// Sub-policy names in evaluation order; sub-policies not listed follow, in their order.
    pub policy_order: Vec<String>,
    pub composite_sub_policy: Vec<PolicyConfig>,
    pub rate_allocation: Vec<RateAllocationConfig>,
}

/// One `rate_allocation` entry: `percent` of `max_total_spans_per_second` for `policy`
/// (`percent` 0 or less: an equal share).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateAllocationConfig {
    pub policy: String,
    pub percent: i64,
}

impl CompositeConfig {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.max_total_spans_per_second <= 0 {
            diags.error(
                &path.key("max_total_spans_per_second"),
                "must be greater than 0: the spans kept per second by all sub-policies",
            );
        }
        let subs_path = path.key("composite_sub_policy");
        if self.composite_sub_policy.is_empty() {
            diags.error(&subs_path, "expected at least one sub-policy");
        }
        validate_list(
            &self.composite_sub_policy,
            &subs_path,
            Level::CompositeSub,
            diags,
        );
        let names: HashSet<&str> = self
            .composite_sub_policy
            .iter()
            .map(|p| p.name.as_str())
            .collect();

        let order_path = path.key("policy_order");
        let mut ordered = HashSet::new();
        for (index, name) in self.policy_order.iter().enumerate() {
            if !names.contains(name.as_str()) {
                diags.error(
                    &order_path.index(index),
                    format!("{name:?} is not the name of a composite_sub_policy"),
                );
            } else if !ordered.insert(name.as_str()) {
                diags.error(
                    &order_path.index(index),
                    format!("{name:?} is listed twice"),
                );
            }
        }

        let alloc_path = path.key("rate_allocation");
        let mut allocated = HashSet::new();
        let mut total_percent = 0i64;
        for (index, entry) in self.rate_allocation.iter().enumerate() {
            let at = alloc_path.index(index).key("policy");
            if !names.contains(entry.policy.as_str()) {
                diags.error(
                    &at,
                    format!(
                        "{:?} is not the name of a composite_sub_policy",
                        entry.policy
                    ),
                );
            } else if !allocated.insert(entry.policy.as_str()) {
                diags.error(&at, format!("{:?} has two rate allocations", entry.policy));
            }
            total_percent += entry.percent.max(0);
        }
        if total_percent > 100 {
            diags.warning(
                &alloc_path,
                format!("percentages add up to {total_percent}: max_total_spans_per_second still caps each sub-policy"),
            );
        }
        for (index, sub) in self.composite_sub_policy.iter().enumerate() {
            if sub.name.is_empty() {
                continue;
            }
            if !allocated.contains(sub.name.as_str()) {
                diags.warning(
                    &subs_path.index(index),
                    format!(
                        "{:?} has no rate_allocation entry, so (as in the Collector) it has no budget and never keeps a trace: add `{{policy: {}, percent: N}}`",
                        sub.name, sub.name
                    ),
                );
            }
            if !self.policy_order.is_empty() && !ordered.contains(sub.name.as_str()) {
                diags.warning(
                    &subs_path.index(index),
                    format!(
                        "{:?} is not in policy_order: it is evaluated after the listed sub-policies",
                        sub.name
                    ),
                );
            }
        }
    }

    /// Sub-policies in evaluation order: those named in `policy_order` first, in that order,
    /// then the others in their configured order.
    ///
    /// The Collector documents `policy_order` as the evaluation order but ignores it and
    /// evaluates in `composite_sub_policy` order (open issue
    /// open-telemetry/opentelemetry-collector-contrib#36955); both agree when the two lists
    /// have the same order, as in the Collector's own examples.
    fn evaluation_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = self
            .policy_order
            .iter()
            .filter_map(|name| {
                self.composite_sub_policy
                    .iter()
                    .position(|p| &p.name == name)
            })
            .collect();
        let mut seen: HashSet<usize> = HashSet::new();
        order.retain(|i| seen.insert(*i));
        for index in 0..self.composite_sub_policy.len() {
            if !seen.contains(&index) {
                order.push(index);
            }
        }
        order
    }

    fn build(&self) -> Result<Box<dyn Evaluate>, String> {
        let names: Vec<&str> = self
            .composite_sub_policy
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let rate_allocation: Vec<(String, i64)> = self
            .rate_allocation
            .iter()
            .map(|r| (r.policy.clone(), r.percent))
            .collect();
        let budgets = allocations(self.max_total_spans_per_second, &names, &rate_allocation);
        let subs = self
            .evaluation_order()
            .into_iter()
            .map(|index| {
                Ok(CompositeSub {
                    evaluator: self.composite_sub_policy[index].build_named()?,
                    allocated: budgets[index],
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Box::new(Composite::new(
            self.max_total_spans_per_second,
            subs,
        )))
    }
}

/// One `composite_sub_policy` with its spans-per-second budget.
#[derive(Debug)]
pub(super) struct CompositeSub {
    pub(super) evaluator: Box<dyn Evaluate>,
    /// Spans this sub-policy may keep per second (see [`allocations`]).
    pub(super) allocated: i64,
}

/// `composite`: sub-policies in order, each with a spans-per-second budget.
///
/// The Collector's algorithm: the budget counters restart every second; the first sub-policy
/// that samples the trace decides alone: the trace is kept if that sub-policy's spans this
/// second, counting this trace's, stay within both its own budget and
/// `max_total_spans_per_second` (compared with the sub-policy's own count, as the Collector
/// does), otherwise it is not kept and later sub-policies are not asked.
///
/// Seconds are counted from the first evaluation on the caller's clock (the Collector uses
/// wall-clock second boundaries; only the phase of the one-second windows differs).
#[derive(Debug)]
pub(super) struct Composite {
    pub(super) max_total_spans_per_second: i64,
    /// In evaluation order (`policy_order` first, see the config).
    pub(super) subs: Vec<CompositeSub>,
    state: Mutex<CompositeState>,
}

#[derive(Debug)]
struct CompositeState {
    /// The clock reading of the first evaluation: second 0.
    epoch: Option<Instant>,
    /// The second the counters belong to.
    second: u64,
    /// Spans kept in `second`, per sub-policy.
    spent: Vec<i64>,
}

impl Composite {
    pub(super) fn new(max_total_spans_per_second: i64, subs: Vec<CompositeSub>) -> Self {
        let spent = vec![0; subs.len()];
        Self {
            max_total_spans_per_second,
            subs,
            state: Mutex::new(CompositeState {
                epoch: None,
                second: 0,
                spent,
            }),
        }
    }
}

impl Evaluate for Composite {
    /// Shares a rate among its sub-policies: explained at the decision.
    fn deterministic(&self) -> bool {
        false
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
        let spans = trace.spans.len() as i64;
        // Held while sub-policies run: the budget check and the charge must be one step when
        // shards decide concurrently. Sub-policies only lock their own state (a strict
        // hierarchy, so no lock-order cycle).
        let mut state = self.state.lock();
        let epoch = *state.epoch.get_or_insert(now);
        let second = now.saturating_duration_since(epoch).as_secs();
        if second != state.second {
            state.second = second;
            state.spent.iter_mut().for_each(|s| *s = 0);
        }
        let mut missed = Vec::new();
        for (index, sub) in self.subs.iter().enumerate() {
            let mut said = why.sub();
            if sub
                .evaluator
                .try_decide(trace, now, ignored, &mut said)?
                .is_against()
            {
                if why.wanted() {
                    missed.push(said.into_text());
                }
                continue;
            }
            let if_kept = state.spent[index] + spans;
            if if_kept <= sub.allocated && if_kept <= self.max_total_spans_per_second {
                state.spent[index] = if_kept;
                why.say(format_args!(
                    "{}; its {spans} span(s) fit its share of {} spans/s",
                    said.text(),
                    sub.allocated
                ));
                return Ok(Decision::Sampled);
            }
            // Over budget: not kept, and the counter is left as is so a smaller trace may
            // still fit this second.
            why.say(format_args!(
                "{}; but its {spans} span(s) do not fit its share of {} spans/s ({} spent this second)",
                said.text(),
                sub.allocated.min(self.max_total_spans_per_second),
                state.spent[index]
            ));
            return Ok(Decision::NotSampled);
        }
        why.say(format_args!("no sub-policy matches: {}", missed.join("; ")));
        Ok(Decision::NotSampled)
    }
}
/// The spans-per-second budget of each sub-policy, as the Collector computes it from
/// `rate_allocation`: an entry with `percent > 0` gets `percent`% of
/// `max_total_spans_per_second`; an entry with `percent <= 0` gets an equal share
/// (`max_total / number of sub-policies`); a sub-policy without an entry gets 0 and never
/// keeps a trace (validation warns about it). Fractions are truncated.
pub(super) fn allocations(
    max_total_spans_per_second: i64,
    sub_policy_names: &[&str],
    rate_allocation: &[(String, i64)],
) -> Vec<i64> {
    let max_total = max_total_spans_per_second as f64;
    let equal_share = max_total / sub_policy_names.len().max(1) as f64;
    sub_policy_names
        .iter()
        .map(|name| {
            // The last entry for a name wins, as with the Collector's map.
            let share = rate_allocation
                .iter()
                .rev()
                .find(|(policy, _)| policy == name)
                .map(|(_, percent)| {
                    if *percent > 0 {
                        (*percent as f64 / 100.0) * max_total
                    } else {
                        equal_share
                    }
                })
                .unwrap_or(0.0);
            share as i64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::super::testutil::*;
    use super::*;

    fn composite(max_total: i64, parts: Vec<(Decision, i64)>) -> Composite {
        let subs = parts
            .into_iter()
            .map(|(decision, allocated)| CompositeSub {
                evaluator: fixed(decision).0,
                allocated,
            })
            .collect();
        Composite::new(max_total, subs)
    }

    #[test]
    fn composite_first_sampling_sub_policy_decides_within_its_budget() {
        let policy = composite(
            100,
            vec![
                (Decision::NotSampled, 50),
                (Decision::Sampled, 30),
                (Decision::Sampled, 70),
            ],
        );
        let t0 = now();
        let ten = trace_with_spans(10);
        // sub-1 (budget 30) keeps three 10-span traces, then refuses, and sub-2 is not asked.
        for _ in 0..3 {
            assert_eq!(policy.evaluate(&ten, t0), Decision::Sampled);
        }
        assert_eq!(policy.evaluate(&ten, t0), Decision::NotSampled);
        // A smaller trace no longer fits either: 30 + 1 > 30.
        assert_eq!(
            policy.evaluate(&trace_with_spans(1), t0),
            Decision::NotSampled
        );
    }

    #[test]
    fn composite_budgets_restart_every_second() {
        let policy = composite(100, vec![(Decision::Sampled, 20)]);
        let t0 = now();
        let twenty = trace_with_spans(20);
        let mut kept_per_second = Vec::new();
        for second in 0..3u64 {
            let mut kept = 0;
            for ms in [0u64, 250, 500, 999] {
                let t = t0 + Duration::from_secs(second) + Duration::from_millis(ms);
                if policy.evaluate(&twenty, t) == Decision::Sampled {
                    kept += 1;
                }
            }
            kept_per_second.push(kept);
        }
        assert_eq!(kept_per_second, vec![1, 1, 1]);
    }

    #[test]
    fn composite_rate_allocation_over_simulated_seconds() {
        // Errors get 60% of 100 spans/s, the catch-all 40%.
        let allocated = allocations(
            100,
            &["errors", "rest"],
            &[("errors".to_string(), 60), ("rest".to_string(), 40)],
        );
        assert_eq!(allocated, vec![60, 40]);

        let (errors, _) = fixed(Decision::Sampled);
        let (rest, rest_calls) = fixed(Decision::Sampled);
        let policy = Composite::new(
            100,
            vec![
                CompositeSub {
                    evaluator: errors,
                    allocated: 60,
                },
                CompositeSub {
                    evaluator: rest,
                    allocated: 40,
                },
            ],
        );
        let t0 = now();
        let trace = trace_with_spans(10);
        for second in 0..5u64 {
            let kept = (0..20)
                .filter(|i| {
                    let t = t0 + Duration::from_secs(second) + Duration::from_millis(i * 40);
                    policy.evaluate(&trace, t) == Decision::Sampled
                })
                .count();
            // The first sub-policy always matches, so only its 60 spans/s are kept.
            assert_eq!(kept, 6, "second {second}");
        }
        assert_eq!(rest_calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn composite_max_total_caps_each_sub_policy() {
        // A sub-policy with a larger allocation than the total is still capped by the total.
        let policy = composite(15, vec![(Decision::Sampled, 100)]);
        let t0 = now();
        assert_eq!(
            policy.evaluate(&trace_with_spans(10), t0),
            Decision::Sampled
        );
        assert_eq!(
            policy.evaluate(&trace_with_spans(10), t0),
            Decision::NotSampled
        );
        assert_eq!(policy.evaluate(&trace_with_spans(5), t0), Decision::Sampled);
    }

    #[test]
    fn composite_without_a_sampling_sub_policy_is_not_sampled() {
        let policy = composite(
            100,
            vec![(Decision::NotSampled, 50), (Decision::InvertNotSampled, 50)],
        );
        assert_eq!(
            policy.evaluate(&trace_with_spans(1), now()),
            Decision::NotSampled
        );
        // InvertSampled counts as sampling.
        let inverted = composite(100, vec![(Decision::InvertSampled, 50)]);
        assert_eq!(
            inverted.evaluate(&trace_with_spans(1), now()),
            Decision::Sampled
        );
    }

    #[test]
    fn allocations_follow_the_collector() {
        let names = ["a", "b", "c", "d"];
        let allocated = allocations(
            1000,
            &names,
            &[
                ("a".to_string(), 50),
                ("b".to_string(), 0),
                ("c".to_string(), 33),
                ("a".to_string(), 25),
            ],
        );
        // a: last entry wins (25%); b: percent 0 → equal share 1000/4; c: 33%; d: none → 0.
        assert_eq!(allocated, vec![250, 250, 330, 0]);
        // Fractions are truncated.
        assert_eq!(
            allocations(7, &["a", "b"], &[("a".into(), 50), ("b".into(), -1)]),
            vec![3, 3]
        );
    }
}
