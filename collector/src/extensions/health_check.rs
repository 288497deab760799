//! PLACEHOLDER
use crate::component::{ExtensionFactory, Stability};
use serde::Deserialize;
use weft_config::ComponentConfig;
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
impl ComponentConfig for Config {}
pub fn factory() -> ExtensionFactory {
    ExtensionFactory::new::<Config>(
        "health_check",
        Stability::Development,
        "placeholder",
        |_, _| anyhow::bail!("placeholder"),
    )
}
