//! The bounded sending queue: the exporter's buffer against a slow or failing backend, and
//! the point where a full buffer becomes backpressure to the client.
//!
//! Shutdown differs by where the queue is kept:
//! - **In memory**: it keeps sending until just before the deadline (the backend may come
//!   back), then drops what is left, counting it in `otelcol_exporter_send_failed_*` and
//!   logging it (`dropping data`, with the number of items).
//! - **Persistent** (`sending_queue.storage`): its batches are already on disk, so waiting
//!   for the backend gains nothing. Workers take no new batch and make no new attempt; an
//!   attempt already on the wire may finish (bounded by the exporter's `timeout`, and
//!   abandoned at the deadline), so that a healthy backend's answers are not thrown away — a
//!   batch abandoned after the backend stored it would be sent twice. What is not
//!   confirmed delivered stays in the queue and is sent by the next start: at least once,
//!   nothing lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::persistent::{FileQueue, PushError};
use super::{QueueSettings, RetrySender, Sender};
use crate::component::Component;
use crate::pipeline::{ConsumeError, Consumer, Payload};
use crate::telemetry::ExporterMetrics;

/// How long a client is asked to wait before sending again into a full queue.
const FULL_QUEUE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// At shutdown, workers are told to give up this long before the deadline (at most half of
/// the time left), so that what they abandon is logged and counted, and the queue's shutdown
/// returns, by the deadline: the service stops waiting for a component at the deadline.
const SHUTDOWN_CLEANUP: Duration = Duration::from_secs(1);

/// When workers should give up so that cleaning up still ends by `deadline`.
fn give_up_at(deadline: Instant) -> Instant {
    let now = Instant::now();
    let remaining = deadline.saturating_duration_since(now);
    now + remaining.saturating_sub(SHUTDOWN_CLEANUP.min(remaining / 2))
}

/// A queue in front of the retry layer, or (with `enabled: false`) a direct, synchronous call.
pub struct QueueSender<T: Payload> {
    exporter: String,
    retry: Arc<dyn Deliver<T>>,
    metrics: ExporterMetrics,
    num_consumers: usize,
    /// False when `sending_queue.enabled` is false: every batch is sent in the caller's task.
    queued: bool,
    /// With `sending_queue.storage`: the on-disk queue used instead of the in-memory channel.
    file: Option<Arc<FileQueue>>,
    state: Mutex<QueueState<T>>,
    /// Cancelled just before the shutdown deadline: workers stop retrying and drop what is
    /// left (or, with a persistent queue, leave it on disk).
    give_up: CancellationToken,
    /// Persistent queue: cancelled when shutdown begins: workers take no new batch and make
    /// no new attempt (see the module docs).
    stop: CancellationToken,
    /// In-memory queue: items workers took from the queue after `give_up` and dropped.
    dropped_at_shutdown: Arc<AtomicU64>,
}

struct QueueState<T> {
    tx: Option<mpsc::Sender<T>>,
    rx: Option<mpsc::Receiver<T>>,
    /// The receiver the workers share once started, kept to count what is left when the
    /// shutdown deadline passes.
    shared_rx: Option<Arc<tokio::sync::Mutex<mpsc::Receiver<T>>>>,
    workers: Vec<JoinHandle<()>>,
}

#[async_trait]
trait Deliver<T: Payload>: Send + Sync {
    async fn deliver(
        &self,
        data: &T,
        give_up: &CancellationToken,
    ) -> Result<(), super::ExportError>;

    async fn deliver_until(
        &self,
        data: &T,
        give_up: &CancellationToken,
        stop: &CancellationToken,
    ) -> Result<(), super::ExportError>;
}

#[async_trait]
impl<T: Payload, S: Sender<T>> Deliver<T> for RetrySender<S> {
    async fn deliver(
        &self,
        data: &T,
        give_up: &CancellationToken,
    ) -> Result<(), super::ExportError> {
        RetrySender::deliver(self, data, give_up).await
    }

    async fn deliver_until(
        &self,
        data: &T,
        give_up: &CancellationToken,
        stop: &CancellationToken,
    ) -> Result<(), super::ExportError> {
        RetrySender::deliver_until(self, data, give_up, stop).await
    }
}

