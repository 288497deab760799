//! The tail-sampling policy engine: which traces to keep, decided once a trace is complete.
//!
//! The policy types and keys are the OpenTelemetry Collector tailsamplingprocessor's, so its
//! `policies:` YAML runs unchanged (`always_sample`, `latency`, `status_code`,
//! `string_attribute`, `numeric_attribute`, `boolean_attribute`, `probabilistic`,
//! `rate_limiting`, `bytes_limiting`, `span_count`, `trace_state`, `trace_flags`,
//! `ottl_condition`, `and`, `drop`, `composite`), plus Weft's log policies (`log_severity`,
//! `log_body`, `log_attribute`), which let a trace be kept because of the logs written
//! inside it.
//!
//! # A policy type is one module
//!
//! Each type lives in the module named after it (`type: latency` → `latency.rs`) and says
//! everything about itself through [`kind::PolicyKind`], implemented on its `Kind`: its YAML
//! name, its settings type (strict serde), validation with paths, the evaluator it builds,
//! where it may be nested, and what it reads of a trace ([`Reads`]). [`KINDS`] lists them
//! once; the `{name, type, <type>: {...}}` decoding, the "required: one of …" message, the
//! nesting checks, building, and what the window decodes before deciding all come from it.
//!
//! **Adding a policy type** takes exactly:
//! 1. a module `collector/src/processors/tail_sampling/policy/<type>.rs` with a unit struct
//!    `Kind` implementing [`kind::PolicyKind`] (with `EXAMPLES` exercising what it reads),
//!    its settings type, and its evaluator implementing [`Evaluate`], with unit tests;
//! 2. one line in [`KINDS`] below, and its `mod <type>;` line beside the others.
//!
//! Nothing else changes: the window decodes what `reads()` declares, and the conformance
//! test (`tests.rs`) checks every registered type's evaluator on fully decoded traces
//! against the decode its `reads()` allows, so a type reading more than it declares fails.
//! Document the type in the README's policy table.
//!
//! # Config → validate → build
//!
//! 1. [`PolicyConfig`] decodes one `policies[i]` entry strictly (unknown keys are errors);
//! 2. [`validate_policies`] reports every problem, each with its path, without touching
//!    anything (regexes and OTTL conditions are compiled to check them, then thrown away);
//! 3. [`Policies::new`] builds the evaluators once, and [`Policies::decide`] evaluates a
//!    whole trace and combines the per-policy decisions the way the Collector's processor
//!    does (see [`Policies::decide`]).
//!
//! Evaluation is pure, except for the policies whose budget depends on time
//! (`rate_limiting`, `bytes_limiting`, `composite`): they keep their state behind a mutex
//! and take the current time from the caller (`now`), never from the system clock, so tests
//! drive them with simulated seconds and the processor decides with the clock it uses for
//! its window.

mod always_sample;
mod and;
mod boolean_attribute;
mod bytes_limiting;
mod composite;
mod config;
mod drop;
pub(crate) mod kind;
mod latency;
mod log_attribute;
mod log_body;
mod log_severity;
mod matcher;
mod numeric_attribute;
mod ottl_condition;
mod probabilistic;
mod rate_limiting;
mod severity;
mod span_count;
mod status_code;
mod string_attribute;
mod token_bucket;
mod trace_flags;
mod trace_state;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Instant;

use weft_config::{ConfigPath, Diagnostics};

use super::enrich::Summary;
use super::trace::{Reads, TraceData};
use kind::DynKind;

pub use config::{validate_policies, PolicyConfig};
pub use severity::{severity_from_str, severity_name, SeverityValue};

