//! `add`: sets a field to a fixed value, as the Collector's `add` operator.
//!
//! ```yaml
//! - {type: add, field: resource["deployment.environment"], value: prod}
//! - {type: add, field: attributes.tags, value: [a, b]}
//! ```
//!
//! `value` may be any YAML value (scalars, lists, maps). The Collector's `EXPR(...)` values
//! are not supported and are refused by `weft validate`.

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::{Entry, Field, OnError, Operator, OperatorConfig, OperatorContext, Outcome, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub field: Field,
    pub value: serde_yaml::Value,
    #[serde(default)]
    pub on_error: OnError,
}

impl OperatorConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if let serde_yaml::Value::String(s) = &self.value {
            if s.starts_with("EXPR(") {
                diags.error(
                    &path.key("value"),
                    "EXPR(...) values are not supported yet: write the value itself",
                );
            }
        }
    }

    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(Add {
            field: self.field.clone(),
            value: Value::from_yaml(&self.value),
            errors: ctx.errors(self.on_error),
        }))
    }
}

struct Add {
    field: Field,
    value: Value,
    errors: super::ErrorHandler,
}

impl Operator for Add {
    fn process(&mut self, mut entry: Entry) -> Outcome {
        match entry.set(&self.field, self.value.clone()) {
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
    fn adds_scalars_lists_and_refuses_expressions() {
        let mut chain = build(r#"- {type: add, field: 'resource["env"]', value: [a, 1]}"#);
        let e = one(&mut chain, line("x"));
        assert_eq!(
            e.get(&field("resource.env")),
            Some(&Value::Array(vec![Value::Str("a".into()), Value::Int(1)]))
        );
        let p = problems("- {type: add, field: attributes.x, value: 'EXPR(body)'}");
        assert!(p[0].contains("operators[0]::value: EXPR"), "{p:?}");
    }
}
