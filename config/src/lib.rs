//! Weft's configuration, in the OpenTelemetry Collector's layout.
//!
//! Reading a configuration has three stages, and only the last one touches the world:
//! 1. [`parse_document`]: YAML → layout, `${env:…}` expansion, references between ids;
//! 2. each component's factory decodes its own section with [`decode_component`]
//!    (strict: unknown keys are errors) and runs [`ComponentConfig::validate`];
//! 3. building the running service (in the `weft` crate).
//!
//! Stages 1 and 2 never stop at the first problem: everything found goes into one
//! [`Diagnostics`], each entry with its path, and `weft validate` prints them all.

mod diagnostics;
mod expand;
mod model;
mod types;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

pub use diagnostics::{ConfigPath, Diagnostic, Diagnostics, InvalidConfig, Severity};
pub use expand::{expand_document, EnvLookup, ProcessEnv};
pub use model::{
    parse_document, ComponentId, ComponentSection, Document, Kind, LogEncoding, LogLevel,
    LogsTelemetry, MetricsLevel, MetricsTelemetry, Pipeline, PipelineId, PipelineList, SignalKind,
    TelemetryConfig,
};
pub use types::{ByteSize, Duration, Endpoint};

/// A component's configuration type. It is its own schema: `Deserialize` with
/// `#[serde(deny_unknown_fields, default)]` gives strict parsing with the Collector's
/// defaults, and `validate` checks what types cannot express (ranges, combinations).
///
/// It also describes what the configured component will be, for checks that span
/// components (the service asks these instead of matching type names): which extensions it
/// uses ([`ComponentConfig::extension_references`]), whether data it acknowledged can sit
/// in memory ([`ComponentConfig::holds_data`]), which pipelines a connector sends to
/// ([`ComponentConfig::pipeline_references`]) and whether a processor's output is meant for a
/// connector ([`ComponentConfig::expects_connector_after`]).
pub trait ComponentConfig: DeserializeOwned + Default + Debug + Send + Sync + 'static {
    /// Pushes every problem found; `path` is the component's own section.
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        let _ = (path, diags);
    }

    /// Pushes the problems of this configuration in a pipeline of `signal`: a setting that
    /// means nothing for that signal (the `loadbalancing` exporter's `routing_key: traceID`
    /// listed in a metrics pipeline). Called once per signal of the pipelines listing the
    /// component, after [`ComponentConfig::validate`]; `path` is the component's own section.
    fn validate_signal(&self, signal: SignalKind, path: &ConfigPath, diags: &mut Diagnostics) {
        let _ = (signal, path, diags);
    }

    /// Every extension id this component names, with the path of the key that names it
    /// (under `path`, the component's section), e.g. `sending_queue::storage`. The service
    /// checks each is defined and listed in `service::extensions`.
    fn extension_references(&self, path: &ConfigPath) -> Vec<ExtensionReference> {
        let _ = path;
        Vec::new()
    }

    /// Whether data the component took responsibility for can be lost in a crash.
    fn holds_data(&self) -> DataHolding {
        DataHolding::Nothing
    }

    /// For a connector that chooses where data goes (`routing`): every pipeline id its
    /// configuration names, each with the path of the key that names it. The service checks
    /// that each exists, lists the connector under its `receivers`, and has a signal the
    /// connector can feed; and warns about pipelines that receive from the connector but are
    /// never named (they would get nothing). `None` (the default) means the connector feeds
    /// every pipeline that lists it (`forward`).
    fn pipeline_references(&self, path: &ConfigPath) -> Option<Vec<PipelineReference>> {
        let _ = path;
        None
    }

    /// For a processor whose output is meant to be split by a connector after it (`schema`
    /// with `action: route` tags invalid records for a `routing` connector): why, said in a
    /// warning when a pipeline lists the processor but exports to no connector.
    fn expects_connector_after(&self) -> Option<String> {
        None
    }
}

