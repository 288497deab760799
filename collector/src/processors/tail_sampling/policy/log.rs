//! Weft's log policies: keep a trace because of the logs written inside it.
//!
//! - `log_severity`: any log of the trace at or above `min_severity`;
//! - `log_body`: any log whose body is a string equal to (or matching) one of the values;
//! - `log_attribute`: any log with the attribute `key`, or whose resource has it, equal to (or
//!   matching) one of the values.
//!
//! `log_body` and `log_attribute` follow `string_attribute` exactly (empty strings never match
//! on records, `invert_match` gives the inverted decisions), with logs in place of spans.

use std::time::Instant;

use weft_proto::common::v1::any_value::Value;
use weft_proto::logs::v1::LogRecord;

use super::super::trace::TraceData;
use super::matcher::{any_log_or_its_resource, find_attr, match_decision, StringMatcher};
use super::{Decision, Evaluate};

/// The severity number of a name, as OpenTelemetry's log data model maps short names:
/// `TRACE` 1, `DEBUG` 5, `INFO` 9, `WARN` 13, `ERROR` 17, `FATAL` 21 (the lowest number of
/// each range), `TRACE2`..`FATAL4` for the numbers within a range, and the common aliases
/// `WARNING` (13) and `CRITICAL` (21). Case and surrounding spaces are ignored. A number from 1
/// to 24 is accepted as is. Anything else is `None`.
///
/// Used for `log_severity.min_severity`, for logs whose `severity_number` is unset, and by the
/// processor for `keep_logs_at_or_above`.
pub fn severity_from_str(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return (1..=24).contains(&number).then_some(number);
    }
    let upper = text.to_ascii_uppercase();
    match upper.as_str() {
        "WARNING" => return Some(13),
        "CRITICAL" => return Some(21),
        _ => {}
    }
    // A canonical name, optionally followed by 2, 3 or 4.
    let (name, step) = match upper.as_bytes().last() {
        Some(d @ b'2'..=b'4') => (&upper[..upper.len() - 1], i32::from(d - b'1')),
        _ => (upper.as_str(), 0),
    };
    let base = match name {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" => 13,
        "ERROR" => 17,
        "FATAL" => 21,
        _ => return None,
    };
    Some(base + step)
}

/// The severity of a record: its `severity_number`, or, when that is unset (0), its
/// `severity_text` read with [`severity_from_str`]; 0 when neither says anything.
pub(super) fn record_severity(record: &LogRecord) -> i32 {
    if record.severity_number != 0 {
        record.severity_number
    } else {
        severity_from_str(&record.severity_text).unwrap_or(0)
    }
}

/// `log_severity`: any log of the trace at or above `min`.
#[derive(Debug)]
pub(super) struct LogSeverity {
    pub(super) min: i32,
}

impl Evaluate for LogSeverity {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        if trace
            .logs
            .iter()
            .any(|entry| record_severity(&entry.record) >= self.min)
        {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
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
    use weft_proto::common::v1::AnyValue;

    use super::super::testutil::*;
    use super::*;

    #[test]
    fn severity_names_numbers_and_aliases() {
        for (text, expected) in [
            ("TRACE", Some(1)),
            ("debug", Some(5)),
            (" Info ", Some(9)),
            ("WARN", Some(13)),
            ("warning", Some(13)),
            ("ERROR", Some(17)),
            ("Fatal", Some(21)),
            ("critical", Some(21)),
            ("ERROR3", Some(19)),
            ("info4", Some(12)),
            ("1", Some(1)),
            ("24", Some(24)),
            ("0", None),
            ("25", None),
            ("ERROR5", None),
            ("NOTICE", None),
            ("", None),
        ] {
            assert_eq!(severity_from_str(text), expected, "{text:?}");
        }
    }

    #[test]
    fn log_severity_at_or_above_the_minimum() {
        let policy = LogSeverity { min: 17 };
        let error = trace_of_logs(vec![log_severity(9, "INFO"), log_severity(17, "ERROR")]);
        let fatal = trace_of_logs(vec![log_severity(21, "")]);
        let warn = trace_of_logs(vec![log_severity(13, "WARN"), log_severity(16, "WARN4")]);
        assert_eq!(policy.evaluate(&error, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&fatal, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&warn, now()), Decision::NotSampled);
        assert_eq!(
            policy.evaluate(&trace_with_spans(3), now()),
            Decision::NotSampled
        );
    }

    #[test]
    fn log_severity_falls_back_to_the_text_when_the_number_is_unset() {
        let policy = LogSeverity { min: 17 };
        let by_text = trace_of_logs(vec![log_severity(0, "error")]);
        let low_text = trace_of_logs(vec![log_severity(0, "warning")]);
        let unknown = trace_of_logs(vec![log_severity(0, "oops")]);
        // The number wins over the text when both are set.
        let number_wins = trace_of_logs(vec![log_severity(9, "ERROR")]);
        assert_eq!(policy.evaluate(&by_text, now()), Decision::Sampled);
        assert_eq!(policy.evaluate(&low_text, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&unknown, now()), Decision::NotSampled);
        assert_eq!(policy.evaluate(&number_wins, now()), Decision::NotSampled);
    }

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
