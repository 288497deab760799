//! The one place where component types are registered. Adding a component is one module and
//! one line here.

use weft_config::{ComponentSection, Diagnostics, Kind};

use crate::component::{
    AnyConfig, ConnectorFactory, ExporterFactory, ExtensionFactory, FactoryInfo, ProcessorFactory,
    ReceiverFactory,
};
use crate::{connectors, exporters, extensions, processors, receivers};

pub struct Registry {
    pub receivers: Vec<ReceiverFactory>,
    pub processors: Vec<ProcessorFactory>,
    pub exporters: Vec<ExporterFactory>,
    pub connectors: Vec<ConnectorFactory>,
    pub extensions: Vec<ExtensionFactory>,
}

impl Registry {
    /// Every component built into this binary.
    pub fn builtin() -> Self {
        Self {
            receivers: vec![
                receivers::otlp::factory(),
                receivers::kafka::factory(),
                receivers::filelog::factory(),
            ],
            processors: vec![
                processors::attributes::factory(),
                processors::batch::factory(),
                processors::filter::factory(),
                processors::memory_limiter::factory(),
                processors::redaction::factory(),
                processors::resource::factory(),
                processors::schema::factory(),
                processors::tail_sampling::factory(),
                processors::transform::factory(),
            ],
            exporters: vec![
                exporters::otlp::factory(),
                exporters::otlphttp::factory(),
                exporters::debug::factory(),
                exporters::file::factory(),
                exporters::elasticsearch::factory(),
                exporters::prometheus::factory(),
                exporters::loadbalancing::factory(),
                exporters::loadbalancing::factory_load_balancing(),
                exporters::kafka::factory(),
            ],
            connectors: vec![
                connectors::forward::factory(),
                connectors::spanmetrics::factory(),
                connectors::samplingmetrics::factory(),
                connectors::routing::factory(),
            ],
            extensions: vec![
                extensions::bearertokenauth::factory(),
                extensions::file_storage::factory(),
                extensions::health_check::factory(),
                extensions::weft_status::factory(),
            ],
        }
    }

    pub fn receiver(&self, type_name: &str) -> Option<&ReceiverFactory> {
        self.receivers
            .iter()
            .find(|f| f.info.type_name == type_name)
    }
    pub fn processor(&self, type_name: &str) -> Option<&ProcessorFactory> {
        self.processors
            .iter()
            .find(|f| f.info.type_name == type_name)
    }
    pub fn exporter(&self, type_name: &str) -> Option<&ExporterFactory> {
        self.exporters
            .iter()
            .find(|f| f.info.type_name == type_name)
    }
    pub fn connector(&self, type_name: &str) -> Option<&ConnectorFactory> {
        self.connectors
            .iter()
            .find(|f| f.info.type_name == type_name)
    }
    pub fn extension(&self, type_name: &str) -> Option<&ExtensionFactory> {
        self.extensions
            .iter()
            .find(|f| f.info.type_name == type_name)
    }

    /// The shared description of the factory for `kind`/`type_name`.
    pub fn info(&self, kind: Kind, type_name: &str) -> Option<&FactoryInfo> {
        match kind {
            Kind::Receiver => self.receiver(type_name).map(|f| &f.info),
            Kind::Processor => self.processor(type_name).map(|f| &f.info),
            Kind::Exporter => self.exporter(type_name).map(|f| &f.info),
            Kind::Connector => self.connector(type_name).map(|f| &f.info),
            Kind::Extension => self.extension(type_name).map(|f| &f.info),
        }
    }

    /// Every factory of one kind, for `weft components`.
    pub fn infos(&self, kind: Kind) -> Vec<&FactoryInfo> {
        match kind {
            Kind::Receiver => self.receivers.iter().map(|f| &f.info).collect(),
            Kind::Processor => self.processors.iter().map(|f| &f.info).collect(),
            Kind::Exporter => self.exporters.iter().map(|f| &f.info).collect(),
            Kind::Connector => self.connectors.iter().map(|f| &f.info).collect(),
            Kind::Extension => self.extensions.iter().map(|f| &f.info).collect(),
        }
    }

    /// Decodes one component section with its factory, or reports an unknown type.
    pub fn decode(
        &self,
        kind: Kind,
        section: &ComponentSection,
        diags: &mut Diagnostics,
    ) -> Option<AnyConfig> {
        let type_name = section.id.type_name.as_str();
        match self.info(kind, type_name) {
            Some(info) => info.decode(&section.value, &section.path, diags),
            None => {
                let known: Vec<String> = self
                    .infos(kind)
                    .iter()
                    .map(|i| format!("\"{}\"", i.type_name))
                    .collect();
                diags.error(
                    &section.path,
                    format!(
                        "unknown {} type \"{type_name}\", expected one of {}",
                        kind.singular(),
                        known.join(", ")
                    ),
                );
                None
            }
        }
    }
}
