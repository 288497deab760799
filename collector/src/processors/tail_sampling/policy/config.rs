//! The `policies:` section: one [`PolicyConfig`] per entry, with the Collector's keys.
//!
//! An entry is `{name, type, <type>: {settings}}`. Decoding is strict (unknown keys are
//! errors); everything types cannot express is checked by [`validate_policies`] /
//! [`PolicyConfig::validate`], which report every problem with its path, e.g.
//! `processors::tail_sampling::policies[2]::latency: required for a policy of type "latency"`.
//!
//! Nesting follows the Collector: `and_sub_policy` and `drop_sub_policy` take the plain policy
//! types; `composite_sub_policy` takes those and `and`.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use weft_config::{present, ConfigPath, Diagnostics};

use super::attribute::{BooleanAttribute, NumericAttribute, StringAttribute};
use super::combine::{allocations, And, Composite, CompositeSub, Drop};
use super::log::{severity_from_str, LogAttribute, LogBody, LogSeverity};
use super::matcher::StringMatcher;
use super::probabilistic::Probabilistic;
use super::rate::RateLimiting;
use super::span::{AlwaysSample, Latency, SpanCount, StatusCodeFilter, TraceStateFilter};
use super::Evaluate;

/// The `type` of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    AlwaysSample,
    Latency,
    StatusCode,
    StringAttribute,
    NumericAttribute,
    BooleanAttribute,
    Probabilistic,
    RateLimiting,
    SpanCount,
    TraceState,
    And,
    Drop,
    Composite,
    LogSeverity,
    LogBody,
    LogAttribute,
}

impl PolicyType {
    /// The name used in YAML, both for `type` and for the settings section.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::AlwaysSample => "always_sample",
            PolicyType::Latency => "latency",
            PolicyType::StatusCode => "status_code",
            PolicyType::StringAttribute => "string_attribute",
            PolicyType::NumericAttribute => "numeric_attribute",
            PolicyType::BooleanAttribute => "boolean_attribute",
            PolicyType::Probabilistic => "probabilistic",
            PolicyType::RateLimiting => "rate_limiting",
            PolicyType::SpanCount => "span_count",
            PolicyType::TraceState => "trace_state",
            PolicyType::And => "and",
            PolicyType::Drop => "drop",
            PolicyType::Composite => "composite",
            PolicyType::LogSeverity => "log_severity",
            PolicyType::LogBody => "log_body",
            PolicyType::LogAttribute => "log_attribute",
        }
    }

    /// Every type but `always_sample` needs its settings section.
    fn needs_settings(self) -> bool {
        self != PolicyType::AlwaysSample
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `policies` (or of `and_sub_policy`, `drop_sub_policy`,
/// `composite_sub_policy`): `{name, type, <type>: {...}}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Required, unique among its siblings: it labels metrics and the enrichment of kept logs.
    pub name: String,
    /// Required.
    #[serde(rename = "type")]
    pub policy_type: Option<PolicyType>,
    #[serde(deserialize_with = "present")]
    pub latency: Option<LatencyConfig>,
    #[serde(deserialize_with = "present")]
    pub status_code: Option<StatusCodeConfig>,
    #[serde(deserialize_with = "present")]
    pub string_attribute: Option<StringAttributeConfig>,
    #[serde(deserialize_with = "present")]
    pub numeric_attribute: Option<NumericAttributeConfig>,
    #[serde(deserialize_with = "present")]
    pub boolean_attribute: Option<BooleanAttributeConfig>,
    #[serde(deserialize_with = "present")]
    pub probabilistic: Option<ProbabilisticConfig>,
    #[serde(deserialize_with = "present")]
    pub rate_limiting: Option<RateLimitingConfig>,
    #[serde(deserialize_with = "present")]
    pub span_count: Option<SpanCountConfig>,
    #[serde(deserialize_with = "present")]
    pub trace_state: Option<TraceStateConfig>,
    #[serde(deserialize_with = "present")]
    pub and: Option<AndConfig>,
    #[serde(deserialize_with = "present")]
    pub drop: Option<DropConfig>,
    #[serde(deserialize_with = "present")]
    pub composite: Option<CompositeConfig>,
    #[serde(deserialize_with = "present")]
    pub log_severity: Option<LogSeverityConfig>,
    #[serde(deserialize_with = "present")]
    pub log_body: Option<LogBodyConfig>,
    #[serde(deserialize_with = "present")]
    pub log_attribute: Option<LogAttributeConfig>,
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

/// `status_code`: any span with one of `status_codes` (`OK`, `ERROR`, `UNSET`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusCodeConfig {
    pub status_codes: Vec<String>,
}

/// `string_attribute`: a span or span-resource attribute equal to one of `values` (or
/// matching one, with `enabled_regex_matching`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StringAttributeConfig {
    pub key: String,
    pub values: Vec<String>,
    pub enabled_regex_matching: bool,
    /// Accepted for compatibility and ignored: the Collector caches regex results per value,
    /// Weft matches all expressions in one pass instead.
    pub cache_max_size: i64,
    pub invert_match: bool,
}

