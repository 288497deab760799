//! The `forward` connector, as the Collector's forwardconnector: hands every batch from the
//! pipelines that export to it to every pipeline that receives from it, unchanged, for any
//! signal. It joins pipelines (several `traces/*` feeding one) and splits them (one feeding
//! several with different processors).
//!
//! It holds nothing: a batch is taken only once every target pipeline took it, and a refusal
//! from any of them goes back to the sender (the [`Fanout`] rule: the pipelines that did take
//! it may see it again when the sender retries).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use weft_config::ComponentConfig;

use crate::component::{
    BuildContext, Component, ConnectorFactory, ConnectorTargets, GenericConnector, Processor,
    Stability,
};
use crate::pipeline::{ConsumeError, Consumer, Fanout, Payload};

/// `connectors::forward`: no settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {}

impl ComponentConfig for ForwardConfig {}

pub fn factory() -> ConnectorFactory {
    ConnectorFactory::new::<ForwardConfig>(
        "forward",
        Stability::Beta,
        "passes data unchanged from the pipelines exporting to it to the pipelines receiving from it",
    )
    .every_signal::<ForwardConfig, ForwardBuild>()
}

/// The connector for one signal: a fan-out over its target pipelines.
pub struct Forward<T> {
    next: Arc<dyn Consumer<T>>,
}

/// Builds a [`Forward`] for each signal.
pub struct ForwardBuild;

impl GenericConnector<ForwardConfig> for ForwardBuild {
    fn build<T: Payload>(
        _ctx: BuildContext,
        _cfg: &ForwardConfig,
        targets: ConnectorTargets<T>,
    ) -> anyhow::Result<Arc<dyn Processor<T>>> {
        let next = Fanout::of(targets.into_iter().map(|(_, c)| c).collect());
        Ok(Arc::new(Forward { next }))
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for Forward<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        self.next.consume(data).await
    }
}

impl<T: Payload> Component for Forward<T> {}
