//! `time_parser`: reads a record's time from a field, as the Collector's `time_parser`
//! (also embedded in parsers as `timestamp:`).
//!
//! ```yaml
//! - type: time_parser
//!   parse_from: attributes.ts
//!   layout_type: epoch        # strptime (default) | gotime | epoch
//!   layout: s.us              # epoch: s, ms, us, ns, s.ms, s.us, s.ns
//!   location: UTC             # for layouts without a zone: UTC (default) or Local
//! ```
//!
//! The three layouts cover the Go loggers: zap's production `ts` is float seconds
//! (`epoch`, `s.us`), zerolog's `time` is RFC 3339 (`gotime`, `2006-01-02T15:04:05Z07:00`) or
//! Unix milliseconds (`epoch`, `ms`), logrus writes RFC 3339. `strptime` directives are the
//! Collector's (`%Y-%m-%d %H:%M:%S.%L %z`: `%L` milliseconds, `%f` microseconds, `%s`
//! nanoseconds); `gotime` layouts are Go's reference time.

use chrono::{DateTime, NaiveDateTime, TimeZone};
use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::{Entry, Field, OnError, Operator, OperatorConfig, OperatorContext, Outcome, Value};

/// How a time is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutType {
    #[default]
    Strptime,
    Gotime,
    Epoch,
}

/// The settings shared by `time_parser` and a parser's `timestamp:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSettings {
    pub parse_from: Field,
    #[serde(default)]
    pub layout_type: LayoutType,
    pub layout: String,
    #[serde(default)]
    pub location: Option<String>,
}

/// `time_parser`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub parse_from: Field,
    #[serde(default)]
    pub layout_type: LayoutType,
    pub layout: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub on_error: OnError,
}

impl Config {
    fn settings(&self) -> TimeSettings {
        TimeSettings {
            parse_from: self.parse_from.clone(),
            layout_type: self.layout_type,
            layout: self.layout.clone(),
            location: self.location.clone(),
        }
    }
}

impl OperatorConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        self.settings().validate(path, diags);
    }

    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(Running {
            parser: TimeParser::new(&self.settings()).map_err(anyhow::Error::msg)?,
            errors: ctx.errors(self.on_error),
        }))
    }
}

struct Running {
    parser: TimeParser,
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

impl TimeSettings {
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if let Err(e) = TimeParser::new(self) {
            let key = if e.starts_with("location") {
                "location"
            } else {
                "layout"
            };
            diags.error(&path.key(key), e);
        }
    }
}

#[derive(Clone, Debug)]
enum Layout {
    /// A chrono format string; `zoned` when it reads an offset.
    Format {
        format: String,
        zoned: bool,
    },
    /// RFC 3339, with or without a fraction (Go's RFC3339 and RFC3339Nano).
    Rfc3339,
    Epoch(EpochUnit),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EpochUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
    /// `s.ms`, `s.us`, `s.ns`: seconds with a fraction.
    SecondsFraction,
}

/// A compiled time layout.
#[derive(Clone, Debug)]
pub struct TimeParser {
    from: Field,
    layout: Layout,
    local: bool,
}

impl TimeParser {
    pub fn new(s: &TimeSettings) -> Result<Self, String> {
        let local = match s.location.as_deref() {
            None | Some("UTC") | Some("") => false,
            Some("Local") => true,
            Some(other) => {
                return Err(format!(
                    "location {other:?} is not supported: Weft knows UTC and Local (write the offset into the layout, e.g. %z, instead)"
                ))
            }
        };
        let layout = match s.layout_type {
            LayoutType::Epoch => Layout::Epoch(match s.layout.as_str() {
                "s" => EpochUnit::Seconds,
                "ms" => EpochUnit::Millis,
                "us" => EpochUnit::Micros,
                "ns" => EpochUnit::Nanos,
                "s.ms" | "s.us" | "s.ns" => EpochUnit::SecondsFraction,
                other => {
                    return Err(format!(
                        "epoch layout {other:?}: expected s, ms, us, ns, s.ms, s.us or s.ns"
                    ))
                }
            }),
            LayoutType::Strptime => {
                let format = strptime_to_chrono(&s.layout)?;
                let zoned = format.contains("%z") || format.contains("%:z");
                Layout::Format { format, zoned }
            }
            LayoutType::Gotime => match s.layout.as_str() {
                "2006-01-02T15:04:05Z07:00" | "2006-01-02T15:04:05.999999999Z07:00" => {
                    Layout::Rfc3339
                }
                other => {
                    let format = gotime_to_chrono(other)?;
                    let zoned = format.contains("%z") || format.contains("%:z");
                    Layout::Format { format, zoned }
                }
            },
        };
        if s.layout.is_empty() {
            return Err("layout: must not be empty".to_string());
        }
        Ok(Self {
            from: s.parse_from.clone(),
            layout,
            local,
        })
    }