/// `numeric_attribute`: an integer span or span-resource attribute within
/// `[min_value, max_value]`; at least one bound is required, an absent one is open.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NumericAttributeConfig {
    pub key: String,
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
    pub invert_match: bool,
}

/// `boolean_attribute`: a boolean span or span-resource attribute equal to `value`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BooleanAttributeConfig {
    pub key: String,
    pub value: bool,
    pub invert_match: bool,
}

/// `probabilistic`: `sampling_percentage` of traces by trace id hash, salted with
/// `hash_salt` (empty = the Collector's default salt).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticConfig {
    pub hash_salt: String,
    pub sampling_percentage: f64,
}

/// `rate_limiting`: at most `spans_per_second` spans kept per second on average, in bursts of
/// at most `burst_capacity` spans (0 = twice `spans_per_second`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitingConfig {
    pub spans_per_second: i64,
    pub burst_capacity: i64,
}

/// `span_count`: at least `min_spans` and, unless `max_spans` is 0, at most `max_spans` spans.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanCountConfig {
    pub min_spans: i32,
    pub max_spans: i32,
}

/// `trace_state`: any span whose W3C tracestate has `key` set to one of `values`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceStateConfig {
    pub key: String,
    pub values: Vec<String>,
}

/// `and`: every sub-policy samples.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AndConfig {
    pub and_sub_policy: Vec<PolicyConfig>,
}

/// `drop`: when every sub-policy samples, the trace is dropped whatever the other policies say.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropConfig {
    pub drop_sub_policy: Vec<PolicyConfig>,
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

/// `log_severity`: any log of the trace at or above `min_severity`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSeverityConfig {
    pub min_severity: Option<SeverityValue>,
}

/// A severity as written in YAML: a name (`ERROR`, `warn`, …) or a number from 1 to 24.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SeverityValue {
    Number(i64),
    Name(String),
}

impl SeverityValue {
    /// The severity number, or what is wrong with the value.
    pub fn resolve(&self) -> Result<i32, String> {
        match self {
            SeverityValue::Number(n) if (1..=24).contains(n) => Ok(*n as i32),
            SeverityValue::Number(n) => Err(format!(
                "invalid severity {n}: expected a number from 1 to 24 or a name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)"
            )),
            SeverityValue::Name(name) => severity_from_str(name).ok_or_else(|| {
                format!("invalid severity {name:?}: expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL (any case), or a number from 1 to 24")
            }),
        }
    }
}

/// `log_body`: any log whose string body equals (or matches) one of `values`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogBodyConfig {
    pub values: Vec<String>,
    pub enabled_regex_matching: bool,
    pub invert_match: bool,
}

/// `log_attribute`: any log record attribute (or log resource attribute) `key` equal to (or
/// matching) one of `values`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogAttributeConfig {
    pub key: String,
    pub values: Vec<String>,
    pub enabled_regex_matching: bool,
    pub invert_match: bool,
}

/// Where a policy sits, which decides the types allowed there (the Collector's nesting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Top,
    AndSub,
    DropSub,
    CompositeSub,
}

