//! One signal's load balancer: routes each record to its backend's queue, sends from each
//! queue with retries, and moves the data of a backend that left the ring to the new owners.
//!
//! ```text
//! consume ─▶ split by owner (ring) ─▶ Backend queue ─▶ workers ─▶ otlp sender (timeout)
//!                                          │ ring change: backend left
//!                                          └─▶ queued and failing batches routed again
//! ```
//!
//! Contracts:
//! - `consume` takes a batch whole or not at all: every backend it touches must have room
//!   (`queue_size` batches) or the batch is refused with a retryable answer, so a refusal
//!   never leaves half of it queued (no duplicates on the client's retry).
//! - A backend that fails keeps its data: batches are retried with backoff until they are
//!   delivered, refused for good (permanent error), `max_elapsed_time` passes, or the
//!   backend leaves the ring; each of those is logged and counted, none is silent.
//! - A backend that leaves the ring (the resolver no longer returns it) is closed under the
//!   same lock that holds its queue: what it held, and a batch whose attempt failed after it
//!   left, is split again on the new ring and queued at the new owners. Re-routed data is
//!   never refused (a queue may then hold more than `queue_size` batches for a while):
//!   refusing it would lose it, since its client was answered long ago.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::ring::Ring;
use super::route::{self, Layout, RecordKey, RoutingKey, Split};
use crate::component::Component;
use crate::exporters::helper::{jitter, ExportError, QueueSettings, Retry, RetrySettings, Sender};
use crate::pipeline::{ConsumeError, Consumer, Payload};
use crate::telemetry::{ExporterMetrics, Telemetry};

/// How long a client is asked to wait before sending again into a full queue, or while no
/// backend is known yet.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// At shutdown, workers give up retrying this long before the deadline (at most half of the
/// time left), so what they abandon is counted by the deadline.
const SHUTDOWN_CLEANUP: Duration = Duration::from_secs(1);

/// Makes the sender of one backend endpoint (`host:port`, as the resolver gave it).
pub type MakeBackendSender<T> =
    Box<dyn Fn(&str) -> anyhow::Result<Arc<dyn Sender<T>>> + Send + Sync>;

/// What each backend's queue and retries do.
#[derive(Clone, Debug)]
pub struct Settings {
    pub queue: QueueSettings,
    pub retry: RetrySettings,
}

/// Receives the resolver's backend lists: one per signal the exporter carries.
pub trait RingListener: Send + Sync {
    /// Makes `endpoints` the ring. `Err` (a backend's client could not be made) keeps the
    /// previous ring.
    fn update(&self, endpoints: &[String]) -> anyhow::Result<()>;
}

/// The load balancer of one signal: a consumer, and a component that drains at shutdown.
pub struct Balancer<T: Payload> {
    inner: Arc<Inner<T>>,
}

struct Inner<T: Payload> {
    exporter: String,
    key: RoutingKey,
    layout: Layout,
    settings: Settings,
    make: MakeBackendSender<T>,
    state: RwLock<State<T>>,
    /// Next backend for a log record without a trace id.
    round_robin: AtomicUsize,
    /// Cancelled just before the shutdown deadline: workers stop retrying.
    give_up: CancellationToken,
    metrics: Metrics,
    span: tracing::Span,
}

struct State<T> {
    ring: Ring,
    /// One per ring endpoint, in [`Ring::endpoints`] order.
    backends: Vec<Arc<Backend<T>>>,
    /// Shutting down: backends made from now on are closed at once.
    closing: bool,
}

#[derive(Clone)]
struct Metrics {
    exporter: ExporterMetrics,
    /// Batches queued over all backends (`otelcol_exporter_queue_size`).
    queued: Arc<AtomicI64>,
    rerouted: Counter,
    telemetry: Telemetry,
}

/// One backend: its queue, its sender and its workers.
struct Backend<T> {
    endpoint: String,
    sender: Arc<dyn Sender<T>>,
    queue: Mutex<Queue<T>>,
    notify: Notify,
    /// Cancelled when the backend leaves the ring.
    retired: CancellationToken,
    workers: Mutex<Vec<JoinHandle<()>>>,
    success: Counter,
    failure: Counter,
    latency: Histogram,
}

