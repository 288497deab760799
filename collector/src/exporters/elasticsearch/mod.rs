//! The `elasticsearch` exporter: logs (and spans) into Elasticsearch or OpenSearch through the
//! `_bulk` API.
//!
//! Per signal the layers are:
//!
//! ```text
//! consume ─▶ Batcher (flush::interval / flush::bytes) ─▶ QueueSender (num_workers)
//!         ─▶ RetrySender (retry_on_failure) ─▶ TimeoutSender (timeout) ─▶ BulkSender
//! ```
//!
//! - [`batcher`]: the `flush` buffer, so small pipeline batches become fewer bulk requests;
//!   off with `flush::interval: 0` or `sending_queue::enabled: false`.
//! - the shared queue, retry and timeout layers of [`crate::exporters::helper`];
//! - [`bulk::BulkSender`]: one attempt = documents → `_bulk` requests of at most
//!   `flush::bytes`, each item's answer read, retryable items retried per `retry`, refused
//!   ones dead-lettered;
//! - [`transport`]: endpoints round-robin with failover, auth, headers, gzip;
//! - [`index`] and [`mapping`]: which index, which document, which `_id`;
//! - [`template`]: the index template installed for data streams or dated indices.

mod batcher;
mod bulk;
mod config;
mod index;
mod mapping;
mod template;
#[cfg(test)]
mod tests;
mod transport;

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use weft_config::SignalKind;

pub use config::{Config, MappingMode, Secret};

use self::batcher::Batcher;
use self::bulk::{bulk_path, BulkMetrics, BulkSender, DeadLetter, DocBuilder, EsSignal, Target};
use self::index::IndexPattern;
use self::mapping::Mapper;
use self::template::{data_stream_template, pattern_template, TemplateInstaller};
use self::transport::Transport;
use crate::component::{BuildContext, BuiltExporter, Component, ExporterFactory, Stability};
use crate::exporters::helper::{self, ComponentGroup};
use crate::pipeline::{Consumer, Consumers, Logs, Traces};
use crate::telemetry::ExporterMetrics;

pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>(
        "elasticsearch",
        Stability::Alpha,
        vec![SignalKind::Traces, SignalKind::Logs],
        "Indexes logs and spans into Elasticsearch/OpenSearch with _bulk: dated indices or data streams, flat or ECS documents, deterministic ids, item retries, a dead-letter file",
        build,
    )
}

/// What both signals share.
struct Shared {
    id: String,
    transport: Arc<Transport>,
    dead_letter: Option<Arc<DeadLetter>>,
}

fn build(ctx: BuildContext, cfg: &Config, signals: &[SignalKind]) -> anyhow::Result<BuiltExporter> {
    let id = ctx.id_str();
    let transport =
        Arc::new(Transport::new(cfg).map_err(|e| anyhow::anyhow!("exporter {id}: {e:#}"))?);
    let dead_letter = match &cfg.dead_letter.path {
        Some(path) => Some(Arc::new(
            DeadLetter::open(path).map_err(|e| anyhow::anyhow!("exporter {id}: {e:#}"))?,
        )),
        None => None,
    };
    let shared = Shared {
        id,
        transport,
        dead_letter,
    };
    let mut parts = Parts::default();
    parts.add::<Traces>(signals, &ctx, cfg, &shared, cfg.traces_pattern())?;
    parts.add::<Logs>(signals, &ctx, cfg, &shared, cfg.logs_pattern())?;
    Ok(BuiltExporter {
        consumers: parts.consumers,
        component: Arc::new(Lifecycle {
            exporter: shared.id,
            installers: parts.installers,
            group: ComponentGroup::new(parts.components),
            background: Mutex::new(Vec::new()),
        }),
    })
}

/// What the signals' parts add up to.
#[derive(Default)]
struct Parts {
    consumers: Consumers,
    components: Vec<Arc<dyn Component>>,
    installers: Vec<Arc<TemplateInstaller>>,
}