impl Level {
    fn allows(self, t: PolicyType) -> bool {
        use PolicyType::{And, Composite, Drop};
        match self {
            Level::Top => true,
            Level::AndSub | Level::DropSub => !matches!(t, And | Drop | Composite),
            Level::CompositeSub => !matches!(t, Drop | Composite),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Level::Top => "the policies list",
            Level::AndSub => "and_sub_policy (plain policies only)",
            Level::DropSub => "drop_sub_policy (plain policies only)",
            Level::CompositeSub => "composite_sub_policy (plain policies and \"and\" only)",
        }
    }
}

/// Validates the processor's `policies` list at `path`: at least one policy, unique names,
/// and every entry (see [`PolicyConfig::validate`]).
pub fn validate_policies(policies: &[PolicyConfig], path: &ConfigPath, diags: &mut Diagnostics) {
    if policies.is_empty() {
        diags.error(
            path,
            "at least one policy is required: without one no trace is ever kept (use `{name: all, type: always_sample}` to keep everything)",
        );
    }
    validate_list(policies, path, Level::Top, diags);
}

fn validate_list(list: &[PolicyConfig], path: &ConfigPath, level: Level, diags: &mut Diagnostics) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (index, policy) in list.iter().enumerate() {
        let item = path.index(index);
        if !policy.name.is_empty() {
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == policy.name) {
                diags.error(
                    &item.key("name"),
                    format!(
                        "duplicate policy name {:?} (also the name of entry {first}); names must be unique among siblings",
                        policy.name
                    ),
                );
            } else {
                seen.push((&policy.name, index));
            }
        }
        policy.validate_at(&item, level, diags);
    }
}

/// Checks one list of strings as regular expressions, reporting each invalid one at its index.
fn validate_regexes(values: &[String], path: &ConfigPath, diags: &mut Diagnostics) {
    for (index, value) in values.iter().enumerate() {
        if let Err(e) = regex::Regex::new(value) {
            diags.error(
                &path.index(index),
                format!("invalid regular expression {value:?}: {e}"),
            );
        }
    }
}

fn require_key(key: &str, path: &ConfigPath, diags: &mut Diagnostics) {
    if key.is_empty() {
        diags.error(&path.key("key"), "required: the attribute to look at");
    }
}

fn require_values(values: &[String], path: &ConfigPath, diags: &mut Diagnostics) {
    if values.is_empty() {
        diags.error(&path.key("values"), "expected at least one value to match");
    }
}

/// The status code names the Collector accepts, with their OTLP numbers.
const STATUS_CODES: [(&str, i32); 3] = [("UNSET", 0), ("OK", 1), ("ERROR", 2)];

