//! `flatten`: lifts the keys of a map field up one level, as the Collector's `flatten`.
//!
//! ```yaml
//! - {type: flatten, field: attributes.context}   # attributes.context.user → attributes.user
//! ```
//!
//! The field must be below `body` or `attributes` (not a root). A field that is not a map is
//! an error (`on_error`).

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::entry::Root;
use super::{Entry, Field, OnError, Operator, OperatorConfig, OperatorContext, Outcome, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub field: Field,
    #[serde(default)]
    pub on_error: OnError,
}

impl OperatorConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.field.keys.is_empty() || self.field.root == Root::Resource {
            diags.error(
                &path.key("field"),
                format!(
                    "{}: flatten takes a map below body or attributes, e.g. attributes.context",
                    self.field
                ),
            );
        }
    }

    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(Flatten {
            field: self.field.clone(),
            errors: ctx.errors(self.on_error),
        }))
    }
}

struct Flatten {
    field: Field,
    errors: super::ErrorHandler,
}

impl Operator for Flatten {
    fn process(&mut self, mut entry: Entry) -> Outcome {
        match entry.get(&self.field) {
            Some(Value::Map(_)) => {}
            Some(other) => {
                let message = format!("{} is {}, not a map", self.field, other.type_name());
                return self.errors.fail(entry, &message);
            }
            None => {
                let message = format!("no field {} to flatten", self.field);
                return self.errors.fail(entry, &message);
            }
        }
        let Some(Value::Map(map)) = entry.delete(&self.field) else {
            unreachable!("checked above")
        };
        let parent = Field {
            root: self.field.root,
            keys: self.field.keys[..self.field.keys.len() - 1].to_vec(),
        };
        for (k, v) in map.0 {
            let mut f = parent.clone();
            f.keys.push(k);
            if let Err(e) = entry.set(&f, v) {
                return self.errors.fail(entry, &e);
            }
        }
        Outcome::Emit(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::Value;

    #[test]
    fn lifts_a_maps_keys() {
        let mut chain =
            build("- {type: json_parser}\n- {type: flatten, field: attributes.context}");
        let e = one(
            &mut chain,
            line(r#"{"context":{"user":"u1","cart":2},"msg":"m"}"#),
        );
        assert_eq!(
            e.get(&field("attributes.user")),
            Some(&Value::Str("u1".into()))
        );
        assert_eq!(e.get(&field("attributes.cart")), Some(&Value::Int(2)));
        assert_eq!(e.get(&field("attributes.context")), None);
        let p = problems("- {type: flatten, field: body}");
        assert!(p[0].contains("operators[0]::field"), "{p:?}");
    }
}
