//! `copy`: copies a field to another place, as the Collector's `copy` operator.
//!
//! ```yaml
//! - {type: copy, from: attributes.service, to: resource["service.name"]}
//! ```

use serde::Deserialize;

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
    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        Ok(Box::new(Copy {
            from: self.from.clone(),
            to: self.to.clone(),
            errors: ctx.errors(self.on_error),
        }))
    }
}

struct Copy {
    from: Field,
    to: Field,
    errors: super::ErrorHandler,
}

impl Operator for Copy {
    fn process(&mut self, mut entry: Entry) -> Outcome {
        let Some(value) = entry.get(&self.from).cloned() else {
            let message = format!("no field {} to copy", self.from);
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
    fn copies_into_the_resource() {
        let mut chain =
            build(r#"- {type: copy, from: attributes.service, to: 'resource["service.name"]'}"#);
        let mut e = line("x");
        e.set_attribute("service", Value::Str("checkout".into()));
        let e = one(&mut chain, e);
        assert_eq!(
            e.get(&field("resource[\"service.name\"]")),
            Some(&Value::Str("checkout".into()))
        );
        assert_eq!(
            e.get(&field("attributes.service")),
            Some(&Value::Str("checkout".into()))
        );
    }
}