impl PolicyConfig {
    /// Validates this entry as a top-level policy at `path` (e.g.
    /// `processors::tail_sampling::policies[2]`), pushing every problem found. Name uniqueness
    /// is checked by [`validate_policies`], which sees the siblings.
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        self.validate_at(path, Level::Top, diags);
    }

    /// `(section name, present)` for every settings section, in declaration order.
    fn sections(&self) -> [(PolicyType, bool); 15] {
        use PolicyType as T;
        [
            (T::Latency, self.latency.is_some()),
            (T::StatusCode, self.status_code.is_some()),
            (T::StringAttribute, self.string_attribute.is_some()),
            (T::NumericAttribute, self.numeric_attribute.is_some()),
            (T::BooleanAttribute, self.boolean_attribute.is_some()),
            (T::Probabilistic, self.probabilistic.is_some()),
            (T::RateLimiting, self.rate_limiting.is_some()),
            (T::SpanCount, self.span_count.is_some()),
            (T::TraceState, self.trace_state.is_some()),
            (T::And, self.and.is_some()),
            (T::Drop, self.drop.is_some()),
            (T::Composite, self.composite.is_some()),
            (T::LogSeverity, self.log_severity.is_some()),
            (T::LogBody, self.log_body.is_some()),
            (T::LogAttribute, self.log_attribute.is_some()),
        ]
    }

    fn validate_at(&self, path: &ConfigPath, level: Level, diags: &mut Diagnostics) {
        if self.name.is_empty() {
            diags.error(
                &path.key("name"),
                "required: a name for this policy, unique among its siblings (it labels metrics and kept logs)",
            );
        }
        let Some(policy_type) = self.policy_type else {
            diags.error(
                &path.key("type"),
                "required: one of always_sample, latency, status_code, string_attribute, numeric_attribute, boolean_attribute, probabilistic, rate_limiting, span_count, trace_state, and, drop, composite, log_severity, log_body, log_attribute",
            );
            return;
        };
        if !level.allows(policy_type) {
            diags.error(
                &path.key("type"),
                format!(
                    "a policy of type \"{policy_type}\" cannot be nested in {}",
                    level.describe()
                ),
            );
            return;
        }
        for (section, present) in self.sections() {
            if present && section != policy_type {
                diags.error(
                    &path.key(section.as_str()),
                    format!(
                        "settings for type \"{section}\", but this policy's type is \"{policy_type}\": remove them or change the type"
                    ),
                );
            }
        }
        let here = path.key(policy_type.as_str());
        match policy_type {
            PolicyType::AlwaysSample => {}
            PolicyType::Latency => {
                if let Some(c) = &self.latency {
                    c.validate(&here, diags);
                }
            }
            PolicyType::StatusCode => {
                if let Some(c) = &self.status_code {
                    c.validate(&here, diags);
                }
            }
            PolicyType::StringAttribute => {
                if let Some(c) = &self.string_attribute {
                    require_key(&c.key, &here, diags);
                    require_values(&c.values, &here, diags);
                    if c.enabled_regex_matching {
                        validate_regexes(&c.values, &here.key("values"), diags);
                    }
                }
            }
            PolicyType::NumericAttribute => {
                if let Some(c) = &self.numeric_attribute {
                    c.validate(&here, diags);
                }
            }
            PolicyType::BooleanAttribute => {
                if let Some(c) = &self.boolean_attribute {
                    require_key(&c.key, &here, diags);
                }
            }
            PolicyType::Probabilistic => {
                if let Some(c) = &self.probabilistic {
                    c.validate(&here, diags);
                }
            }
            PolicyType::RateLimiting => {
                if let Some(c) = &self.rate_limiting {
                    c.validate(&here, diags);
                }
            }
            PolicyType::SpanCount => {
                if let Some(c) = &self.span_count {
                    c.validate(&here, diags);
                }
            }
            PolicyType::TraceState => {
                if let Some(c) = &self.trace_state {
                    c.validate(&here, diags);
                }
            }
            PolicyType::And => {
                if let Some(c) = &self.and {
                    let list = here.key("and_sub_policy");
                    if c.and_sub_policy.is_empty() {
                        diags.error(&list, "expected at least one sub-policy");
                    }
                    validate_list(&c.and_sub_policy, &list, Level::AndSub, diags);
                }
            }
            PolicyType::Drop => {
                if let Some(c) = &self.drop {
                    let list = here.key("drop_sub_policy");
                    if c.drop_sub_policy.is_empty() {
                        diags.error(&list, "expected at least one sub-policy");
                    }
                    validate_list(&c.drop_sub_policy, &list, Level::DropSub, diags);
                }
            }
            PolicyType::Composite => {
                if let Some(c) = &self.composite {
                    c.validate(&here, diags);
                }
            }
            PolicyType::LogSeverity => {
                if let Some(c) = &self.log_severity {
                    match &c.min_severity {
                        None => diags.error(
                            &here.key("min_severity"),
                            "required: a severity name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) or number (1 to 24)",
                        ),
                        Some(value) => {
                            if let Err(e) = value.resolve() {
                                diags.error(&here.key("min_severity"), e);
                            }
                        }
                    }
                }
            }
            PolicyType::LogBody => {
                if let Some(c) = &self.log_body {
                    require_values(&c.values, &here, diags);
                    if c.enabled_regex_matching {
                        validate_regexes(&c.values, &here.key("values"), diags);
                    }
                }
            }
            PolicyType::LogAttribute => {
                if let Some(c) = &self.log_attribute {
                    require_key(&c.key, &here, diags);
                    require_values(&c.values, &here, diags);
                    if c.enabled_regex_matching {
                        validate_regexes(&c.values, &here.key("values"), diags);
                    }
                }
            }
        }
        let own_section = self
            .sections()
            .iter()
            .any(|(section, present)| *present && *section == policy_type);
        if policy_type.needs_settings() && !own_section {
            diags.error(
                &here,
                format!("required for a policy of type \"{policy_type}\": add its settings under `{policy_type}:`"),
            );
        }
    }

    /// Builds the evaluator. Call only on a configuration without validation errors; an
    /// invalid one fails here with a message, it does not panic.
    pub(super) fn build(&self) -> Result<Box<dyn Evaluate>, String> {
        let missing = |t: PolicyType| {
            format!(
                "policy {:?}: settings `{t}:` are missing (validate the configuration first)",
                self.name
            )
        };
        let Some(policy_type) = self.policy_type else {
            return Err(format!("policy {:?}: type is missing", self.name));
        };
        let evaluator: Box<dyn Evaluate> = match policy_type {
            PolicyType::AlwaysSample => Box::new(AlwaysSample),
            PolicyType::Latency => {
                let c = self.latency.as_ref().ok_or_else(|| missing(policy_type))?;
                Box::new(Latency {
                    threshold_ms: c.threshold_ms,
                    upper_threshold_ms: c.upper_threshold_ms,
                })
            }
            PolicyType::StatusCode => {
                let c = self
                    .status_code
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
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
                Box::new(StatusCodeFilter { codes })
            }
            PolicyType::StringAttribute => {
                let c = self
                    .string_attribute
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                Box::new(StringAttribute {
                    key: c.key.clone(),
                    matcher: StringMatcher::new(&c.values, c.enabled_regex_matching)?,
                    invert: c.invert_match,
                })
            }
            PolicyType::NumericAttribute => {
                let c = self
                    .numeric_attribute
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                Box::new(NumericAttribute {
                    key: c.key.clone(),
                    min: c.min_value.unwrap_or(i64::MIN),
                    max: c.max_value.unwrap_or(i64::MAX),
                    invert: c.invert_match,
                })
            }
            PolicyType::BooleanAttribute => {
                let c = self
                    .boolean_attribute
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                Box::new(BooleanAttribute {
                    key: c.key.clone(),
                    value: c.value,
                    invert: c.invert_match,
                })
            }
            PolicyType::Probabilistic => {
                let c = self
                    .probabilistic
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                Box::new(Probabilistic::new(&c.hash_salt, c.sampling_percentage))
            }
            PolicyType::RateLimiting => {
                let c = self
                    .rate_limiting
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                Box::new(RateLimiting::new(c.spans_per_second, c.burst_capacity))
            }
            PolicyType::SpanCount => {
                let c = self
                    .span_count
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                Box::new(SpanCount {
                    min_spans: i64::from(c.min_spans),
                    max_spans: i64::from(c.max_spans),
                })
            }
            PolicyType::TraceState => {
                let c = self
                    .trace_state
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                Box::new(TraceStateFilter::new(&c.key, &c.values))
            }
            PolicyType::And => {
                let c = self.and.as_ref().ok_or_else(|| missing(policy_type))?;
                Box::new(And {
                    subs: build_all(&c.and_sub_policy)?,
                })
            }
            PolicyType::Drop => {
                let c = self.drop.as_ref().ok_or_else(|| missing(policy_type))?;
                Box::new(Drop {
                    subs: build_all(&c.drop_sub_policy)?,
                })
            }
            PolicyType::Composite => {
                let c = self
                    .composite
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                c.build()?
            }
            PolicyType::LogSeverity => {
                let c = self
                    .log_severity
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                let min = c
                    .min_severity
                    .as_ref()
                    .ok_or_else(|| format!("policy {:?}: min_severity is missing", self.name))?
                    .resolve()?;
                Box::new(LogSeverity { min })
            }
            PolicyType::LogBody => {
                let c = self.log_body.as_ref().ok_or_else(|| missing(policy_type))?;
                Box::new(LogBody {
                    matcher: StringMatcher::new(&c.values, c.enabled_regex_matching)?,
                    invert: c.invert_match,
                })
            }
            PolicyType::LogAttribute => {
                let c = self
                    .log_attribute
                    .as_ref()
                    .ok_or_else(|| missing(policy_type))?;
                Box::new(LogAttribute {
                    key: c.key.clone(),
                    matcher: StringMatcher::new(&c.values, c.enabled_regex_matching)?,
                    invert: c.invert_match,
                })
            }
        };
        Ok(evaluator)
    }
}