impl<T: Payload> QueueSender<T> {
    pub fn new<S: Sender<T>>(
        exporter: String,
        retry: RetrySender<S>,
        settings: &QueueSettings,
        metrics: ExporterMetrics,
    ) -> Self {
        Self::with_storage(exporter, retry, settings, metrics, None)
    }

    /// A queue kept in `file` (a persistent queue) when given, else in memory.
    pub fn with_storage<S: Sender<T>>(
        exporter: String,
        retry: RetrySender<S>,
        settings: &QueueSettings,
        metrics: ExporterMetrics,
        file: Option<Arc<FileQueue>>,
    ) -> Self {
        let file = file.filter(|_| settings.enabled);
        let retry = retry.with_persistent_queue(file.is_some());
        if let Some(f) = &file {
            metrics.queue_capacity.set(settings.queue_size as i64);
            metrics.queue_size.set(f.len() as i64);
        }
        let (tx, rx) = if settings.enabled && file.is_none() {
            let (tx, rx) = mpsc::channel(settings.queue_size.max(1));
            metrics.queue_capacity.set(settings.queue_size as i64);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Self {
            exporter,
            retry: Arc::new(retry),
            metrics,
            num_consumers: settings.num_consumers.max(1),
            queued: settings.enabled,
            file,
            state: Mutex::new(QueueState {
                tx,
                rx,
                shared_rx: None,
                workers: Vec::new(),
            }),
            give_up: CancellationToken::new(),
            stop: CancellationToken::new(),
            dropped_at_shutdown: Arc::default(),
        }
    }

    fn queued(&self, tx: &mpsc::Sender<T>) -> i64 {
        (tx.max_capacity() - tx.capacity()) as i64
    }

    /// Queues `data` without waiting, or gives it back when the queue cannot take it (full,
    /// shutting down, or disabled), so a caller that buffers in front of the queue keeps it
    /// instead of losing it. Nothing is counted as failed: the caller still owns the batch.
    ///
    /// A persistent queue takes the batch once it is appended, without waiting for the disk
    /// (this call cannot wait): should the write then fail, the batch is logged as dropped
    /// and counted in `otelcol_exporter_send_failed_*`.
    pub fn try_enqueue(&self, data: T) -> Result<(), T> {
        if let Some(file) = &self.file {
            let receipt = match file.push(&data.to_bytes()) {
                Ok(r) => r,
                Err(_) => return Err(data),
            };
            self.metrics.queue_size.set(file.len() as i64);
            let items = data.item_count() as u64;
            let metrics = self.metrics.clone();
            let exporter = self.exporter.clone();
            let watch = async move {
                if let Err(e) = receipt.written().await {
                    metrics.send_failed.inc_by(items);
                    tracing::error!(component = %exporter, error = %e, dropped_items = items, "dropping data: cannot write it to the persistent queue");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(watch);
                }
                Err(_) => {
                    tracing::warn!(component = %self.exporter, "a batch was queued outside the runtime; a failure to write it would not be reported")
                }
            }
            return Ok(());
        }
        let Some(tx) = self.state.lock().tx.clone() else {
            return Err(data);
        };
        match tx.try_send(data) {
            Ok(()) => {
                self.metrics.queue_size.set(self.queued(&tx));
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d)) => {
                Err(d)
            }
        }
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for QueueSender<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        let items = data.item_count() as u64;
        if !self.queued {
            // No queue: send now, in the caller's task, and report the outcome.
            return match self.retry.deliver(&data, &self.give_up).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_retryable() => Err(ConsumeError::unavailable(
                    format!("exporter {} could not send: {e}", self.exporter),
                    match e.retry {
                        super::Retry::After(d) => d,
                        _ => FULL_QUEUE_RETRY_AFTER,
                    },
                )),
                Err(e) => Err(ConsumeError::Permanent(format!(
                    "exporter {}: {e}",
                    self.exporter
                ))),
            };
        }
        if let Some(file) = &self.file {
            // Acknowledged only once the log's writer has written it to the segment file.
            let pushed = match file.push(&data.to_bytes()) {
                Ok(receipt) => {
                    self.metrics.queue_size.set(file.len() as i64);
                    receipt.written().await
                }
                Err(e) => Err(e),
            };
            return match pushed {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.metrics.enqueue_failed.inc_by(items);
                    let reason = match e {
                        PushError::Closed => format!("exporter {} is shutting down", self.exporter),
                        e => format!("exporter {}: {e}", self.exporter),
                    };
                    Err(ConsumeError::unavailable(reason, FULL_QUEUE_RETRY_AFTER))
                }
            };
        }
        let tx = self.state.lock().tx.clone();
        let Some(tx) = tx else {
            self.metrics.enqueue_failed.inc_by(items);
            return Err(ConsumeError::unavailable(
                format!("exporter {} is shutting down", self.exporter),
                FULL_QUEUE_RETRY_AFTER,
            ));
        };
        match tx.try_send(data) {
            Ok(()) => {
                self.metrics.queue_size.set(self.queued(&tx));
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.enqueue_failed.inc_by(items);
                Err(ConsumeError::unavailable(
                    format!("sending queue of exporter {} is full", self.exporter),
                    FULL_QUEUE_RETRY_AFTER,
                ))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.metrics.enqueue_failed.inc_by(items);
                Err(ConsumeError::unavailable(
                    format!("exporter {} is shutting down", self.exporter),
                    FULL_QUEUE_RETRY_AFTER,
                ))
            }
        }
    }
}