/// Every policy type, once. The order is the one of the "required: one of …" message.
pub(crate) static KINDS: &[&dyn DynKind] = &[
    &always_sample::Kind,
    &latency::Kind,
    &status_code::Kind,
    &string_attribute::Kind,
    &numeric_attribute::Kind,
    &boolean_attribute::Kind,
    &probabilistic::Kind,
    &rate_limiting::Kind,
    &bytes_limiting::Kind,
    &span_count::Kind,
    &trace_state::Kind,
    &trace_flags::Kind,
    &ottl_condition::Kind,
    &and::Kind,
    &drop::Kind,
    &composite::Kind,
    &log_severity::Kind,
    &log_body::Kind,
    &log_attribute::Kind,
];

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

    /// Whether a sub-policy saying this is against the trace inside `and`, `drop` and
    /// `composite`: NotSampled and InvertNotSampled are; Sampled and InvertSampled count as
    /// a match.
    pub(crate) fn is_against(self) -> bool {
        matches!(self, Decision::NotSampled | Decision::InvertNotSampled)
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
    pub policy: Option<Arc<str>>,
    /// Every evaluated policy with its decision, in evaluation order, for the
    /// `otelcol_processor_tail_sampling_count_traces_sampled{policy, sampled}` metric. Policies
    /// after a [`Decision::Dropped`] (or after the first [`Decision::Sampled`] with
    /// `sample_on_first_match`) are not evaluated and not listed, as in the Collector.
    pub per_policy: Vec<(Arc<str>, Decision)>,
    /// Policies that failed on this trace at run time, or let errors through by
    /// configuration (an `ottl_condition` with `error_mode: ignore`), to be logged.
    pub errors: Vec<PolicyError>,
    /// Why each policy of [`Verdict::per_policy`] decided as it did, in the same order
    /// ("lasted 2.3 s ≥ 1 s"): filled only by [`Policies::decide_explained`] when asked (the
    /// status page's decisions ring), empty otherwise, and empty too when no reason was
    /// written (an empty one is a policy left for later); see [`Explain`].
    pub reasons: Vec<String>,
}

/// A policy's run-time error on one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub policy: String,
    pub message: String,
    /// The policy failed (`error_mode: propagate`): its decision does not count, and it is
    /// absent from [`Verdict::per_policy`], as in the Collector. Otherwise the errors were
    /// ignored by configuration and the policy decided anyway.
    pub failed: bool,
}

/// Why a policy decided what it did, in words an operator reads: `lasted 2.3 s ≥ 1 s`,
/// `span #2 "Charge" has status ERROR`, `no log at or above ERROR (highest: WARN)`.
///
/// Written only when asked for ([`Why::on`]: the status page's decisions ring is on), so a
/// decision without it costs one predictable branch per policy: [`Why::say`] takes
/// `format_args!`, which formats nothing unless wanted, and evaluators that must look
/// further for their explanation (which span matched, which value) check [`Why::wanted`]
/// first. The last thing said counts. Every policy type says something on every trace: the
/// conformance test (`tests.rs`) checks it for each registered type.
#[derive(Debug, Default)]
pub struct Why {
    wanted: bool,
    text: String,
}

impl Why {
    /// Nothing is written (the fast path).
    pub const fn off() -> Self {
        Self {
            wanted: false,
            text: String::new(),
        }
    }

    /// Explanations are written.
    pub fn on() -> Self {
        Self {
            wanted: true,
            text: String::new(),
        }
    }

    #[inline]
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// Says why (replacing what was said before); formats only when wanted.
    #[inline]
    pub fn say(&mut self, args: fmt::Arguments<'_>) {
        if self.wanted {
            self.text.clear();
            let _ = self.text.write_fmt(args);
        }
    }

    /// A fresh explanation for a sub-policy, wanted when this one is.
    pub fn sub(&self) -> Why {
        Why {
            wanted: self.wanted,
            text: String::new(),
        }
    }

    /// What was said.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

/// A duration in milliseconds as an operator reads it: `850 ms`, `2.3 s`, `1.97 s`,
/// `1 m 5 s` (seconds to the hundredth, truncated, as the whole milliseconds are).
pub(crate) fn human_ms(ms: i128) -> String {
    let abs = ms.unsigned_abs();
    let sign = if ms < 0 { "-" } else { "" };
    if abs < 1000 {
        format!("{sign}{abs} ms")
    } else if abs < 60_000 {
        let hundredths = abs / 10;
        let fraction = format!("{:02}", hundredths % 100);
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            format!("{sign}{} s", hundredths / 100)
        } else {
            format!("{sign}{}.{fraction} s", hundredths / 100)
        }
    } else {
        format!("{sign}{} m {} s", abs / 60_000, abs / 1000 % 60)
    }
}

