//! `boolean_attribute`: keep a trace by a boolean attribute of one of its spans or of their
//! resource equal to `value` (a non-boolean attribute reads as `false`, as in the Collector).

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::matcher::{any_span_or_its_resource, find_attr, match_decision, require_key};
use super::{Decision, Evaluate};

/// The `boolean_attribute` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "boolean_attribute";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        "{key: b, value: true}",
        "{key: b, value: false, invert_match: true}",
    ];
    type Config = BooleanAttributeConfig;

    fn validate(c: &BooleanAttributeConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        require_key(&c.key, path, diags);
    }

    fn build(c: &BooleanAttributeConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(BooleanAttribute {
            key: c.key.clone(),
            value: c.value,
            invert: c.invert_match,
        }))
    }

    fn reads(_: &BooleanAttributeConfig) -> Reads {
        Reads::SPAN_ATTRIBUTES | Reads::RESOURCE
    }
}

/// `boolean_attribute`: a boolean span or span-resource attribute equal to `value`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BooleanAttributeConfig {
    pub key: String,
    pub value: bool,
    pub invert_match: bool,
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