#[async_trait]
impl<T: Payload> Component for QueueSender<T> {
    async fn start(&self) -> anyhow::Result<()> {
        if let Some(file) = &self.file {
            self.start_file_workers(file.clone());
            return Ok(());
        }
        let mut state = self.state.lock();
        let Some(rx) = state.rx.take() else {
            return Ok(());
        };
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        state.shared_rx = Some(rx.clone());
        for _ in 0..self.num_consumers {
            let rx = rx.clone();
            let retry = self.retry.clone();
            let give_up = self.give_up.clone();
            let metrics = self.metrics.clone();
            let dropped = self.dropped_at_shutdown.clone();
            state.workers.push(tokio::spawn(async move {
                loop {
                    let next = {
                        let mut rx = rx.lock().await;
                        let next = rx.recv().await;
                        metrics.queue_size.set(rx.len() as i64);
                        next
                    };
                    let Some(batch) = next else { break };
                    if give_up.is_cancelled() {
                        // Past the shutdown deadline: count what is left instead of trying it.
                        let items = batch.item_count() as u64;
                        metrics.send_failed.inc_by(items);
                        dropped.fetch_add(items, Ordering::Relaxed);
                        continue;
                    }
                    // Failures are logged and counted by the retry layer.
                    let _ = retry.deliver(&batch, &give_up).await;
                }
            }));
        }
        Ok(())
    }

    /// Stops taking data and sends what is queued until (just before) `deadline`; then what
    /// is left is dropped, counted as failed and logged (`dropping data`, with the number of
    /// items). A persistent queue stops at once and keeps it on disk instead (see the module
    /// docs).
    async fn shutdown(&self, deadline: Instant) -> anyhow::Result<()> {
        if let Some(file) = &self.file {
            return self.shutdown_file(file, deadline).await;
        }
        let (workers, shared_rx, unstarted_rx) = {
            let mut state = self.state.lock();
            state.tx = None; // closing the channel lets workers finish once it is empty
            (
                std::mem::take(&mut state.workers),
                state.shared_rx.take(),
                state.rx.take(),
            )
        };
        // Never started: nothing will send what was queued.
        if let Some(mut rx) = unstarted_rx {
            let left = drain_items(&mut rx);
            if left > 0 {
                self.metrics.send_failed.inc_by(left);
                self.metrics.queue_size.set(0);
                anyhow::bail!(
                    "exporter {}: dropped {left} {} queued before the exporter was started",
                    self.exporter,
                    T::ITEM
                );
            }
        }
        if workers.is_empty() {
            // The queue is disabled: in-flight synchronous sends stop retrying now.
            self.give_up.cancel();
            return Ok(());
        }
        let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
        let all = futures::future::join_all(workers);
        tokio::pin!(all);
        let give_up_at = give_up_at(deadline);
        if timeout_at(give_up_at, &mut all).await.is_err() {
            // Workers abandon what they are sending (the retry layer logs and counts each
            // batch), and count (rather than send) what is still queued.
            self.give_up.cancel();
            let mut left = 0;
            if timeout_at(deadline, all).await.is_err() {
                // A worker that did not stop: abort it and count what is still queued.
                aborts.iter().for_each(|a| a.abort());
                if let Some(rx) = shared_rx {
                    left = drain_items(&mut *rx.lock().await);
                    self.metrics.send_failed.inc_by(left);
                }
            }
            let dropped = left + self.dropped_at_shutdown.load(Ordering::Relaxed);
            if dropped > 0 {
                tracing::error!(
                    component = %self.exporter, dropped_items = dropped,
                    "dropping data: still queued at the shutdown deadline"
                );
            }
            self.metrics.queue_size.set(0);
            anyhow::bail!(
                "exporter {}: queue not drained by the shutdown deadline; the rest was dropped",
                self.exporter
            );
        }
        self.metrics.queue_size.set(0);
        Ok(())
    }
}

