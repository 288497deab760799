//! The `batch` processor, as the Collector's batchprocessor: it gathers small requests into
//! batches of `send_batch_size` items (at most `send_batch_max_size`), and sends what is left
//! every `timeout`, so exporters make fewer, larger calls.
//!
//! # Delivery contract
//!
//! `consume` answers `Ok` once the data is in the processor's pending buffer: from then on the
//! processor owns it and hands it to the next stage or, only when shutdown runs out of time,
//! drops it and says so (an error log and `otelcol_processor_dropped_<items>`). In detail:
//!
//! - A batch the next stage *refuses* (a full exporter queue, the memory limit) is put back at
//!   the head of the pending buffer and tried again after the refusal's `retry_after`, by the
//!   next timer tick. Nothing is lost, but the batch was already acknowledged to its clients;
//!   this is why the processor keeps a copy of every batch until the next stage takes it.
//! - Backpressure reaches the clients through the bound on the pending buffer: once it holds
//!   more than [`PENDING_BATCHES`] batches' worth of items, `consume` refuses new data with a
//!   retryable [`ConsumeError::unavailable`] and the client sends it again later.
//! - A batch the next stage rejects *permanently* (invalid data) cannot succeed on retry: it is
//!   dropped with an error log and counted, as the Collector does.
//!
//! Batches are sent in the task of the `consume` call that filled them (so a slow next stage
//! slows its callers down) and by the timer task. Concurrent senders may interleave batches;
//! items keep their order within a batch.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weft_config::{ComponentConfig, ConfigPath, DataHolding, Diagnostics, Duration as CfgDuration};

use crate::component::{
    BuildContext, Component, GenericProcessor, Processor, ProcessorFactory, Stability,
};
use crate::pipeline::{ConsumeError, Consumer, Payload};
use crate::telemetry::Telemetry;

/// The Collector's default `send_batch_size`.
pub const DEFAULT_SEND_BATCH_SIZE: usize = 8192;

/// How many batches' worth of items the pending buffer may hold while the next stage refuses,
/// before `consume` refuses too. Ten batches absorb a short hiccup downstream; beyond that,
/// holding more only grows memory, and the client is the better place to wait.
pub const PENDING_BATCHES: usize = 10;

/// How often refused batches are retried when `timeout` is 0 (no batching timer).
const RETRY_PERIOD_WITHOUT_TIMEOUT: Duration = Duration::from_secs(1);

/// The shortest delay a client is asked to wait when the pending buffer is full.
const MIN_CLIENT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest pause honoured from a next stage's `retry_after`, so one odd answer cannot
/// stall the pipeline.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// `processors::batch`: the keys of the Collector's batchprocessor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Items (spans, log records) after which a batch is sent without waiting for `timeout`.
    /// A trigger, not a bound: see `send_batch_max_size`. 0 sends on every request.
    pub send_batch_size: usize,
    /// The most items in one batch sent; larger pending data is split. 0 means no limit.
    pub send_batch_max_size: usize,
    /// How long items wait at most before being sent, however few. 0 sends immediately.
    pub timeout: CfgDuration,
    /// Batching per client metadata value: not supported by Weft (an error if set).
    pub metadata_keys: Vec<String>,
    /// Only meaningful with `metadata_keys`; accepted with a warning.
    pub metadata_cardinality_limit: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            send_batch_size: DEFAULT_SEND_BATCH_SIZE,
            send_batch_max_size: 0,
            timeout: CfgDuration::from_millis(200),
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: None,
        }
    }
}

impl ComponentConfig for Config {
    /// A batch waits up to `timeout` in memory after its senders were answered.
    fn holds_data(&self) -> DataHolding {
        DataHolding::Memory {
            remedy: "remove the batch processor",
        }
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.send_batch_max_size > 0 && self.send_batch_max_size < self.send_batch_size {
            diags.error(
                &path.key("send_batch_max_size"),
                format!(
                    "must be greater than or equal to send_batch_size ({}), or 0 for no limit",
                    self.send_batch_size
                ),
            );
        }
        if !self.metadata_keys.is_empty() {
            diags.error(
                &path.key("metadata_keys"),
                "batching by client metadata is not supported by Weft; remove metadata_keys",
            );
        }
        if self.metadata_cardinality_limit.is_some() {
            // Without metadata_keys the Collector ignores it too, so a copied config still
            // means the same thing; say so instead of failing.
            diags.warning(
                &path.key("metadata_cardinality_limit"),
                "has no effect: Weft does not support metadata_keys",
            );
        }
    }
}

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "batch",
        Stability::Beta,
        "groups items into batches by size and time before they are exported",
    )
    .every_signal::<Config, Build>()
}

