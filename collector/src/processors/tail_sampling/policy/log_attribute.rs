//! `log_attribute` (Weft): keep a trace when any of its logs has the attribute `key` (or
//! arrived under a resource that has it) equal to (or matching) one of `values`; it follows
//! `string_attribute`, with logs in place of spans.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::matcher::{
    any_log_or_its_resource, find_attr, match_decision, require_key, require_values,
    validate_regexes, StringMatcher,
};
use super::{Decision, Evaluate};

/// The `log_attribute` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "log_attribute";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        "{key: k, values: [a]}",
        r#"{key: k, values: ["^b"], enabled_regex_matching: true, invert_match: true}"#,
    ];
    type Config = LogAttributeConfig;

    fn validate(c: &LogAttributeConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        require_key(&c.key, path, diags);
        require_values(&c.values, path, diags);
        if c.enabled_regex_matching {
            validate_regexes(&c.values, &path.key("values"), diags);
        }
    }

    fn build(c: &LogAttributeConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(LogAttribute {
            key: c.key.clone(),
            matcher: StringMatcher::new(&c.values, c.enabled_regex_matching)?,
            invert: c.invert_match,
        }))
    }

    fn reads(_: &LogAttributeConfig) -> Reads {
        Reads::LOG_ATTRIBUTES | Reads::RESOURCE
    }
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

/// `log_attribute`: any log record attribute `key`, or the attribute of the resource the log
/// arrived under, that matches.
#[derive(Debug)]
pub(super) struct LogAttribute {
    pub(super) key: String,
    pub(super) matcher: StringMatcher,
    pub(super) invert: bool,
}

impl Evaluate for LogAttribute {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let matched = any_log_or_its_resource(
            trace,
            |resource| {
                find_attr(&resource.attributes, &self.key)
                    .is_some_and(|v| self.matcher.matches(v.as_str()))
            },
            |record| {
                find_attr(&record.attributes, &self.key).is_some_and(|v| {
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

    fn matcher(values: &[&str], regex: bool) -> StringMatcher {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        StringMatcher::new(&values, regex).unwrap()
    }

    #[test]
    fn log_attribute_record_and_resource() {
        let policy = LogAttribute {
            key: "user.tier".into(),
            matcher: matcher(&["gold"], false),
            invert: false,
        };
        let by_record = trace_of_logs(vec![log_attrs(&[("user.tier", s("gold"))])]);
        let other = trace_of_logs(vec![log_attrs(&[("user.tier", s("free"))])]);
        let origin = origin_with(&[("user.tier", s("gold"))]);
        let by_resource = trace_from(vec![], vec![(origin.clone(), log_with_body("x"))]);
        // A span resource does not count: this is a log policy.
        let span_resource = trace_from(vec![(origin, span_with(&[]))], vec![]);
        assert_eq!(policy.evaluate(&by_record, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&other, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&by_resource, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&span_resource, now()), Decision::NotSampled);
    }

    #[test]
    fn log_attribute_regex_and_invert() {
        let regex = LogAttribute {
            key: "exception.type".into(),
            matcher: matcher(&["Error$"], true),
            invert: false,
        };
        let inverted = LogAttribute {
            key: "exception.type".into(),
            matcher: matcher(&["Error$"], true),
            invert: true,
        };
        let error = trace_of_logs(vec![log_attrs(&[("exception.type", s("TypeError"))])]);
        let warning = trace_of_logs(vec![log_attrs(&[(
            "exception.type",
            s("DeprecationWarning"),
        )])]);
        assert_eq!(regex.evaluate(&error, now()), Decision::Sampled);
        assert_eq!(regex.evaluate(&warning, now()), Decision::NotSampled);
        assert_eq!(inverted.evaluate(&error, now()), Decision::InvertNotSampled);
        assert_eq!(inverted.evaluate(&warning, now()), Decision::InvertSampled);
    }
}