/// At most `max` characters of `text`, with `…` when cut (for values quoted in reasons).
pub(crate) fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((at, _)) => format!("{}…", &text[..at]).into(),
    }
}

/// Whether every one of `subs` is for `trace`, evaluated in order and stopping at the first
/// against (so a stateful sub-policy after it is not charged): `Ok(Ok(reasons))` with each
/// sub-policy's reason joined (empty unless `why.wanted()`), `Ok(Err(reason))` with the
/// first against's reason; a sub-policy's error is the caller's error. For `and` and `drop`.
fn all_subs_match(
    subs: &[Box<dyn Evaluate>],
    trace: &TraceData,
    now: Instant,
    ignored: &mut Vec<String>,
    why: &Why,
) -> Result<Result<String, String>, String> {
    let mut matched = Vec::new();
    for sub in subs {
        let mut said = why.sub();
        if sub.try_decide(trace, now, ignored, &mut said)?.is_against() {
            return Ok(Err(said.into_text()));
        }
        if why.wanted() {
            matched.push(said.into_text());
        }
    }
    Ok(Ok(matched.join("; ")))
}

/// One built policy: something that looks at a whole trace and says what it thinks.
///
/// Implementations must not read the system clock: `now` is the caller's clock, the same for
/// every policy of one decision. Stateful implementations keep their state behind a mutex, as
/// [`Policies::decide`] may run concurrently on several shards.
///
/// Every evaluator says why it decided through `why` (see [`Why`]); explaining must not
/// change the decision nor the evaluator's state (a rate limit is charged once, whether
/// explained or not).
pub(crate) trait Evaluate: Send + Sync + fmt::Debug {
    /// Decides on `trace`; when `why.wanted()`, also says why.
    fn decide(&self, trace: &TraceData, now: Instant, why: &mut Why) -> Decision;

    /// As [`Evaluate::decide`], for evaluators the data can make fail (`ottl_condition`)
    /// and those holding them (`and`, `drop`, `composite`): `Err` means the policy failed on
    /// this trace (its decision does not count); errors it let through by configuration are
    /// pushed to `ignored`, to be logged. Infallible evaluators keep this default.
    fn try_decide(
        &self,
        trace: &TraceData,
        now: Instant,
        ignored: &mut Vec<String>,
        why: &mut Why,
    ) -> Result<Decision, String> {
        let _ = ignored;
        Ok(self.decide(trace, now, why))
    }

    /// Whether its decision and explanation depend on nothing but the trace and `now`
    /// (no state: no rate limit, no budget), so that evaluating it again later on the same
    /// data says the same. The decisions ring explains such policies only when the status
    /// page asks ([`Explain::Later`]); the others are explained at the decision, the only
    /// time their state is what decided.
    fn deterministic(&self) -> bool {
        true
    }

    /// Why it did not ask for a trace ([`Decision::NotSampled`]), in the words
    /// [`Evaluate::decide`] uses, from the trace's summary alone — the decisions ring keeps
    /// no spans of a dropped trace unless asked to. `None` when the summary cannot say.
    fn explain_not_sampled(&self, summary: &Summary) -> Option<String> {
        let _ = summary;
        None
    }

    /// Whether [`Evaluate::explain_not_sampled`] says it; the others are explained at the
    /// decision ([`Explain::Later`]), as the ring may not hold the trace's items.
    fn explains_from_summary(&self) -> bool {
        false
    }

    /// [`Evaluate::decide`] without an explanation (tests).
    #[cfg(test)]
    fn evaluate(&self, trace: &TraceData, now: Instant) -> Decision {
        self.decide(trace, now, &mut Why::off())
    }

