//! What every exporter shares, as layers around the exporter's own [`Sender`]:
//!
//! ```text
//! consume ─▶ QueueSender (bounded, num_consumers workers) ─▶ RetrySender ─▶ TimeoutSender ─▶ Sender
//! ```
//!
//! An exporter writes only `Sender::send` and says, at the source, whether a failure is worth
//! retrying ([`ExportError::retryable`], [`ExportError::throttled`]) or not
//! ([`ExportError::permanent`]). Everything upstream asks the error.

mod partial;
mod persistent;
mod queue;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::Deserialize;
use weft_config::{
    ComponentId, ConfigPath, DataHolding, Diagnostics, Duration as CfgDuration, ExtensionReference,
    SignalKind,
};

use crate::component::{BuildContext, BuiltExporter, Component};
use crate::pipeline::{Consumer, Consumers, MakeConsumer, Payload};
use crate::telemetry::{ExporterMetrics, Telemetry};

pub use partial::PartialSuccess;
pub use persistent::{FileQueue, Receipt};
pub use queue::QueueSender;
pub(crate) use retry::jitter;
pub use retry::{RetrySender, TimeoutSender};

/// Why one send attempt failed, and whether trying again can help.
#[derive(Clone, Debug, thiserror::Error)]
pub struct ExportError {
    pub message: String,
    pub retry: Retry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The data will never be accepted as it is (a 400, a schema error): do not retry.
    Never,
    /// A transient failure: retry with backoff.
    Backoff,
    /// The backend asked to wait at least this long (Retry-After, RetryInfo).
    After(Duration),
}

impl ExportError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: Retry::Never,
        }
    }
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: Retry::Backoff,
        }
    }
    pub fn throttled(message: impl Into<String>, after: Duration) -> Self {
        Self {
            message: message.into(),
            retry: Retry::After(after),
        }
    }
    pub fn is_retryable(&self) -> bool {
        self.retry != Retry::Never
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Sends one batch to a backend: one attempt, no retry, no queue.
#[async_trait]
pub trait Sender<T: Payload>: Send + Sync + 'static {
    async fn send(&self, data: &T) -> Result<(), ExportError>;
}

/// `sending_queue`, as in the Collector's exporterhelper.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    pub enabled: bool,
    /// Workers sending from the queue in parallel.
    pub num_consumers: usize,
    /// Batches the queue holds; when full, new data is refused with a retryable answer.
    pub queue_size: usize,
    /// A `file_storage` extension id: the queue is then kept on disk and survives restarts
    /// and crashes (see [`FileQueue`]).
    pub storage: Option<String>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            storage: None,
        }
    }
}

/// `retry_on_failure`, as in the Collector's exporterhelper.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    pub enabled: bool,
    pub initial_interval: CfgDuration,
    pub randomization_factor: f64,
    pub multiplier: f64,
    pub max_interval: CfgDuration,
    /// Give up on a batch after this long in all; 0 means never give up.
    pub max_elapsed_time: CfgDuration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_interval: CfgDuration::from_secs(5),
            randomization_factor: 0.5,
            multiplier: 1.5,
            max_interval: CfgDuration::from_secs(30),
            max_elapsed_time: CfgDuration::from_secs(300),
        }
    }
}

impl QueueSettings {
    /// The `storage` extension it names, for the exporter's
    /// [`ComponentConfig::extension_references`](weft_config::ComponentConfig::extension_references);
    /// `path` is the exporter's section.
    pub fn extension_references(&self, path: &ConfigPath) -> Vec<ExtensionReference> {
        self.storage
            .iter()
            .map(|id| ExtensionReference::new(path.key("sending_queue").key("storage"), id.clone()))
            .collect()
    }

    /// What a queue holds: acknowledged batches in memory, unless it is on disk or off.
    pub fn holds_data(&self) -> DataHolding {
        match (self.enabled, &self.storage) {
            (false, _) => DataHolding::Nothing,
            (true, Some(_)) => DataHolding::Durable,
            (true, None) => DataHolding::Memory {
                remedy: "give it sending_queue::storage (or sending_queue::enabled: false)",
            },
        }
    }

    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.enabled && self.num_consumers == 0 {
            diags.error(&path.key("num_consumers"), "must be at least 1");
        }
        if self.enabled && self.queue_size == 0 {
            diags.error(&path.key("queue_size"), "must be at least 1");
        }
        if let Some(storage) = &self.storage {
            if let Err(e) = storage.parse::<ComponentId>() {
                diags.error(&path.key("storage"), e);
            }
        }
    }
}

impl RetrySettings {
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if !self.enabled {
            return;
        }
        if self.initial_interval.is_zero() {
            diags.error(&path.key("initial_interval"), "must be greater than 0");
        }
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            diags.error(&path.key("randomization_factor"), "must be between 0 and 1");
        }
        if self.multiplier < 1.0 || !self.multiplier.is_finite() {
            diags.error(&path.key("multiplier"), "must be at least 1");
        }
        if self.max_interval < self.initial_interval {
            diags.error(
                &path.key("max_interval"),
                "must not be less than initial_interval",
            );
        }
    }
}

