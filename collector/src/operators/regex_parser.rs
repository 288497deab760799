//! `regex_parser`: parses text with a regular expression's named groups, as the Collector's
//! `regex_parser` (Rust's `regex` syntax: `(?P<name>...)` or `(?<name>...)`).
//!
//! ```yaml
//! - type: regex_parser
//!   regex: '^(?P<time>\S+) (?P<level>[A-Z]+) (?P<msg>.*)$'
//!   parse_from: body          # default
//!   parse_to: attributes      # default
//!   timestamp: {...}          # as json_parser
//!   severity: {...}
//!   trace: {...}
//! ```
//!
//! Each named group that matched becomes a string field; a line the expression does not
//! match is an error (`on_error`).

use regex::Regex;
use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::parser::ParserCore;
use super::severity_parser::SeveritySettings;
use super::time_parser::TimeSettings;
use super::trace_parser::TraceSettings;
use super::{
    Entry, Field, Map, OnError, Operator, OperatorConfig, OperatorContext, Outcome, Value,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub regex: String,
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
    /// Accepted for Collector compatibility (a cache of parse results); unused.
    #[serde(default)]
    pub cache: Option<serde_yaml::Value>,
}

impl OperatorConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        match Regex::new(&self.regex) {
            Err(e) => diags.error(
                &path.key("regex"),
                format!("invalid regular expression: {e}"),
            ),
            Ok(r) if r.capture_names().flatten().next().is_none() => diags.error(
                &path.key("regex"),
                "has no named group: name what it captures, e.g. (?P<level>\\w+)",
            ),
            Ok(_) => {}
        }
        super::parser::validate(&self.timestamp, &self.severity, path, diags);
    }

    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        let regex = Regex::new(&self.regex)?;
        let names = regex
            .capture_names()
            .flatten()
            .map(str::to_string)
            .collect();
        Ok(Box::new(RegexParser {
            regex,
            names,
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

struct RegexParser {
    regex: Regex,
    names: Vec<String>,
    core: ParserCore,
}

impl RegexParser {
    fn parse(&self, text: &str) -> Result<Value, String> {
        let caps = self.regex.captures(text).ok_or_else(|| {
            let shown: String = text.chars().take(80).collect();
            format!("the regex does not match {shown:?}")
        })?;
        let mut map = Map::default();
        for name in &self.names {
            if let Some(m) = caps.name(name) {
                map.insert(name.clone(), Value::Str(m.as_str().to_string()));
            }
        }
        Ok(Value::Map(map))
    }
}

impl Operator for RegexParser {
    fn process(&mut self, entry: Entry) -> Outcome {
        let parsed = match entry.get(&self.core.parse_from) {
            Some(v) => match v.to_text() {
                Some(text) => self.parse(&text),
                None => Err(format!("expected text, found {}", v.type_name())),
            },
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
    fn named_groups_become_fields() {
        let mut chain = build(
            r#"
- type: regex_parser
  regex: '^(?P<level>[A-Z]+) (?P<msg>.*)$'
  severity: {parse_from: attributes.level}
"#,
        );
        let e = one(&mut chain, line("WARN disk almost full"));
        assert_eq!(
            e.get(&field("attributes.msg")),
            Some(&Value::Str("disk almost full".into()))
        );
        assert_eq!(e.severity, 13);
        let e = one(&mut chain, line("lowercase line"));
        assert!(e.get(&field("attributes[\"weft.parse_error\"]")).is_some());
    }

    #[test]
    fn bad_expressions_are_config_errors() {
        let p = problems("- {type: regex_parser, regex: '(?P<a>['}");
        assert!(
            p[0].contains("operators[0]::regex: invalid regular expression"),
            "{p:?}"
        );
        let p = problems("- {type: regex_parser, regex: '.*'}");
        assert!(p[0].contains("has no named group"), "{p:?}");
    }
}
