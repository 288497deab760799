//! What a component that redacts telemetry (a `redaction` processor, as the Collector's)
//! shares with the views of the data inside Weft, so they show values through the same
//! rules as export.
//!
//! The status page (`weft_status`) shows spans and logs as the `tail_sampling` window holds
//! them, which is before any processor after the window redacts them. So a redacting
//! component registers its rules here when it is built ([`register`]), and the page applies
//! every registered [`Redact`] to each attribute list and log body it shows ([`apply`]). A
//! view that shows data asks [`registered`] at render time: processors are built before any
//! extension starts serving, so every rule of the configuration is there.

use std::sync::Arc;

use weft_config::ComponentId;
use weft_proto::common::v1::{AnyValue, KeyValue};

use crate::component::SharedInstances;

/// Redaction rules, applied in place as the component applies them before export.
pub trait Redact: Send + Sync {
    /// Redacts an attribute list (of a resource, scope, span, span event or log record):
    /// removes, masks or hashes what the rules say.
    fn redact_attributes(&self, attributes: &mut Vec<KeyValue>);

    /// Redacts a log body. Rules that only look at attributes keep the default.
    fn redact_body(&self, body: &mut AnyValue) {
        let _ = body;
    }
}

/// The registered form: a concrete type, so [`SharedInstances`] can find it.
struct Registered(Arc<dyn Redact>);

/// Shared instances are keyed by component id; the prefix keeps these apart from the
/// component's own instance.
fn key(id: &ComponentId) -> ComponentId {
    ComponentId::new(format!("redaction_{}", id.type_name), id.name.as_deref())
}

/// Makes `rules` (of component `id`) apply to every view of the data. Registering the same
/// id twice keeps the first (a processor listed in two pipelines is built twice, with the
/// same rules).
pub fn register(shared: &SharedInstances, id: &ComponentId, rules: Arc<dyn Redact>) {
    // Only fails when another type sits under the key, which the prefix rules out.
    let _ = shared.get_or_try_insert(&key(id), || Ok(Arc::new(Registered(rules))));
}

/// Every registered rule set.
pub fn registered(shared: &SharedInstances) -> Vec<Arc<dyn Redact>> {
    shared
        .all::<Registered>()
        .into_iter()
        .map(|(_, r)| r.0.clone())
        .collect()
}

/// Applies every rule set to `attributes`.
pub fn apply(rules: &[Arc<dyn Redact>], attributes: &mut Vec<KeyValue>) {
    for r in rules {
        r.redact_attributes(attributes);
    }
}

/// Applies every rule set to a log body.
pub fn apply_body(rules: &[Arc<dyn Redact>], body: &mut AnyValue) {
    for r in rules {
        r.redact_body(body);
    }
}

#[cfg(test)]
mod tests {
    use weft_proto::common::v1::any_value::Value;

    use super::*;

    struct Mask(&'static str);

    impl Redact for Mask {
        fn redact_attributes(&self, attributes: &mut Vec<KeyValue>) {
            for kv in attributes.iter_mut().filter(|kv| kv.key == self.0) {
                kv.value = Some(AnyValue {
                    value: Some(Value::StringValue("****".into())),
                });
            }
        }
    }

    #[test]
    fn every_registered_rule_set_applies() {
        let shared = SharedInstances::default();
        assert!(registered(&shared).is_empty());
        register(
            &shared,
            &"redaction".parse().unwrap(),
            Arc::new(Mask("phone")),
        );
        register(
            &shared,
            &"redaction/b".parse().unwrap(),
            Arc::new(Mask("card")),
        );
        // A second registration under the same id keeps the first.
        register(
            &shared,
            &"redaction".parse().unwrap(),
            Arc::new(Mask("other")),
        );
        let rules = registered(&shared);
        assert_eq!(rules.len(), 2);
        let kv = |k: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue("secret".into())),
            }),
            ..Default::default()
        };
        let mut attributes = vec![kv("phone"), kv("card"), kv("other")];
        apply(&rules, &mut attributes);
        let shown: Vec<_> = attributes
            .iter()
            .map(|a| match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(shown, ["****", "****", "secret"]);
    }
}
