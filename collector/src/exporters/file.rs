//! PLACEHOLDER
use crate::component::{ExporterFactory, Stability};
use serde::Deserialize;
use weft_config::ComponentConfig;
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
impl ComponentConfig for Config {}
pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>("file", Stability::Development, "placeholder", |_, _, _| {
        anyhow::bail!("placeholder")
    })
}
