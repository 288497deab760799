//! What the parsing operators (`json_parser`, `regex_parser`) share, as the Collector's
//! stanza `ParserConfig`: where to read (`parse_from`, default `body`), where the parsed map
//! goes (`parse_to`, default `attributes`), and the embedded `timestamp`, `severity` and
//! `trace` parsers that run on the result, so one operator reads a line's time, level and
//! trace context without a second pass over it.

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::severity_parser::{SeverityParser, SeveritySettings};
use super::time_parser::{TimeParser, TimeSettings};
use super::trace_parser::{TraceParser, TraceSettings};
use super::{Entry, ErrorHandler, Field, OnError, OperatorContext, Outcome, Value};

/// The embedded parsers' settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedded {
    #[serde(default)]
    pub timestamp: Option<TimeSettings>,
    #[serde(default)]
    pub severity: Option<SeveritySettings>,
    #[serde(default)]
    pub trace: Option<TraceSettings>,
}

/// Validates the common parser keys (`path` is the operator's item).
pub fn validate(
    timestamp: &Option<TimeSettings>,
    severity: &Option<SeveritySettings>,
    path: &ConfigPath,
    diags: &mut Diagnostics,
) {
    if let Some(t) = timestamp {
        t.validate(&path.key("timestamp"), diags);
    }
    if let Some(s) = severity {
        s.validate(&path.key("severity"), diags);
    }
}

/// A parser's common part, built.
pub struct ParserCore {
    pub parse_from: Field,
    parse_to: Field,
    timestamp: Option<TimeParser>,
    severity: Option<SeverityParser>,
    trace: Option<TraceParser>,
    pub errors: ErrorHandler,
}

impl ParserCore {
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        ctx: &OperatorContext,
        parse_from: &Option<Field>,
        parse_to: &Option<Field>,
        on_error: OnError,
        timestamp: &Option<TimeSettings>,
        severity: &Option<SeveritySettings>,
        trace: &Option<TraceSettings>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            parse_from: parse_from.clone().unwrap_or_else(Field::body),
            parse_to: parse_to.clone().unwrap_or_else(Field::attributes),
            timestamp: timestamp
                .as_ref()
                .map(TimeParser::new)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            severity: severity
                .as_ref()
                .map(SeverityParser::new)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            trace: trace.as_ref().map(TraceParser::new),
            errors: ctx.errors(on_error),
        })
    }

    /// Writes a parse result into the entry and runs the embedded parsers; a failure at any
    /// step goes to `on_error` (what was parsed before the failure stays on the entry).
    pub fn finish(&mut self, mut entry: Entry, parsed: Result<Value, String>) -> Outcome {
        let value = match parsed {
            Ok(v) => v,
            Err(e) => return self.errors.fail(entry, &e),
        };
        if let Err(e) = entry.set(&self.parse_to, value) {
            return self.errors.fail(entry, &e);
        }
        let mut problems = Vec::new();
        if let Some(t) = &self.timestamp {
            if let Err(e) = t.apply(&mut entry) {
                problems.push(e);
            }
        }
        if let Some(s) = &self.severity {
            if let Err(e) = s.apply(&mut entry) {
                problems.push(e);
            }
        }
        if let Some(t) = &self.trace {
            if let Err(e) = t.apply(&mut entry) {
                problems.push(e);
            }
        }
        if problems.is_empty() {
            Outcome::Emit(entry)
        } else {
            self.errors.fail(entry, &problems.join("; "))
        }
    }
}
