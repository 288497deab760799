//! The tail-sampling policy engine: which traces to keep, decided once a trace is complete.
//!
//! The policy types and keys are the OpenTelemetry Collector tailsamplingprocessor's, so its
//! `policies:` YAML runs unchanged (`always_sample`, `latency`, `status_code`,
//! `string_attribute`, `numeric_attribute`, `boolean_attribute`, `probabilistic`,
//! `rate_limiting`, `span_count`, `trace_state`, `and`, `drop`, `composite`), plus Weft's log
//! policies (`log_severity`, `log_body`, `log_attribute`), which let a trace be kept because of
//! the logs written inside it.
//!
//! The engine follows config → validate → build:
//! 1. [`PolicyConfig`] decodes one `policies[i]` entry strictly (unknown keys are errors);
//! 2. [`validate_policies`] reports every problem, each with its path, without touching
//!    anything (regexes are compiled to check them, then thrown away);
//! 3. [`Policies::new`] builds the evaluators once (regexes compiled once), and
//!    [`Policies::decide`] evaluates a whole trace and combines the per-policy decisions the
//!    way the Collector's processor does (see [`Policies::decide`]).
//!
//! Evaluation is pure, except for the two policies whose budget depends on time
//! (`rate_limiting`, `composite`): they keep their state behind a mutex and take the current
//! time from the caller (`now`), never from the system clock, so tests drive them with
//! simulated seconds and the processor decides with the clock it uses for its window.

mod attribute;
mod combine;
mod config;
mod log;
mod matcher;
mod probabilistic;
mod rate;
mod span;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::fmt;
use std::time::Instant;

use weft_config::{ConfigPath, Diagnostics};

use super::trace::TraceData;

pub use config::{
    validate_policies, AndConfig, BooleanAttributeConfig, CompositeConfig, DropConfig,
    LatencyConfig, LogAttributeConfig, LogBodyConfig, LogSeverityConfig, NumericAttributeConfig,
    PolicyConfig, PolicyType, ProbabilisticConfig, RateAllocationConfig, RateLimitingConfig,
    SeverityValue, SpanCountConfig, StatusCodeConfig, StringAttributeConfig, TraceStateConfig,
};
pub use log::severity_from_str;

/// What one policy says about one trace.
///
/// The inverted variants come from policies with `invert_match: true`; the Collector keeps
/// them (deprecated there in favour of `drop`) because they combine differently from plain
/// decisions: see [`Policies::decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The policy does not ask for the trace. It is kept only if another policy samples it.
    NotSampled,
    /// The policy asks for the trace to be kept.
    Sampled,
    /// A `drop` policy matched: the trace is not kept, whatever the other policies say.
    Dropped,
    /// An `invert_match` policy found none of its values: the trace is kept, unless another
    /// policy says [`Decision::NotSampled`] (and none says [`Decision::Sampled`]).
    InvertSampled,
    /// An `invert_match` policy found one of its values: the trace is not kept, even when
    /// another policy samples it (only [`Decision::Dropped`] ranks higher).
    InvertNotSampled,
}

impl Decision {
    /// The `sampled` label of `otelcol_processor_tail_sampling_count_traces_sampled`, as the
    /// Collector sets it: `"true"` for [`Decision::Sampled`] and [`Decision::InvertSampled`].
    pub fn sampled_label(self) -> &'static str {
        match self {
            Decision::Sampled | Decision::InvertSampled => "true",
            Decision::NotSampled | Decision::InvertNotSampled | Decision::Dropped => "false",
        }
    }

    /// The `decision` label the Collector puts on the same metric: `sampled`, `not_sampled`
    /// or `dropped` (inverted decisions count as their plain counterpart).
    pub fn decision_label(self) -> &'static str {
        match self {
            Decision::Sampled | Decision::InvertSampled => "sampled",
            Decision::NotSampled | Decision::InvertNotSampled => "not_sampled",
            Decision::Dropped => "dropped",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::NotSampled => "not_sampled",
            Decision::Sampled => "sampled",
            Decision::Dropped => "dropped",
            Decision::InvertSampled => "invert_sampled",
            Decision::InvertNotSampled => "invert_not_sampled",
        })
    }
}

/// The outcome of [`Policies::decide`] for one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the trace is kept.
    pub sampled: bool,
    /// The final decision: [`Decision::Sampled`], [`Decision::NotSampled`] or
    /// [`Decision::Dropped`] (for the Collector's global decision metric).
    pub decision: Decision,
    /// The policy that kept the trace: the first (in evaluation order) that said
    /// [`Decision::Sampled`], or else the first that said [`Decision::InvertSampled`].
    /// `None` when the trace is not kept.
    pub policy: Option<String>,
    /// Every evaluated policy with its decision, in evaluation order, for the
    /// `otelcol_processor_tail_sampling_count_traces_sampled{policy, sampled}` metric. Policies
    /// after a [`Decision::Dropped`] (or after the first [`Decision::Sampled`] with
    /// `sample_on_first_match`) are not evaluated and not listed, as in the Collector.
    pub per_policy: Vec<(String, Decision)>,
}

