//! Connectors: components that are an exporter of one pipeline and a receiver of another
//! (the Collector's `connectors:` section). A connector id is listed under the `exporters`
//! of the pipelines it takes data from and the `receivers` of the pipelines it feeds.
pub mod forward;
pub mod routing;
pub mod samplingmetrics;
pub mod spanmetrics;
