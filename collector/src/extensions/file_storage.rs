//! `file_storage`: a directory where exporters keep their persistent sending queues
//! (`sending_queue: { storage: file_storage }`), as the Collector's filestorage extension, and
//! where a durable `tail_sampling` window (`tail_sampling: { storage: file_storage }`) keeps
//! its write-ahead log.
//!
//! Each exporter and signal gets its own folder `<directory>/<exporter id>-<signal>`, each
//! durable window `<directory>/<processor id>-window`; both are segment logs
//! ([`crate::storage`]: the format, the crash-safety rule and the writer thread), opened by
//! their users ([`crate::exporters::helper::FileQueue`],
//! [`crate::processors::tail_sampling::wal`]) with the settings this extension gives.
//!
//! fsync policy (`fsync`), the same for every log here:
//! - `false` (the default, as in the Collector): a batch is acknowledged to the client once
//!   the log's writer thread has written it to the segment file. It survives Weft being
//!   killed (`kill -9`, a crash, an OOM kill), because the kernel holds the written bytes, but
//!   not a power loss or kernel crash.
//! - `true`: a batch is acknowledged once it is also synced to the disk (`fdatasync`). The
//!   writer syncs once per group commit — everything appended while the previous write was
//!   in progress — not once per batch, and syncs the folder when it creates a segment file.
//!   Bookkeeping records (deliveries, decisions) are not synced on their own: losing one
//!   only means sending something again.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use weft_config::{ComponentConfig, ComponentId, ConfigPath, Diagnostics, Duration};

use crate::component::{BuildContext, Component, ExtensionFactory, SharedInstances, Stability};
use crate::storage::{LogMetrics, LogOptions};
use crate::telemetry::Telemetry;

pub fn factory() -> ExtensionFactory {
    ExtensionFactory::new::<Config>(
        "file_storage",
        Stability::Alpha,
        "a directory for persistent sending queues and durable tail-sampling windows that survive restarts and crashes",
        build,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Required: where the queues live.
    pub directory: Option<PathBuf>,
    /// Sync every batch to the disk before acknowledging it (see the module docs).
    pub fsync: bool,
    /// Create `directory` when missing.
    pub create_directory: bool,
    /// Bytes of segment files one queue (or durable window's log) may hold; past it new data
    /// is refused (retryably).
    pub max_size_mib: u64,
    /// Accepted for Collector compatibility (file locking timeout); unused.
    pub timeout: Duration,
    /// Accepted for Collector compatibility: Weft deletes delivered segments as it goes, so
    /// there is nothing to compact.
    pub compaction: Option<serde_yaml::Value>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            directory: None,
            fsync: false,
            create_directory: true,
            max_size_mib: 1024,
            timeout: Duration::from_secs(1),
            compaction: None,
        }
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        match &self.directory {
            None => diags.error(
                &path.key("directory"),
                "required: the folder the queues are kept in",
            ),
            Some(d) if d.as_os_str().is_empty() => {
                diags.error(&path.key("directory"), "must not be empty")
            }
            Some(_) => {}
        }
        if self.max_size_mib == 0 {
            diags.error(&path.key("max_size_mib"), "must be at least 1");
        }
    }
}

/// The running extension: what exporters look up by its id.
#[derive(Debug)]
pub struct FileStorage {
    directory: PathBuf,
    fsync: bool,
    max_bytes: u64,
}

impl FileStorage {
    /// The storage built for `id`, if that extension is running.
    pub fn lookup(shared: &SharedInstances, id: &ComponentId) -> Option<Arc<FileStorage>> {
        shared.get::<FileStorage>(&storage_key(id))
    }

    /// Where and how the persistent queue of one exporter and signal is kept: the folder
    /// `<directory>/<exporter id>-<signal>`, with its log's metrics (labels `exporter`,
    /// `data_type`).
    pub fn queue_log(
        &self,
        exporter: &ComponentId,
        signal: &str,
        telemetry: &Telemetry,
    ) -> LogOptions {
        let folder = format!("{}-{signal}", exporter.to_string().replace('/', "_"));
        let id = exporter.to_string();
        let labels = [("exporter", id.as_str()), ("data_type", signal)];
        let metrics = LogMetrics {
            bytes: telemetry.gauge(
                "weft_exporter_persistent_queue_bytes",
                "Bytes of a persistent sending queue's segment files",
                &labels,
            ),
            segments: telemetry.gauge(
                "weft_exporter_persistent_queue_segments",
                "Segment files of a persistent sending queue",
                &labels,
            ),
            records_per_write: telemetry.histogram(
                "weft_exporter_persistent_queue_records_per_write",
                "Records a persistent sending queue wrote with one write (group commit)",
                &labels,
                LogMetrics::records_per_write_buckets,
            ),
            write_errors: telemetry.counter(
                "weft_exporter_persistent_queue_write_errors",
                "Writes to a persistent sending queue that failed (the batches were refused, retryably)",
                &labels,
            ),
            corrupt_records: telemetry.counter(
                "weft_exporter_persistent_queue_corrupt_records",
                "Damaged records of a persistent sending queue skipped (checksum mismatch): their batches are lost",
                &labels,
            ),
            torn_tails: telemetry.counter(
                "weft_exporter_persistent_queue_torn_tails",
                "Records torn by a crash mid-write (never acknowledged), cut off when the queue was opened",
                &labels,
            ),
        };
        LogOptions {
            metrics,
            ..LogOptions::new(self.directory.join(folder), self.fsync, self.max_bytes, id)
        }
    }

    /// The folder of one processor's write-ahead log (the durable `tail_sampling` window):
    /// `<directory>/<processor id>-window`.
    pub fn window_dir(&self, processor: &ComponentId) -> PathBuf {
        let folder = format!("{}-window", processor.to_string().replace('/', "_"));
        self.directory.join(folder)
    }

    /// Whether writes are synced to the disk before they are acknowledged.
    pub fn fsync(&self) -> bool {
        self.fsync
    }

    /// Bytes of segment files one queue or log may hold.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// Shared instances are keyed by component id; the extension's own id is prefixed so it
/// cannot collide with a processor of the same name.
fn storage_key(id: &ComponentId) -> ComponentId {
    ComponentId::new(format!("extension_{}", id.type_name), id.name.as_deref())
}

struct Running;

impl Component for Running {}

fn build(ctx: BuildContext, cfg: &Config) -> anyhow::Result<Arc<dyn Component>> {
    let directory = cfg.directory.clone().unwrap_or_default();
    if cfg.create_directory {
        std::fs::create_dir_all(&directory).map_err(|e| {
            anyhow::anyhow!(
                "extensions::{}: cannot create {}: {e}",
                ctx.id,
                directory.display()
            )
        })?;
    } else if !directory.is_dir() {
        anyhow::bail!(
            "extensions::{}: directory {} does not exist",
            ctx.id,
            directory.display()
        );
    }
    let storage = FileStorage {
        directory,
        fsync: cfg.fsync,
        max_bytes: cfg.max_size_mib * 1024 * 1024,
    };
    ctx.shared
        .get_or_try_insert(&storage_key(&ctx.id), || Ok(Arc::new(storage)))?;
    Ok(Arc::new(Running))
}
