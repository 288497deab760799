//! `json_parser`: parses a JSON object into fields, as the Collector's `json_parser`.
//!
//! ```yaml
//! - type: json_parser
//!   parse_from: body            # default
//!   parse_to: attributes        # default
//!   timestamp: {parse_from: attributes.ts, layout_type: epoch, layout: s.us}
//!   severity: {parse_from: attributes.level}
//!   trace: {trace_id: {parse_from: attributes.trace_id}, span_id: {parse_from: attributes.span_id}}
//!   on_error: send
//! ```
//!
//! The line is parsed once, straight into the entry's values (no intermediate tree), and
//! the embedded `timestamp`, `severity` and `trace` read from the result. Integers stay
//! integers (the Collector's `parse_ints: true`; the key is accepted). A line that is not a
//! JSON object is kept as it was, with `weft.parse_error`.

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::parser::ParserCore;
use super::severity_parser::SeveritySettings;
use super::time_parser::TimeSettings;
use super::trace_parser::TraceSettings;
use super::{Entry, Field, OnError, Operator, OperatorConfig, OperatorContext, Outcome, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub parse_from: Option<Field>,
    #[serde(default)]
    pub parse_to: Option<Field>,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub timestamp: Option<TimeSettings>,
    #[serde(default)]
    pub severity: Option<SeveritySettings>,
    #[serde(default)]
    pub trace: Option<TraceSettings>,
    /// Accepted for Collector compatibility: integers are always kept as integers.
    #[serde(default)]
    pub parse_ints: bool,
}

impl OperatorConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        super::parser::validate(&self.timestamp, &self.severity, path, diags);
    }

    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(JsonParser {
            core: ParserCore::build(
                ctx,
                &self.parse_from,
                &self.parse_to,
                self.on_error,
                &self.timestamp,
                &self.severity,
                &self.trace,
            )?,
        }))
    }
}

struct JsonParser {
    core: ParserCore,
}

/// Parses one JSON object.
pub fn parse_object(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Map(_)) => Ok(v),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}",
            other.type_name()
        )),
        Err(e) => {
            let shown: String = text.chars().take(80).collect();
            Err(format!("not JSON ({e}): {shown:?}"))
        }
    }
}

impl Operator for JsonParser {
    fn process(&mut self, entry: Entry) -> Outcome {
        let parsed = match entry.get(&self.core.parse_from) {
            Some(Value::Str(s)) => parse_object(s),
            Some(Value::Bytes(b)) => match std::str::from_utf8(b) {
                Ok(s) => parse_object(s),
                Err(_) => Err("not JSON: the line is not valid UTF-8".to_string()),
            },
            Some(Value::Map(_)) => {
                Err("already parsed: the field holds a map, not JSON text".to_string())
            }
            Some(other) => Err(format!("expected JSON text, found {}", other.type_name())),
            None => Err(format!("no field {} to parse", self.core.parse_from)),
        };
        self.core.finish(entry, parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn a_zap_line_is_parsed_once_with_time_level_and_trace() {
        let mut chain = build(
            r#"
- type: json_parser
  timestamp: {parse_from: attributes.ts, layout_type: epoch, layout: s.us}
  severity: {parse_from: attributes.level}
  trace:
    trace_id: {parse_from: attributes.trace_id}
    span_id: {parse_from: attributes.span_id}
"#,
        );
        let text = r#"{"level":"error","ts":1764757730.5,"caller":"shop/main.go:42","msg":"payment declined","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","n":3}"#;
        let e = one(&mut chain, line(text));
        assert_eq!(e.severity, 17);
        assert_eq!(e.severity_text, "error");
        assert_eq!(e.timestamp, 1_764_757_730_500_000_000);
        assert_eq!(hex::encode(&e.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            e.get(&field("attributes.msg")),
            Some(&Value::Str("payment declined".into()))
        );
        assert_eq!(e.get(&field("attributes.n")), Some(&Value::Int(3)));
        assert_eq!(e.body, Value::Str(text.into()), "the body stays the line");
    }

    #[test]
    fn a_line_that_is_not_json_is_kept_with_an_error() {
        let mut chain = build("- {type: json_parser}");
        for bad in ["panic: runtime error", "[1,2]", "{\"a\":"] {
            let e = one(&mut chain, line(bad));
            assert_eq!(e.body, Value::Str(bad.into()));
            let Some(Value::Str(err)) = e.get(&field("attributes[\"weft.parse_error\"]")) else {
                panic!("{e:?}")
            };
            assert!(err.starts_with("json_parser: "), "{err}");
        }
        let mut dropping = build("- {type: json_parser, on_error: drop_quiet}");
        let mut out = Vec::new();
        dropping.run(line("nope"), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_bad_embedded_timestamp_keeps_the_parsed_fields() {
        let mut chain = build(
            "- {type: json_parser, timestamp: {parse_from: attributes.time, layout_type: gotime, layout: '2006-01-02T15:04:05Z07:00'}}",
        );
        let e = one(&mut chain, line(r#"{"time":"soon","message":"m"}"#));
        assert_eq!(
            e.get(&field("attributes.message")),
            Some(&Value::Str("m".into()))
        );
        assert_eq!(e.timestamp, 0);
        assert!(e.get(&field("attributes[\"weft.parse_error\"]")).is_some());
    }
}
