//! The `debug` exporter: prints what reaches it to stdout, for trying out pipelines.
//!
//! Unlike the Collector (which logs through its own logger by default), every verbosity is
//! written straight to stdout, so the output shows whatever Weft's log level is. Each batch
//! is rendered first and then written under one stdout lock, so concurrent batches do not
//! interleave. There is no queue: a batch is printed before `consume` returns.

mod format;
mod format_metrics;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, SignalKind};

use crate::component::{BuildContext, BuiltExporter, Component, ExporterFactory, Stability};
use crate::pipeline::{all_signals, ConsumeError, Consumer, Consumers, MakeConsumer, Payload};
use crate::telemetry::ExporterMetrics;

/// `exporters::debug`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub verbosity: Verbosity,
    /// Batches printed per signal in each second before sampling starts.
    pub sampling_initial: u64,
    /// After `sampling_initial`, every this-many-th batch of the second is printed (0: none).
    pub sampling_thereafter: u64,
    /// Accepted for Collector configs; Weft's debug exporter always writes to stdout.
    pub use_internal_logger: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            verbosity: Verbosity::Basic,
            sampling_initial: 2,
            sampling_thereafter: 1,
            use_internal_logger: None,
        }
    }
}

/// `verbosity`: how much of each batch is printed.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// A summary line per batch: counts of resources and items.
    #[default]
    Basic,
    /// The summary and a line per span (name, trace id, span id, attributes) or log record
    /// (body, trace id, span id, severity, attributes).
    Normal,
    /// The summary and every field of every item.
    Detailed,
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.use_internal_logger == Some(true) {
            diags.warning(
                &path.key("use_internal_logger"),
                "ignored: Weft's debug exporter always writes to stdout",
            );
        }
    }
}

pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>(
        "debug",
        Stability::Beta,
        all_signals(),
        "Prints what it gets to stdout: a summary, a line per item, or every field",
        build,
    )
}

fn build(ctx: BuildContext, cfg: &Config, signals: &[SignalKind]) -> anyhow::Result<BuiltExporter> {
    DebugExporter::build(&ctx, cfg, signals, Box::new(std::io::stdout()))
}

/// Where the output goes: stdout, or a buffer in tests.
type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

struct DebugExporter;

impl Component for DebugExporter {}

impl DebugExporter {
    /// The exporter's consumers writing to `sink` (stdout, or a buffer in tests).
    fn build(
        ctx: &BuildContext,
        cfg: &Config,
        signals: &[SignalKind],
        sink: Box<dyn Write + Send>,
    ) -> anyhow::Result<BuiltExporter> {
        let make = MakePrinter {
            ctx,
            cfg,
            sink: Arc::new(Mutex::new(sink)),
        };
        Ok(BuiltExporter {
            consumers: Consumers::build(signals, &make)?,
            component: Arc::new(DebugExporter),
        })
    }
}

/// Every signal's printer writes to the one sink.
struct MakePrinter<'a> {
    ctx: &'a BuildContext,
    cfg: &'a Config,
    sink: Sink,
}

impl MakeConsumer for MakePrinter<'_> {
    fn consumer<T: Payload>(&self) -> anyhow::Result<Arc<dyn Consumer<T>>> {
        let id = self.ctx.id_str();
        Ok(Arc::new(Printer::<T>::new(
            self.ctx,
            &id,
            self.cfg,
            self.sink.clone(),
        )))
    }
}

/// Prints one signal's batches.
struct Printer<T> {
    exporter: String,
    verbosity: Verbosity,
    sink: Sink,
    sampler: Mutex<Sampler>,
    metrics: ExporterMetrics,
    _signal: PhantomData<fn() -> T>,
}

impl<T: Payload> Printer<T> {
    fn new(ctx: &BuildContext, id: &str, cfg: &Config, sink: Sink) -> Self {
        Self {
            exporter: id.to_string(),
            verbosity: cfg.verbosity,
            sink,
            sampler: Mutex::new(Sampler::new(cfg.sampling_initial, cfg.sampling_thereafter)),
            metrics: ExporterMetrics::new(&ctx.telemetry, id, T::ITEM, T::SIGNAL.as_str()),
            _signal: PhantomData,
        }
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for Printer<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        let items = data.item_count() as u64;
        if self.sampler.lock().admit(Instant::now()) {
            let text = format::render(&data, self.verbosity, &self.exporter, chrono::Utc::now());
            let mut sink = self.sink.lock();
            if let Err(e) = sink.write_all(text.as_bytes()).and_then(|()| sink.flush()) {
                // Printing is best effort: a closed stdout must not stop the pipeline.
                tracing::warn!(component = %self.exporter, error = %e, "cannot write to stdout");
            }
        }
        self.metrics.sent.inc_by(items);
        Ok(())
    }
}

/// zap's sampling, which the Collector's `sampling_initial` / `sampling_thereafter` configure:
/// in each one-second window the first `initial` batches pass, then every `thereafter`-th.
struct Sampler {
    initial: u64,
    thereafter: u64,
    window: Option<Instant>,
    seen: u64,
}

impl Sampler {
    const WINDOW: Duration = Duration::from_secs(1);

    fn new(initial: u64, thereafter: u64) -> Self {
        Self {
            initial,
            thereafter,
            window: None,
            seen: 0,
        }
    }

    fn admit(&mut self, now: Instant) -> bool {
        match self.window {
            Some(start) if now.duration_since(start) < Self::WINDOW => {}
            _ => {
                self.window = Some(now);
                self.seen = 0;
            }
        }
        self.seen += 1;
        if self.seen <= self.initial {
            return true;
        }
        self.thereafter > 0 && (self.seen - self.initial).is_multiple_of(self.thereafter)
    }
}
