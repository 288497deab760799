//! `remove`: deletes a field, as the Collector's `remove` operator.
//!
//! ```yaml
//! - {type: remove, field: attributes.caller}
//! ```
//!
//! A missing field is an error (`on_error`), as in the Collector; `on_error: send_quiet`
//! makes it silent.

use serde::Deserialize;

use super::{Entry, Field, OnError, Operator, OperatorConfig, OperatorContext, Outcome};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub field: Field,
    #[serde(default)]
    pub on_error: OnError,
}

impl OperatorConfig for Config {
    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(Remove {
            field: self.field.clone(),
            errors: ctx.errors(self.on_error),
        }))
    }
}

struct Remove {
    field: Field,
    errors: super::ErrorHandler,
}

impl Operator for Remove {
    fn process(&mut self, mut entry: Entry) -> Outcome {
        if entry.delete(&self.field).is_none() {
            let message = format!("no field {} to remove", self.field);
            return self.errors.fail(entry, &message);
        }
        Outcome::Emit(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::Value;

    #[test]
    fn removes_a_field() {
        let mut chain = build("- {type: remove, field: attributes.caller, on_error: send_quiet}");
        let mut e = line("x");
        e.set_attribute("caller", Value::Str("main.go:1".into()));
        e.set_attribute("keep", Value::Int(1));
        let e = one(&mut chain, e);
        assert_eq!(e.get(&field("attributes.caller")), None);
        assert_eq!(e.get(&field("attributes.keep")), Some(&Value::Int(1)));
    }
}
