//! `trace_parser`: reads a record's trace context from fields, as the Collector's
//! `trace_parser` (also embedded in parsers as `trace:`).
//!
//! ```yaml
//! - type: trace_parser
//!   trace_id: {parse_from: attributes.trace_id}        # the defaults
//!   span_id: {parse_from: attributes.span_id}
//!   trace_flags: {parse_from: attributes.trace_flags}
//! ```
//!
//! Ids are hex (32 and 16 digits); a field that is absent is not an error (a line logged
//! outside any span has no ids), one that is present but not a valid id is: the entry keeps
//! no id (it then passes the tail-sampling window as a log without a trace) and gets the
//! operator's `on_error` treatment. An all-zero id is invalid, as in OTLP.

use serde::Deserialize;

use super::{Entry, Field, OnError, Operator, OperatorConfig, OperatorContext, Outcome, Value};

/// `{parse_from: <field>}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct From {
    pub parse_from: Field,
}

/// The settings shared by `trace_parser` and a parser's `trace:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSettings {
    #[serde(default)]
    pub trace_id: Option<From>,
    #[serde(default)]
    pub span_id: Option<From>,
    #[serde(default)]
    pub trace_flags: Option<From>,
}

/// `trace_parser`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub trace_id: Option<From>,
    #[serde(default)]
    pub span_id: Option<From>,
    #[serde(default)]
    pub trace_flags: Option<From>,
    #[serde(default)]
    pub on_error: OnError,
}

impl OperatorConfig for Config {
    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(Running {
            parser: TraceParser::new(&TraceSettings {
                trace_id: self.trace_id.clone(),
                span_id: self.span_id.clone(),
                trace_flags: self.trace_flags.clone(),
            }),
            errors: ctx.errors(self.on_error),
        }))
    }
}

struct Running {
    parser: TraceParser,
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

/// The fields trace context is read from.
#[derive(Clone, Debug)]
pub struct TraceParser {
    trace_id: Field,
    span_id: Field,
    trace_flags: Field,
}

impl TraceParser {
    pub fn new(s: &TraceSettings) -> Self {
        let pick = |f: &Option<From>, default: &str| {
            f.as_ref()
                .map(|f| f.parse_from.clone())
                .unwrap_or_else(|| Field::attribute(default))
        };
        Self {
            trace_id: pick(&s.trace_id, "trace_id"),
            span_id: pick(&s.span_id, "span_id"),
            trace_flags: pick(&s.trace_flags, "trace_flags"),
        }
    }

    /// Sets what is present and valid; reports every invalid field in one message.
    pub fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(v) = entry.get(&self.trace_id) {
            match hex_id::<16>(v) {
                Ok(id) => entry.trace_id = id.to_vec(),
                Err(e) => problems.push(format!("trace id {e}")),
            }
        }
        if let Some(v) = entry.get(&self.span_id) {
            match hex_id::<8>(v) {
                Ok(id) => entry.span_id = id.to_vec(),
                Err(e) => problems.push(format!("span id {e}")),
            }
        }
        if let Some(v) = entry.get(&self.trace_flags) {
            let flags = match v {
                Value::Int(i) => u8::try_from(*i).ok(),
                Value::Str(s) => u8::from_str_radix(s, 16).ok(),
                _ => None,
            };
            match flags {
                Some(f) => entry.trace_flags = f as u32,
                None => problems.push(format!("trace flags {v:?} are not a byte in hex")),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

fn hex_id<const N: usize>(v: &Value) -> Result<[u8; N], String> {
    let Value::Str(s) = v else {
        return Err(format!(
            "is {}, expected {} hex digits",
            v.type_name(),
            N * 2
        ));
    };
    let mut out = [0u8; N];
    if s.len() != N * 2 || hex::decode_to_slice(s, &mut out).is_err() {
        let shown: String = s.chars().take(64).collect();
        return Err(format!("{shown:?} is not {} hex digits", N * 2));
    }
    if out.iter().all(|b| *b == 0) {
        return Err(format!("{s:?} is all zeros (invalid in OTLP)"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn ids_are_read_from_the_default_fields_and_bad_ones_are_errors() {
        let mut chain = build("- {type: trace_parser}");
        let mut e = line("x");
        e.set_attribute(
            "trace_id",
            Value::Str("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        );
        e.set_attribute("span_id", Value::Str("00f067aa0ba902b7".into()));
        e.set_attribute("trace_flags", Value::Str("01".into()));
        let e = one(&mut chain, e);
        assert_eq!(hex::encode(&e.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(&e.span_id), "00f067aa0ba902b7");
        assert_eq!(e.trace_flags, 1);

        // No ids: nothing to do, no error.
        let e = one(&mut chain, line("plain"));
        assert!(
            e.trace_id.is_empty() && e.get(&field("attributes[\"weft.parse_error\"]")).is_none()
        );

        let mut bad = line("x");
        bad.set_attribute("trace_id", Value::Str("not-hex".into()));
        bad.set_attribute("span_id", Value::Str("0000000000000000".into()));
        let e = one(&mut chain, bad);
        assert!(e.trace_id.is_empty() && e.span_id.is_empty());
        let Some(Value::Str(err)) = e.get(&field("attributes[\"weft.parse_error\"]")) else {
            panic!("{e:?}")
        };
        assert!(
            err.contains("trace id \"not-hex\" is not 32 hex digits"),
            "{err}"
        );
        assert!(
            err.contains("span id \"0000000000000000\" is all zeros"),
            "{err}"
        );
    }

    #[test]
    fn custom_fields() {
        let mut chain = build(
            "- {type: trace_parser, trace_id: {parse_from: body.tid}, span_id: {parse_from: body.sid}}",
        );
        let mut e = line("x");
        e.body = serde_json::from_str(
            r#"{"tid":"4bf92f3577b34da6a3ce929d0e0e4736","sid":"00f067aa0ba902b7"}"#,
        )
        .unwrap();
        let e = one(&mut chain, e);
        assert_eq!(e.trace_id.len(), 16);
        assert_eq!(e.span_id.len(), 8);
    }
}