/// One built policy: something that looks at a whole trace and says what it thinks.
///
/// Implementations must not read the system clock: `now` is the caller's clock, the same for
/// every policy of one decision. Stateful implementations keep their state behind a mutex, as
/// [`Policies::decide`] may run concurrently on several shards.
pub(crate) trait Evaluate: Send + Sync + fmt::Debug {
    fn evaluate(&self, trace: &TraceData, now: Instant) -> Decision;
}

/// A top-level policy with its name, ready to evaluate.
#[derive(Debug)]
struct NamedPolicy {
    name: String,
    evaluator: Box<dyn Evaluate>,
}

/// The built `policies:` list of one `tail_sampling` processor.
#[derive(Debug)]
pub struct Policies {
    /// In evaluation order: the `drop` policies first, then the others, each group in
    /// configuration order (as the Collector orders them, so a drop short-circuits early).
    policies: Vec<NamedPolicy>,
    sample_on_first_match: bool,
}

impl Policies {
    /// Validates and builds `configs` (the processor's `policies:` list). On failure the
    /// error lists every problem found, each with its path under `policies`.
    pub fn new(configs: &[PolicyConfig]) -> Result<Self, String> {
        let mut diags = Diagnostics::new();
        validate_policies(configs, &ConfigPath::root().key("policies"), &mut diags);
        if diags.has_errors() {
            let problems: Vec<String> = diags
                .errors()
                .map(|d| format!("{}: {}", d.path, d.message))
                .collect();
            return Err(format!(
                "invalid tail_sampling policies: {}",
                problems.join("; ")
            ));
        }
        let mut drops = Vec::new();
        let mut others = Vec::new();
        for config in configs {
            let named = NamedPolicy {
                name: config.name.clone(),
                evaluator: config.build()?,
            };
            if config.policy_type == Some(PolicyType::Drop) {
                drops.push(named);
            } else {
                others.push(named);
            }
        }
        drops.extend(others);
        Ok(Self {
            policies: drops,
            sample_on_first_match: false,
        })
    }

    /// The Collector's `sample_on_first_match`: stop evaluating at the first policy that says
    /// [`Decision::Sampled`] (saves work; later stateful policies are then not charged).
    pub fn with_sample_on_first_match(mut self, on: bool) -> Self {
        self.sample_on_first_match = on;
        self
    }

    /// The policy names, in evaluation order (to pre-register per-policy metrics).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Evaluates every policy on `trace` and combines the decisions as the Collector does:
    /// 1. any [`Decision::Dropped`] → not kept (evaluation stops at the first one);
    /// 2. else any [`Decision::InvertNotSampled`] → not kept;
    /// 3. else any [`Decision::Sampled`] → kept;
    /// 4. else any [`Decision::InvertSampled`] and no [`Decision::NotSampled`] → kept;
    /// 5. else not kept.
    ///
    /// `now` is the caller's clock; only `rate_limiting` and `composite` use it.
    pub fn decide(&self, trace: &TraceData, now: Instant) -> Verdict {
        let mut per_policy = Vec::with_capacity(self.policies.len());
        let mut first_sampled = None;
        let mut first_invert_sampled = None;
        let mut any_not_sampled = false;
        let mut any_invert_not_sampled = false;
        let mut dropped = false;
        for (index, policy) in self.policies.iter().enumerate() {
            let decision = policy.evaluator.evaluate(trace, now);
            per_policy.push((policy.name.clone(), decision));
            match decision {
                Decision::Dropped => {
                    dropped = true;
                    break;
                }
                Decision::Sampled => {
                    first_sampled.get_or_insert(index);
                    if self.sample_on_first_match {
                        break;
                    }
                }
                Decision::InvertSampled => {
                    first_invert_sampled.get_or_insert(index);
                }
                Decision::NotSampled => any_not_sampled = true,
                Decision::InvertNotSampled => any_invert_not_sampled = true,
            }
        }
        let keeper = if dropped || any_invert_not_sampled {
            None
        } else if first_sampled.is_some() {
            first_sampled
        } else if !any_not_sampled {
            first_invert_sampled
        } else {
            None
        };
        let decision = match (dropped, keeper) {
            (true, _) => Decision::Dropped,
            (false, Some(_)) => Decision::Sampled,
            (false, None) => Decision::NotSampled,
        };
        Verdict {
            sampled: keeper.is_some(),
            decision,
            policy: keeper.map(|i| self.policies[i].name.clone()),
            per_policy,
        }
    }
}