struct Queue<T> {
    items: VecDeque<T>,
    /// No more pushes: the backend left the ring (its items were taken to be re-routed) or
    /// Weft is shutting down (workers finish what is queued, then stop).
    closed: bool,
}

impl<T: Payload> Balancer<T> {
    pub fn new(
        exporter: String,
        telemetry: &Telemetry,
        key: RoutingKey,
        layout: Layout,
        settings: Settings,
        make: MakeBackendSender<T>,
        span: tracing::Span,
    ) -> Self {
        let exporter_metrics =
            ExporterMetrics::new(telemetry, &exporter, T::ITEM, T::SIGNAL.as_str());
        exporter_metrics
            .queue_capacity
            .set(settings.queue.queue_size as i64);
        let rerouted = telemetry.counter(
            &format!("weft_loadbalancer_rerouted_{}", T::ITEM),
            &format!(
                "Number of {} queued for a backend that left the ring and routed again to its new owner",
                T::ITEM
            ),
            &[("exporter", &exporter)],
        );
        Self {
            inner: Arc::new(Inner {
                exporter,
                key,
                layout,
                settings,
                make,
                state: RwLock::new(State {
                    ring: Ring::default(),
                    backends: Vec::new(),
                    closing: false,
                }),
                round_robin: AtomicUsize::new(0),
                give_up: CancellationToken::new(),
                metrics: Metrics {
                    exporter: exporter_metrics,
                    queued: Arc::default(),
                    rerouted,
                    telemetry: telemetry.clone(),
                },
                span,
            }),
        }
    }

    /// The endpoints of the current ring (sorted).
    #[cfg(test)]
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.state.read().ring.endpoints().to_vec()
    }
}

impl<T: Payload> RingListener for Balancer<T> {
    fn update(&self, endpoints: &[String]) -> anyhow::Result<()> {
        self.inner.update(endpoints)
    }
}

impl<T: Payload> Inner<T> {
    fn update(self: &Arc<Self>, endpoints: &[String]) -> anyhow::Result<()> {
        let ring = Ring::new(endpoints);
        let retired = {
            let mut state = self.state.write();
            if state.ring.endpoints() == ring.endpoints() {
                return Ok(());
            }
            let mut old: HashMap<String, Arc<Backend<T>>> = state
                .backends
                .iter()
                .map(|b| (b.endpoint.clone(), b.clone()))
                .collect();
            let mut backends = Vec::with_capacity(ring.endpoints().len());
            for endpoint in ring.endpoints() {
                match old.remove(endpoint) {
                    Some(b) => backends.push(b),
                    None => backends.push(self.backend(endpoint, state.closing)?),
                }
            }
            for b in &backends {
                if b.workers.lock().is_empty() {
                    self.start_workers(b);
                }
            }
            state.ring = ring;
            state.backends = backends;
            old.into_values().collect::<Vec<_>>()
        };
        // The new ring is in place: nothing is queued for the retired backends any more.
        for backend in retired {
            backend.retired.cancel();
            let items = {
                let mut q = backend.queue.lock();
                q.closed = true;
                std::mem::take(&mut q.items)
            };
            backend.notify.notify_waiters();
            let moved: usize = items.iter().map(Payload::item_count).sum();
            if moved > 0 {
                tracing::info!(
                    component = %self.exporter, backend = %backend.endpoint, batches = items.len(), items = moved,
                    "backend left the ring: its queued data goes to the new owners"
                );
            }
            for batch in items {
                self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
                self.reroute(batch);
            }
        }
        self.publish_queue_size();
        Ok(())
    }