    /// Reads the time from the entry into its timestamp. A missing field is an error.
    pub fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let value = entry
            .get(&self.from)
            .ok_or_else(|| format!("no field {} to read the time from", self.from))?;
        entry.timestamp = self.parse(value)?;
        Ok(())
    }

    fn parse(&self, value: &Value) -> Result<u64, String> {
        match &self.layout {
            Layout::Epoch(unit) => parse_epoch(value, *unit),
            Layout::Rfc3339 => {
                let text = value.as_str().ok_or_else(|| {
                    format!("time is {}, expected an RFC 3339 string", value.type_name())
                })?;
                let t = DateTime::parse_from_rfc3339(text)
                    .map_err(|e| format!("time {text:?} is not RFC 3339: {e}"))?;
                nanos(t.timestamp_nanos_opt())
            }
            Layout::Format { format, zoned } => {
                let text = value
                    .to_text()
                    .ok_or_else(|| format!("time is {}, expected a string", value.type_name()))?;
                let text = zulu_as_offset(&text, format);
                if *zoned {
                    let t = DateTime::parse_from_str(&text, format)
                        .map_err(|e| format!("time {text:?} does not match the layout: {e}"))?;
                    return nanos(t.timestamp_nanos_opt());
                }
                let naive = NaiveDateTime::parse_from_str(&text, format)
                    .map_err(|e| format!("time {text:?} does not match the layout: {e}"))?;
                if self.local {
                    let t = chrono::Local
                        .from_local_datetime(&naive)
                        .earliest()
                        .ok_or_else(|| format!("time {text:?} does not exist in the local zone"))?;
                    nanos(t.timestamp_nanos_opt())
                } else {
                    nanos(naive.and_utc().timestamp_nanos_opt())
                }
            }
        }
    }
}

fn nanos(n: Option<i64>) -> Result<u64, String> {
    match n {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err("time is out of range (before 1970 or after 2262)".to_string()),
    }
}

/// Go's `Z07:00` accepts `Z` for UTC; chrono's offsets do not, so a trailing `Z` becomes
/// `+00:00` when the layout reads an offset.
fn zulu_as_offset<'a>(text: &'a str, format: &str) -> std::borrow::Cow<'a, str> {
    if (format.ends_with("%:z") || format.ends_with("%z")) && text.ends_with('Z') {
        let offset = if format.ends_with("%:z") {
            "+00:00"
        } else {
            "+0000"
        };
        return std::borrow::Cow::Owned(format!("{}{offset}", &text[..text.len() - 1]));
    }
    std::borrow::Cow::Borrowed(text)
}

fn parse_epoch(value: &Value, unit: EpochUnit) -> Result<u64, String> {
    let scale: u64 = match unit {
        EpochUnit::Seconds | EpochUnit::SecondsFraction => 1_000_000_000,
        EpochUnit::Millis => 1_000_000,
        EpochUnit::Micros => 1_000,
        EpochUnit::Nanos => 1,
    };
    match value {
        Value::Int(i) if *i >= 0 => (*i as u64)
            .checked_mul(scale)
            .ok_or_else(|| format!("epoch time {i} is out of range")),
        Value::Double(d) if d.is_finite() && *d >= 0.0 => {
            let n = d * scale as f64;
            if n > u64::MAX as f64 {
                return Err(format!("epoch time {d} is out of range"));
            }
            Ok(n.round() as u64)
        }
        Value::Str(s) => {
            // Exact decimal arithmetic: "1700000000.123456789" keeps every digit.
            let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
            let bad = || format!("epoch time {s:?} is not a number");
            if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let w: u64 = whole.parse().map_err(|_| bad())?;
            let digits = scale.ilog10() as usize;
            let mut f = frac.to_string();
            f.truncate(digits);
            while f.len() < digits {
                f.push('0');
            }
            let f: u64 = if f.is_empty() {
                0
            } else {
                f.parse().map_err(|_| bad())?
            };
            w.checked_mul(scale)
                .and_then(|n| n.checked_add(f))
                .ok_or_else(|| format!("epoch time {s:?} is out of range"))
        }
        other => Err(format!(
            "epoch time is {}, expected a number",
            other.type_name()
        )),
    }
}

/// The Collector's strptime directives (ctimefmt) as chrono's.
fn strptime_to_chrono(layout: &str) -> Result<String, String> {
    let mut out = String::with_capacity(layout.len() + 8);
    let mut chars = layout.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let d = chars
            .next()
            .ok_or_else(|| format!("layout {layout:?} ends with a lone '%'"))?;
        out.push_str(match d {
            'Y' => "%Y",
            'y' => "%y",
            'm' => "%m",
            'o' => "%m",
            'd' => "%d",
            'e' => "%e",
            'q' => "%m",
            'H' => "%H",
            'l' => "%I",
            'I' => "%I",
            'M' => "%M",
            'S' => "%S",
            'p' => "%p",
            'b' | 'h' => "%b",
            'B' => "%B",
            'a' => "%a",
            'A' => "%A",
            'j' => "%j",
            'L' => "%3f",
            'f' => "%6f",
            's' => "%9f",
            'z' => "%z",
            'Z' => "%Z",
            'D' => "%m/%d/%y",
            'F' => "%Y-%m-%d",
            'T' => "%H:%M:%S",
            '%' => "%%",
            other => {
                return Err(format!(
                    "layout {layout:?}: unknown strptime directive %{other} (see the README's time_parser reference)"
                ))
            }
        });
    }
    Ok(out)
}

