//! `flush`: the exporter's buffer in front of its sending queue, so small pipeline batches
//! become fewer, larger `_bulk` requests.
//!
//! A batch is taken into the buffer (and acknowledged) at once. The buffer is handed to the
//! queue as one batch when it holds `flush::bytes` (measured as OTLP protobuf) or when its
//! oldest record has waited `flush::interval`. When the queue is full the buffer keeps what
//! it holds and tries again at the next tick; while it is also full itself, new batches are
//! refused with a retryable answer — the queue's backpressure, one step earlier. So buffered
//! data is never dropped for lack of room, and at most about two `flush::bytes` are held.
//!
//! At shutdown the buffer goes into the queue (waiting for room until the deadline), then
//! the queue drains as usual.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::component::Component;
use crate::exporters::helper::QueueSender;
use crate::pipeline::{ConsumeError, Consumer, Payload};
use crate::telemetry::ExporterMetrics;

/// How long a client is asked to wait when both the buffer and the queue are full.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often shutdown looks for room in the queue for the last buffer.
const SHUTDOWN_POLL: Duration = Duration::from_millis(20);

struct Buffer<T> {
    data: T,
    /// Encoded OTLP size of `data`.
    bytes: usize,
}

struct Inner<T: Payload> {
    exporter: String,
    queue: Arc<QueueSender<T>>,
    max_bytes: usize,
    interval: Duration,
    buffer: Mutex<Buffer<T>>,
    /// Signalled when the buffer goes from empty to holding something.
    filled: Notify,
    stop: CancellationToken,
    metrics: ExporterMetrics,
}

impl<T: Payload> Inner<T> {
    /// Hands the buffer to the queue; `true` when the buffer is empty afterwards.
    fn flush(&self) -> bool {
        let mut buf = self.buffer.lock();
        if buf.bytes == 0 && buf.data.item_count() == 0 {
            return true;
        }
        let data = std::mem::take(&mut buf.data);
        match self.queue.try_enqueue(data) {
            Ok(()) => {
                buf.bytes = 0;
                true
            }
            Err(back) => {
                buf.data = back;
                false
            }
        }
    }
}

/// The buffer for one signal; it owns (starts and stops) the queue behind it.
pub struct Batcher<T: Payload> {
    inner: Arc<Inner<T>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Payload> Batcher<T> {
    pub fn new(
        exporter: String,
        queue: Arc<QueueSender<T>>,
        max_bytes: usize,
        interval: Duration,
        metrics: ExporterMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                exporter,
                queue,
                max_bytes: max_bytes.max(1),
                interval,
                buffer: Mutex::new(Buffer {
                    data: T::default(),
                    bytes: 0,
                }),
                filled: Notify::new(),
                stop: CancellationToken::new(),
                metrics,
            }),
            ticker: Mutex::new(None),
        }
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for Batcher<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        let inner = &self.inner;
        let size = data.encoded_len();
        {
            let full = inner.buffer.lock().bytes >= inner.max_bytes;
            if full && !inner.flush() {
                return Err(ConsumeError::unavailable(
                    format!(
                        "exporter {}: the sending queue and the flush buffer are full",
                        inner.exporter
                    ),
                    FULL_RETRY_AFTER,
                ));
            }
        }
        let was_empty = {
            let mut buf = inner.buffer.lock();
            let was_empty = buf.data.item_count() == 0;
            Payload::merge(&mut buf.data, data);
            buf.bytes += size;
            was_empty
        };
        if inner.buffer.lock().bytes >= inner.max_bytes {
            // Full: queue it now. If the queue is full too, it stays for the next tick.
            inner.flush();
        }
        if was_empty {
            // Wake the ticker even after a flush: a flush that found the queue full left
            // the data for it.
            inner.filled.notify_one();
        }
        Ok(())
    }
}

#[async_trait]
impl<T: Payload> Component for Batcher<T> {
    async fn start(&self) -> anyhow::Result<()> {
        self.inner.queue.start().await?;
        let inner = self.inner.clone();
        *self.ticker.lock() = Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = inner.filled.notified() => {}
                    _ = inner.stop.cancelled() => return,
                }
                // Something arrived: flush it `interval` later, and keep trying every
                // `interval` while the queue has no room.
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(inner.interval) => {}
                        _ = inner.stop.cancelled() => return,
                    }
                    if inner.flush() {
                        break;
                    }
                    tracing::debug!(
                        component = %inner.exporter,
                        "the sending queue is full; the flush buffer keeps its data"
                    );
                }
            }
        }));
        Ok(())
    }

    async fn shutdown(&self, deadline: Instant) -> anyhow::Result<()> {
        let inner = &self.inner;
        inner.stop.cancel();
        let ticker = self.ticker.lock().take();
        if let Some(t) = ticker {
            let _ = t.await;
        }
        let mut lost = None;
        while !inner.flush() {
            if Instant::now() >= deadline {
                let mut buf = inner.buffer.lock();
                let items = buf.data.item_count() as u64;
                buf.data = T::default();
                buf.bytes = 0;
                inner.metrics.send_failed.inc_by(items);
                lost = Some(items);
                break;
            }
            tokio::time::sleep(SHUTDOWN_POLL).await;
        }
        let queue = inner.queue.shutdown(deadline).await;
        if let Some(items) = lost {
            tracing::error!(
                component = %inner.exporter, dropped_items = items,
                "the sending queue had no room for the flush buffer before the shutdown deadline"
            );
            anyhow::bail!(
                "exporter {}: dropped {items} {} still in the flush buffer at the shutdown deadline",
                inner.exporter,
                T::ITEM
            );
        }
        queue
    }
}
