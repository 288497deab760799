//! `severity_parser`: reads a record's severity from a field, as the Collector's
//! `severity_parser` (also embedded in parsers as `severity:`).
//!
//! ```yaml
//! - type: severity_parser
//!   parse_from: attributes.level
//!   preset: default          # default | none
//!   mapping:                 # more words (or numbers, or {min, max} ranges) per severity
//!     error: [err, "E"]
//!     warn: {min: 400, max: 499}
//!   overwrite_text: false    # true: severity_text becomes the canonical name (ERROR)
//! ```
//!
//! Matching ignores case. The default preset knows the level words of zap, zerolog and
//! logrus: `trace`, `debug`, `info`, `warn`/`warning`, `error`, `dpanic` (ERROR2: zap's
//! "panics in development"), `panic` and `fatal` (FATAL), plus `err`, `crit`/`critical`,
//! `emerg`/`alert` (FATAL) and `notice` (INFO2) from syslog.

use serde::Deserialize;
use serde_yaml::Value as Yaml;
use weft_config::{ConfigPath, Diagnostics};

use super::{Entry, Field, OnError, Operator, OperatorConfig, OperatorContext, Outcome, Value};

/// The settings shared by `severity_parser` and a parser's `severity:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeveritySettings {
    pub parse_from: Field,
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default)]
    pub mapping: Option<serde_yaml::Mapping>,
    #[serde(default)]
    pub overwrite_text: bool,
}

/// `severity_parser`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub parse_from: Field,
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default)]
    pub mapping: Option<serde_yaml::Mapping>,
    #[serde(default)]
    pub overwrite_text: bool,
    #[serde(default)]
    pub on_error: OnError,
}

impl Config {
    fn settings(&self) -> SeveritySettings {
        SeveritySettings {
            parse_from: self.parse_from.clone(),
            preset: self.preset.clone(),
            mapping: self.mapping.clone(),
            overwrite_text: self.overwrite_text,
        }
    }
}

impl OperatorConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        self.settings().validate(path, diags);
    }

    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(Running {
            parser: SeverityParser::new(&self.settings()).map_err(anyhow::Error::msg)?,
            errors: ctx.errors(self.on_error),
        }))
    }
}

struct Running {
    parser: SeverityParser,
    errors: super::ErrorHandler,
}

impl Operator for Running {
    fn process(&mut self, mut entry: Entry) -> Outcome {
        match self.parser.apply(&mut entry) {
            Ok(()) => Outcome::Emit(entry),
            Err(e) => self.errors.fail(entry, &e),
        }
    }
}

impl SeveritySettings {
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if let Err((key, e)) = SeverityParser::compile(self) {
            diags.error(&path.key(key), e);
        }
    }
}

/// OTLP severity numbers and their canonical names.
const NAMES: &[(&str, i32)] = &[
    ("trace", 1),
    ("trace2", 2),
    ("trace3", 3),
    ("trace4", 4),
    ("debug", 5),
    ("debug2", 6),
    ("debug3", 7),
    ("debug4", 8),
    ("info", 9),
    ("info2", 10),
    ("info3", 11),
    ("info4", 12),
    ("warn", 13),
    ("warn2", 14),
    ("warn3", 15),
    ("warn4", 16),
    ("error", 17),
    ("error2", 18),
    ("error3", 19),
    ("error4", 20),
    ("fatal", 21),
    ("fatal2", 22),
    ("fatal3", 23),
    ("fatal4", 24),
];

/// The default preset: lower-case words → severity number.
const DEFAULT_WORDS: &[(&str, i32)] = &[
    ("trace", 1),
    ("debug", 5),
    ("info", 9),
    ("information", 9),
    ("notice", 10),
    ("warn", 13),
    ("warning", 13),
    ("error", 17),
    ("err", 17),
    ("dpanic", 18),
    ("panic", 21),
    ("fatal", 21),
    ("crit", 21),
    ("critical", 21),
    ("alert", 22),
    ("emerg", 23),
    ("emergency", 23),
];

fn canonical(n: i32) -> &'static str {
    match n {
        1 => "TRACE",
        2 => "TRACE2",
        3 => "TRACE3",
        4 => "TRACE4",
        5 => "DEBUG",
        6 => "DEBUG2",
        7 => "DEBUG3",
        8 => "DEBUG4",
        9 => "INFO",
        10 => "INFO2",
        11 => "INFO3",
        12 => "INFO4",
        13 => "WARN",
        14 => "WARN2",
        15 => "WARN3",
        16 => "WARN4",
        17 => "ERROR",
        18 => "ERROR2",
        19 => "ERROR3",
        20 => "ERROR4",
        21 => "FATAL",
        22 => "FATAL2",
        23 => "FATAL3",
        _ => "FATAL4",
    }
}

/// A compiled severity mapping.
#[derive(Clone, Debug)]
pub struct SeverityParser {
    from: Field,
    words: Vec<(String, i32)>,
    ranges: Vec<(i64, i64, i32)>,
    overwrite_text: bool,
}

impl SeverityParser {
    pub fn new(s: &SeveritySettings) -> Result<Self, String> {
        Self::compile(s).map_err(|(_, e)| e)
    }