    /// [`Evaluate::try_decide`] without an explanation (tests).
    #[cfg(test)]
    fn try_evaluate(
        &self,
        trace: &TraceData,
        now: Instant,
        ignored: &mut Vec<String>,
    ) -> Result<Decision, String> {
        self.try_decide(trace, now, ignored, &mut Why::off())
    }
}

/// A sub-policy (of `and`, `drop`, `composite`) with its name, which it puts in front of
/// what it says: `errors: span #1 "Charge" has status ERROR`.
#[derive(Debug)]
pub(super) struct NamedSub {
    pub(super) name: String,
    pub(super) inner: Box<dyn Evaluate>,
}

impl Evaluate for NamedSub {
    fn decide(&self, trace: &TraceData, now: Instant, why: &mut Why) -> Decision {
        let decision = self.inner.decide(trace, now, why);
        self.name_it(why);
        decision
    }

    fn try_decide(
        &self,
        trace: &TraceData,
        now: Instant,
        ignored: &mut Vec<String>,
        why: &mut Why,
    ) -> Result<Decision, String> {
        let decision = self.inner.try_decide(trace, now, ignored, why);
        self.name_it(why);
        decision
    }

    fn deterministic(&self) -> bool {
        self.inner.deterministic()
    }
}

impl NamedSub {
    fn name_it(&self, why: &mut Why) {
        if why.wanted() {
            why.text.insert_str(0, &format!("{}: ", self.name));
        }
    }
}

/// A top-level policy with its name, ready to evaluate.
#[derive(Debug)]
struct NamedPolicy {
    /// Shared with every verdict that lists it (no copy per decision).
    name: Arc<str>,
    /// Its `type`, for the status page ("slow (latency): …").
    type_name: &'static str,
    evaluator: Box<dyn Evaluate>,
}

/// Which policies [`Policies::decide_explained`] asks why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Explain {
    /// None (the fast path).
    Nothing,
    /// Every policy.
    Everything,
    /// Only those whose reason cannot be written later: the stateful ones (not
    /// [`Evaluate::deterministic`]) and those whose words need the trace's items (not
    /// [`Evaluate::explains_from_summary`]). The others leave their reason empty, to be
    /// written later by [`Policies::explain`] on the same data or, for one that did not ask
    /// for the trace, by [`Policies::explain_not_sampled`] from its summary.
    Later,
}

/// The built `policies:` list of one `tail_sampling` processor.
#[derive(Debug)]
pub struct Policies {
    /// In evaluation order: the `drop` policies first, then the others, each group in
    /// configuration order (as the Collector orders them, so a drop short-circuits early).
    policies: Vec<NamedPolicy>,
    sample_on_first_match: bool,
    /// The union of what the policies read.
    reads: Reads,
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
        let mut first = Vec::new();
        let mut others = Vec::new();
        for config in configs {
            let named = NamedPolicy {
                name: config.name.as_str().into(),
                type_name: config.type_name().unwrap_or("unknown"),
                evaluator: config.build()?,
            };
            if config.runs_first() {
                first.push(named);
            } else {
                others.push(named);
            }
        }
        first.extend(others);
        Ok(Self {
            policies: first,
            sample_on_first_match: false,
            reads: config::reads_of(configs),
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
        self.policies.iter().map(|p| &*p.name)
    }

    /// The `type` of the top-level policy named `name`.
    /// The evaluation-order index of the policy `name` (one of the names this set hands to
    /// verdicts: compared by pointer first).
    pub fn index_of(&self, name: &Arc<str>) -> Option<usize> {
        self.policies
            .iter()
            .position(|p| Arc::ptr_eq(&p.name, name))
            .or_else(|| self.policies.iter().position(|p| p.name == *name))
    }

    /// The name of the policy at evaluation-order `index`.
    pub fn name_at(&self, index: usize) -> Option<&Arc<str>> {
        self.policies.get(index).map(|p| &p.name)
    }

    pub fn type_of(&self, name: &str) -> Option<&'static str> {
        self.policies
            .iter()
            .find(|p| &*p.name == name)
            .map(|p| p.type_name)
    }