    fn backend(&self, endpoint: &str, closed: bool) -> anyhow::Result<Arc<Backend<T>>> {
        let sender = (self.make)(endpoint)?;
        let t = &self.metrics.telemetry;
        let outcome = |success: &str| {
            t.counter(
                "otelcol_loadbalancer_backend_outcome",
                "Number of successes and failures for each endpoint.",
                &[
                    ("exporter", &self.exporter),
                    ("endpoint", endpoint),
                    ("success", success),
                ],
            )
        };
        Ok(Arc::new(Backend {
            endpoint: endpoint.to_string(),
            sender,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                closed,
            }),
            notify: Notify::new(),
            retired: CancellationToken::new(),
            workers: Mutex::new(Vec::new()),
            success: outcome("true"),
            failure: outcome("false"),
            latency: t.histogram(
                "otelcol_loadbalancer_backend_latency",
                "Response latency in ms for the backends.",
                &[("exporter", &self.exporter), ("endpoint", endpoint)],
                || Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            ),
        }))
    }

    fn start_workers(self: &Arc<Self>, backend: &Arc<Backend<T>>) {
        if !self.settings.queue.enabled {
            return;
        }
        let mut workers = backend.workers.lock();
        for _ in 0..self.settings.queue.num_consumers.max(1) {
            let inner = self.clone();
            let backend = backend.clone();
            workers.push(tokio::spawn(
                async move {
                    while let Some(batch) = backend.next().await {
                        inner.metrics.queued.fetch_sub(1, Ordering::Relaxed);
                        inner.publish_queue_size();
                        inner.deliver(&backend, batch).await;
                    }
                }
                .instrument(self.span.clone()),
            ));
        }
    }

    fn publish_queue_size(&self) {
        self.metrics
            .exporter
            .queue_size
            .set(self.metrics.queued.load(Ordering::Relaxed));
    }

    /// Splits `batch` by owner on `ring`: (backend index, part) pairs.
    fn route(&self, ring: &Ring, batch: T) -> Vec<(usize, T)> {
        let backends = ring.endpoints().len();
        let choose = |key: RecordKey<'_>| match key {
            RecordKey::Key(k) => ring.owner(k).unwrap_or(0),
            RecordKey::None => self.round_robin.fetch_add(1, Ordering::Relaxed) % backends,
        };
        // Not reachable for a batch prost encoded; the first backend keeps the data.
        let split = route::split_batch(&batch, self.layout, self.key, choose);
        match split.unwrap_or(Split::Whole(0)) {
            Split::Empty => Vec::new(),
            Split::Whole(d) => vec![(d, batch)],
            Split::Parts(parts) => parts
                .into_iter()
                .map(|(d, bytes, n)| (d, T::from_encoded(bytes.into(), n)))
                .collect(),
        }
    }

    /// Routes data that was already accepted (queued for a backend that left, or failing
    /// there when it left) on the current ring. Never refused; lost only when Weft is
    /// shutting down and no backend remains, which is logged and counted.
    fn reroute(&self, batch: T) {
        let items = batch.item_count() as u64;
        let state = self.state.read();
        if state.ring.is_empty() {
            drop(state);
            self.metrics.exporter.send_failed.inc_by(items);
            tracing::error!(
                component = %self.exporter, dropped_items = items,
                "dropping data: its backend left the ring and no backend is left"
            );
            return;
        }
        self.metrics.rerouted.inc_by(items);
        for (d, part) in self.route(&state.ring, batch) {
            let backend = &state.backends[d];
            let n = part.item_count() as u64;
            let mut q = backend.queue.lock();
            if q.closed {
                drop(q);
                self.metrics.exporter.send_failed.inc_by(n);
                tracing::error!(
                    component = %self.exporter, backend = %backend.endpoint, dropped_items = n,
                    "dropping data: re-routed while shutting down"
                );
                continue;
            }
            q.items.push_back(part);
            drop(q);
            self.metrics.queued.fetch_add(1, Ordering::Relaxed);
            backend.notify.notify_one();
        }
        drop(state);
        self.publish_queue_size();
    }

    /// Sends one batch to `backend` until it is delivered or given up on (see the module's
    /// contracts).
    async fn deliver(&self, backend: &Backend<T>, batch: T) {
        let items = batch.item_count() as u64;
        let retry = &self.settings.retry;
        let started = Instant::now();
        let mut interval = retry.initial_interval.get();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let t0 = Instant::now();
            let sent = tokio::select! {
                biased;
                sent = backend.sender.send(&batch) => sent,
                _ = self.give_up.cancelled() => {
                    self.abandon(backend, items, "the shutdown deadline passed while sending");
                    return;
                }
            };
            backend.latency.observe(t0.elapsed().as_secs_f64() * 1000.0);
            let err = match sent {
                Ok(()) => {
                    backend.success.inc();
                    self.metrics.exporter.sent.inc_by(items);
                    return;
                }
                Err(e) => e,
            };
            backend.failure.inc();
            if backend.retired.is_cancelled() {
                // The backend left the ring while this attempt ran: its new owner gets it.
                self.reroute(batch);
                return;
            }
            let delay = match err.retry {
                Retry::Never => None,
                _ if !retry.enabled => None,
                Retry::Backoff => Some(jitter(interval, retry.randomization_factor)),
                Retry::After(d) => Some(d.max(jitter(interval, retry.randomization_factor))),
            };
            let max_elapsed = retry.max_elapsed_time.get();
            let reason = match delay {
                None if err.is_retryable() => Some("retries are disabled"),
                None => Some("the error is not retryable"),
                Some(d) if !max_elapsed.is_zero() && started.elapsed() + d > max_elapsed => {
                    Some("retry_on_failure::max_elapsed_time reached")
                }
                Some(_) => None,
            };
            if let Some(reason) = reason {
                self.metrics.exporter.send_failed.inc_by(items);
                tracing::error!(
                    component = %self.exporter, backend = %backend.endpoint, error = %err,
                    attempts = attempt, dropped_items = items, "dropping data: {reason}"
                );
                return;
            }
            let delay = delay.unwrap_or_default();
            tracing::warn!(
                component = %self.exporter, backend = %backend.endpoint, error = %err, attempt,
                retry_in = ?delay, "export to a backend failed; will retry"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = backend.retired.cancelled() => {
                    self.reroute(batch);
                    return;
                }
                _ = self.give_up.cancelled() => {
                    self.abandon(backend, items, &format!("the shutdown deadline passed while the backend was failing: {err}"));
                    return;
                }
            }
            interval = interval
                .mul_f64(retry.multiplier)
                .min(retry.max_interval.get());
        }
    }

    fn abandon(&self, backend: &Backend<T>, items: u64, why: &str) {
        self.metrics.exporter.send_failed.inc_by(items);
        tracing::error!(
            component = %self.exporter, backend = %backend.endpoint, dropped_items = items,
            "dropping data: {why}"
        );
    }

    /// Sends `batch` now, in the caller's task (`sending_queue::enabled: false`).
    async fn send_now(&self, parts: Vec<(Arc<Backend<T>>, T)>) -> Result<(), ConsumeError> {
        let attempts = parts.into_iter().map(|(backend, part)| async move {
            let items = part.item_count() as u64;
            let result = backend.sender.send(&part).await;
            match &result {
                Ok(()) => {
                    backend.success.inc();
                    self.metrics.exporter.sent.inc_by(items);
                }
                Err(_) => {
                    backend.failure.inc();
                }
            }
            result.map_err(|e| (backend.endpoint.clone(), e))
        });
        let results = futures::future::join_all(attempts).await;
        match results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some((endpoint, e)) => Err(refusal(&self.exporter, &endpoint, &e)),
        }
    }
}

