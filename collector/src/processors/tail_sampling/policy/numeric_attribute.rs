//! `numeric_attribute`: keep a trace by an integer attribute of one of its spans or of their
//! resource within `[min_value, max_value]` (an absent bound is open; a double reads as 0, as
//! in the Collector).

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::matcher::{any_span_or_its_resource, find_attr, match_decision, require_key};
use super::{Decision, Evaluate};

/// The `numeric_attribute` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "numeric_attribute";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        "{key: n, min_value: 3}",
        "{key: n, min_value: 1, max_value: 4, invert_match: true}",
    ];
    type Config = NumericAttributeConfig;

    fn validate(c: &NumericAttributeConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        require_key(&c.key, path, diags);
        match (c.min_value, c.max_value) {
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

    fn build(c: &NumericAttributeConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(NumericAttribute {
            key: c.key.clone(),
            min: c.min_value.unwrap_or(i64::MIN),
            max: c.max_value.unwrap_or(i64::MAX),
            invert: c.invert_match,
        }))
    }

    fn reads(_: &NumericAttributeConfig) -> Reads {
        Reads::SPAN_ATTRIBUTES | Reads::RESOURCE
    }
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

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

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
}
