//! PLACEHOLDER
use crate::component::{ProcessorFactory, Stability};
use serde::Deserialize;
use weft_config::ComponentConfig;
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
impl ComponentConfig for Config {}
pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "batch",
        Stability::Development,
        "placeholder",
        |_, _, _| anyhow::bail!("placeholder"),
        |_, _, _| anyhow::bail!("placeholder"),
    )
}
