//! The document in the OpenTelemetry Collector's layout:
//!
//! ```yaml
//! receivers:  { <type>[/<name>]: <component config> }
//! processors: { ... }
//! exporters:  { ... }
//! connectors: { ... }   # an exporter of one pipeline and a receiver of another
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

/// The five kinds of component a configuration defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Receiver,
    Processor,
    Exporter,
    /// Both ends of a link between pipelines: listed under one pipeline's `exporters` and
    /// another's `receivers`, as in the Collector.
    Connector,
    Extension,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Receiver,
        Kind::Processor,
        Kind::Exporter,
        Kind::Connector,
        Kind::Extension,
    ];

    /// The top-level section that defines components of this kind.
    pub fn section(self) -> &'static str {
        match self {
            Kind::Receiver => "receivers",
            Kind::Processor => "processors",
            Kind::Exporter => "exporters",
            Kind::Connector => "connectors",
            Kind::Extension => "extensions",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Processor => "processor",
            Kind::Exporter => "exporter",
            Kind::Connector => "connector",
            Kind::Extension => "extension",
        }
    }
}

/// The telemetry signals a pipeline can carry, by name. What each signal *is* (its request
/// type, endpoints, codecs) is the `Signal` trait in the `weft` crate; this enum is only the
/// word in a pipeline id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalKind {
    Traces,
    Logs,
    Metrics,
}

impl SignalKind {
    pub const ALL: [SignalKind; 3] = [SignalKind::Traces, SignalKind::Logs, SignalKind::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Traces => "traces",
            SignalKind::Logs => "logs",
            SignalKind::Metrics => "metrics",
        }
    }
}

impl fmt::Display for SignalKind {
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
    pub signal: SignalKind,
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
            "traces" => SignalKind::Traces,
            "logs" => SignalKind::Logs,
            "metrics" => SignalKind::Metrics,
            "profiles" => {
                return Err(format!(
                    "pipeline {s:?}: Weft carries traces, logs and metrics; profiles pipelines are not supported"
                ))
            }
            other => {
                return Err(format!(
                    "invalid pipeline id {s:?}: unknown signal {other:?}, expected \"traces\", \"logs\" or \"metrics\""
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
    pub connectors: Vec<ComponentSection>,
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
            Kind::Connector => &self.connectors,
            Kind::Extension => &self.extensions,
        }
    }

    fn sections_mut(&mut self, kind: Kind) -> &mut Vec<ComponentSection> {
        match kind {
            Kind::Receiver => &mut self.receivers,
            Kind::Processor => &mut self.processors,
            Kind::Exporter => &mut self.exporters,
            Kind::Connector => &mut self.connectors,
            Kind::Extension => &mut self.extensions,
        }
    }

    pub fn find(&self, kind: Kind, id: &ComponentId) -> Option<&ComponentSection> {
        self.sections(kind).iter().find(|s| &s.id == id)
    }

    /// Whether `id` names a connector (it is then not looked up as a receiver or exporter).
    pub fn is_connector(&self, id: &ComponentId) -> bool {
        self.find(Kind::Connector, id).is_some()
    }

    /// The pipelines that list `id` under `kind`'s list (`receivers`, `processors` or
    /// `exporters`; a connector is listed under both receivers and exporters).
    pub fn pipelines_listing(
        &self,
        list: PipelineList,
        id: &ComponentId,
    ) -> impl Iterator<Item = &(PipelineId, Pipeline)> {
        let id = id.clone();
        self.pipelines
            .iter()
            .filter(move |(_, p)| p.list(list).contains(&id))
    }

    /// Indices of the pipelines in an order where every pipeline comes after all pipelines
    /// it feeds through a connector (the order to build them in, back to front). When the
    /// connectors make a cycle, the error holds the pipelines on it.
    pub fn pipelines_downstream_first(&self) -> Result<Vec<usize>, Vec<usize>> {
        let n = self.pipelines.len();
        // feeds[a] = pipelines that pipeline a exports into, through a connector.
        let feeds: Vec<Vec<usize>> = self
            .pipelines
            .iter()
            .map(|(_, a)| {
                (0..n)
                    .filter(|&b| {
                        a.exporters.iter().any(|id| {
                            self.is_connector(id) && self.pipelines[b].1.receivers.contains(id)
                        })
                    })
                    .collect()
            })
            .collect();
        // Depth-first post-order: a pipeline is emitted once everything it feeds is.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        fn visit(a: usize, feeds: &[Vec<usize>], marks: &mut [Mark], out: &mut Vec<usize>) -> bool {
            match marks[a] {
                Mark::Done => return true,
                Mark::Open => return false,
                Mark::New => {}
            }
            marks[a] = Mark::Open;
            for &b in &feeds[a] {
                if !visit(b, feeds, marks, out) {
                    return false;
                }
            }
            marks[a] = Mark::Done;
            out.push(a);
            true
        }
        let mut marks = vec![Mark::New; n];
        let mut out = Vec::with_capacity(n);
        for a in 0..n {
            if !visit(a, &feeds, &mut marks, &mut out) {
                // The pipelines still open are the depth-first path that closed the loop.
                return Err((0..n).filter(|&i| marks[i] == Mark::Open).collect());
            }
        }
        Ok(out)
    }
}

