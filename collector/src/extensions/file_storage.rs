//! `file_storage`: a directory where exporters keep their persistent sending queues
//! (`sending_queue: { storage: file_storage }`), as the Collector's filestorage extension, and
//! where a durable `tail_sampling` window (`tail_sampling: { storage: file_storage }`) keeps
//! its write-ahead log.
//!
//! Each exporter and signal gets its own folder `<directory>/<exporter id>-<signal>` of
//! append-only segment files (see [`crate::exporters::helper::FileQueue`] for the format and
//! the crash-safety contract); each durable window gets `<directory>/<processor id>-window`
//! (see [`crate::processors::tail_sampling::wal`]); each receiver that keeps state (the
//! `filelog` receiver's committed file offsets) gets `<directory>/<receiver id>-receiver`.
//!
//! fsync policy: with `fsync: false` (the default, as in the Collector) a batch is
//! acknowledged to the client once it is written to the segment file — it survives Weft being
//! killed (`kill -9`, a crash, an OOM kill), because the kernel holds the written bytes, but
//! not a power loss or kernel crash. With `fsync: true` every batch is synced to the disk
//! before it is acknowledged: it survives those too, at the cost of one fsync per batch.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use weft_config::{ComponentConfig, ComponentId, ConfigPath, Diagnostics, Duration};

use crate::component::{BuildContext, Component, ExtensionFactory, SharedInstances, Stability};
use crate::exporters::helper::FileQueue;

pub fn factory() -> ExtensionFactory {
    ExtensionFactory::new::<Config>(
        "file_storage",
        Stability::Alpha,
        "a directory for persistent sending queues that survive restarts and crashes",
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
    /// Bytes of segment files one queue may hold; past it new data is refused (retryably).
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

    /// Opens (recovering what a previous run left) the queue of one exporter and signal.
    pub fn queue(
        &self,
        exporter: &ComponentId,
        signal: &str,
        max_records: usize,
    ) -> anyhow::Result<Arc<FileQueue>> {
        let folder = format!("{}-{signal}", exporter.to_string().replace('/', "_"));
        let dir = self.directory.join(folder);
        let queue =
            FileQueue::open(&dir, self.fsync, self.max_bytes, max_records as u64).map_err(|e| {
                anyhow::anyhow!("cannot open the persistent queue in {}: {e}", dir.display())
            })?;
        if queue.corrupted > 0 {
            tracing::warn!(
                component = %exporter, records = queue.corrupted, dir = %dir.display(),
                "skipping queued batches whose checksum does not match (damaged on disk)"
            );
        }
        Ok(Arc::new(queue))
    }

    /// The folder of one processor's write-ahead log (the durable `tail_sampling` window):
    /// `<directory>/<processor id>-window`.
    pub fn window_dir(&self, processor: &ComponentId) -> PathBuf {
        let folder = format!("{}-window", processor.to_string().replace('/', "_"));
        self.directory.join(folder)
    }

    /// The folder of one receiver's own state (the `filelog` receiver's file offsets):
    /// `<directory>/<receiver id>-receiver`. The receiver creates it and owns what is in it.
    pub fn receiver_dir(&self, receiver: &ComponentId) -> PathBuf {
        let folder = format!("{}-receiver", receiver.to_string().replace('/', "_"));
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
