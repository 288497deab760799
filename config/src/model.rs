//! The document in the OpenTelemetry Collector's layout:
//!
//! ```yaml
//! receivers:  { <type>[/<name>]: <component config> }
//! processors: { ... }
//! exporters:  { ... }
//! extensions: { ... }
//! service:
//!   extensions: [ <id> ]
//!   pipelines:
//!     <traces|logs>[/<name>]: { receivers: [..], processors: [..], exporters: [..] }
//!   telemetry:
//!     logs:    { level: info, encoding: text }
//!     metrics: { address: localhost:8888 }
//! ```
//!
//! This module reads the layout and checks what only needs ids (references, unused
//! components, empty pipelines). Each component's own section is left as YAML for the
//! component's factory to decode (see [`crate::decode_component`]).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::diagnostics::{ConfigPath, Diagnostics};
use crate::expand::{expand_document, EnvLookup};
use crate::types::Endpoint;
use crate::{decode_with_path, present};

/// The four kinds of component a configuration defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Receiver,
    Processor,
    Exporter,
    Extension,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Receiver,
        Kind::Processor,
        Kind::Exporter,
        Kind::Extension,
    ];

    /// The top-level section that defines components of this kind.
    pub fn section(self) -> &'static str {
        match self {
            Kind::Receiver => "receivers",
            Kind::Processor => "processors",
            Kind::Exporter => "exporters",
            Kind::Extension => "extensions",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Processor => "processor",
            Kind::Exporter => "exporter",
            Kind::Extension => "extension",
        }
    }
}

/// The telemetry signals Weft carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component id, `type` or `type/name`, as written in the Collector's configs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    pub type_name: String,
    pub name: Option<String>,
}

impl ComponentId {
    pub fn new(type_name: impl Into<String>, name: Option<&str>) -> Self {
        Self {
            type_name: type_name.into(),
            name: name.map(str::to_string),
        }
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{}", self.type_name, name),
            None => f.write_str(&self.type_name),
        }
    }
}

impl FromStr for ComponentId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (type_name, name) = match s.split_once('/') {
            Some((t, n)) => (t, Some(n)),
            None => (s, None),
        };
        let type_ok = type_name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && type_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !type_ok {
            return Err(format!(
                "invalid component id {s:?}: the type must start with a letter and hold only letters, digits and '_'"
            ));
        }
        if let Some(name) = name {
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(format!(
                    "invalid component id {s:?}: the name after '/' must be non-empty, without spaces or '/'"
                ));
            }
        }
        Ok(Self::new(type_name, name))
    }
}

/// A pipeline id, `traces`, `logs/errors`, ...
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    pub signal: Signal,
    pub name: Option<String>,
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{}", self.signal, name),
            None => write!(f, "{}", self.signal),
        }
    }
}

impl FromStr for PipelineId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (signal, name) = match s.split_once('/') {
            Some((t, n)) => (t, Some(n)),
            None => (s, None),
        };
        let signal = match signal {
            "traces" => Signal::Traces,
            "logs" => Signal::Logs,
            "metrics" | "profiles" => {
                return Err(format!(
                    "pipeline {s:?}: Weft carries traces and logs; {signal} pipelines are not supported"
                ))
            }
            other => {
                return Err(format!(
                    "invalid pipeline id {s:?}: unknown signal {other:?}, expected \"traces\" or \"logs\""
                ))
            }
        };
        if name.is_some_and(str::is_empty) {
            return Err(format!(
                "invalid pipeline id {s:?}: the name after '/' is empty"
            ));
        }
        Ok(Self {
            signal,
            name: name.map(str::to_string),
        })
    }
}

/// One pipeline: where data comes from, what transforms it, where it goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pipeline {
    pub receivers: Vec<ComponentId>,
    pub processors: Vec<ComponentId>,
    pub exporters: Vec<ComponentId>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    #[serde(default)]
    receivers: Vec<String>,
    #[serde(default)]
    processors: Vec<String>,
    #[serde(default)]
    exporters: Vec<String>,
}

/// `service.telemetry`: Weft's own logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    #[serde(deserialize_with = "present")]
    pub logs: Option<LogsTelemetry>,
    #[serde(deserialize_with = "present")]
    pub metrics: Option<MetricsTelemetry>,
}

