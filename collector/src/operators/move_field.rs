//! `move`: moves a field to another place, as the Collector's `move` operator (the module is
//! `move_field` because `move` is a Rust keyword).
//!
//! ```yaml
//! - {type: move, from: attributes.msg, to: body}
//! ```
//!
//! A missing `from` is an error (`on_error`), as in the Collector.

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::{Entry, Field, OnError, Operator, OperatorConfig, OperatorContext, Outcome};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub from: Field,
    pub to: Field,
    #[serde(default)]
    pub on_error: OnError,
}

impl OperatorConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.from.contains(&self.to) || self.to.contains(&self.from) {
            diags.error(
                &path.key("to"),
                format!("cannot move {} into or out of itself", self.from),
            );
        }
    }

    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(Move {
            from: self.from.clone(),
            to: self.to.clone(),
            errors: ctx.errors(self.on_error),
        }))
    }
}

struct Move {
    from: Field,
    to: Field,
    errors: super::ErrorHandler,
}

impl Operator for Move {
    fn process(&mut self, mut entry: Entry) -> Outcome {
        let Some(value) = entry.delete(&self.from) else {
            let message = format!("no field {} to move", self.from);
            return self.errors.fail(entry, &message);
        };
        match entry.set(&self.to, value) {
            Ok(()) => Outcome::Emit(entry),
            Err(e) => self.errors.fail(entry, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::Value;

    #[test]
    fn moves_a_field_and_reports_a_missing_one() {
        let mut chain = build("- {type: move, from: attributes.msg, to: body}");
        let mut e = line("raw");
        e.set_attribute("msg", Value::Str("hello".into()));
        let e = one(&mut chain, e);
        assert_eq!(e.body, Value::Str("hello".into()));
        assert_eq!(e.get(&field("attributes.msg")), None);
        let e = one(&mut chain, line("raw"));
        assert_eq!(e.body, Value::Str("raw".into()));
        assert!(e.get(&field("attributes[\"weft.parse_error\"]")).is_some());
        let p = problems("- {type: move, from: body, to: body.x}");
        assert!(
            p[0].contains("operators[0]::to: cannot move body into or out of itself"),
            "{p:?}"
        );
    }
}