fn build_all(list: &[PolicyConfig]) -> Result<Vec<Box<dyn Evaluate>>, String> {
    list.iter().map(PolicyConfig::build).collect()
}

impl LatencyConfig {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.threshold_ms < 0 {
            diags.error(
                &path.key("threshold_ms"),
                "must be 0 or more (milliseconds)",
            );
        }
        if self.upper_threshold_ms < 0 {
            diags.error(
                &path.key("upper_threshold_ms"),
                "must be 0 (no upper bound) or more (milliseconds)",
            );
        } else if self.upper_threshold_ms != 0 && self.upper_threshold_ms <= self.threshold_ms {
            diags.error(
                &path.key("upper_threshold_ms"),
                format!(
                    "must be greater than threshold_ms ({}), or 0 for no upper bound: with an upper bound a trace must last more than threshold_ms and at most upper_threshold_ms",
                    self.threshold_ms
                ),
            );
        }
    }
}

impl StatusCodeConfig {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        let list = path.key("status_codes");
        if self.status_codes.is_empty() {
            diags.error(
                &list,
                "expected at least one status code to filter on: OK, ERROR or UNSET",
            );
        }
        for (index, code) in self.status_codes.iter().enumerate() {
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
}

impl NumericAttributeConfig {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        require_key(&self.key, path, diags);
        match (self.min_value, self.max_value) {
            (None, None) => diags.error(
                path,
                "set min_value, max_value or both: an absent bound is open",
            ),
            (Some(min), Some(max)) if min > max => diags.error(
                &path.key("max_value"),
                format!("must be greater than or equal to min_value ({min})"),
            ),
            _ => {}
        }
    }
}