impl<T: Payload> QueueSender<T> {
    fn start_file_workers(&self, file: Arc<FileQueue>) {
        if !file.is_empty() {
            tracing::info!(
                component = %self.exporter, batches = file.len(),
                "resuming the persistent queue left by the previous run"
            );
        }
        let mut state = self.state.lock();
        for _ in 0..self.num_consumers {
            let file = file.clone();
            let retry = self.retry.clone();
            let give_up = self.give_up.clone();
            let stop = self.stop.clone();
            let metrics = self.metrics.clone();
            let exporter = self.exporter.clone();
            state.workers.push(tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        biased;
                        _ = stop.cancelled() => None,
                        next = file.pop_map(T::from_stored) => next,
                    };
                    let Some((ticket, batch)) = next else { break };
                    metrics.queue_size.set(file.len() as i64);
                    let batch = match batch {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!(component = %exporter, error = %e, "an unreadable batch in the persistent queue is skipped");
                            file.done(ticket);
                            continue;
                        }
                    };
                    match retry.deliver_until(&batch, &give_up, &stop).await {
                        // Delivered, or given up for good (counted by the retry layer).
                        Ok(()) => file.done(ticket),
                        // Shutting down: not confirmed, so it stays for the next start.
                        Err(e)
                            if e.is_retryable()
                                && (stop.is_cancelled() || give_up.is_cancelled()) =>
                        {
                            break
                        }
                        Err(_) => file.done(ticket),
                    }
                }
            }));
        }
    }

    /// Persistent queue: stop taking data, stop the workers (see the module docs), write
    /// what they recorded, and return; what was not delivered stays on disk for the next
    /// start (nothing is counted as dropped).
    async fn shutdown_file(&self, file: &FileQueue, deadline: Instant) -> anyhow::Result<()> {
        file.close();
        self.stop.cancel();
        let workers = std::mem::take(&mut self.state.lock().workers);
        let all = futures::future::join_all(workers);
        tokio::pin!(all);
        if timeout_at(give_up_at(deadline), &mut all).await.is_err() {
            // An attempt still on the wire (a backend that does not answer): abandon it.
            self.give_up.cancel();
            let _ = timeout_at(deadline, all).await;
        }
        file.shutdown().await;
        let left = file.undelivered();
        self.metrics.queue_size.set(file.len() as i64);
        if left > 0 {
            tracing::info!(
                component = %self.exporter, batches = left,
                "shutdown: not waiting for the backend; undelivered batches stay in the persistent queue until the next start"
            );
        }
        Ok(())
    }
}

/// `future`, unless `at` (a std `Instant`, as deadlines are) comes first. Relative to now, so
/// that tests on tokio's paused clock see the same delay.
async fn timeout_at<F: std::future::Future>(
    at: Instant,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(at.saturating_duration_since(Instant::now()), future).await
}

/// Empties a closed queue, returning how many items it held.
fn drain_items<T: Payload>(rx: &mut mpsc::Receiver<T>) -> u64 {
    let mut items = 0;
    while let Ok(batch) = rx.try_recv() {
        items += batch.item_count() as u64;
    }
    items
}
