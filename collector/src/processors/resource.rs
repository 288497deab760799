//! The `resource` processor, as the Collector's resourceprocessor: the
//! [`attributes`](super::attributes) processor's actions, on the attributes of each resource
//! (`service.name`, `deployment.environment`, the `k8s.*` labels of a pod).
//!
//! ```yaml
//! resource:
//!   attributes:
//!     - {key: deployment.environment, action: upsert, value: prod}
//!     - {key: k8s.pod.uid, action: delete}
//! ```
//!
//! A batch is decoded once and changed in place; the actions and their checks are those of
//! the `attributes` processor (`insert`, `update`, `upsert`, `delete`, `hash`, `extract`,
//! `convert`).

use std::sync::Arc;

use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

use super::attributes::{check_actions, ActionConfig, Actions, OnAttributes};
use crate::component::{BuildContext, Processor, ProcessorFactory, Stability};
use crate::ottl::items::OttlSignal;
use crate::pipeline::{Batch, Consumer};

/// `processors::resource`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The actions, run in order on each resource's attributes.
    pub attributes: Vec<ActionConfig>,
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        check_actions(&self.attributes, &path.key("attributes"), diags);
    }
}

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "resource",
        Stability::Beta,
        "inserts, updates, deletes, hashes, extracts and converts resource attributes",
    )
    .signal::<ExportTraceServiceRequest, Config>(build::<ExportTraceServiceRequest>)
    .signal::<ExportLogsServiceRequest, Config>(build::<ExportLogsServiceRequest>)
}

fn build<S: OttlSignal>(
    _ctx: BuildContext,
    cfg: &Config,
    next: Arc<dyn Consumer<Batch<S>>>,
) -> anyhow::Result<Arc<dyn Processor<Batch<S>>>> {
    Ok(Arc::new(OnAttributes::on_resources(
        Actions::new(&cfg.attributes)?,
        next,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::testutil::{config, logs, Recorder};
    use crate::telemetry::Telemetry;
    use weft_config::Kind;

    #[tokio::test]
    async fn actions_change_each_resource_once() {
        let (cfg, diags) = config::<Config>(
            "processors::resource",
            r#"
attributes:
  - {key: deployment.environment, action: upsert, value: prod}
  - {key: service.name, action: update, value: renamed}
  - {key: team, action: insert, from_attribute: service.name}
"#,
        );
        assert!(diags.is_empty(), "{diags:#?}");
        let sink = Recorder::new();
        let ctx =
            BuildContext::standalone("resource", Kind::Processor).with_telemetry(&Telemetry::new());
        let p = build::<ExportLogsServiceRequest>(ctx, &cfg.unwrap(), sink.clone()).unwrap();
        p.consume(logs("checkout", &["a", "b"])).await.unwrap();
        let batches = sink.batches.lock();
        let request = crate::pipeline::Payload::request(&batches[0]);
        let attrs = &request.resource_logs[0]
            .resource
            .as_ref()
            .unwrap()
            .attributes;
        let text: Vec<(String, String)> = attrs
            .iter()
            .map(|kv| {
                let v = crate::ottl::Value::from_any(kv.value.as_ref())
                    .to_string_like()
                    .unwrap()
                    .unwrap()
                    .into_owned();
                (kv.key.clone(), v)
            })
            .collect();
        assert_eq!(
            text,
            [
                ("service.name".to_string(), "renamed".to_string()),
                ("deployment.environment".to_string(), "prod".to_string()),
                ("team".to_string(), "renamed".to_string()),
            ]
        );
        // The records' own attributes are left alone.
        assert!(request.resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .is_empty());
    }

    #[test]
    fn the_actions_are_checked_with_their_path() {
        let (_, diags) = config::<Config>(
            "processors::resource",
            "attributes: [{key: a, action: upsert}]",
        );
        assert_eq!(
            diags,
            ["error: processors::resource::attributes[0]: action \"upsert\" needs a value or from_attribute"]
        );
        let (_, diags) = config::<Config>("processors::resource", "actions: []");
        assert!(diags[0].contains("unknown field"), "{diags:?}");
    }
}