impl Parts {
    /// Adds signal `T`'s parts, when a pipeline of `T` lists the exporter.
    fn add<T: EsSignal>(
        &mut self,
        signals: &[SignalKind],
        ctx: &BuildContext,
        cfg: &Config,
        shared: &Shared,
        pattern: Result<IndexPattern, String>,
    ) -> anyhow::Result<()> {
        if !signals.contains(&T::SIGNAL) {
            return Ok(());
        }
        let built = signal::<T>(ctx, cfg, shared, pattern)?;
        self.installers.extend(built.template);
        self.components.push(built.component);
        self.consumers.insert(built.consumer);
        Ok(())
    }
}

/// One signal's consumer, its lifecycle, and its template.
struct SignalParts<T: EsSignal> {
    consumer: Arc<dyn Consumer<T>>,
    component: Arc<dyn Component>,
    template: Option<Arc<TemplateInstaller>>,
}

fn signal<T: EsSignal>(
    ctx: &BuildContext,
    cfg: &Config,
    shared: &Shared,
    pattern: Result<IndexPattern, String>,
) -> anyhow::Result<SignalParts<T>> {
    let id = &shared.id;
    let name = T::SIGNAL.as_str();
    let mode = cfg.mapping.mode;
    let (target, template) = if cfg.data_stream.enabled {
        let stream = format!(
            "{name}-{}-{}",
            cfg.data_stream.dataset, cfg.data_stream.namespace
        );
        let template = cfg
            .data_stream
            .install_template
            .then(|| data_stream_template(name, &stream, mode));
        (Target::DataStream(stream), template)
    } else {
        let pattern = pattern.map_err(|e| anyhow::anyhow!("exporter {id}: {name}_index: {e}"))?;
        let template = cfg
            .index_template
            .install
            .then(|| pattern_template(name, &pattern, mode));
        (Target::Pattern(pattern), template)
    };
    let template = template.map(|spec| {
        Arc::new(TemplateInstaller::new(
            id.clone(),
            spec,
            shared.transport.clone(),
        ))
    });
    let sender = BulkSender::<T> {
        exporter: id.clone(),
        transport: shared.transport.clone(),
        builder: DocBuilder {
            mapper: Mapper::from_settings(&cfg.mapping),
            target,
        },
        max_bytes: cfg.flush.bytes.bytes() as usize,
        retry: cfg.retry.clone(),
        path: bulk_path(&cfg.pipeline),
        template: template.clone(),
        dead_letter: shared.dead_letter.clone(),
        metrics: BulkMetrics::new::<T>(&ctx.telemetry, id),
        _signal: PhantomData,
    };
    let queue_settings = cfg.queue_settings();
    let queue = helper::build_queued(
        ctx,
        sender,
        cfg.timeout.get(),
        &cfg.retry_on_failure,
        &queue_settings,
    )?;
    let (consumer, component): (Arc<dyn Consumer<T>>, Arc<dyn Component>) =
        if queue_settings.enabled && !cfg.flush.interval.is_zero() {
            let batcher = Arc::new(Batcher::new(
                id.clone(),
                queue,
                cfg.flush.bytes.bytes() as usize,
                cfg.flush.interval.get(),
                ExporterMetrics::new(&ctx.telemetry, id, T::ITEM, name),
            ));
            (batcher.clone(), batcher)
        } else {
            (queue.clone(), queue)
        };
    Ok(SignalParts {
        consumer,
        component,
        template,
    })
}

/// The exporter as one component: the signals' buffers and queues, plus the template
/// installs started in the background at start.
struct Lifecycle {
    exporter: String,
    installers: Vec<Arc<TemplateInstaller>>,
    group: ComponentGroup,
    background: Mutex<Vec<JoinHandle<()>>>,
}

#[async_trait]
impl Component for Lifecycle {
    async fn start(&self) -> anyhow::Result<()> {
        for installer in &self.installers {
            let installer = installer.clone();
            let exporter = self.exporter.clone();
            // Not awaited: the cluster may be down at start. Sends wait for the template.
            self.background.lock().push(tokio::spawn(async move {
                if let Err(e) = installer.ensure().await {
                    tracing::warn!(
                        component = %exporter, error = %e,
                        "index template not installed yet; retrying before the first bulk request"
                    );
                }
            }));
        }
        self.group.start().await
    }

    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        for task in self.background.lock().drain(..) {
            task.abort();
        }
        self.group.shutdown(deadline).await
    }
}
