//! `string_attribute`, `numeric_attribute` and `boolean_attribute`: keep a trace by an
//! attribute of one of its spans or of the resource those spans arrived under.
//!
//! As in the Collector, only span resources are looked at (not log resources: see the
//! `log_attribute` policy), values of another type read as that type's zero value, and
//! `invert_match` turns the decision into the inverted pair (see [`match_decision`]).

use std::time::Instant;

use super::super::trace::TraceData;
use super::matcher::{any_span_or_its_resource, find_attr, match_decision, StringMatcher};
use super::{Decision, Evaluate};

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

/// `numeric_attribute`: the integer attribute `key` lies in `[min, max]` (an unset bound is
/// open). A double attribute reads as 0, as in the Collector.
#[derive(Debug)]
pub(super) struct NumericAttribute {
    pub(super) key: String,
    pub(super) min: i64,
    pub(super) max: i64,
    pub(super) invert: bool,
}

impl Evaluate for NumericAttribute {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let in_range = |v: i64| self.min <= v && v <= self.max;
        let matched = any_span_or_its_resource(
            trace,
            |resource| {
                find_attr(&resource.attributes, &self.key).is_some_and(|v| in_range(v.as_int()))
            },
            |span| find_attr(&span.attributes, &self.key).is_some_and(|v| in_range(v.as_int())),
        );
        match_decision(matched, self.invert)
    }
}

/// `boolean_attribute`: the attribute `key` is present and equals `value` (a non-boolean
/// attribute reads as `false`).
#[derive(Debug)]
pub(super) struct BooleanAttribute {
    pub(super) key: String,
    pub(super) value: bool,
    pub(super) invert: bool,
}

impl Evaluate for BooleanAttribute {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let matched = any_span_or_its_resource(
            trace,
            |resource| {
                find_attr(&resource.attributes, &self.key)
                    .is_some_and(|v| v.as_bool() == self.value)
            },
            |span| {
                find_attr(&span.attributes, &self.key).is_some_and(|v| v.as_bool() == self.value)
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

    #[test]
    fn numeric_attribute_range_is_inclusive() {
        let policy = NumericAttribute {
            key: "http.status_code".into(),
            min: 500,
            max: 599,
            invert: false,
        };
        for (value, expected) in [
            (499, Decision::NotSampled),
            (500, Decision::Sampled),
            (599, Decision::Sampled),
            (600, Decision::NotSampled),
        ] {
            let trace = trace_of(vec![span_with(&[("http.status_code", i(value))])]);
            assert_eq!(policy.evaluate(&trace, now()), expected, "value {value}");
        }
    }

    #[test]
    fn numeric_attribute_open_bound_resource_and_doubles() {
        let at_least = NumericAttribute {
            key: "retries".into(),
            min: 3,
            max: i64::MAX,
            invert: false,
        };
        let origin = origin_with(&[("retries", i(1_000_000))]);
        let by_resource = trace_from(vec![(origin, span_with(&[]))], vec![]);
        assert_eq!(at_least.evaluate(&by_resource, now()), Decision::Sampled);
        // A double attribute reads as 0 in the Collector, so 7.0 is not >= 3.
        let double = trace_of(vec![span_with(&[("retries", d(7.0))])]);
        assert_eq!(at_least.evaluate(&double, now()), Decision::NotSampled);
    }

    #[test]
    fn numeric_attribute_invert_match() {
        let policy = NumericAttribute {
            key: "http.status_code".into(),
            min: 200,
            max: 299,
            invert: true,
        };
        let ok = trace_of(vec![span_with(&[("http.status_code", i(200))])]);
        let error = trace_of(vec![span_with(&[("http.status_code", i(503))])]);
        assert_eq!(policy.evaluate(&ok, now()), Decision::InvertNotSampled);
        assert_eq!(policy.evaluate(&error, now()), Decision::InvertSampled);
    }

    #[test]
    fn boolean_attribute_matches_value_span_and_resource() {
        let policy = BooleanAttribute {
            key: "app.force_sample".into(),
            value: true,
            invert: false,
        };
        let yes = trace_of(vec![span_with(&[("app.force_sample", b(true))])]);
        let no = trace_of(vec![span_with(&[("app.force_sample", b(false))])]);
        let text = trace_of(vec![span_with(&[("app.force_sample", s("true"))])]);
        let origin = origin_with(&[("app.force_sample", b(true))]);
        let by_resource = trace_from(vec![(origin, span_with(&[]))], vec![]);
        assert_eq!(policy.evaluate(&yes, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&no, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&text, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&by_resource, now()), Decision::Sampled);

        // value: false matches an explicit false, and a non-boolean (which reads as false).
        let falsy = BooleanAttribute {
            key: "app.force_sample".into(),
            value: false,
            invert: false,
        };
        assert_eq!(falsy.evaluate(&no, now()), Decision::Sampled);
        assert_eq!(falsy.evaluate(&text, now()), Decision::Sampled);
        assert_eq!(falsy.evaluate(&yes, now()), Decision::NotSampled);
    }

    #[test]
    fn boolean_attribute_invert_match() {
        let policy = BooleanAttribute {
            key: "app.do_not_sample".into(),
            value: true,
            invert: true,
        };
        let flagged = trace_of(vec![span_with(&[("app.do_not_sample", b(true))])]);
        let plain = trace_of(vec![span_with(&[])]);
        assert_eq!(policy.evaluate(&flagged, now()), Decision::InvertNotSampled);
        assert_eq!(policy.evaluate(&plain, now()), Decision::InvertSampled);
    }
}
