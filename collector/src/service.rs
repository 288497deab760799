//! Turns a validated configuration into running pipelines, and runs them until told to stop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use weft_config::{ComponentId, Diagnostics, Document, EnvLookup, Kind, MetricsLevel, Signal};

use crate::component::{
    AnyConfig, BuildContext, BuiltExporter, Component, Processor, ProcessorFactory,
    ReceiverConsumers, SharedInstances,
};
use crate::pipeline::{Consumer, Fanout, Logs, Payload, Traces};
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
}

/// Reads and validates a configuration. Nothing here opens a socket or a file.
pub fn load_config(text: &str, env: &dyn EnvLookup, registry: &Registry) -> LoadedConfig {
    let (doc, decoded, mut diagnostics) = weft_config::load(text, env, |kind, section, diags| {
        registry.decode(kind, section, diags)
    });
    let pipelines_path = weft_config::ConfigPath::root()
        .key("service")
        .key("pipelines");
    for (pid, pipeline) in &doc.pipelines {
        let lists = [
            (Kind::Receiver, "receivers", &pipeline.receivers),
            (Kind::Processor, "processors", &pipeline.processors),
            (Kind::Exporter, "exporters", &pipeline.exporters),
        ];
        for (kind, field, ids) in lists {
            for (i, id) in ids.iter().enumerate() {
                if let Some(info) = registry.info(kind, &id.type_name) {
                    if !info.signals.contains(&pid.signal) {
                        diagnostics.error(
                            &pipelines_path.key(pid.to_string()).key(field).index(i),
                            format!(
                                "{} \"{id}\" does not support {} pipelines",
                                kind.singular(),
                                pid.signal
                            ),
                        );
                    }
                }
            }
        }
    }
    check_extension_references(&doc, &mut diagnostics);
    check_durable_windows(&doc, &mut diagnostics);
    let configs = decoded
        .into_iter()
        .map(|(kind, id, cfg)| ((kind, id), cfg))
        .collect();
    LoadedConfig {
        doc,
        diagnostics,
        configs,
    }
}

/// Keys that name an extension from inside a component's section, as the Collector's
/// `auth: { authenticator: <id> }` and `sending_queue: { storage: <id> }`, and Weft's
/// `tail_sampling: { storage: <id> }`.
const EXTENSION_REFERENCE_KEYS: &[&str] = &["authenticator", "storage"];

/// Every [`EXTENSION_REFERENCE_KEYS`] value in a receiver, processor or exporter section must name an
/// extension that is defined and listed in `service::extensions` (only listed extensions
/// run). Reported at the referencing key; a value that is not an id is left to the
/// component's own validation.
fn check_extension_references(doc: &Document, diags: &mut Diagnostics) {
    fn walk(
        value: &serde_yaml::Value,
        path: &weft_config::ConfigPath,
        doc: &Document,
        diags: &mut Diagnostics,
    ) {
        match value {
            serde_yaml::Value::Mapping(map) => {
                for (k, v) in map {
                    let Some(key) = k.as_str() else { continue };
                    let at = path.key(key);
                    match (EXTENSION_REFERENCE_KEYS.contains(&key), v.as_str()) {
                        (true, Some(name)) => check(name, &at, doc, diags),
                        _ => walk(v, &at, doc, diags),
                    }
                }
            }
            serde_yaml::Value::Sequence(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &path.index(i), doc, diags);
                }
            }
            serde_yaml::Value::Tagged(t) => walk(&t.value, path, doc, diags),
            _ => {}
        }
    }
    fn check(name: &str, path: &weft_config::ConfigPath, doc: &Document, diags: &mut Diagnostics) {
        let Ok(id) = name.parse::<ComponentId>() else {
            return;
        };
        if doc.find(Kind::Extension, &id).is_none() {
            diags.error(
                path,
                format!("references extension \"{id}\" which is not defined under extensions"),
            );
        } else if !doc.service_extensions.contains(&id) {
            diags.error(
                path,
                format!("references extension \"{id}\" which is not listed in service::extensions: add it there so it runs"),
            );
        }
    }
    for kind in [Kind::Receiver, Kind::Processor, Kind::Exporter] {
        for section in doc.sections(kind) {
            walk(&section.value, &section.path, doc, diags);
        }
    }
}

/// Exporters with a `sending_queue` (in memory unless it has a `storage`).
const QUEUED_EXPORTERS: &[&str] = &["otlp", "otlphttp", "elasticsearch"];

