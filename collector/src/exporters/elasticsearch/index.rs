//! Where a document goes: a Logstash-style dated index name (`go-logs-%{+yyyy.MM.dd}`) or a
//! data stream (`logs-<dataset>-<namespace>`).
//!
//! A pattern is parsed once, at validation, so a typo (`%{+yyyy.mm.dd}`, an upper-case index
//! name) is a config error with its path rather than a bulk rejection at run time. Rendering
//! is then allocation-light and uses the record's own time, in UTC, as Logstash does: a log
//! written at 23:59:59 lands in that day's index however late it is exported.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// One piece of a date format inside `%{+...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DateToken {
    /// `yyyy` (or Joda's `YYYY`, which Logstash users write for the same thing).
    Year4,
    /// `yy` / `YY`: the last two digits of the year.
    Year2,
    /// `MM`: month, 01–12.
    Month,
    /// `dd`: day of month, 01–31.
    Day,
    /// `HH`: hour of day, 00–23.
    Hour,
    /// Separator characters between tokens, copied as they are.
    Literal(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Date(Vec<DateToken>),
}

/// A parsed `logs_index` / `traces_index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPattern {
    source: String,
    parts: Vec<Part>,
}

/// Characters Elasticsearch refuses in an index name.
const FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];

impl IndexPattern {
    /// Parses `pattern`; the error says what is wrong and what is accepted.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("must not be empty".to_string());
        }
        let mut parts = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            match rest.find("%{") {
                Some(0) => {
                    let end = rest.find('}').ok_or_else(|| {
                        format!(
                            "unclosed \"%{{\" in \"{pattern}\"; write dates as %{{+yyyy.MM.dd}}"
                        )
                    })?;
                    let inner = &rest[2..end];
                    let format = inner.strip_prefix('+').ok_or_else(|| {
                        format!(
                            "\"%{{{inner}}}\" is not a date: only Logstash date references like %{{+yyyy.MM.dd}} are supported (no field references)"
                        )
                    })?;
                    parts.push(Part::Date(parse_date_format(format)?));
                    rest = &rest[end + 1..];
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    let literal = &rest[..end];
                    check_literal(literal)?;
                    parts.push(Part::Literal(literal.to_string()));
                    rest = &rest[end..];
                }
            }
        }
        match parts.first() {
            Some(Part::Literal(l)) if l.starts_with(['-', '_', '+']) => {
                return Err(format!(
                    "\"{pattern}\": an index name must not start with '-', '_' or '+'"
                ))
            }
            Some(Part::Literal(l)) if l == "." || l == ".." => {
                return Err(format!("\"{pattern}\" is not a valid index name"))
            }
            _ => {}
        }
        Ok(Self {
            source: pattern.to_string(),
            parts,
        })
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The index name for a record written at `at`.
    pub fn render(&self, at: DateTime<Utc>) -> String {
        let mut out = String::with_capacity(self.source.len() + 8);
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Date(tokens) => {
                    for t in tokens {
                        match t {
                            DateToken::Year4 => out.push_str(&format!("{:04}", at.year())),
                            DateToken::Year2 => {
                                out.push_str(&format!("{:02}", at.year().rem_euclid(100)))
                            }
                            DateToken::Month => out.push_str(&format!("{:02}", at.month())),
                            DateToken::Day => out.push_str(&format!("{:02}", at.day())),
                            DateToken::Hour => out.push_str(&format!("{:02}", at.hour())),
                            DateToken::Literal(l) => out.push_str(l),
                        }
                    }
                }
            }
        }
        out
    }

    /// The `index_patterns` an index template for this pattern matches: the text before the
    /// first date reference followed by `*` (`go-logs-*`), or the name itself when it has no
    /// date.
    pub fn template_patterns(&self) -> Vec<String> {
        match self.parts.iter().position(|p| matches!(p, Part::Date(_))) {
            None => vec![self.source.clone()],
            Some(first_date) => {
                let prefix: String = self.parts[..first_date]
                    .iter()
                    .map(|p| match p {
                        Part::Literal(l) => l.as_str(),
                        Part::Date(_) => "",
                    })
                    .collect();
                vec![format!("{prefix}*")]
            }
        }
    }

    /// A name for this pattern's index template: the literal text, date references removed
    /// and trailing separators trimmed (`go-logs-%{+yyyy.MM.dd}` → `go-logs`).
    pub fn template_stem(&self) -> String {
        let text: String = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.as_str(),
                Part::Date(_) => "",
            })
            .collect();
        text.trim_end_matches(['-', '_', '.']).to_string()
    }
}

fn check_literal(literal: &str) -> Result<(), String> {
    if let Some(c) = literal.chars().find(|c| c.is_uppercase()) {
        return Err(format!(
            "\"{literal}\" contains '{c}': Elasticsearch index names must be lower case"
        ));
    }
    if let Some(c) = literal.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(format!(
            "\"{literal}\" contains '{c}', which Elasticsearch does not allow in an index name"
        ));
    }
    Ok(())
}

/// Parses the inside of `%{+...}`: runs of letters are date tokens, anything else is copied.
fn parse_date_format(format: &str) -> Result<Vec<DateToken>, String> {
    let supported = "supported: yyyy, yy, MM, dd, HH and separators, e.g. %{+yyyy.MM.dd}";
    if format.is_empty() {
        return Err(format!("empty date reference \"%{{+}}\"; {supported}"));
    }
    let mut tokens = Vec::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let run: String = chars[i..j].iter().collect();
        if c.is_ascii_alphabetic() {
            tokens.push(match run.as_str() {
                "yyyy" | "YYYY" => DateToken::Year4,
                "yy" | "YY" => DateToken::Year2,
                "MM" => DateToken::Month,
                "dd" => DateToken::Day,
                "HH" => DateToken::Hour,
                _ => {
                    return Err(format!(
                        "unsupported date token \"{run}\" in \"%{{+{format}}}\"; {supported}"
                    ))
                }
            });
        } else {
            check_literal(&run)?;
            tokens.push(DateToken::Literal(run));
        }
        i = j;
    }
    Ok(tokens)
}

/// Checks a data stream's `dataset` or `namespace` as Elasticsearch's naming scheme requires:
/// lower case, no '-' (it separates the parts), none of the characters index names forbid,
/// at most 100 bytes.
pub fn check_data_stream_part(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".to_string());
    }
    if value.len() > 100 {
        return Err("must be at most 100 bytes".to_string());
    }
    if value.contains('-') {
        return Err(format!(
            "\"{value}\" contains '-', which separates the parts of a data stream name (logs-<dataset>-<namespace>); use '_' or '.'"
        ));
    }
    check_literal(value)
}

/// The time that picks a record's index and becomes its `@timestamp`: its own time, else
/// when it was observed, else `now` (a record with neither).
pub fn record_time(
    time_unix_nano: u64,
    observed_unix_nano: u64,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let nanos = if time_unix_nano != 0 {
        time_unix_nano
    } else {
        observed_unix_nano
    };
    if nanos == 0 {
        return now;
    }
    // u64 nanoseconds since 1970 always fit i64 seconds; anything chrono cannot represent
    // falls back to `now` rather than failing the document.
    DateTime::<Utc>::from_timestamp(
        (nanos / 1_000_000_000) as i64,
        (nanos % 1_000_000_000) as u32,
    )
    .unwrap_or(now)
}