impl ProbabilisticConfig {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        let at = path.key("sampling_percentage");
        let p = self.sampling_percentage;
        if !p.is_finite() {
            diags.error(&at, "expected a percentage from 0 to 100");
        } else if p < 0.0 {
            // The Collector accepts it and keeps (almost) nothing: say so, do not fail a
            // configuration it runs.
            diags.warning(&at, format!("{p} is below 0: no trace is kept, as with 0"));
        } else if p > 100.0 {
            diags.warning(
                &at,
                format!("{p} is above 100: every trace is kept, as with 100"),
            );
        }
    }
}

impl RateLimitingConfig {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.spans_per_second <= 0 {
            diags.error(
                &path.key("spans_per_second"),
                "must be greater than 0: the spans kept per second",
            );
        }
        if self.burst_capacity < 0 {
            diags.error(
                &path.key("burst_capacity"),
                "must be 0 (twice spans_per_second) or more",
            );
        }
    }
}

impl SpanCountConfig {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.min_spans < 0 {
            diags.error(&path.key("min_spans"), "must be 0 or more");
        }
        if self.max_spans < 0 {
            diags.error(&path.key("max_spans"), "must be 0 (no maximum) or more");
        } else if self.max_spans != 0 && self.max_spans < self.min_spans {
            diags.error(
                &path.key("max_spans"),
                format!(
                    "must be 0 (no maximum) or at least min_spans ({})",
                    self.min_spans
                ),
            );
        }
    }
}

impl TraceStateConfig {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        require_key(&self.key, path, diags);
        require_values(&self.values, path, diags);
        for (index, value) in self.values.iter().enumerate() {
            if !value.is_empty() && self.key.len() + value.len() >= 256 {
                diags.warning(
                    &path.key("values").index(index),
                    "never matches: a tracestate member (key=value) is at most 256 characters",
                );
            }
        }
    }
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
                    evaluator: self.composite_sub_policy[index].build()?,
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