    /// What deciding reads of a trace: the union of the policies' [`Reads`].
    pub fn reads(&self) -> Reads {
        self.reads
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
    /// A policy that fails on the trace (see [`PolicyError`]) is left out, as the Collector
    /// leaves out a policy whose evaluation returns an error.
    ///
    /// `now` is the caller's clock; only the rate-based policies use it.
    pub fn decide(&self, trace: &TraceData, now: Instant) -> Verdict {
        self.decide_explained(trace, now, Explain::Nothing)
    }

    /// Why the deterministic policy `name` decides as it does on `trace` at `now`: its
    /// reason as [`Policies::decide_explained`] would have written it then (`None` for a
    /// name it does not know, or a policy that is not deterministic).
    pub fn explain(&self, name: &str, trace: &TraceData, now: Instant) -> Option<String> {
        let policy = self.policies.iter().find(|p| &*p.name == name)?;
        if !policy.evaluator.deterministic() {
            return None;
        }
        let mut why = Why::on();
        match policy
            .evaluator
            .try_decide(trace, now, &mut Vec::new(), &mut why)
        {
            Ok(_) => Some(why.into_text()),
            Err(e) => Some(format!("failed: {e}")),
        }
    }

    /// Why policy `name` did not ask for a trace, from the trace's summary alone (see
    /// [`Evaluate::explain_not_sampled`]); for a policy whose reason needs the spans, a plain
    /// statement that its condition did not hold.
    pub fn explain_not_sampled(&self, name: &str, summary: &Summary) -> String {
        self.policies
            .iter()
            .find(|p| &*p.name == name)
            .and_then(|p| p.evaluator.explain_not_sampled(summary))
            .unwrap_or_else(|| "its condition did not hold for this trace".to_string())
    }

    /// [`Policies::decide`]; unless `explain` is [`Explain::Nothing`], [`Verdict::reasons`]
    /// says why each policy decided as it did (empty for those left for later by
    /// [`Explain::Later`]). Explaining changes no decision.
    pub fn decide_explained(&self, trace: &TraceData, now: Instant, explain: Explain) -> Verdict {
        let mut per_policy = Vec::with_capacity(self.policies.len());
        let mut reasons = Vec::new();
        let mut errors = Vec::new();
        let mut ignored = Vec::new();
        let mut first_sampled = None;
        let mut first_invert_sampled = None;
        let mut any_not_sampled = false;
        let mut any_invert_not_sampled = false;
        let mut dropped = false;
        for (index, policy) in self.policies.iter().enumerate() {
            let wanted = match explain {
                Explain::Nothing => false,
                Explain::Everything => true,
                Explain::Later => {
                    !policy.evaluator.deterministic() || !policy.evaluator.explains_from_summary()
                }
            };
            let mut why = if wanted { Why::on() } else { Why::off() };
            let outcome = policy
                .evaluator
                .try_decide(trace, now, &mut ignored, &mut why);
            errors.extend(ignored.drain(..).map(|message| PolicyError {
                policy: policy.name.to_string(),
                message,
                failed: false,
            }));
            let decision = match outcome {
                Ok(decision) => decision,
                Err(message) => {
                    errors.push(PolicyError {
                        policy: policy.name.to_string(),
                        message,
                        failed: true,
                    });
                    continue;
                }
            };
            per_policy.push((policy.name.clone(), decision));
            // Reasons are kept only once one is written: most decisions write none
            // (Explain::Later), and then cost no vector.
            let text = why.into_text();
            if !text.is_empty() {
                reasons.resize(per_policy.len() - 1, String::new());
                reasons.push(text);
            }
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
        if !reasons.is_empty() {
            reasons.resize(per_policy.len(), String::new());
        }
        Verdict {
            sampled: keeper.is_some(),
            decision,
            policy: keeper.map(|i| self.policies[i].name.clone()),
            per_policy,
            errors,
            reasons,
        }
    }
}
