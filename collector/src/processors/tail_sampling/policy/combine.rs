//! Policies made of policies: `and`, `drop` and `composite`.

use std::time::Instant;

use parking_lot::Mutex;

use super::super::trace::TraceData;
use super::{Decision, Evaluate};

/// A sub-policy is "against" the trace when it says NotSampled or InvertNotSampled; anything
/// else (Sampled, InvertSampled) counts as a match inside `and`, `drop` and `composite`.
fn is_against(decision: Decision) -> bool {
    matches!(decision, Decision::NotSampled | Decision::InvertNotSampled)
}

/// `and`: Sampled when every sub-policy samples (inverted decisions count as their plain
/// counterpart). Stops at the first sub-policy against, so a later stateful sub-policy (a
/// `rate_limiting`) is only charged for traces the earlier ones accepted.
#[derive(Debug)]
pub(super) struct And {
    pub(super) subs: Vec<Box<dyn Evaluate>>,
}

impl Evaluate for And {
    fn evaluate(&self, trace: &TraceData, now: Instant) -> Decision {
        for sub in &self.subs {
            if is_against(sub.evaluate(trace, now)) {
                return Decision::NotSampled;
            }
        }
        Decision::Sampled
    }
}

/// `drop`: Dropped when every sub-policy samples, which overrides every other policy; else
/// NotSampled.
#[derive(Debug)]
pub(super) struct Drop {
    pub(super) subs: Vec<Box<dyn Evaluate>>,
}

impl Evaluate for Drop {
    fn evaluate(&self, trace: &TraceData, now: Instant) -> Decision {
        for sub in &self.subs {
            if is_against(sub.evaluate(trace, now)) {
                return Decision::NotSampled;
            }
        }
        Decision::Dropped
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
    fn evaluate(&self, trace: &TraceData, now: Instant) -> Decision {
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
        for (index, sub) in self.subs.iter().enumerate() {
            if is_against(sub.evaluator.evaluate(trace, now)) {
                continue;
            }
            let if_kept = state.spent[index] + spans;
            if if_kept <= sub.allocated && if_kept <= self.max_total_spans_per_second {
                state.spent[index] = if_kept;
                return Decision::Sampled;
            }
            // Over budget: not kept, and the counter is left as is so a smaller trace may
            // still fit this second.
            return Decision::NotSampled;
        }
        Decision::NotSampled
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::testutil::*;
    use super::*;

    /// A sub-policy with a fixed answer that counts how often it is asked.
    #[derive(Debug)]
    struct Fixed {
        decision: Decision,
        calls: Arc<AtomicUsize>,
    }

    fn fixed(decision: Decision) -> (Box<dyn Evaluate>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        (
            Box::new(Fixed {
                decision,
                calls: calls.clone(),
            }),
            calls,
        )
    }

    impl Evaluate for Fixed {
        fn evaluate(&self, _trace: &TraceData, _now: Instant) -> Decision {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.decision
        }
    }

    fn subs(decisions: &[Decision]) -> Vec<Box<dyn Evaluate>> {
        decisions.iter().map(|d| fixed(*d).0).collect()
    }

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
