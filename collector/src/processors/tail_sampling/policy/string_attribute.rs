//! `string_attribute`: keep a trace by a string attribute of one of its spans or of the
//! resource those spans arrived under, equal to (or, with `enabled_regex_matching`, matching)
//! one of `values`.
//!
//! As in the Collector, only span resources are looked at (not log resources: see the
//! `log_attribute` policy), values of another type read as `""`, and `invert_match` turns the
//! decision into the inverted pair (see [`match_decision`]).

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::matcher::{
    any_span_or_its_resource, find_attr, match_decision, require_key, require_values,
    validate_regexes, StringMatcher,
};
use super::{Decision, Evaluate};

/// The `string_attribute` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "string_attribute";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        "{key: k, values: [a]}",
        r#"{key: k, values: ["^b"], enabled_regex_matching: true}"#,
        "{key: k, values: [c], invert_match: true}",
    ];
    type Config = StringAttributeConfig;

    fn validate(c: &StringAttributeConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        require_key(&c.key, path, diags);
        require_values(&c.values, path, diags);
        if c.enabled_regex_matching {
            validate_regexes(&c.values, &path.key("values"), diags);
        }
    }

    fn build(c: &StringAttributeConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(StringAttribute {
            key: c.key.clone(),
            matcher: StringMatcher::new(&c.values, c.enabled_regex_matching)?,
            invert: c.invert_match,
        }))
    }

    fn reads(_: &StringAttributeConfig) -> Reads {
        Reads::SPAN_ATTRIBUTES | Reads::RESOURCE
    }
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

/// `string_attribute`: the attribute `key` equals (or, with regexes, matches) one of the
/// values. On spans an empty string never matches; on resources the value is matched as read
/// (so a regex matching `""` matches a non-string resource attribute, as in the Collector).
#[derive(Debug)]
pub(super) struct StringAttribute {
    pub(super) key: String,
    pub(super) matcher: StringMatcher,
    pub(super) invert: bool,
}

impl Evaluate for StringAttribute {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let matched = any_span_or_its_resource(
            trace,
            |resource| {
                find_attr(&resource.attributes, &self.key)
                    .is_some_and(|v| self.matcher.matches(v.as_str()))
            },
            |span| {
                find_attr(&span.attributes, &self.key).is_some_and(|v| {
                    let text = v.as_str();
                    !text.is_empty() && self.matcher.matches(text)
                })
            },
        );
        match_decision(matched, self.invert)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn string_policy(values: &[&str], regex: bool, invert: bool) -> StringAttribute {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        StringAttribute {
            key: "http.route".into(),
            matcher: StringMatcher::new(&values, regex).unwrap(),
            invert,
        }
    }

    #[test]
    fn string_attribute_matches_span_attributes() {
        let policy = string_policy(&["/checkout", "/pay"], false, false);
        let hit = trace_of(vec![span_with(&[("http.route", s("/pay"))])]);
        let miss = trace_of(vec![span_with(&[("http.route", s("/home"))])]);
        let absent = trace_of(vec![span_with(&[("other", s("/pay"))])]);
        assert_eq!(policy.evaluate(&hit, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&miss, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&absent, now()), Decision::NotSampled);
    }

    #[test]
    fn string_attribute_matches_resource_attributes() {
        let origin = origin_with(&[("http.route", s("/checkout"))]);
        let trace = trace_from(vec![(origin, span_with(&[]))], vec![]);
        let policy = string_policy(&["/checkout"], false, false);
        assert_eq!(policy.evaluate(&trace, now()), Decision::Sampled);
    }

    #[test]
    fn string_attribute_ignores_log_resources() {
        // Like the Collector, string_attribute looks at spans and their resources only.
        let origin = origin_with(&[("http.route", s("/checkout"))]);
        let trace = trace_from(vec![], vec![(origin, log_with_body("x"))]);
        let policy = string_policy(&["/checkout"], false, false);
        assert_eq!(policy.evaluate(&trace, now()), Decision::NotSampled);
    }

    #[test]
    fn string_attribute_exact_match_is_whole_string_and_never_empty() {
        let policy = string_policy(&["", "pay"], false, false);
        let partial = trace_of(vec![span_with(&[("http.route", s("/pay"))])]);
        let empty = trace_of(vec![span_with(&[("http.route", s(""))])]);
        assert_eq!(policy.evaluate(&partial, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&empty, now()), Decision::NotSampled);
    }

    #[test]
    fn string_attribute_regex_is_unanchored_like_go() {
        let policy = string_policy(&["^/api/v[0-9]+/", "health"], true, false);
        let api = trace_of(vec![span_with(&[("http.route", s("/api/v2/users"))])]);
        let health = trace_of(vec![span_with(&[("http.route", s("/internal/healthz"))])]);
        let other = trace_of(vec![span_with(&[("http.route", s("/web/api/v2"))])]);
        assert_eq!(policy.evaluate(&api, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&health, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&other, now()), Decision::NotSampled);
    }

    #[test]
    fn string_attribute_non_string_values_read_as_empty() {
        let policy = string_policy(&["1"], false, false);
        let int_attr = trace_of(vec![span_with(&[("http.route", i(1))])]);
        assert_eq!(policy.evaluate(&int_attr, now()), Decision::NotSampled);
        // On a resource the empty read value is matched as is: a regex matching "" matches.
        let any = string_policy(&[".*"], true, false);
        let origin = origin_with(&[("http.route", i(1))]);
        let trace = trace_from(vec![(origin, span_with(&[]))], vec![]);
        assert_eq!(any.evaluate(&trace, now()), Decision::Sampled);
    }

    #[test]
    fn string_attribute_invert_match() {
        let policy = string_policy(&["/health"], false, true);
        let health = trace_of(vec![
            span_with(&[("http.route", s("/checkout"))]),
            span_with(&[("http.route", s("/health"))]),
        ]);
        let other = trace_of(vec![span_with(&[("http.route", s("/checkout"))])]);
        let without_key = trace_of(vec![span_with(&[])]);
        let without_spans = trace_of(vec![]);
        assert_eq!(policy.evaluate(&health, now()), Decision::InvertNotSampled);
        assert_eq!(policy.evaluate(&other, now()), Decision::InvertSampled);
        assert_eq!(
            policy.evaluate(&without_key, now()),
            Decision::InvertSampled
        );
        assert_eq!(
            policy.evaluate(&without_spans, now()),
            Decision::InvertSampled
        );
        // A match on the resource inverts too.
        let origin = origin_with(&[("http.route", s("/health"))]);
        let by_resource = trace_from(vec![(origin, span_with(&[]))], vec![]);
        assert_eq!(
            policy.evaluate(&by_resource, now()),
            Decision::InvertNotSampled
        );
    }
}
