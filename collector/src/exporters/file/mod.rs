//! The `file` exporter: writes every batch to a file, as the Collector's fileexporter does —
//! one OTLP/JSON export request per line, or length-prefixed protobuf — with optional
//! size-based rotation.
//!
//! There is no sending queue and no buffer across batches: `consume` returns once the batch
//! was written to the file (handed to the operating system, one `write` per batch), so a
//! crash of Weft right after the answer loses nothing acknowledged — a durable window
//! upstream forgets what it was told was taken — and a write error goes back to the caller
//! as a retryable refusal instead of being dropped. (The Collector buffers and flushes every
//! `flush_interval`; the key is accepted for its configs and has nothing left to do here.)
//! Traces and logs of one exporter share the file.

mod config;
#[cfg(test)]
mod tests;
mod writer;

use std::io;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use weft_config::SignalKind;

pub use config::{Config, Format, Rotation};
use writer::{Policy, RotatingFile};

use crate::component::{BuildContext, BuiltExporter, Component, ExporterFactory, Stability};
use crate::pipeline::{
    all_signals, ConsumeError, Consumer, Consumers, MakeConsumer, Payload, Signal,
};
use crate::telemetry::ExporterMetrics;

/// How long a caller is asked to wait after a failed write.
const WRITE_FAILED_RETRY_AFTER: Duration = Duration::from_secs(1);

pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>(
        "file",
        Stability::Beta,
        all_signals(),
        "Writes to a file as OTLP/JSON lines (or length-prefixed protobuf), with rotation by size",
        build,
    )
}

fn build(ctx: BuildContext, cfg: &Config, signals: &[SignalKind]) -> anyhow::Result<BuiltExporter> {
    let shared = Arc::new(Shared {
        exporter: ctx.id_str(),
        path: cfg.path.clone(),
        format: cfg.format,
        policy: cfg.rotation.as_ref().map(|r| Policy {
            max_bytes: if r.max_megabytes == 0 {
                100
            } else {
                r.max_megabytes
            } * 1024
                * 1024,
            max_backups: r.max_backups as usize,
            max_age: (r.max_days > 0).then(|| Duration::from_secs(r.max_days * 24 * 3600)),
            localtime: r.localtime,
        }),
        append: cfg.append,
        file: Mutex::new(None),
    });
    let make = MakeFile {
        ctx: &ctx,
        shared: &shared,
    };
    Ok(BuiltExporter {
        consumers: Consumers::build(signals, &make)?,
        component: Arc::new(FileExporter { shared }),
    })
}

/// Every signal's consumer writes to the one shared file.
struct MakeFile<'a> {
    ctx: &'a BuildContext,
    shared: &'a Arc<Shared>,
}

impl MakeConsumer for MakeFile<'_> {
    fn consumer<T: Payload>(&self) -> anyhow::Result<Arc<dyn Consumer<T>>> {
        Ok(Arc::new(FileConsumer::<T>::new(
            self.ctx,
            self.shared.clone(),
        )))
    }
}

/// What the per-signal consumers and the lifecycle share.
struct Shared {
    exporter: String,
    path: PathBuf,
    format: Format,
    policy: Option<Policy>,
    append: bool,
    /// Open between start and shutdown. Locked only on blocking threads.
    file: Mutex<Option<RotatingFile>>,
}

impl Shared {
    /// Blocking: appends one record, through to the file.
    fn write(&self, record: &[u8]) -> io::Result<()> {
        let mut file = self.file.lock();
        let file = file.as_mut().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotConnected, "the exporter is not running")
        })?;
        file.write_record(record)
    }
}

/// One batch as the file holds it.
fn encode<T: Payload>(format: Format, data: &T) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut line = data.request().encode_json();
            line.push(b'\n');
            line
        }
        Format::Proto => {
            let bytes = data.to_bytes();
            let mut record = Vec::with_capacity(4 + bytes.len());
            record.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            record.extend_from_slice(&bytes);
            record
        }
    }
}

struct FileConsumer<T> {
    shared: Arc<Shared>,
    metrics: ExporterMetrics,
    _signal: PhantomData<fn() -> T>,
}

impl<T: Payload> FileConsumer<T> {
    fn new(ctx: &BuildContext, shared: Arc<Shared>) -> Self {
        let id = ctx.id_str();
        Self {
            shared,
            metrics: ExporterMetrics::new(&ctx.telemetry, &id, T::ITEM, T::SIGNAL.as_str()),
            _signal: PhantomData,
        }
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for FileConsumer<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        let items = data.item_count() as u64;
        let shared = self.shared.clone();
        let format = shared.format;
        // Encoding and writing are blocking work: keep them off the async workers.
        let result = tokio::task::spawn_blocking(move || shared.write(&encode(format, &data)))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(format!("the write task failed: {e}"))));
        match result {
            Ok(()) => {
                self.metrics.sent.inc_by(items);
                Ok(())
            }
            Err(e) => {
                self.metrics.send_failed.inc_by(items);
                let message = format!(
                    "exporter {} cannot write to \"{}\": {e}; check that the disk has space and Weft may write there",
                    self.shared.exporter,
                    self.shared.path.display()
                );
                tracing::error!(component = %self.shared.exporter, error = %e, path = %self.shared.path.display(), "{message}");
                Err(ConsumeError::unavailable(message, WRITE_FAILED_RETRY_AFTER))
            }
        }
    }
}

/// Opens the file at start, closes it at shutdown.
struct FileExporter {
    shared: Arc<Shared>,
}

#[async_trait]
impl Component for FileExporter {
    async fn start(&self) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        let opened = tokio::task::spawn_blocking(move || {
            RotatingFile::open(&shared.path, shared.policy.clone(), shared.append)
        })
        .await?;
        let file = opened.map_err(|e| {
            anyhow::anyhow!(
                "exporter {}: cannot open \"{}\" for writing: {e}",
                self.shared.exporter,
                self.shared.path.display()
            )
        })?;
        *self.shared.file.lock() = Some(file);
        Ok(())
    }

    async fn shutdown(&self, _deadline: Instant) -> anyhow::Result<()> {
        // Every batch is in the file already: closing is all that is left (on a blocking
        // thread, as every lock of the file is).
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || drop(shared.file.lock().take())).await?;
        Ok(())
    }
}