    fn compile(s: &SeveritySettings) -> Result<Self, (&'static str, String)> {
        let mut words: Vec<(String, i32)> = match s.preset.as_deref() {
            None | Some("default") => DEFAULT_WORDS
                .iter()
                .map(|(w, n)| (w.to_string(), *n))
                .collect(),
            Some("none") => Vec::new(),
            Some(other) => {
                return Err((
                    "preset",
                    format!("unknown preset {other:?}, expected \"default\" or \"none\""),
                ))
            }
        };
        let mut ranges = Vec::new();
        for (k, v) in s.mapping.iter().flatten() {
            let name = k.as_str().unwrap_or_default().to_ascii_lowercase();
            let Some(&(_, n)) = NAMES.iter().find(|(w, _)| *w == name) else {
                return Err((
                    "mapping",
                    format!("{k:?} is not a severity: expected trace, debug, info, warn, error, fatal (or with 2, 3, 4: error2)"),
                ));
            };
            let items: Vec<&Yaml> = match v {
                Yaml::Sequence(s) => s.iter().collect(),
                other => vec![other],
            };
            for item in items {
                match item {
                    Yaml::String(w) => {
                        words.retain(|(x, _)| *x != w.to_ascii_lowercase());
                        words.push((w.to_ascii_lowercase(), n));
                    }
                    Yaml::Number(num) => words.push((num.to_string(), n)),
                    Yaml::Bool(b) => words.push((b.to_string(), n)),
                    Yaml::Mapping(m) => {
                        let bound = |key: &str| m.get(key).and_then(Yaml::as_i64);
                        match (bound("min"), bound("max"), m.len()) {
                            (Some(lo), Some(hi), 2) if lo <= hi => ranges.push((lo, hi, n)),
                            _ => {
                                return Err((
                                    "mapping",
                                    format!("{name}: a range is {{min: <integer>, max: <integer>}} with min <= max"),
                                ))
                            }
                        }
                    }
                    other => {
                        return Err((
                            "mapping",
                            format!("{name}: {other:?} is not a word, a number or a range"),
                        ))
                    }
                }
            }
        }
        Ok(Self {
            from: s.parse_from.clone(),
            words,
            ranges,
            overwrite_text: s.overwrite_text,
        })
    }

    /// Sets the entry's severity from its field. A missing field is an error; a value the
    /// mapping does not know sets the severity to unspecified with the text kept.
    pub fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let value = entry
            .get(&self.from)
            .ok_or_else(|| format!("no field {} to read the severity from", self.from))?;
        let text = value
            .to_text()
            .ok_or_else(|| {
                format!(
                    "severity is {}, expected a word or a number",
                    value.type_name()
                )
            })?
            .into_owned();
        let lower = text.to_ascii_lowercase();
        let mut number = self
            .words
            .iter()
            .find(|(w, _)| *w == lower)
            .map(|(_, n)| *n);
        if number.is_none() {
            if let (Ok(i), Value::Int(_) | Value::Str(_)) = (lower.parse::<i64>(), value) {
                number = self
                    .ranges
                    .iter()
                    .find(|(lo, hi, _)| (*lo..=*hi).contains(&i))
                    .map(|(_, _, n)| *n);
            }
        }
        entry.severity = number.unwrap_or(0);
        entry.severity_text = match number {
            Some(n) if self.overwrite_text => canonical(n).to_string(),
            _ => text,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn severity(yaml: &str, level: Value) -> (i32, String) {
        let mut chain = build(yaml);
        let mut e = line("x");
        e.set_attribute("level", level);
        let e = one(&mut chain, e);
        (e.severity, e.severity_text)
    }

    #[test]
    fn the_go_loggers_level_words_map_to_otlp_severities() {
        let yaml = "- {type: severity_parser, parse_from: attributes.level}";
        for (word, n) in [
            ("debug", 5),
            ("info", 9),
            ("warn", 13),
            ("warning", 13),
            ("error", 17),
            ("dpanic", 18),
            ("panic", 21),
            ("fatal", 21),
            ("trace", 1),
            ("ERROR", 17),
        ] {
            assert_eq!(
                severity(yaml, Value::Str(word.into())),
                (n, word.to_string()),
                "{word}"
            );
        }
        assert_eq!(
            severity(yaml, Value::Str("loud".into())),
            (0, "loud".to_string())
        );
    }

    #[test]
    fn mappings_add_words_numbers_and_ranges() {
        let yaml = r#"
- type: severity_parser
  parse_from: attributes.level
  overwrite_text: true
  mapping:
    error: [oops, 50]
    warn: {min: 400, max: 499}
"#;
        assert_eq!(
            severity(yaml, Value::Str("OOPS".into())),
            (17, "ERROR".into())
        );
        assert_eq!(severity(yaml, Value::Int(50)), (17, "ERROR".into()));
        assert_eq!(severity(yaml, Value::Int(404)), (13, "WARN".into()));
        assert_eq!(
            severity(yaml, Value::Str("info".into())),
            (9, "INFO".into())
        );
        let p = problems("- {type: severity_parser, parse_from: attributes.l, mapping: {loud: x}}");
        assert!(p[0].contains("operators[0]::mapping: "), "{p:?}");
    }
}
