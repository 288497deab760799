//! The timeout and retry layers.

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{ExportError, Retry, RetrySettings, Sender};
use crate::pipeline::Payload;
use crate::telemetry::ExporterMetrics;

/// Bounds each attempt; an attempt that runs out of time is retryable.
pub struct TimeoutSender<S> {
    inner: S,
    timeout: Duration,
}

impl<S> TimeoutSender<S> {
    /// A zero timeout means no bound.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

#[async_trait]
impl<T: Payload, S: Sender<T>> Sender<T> for TimeoutSender<S> {
    async fn send(&self, data: &T) -> Result<(), ExportError> {
        if self.timeout.is_zero() {
            return self.inner.send(data).await;
        }
        match tokio::time::timeout(self.timeout, self.inner.send(data)).await {
            Ok(result) => result,
            Err(_) => Err(ExportError::retryable(format!(
                "request timed out after {:?}",
                self.timeout
            ))),
        }
    }
}

/// Retries retryable failures with capped exponential backoff and jitter, honouring the
/// backend's own delay (Retry-After, RetryInfo) when it gives one. Counts what was sent and
/// what was given up on.
pub struct RetrySender<S> {
    exporter: String,
    inner: S,
    settings: RetrySettings,
    metrics: ExporterMetrics,
    /// The batch also sits in a persistent queue: giving up at the shutdown deadline keeps
    /// it there for the next start instead of dropping it.
    persistent: bool,
}

impl<S> RetrySender<S> {
    pub fn new(
        exporter: String,
        inner: S,
        settings: RetrySettings,
        metrics: ExporterMetrics,
    ) -> Self {
        Self {
            exporter,
            inner,
            settings,
            metrics,
            persistent: false,
        }
    }
}

impl<S> RetrySender<S> {
    /// Marks the batches this layer delivers as also held by a persistent queue.
    pub fn with_persistent_queue(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Delivers `data`, retrying as configured, until it succeeds, fails permanently, runs out
    /// of `max_elapsed_time`, or `give_up` is cancelled (the shutdown deadline).
    pub async fn deliver<T: Payload>(
        &self,
        data: &T,
        give_up: &CancellationToken,
    ) -> Result<(), ExportError>
    where
        S: Sender<T>,
    {
        self.deliver_inner(data, give_up, None).await
    }

    /// As [`RetrySender::deliver`], and once `stop` is cancelled no new attempt is made: an
    /// attempt in flight may still finish (until `give_up`), a failure is not retried. For a
    /// persistent queue's shutdown, whose batches wait on disk for the next start.
    pub async fn deliver_until<T: Payload>(
        &self,
        data: &T,
        give_up: &CancellationToken,
        stop: &CancellationToken,
    ) -> Result<(), ExportError>
    where
        S: Sender<T>,
    {
        self.deliver_inner(data, give_up, Some(stop)).await
    }

    async fn deliver_inner<T: Payload>(
        &self,
        data: &T,
        give_up: &CancellationToken,
        stop: Option<&CancellationToken>,
    ) -> Result<(), ExportError>
    where
        S: Sender<T>,
    {
        let stopped = || stop.is_some_and(CancellationToken::is_cancelled);
        let items = data.item_count() as u64;
        let started = Instant::now();
        let mut interval = self.settings.initial_interval.get();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // An attempt in flight when `give_up` fires is abandoned too: past the deadline
            // nothing may wait for a slow backend, and the batch is then accounted for here.
            let sent = tokio::select! {
                biased;
                sent = self.inner.send(data) => sent,
                _ = give_up.cancelled() => {
                    let err = ExportError::retryable(format!(
                        "attempt {attempt} still running when the shutdown deadline passed"
                    ));
                    self.abandon_at_deadline(&err, items);
                    return Err(err);
                }
            };
            let err = match sent {
                Ok(()) => {
                    self.metrics.sent.inc_by(items);
                    return Ok(());
                }
                Err(e) => e,
            };
            if stopped() && err.is_retryable() {
                self.keep_at_shutdown(&err, items);
                return Err(err);
            }
            let delay = match err.retry {
                Retry::Never => None,
                _ if !self.settings.enabled => None,
                Retry::Backoff => Some(jitter(interval, self.settings.randomization_factor)),
                // As the Collector's retry sender: the backend's delay, but never less than
                // the backoff would have waited (a `Retry-After: 0` must not spin).
                Retry::After(d) => {
                    Some(d.max(jitter(interval, self.settings.randomization_factor)))
                }
            };
            let max_elapsed = self.settings.max_elapsed_time.get();
            let give_up_reason = match delay {
                None if err.is_retryable() => Some("retries are disabled"),
                None => Some("the error is not retryable"),
                Some(d) if !max_elapsed.is_zero() && started.elapsed() + d > max_elapsed => {
                    Some("retry_on_failure::max_elapsed_time reached")
                }
                Some(_) => None,
            };
            if let Some(reason) = give_up_reason {
                self.metrics.send_failed.inc_by(items);
                tracing::error!(
                    component = %self.exporter, error = %err, attempts = attempt, dropped_items = items,
                    "dropping data: {reason}"
                );
                return Err(err);
            }
            let delay = delay.unwrap_or_default();
            tracing::warn!(
                component = %self.exporter, error = %err, attempt, retry_in = ?delay,
                "export failed; will retry"
            );
            let stop_waiting = async {
                match stop {
                    Some(stop) => stop.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = give_up.cancelled() => {
                    self.abandon_at_deadline(&err, items);
                    return Err(err);
                }
                _ = stop_waiting => {
                    self.keep_at_shutdown(&err, items);
                    return Err(err);
                }
            }
            interval = interval
                .mul_f64(self.settings.multiplier)
                .min(self.settings.max_interval.get());
        }
    }
}

impl<S> RetrySender<S> {
    /// Logs (and, without a persistent queue, counts as failed) a batch given up on because
    /// the shutdown deadline passed.
    fn abandon_at_deadline(&self, err: &ExportError, items: u64) {
        if self.persistent {
            tracing::warn!(
                component = %self.exporter, error = %err, kept_items = items,
                "shutdown deadline passed while the backend was failing; the batch stays in the persistent queue for the next start"
            );
            return;
        }
        self.metrics.send_failed.inc_by(items);
        tracing::error!(
            component = %self.exporter, error = %err, dropped_items = items,
            "dropping data: the shutdown deadline passed while the backend was failing"
        );
    }
}

impl<S> RetrySender<S> {
    /// Logs a batch not tried again because its persistent queue is shutting down.
    fn keep_at_shutdown(&self, err: &ExportError, items: u64) {
        tracing::info!(
            component = %self.exporter, error = %err, kept_items = items,
            "shutting down: not retrying; the batch stays in the persistent queue for the next start"
        );
    }
}

/// `interval` spread uniformly over ±`factor`, as the Collector's backoff does.
pub(crate) fn jitter(interval: Duration, factor: f64) -> Duration {
    if factor <= 0.0 {
        return interval;
    }
    let spread = rand::rng().random_range(-factor..=factor);
    interval.mul_f64((1.0 + spread).max(0.0))
}
