//! Turns a validated configuration into running pipelines, and runs them until told to stop.
//!
//! Nothing here knows a component type or a signal by name: checks that span components ask
//! each factory what its configured component is (which signals it takes, which extensions
//! it names, whether it holds acknowledged data in memory), and pipelines are wired with
//! [`Consumers`], whose typed contents only the factories see.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_config::{
    ComponentId, ComponentSection, ConfigPath, DataHolding, Diagnostics, Document, EnvLookup, Kind,
    MetricsLevel, PipelineId, PipelineList, SignalKind,
};

use crate::component::{
    AnyConfig, BuildContext, Component, FactoryInfo, PipelineGraph, ServiceGraph, SharedInstances,
};
use crate::health::Health;
use crate::pipeline::{counted_consumers, fanout_consumers, Consumers};
use crate::registry::Registry;
use crate::telemetry::{self, Telemetry};

/// How long shutdown may take in all: receivers stop, processors flush, exporters drain.
/// Kept under Kubernetes' default 30 s grace period so Weft is never killed mid-drain.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(25);

/// A configuration that passed (or failed) validation, with every component section decoded.
pub struct LoadedConfig {
    pub doc: Document,
    pub diagnostics: Diagnostics,
    configs: HashMap<(Kind, ComponentId), AnyConfig>,
}

impl LoadedConfig {
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.has_errors()
    }

    fn config(&self, kind: Kind, id: &ComponentId) -> anyhow::Result<&AnyConfig> {
        self.configs
            .get(&(kind, id.clone()))
            .with_context(|| format!("{} {id} has no decoded configuration", kind.singular()))
    }

    /// The sections of `kind` whose type `registry` knows and whose settings decoded, with
    /// their factory's info and decoded configuration (the others were reported already).
    fn decoded_sections<'a>(
        &'a self,
        registry: &'a Registry,
        kind: Kind,
    ) -> impl Iterator<Item = (&'a ComponentSection, &'a FactoryInfo, &'a AnyConfig)> + 'a {
        self.doc.sections(kind).iter().filter_map(move |section| {
            let info = registry.info(kind, &section.id.type_name)?;
            let cfg = self.configs.get(&(kind, section.id.clone()))?;
            Some((section, info, cfg))
        })
    }
}

/// Reads and validates a configuration. Nothing here opens a socket or a file.
pub fn load_config(text: &str, env: &dyn EnvLookup, registry: &Registry) -> LoadedConfig {
    let (doc, decoded, mut diagnostics) = weft_config::load(text, env, |kind, section, diags| {
        registry.decode(kind, section, diags)
    });
    let configs = decoded
        .into_iter()
        .map(|(kind, id, cfg)| ((kind, id), cfg))
        .collect();
    let loaded = LoadedConfig {
        doc,
        diagnostics: Diagnostics::new(),
        configs,
    };
    check_pipeline_signals(&loaded.doc, registry, &mut diagnostics);
    check_signal_settings(&loaded, registry, &mut diagnostics);
    check_extension_references(&loaded, registry, &mut diagnostics);
    check_durable_pipelines(&loaded, registry, &mut diagnostics);
    check_pipeline_references(&loaded, registry, &mut diagnostics);
    check_connectors_expected(&loaded, registry, &mut diagnostics);
    LoadedConfig {
        diagnostics,
        ..loaded
    }
}

fn pipelines_path() -> ConfigPath {
    ConfigPath::root().key("service").key("pipelines")
}

/// The kind an id in one of a pipeline's lists has: a connector where one is defined.
fn listed_kind(doc: &Document, list: PipelineList, id: &ComponentId) -> Kind {
    match list {
        PipelineList::Processors => Kind::Processor,
        _ if doc.is_connector(id) => Kind::Connector,
        PipelineList::Receivers => Kind::Receiver,
        PipelineList::Exporters => Kind::Exporter,
    }
}