impl TelemetryConfig {
    pub fn logs(&self) -> LogsTelemetry {
        self.logs.clone().unwrap_or_default()
    }
    pub fn metrics(&self) -> MetricsTelemetry {
        self.metrics.clone().unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    /// Human-readable lines; `console` is the Collector's name for it.
    #[default]
    #[serde(alias = "console")]
    Text,
    Json,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsTelemetry {
    pub level: LogLevel,
    pub encoding: LogEncoding,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsLevel {
    /// No metrics endpoint at all.
    None,
    Basic,
    #[default]
    Normal,
    Detailed,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTelemetry {
    /// Where `/metrics` is served in the Prometheus text format.
    pub address: Endpoint,
    pub level: MetricsLevel,
}

impl Default for MetricsTelemetry {
    fn default() -> Self {
        Self {
            address: Endpoint::new("localhost", 8888),
            level: MetricsLevel::Normal,
        }
    }
}

/// A component section as written: its id, where it sits, and its still-undecoded YAML.
#[derive(Clone, Debug)]
pub struct ComponentSection {
    pub id: ComponentId,
    pub path: ConfigPath,
    pub value: Value,
}

/// The whole document after layout checks. Component sections are decoded by their factories.
#[derive(Clone, Debug, Default)]
pub struct Document {
    pub receivers: Vec<ComponentSection>,
    pub processors: Vec<ComponentSection>,
    pub exporters: Vec<ComponentSection>,
    pub extensions: Vec<ComponentSection>,
    pub service_extensions: Vec<ComponentId>,
    pub pipelines: Vec<(PipelineId, Pipeline)>,
    pub telemetry: TelemetryConfig,
}

impl Document {
    pub fn sections(&self, kind: Kind) -> &[ComponentSection] {
        match kind {
            Kind::Receiver => &self.receivers,
            Kind::Processor => &self.processors,
            Kind::Exporter => &self.exporters,
            Kind::Extension => &self.extensions,
        }
    }

    fn sections_mut(&mut self, kind: Kind) -> &mut Vec<ComponentSection> {
        match kind {
            Kind::Receiver => &mut self.receivers,
            Kind::Processor => &mut self.processors,
            Kind::Exporter => &mut self.exporters,
            Kind::Extension => &mut self.extensions,
        }
    }

    pub fn find(&self, kind: Kind, id: &ComponentId) -> Option<&ComponentSection> {
        self.sections(kind).iter().find(|s| &s.id == id)
    }
}

/// Reads a YAML text into a [`Document`], expanding `${env:…}` references and reporting
/// every layout problem. Component sections are not decoded here.
pub fn parse_document(text: &str, env: &dyn EnvLookup, diags: &mut Diagnostics) -> Document {
    let root = ConfigPath::root();
    let mut value: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            diags.error(&root, format!("not valid YAML: {e}"));
            return Document::default();
        }
    };
    expand_document(&mut value, env, &root, diags);

    let mut doc = Document::default();
    let map = match value {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        _ => {
            diags.error(
                &root,
                "expected a mapping with receivers, processors, exporters, extensions and service",
            );
            return doc;
        }
    };
    for (key, value) in map {
        let Some(key) = key.as_str().map(str::to_string) else {
            diags.error(
                &root,
                format!("top-level keys must be strings, found {key:?}"),
            );
            continue;
        };
        let path = root.key(&key);
        match key.as_str() {
            "receivers" | "processors" | "exporters" | "extensions" => {
                let kind = match key.as_str() {
                    "receivers" => Kind::Receiver,
                    "processors" => Kind::Processor,
                    "exporters" => Kind::Exporter,
                    _ => Kind::Extension,
                };
                read_sections(value, kind, &path, &mut doc, diags);
            }
            "service" => read_service(value, &path, &mut doc, diags),
            "connectors" => diags.error(&path, "connectors are not supported by Weft"),
            other => diags.error(
                &root,
                format!("unknown field \"{other}\", expected one of \"receivers\", \"processors\", \"exporters\", \"extensions\", \"service\""),
            ),
        }
    }
    check_references(&doc, diags);
    doc
}

fn read_sections(
    value: Value,
    kind: Kind,
    path: &ConfigPath,
    doc: &mut Document,
    diags: &mut Diagnostics,
) {
    let map = match value {
        Value::Mapping(m) => m,
        Value::Null => return,
        _ => {
            diags.error(
                path,
                "expected a mapping of component ids to their settings",
            );
            return;
        }
    };
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            diags.error(
                path,
                format!("component ids must be strings, found {key:?}"),
            );
            continue;
        };
        let id_path = path.key(key);
        match key.parse::<ComponentId>() {
            Ok(id) => doc.sections_mut(kind).push(ComponentSection {
                id,
                path: id_path,
                value,
            }),
            Err(e) => diags.error(&id_path, e),
        }
    }
}

