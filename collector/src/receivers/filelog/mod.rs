//! The `filelog` receiver: tails log files (the pods' container logs under
//! `/var/log/pods`, an application's JSON log files) as the Collector's `filelogreceiver`,
//! turns each line into a log record with the [`crate::operators`] listed under
//! `operators:`, and feeds logs pipelines, where a `tail_sampling` window joins lines that
//! carry a trace id to their trace.
//!
//! - [`config`]: the Collector's keys and defaults;
//! - `finder`: which paths the globs match;
//! - `reader`: one file: fingerprint, offsets, lines, multi-line records, `max_log_size`;
//! - `tailer`: the polling loop on the receiver's own thread, batches, backpressure, commits;
//! - `checkpoint`: the committed offsets in the `file_storage` folder.
//!
//! Contract: a line's offset is committed only after the pipeline's `consume` returned `Ok`
//! for the batch holding it, and with `storage` the commit is on disk before the next batch
//! is read; after a restart (`kill -9` included) reading resumes at the last commit, so a
//! line is read again at most when it was not yet taken (at-least-once). Backpressure
//! pauses reading; lines are never dropped for it.
//!
//! File watching: a `notify` watcher on each include glob's fixed leading folder wakes the
//! loop when something changes there, so a new line goes out without waiting for the next
//! poll; polling every `poll_interval` remains the source of truth (a watcher that cannot be
//! set up — inotify limits, a folder that does not exist yet — only costs latency).

pub mod checkpoint;
pub mod config;
mod finder;
mod reader;
mod tailer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use async_trait::async_trait;
use notify::Watcher;
use parking_lot::Mutex;
use weft_config::SignalKind;

use crate::component::{BuildContext, Component, ReceiverFactory, Stability};
use crate::extensions::file_storage::FileStorage;
use crate::operators::Chain;
use crate::pipeline::{Consumer, Logs};
pub use config::Config;
use finder::Finder;
use reader::Splitting;
use tailer::{Metrics, Settings, Tailer};

pub fn factory() -> ReceiverFactory {
    ReceiverFactory::new::<Config>(
        "filelog",
        Stability::Alpha,
        vec![SignalKind::Logs],
        "tails log files (container logs, JSON lines) with the Collector's stanza operators",
        |ctx, cfg, next| Ok(Arc::new(FileLogReceiver::new(ctx, cfg, next)?) as Arc<dyn Component>),
    )
}

/// Everything the loop needs, prepared at build time.
struct Plan {
    settings: Settings,
    finder: Finder,
    chain: Chain,
    consumer: Arc<dyn Consumer<Logs>>,
    /// The folder for committed offsets and whether to sync them, with `storage`.
    storage: Option<(std::path::PathBuf, bool)>,
    metrics: Metrics,
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

pub struct FileLogReceiver {
    id: String,
    span: tracing::Span,
    plan: Mutex<Option<Plan>>,
    running: Mutex<Option<Running>>,
}

impl FileLogReceiver {
    pub fn new(
        ctx: BuildContext,
        cfg: &Config,
        next: crate::pipeline::Consumers,
    ) -> anyhow::Result<Self> {
        let id = ctx.id_str();
        let consumer = next
            .get::<Logs>()
            .with_context(|| format!("receiver {id} feeds logs pipelines only"))?;
        let storage = match cfg.storage_id() {
            None => None,
            Some(sid) => {
                let storage = FileStorage::lookup(&ctx.shared, &sid).with_context(|| {
                    format!(
                        "receivers::{id}::storage: extension \"{sid}\" is not running: define it under extensions (file_storage) and list it in service::extensions"
                    )
                })?;
                Some((storage.receiver_dir(&ctx.id), storage.fsync()))
            }
        };
        let (line_start, line_end) = cfg.multiline_patterns();
        let max_log_size = cfg.max_log_size.0 as usize;
        let settings = Settings {
            id: id.clone(),
            start_at: cfg.start_at,
            poll_interval: cfg.poll_interval.get(),
            fingerprint_size: cfg.fingerprint_size.0 as usize,
            split: Splitting {
                max_log_size,
                line_start,
                line_end,
            },
            max_concurrent_files: cfg.max_concurrent_files,
            encoding: cfg.encoding().context("encoding (validation checks it)")?,
            include_file_name: cfg.include_file_name,
            include_file_path: cfg.include_file_path,
            force_flush_period: cfg.force_flush_period.get(),
        };
        let chain = Chain::build(&cfg.decoded_operators(), &id, &ctx.telemetry, max_log_size)?;
        Ok(Self {
            span: ctx.span(),
            plan: Mutex::new(Some(Plan {
                settings,
                finder: Finder::new(&cfg.include, &cfg.exclude)?,
                chain,
                consumer,
                storage,
                metrics: Metrics::new(&ctx.telemetry, &id),
            })),
            running: Mutex::new(None),
            id,
        })
    }
}

/// A watcher on the globs' fixed folders that nudges the loop through `wake`; `None` (and a
/// warning) when it cannot be set up: polling alone then.
fn watch(
    id: &str,
    finder: &Finder,
    wake: std::sync::mpsc::SyncSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                // A full channel already holds a wake-up: nothing is lost by not adding one.
                let _ = wake.try_send(());
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(component = %id, error = %e, "no file watcher: new lines are found by polling alone (every poll_interval)");
            return None;
        }
    };
    let mut watched = 0;
    for root in finder.watch_roots() {
        match watcher.watch(&root, notify::RecursiveMode::Recursive) {
            Ok(()) => watched += 1,
            Err(e) => tracing::info!(
                component = %id, path = %root.display(), error = %e,
                "not watching this folder (polling finds its files)"
            ),
        }
    }
    (watched > 0).then_some(watcher)
}

