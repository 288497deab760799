//! `trace_state`: any span whose W3C `tracestate` has `key` set to one of `values`.

use std::collections::HashSet;
use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::matcher::{require_key, require_values};
use super::{Decision, Evaluate};

/// The `trace_state` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "trace_state";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &["{key: k, values: [a, b]}"];
    type Config = TraceStateConfig;

    fn validate(c: &TraceStateConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        require_key(&c.key, path, diags);
        require_values(&c.values, path, diags);
        for (index, value) in c.values.iter().enumerate() {
            if !value.is_empty() && c.key.len() + value.len() >= 256 {
                diags.warning(
                    &path.key("values").index(index),
                    "never matches: a tracestate member (key=value) is at most 256 characters",
                );
            }
        }
    }

    fn build(c: &TraceStateConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(TraceStateFilter::new(&c.key, &c.values)))
    }

    fn reads(_: &TraceStateConfig) -> Reads {
        Reads::SPAN_TRACE_STATE
    }
}

/// `trace_state`: any span whose W3C tracestate has `key` set to one of `values`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceStateConfig {
    pub key: String,
    pub values: Vec<String>,
}

/// `trace_state`: any span whose W3C `tracestate` has `key` set to one of the values. A
/// malformed tracestate matches nothing (the Collector's parser rejects it as a whole).
#[derive(Debug)]
pub(super) struct TraceStateFilter {
    pub(super) key: String,
    /// Empty values, and values too long to fit a tracestate member with the key, are left
    /// out: they can never match.
    pub(super) values: HashSet<String>,
}

impl TraceStateFilter {
    pub(super) fn new(key: &str, values: &[String]) -> Self {
        let values = values
            .iter()
            .filter(|v| !v.is_empty() && key.len() + v.len() < 256)
            .cloned()
            .collect();
        Self {
            key: key.to_string(),
            values,
        }
    }
}

impl Evaluate for TraceStateFilter {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let hit = trace.spans.iter().any(|e| {
            trace_state_get(&e.span.trace_state, &self.key).is_some_and(|v| self.values.contains(v))
        });
        if hit {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

/// The most list members a W3C tracestate may have.
const MAX_TRACE_STATE_MEMBERS: usize = 32;

/// The value of `key` in a W3C tracestate header, or `None` when the key is absent or the
/// header is malformed (bad key or value characters, duplicate keys, too many members).
pub(super) fn trace_state_get<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    let mut found = None;
    let mut seen: Vec<&str> = Vec::new();
    for member in raw.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue; // empty list members are allowed
        }
        let (k, v) = member.split_once('=')?;
        if !valid_trace_state_key(k) || !valid_trace_state_value(v) || seen.contains(&k) {
            return None;
        }
        seen.push(k);
        if seen.len() > MAX_TRACE_STATE_MEMBERS {
            return None;
        }
        if k == key {
            found = Some(v);
        }
    }
    found
}

/// `simple-key` or `tenant@system`, lowercase letters, digits and `_-*/`, at most 256 chars.
fn valid_trace_state_key(key: &str) -> bool {
    let allowed = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '*' | '/');
    let valid_part = |part: &str, first_digit_ok: bool| {
        let mut chars = part.chars();
        match chars.next() {
            Some(c) if c.is_ascii_lowercase() || (first_digit_ok && c.is_ascii_digit()) => {}
            _ => return false,
        }
        chars.all(allowed)
    };
    if key.is_empty() || key.len() > 256 {
        return false;
    }
    match key.split_once('@') {
        None => valid_part(key, false),
        Some((tenant, system)) => {
            tenant.len() <= 241
                && system.len() <= 14
                && valid_part(tenant, true)
                && valid_part(system, false)
        }
    }
}

/// Printable ASCII except `,` and `=`, not ending in a space, 1 to 256 chars.
fn valid_trace_state_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

#[cfg(test)]
mod tests {
    use weft_proto::trace::v1::Span;

    use super::super::testutil::*;
    use super::*;

    fn span_with_state(state: &str) -> Span {
        Span {
            trace_state: state.to_string(),
            ..span_with(&[])
        }
    }

    #[test]
    fn trace_state_matches_key_and_value_of_any_span() {
        let policy = TraceStateFilter::new("tenant", &["gold".to_string(), "silver".to_string()]);
        let gold = trace_of(vec![
            span_with_state(""),
            span_with_state("rojo=00f067aa0ba902b7, tenant=gold"),
        ]);
        let bronze = trace_of(vec![span_with_state("tenant=bronze")]);
        let other_key = trace_of(vec![span_with_state("plan=gold")]);
        assert_eq!(policy.evaluate(&gold, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&bronze, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&other_key, now()), Decision::NotSampled);
    }

    #[test]
    fn trace_state_malformed_header_matches_nothing() {
        let policy = TraceStateFilter::new("tenant", &["gold".to_string()]);
        for bad in [
            "tenant=gold,novalue",
            "tenant=gold,Upper=x",
            "tenant=gold,tenant=gold",
            "tenant=gold,k=a=b",
        ] {
            let trace = trace_of(vec![span_with_state(bad)]);
            assert_eq!(
                policy.evaluate(&trace, now()),
                Decision::NotSampled,
                "{bad}"
            );
        }
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        let trace = trace_of(vec![span_with_state(&format!(
            "tenant=gold,{}",
            too_many.join(",")
        ))]);
        assert_eq!(policy.evaluate(&trace, now()), Decision::NotSampled);
    }

    #[test]
    fn trace_state_parser_accepts_multi_tenant_keys_and_empty_members() {
        assert_eq!(trace_state_get("a=1,,t1@sys=2 ,\tb=3", "t1@sys"), Some("2"));
        assert_eq!(trace_state_get("a=1", "b"), None);
        assert_eq!(trace_state_get("", "a"), None);
    }
}