/// A pipeline id named inside a connector's section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineReference {
    /// The key that names it, e.g. `connectors::routing::table[1]::pipelines[0]`.
    pub path: ConfigPath,
    /// As written; one that is not a pipeline id is reported by the service.
    pub id: String,
    /// The signals the naming key can send (a route in the `log` context feeds logs only);
    /// `None`: whatever the connector connects.
    pub signals: Option<Vec<SignalKind>>,
}

/// An extension id named inside a component's section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionReference {
    /// The key that names it, e.g. `exporters::otlp::sending_queue::storage`.
    pub path: ConfigPath,
    /// As written; a value that is not an id is left to the component's own validation.
    pub id: String,
}

impl ExtensionReference {
    pub fn new(path: ConfigPath, id: impl Into<String>) -> Self {
        Self {
            path,
            id: id.into(),
        }
    }
}

/// Where a component keeps data it acknowledged and has not yet handed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataHolding {
    /// Nothing: it passes data on before answering (or drops it by policy).
    Nothing,
    /// In memory: a crash loses what it holds. `remedy` says how to make it durable or
    /// stop it holding data, for the warning that names it.
    Memory { remedy: &'static str },
    /// On disk before it answers (a durable window, a persistent queue).
    Durable,
}

/// Decodes and validates one component section. An empty section (`otlp:`) is the defaults.
pub fn decode_component<T: ComponentConfig>(
    value: &Value,
    path: &ConfigPath,
    diags: &mut Diagnostics,
) -> Option<T> {
    let config = if value.is_null() {
        T::default()
    } else {
        decode_with_path::<T>(value, path, diags)?
    };
    config.validate(path, diags);
    Some(config)
}

/// Deserializes `value` into `T`, reporting a failure with the full path of the offending key.
pub fn decode_with_path<T: DeserializeOwned>(
    value: &Value,
    path: &ConfigPath,
    diags: &mut Diagnostics,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value.clone()) {
        Ok(v) => Some(v),
        Err(err) => {
            let inner = err.inner().to_string();
            let message = inner.replace('`', "\"");
            let mut full = path.clone();
            let segments: Vec<String> = err
                .path()
                .iter()
                .map(|s| s.to_string())
                .filter(|s| s != "?")
                .collect();
            // serde_path_to_error ends the path of an unknown field with the field itself;
            // the Collector names the mapping that holds it, which is where the fix goes.
            let unknown = unknown_field_name(&message);
            for (i, segment) in segments.iter().enumerate() {
                let last = i + 1 == segments.len();
                if last && unknown.as_deref() == Some(segment.as_str()) {
                    break;
                }
                full = match segment.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                    Some(idx) => match idx.parse::<usize>() {
                        Ok(n) => full.index(n),
                        Err(_) => full.key(segment.clone()),
                    },
                    None => full.key(segment.clone()),
                };
            }
            diags.error(&full, message);
            None
        }
    }
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field \"")?;
    Some(rest.split('"').next()?.to_string())
}

/// For optional sub-sections that switch a feature on by being present, as the Collector's
/// `protocols: { grpc: }` does: a present key with an empty (null) value means "on, with
/// defaults"; an absent key (through `#[serde(default)]`) means off.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

/// Reads a whole configuration: layout, then every component section through `decode`.
/// `decode` is the registry's hook: given a section, it decodes the component's typed config
/// (or reports why it cannot, e.g. an unknown type) and returns it.
pub fn load<C>(
    text: &str,
    env: &dyn EnvLookup,
    mut decode: impl FnMut(Kind, &ComponentSection, &mut Diagnostics) -> Option<C>,
) -> (Document, Vec<(Kind, ComponentId, C)>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let doc = parse_document(text, env, &mut diags);
    let mut decoded = Vec::new();
    for kind in Kind::ALL {
        for section in doc.sections(kind) {
            if let Some(c) = decode(kind, section, &mut diags) {
                decoded.push((kind, section.id.clone(), c));
            }
        }
    }
    (doc, decoded, diags)
}

#[cfg(test)]
mod tests;