/// A Go reference-time layout as a chrono format.
fn gotime_to_chrono(layout: &str) -> Result<String, String> {
    // Longest tokens first, so "2006" is not read as "2" + "006".
    const TOKENS: &[(&str, &str)] = &[
        ("January", "%B"),
        ("Monday", "%A"),
        ("Z07:00", "%:z"),
        ("-07:00", "%:z"),
        ("Z0700", "%z"),
        ("-0700", "%z"),
        (".000000000", "%.9f"),
        (".999999999", "%.f"),
        (".000000", "%.6f"),
        (".999999", "%.f"),
        (".000", "%.3f"),
        (".999", "%.f"),
        ("2006", "%Y"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("_2", "%e"),
        ("01", "%m"),
        ("02", "%d"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        ("1", "%m"),
        ("2", "%d"),
        ("3", "%I"),
        ("4", "%M"),
        ("5", "%S"),
    ];
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, chrono) in TOKENS {
            if let Some(after) = rest.strip_prefix(go) {
                out.push_str(chrono);
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nano: u32) -> u64 {
        chrono::Utc
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap() as u64
            + nano as u64
    }

    fn parse(layout_type: &str, layout: &str, value: Value) -> Result<u64, String> {
        let mut chain = build(&format!(
            "- {{type: time_parser, parse_from: attributes.t, layout_type: {layout_type}, layout: '{layout}'}}"
        ));
        let mut e = line("x");
        e.set_attribute("t", value);
        let e = one(&mut chain, e);
        match e.get(&field("attributes[\"weft.parse_error\"]")) {
            Some(Value::Str(err)) => Err(err.clone()),
            _ => Ok(e.timestamp),
        }
    }

    #[test]
    fn the_go_loggers_times_parse() {
        // zap production: float seconds.
        let t = parse("epoch", "s.us", Value::Double(1_764_757_730.123_456)).unwrap();
        assert!(
            t.abs_diff(at(2025, 12, 3, 10, 28, 50, 123_456_000)) < 1_000,
            "{t}"
        );
        // The same as a string keeps every digit.
        assert_eq!(
            parse("epoch", "s.ns", Value::Str("1764757730.123456789".into())),
            Ok(at(2025, 12, 3, 10, 28, 50, 123_456_789))
        );
        // zerolog: RFC 3339 (with Z or an offset), or Unix milliseconds.
        let rfc = "2006-01-02T15:04:05Z07:00";
        assert_eq!(
            parse("gotime", rfc, Value::Str("2025-12-03T10:28:50.5Z".into())),
            Ok(at(2025, 12, 3, 10, 28, 50, 500_000_000))
        );
        assert_eq!(
            parse(
                "gotime",
                rfc,
                Value::Str("2025-12-03T11:28:50+01:00".into())
            ),
            Ok(at(2025, 12, 3, 10, 28, 50, 0))
        );
        assert_eq!(
            parse("epoch", "ms", Value::Int(1_764_757_730_250)),
            Ok(at(2025, 12, 3, 10, 28, 50, 250_000_000))
        );
        // A custom Go layout and strptime.
        assert_eq!(
            parse(
                "gotime",
                "2006-01-02 15:04:05.000",
                Value::Str("2025-12-03 10:28:50.042".into())
            ),
            Ok(at(2025, 12, 3, 10, 28, 50, 42_000_000))
        );
        assert_eq!(
            parse(
                "strptime",
                "%Y-%m-%d %H:%M:%S.%L %z",
                Value::Str("2025-12-03 12:28:50.042 +0200".into())
            ),
            Ok(at(2025, 12, 3, 10, 28, 50, 42_000_000))
        );
    }

    #[test]
    fn bad_times_keep_the_entry_with_an_error() {
        let err = parse(
            "gotime",
            "2006-01-02T15:04:05Z07:00",
            Value::Str("yesterday".into()),
        )
        .unwrap_err();
        assert!(
            err.starts_with("time_parser: time \"yesterday\" is not RFC 3339"),
            "{err}"
        );
        assert!(parse("epoch", "s", Value::Str("12x".into())).is_err());
        assert!(parse("epoch", "ms", Value::Map(Default::default())).is_err());
    }

    #[test]
    fn bad_layouts_are_config_errors() {
        let p = problems("- {type: time_parser, parse_from: attributes.t, layout: '%Y %Q'}");
        assert!(
            p[0].contains("operators[0]::layout: layout \"%Y %Q\": unknown strptime directive %Q"),
            "{p:?}"
        );
        let p = problems(
            "- {type: time_parser, parse_from: attributes.t, layout_type: epoch, layout: minutes}",
        );
        assert!(p[0].contains("epoch layout \"minutes\""), "{p:?}");
        let p = problems(
            "- {type: time_parser, parse_from: attributes.t, layout: '%Y', location: Europe/Paris}",
        );
        assert!(
            p[0].contains("operators[0]::location: location \"Europe/Paris\" is not supported"),
            "{p:?}"
        );
    }
}