/// Builds a [`BatchProcessor`] for each signal.
struct Build;

impl GenericProcessor<Config> for Build {
    fn build<T: Payload>(
        ctx: BuildContext,
        cfg: &Config,
        next: Arc<dyn Consumer<T>>,
    ) -> anyhow::Result<Arc<dyn Processor<T>>> {
        Ok(Arc::new(BatchProcessor::new(
            &ctx.id_str(),
            &ctx.telemetry,
            cfg,
            next,
        )))
    }
}

/// The series the processor updates, named as the Collector names them (label `processor`).
struct Metrics {
    size_trigger: Counter,
    timeout_trigger: Counter,
    refused: Counter,
    dropped: Counter,
}

impl Metrics {
    fn new(t: &Telemetry, processor: &str, item: &str) -> Self {
        let labels = [("processor", processor)];
        Self {
            size_trigger: t.counter(
                "otelcol_processor_batch_batch_size_trigger_send",
                "Number of times the batch was sent due to a size trigger",
                &labels,
            ),
            timeout_trigger: t.counter(
                "otelcol_processor_batch_timeout_trigger_send",
                "Number of times the batch was sent due to a timeout trigger",
                &labels,
            ),
            refused: t.counter(
                &format!("otelcol_processor_refused_{item}"),
                &format!(
                    "Number of {item} that were rejected by the next component in the pipeline"
                ),
                &labels,
            ),
            dropped: t.counter(
                &format!("otelcol_processor_dropped_{item}"),
                &format!("Number of {item} that were dropped"),
                &labels,
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Size,
    Timeout,
    Shutdown,
}

/// What the processor holds, under one short lock never held across an `await`.
struct State<T> {
    /// Acknowledged items not yet taken by the next stage, oldest first.
    pending: T,
    pending_items: usize,
    /// Send runs in progress (batches taken out of `pending` and not yet settled).
    in_flight: usize,
    /// After a refusal, no batch is sent before this (shutdown excepted).
    backoff_until: Option<Instant>,
    /// Set by shutdown: new data is refused.
    closed: bool,
}

/// The part shared between the processor and its timer task.
struct Shared<T: Payload> {
    id: String,
    next: Arc<dyn Consumer<T>>,
    send_batch_size: usize,
    /// 0 = no limit.
    send_batch_max_size: usize,
    timeout: Duration,
    /// Above this many pending items, `consume` refuses.
    pending_limit: usize,
    state: Mutex<State<T>>,
    /// Signalled when the last send run settles, for shutdown.
    idle: Notify,
    metrics: Metrics,
}

/// The `batch` processor for one signal.
pub struct BatchProcessor<T: Payload> {
    shared: Arc<Shared<T>>,
    stop: CancellationToken,
    timer: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Payload> BatchProcessor<T> {
    pub fn new(id: &str, telemetry: &Telemetry, cfg: &Config, next: Arc<dyn Consumer<T>>) -> Self {
        let largest = cfg.send_batch_size.max(cfg.send_batch_max_size);
        let largest = if largest == 0 {
            DEFAULT_SEND_BATCH_SIZE
        } else {
            largest
        };
        Self {
            shared: Arc::new(Shared {
                id: id.to_string(),
                next,
                send_batch_size: cfg.send_batch_size,
                send_batch_max_size: cfg.send_batch_max_size,
                timeout: cfg.timeout.get(),
                pending_limit: largest.saturating_mul(PENDING_BATCHES),
                state: Mutex::new(State {
                    pending: T::default(),
                    pending_items: 0,
                    in_flight: 0,
                    backoff_until: None,
                    closed: false,
                }),
                idle: Notify::new(),
                metrics: Metrics::new(telemetry, id, T::ITEM),
            }),
            stop: CancellationToken::new(),
            timer: Mutex::new(None),
        }
    }

    /// Items acknowledged and not yet taken by the next stage (for tests and diagnostics).
    pub fn pending_items(&self) -> usize {
        self.shared.state.lock().pending_items
    }
}

impl<T: Payload> Shared<T> {
    /// Takes batches out of `pending`: with `all`, everything; otherwise while at least
    /// `send_batch_size` items wait. Each batch has at most `send_batch_max_size` items.
    /// A non-empty result counts as one send run that [`Shared::deliver`] settles.
    fn take_batches(&self, st: &mut State<T>, all: bool) -> Vec<T> {
        let mut batches = Vec::new();
        while st.pending_items > 0 && (all || st.pending_items >= self.send_batch_size) {
            let n = match self.send_batch_max_size {
                0 => st.pending_items,
                max => max.min(st.pending_items),
            };
            let batch = if n == st.pending_items {
                std::mem::take(&mut st.pending)
            } else {
                st.pending.take_items(n)
            };
            st.pending_items -= n;
            batches.push(batch);
        }
        if !batches.is_empty() {
            st.in_flight += 1;
        }
        batches
    }

    /// Sends `batches` in order. On a retryable refusal, that batch and the ones after it go
    /// back to the head of the pending buffer and sending pauses for the refusal's
    /// `retry_after` (the timer tries again then).
    async fn deliver(&self, batches: Vec<T>, trigger: Trigger) {
        let mut batches = batches.into_iter();
        let mut refused = None;
        while let Some(batch) = batches.next() {
            let items = batch.item_count();
            // The clone is what lets a refused batch be kept: `consume` takes ownership and
            // a refusal does not hand the data back. It shares the batch's parts or decoded
            // request; nothing is copied unless the next stage changes it.
            match self.next.consume(batch.clone()).await {
                Ok(()) => match trigger {
                    Trigger::Size => {
                        self.metrics.size_trigger.inc();
                    }
                    Trigger::Timeout => {
                        self.metrics.timeout_trigger.inc();
                    }
                    Trigger::Shutdown => {}
                },
                Err(ConsumeError::Permanent(message)) => {
                    self.metrics.dropped.inc_by(items as u64);
                    tracing::error!(
                        component = %self.id,
                        error = %message,
                        items,
                        "the next stage rejected a batch permanently; it was dropped (it would fail again on retry)"
                    );
                }
                Err(e @ ConsumeError::Refused { .. }) => {
                    let mut back = batch;
                    for rest in batches.by_ref() {
                        Payload::merge(&mut back, rest);
                    }
                    refused = Some((back, e));
                    break;
                }
            }
        }
        let mut st = self.state.lock();
        if let Some((mut back, e)) = refused {
            let items = back.item_count();
            Payload::merge(&mut back, std::mem::take(&mut st.pending));
            st.pending = back;
            st.pending_items += items;
            let pause = match &e {
                ConsumeError::Refused { retry_after, .. } => (*retry_after).min(MAX_BACKOFF),
                ConsumeError::Permanent(_) => Duration::ZERO,
            };
            st.backoff_until = Some(Instant::now() + pause);
            tracing::warn!(
                component = %self.id,
                error = %e,
                pending = st.pending_items,
                retry_in = ?pause,
                "the next stage refused a batch; keeping it and retrying"
            );
        }
        st.in_flight -= 1;
        if st.in_flight == 0 {
            self.idle.notify_waiters();
        }
    }

    /// One timer tick: sends everything pending unless a refusal asked to wait.
    async fn tick(&self) {
        let batches = {
            let mut st = self.state.lock();
            if st.backoff_until.is_some_and(|t| Instant::now() < t) {
                return;
            }
            st.backoff_until = None;
            self.take_batches(&mut st, true)
        };
        if !batches.is_empty() {
            self.deliver(batches, Trigger::Timeout).await;
        }
    }

    /// What shutdown left behind at its deadline: counted and reported.
    fn give_up(&self) -> anyhow::Result<()> {
        let mut st = self.state.lock();
        let lost = std::mem::take(&mut st.pending_items);
        st.pending = T::default();
        let in_flight = st.in_flight;
        drop(st);
        if lost == 0 && in_flight == 0 {
            return Ok(());
        }
        self.metrics.dropped.inc_by(lost as u64);
        anyhow::bail!(
            "processor {}: the next stage did not take {lost} pending {} before the shutdown deadline; they were dropped ({in_flight} sends still in progress). A longer shutdown deadline or a faster exporter avoids this",
            self.id,
            T::ITEM
        )
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for BatchProcessor<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        let shared = &self.shared;
        let items = data.item_count();
        if items == 0 {
            return Ok(());
        }
        let (batches, trigger) = {
            let mut st = shared.state.lock();
            if st.closed {
                return Err(ConsumeError::unavailable(
                    format!(
                        "processor {} is shutting down; send the data again to a running instance",
                        shared.id
                    ),
                    MIN_CLIENT_RETRY_AFTER,
                ));
            }
            if st.pending_items > 0 && st.pending_items + items > shared.pending_limit {
                shared.metrics.refused.inc_by(items as u64);
                let wait = st
                    .backoff_until
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or_default()
                    .max(MIN_CLIENT_RETRY_AFTER);
                return Err(ConsumeError::unavailable(
                    format!(
                        "processor {}: {} {} are waiting for the next stage, which is refusing data; send again later",
                        shared.id,
                        st.pending_items,
                        T::ITEM
                    ),
                    wait,
                ));
            }
            Payload::merge(&mut st.pending, data);
            st.pending_items += items;
            if st.backoff_until.is_some_and(|t| Instant::now() < t) {
                // The timer retries once the pause is over.
                return Ok(());
            }
            // Without a timer, everything goes out now (Collector: timeout 0).
            let all = shared.timeout.is_zero();
            (shared.take_batches(&mut st, all), Trigger::Size)
        };
        if !batches.is_empty() {
            // A refusal is not the caller's: its data is kept and retried by the timer.
            shared.deliver(batches, trigger).await;
        }
        Ok(())
    }
}

#[async_trait]
impl<T: Payload> Component for BatchProcessor<T> {
    async fn start(&self) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        let period = if shared.timeout.is_zero() {
            RETRY_PERIOD_WITHOUT_TIMEOUT
        } else {
            shared.timeout
        };
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticker.tick() => shared.tick().await,
                }
            }
        });
        *self.timer.lock() = Some(handle);
        Ok(())
    }

    /// Refuses new data, stops the timer, then sends everything pending, retrying refusals
    /// until `deadline`; what is still pending then is dropped, counted and reported.
    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        let deadline = Instant::from_std(deadline);
        let shared = &self.shared;
        shared.state.lock().closed = true;
        self.stop.cancel();
        let timer = self.timer.lock().take();
        if let Some(timer) = timer {
            // The timer finishes the send run it is in, if any.
            let _ = tokio::time::timeout_at(deadline, timer).await;
        }
        loop {
            let idle = shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let (batches, wait_until) = {
                let mut st = shared.state.lock();
                if st.pending_items == 0 && st.in_flight == 0 {
                    return Ok(());
                }
                let batches = match st.backoff_until {
                    Some(t) if Instant::now() < t => Vec::new(),
                    _ => shared.take_batches(&mut st, true),
                };
                (batches, st.backoff_until)
            };
            if !batches.is_empty() {
                shared.deliver(batches, Trigger::Shutdown).await;
                if Instant::now() >= deadline {
                    return shared.give_up();
                }
                continue;
            }
            // Nothing to send now: wait for the pause to end or a running send to settle.
            let retry_at = wait_until.unwrap_or(deadline).min(deadline);
            tokio::select! {
                _ = tokio::time::sleep_until(retry_at) => {}
                _ = &mut idle => {}
            }
            if Instant::now() >= deadline {
                return shared.give_up();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;
    use crate::pipeline::Traces;

    /// A next stage that records what it takes; it refuses the first `refusals` calls and
    /// rejects the first call permanently when `permanent` is set.
    #[derive(Default)]
    struct Sink {
        taken: Mutex<Vec<Traces>>,
        refusals: Mutex<usize>,
        retry_after: Duration,
        permanent: Mutex<bool>,
        calls: Mutex<usize>,
        delivered: Notify,
    }

    impl Sink {
        fn refusing(times: usize, retry_after: Duration) -> Arc<Self> {
            Arc::new(Self {
                refusals: Mutex::new(times),
                retry_after,
                ..Self::default()
            })
        }
        fn batches(&self) -> Vec<Vec<u32>> {
            self.taken.lock().iter().map(ids).collect()
        }
        fn all_ids(&self) -> Vec<u32> {
            self.batches().concat()
        }
        /// Waits until at least `n` batches were taken (the paused clock advances meanwhile).
        async fn wait_for(&self, n: usize) {
            loop {
                let notified = self.delivered.notified();
                if self.taken.lock().len() >= n {
                    return;
                }
                notified.await;
            }
        }
    }

    #[async_trait]
    impl Consumer<Traces> for Sink {
        async fn consume(&self, data: Traces) -> Result<(), ConsumeError> {
            *self.calls.lock() += 1;
            if std::mem::take(&mut *self.permanent.lock()) {
                return Err(ConsumeError::Permanent("bad data".into()));
            }
            {
                let mut refusals = self.refusals.lock();
                if *refusals > 0 {
                    *refusals -= 1;
                    return Err(ConsumeError::unavailable("queue is full", self.retry_after));
                }
            }
            self.taken.lock().push(data);
            self.delivered.notify_waiters();
            Ok(())
        }
    }

    /// `n` spans numbered from `first`, in one resource and scope.
    fn spans(first: u32, n: u32) -> Traces {
        Traces::from(
            weft_proto::collector::trace::v1::ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: (first..first + n)
                            .map(|i| Span {
                                span_id: i.to_be_bytes().repeat(2),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            },
        )
    }

    fn ids(t: &Traces) -> Vec<u32> {
        t.request()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| u32::from_be_bytes(s.span_id[..4].try_into().unwrap()))
            .collect()
    }

    fn config(size: usize, max: usize, timeout_ms: u64) -> Config {
        Config {
            send_batch_size: size,
            send_batch_max_size: max,
            timeout: CfgDuration::from_millis(timeout_ms),
            ..Config::default()
        }
    }

    fn processor(cfg: &Config, sink: &Arc<Sink>) -> (BatchProcessor<Traces>, Telemetry) {
        let telemetry = Telemetry::new();
        let p = BatchProcessor::new("batch", &telemetry, cfg, sink.clone());
        (p, telemetry)
    }

    fn far_deadline() -> std::time::Instant {
        std::time::Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test(start_paused = true)]
    async fn size_trigger_splits_into_max_size_batches_in_order() {
        let sink = Arc::new(Sink::default());
        let (p, telemetry) = processor(&config(10, 10, 60_000), &sink);
        p.start().await.unwrap();
        p.consume(spans(0, 4)).await.unwrap();
        assert!(
            sink.batches().is_empty(),
            "below send_batch_size nothing is sent"
        );
        p.consume(spans(4, 21)).await.unwrap();
        assert_eq!(
            sink.batches(),
            vec![(0..10).collect::<Vec<_>>(), (10..20).collect()]
        );
        assert_eq!(p.pending_items(), 5);
        assert_eq!(
            telemetry.counter_value(
                "otelcol_processor_batch_batch_size_trigger_send",
                &[("processor", "batch")]
            ),
            2
        );
        p.shutdown(far_deadline()).await.unwrap();
        assert_eq!(sink.all_ids(), (0..25).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn without_max_size_a_size_trigger_sends_everything_pending() {
        let sink = Arc::new(Sink::default());
        let (p, _) = processor(&config(10, 0, 60_000), &sink);
        p.consume(spans(0, 7)).await.unwrap();
        p.consume(spans(7, 30)).await.unwrap();
        assert_eq!(sink.batches(), vec![(0..37).collect::<Vec<_>>()]);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_trigger_sends_what_is_pending() {
        let sink = Arc::new(Sink::default());
        let (p, telemetry) = processor(&config(100, 0, 200), &sink);
        p.start().await.unwrap();
        p.consume(spans(0, 3)).await.unwrap();
        // Nothing before the timeout (the paused clock makes this exact)...
        let early = tokio::time::timeout(Duration::from_millis(199), sink.wait_for(1)).await;
        assert!(
            early.is_err(),
            "sent before the timeout: {:?}",
            sink.batches()
        );
        // ...and everything at it.
        sink.wait_for(1).await;
        assert_eq!(sink.batches(), vec![vec![0, 1, 2]]);
        assert_eq!(
            telemetry.counter_value(
                "otelcol_processor_batch_timeout_trigger_send",
                &[("processor", "batch")]
            ),
            1
        );
        p.shutdown(far_deadline()).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn zero_timeout_sends_every_request_at_once() {
        let sink = Arc::new(Sink::default());
        let (p, _) = processor(&config(100, 0, 0), &sink);
        p.consume(spans(0, 3)).await.unwrap();
        assert_eq!(sink.batches(), vec![vec![0, 1, 2]]);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_batches_are_kept_and_retried_without_loss() {
        let sink = Sink::refusing(2, Duration::from_millis(500));
        let (p, _) = processor(&config(10, 10, 200), &sink);
        p.start().await.unwrap();
        // Fills two batches; the first send is refused: both go back, and the call is Ok
        // because the processor now owns the data.
        p.consume(spans(0, 20)).await.unwrap();
        assert!(sink.batches().is_empty());
        assert_eq!(p.pending_items(), 20);
        // During the pause new data is only buffered.
        p.consume(spans(20, 10)).await.unwrap();
        assert_eq!(*sink.calls.lock(), 1);
        // The timer retries after the pause: refused once more, then taken.
        sink.wait_for(3).await;
        assert_eq!(*sink.calls.lock(), 5);
        assert_eq!(sink.all_ids(), (0..30).collect::<Vec<_>>());
        assert_eq!(p.pending_items(), 0);
        p.shutdown(far_deadline()).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_pending_buffer_refuses_new_data() {
        let sink = Sink::refusing(usize::MAX, Duration::from_secs(1));
        let (p, telemetry) = processor(&config(10, 10, 200), &sink);
        // Limit: PENDING_BATCHES × 10 items.
        for i in 0..PENDING_BATCHES as u32 {
            p.consume(spans(i * 10, 10)).await.unwrap();
        }
        let err = p.consume(spans(1000, 1)).await.unwrap_err();
        match &err {
            ConsumeError::Refused {
                refusal,
                retry_after,
                message,
            } => {
                assert_eq!(*refusal, crate::pipeline::Refusal::Unavailable);
                assert!(*retry_after >= Duration::from_secs(1));
                assert!(message.contains("100 spans are waiting"), "{message}");
            }
            other => panic!("expected a retryable refusal, got {other:?}"),
        }
        assert_eq!(p.pending_items(), 100);
        assert_eq!(
            telemetry.counter_value("otelcol_processor_refused_spans", &[("processor", "batch")]),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_flushes_pending_and_retries_refusals() {
        let sink = Sink::refusing(3, Duration::from_millis(300));
        let (p, _) = processor(&config(100, 4, 60_000), &sink);
        p.start().await.unwrap();
        p.consume(spans(0, 9)).await.unwrap();
        p.shutdown(far_deadline()).await.unwrap();
        assert_eq!(
            sink.batches(),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8]]
        );
        let err = p.consume(spans(9, 1)).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_reports_what_it_could_not_deliver_by_the_deadline() {
        let sink = Sink::refusing(usize::MAX, Duration::from_secs(1));
        let (p, telemetry) = processor(&config(100, 0, 60_000), &sink);
        p.consume(spans(0, 5)).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let err = p.shutdown(deadline).await.unwrap_err();
        assert!(
            err.to_string().contains("did not take 5 pending spans"),
            "{err}"
        );
        assert_eq!(
            telemetry.counter_value("otelcol_processor_dropped_spans", &[("processor", "batch")]),
            5
        );
    }

    #[tokio::test]
    async fn permanent_rejections_are_dropped_and_counted() {
        let sink = Arc::new(Sink::default());
        *sink.permanent.lock() = true;
        let (p, telemetry) = processor(&config(2, 0, 60_000), &sink);
        p.consume(spans(0, 2)).await.unwrap();
        p.consume(spans(2, 2)).await.unwrap();
        assert_eq!(sink.all_ids(), vec![2, 3]);
        assert_eq!(
            telemetry.counter_value("otelcol_processor_dropped_spans", &[("processor", "batch")]),
            2
        );
    }

    fn validate(yaml: &str) -> Diagnostics {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        let mut diags = Diagnostics::new();
        let path = ConfigPath::root().key("processors").key("batch");
        weft_config::decode_component::<Config>(&value, &path, &mut diags);
        diags
    }

    #[test]
    fn defaults_are_the_collectors() {
        let c = Config::default();
        assert_eq!(c.send_batch_size, 8192);
        assert_eq!(c.send_batch_max_size, 0);
        assert_eq!(c.timeout.get(), Duration::from_millis(200));
        assert!(validate("timeout: 1s\nsend_batch_size: 100\nsend_batch_max_size: 100").is_empty());
    }

    #[test]
    fn config_errors_name_their_keys() {
        let diags = validate(
            "send_batch_size: 100\nsend_batch_max_size: 50\nmetadata_keys: [tenant]\nmetadata_cardinality_limit: 10",
        );
        let text = diags.to_string();
        assert_eq!(diags.errors().count(), 2, "{text}");
        assert!(text.contains("error: processors::batch::send_batch_max_size: must be greater than or equal to send_batch_size (100)"), "{text}");
        assert!(text.contains("error: processors::batch::metadata_keys: batching by client metadata is not supported"), "{text}");
        assert!(
            text.contains("warning: processors::batch::metadata_cardinality_limit"),
            "{text}"
        );
        let typo = validate("send_batch_sise: 10").to_string();
        assert!(typo.contains("unknown field \"send_batch_sise\""), "{typo}");
    }
}