#[async_trait]
impl Component for FileLogReceiver {
    /// Reads the committed offsets (a damaged file fails the start, naming it), then starts
    /// the loop's thread.
    async fn start(&self) -> anyhow::Result<()> {
        let plan = self
            .plan
            .lock()
            .take()
            .with_context(|| format!("receiver {} was already started", self.id))?;
        let id = self.id.clone();
        let checkpoint = match plan.storage.clone() {
            None => None,
            Some((dir, fsync)) => Some(
                tokio::task::spawn_blocking(move || checkpoint::Checkpoint::open(&dir, fsync))
                    .await?
                    .with_context(|| format!("receivers::{id}::storage"))?,
            ),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let rt = tokio::runtime::Handle::current();
        let span = self.span.clone();
        let stop_flag = stop.clone();
        let id = self.id.clone();
        let thread = std::thread::Builder::new()
            .name(format!("filelog-{}", self.id))
            .spawn(move || {
                let _entered = span.enter();
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let watcher = watch(&id, &plan.finder, tx);
                let tailer = Tailer::new(
                    plan.settings,
                    plan.finder,
                    plan.chain,
                    plan.consumer,
                    rt,
                    stop_flag,
                    checkpoint,
                    plan.metrics,
                );
                tailer.run(rx);
                drop(watcher);
            })
            .context("cannot start the filelog thread")?;
        *self.running.lock() = Some(Running { stop, thread });
        tracing::info!(component = %self.id, "reading log files");
        Ok(())
    }

    /// Stops the loop after the batch in hand (its offsets are committed if the pipeline
    /// takes it, else it is read again at the next start).
    async fn shutdown(&self, deadline: Instant) -> anyhow::Result<()> {
        let Some(running) = self.running.lock().take() else {
            return Ok(());
        };
        running.stop.store(true, Ordering::Relaxed);
        let join = tokio::task::spawn_blocking(move || running.thread.join());
        let deadline = tokio::time::Instant::from_std(deadline);
        match tokio::time::timeout_at(deadline, join).await {
            Ok(Ok(Ok(()))) => tracing::info!(component = %self.id, "stopped reading log files"),
            Ok(Ok(Err(_))) => tracing::error!(component = %self.id, "the filelog thread panicked"),
            Ok(Err(e)) => {
                tracing::error!(component = %self.id, error = %e, "joining the filelog thread failed")
            }
            Err(_) => tracing::warn!(
                component = %self.id,
                "the filelog thread was still handing a batch on at the shutdown deadline; what it had not committed is read again at the next start"
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
