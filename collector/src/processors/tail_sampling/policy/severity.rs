//! Log severities as Weft reads them: names (`ERROR`, `warn`, `WARNING`…) and numbers, for
//! the `log_severity` policy and the processor's `keep_logs_at_or_above`.

use serde::Deserialize;
use weft_proto::logs::v1::LogRecord;

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

/// A severity as written in YAML: a name (`ERROR`, `warn`, …) or a number from 1 to 24.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SeverityValue {
    Number(i64),
    Name(String),
}

impl SeverityValue {
    /// The severity number, or what is wrong with the value.
    pub fn resolve(&self) -> Result<i32, String> {
        match self {
            SeverityValue::Number(n) if (1..=24).contains(n) => Ok(*n as i32),
            SeverityValue::Number(n) => Err(format!(
                "invalid severity {n}: expected a number from 1 to 24 or a name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)"
            )),
            SeverityValue::Name(name) => severity_from_str(name).ok_or_else(|| {
                format!("invalid severity {name:?}: expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL (any case), or a number from 1 to 24")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
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
}