/// Wraps `sender` in the timeout, retry and queue layers a config asks for, with metrics.
pub fn build<T: Payload>(
    id: &ComponentId,
    telemetry: &Telemetry,
    sender: impl Sender<T>,
    timeout: Duration,
    retry: &RetrySettings,
    queue: &QueueSettings,
) -> Arc<QueueSender<T>> {
    let metrics = ExporterMetrics::new(telemetry, &id.to_string(), T::ITEM, T::SIGNAL.as_str());
    let timed = TimeoutSender::new(sender, timeout);
    let retrying = RetrySender::new(id.to_string(), timed, retry.clone(), metrics.clone());
    Arc::new(QueueSender::new(id.to_string(), retrying, queue, metrics))
}

/// As [`build`], for an exporter being built: a `sending_queue.storage` naming a
/// `file_storage` extension puts the queue on disk, in its own folder for this exporter and
/// signal.
pub fn build_queued<T: Payload>(
    ctx: &BuildContext,
    sender: impl Sender<T>,
    timeout: Duration,
    retry: &RetrySettings,
    queue: &QueueSettings,
) -> anyhow::Result<Arc<QueueSender<T>>> {
    let metrics = ExporterMetrics::new(&ctx.telemetry, &ctx.id_str(), T::ITEM, T::SIGNAL.as_str());
    let file = match (&queue.storage, queue.enabled) {
        (Some(storage), true) => {
            let storage_id: ComponentId = storage
                .parse()
                .map_err(|e| anyhow::anyhow!("sending_queue::storage: {e}"))?;
            let storage = crate::extensions::file_storage::FileStorage::lookup(&ctx.shared, &storage_id)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "sending_queue::storage: extension \"{storage_id}\" is not running: define it under extensions and list it in service::extensions"
                    )
                })?;
            let log = storage.queue_log(&ctx.id, T::SIGNAL.as_str(), &ctx.telemetry);
            let dir = log.dir.clone();
            let queue = FileQueue::open_with(log, queue.queue_size as u64).map_err(|e| {
                anyhow::anyhow!("cannot open the persistent queue in {}: {e}", dir.display())
            })?;
            Some(Arc::new(queue))
        }
        _ => None,
    };
    let timed = TimeoutSender::new(sender, timeout);
    let retrying = RetrySender::new(ctx.id_str(), timed, retry.clone(), metrics.clone());
    Ok(Arc::new(QueueSender::with_storage(
        ctx.id_str(),
        retrying,
        queue,
        metrics,
        file,
    )))
}

/// Makes an exporter's [`Sender`] for any signal: an exporter whose only per-signal part
/// is its sender (`otlp`, `otlphttp`) implements this once, generic over the batch type.
pub trait MakeSender {
    fn sender<T: Payload>(&self) -> anyhow::Result<impl Sender<T>>;
}

/// A queued exporter for `signals`: for each, `make`'s sender behind the timeout, retry and
/// queue layers of `cfg`. The queues are the consumers, and start and stop together.
pub fn build_queued_exporter(
    ctx: &BuildContext,
    signals: &[SignalKind],
    make: &impl MakeSender,
    timeout: Duration,
    retry: &RetrySettings,
    queue: &QueueSettings,
) -> anyhow::Result<BuiltExporter> {
    /// Each signal's queue, remembered to start and stop it.
    struct Queued<'a, M> {
        ctx: &'a BuildContext,
        make: &'a M,
        timeout: Duration,
        retry: &'a RetrySettings,
        queue: &'a QueueSettings,
        components: Mutex<Vec<Arc<dyn Component>>>,
    }
    impl<M: MakeSender> MakeConsumer for Queued<'_, M> {
        fn consumer<T: Payload>(&self) -> anyhow::Result<Arc<dyn Consumer<T>>> {
            let sender = self.make.sender::<T>()?;
            let queued = build_queued(self.ctx, sender, self.timeout, self.retry, self.queue)?;
            self.components.lock().push(queued.clone());
            Ok(queued)
        }
    }
    let queued = Queued {
        ctx,
        make,
        timeout,
        retry,
        queue,
        components: Mutex::new(Vec::new()),
    };
    let consumers = Consumers::build(signals, &queued)?;
    Ok(BuiltExporter {
        consumers,
        component: Arc::new(ComponentGroup::new(queued.components.into_inner())),
    })
}

/// Several components started and stopped as one: an exporter's per-signal queues, which
/// [`BuiltExporter`](crate::component::BuiltExporter) reports as a single component.
///
/// `start` starts each in order and fails at the first failure; `shutdown` stops all of them
/// concurrently (each against the same deadline) and reports every failure.
pub struct ComponentGroup {
    components: Vec<Arc<dyn Component>>,
}

impl ComponentGroup {
    pub fn new(components: Vec<Arc<dyn Component>>) -> Self {
        Self { components }
    }
}

#[async_trait]
impl Component for ComponentGroup {
    async fn start(&self) -> anyhow::Result<()> {
        for c in &self.components {
            c.start().await?;
        }
        Ok(())
    }

    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        let results =
            futures::future::join_all(self.components.iter().map(|c| c.shutdown(deadline))).await;
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.err().map(|e| format!("{e:#}")))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests;
