//! PLACEHOLDER until the receiver lands.
use crate::component::{ReceiverFactory, Stability};
use serde::Deserialize;
use weft_config::{ComponentConfig, Signal};
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {}
impl ComponentConfig for OtlpReceiverConfig {}
pub fn factory() -> ReceiverFactory {
    ReceiverFactory::new::<OtlpReceiverConfig>(
        "otlp",
        Stability::Development,
        &[Signal::Traces, Signal::Logs],
        "placeholder",
        |_, _, _| anyhow::bail!("placeholder"),
    )
}