fn refusal(exporter: &str, endpoint: &str, e: &ExportError) -> ConsumeError {
    let message = format!("exporter {exporter}: backend {endpoint}: {e}");
    match e.retry {
        Retry::Never => ConsumeError::Permanent(message),
        Retry::Backoff => ConsumeError::unavailable(message, RETRY_AFTER),
        Retry::After(d) => ConsumeError::unavailable(message, d),
    }
}

impl<T> Backend<T> {
    /// The next queued batch; `None` once the queue is closed and empty, or the backend left
    /// the ring.
    async fn next(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut q = self.queue.lock();
                if let Some(batch) = q.items.pop_front() {
                    return Some(batch);
                }
                if q.closed {
                    return None;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = self.retired.cancelled() => return None,
            }
        }
    }
}

/// What `consume` does after routing, decided under the ring's lock.
enum Taken<T> {
    Queued,
    /// `sending_queue::enabled: false`: send these parts now.
    SendNow(Vec<(Arc<Backend<T>>, T)>),
}

impl<T: Payload> Inner<T> {
    /// Routes `batch` and queues it (all or nothing), or hands back the parts to send now.
    fn take(&self, batch: T) -> Result<Taken<T>, ConsumeError> {
        let items = batch.item_count() as u64;
        let state = self.state.read();
        if state.ring.is_empty() {
            drop(state);
            self.metrics.exporter.enqueue_failed.inc_by(items);
            return Err(ConsumeError::unavailable(
                format!(
                    "exporter {}: no backend resolved yet (see the resolver's log lines)",
                    self.exporter
                ),
                RETRY_AFTER,
            ));
        }
        let parts = self.route(&state.ring, batch);
        if !self.settings.queue.enabled {
            return Ok(Taken::SendNow(
                parts
                    .into_iter()
                    .map(|(d, part)| (state.backends[d].clone(), part))
                    .collect(),
            ));
        }
        // All or nothing: lock every target queue (in ring order, so two callers cannot
        // deadlock), check each has room, then queue every part.
        let mut queues: Vec<_> = parts
            .iter()
            .map(|(d, _)| (*d, state.backends[*d].queue.lock()))
            .collect();
        let limit = self.settings.queue.queue_size;
        if let Some((d, _)) = queues
            .iter()
            .find(|(_, q)| q.closed || q.items.len() >= limit)
        {
            let endpoint = state.backends[*d].endpoint.clone();
            drop(queues);
            self.metrics.exporter.enqueue_failed.inc_by(items);
            return Err(ConsumeError::unavailable(
                format!(
                    "exporter {}: the sending queue of backend {endpoint} is full",
                    self.exporter
                ),
                RETRY_AFTER,
            ));
        }
        let count = parts.len();
        for ((_, q), (_, part)) in queues.iter_mut().zip(parts) {
            q.items.push_back(part);
        }
        let targets: Vec<usize> = queues.iter().map(|(d, _)| *d).collect();
        drop(queues);
        for d in targets {
            state.backends[d].notify.notify_one();
        }
        self.metrics
            .queued
            .fetch_add(count as i64, Ordering::Relaxed);
        self.publish_queue_size();
        Ok(Taken::Queued)
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for Balancer<T> {
    async fn consume(&self, batch: T) -> Result<(), ConsumeError> {
        match self.inner.take(batch)? {
            Taken::Queued => Ok(()),
            Taken::SendNow(parts) => self.inner.send_now(parts).await,
        }
    }
}

#[async_trait]
impl<T: Payload> Component for Balancer<T> {
    /// Stops taking data; workers send what is queued until just before `deadline`, then
    /// give up; what is left is dropped, logged and counted.
    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        let inner = &self.inner;
        let backends = {
            let mut state = inner.state.write();
            state.closing = true;
            state.backends.clone()
        };
        let mut workers = Vec::new();
        for b in &backends {
            b.queue.lock().closed = true;
            b.notify.notify_waiters();
            workers.append(&mut b.workers.lock());
        }
        let all = futures::future::join_all(workers);
        tokio::pin!(all);
        let now = std::time::Instant::now();
        let remaining = deadline.saturating_duration_since(now);
        let give_up_in = remaining.saturating_sub(SHUTDOWN_CLEANUP.min(remaining / 2));
        if tokio::time::timeout(give_up_in, &mut all).await.is_err() {
            inner.give_up.cancel();
            let _ = tokio::time::timeout(
                deadline.saturating_duration_since(std::time::Instant::now()),
                all,
            )
            .await;
        }
        let mut left = 0u64;
        for b in &backends {
            let items = std::mem::take(&mut b.queue.lock().items);
            left += items.iter().map(|t| t.item_count() as u64).sum::<u64>();
        }
        inner.metrics.queued.store(0, Ordering::Relaxed);
        inner.publish_queue_size();
        if left > 0 {
            inner.metrics.exporter.send_failed.inc_by(left);
            tracing::error!(
                component = %inner.exporter, dropped_items = left,
                "dropping data: still queued at the shutdown deadline"
            );
            anyhow::bail!(
                "exporter {}: queues not drained by the shutdown deadline; the rest was dropped",
                inner.exporter
            );
        }
        Ok(())
    }
}