/// Every component listed in a pipeline takes the pipeline's signal; every connector
/// connects the signals of the pipelines on its two sides.
fn check_pipeline_signals(doc: &Document, registry: &Registry, diags: &mut Diagnostics) {
    for (pid, pipeline) in &doc.pipelines {
        let path = pipelines_path().key(pid.to_string());
        for list in [
            PipelineList::Receivers,
            PipelineList::Processors,
            PipelineList::Exporters,
        ] {
            for (i, id) in pipeline.list(list).iter().enumerate() {
                let at = path.key(list.field()).index(i);
                let kind = listed_kind(doc, list, id);
                if kind == Kind::Connector {
                    check_connector(doc, registry, pid, list, id, &at, diags);
                    continue;
                }
                if let Some(info) = registry.info(kind, &id.type_name) {
                    if !info.signals.contains(&pid.signal) {
                        let takes: Vec<&str> = info.signals.iter().map(|s| s.as_str()).collect();
                        diags.error(
                            &at,
                            format!(
                                "{} \"{id}\" does not support {} pipelines (it takes {})",
                                kind.singular(),
                                pid.signal,
                                takes.join(" and ")
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// Every component's settings make sense for the signals of the pipelines that list it
/// ([`ComponentConfig::validate_signal`](weft_config::ComponentConfig::validate_signal)):
/// asked once per component and signal, reported at the component's own keys.
fn check_signal_settings(loaded: &LoadedConfig, registry: &Registry, diags: &mut Diagnostics) {
    let doc = &loaded.doc;
    for (kind, list) in [
        (Kind::Receiver, PipelineList::Receivers),
        (Kind::Processor, PipelineList::Processors),
        (Kind::Exporter, PipelineList::Exporters),
    ] {
        for (section, info, cfg) in loaded.decoded_sections(registry, kind) {
            let mut signals: Vec<SignalKind> = doc
                .pipelines_listing(list, &section.id)
                .map(|(pid, _)| pid.signal)
                .filter(|signal| info.signals.contains(signal))
                .collect();
            signals.sort();
            signals.dedup();
            for signal in signals {
                info.validate_signal(cfg, signal, &section.path, diags);
            }
        }
    }
}

/// Connector `id`, listed at `at` in pipeline `pid`'s `list`, connects it to at least one
/// pipeline on its other side: as the Collector does, data goes only along the signal pairs
/// the connector supports (`forward` joins traces to traces and logs to logs, never traces
/// to logs), and a pipeline none of whose pairs is supported is an error.
fn check_connector(
    doc: &Document,
    registry: &Registry,
    pid: &PipelineId,
    list: PipelineList,
    id: &ComponentId,
    at: &ConfigPath,
    diags: &mut Diagnostics,
) {
    let Some(factory) = registry.connector(&id.type_name) else {
        return;
    };
    let (other_side, role) = match list {
        PipelineList::Exporters => (PipelineList::Receivers, "an exporter"),
        _ => (PipelineList::Exporters, "a receiver"),
    };
    let others: Vec<&PipelineId> = doc
        .pipelines_listing(other_side, id)
        .map(|(other, _)| other)
        .collect();
    if others.is_empty() {
        return; // reported once, at the connector's section, by the layout checks
    }
    let supported = others.iter().any(|other| match list {
        PipelineList::Exporters => factory.connects(pid.signal, other.signal),
        _ => factory.connects(other.signal, pid.signal),
    });
    if !supported {
        let pairs: Vec<String> = factory
            .pairs()
            .iter()
            .map(|(a, b)| format!("{a} to {b}"))
            .collect();
        let names: Vec<String> = others.iter().map(|o| format!("\"{o}\"")).collect();
        diags.error(
            at,
            format!(
                "connector \"{id}\" is {role} of this {} pipeline, but none of the pipelines on its other side ({}) has a signal it can connect to; it connects {}",
                pid.signal,
                names.join(", "),
                pairs.join(", ")
            ),
        );
    }
}

/// Every extension a component names must be defined and listed in `service::extensions`
/// (only listed extensions run). Reported at the key that names it; a value that is not an
/// id is left to the component's own validation.
fn check_extension_references(loaded: &LoadedConfig, registry: &Registry, diags: &mut Diagnostics) {
    let doc = &loaded.doc;
    for kind in [
        Kind::Receiver,
        Kind::Processor,
        Kind::Exporter,
        Kind::Connector,
        Kind::Extension,
    ] {
        for (section, info, cfg) in loaded.decoded_sections(registry, kind) {
            for reference in info.extension_references(cfg, &section.path) {
                let Ok(id) = reference.id.parse::<ComponentId>() else {
                    continue;
                };
                if doc.find(Kind::Extension, &id).is_none() {
                    diags.error(
                        &reference.path,
                        format!(
                            "references extension \"{id}\" which is not defined under extensions"
                        ),
                    );
                } else if !doc.service_extensions.contains(&id) {
                    diags.error(
                        &reference.path,
                        format!("references extension \"{id}\" which is not listed in service::extensions: add it there so it runs"),
                    );
                }
            }
        }
    }
}

/// A durable stage (a `tail_sampling` window with `storage`) acknowledges data only once its
/// log has it. Stages in the same pipeline that hold acknowledged data in memory quietly
/// weaken that: warned about, not refused (the configuration still works, with a narrower
/// promise).
fn check_durable_pipelines(loaded: &LoadedConfig, registry: &Registry, diags: &mut Diagnostics) {
    let doc = &loaded.doc;
    let holding = |kind: Kind, id: &ComponentId| -> DataHolding {
        match (registry.info(kind, &id.type_name), loaded.config(kind, id)) {
            (Some(info), Ok(cfg)) => info.holds_data(cfg),
            _ => DataHolding::Nothing,
        }
    };
    for (pid, pipeline) in &doc.pipelines {
        let durable = pipeline
            .processors
            .iter()
            .position(|id| holding(Kind::Processor, id) == DataHolding::Durable);
        let Some(at) = durable else { continue };
        let window = &pipeline.processors[at];
        let path = pipelines_path().key(pid.to_string());
        for (i, id) in pipeline.processors.iter().enumerate() {
            if !matches!(holding(Kind::Processor, id), DataHolding::Memory { .. }) {
                continue;
            }
            let message = if i < at {
                format!("processor \"{id}\" comes before the durable \"{window}\": it acknowledges data before the window's log has it, so a crash loses what it holds; put it after \"{window}\" or remove it")
            } else {
                format!("processor \"{id}\" after the durable \"{window}\" holds kept data in memory once the window counts it as delivered, so a crash loses what it holds; remove it for end-to-end durability")
            };
            diags.warning(&path.key("processors").index(i), message);
        }
        for (i, id) in pipeline.exporters.iter().enumerate() {
            if doc.is_connector(id) {
                continue;
            }
            if let DataHolding::Memory { remedy } = holding(Kind::Exporter, id) {
                diags.warning(
                    &path.key("exporters").index(i),
                    format!("exporter \"{id}\" queues in memory: kept data the durable \"{window}\" released is lost on a crash once queued there; {remedy}"),
                );
            }
        }
    }
}

/// A connector that chooses where data goes names its target pipelines in its own section
/// ([`ComponentConfig::pipeline_references`](weft_config::ComponentConfig)): each must be a
/// pipeline that exists, lists the connector under its `receivers`, and has a signal the
/// connector can feed from the pipelines exporting to it (and the naming key allows). A
/// pipeline that receives from such a connector but is never named gets nothing: warned.
fn check_pipeline_references(loaded: &LoadedConfig, registry: &Registry, diags: &mut Diagnostics) {
    let doc = &loaded.doc;
    for section in doc.sections(Kind::Connector) {
        let id = &section.id;
        let (Some(factory), Ok(cfg)) = (
            registry.connector(&id.type_name),
            loaded.config(Kind::Connector, id),
        ) else {
            continue;
        };
        let Some(references) = factory.info.pipeline_references(cfg, &section.path) else {
            continue;
        };
        let inputs: Vec<SignalKind> = signals_listing(doc, PipelineList::Exporters, id);
        let mut named: Vec<PipelineId> = Vec::new();
        for reference in &references {
            let pid = match reference.id.parse::<PipelineId>() {
                Ok(pid) => pid,
                Err(e) => {
                    diags.error(&reference.path, e);
                    continue;
                }
            };
            named.push(pid.clone());
            let Some((_, pipeline)) = doc.pipelines.iter().find(|(p, _)| *p == pid) else {
                diags.error(
                    &reference.path,
                    format!("references pipeline \"{pid}\" which is not defined under service::pipelines"),
                );
                continue;
            };
            if !pipeline.receivers.contains(id) {
                diags.error(
                    &reference.path,
                    format!("pipeline \"{pid}\" does not list connector \"{id}\" under its receivers: add it there, or it cannot receive what this route sends"),
                );
                continue;
            }
            if let Some(allowed) = &reference.signals {
                if !allowed.contains(&pid.signal) {
                    let words: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
                    diags.error(
                        &reference.path,
                        format!(
                            "pipeline \"{pid}\" is a {} pipeline, but this key sends only {} data",
                            pid.signal,
                            words.join(" or ")
                        ),
                    );
                    continue;
                }
            }
            // With no exporting pipeline the layout checks already said the connector is
            // unused; otherwise some input must connect to this pipeline's signal.
            if !inputs.is_empty()
                && !inputs
                    .iter()
                    .any(|from| factory.connects(*from, pid.signal))
            {
                let words: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
                diags.error(
                    &reference.path,
                    format!(
                        "pipeline \"{pid}\" is a {} pipeline, but connector \"{id}\" takes only {} data here and cannot feed it",
                        pid.signal,
                        words.join(" and ")
                    ),
                );
            }
        }
        for (pid, pipeline) in doc.pipelines_listing(PipelineList::Receivers, id) {
            if !named.contains(pid) {
                let i = pipeline.receivers.iter().position(|r| r == id).unwrap_or(0);
                diags.warning(
                    &pipelines_path().key(pid.to_string()).key("receivers").index(i),
                    format!("pipeline \"{pid}\" receives from connector \"{id}\", but no route of it names this pipeline: it will get nothing"),
                );
            }
        }
    }
}

/// A processor whose output is meant for a connector after it
/// ([`ComponentConfig::expects_connector_after`](weft_config::ComponentConfig)), in a
/// pipeline that exports to no connector: warned, not refused (the pipeline still works, the
/// split it was meant for does not happen).
fn check_connectors_expected(loaded: &LoadedConfig, registry: &Registry, diags: &mut Diagnostics) {
    let doc = &loaded.doc;
    for (pid, pipeline) in &doc.pipelines {
        if pipeline.exporters.iter().any(|id| doc.is_connector(id)) {
            continue;
        }
        for (i, id) in pipeline.processors.iter().enumerate() {
            let (Some(info), Ok(cfg)) = (
                registry.info(Kind::Processor, &id.type_name),
                loaded.config(Kind::Processor, id),
            ) else {
                continue;
            };
            if let Some(why) = info.expects_connector_after(cfg) {
                diags.warning(
                    &pipelines_path()
                        .key(pid.to_string())
                        .key("processors")
                        .index(i),
                    format!("processor \"{id}\": {why}; but this pipeline exports to no connector"),
                );
            }
        }
    }
}

/// A built component, with what its lifecycle logs under.
struct Named {
    /// For the service's own messages, e.g. `exporter otlp/backend`.
    name: String,
    /// Its [`BuildContext::span`]: start and shutdown run inside it.
    span: tracing::Span,
    component: Arc<dyn Component>,
}

/// The running pipelines of one configuration.
pub struct Service {
    extensions: Vec<Named>,
    exporters: Vec<Named>,
    /// Processors and connectors in start order: pipelines downstream first, each
    /// pipeline's last stage first. Shutdown runs this list backwards.
    stages: Vec<Named>,
    receivers: Vec<Named>,
    telemetry: Telemetry,
    health: Health,
    metrics: weft_config::MetricsTelemetry,
    stop_metrics: CancellationToken,
    metrics_addr: Mutex<Option<SocketAddr>>,
}

/// What [`Service::build`] threads through: the configuration and the shared context.
struct Builder<'a> {
    loaded: &'a LoadedConfig,
    registry: &'a Registry,
    telemetry: Telemetry,
    health: Health,
    shared: SharedInstances,
}

impl Builder<'_> {
    /// The Collector's per-processor item counters, `otelcol_processor_incoming_items` and
    /// `otelcol_processor_outgoing_items` (labels `processor`, `otel_signal`): items each
    /// processor took, and items it handed on.
    fn processor_counters(
        &self,
        id: &ComponentId,
        signal: SignalKind,
    ) -> (
        prometheus_client::metrics::counter::Counter,
        prometheus_client::metrics::counter::Counter,
    ) {
        let id = id.to_string();
        let signal = signal.to_string();
        let labels = [("processor", id.as_str()), ("otel_signal", signal.as_str())];
        (
            self.telemetry.counter(
                "otelcol_processor_incoming_items",
                "Number of items passed to the processor",
                &labels,
            ),
            self.telemetry.counter(
                "otelcol_processor_outgoing_items",
                "Number of items emitted from the processor",
                &labels,
            ),
        )
    }

    fn ctx(&self, kind: Kind, id: &ComponentId) -> BuildContext {
        BuildContext {
            id: id.clone(),
            kind,
            telemetry: self.telemetry.clone(),
            health: self.health.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl Service {
    /// Builds every component. Fails on the first component that cannot be built.
    pub fn build(loaded: &LoadedConfig, registry: &Registry) -> anyhow::Result<Self> {
        anyhow::ensure!(
            loaded.is_valid(),
            "invalid configuration:\n{}",
            loaded.diagnostics
        );
        let doc = &loaded.doc;
        let b = Builder {
            loaded,
            registry,
            telemetry: Telemetry::new(),
            health: Health::default(),
            shared: SharedInstances::default(),
        };
        b.shared.set_service_graph(graph_of(doc));

        let mut extensions = Vec::new();
        for id in &doc.service_extensions {
            let factory = registry
                .extension(&id.type_name)
                .context("validated extension type")?;
            let ctx = b.ctx(Kind::Extension, id);
            let span = ctx.span();
            let component = factory
                .build(ctx, loaded.config(Kind::Extension, id)?)
                .with_context(|| format!("building extension {id}"))?;
            extensions.push(Named {
                name: format!("extension {id}"),
                span,
                component,
            });
        }

        // Each exporter id once, with the signals of every pipeline that lists it.
        let mut exporter_consumers: HashMap<ComponentId, Consumers> = HashMap::new();
        let mut exporters = Vec::new();
        for section in &doc.exporters {
            let signals = signals_listing(doc, PipelineList::Exporters, &section.id);
            if signals.is_empty() {
                continue;
            }
            let factory = registry
                .exporter(&section.id.type_name)
                .context("validated exporter type")?;
            let ctx = b.ctx(Kind::Exporter, &section.id);
            let span = ctx.span();
            let built = factory
                .build(ctx, loaded.config(Kind::Exporter, &section.id)?, &signals)
                .with_context(|| format!("building exporter {}", section.id))?;
            exporters.push(Named {
                name: format!("exporter {}", section.id),
                span,
                component: built.component,
            });
            exporter_consumers.insert(section.id.clone(), built.consumers);
        }

        // Pipelines downstream first, so the pipelines a connector feeds exist when it is
        // built; each pipeline back to front. Remember each pipeline's entry point.
        let order = doc.pipelines_downstream_first().map_err(|_| {
            anyhow::anyhow!("connectors make a cycle (config validation should have said so)")
        })?;
        let mut entries: HashMap<usize, Consumers> = HashMap::new();
        let mut connectors: HashMap<(ComponentId, SignalKind, SignalKind), Consumers> =
            HashMap::new();
        let mut stages = Vec::new();
        for index in order {
            let (pid, pipeline) = &doc.pipelines[index];
            let mut sinks = Vec::new();
            for id in &pipeline.exporters {
                if doc.is_connector(id) {
                    sinks.extend(b.connector_entries(
                        pid,
                        id,
                        &entries,
                        &mut connectors,
                        &mut stages,
                    )?);
                } else {
                    let consumers = exporter_consumers
                        .get(id)
                        .with_context(|| format!("exporter {id} was not built"))?;
                    sinks.push(consumers.clone());
                }
            }
            let mut next = fanout_consumers(pid.signal, sinks);
            let mut built = Vec::new();
            for id in pipeline.processors.iter().rev() {
                let factory = registry
                    .processor(&id.type_name)
                    .context("validated processor type")?;
                let ctx = b.ctx(Kind::Processor, id);
                let span = ctx.span();
                let (incoming, outgoing) = b.processor_counters(id, pid.signal);
                let stage = factory
                    .build(
                        pid.signal,
                        ctx,
                        loaded.config(Kind::Processor, id)?,
                        counted_consumers(pid.signal, next, outgoing),
                    )
                    .with_context(|| format!("building processor {id} in pipeline {pid}"))?;
                built.push(Named {
                    name: format!("processor {id} (pipeline {pid})"),
                    span,
                    component: stage.component,
                });
                next = counted_consumers(pid.signal, stage.entry, incoming);
            }
            stages.extend(built);
            entries.insert(index, next);
        }

        let mut receivers = Vec::new();
        for section in &doc.receivers {
            let feeds: Vec<Consumers> = doc
                .pipelines
                .iter()
                .enumerate()
                .filter(|(_, (_, p))| p.receivers.contains(&section.id))
                .filter_map(|(i, _)| entries.get(&i).cloned())
                .collect();
            if feeds.is_empty() {
                continue;
            }
            let consumers = merge_by_signal(feeds);
            let factory = registry
                .receiver(&section.id.type_name)
                .context("validated receiver type")?;
            let ctx = b.ctx(Kind::Receiver, &section.id);
            let span = ctx.span();
            let component = factory
                .build(ctx, loaded.config(Kind::Receiver, &section.id)?, consumers)
                .with_context(|| format!("building receiver {}", section.id))?;
            receivers.push(Named {
                name: format!("receiver {}", section.id),
                span,
                component,
            });
        }

        Ok(Self {
            extensions,
            exporters,
            stages,
            receivers,
            telemetry: b.telemetry,
            health: b.health,
            metrics: doc.telemetry.metrics(),
            stop_metrics: CancellationToken::new(),
            metrics_addr: Mutex::new(None),
        })
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The address of `/metrics`, once started (None when metrics are off).
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        *self.metrics_addr.lock()
    }

    /// Starts everything, downstream first, so no data arrives before its path is ready.
    pub async fn start(&self) -> anyhow::Result<()> {
        if self.metrics.level != MetricsLevel::None {
            let addr = telemetry::serve_metrics(
                &self.metrics,
                self.telemetry.clone(),
                self.stop_metrics.clone(),
            )
            .await?;
            *self.metrics_addr.lock() = Some(addr);
        }
        for named in self
            .extensions
            .iter()
            .chain(&self.exporters)
            .chain(&self.stages)
            .chain(&self.receivers)
        {
            named
                .component
                .start()
                .instrument(named.span.clone())
                .await
                .with_context(|| format!("starting {}", named.name))?;
        }
        self.health.set_running(true);
        Ok(())
    }

    /// Stops everything, upstream first: receivers stop accepting, processors and
    /// connectors flush into what follows them, exporters drain their queues, all by
    /// `deadline`.
    pub async fn shutdown(&self, deadline: Instant) {
        self.health.set_running(false);
        let order = self
            .receivers
            .iter()
            .chain(self.stages.iter().rev())
            .chain(&self.exporters)
            .chain(&self.extensions);
        for named in order {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let shutdown = named
                .component
                .shutdown(deadline)
                .instrument(named.span.clone());
            match tokio::time::timeout(remaining, shutdown).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(component = %named.name, error = %format!("{e:#}"), "shutdown failed")
                }
                Err(_) => {
                    tracing::error!(component = %named.name, "shutdown did not finish before the deadline")
                }
            }
        }
        self.stop_metrics.cancel();
    }

    /// Runs until SIGINT or SIGTERM, then shuts down within [`SHUTDOWN_DEADLINE`].
    pub async fn run_until_signal(&self) -> anyhow::Result<()> {
        self.start().await?;
        tracing::info!(
            component = "service",
            "everything is ready; Weft is running"
        );
        wait_for_signal().await;
        tracing::info!(
            component = "service",
            "shutting down: stopping receivers, flushing processors, draining exporters"
        );
        self.shutdown(Instant::now() + SHUTDOWN_DEADLINE).await;
        tracing::info!(component = "service", "shutdown complete");
        Ok(())
    }
}

impl Builder<'_> {
    /// The entry points of connector `id` for pipeline `from` (an exporting pipeline): one
    /// instance per output signal among the pipelines that receive from it, built on first
    /// use and shared by every pipeline of `from`'s signal that exports to it.
    fn connector_entries(
        &self,
        from: &PipelineId,
        id: &ComponentId,
        entries: &HashMap<usize, Consumers>,
        built: &mut HashMap<(ComponentId, SignalKind, SignalKind), Consumers>,
        stages: &mut Vec<Named>,
    ) -> anyhow::Result<Vec<Consumers>> {
        let doc = &self.loaded.doc;
        let factory = self
            .registry
            .connector(&id.type_name)
            .context("validated connector type")?;
        let mut out = Vec::new();
        for to in signals_listing(doc, PipelineList::Receivers, id) {
            if !factory.connects(from.signal, to) {
                continue;
            }
            let key = (id.clone(), from.signal, to);
            if let Some(consumers) = built.get(&key) {
                out.push(consumers.clone());
                continue;
            }
            let targets = doc
                .pipelines
                .iter()
                .enumerate()
                .filter(|(_, (pid, p))| pid.signal == to && p.receivers.contains(id))
                .map(|(i, (pid, _))| {
                    let entry = entries
                        .get(&i)
                        .with_context(|| format!("pipeline {pid} is not built yet"))?;
                    Ok((pid.clone(), entry.clone()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let ctx = self.ctx(Kind::Connector, id);
            let span = ctx.span();
            let stage = factory
                .build(
                    (from.signal, to),
                    ctx,
                    self.loaded.config(Kind::Connector, id)?,
                    targets,
                )
                .with_context(|| format!("building connector {id} from {} to {to}", from.signal))?;
            stages.push(Named {
                name: format!("connector {id} ({} to {to})", from.signal),
                span,
                component: stage.component,
            });
            built.insert(key, stage.entry.clone());
            out.push(stage.entry);
        }
        Ok(out)
    }
}

/// The pipelines as configured, for components that show them (the status page).
fn graph_of(doc: &Document) -> ServiceGraph {
    let mut connectors: Vec<ComponentId> = Vec::new();
    let pipelines = doc
        .pipelines
        .iter()
        .map(|(id, p)| {
            for c in p.receivers.iter().chain(&p.exporters) {
                if doc.is_connector(c) && !connectors.contains(c) {
                    connectors.push(c.clone());
                }
            }
            PipelineGraph {
                id: id.clone(),
                receivers: p.receivers.clone(),
                processors: p.processors.clone(),
                exporters: p.exporters.clone(),
            }
        })
        .collect();
    ServiceGraph {
        pipelines,
        extensions: doc.service_extensions.clone(),
        connectors,
    }
}

/// The signals of the pipelines listing `id` under `list`, each once, in signal order.
fn signals_listing(doc: &Document, list: PipelineList, id: &ComponentId) -> Vec<SignalKind> {
    let mut signals: Vec<SignalKind> = doc
        .pipelines_listing(list, id)
        .map(|(pid, _)| pid.signal)
        .collect();
    signals.sort();
    signals.dedup();
    signals
}

/// One [`Consumers`] from several: per signal, a fan-out over every consumer of it.
fn merge_by_signal(all: Vec<Consumers>) -> Consumers {
    let mut by_signal: HashMap<SignalKind, Vec<Consumers>> = HashMap::new();
    for consumers in all {
        for signal in consumers.signals() {
            by_signal.entry(signal).or_default().push(consumers.clone());
        }
    }
    let mut merged = Consumers::default();
    for (signal, list) in by_signal {
        merged.extend(fanout_consumers(signal, list));
    }
    merged
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests;