fn read_service(value: Value, path: &ConfigPath, doc: &mut Document, diags: &mut Diagnostics) {
    let map = match value {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        _ => {
            diags.error(
                path,
                "expected a mapping with extensions, pipelines and telemetry",
            );
            return;
        }
    };
    let mut saw_pipelines = false;
    for (key, value) in map {
        let key = key.as_str().unwrap_or_default().to_string();
        let sub = path.key(&key);
        match key.as_str() {
            "extensions" => {
                if let Some(ids) = decode_with_path::<Vec<String>>(&value, &sub, diags) {
                    for (i, id) in ids.iter().enumerate() {
                        match id.parse() {
                            Ok(id) => doc.service_extensions.push(id),
                            Err(e) => diags.error(&sub.index(i), e),
                        }
                    }
                }
            }
            "pipelines" => {
                saw_pipelines = true;
                read_pipelines(value, &sub, doc, diags);
            }
            "telemetry" => {
                if let Some(t) = decode_with_path::<TelemetryConfig>(&value, &sub, diags) {
                    doc.telemetry = t;
                }
            }
            other => diags.error(
                path,
                format!("unknown field \"{other}\", expected one of \"extensions\", \"pipelines\", \"telemetry\""),
            ),
        }
    }
    if !saw_pipelines {
        diags.error(
            path,
            "no pipelines: define at least one under service::pipelines",
        );
    }
}

fn read_pipelines(value: Value, path: &ConfigPath, doc: &mut Document, diags: &mut Diagnostics) {
    let map = match value {
        Value::Mapping(m) => m,
        _ => {
            diags.error(
                path,
                "expected a mapping of pipeline ids (traces, logs/<name>) to pipelines",
            );
            return;
        }
    };
    if map.is_empty() {
        diags.error(
            path,
            "no pipelines: define at least one traces or logs pipeline",
        );
    }
    for (key, value) in map {
        let key = key.as_str().unwrap_or_default().to_string();
        let sub = path.key(&key);
        let id = match key.parse::<PipelineId>() {
            Ok(id) => id,
            Err(e) => {
                diags.error(&sub, e);
                continue;
            }
        };
        let Some(raw) = decode_with_path::<RawPipeline>(&value, &sub, diags) else {
            continue;
        };
        let mut ids = |list: Vec<String>, field: &str| -> Vec<ComponentId> {
            let field_path = sub.key(field);
            let mut out = Vec::new();
            for (i, s) in list.into_iter().enumerate() {
                match s.parse::<ComponentId>() {
                    Ok(cid) if out.contains(&cid) => {
                        diags.error(&field_path.index(i), format!("{cid} is listed twice"))
                    }
                    Ok(cid) => out.push(cid),
                    Err(e) => diags.error(&field_path.index(i), e),
                }
            }
            out
        };
        let pipeline = Pipeline {
            receivers: ids(raw.receivers, "receivers"),
            processors: ids(raw.processors, "processors"),
            exporters: ids(raw.exporters, "exporters"),
        };
        if pipeline.receivers.is_empty() {
            diags.error(
                &sub,
                "pipeline has no receivers: list at least one under receivers",
            );
        }
        if pipeline.exporters.is_empty() {
            diags.error(
                &sub,
                "pipeline has no exporters: list at least one under exporters",
            );
        }
        doc.pipelines.push((id, pipeline));
    }
}

/// Every referenced id must be defined; every defined id should be used.
fn check_references(doc: &Document, diags: &mut Diagnostics) {
    let pipelines_path = ConfigPath::root().key("service").key("pipelines");
    for (pid, pipeline) in &doc.pipelines {
        let ppath = pipelines_path.key(pid.to_string());
        let lists = [
            (Kind::Receiver, "receivers", &pipeline.receivers),
            (Kind::Processor, "processors", &pipeline.processors),
            (Kind::Exporter, "exporters", &pipeline.exporters),
        ];
        for (kind, field, ids) in lists {
            for (i, id) in ids.iter().enumerate() {
                if doc.find(kind, id).is_none() {
                    diags.error(
                        &ppath.key(field).index(i),
                        format!(
                            "references {} \"{id}\" which is not defined under {}",
                            kind.singular(),
                            kind.section()
                        ),
                    );
                }
            }
        }
    }
    let ext_path = ConfigPath::root().key("service").key("extensions");
    for (i, id) in doc.service_extensions.iter().enumerate() {
        if doc.find(Kind::Extension, id).is_none() {
            diags.error(
                &ext_path.index(i),
                format!("references extension \"{id}\" which is not defined under extensions"),
            );
        }
    }
    for kind in [Kind::Receiver, Kind::Processor, Kind::Exporter] {
        for section in doc.sections(kind) {
            let used = doc.pipelines.iter().any(|(_, p)| {
                let list = match kind {
                    Kind::Receiver => &p.receivers,
                    Kind::Processor => &p.processors,
                    _ => &p.exporters,
                };
                list.contains(&section.id)
            });
            if !used {
                diags.warning(
                    &section.path,
                    format!(
                        "{} \"{}\" is defined but not used in any pipeline",
                        kind.singular(),
                        section.id
                    ),
                );
            }
        }
    }
    for section in &doc.extensions {
        if !doc.service_extensions.contains(&section.id) {
            diags.warning(
                &section.path,
                format!(
                    "extension \"{}\" is defined but not listed in service::extensions",
                    section.id
                ),
            );
        }
    }
}
