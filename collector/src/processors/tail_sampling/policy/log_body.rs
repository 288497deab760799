//! `log_body` (Weft): keep a trace when any of its logs has a string body equal to (or
//! matching) one of `values`; it follows `string_attribute` (empty strings never match,
//! `invert_match` gives the inverted decisions), with log bodies in place of attributes.

use weft_proto::common::v1::any_value::Value;

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::matcher::{match_decision, require_values, validate_regexes, StringMatcher};
use super::{Decision, Evaluate};

/// The `log_body` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "log_body";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        "{values: [a]}",
        r#"{values: ["^b"], enabled_regex_matching: true, invert_match: true}"#,
    ];
    type Config = LogBodyConfig;

    fn validate(c: &LogBodyConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        require_values(&c.values, path, diags);
        if c.enabled_regex_matching {
            validate_regexes(&c.values, &path.key("values"), diags);
        }
    }

    fn build(c: &LogBodyConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(LogBody {
            matcher: StringMatcher::new(&c.values, c.enabled_regex_matching)?,
            invert: c.invert_match,
        }))
    }

    fn reads(_: &LogBodyConfig) -> Reads {
        Reads::LOG_BODY
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

/// `log_body`: any log whose body is a non-empty string that matches. Bodies of other types
/// (maps, bytes, numbers) never match.
#[derive(Debug)]
pub(super) struct LogBody {
    pub(super) matcher: StringMatcher,
    pub(super) invert: bool,
}

impl Evaluate for LogBody {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        let matched = trace.logs.iter().any(|entry| {
            match entry.record.body.as_ref().and_then(|b| b.value.as_ref()) {
                Some(Value::StringValue(body)) => !body.is_empty() && self.matcher.matches(body),
                _ => false,
            }
        });
        match_decision(matched, self.invert)
    }
}

#[cfg(test)]
mod tests {
    use weft_proto::common::v1::AnyValue;

    use super::super::testutil::*;
    use super::*;

    fn matcher(values: &[&str], regex: bool) -> StringMatcher {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        StringMatcher::new(&values, regex).unwrap()
    }

    #[test]
    fn log_body_exact_and_regex() {
        let exact = LogBody {
            matcher: matcher(&["payment declined"], false),
            invert: false,
        };
        let regex = LogBody {
            matcher: matcher(&["(?i)timeout after \\d+ms"], true),
            invert: false,
        };
        let declined = trace_of_logs(vec![log_with_body("ok"), log_with_body("payment declined")]);
        let timeout = trace_of_logs(vec![log_with_body(
            "upstream TIMEOUT after 3000ms, retrying",
        )]);
        assert_eq!(exact.evaluate(&declined, now()), Decision::Sampled);
        assert_eq!(exact.evaluate(&timeout, now()), Decision::NotSampled);
        assert_eq!(regex.evaluate(&timeout, now()), Decision::Sampled);
        assert_eq!(regex.evaluate(&declined, now()), Decision::NotSampled);
    }

    #[test]
    fn log_body_only_matches_string_bodies() {
        let policy = LogBody {
            matcher: matcher(&[".*"], true),
            invert: false,
        };
        let mut record = log_with_body("");
        record.body = Some(AnyValue { value: Some(i(42)) });
        let number = trace_of_logs(vec![record]);
        let empty = trace_of_logs(vec![log_with_body("")]);
        assert_eq!(policy.evaluate(&number, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&empty, now()), Decision::NotSampled);
    }

    #[test]
    fn log_body_invert_match() {
        let policy = LogBody {
            matcher: matcher(&["healthcheck"], false),
            invert: true,
        };
        let health = trace_of_logs(vec![log_with_body("healthcheck")]);
        let other = trace_of_logs(vec![log_with_body("checkout")]);
        assert_eq!(policy.evaluate(&health, now()), Decision::InvertNotSampled);
        assert_eq!(policy.evaluate(&other, now()), Decision::InvertSampled);
    }
}
