//! `log_severity` (Weft): keep a trace when any of its logs is at or above `min_severity`.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::severity::{record_severity, SeverityValue};
use super::{Decision, Evaluate};

/// The `log_severity` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "log_severity";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &["{min_severity: WARN}", "{min_severity: 17}"];
    type Config = LogSeverityConfig;

    fn validate(c: &LogSeverityConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        match &c.min_severity {
            None => diags.error(
                &path.key("min_severity"),
                "required: a severity name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) or number (1 to 24)",
            ),
            Some(value) => {
                if let Err(e) = value.resolve() {
                    diags.error(&path.key("min_severity"), e);
                }
            }
        }
    }

    fn build(c: &LogSeverityConfig) -> Result<Box<dyn Evaluate>, String> {
        let min = c
            .min_severity
            .as_ref()
            .ok_or_else(|| "min_severity is missing".to_string())?
            .resolve()?;
        Ok(Box::new(LogSeverity { min }))
    }

    fn reads(_: &LogSeverityConfig) -> Reads {
        Reads::LOG_SEVERITY
    }
}

/// `log_severity`: any log of the trace at or above `min_severity`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSeverityConfig {
    pub min_severity: Option<SeverityValue>,
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

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

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
}