/// One of a pipeline's three lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineList {
    Receivers,
    Processors,
    Exporters,
}

impl PipelineList {
    pub fn field(self) -> &'static str {
        match self {
            PipelineList::Receivers => "receivers",
            PipelineList::Processors => "processors",
            PipelineList::Exporters => "exporters",
        }
    }
}

impl Pipeline {
    pub fn list(&self, list: PipelineList) -> &[ComponentId] {
        match list {
            PipelineList::Receivers => &self.receivers,
            PipelineList::Processors => &self.processors,
            PipelineList::Exporters => &self.exporters,
        }
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
            "service" => read_service(value, &path, &mut doc, diags),
            other => match Kind::ALL.into_iter().find(|k| k.section() == other) {
                Some(kind) => read_sections(value, kind, &path, &mut doc, diags),
                None => diags.error(
                    &root,
                    format!("unknown field \"{other}\", expected one of \"receivers\", \"processors\", \"exporters\", \"connectors\", \"extensions\", \"service\""),
                ),
            },
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

/// Every referenced id must be defined; every defined id should be used; a connector is
/// used on both sides, and connectors make no cycle.
fn check_references(doc: &Document, diags: &mut Diagnostics) {
    let pipelines_path = ConfigPath::root().key("service").key("pipelines");
    for (pid, pipeline) in &doc.pipelines {
        let ppath = pipelines_path.key(pid.to_string());
        let lists = [
            (Kind::Receiver, PipelineList::Receivers),
            (Kind::Processor, PipelineList::Processors),
            (Kind::Exporter, PipelineList::Exporters),
        ];
        for (kind, list) in lists {
            for (i, id) in pipeline.list(list).iter().enumerate() {
                let at = ppath.key(list.field()).index(i);
                let connector = list != PipelineList::Processors && doc.is_connector(id);
                match (doc.find(kind, id).is_some(), connector) {
                    (true, true) => diags.error(
                        &at,
                        format!(
                            "\"{id}\" is defined both under {} and under connectors: rename one",
                            kind.section()
                        ),
                    ),
                    (false, false) => diags.error(
                        &at,
                        format!(
                            "references {} \"{id}\" which is not defined under {}",
                            kind.singular(),
                            kind.section()
                        ),
                    ),
                    _ => {}
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
    let lists = [
        (Kind::Receiver, PipelineList::Receivers),
        (Kind::Processor, PipelineList::Processors),
        (Kind::Exporter, PipelineList::Exporters),
    ];
    for (kind, list) in lists {
        for section in doc.sections(kind) {
            if doc.pipelines_listing(list, &section.id).next().is_none() {
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
    for section in &doc.connectors {
        let id = &section.id;
        let exported_by = doc.pipelines_listing(PipelineList::Exporters, id).count();
        let received_by = doc.pipelines_listing(PipelineList::Receivers, id).count();
        match (exported_by, received_by) {
            (0, 0) => diags.warning(
                &section.path,
                format!("connector \"{id}\" is defined but not used in any pipeline"),
            ),
            (0, _) => diags.error(
                &section.path,
                format!("connector \"{id}\" is a receiver of a pipeline but no pipeline exports to it: list it under some pipeline's exporters"),
            ),
            (_, 0) => diags.error(
                &section.path,
                format!("connector \"{id}\" is an exporter of a pipeline but no pipeline receives from it: list it under some pipeline's receivers"),
            ),
            _ => {}
        }
    }
    if let Err(cycle) = doc.pipelines_downstream_first() {
        let names: Vec<String> = cycle
            .iter()
            .map(|&i| format!("\"{}\"", doc.pipelines[i].0))
            .collect();
        diags.error(
            &pipelines_path,
            format!(
                "connectors make a cycle through pipelines {}: data would loop forever; a connector must not feed a pipeline that feeds it",
                names.join(", ")
            ),
        );
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