/// A durable `tail_sampling` window (`storage` set) acknowledges data only once its log has
/// it. Stages in the same pipeline that hold data in memory quietly weaken that: warned
/// about, not refused (the configuration still works, with a narrower promise).
fn check_durable_windows(doc: &Document, diags: &mut Diagnostics) {
    let is_set = |v: Option<&serde_yaml::Value>| v.is_some_and(|v| !v.is_null());
    let pipelines_path = weft_config::ConfigPath::root()
        .key("service")
        .key("pipelines");
    for (pid, pipeline) in &doc.pipelines {
        let durable = pipeline.processors.iter().position(|id| {
            id.type_name == "tail_sampling"
                && doc
                    .find(Kind::Processor, id)
                    .is_some_and(|s| is_set(s.value.get("storage")))
        });
        let Some(at) = durable else { continue };
        let window = &pipeline.processors[at];
        let path = pipelines_path.key(pid.to_string());
        for (i, id) in pipeline.processors.iter().enumerate() {
            if id.type_name != "batch" {
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
            if !QUEUED_EXPORTERS.contains(&id.type_name.as_str()) {
                continue;
            }
            let Some(section) = doc.find(Kind::Exporter, id) else {
                continue;
            };
            let queue = section.value.get("sending_queue");
            let enabled = queue
                .and_then(|q| q.get("enabled"))
                .and_then(serde_yaml::Value::as_bool)
                .unwrap_or(true);
            if enabled && !is_set(queue.and_then(|q| q.get("storage"))) {
                diags.warning(
                    &path.key("exporters").index(i),
                    format!("exporter \"{id}\" queues in memory: kept data the durable \"{window}\" released is lost on a crash once queued there; give it sending_queue::storage (or sending_queue::enabled: false)"),
                );
            }
        }
    }
}

/// Whether the service runs; read by the `health_check` extension.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Default)]
struct HealthInner {
    running: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Health {
    pub fn set_running(&self, running: bool) {
        self.inner.running.store(running, Ordering::SeqCst);
    }

    /// A component that can no longer do its work (a listener that died) says so here.
    pub fn report_failure(&self, component: &str, error: &str) {
        tracing::error!(
            component,
            error,
            "component failed; health check now reports unavailable"
        );
        *self.inner.failure.lock() = Some(format!("{component}: {error}"));
    }

    /// `Ok` while every pipeline runs; otherwise why not.
    pub fn status(&self) -> Result<(), String> {
        if let Some(f) = self.inner.failure.lock().clone() {
            return Err(f);
        }
        if self.inner.running.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("not running (starting or shutting down)".to_string())
        }
    }
}

struct Named {
    name: String,
    component: Arc<dyn Component>,
}

/// The running pipelines of one configuration.
pub struct Service {
    extensions: Vec<Named>,
    exporters: Vec<Named>,
    /// In shutdown order: for each pipeline, its first processor first.
    processors: Vec<Named>,
    receivers: Vec<Named>,
    telemetry: Telemetry,
    health: Health,
    metrics: weft_config::MetricsTelemetry,
    stop_metrics: CancellationToken,
    metrics_addr: Mutex<Option<SocketAddr>>,
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
        let telemetry = Telemetry::new();
        let health = Health::default();
        let shared = SharedInstances::default();
        let ctx = |kind: Kind, id: &ComponentId| BuildContext {
            id: id.clone(),
            kind,
            telemetry: telemetry.clone(),
            health: health.clone(),
            shared: shared.clone(),
        };
        let config = |kind: Kind, id: &ComponentId| -> anyhow::Result<&AnyConfig> {
            loaded
                .configs
                .get(&(kind, id.clone()))
                .with_context(|| format!("{} {id} has no decoded configuration", kind.singular()))
        };

        let mut extensions = Vec::new();
        for id in &doc.service_extensions {
            let factory = registry
                .extension(&id.type_name)
                .context("validated extension type")?;
            let component = factory
                .build(ctx(Kind::Extension, id), config(Kind::Extension, id)?)
                .with_context(|| format!("building extension {id}"))?;
            extensions.push(Named {
                name: format!("extension {id}"),
                component,
            });
        }

        // Each exporter id once, with the signals of every pipeline that lists it.
        let mut built_exporters: Vec<(ComponentId, BuiltExporter)> = Vec::new();
        for section in &doc.exporters {
            let signals: Vec<Signal> = doc
                .pipelines
                .iter()
                .filter(|(_, p)| p.exporters.contains(&section.id))
                .map(|(pid, _)| pid.signal)
                .collect();
            if signals.is_empty() {
                continue;
            }
            let factory = registry
                .exporter(&section.id.type_name)
                .context("validated exporter type")?;
            let built = factory
                .build(
                    ctx(Kind::Exporter, &section.id),
                    config(Kind::Exporter, &section.id)?,
                    &signals,
                )
                .with_context(|| format!("building exporter {}", section.id))?;
            built_exporters.push((section.id.clone(), built));
        }
        let exporters = built_exporters
            .iter()
            .map(|(id, b)| Named {
                name: format!("exporter {id}"),
                component: b.component.clone(),
            })
            .collect();

        // Each pipeline, back to front; remember its entry point for the receivers.
        let mut processors = Vec::new();
        let mut traces_entries: Vec<(usize, Arc<dyn Consumer<Traces>>)> = Vec::new();
        let mut logs_entries: Vec<(usize, Arc<dyn Consumer<Logs>>)> = Vec::new();
        for (index, (pid, pipeline)) in doc.pipelines.iter().enumerate() {
            let procs: Vec<(ComponentId, &ProcessorFactory, &AnyConfig)> = pipeline
                .processors
                .iter()
                .map(|id| {
                    let factory = registry
                        .processor(&id.type_name)
                        .context("validated processor type")?;
                    Ok((id.clone(), factory, config(Kind::Processor, id)?))
                })
                .collect::<anyhow::Result<_>>()?;
            match pid.signal {
                Signal::Traces => {
                    let sinks = built_exporters
                        .iter()
                        .filter(|(id, _)| pipeline.exporters.contains(id))
                        .map(|(id, b)| {
                            b.traces
                                .clone()
                                .with_context(|| format!("exporter {id} built without traces"))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let entry = chain(
                        &ctx,
                        pid.to_string(),
                        &procs,
                        Fanout::of(sinks),
                        &mut processors,
                        |f, c, cfg, next| f.build_traces(c, cfg, next),
                    )?;
                    traces_entries.push((index, entry));
                }
                Signal::Logs => {
                    let sinks = built_exporters
                        .iter()
                        .filter(|(id, _)| pipeline.exporters.contains(id))
                        .map(|(id, b)| {
                            b.logs
                                .clone()
                                .with_context(|| format!("exporter {id} built without logs"))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let entry = chain(
                        &ctx,
                        pid.to_string(),
                        &procs,
                        Fanout::of(sinks),
                        &mut processors,
                        |f, c, cfg, next| f.build_logs(c, cfg, next),
                    )?;
                    logs_entries.push((index, entry));
                }
            }
        }

        let mut receivers = Vec::new();
        for section in &doc.receivers {
            let feeds = |signal: Signal| -> Vec<usize> {
                doc.pipelines
                    .iter()
                    .enumerate()
                    .filter(|(_, (pid, p))| {
                        pid.signal == signal && p.receivers.contains(&section.id)
                    })
                    .map(|(i, _)| i)
                    .collect()
            };
            let traces: Vec<_> = traces_entries
                .iter()
                .filter(|(i, _)| feeds(Signal::Traces).contains(i))
                .map(|(_, c)| c.clone())
                .collect();
            let logs: Vec<_> = logs_entries
                .iter()
                .filter(|(i, _)| feeds(Signal::Logs).contains(i))
                .map(|(_, c)| c.clone())
                .collect();
            if traces.is_empty() && logs.is_empty() {
                continue;
            }
            let consumers = ReceiverConsumers {
                traces: (!traces.is_empty()).then(|| Fanout::of(traces)),
                logs: (!logs.is_empty()).then(|| Fanout::of(logs)),
            };
            let factory = registry
                .receiver(&section.id.type_name)
                .context("validated receiver type")?;
            let component = factory
                .build(
                    ctx(Kind::Receiver, &section.id),
                    config(Kind::Receiver, &section.id)?,
                    consumers,
                )
                .with_context(|| format!("building receiver {}", section.id))?;
            receivers.push(Named {
                name: format!("receiver {}", section.id),
                component,
            });
        }

        Ok(Self {
            extensions,
            exporters,
            processors,
            receivers,
            telemetry,
            health,
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
        for group in [
            &self.extensions,
            &self.exporters,
            &self.processors,
            &self.receivers,
        ] {
            for named in group.iter() {
                named
                    .component
                    .start()
                    .await
                    .with_context(|| format!("starting {}", named.name))?;
            }
        }
        self.health.set_running(true);
        Ok(())
    }

    /// Stops everything, upstream first: receivers stop accepting, processors flush into the
    /// exporters, exporters drain their queues, all by `deadline`.
    pub async fn shutdown(&self, deadline: Instant) {
        self.health.set_running(false);
        for group in [
            &self.receivers,
            &self.processors,
            &self.exporters,
            &self.extensions,
        ] {
            for named in group.iter() {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, named.component.shutdown(deadline)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(component = %named.name, error = %format!("{e:#}"), "shutdown failed")
                    }
                    Err(_) => {
                        tracing::error!(component = %named.name, "shutdown did not finish before the deadline")
                    }
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

/// Builds one pipeline's processors back to front and returns its entry point.
fn chain<T: Payload>(
    ctx: &dyn Fn(Kind, &ComponentId) -> BuildContext,
    pipeline: String,
    procs: &[(ComponentId, &ProcessorFactory, &AnyConfig)],
    sink: Arc<dyn Consumer<T>>,
    components: &mut Vec<Named>,
    build: impl Fn(
        &ProcessorFactory,
        BuildContext,
        &AnyConfig,
        Arc<dyn Consumer<T>>,
    ) -> anyhow::Result<Arc<dyn Processor<T>>>,
) -> anyhow::Result<Arc<dyn Consumer<T>>> {
    let mut next = sink;
    let mut built = Vec::new();
    for (id, factory, cfg) in procs.iter().rev() {
        let processor = build(factory, ctx(Kind::Processor, id), cfg, next)
            .with_context(|| format!("building processor {id} in pipeline {pipeline}"))?;
        built.push(Named {
            name: format!("processor {id} (pipeline {pipeline})"),
            component: processor.clone(),
        });
        next = processor;
    }
    built.reverse();
    components.extend(built);
    Ok(next)
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
