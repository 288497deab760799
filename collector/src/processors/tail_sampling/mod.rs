//! `tail_sampling`: the Collector's tail-sampling processor, with logs woven in.
//!
//! One instance per component id, whatever the number of pipelines listing it: listed in a
//! traces pipeline and a logs pipeline, it is one window in which a trace's spans and logs
//! wait together for one decision (see [`window`]). Kept traces go on: their spans into the
//! traces pipeline's next stage, their logs (enriched with the verdict, see [`enrich`]) into
//! the logs pipeline's. Dropped traces are freed.
//!
//! Nothing acknowledged is lost silently: data in the window is decided, never evicted
//! unseen; if a downstream stage refuses released data, it waits in an outbox and is retried
//! every tick, and while the outbox is full new data is refused with a retryable answer.
//!
//! With `storage` naming a `file_storage` extension the window is durable: each batch is
//! written to a write-ahead log before the window takes it and the client is answered, and
//! after a crash the log is replayed (see [`wal`]). A durable window's shutdown keeps the
//! traces still waiting in the log rather than deciding them on partial data; the next start
//! replays them and, once data flows again, decides them (see [`Window::hold_replayed`]).

pub mod config;
pub mod decisions;
pub mod enrich;
mod metrics;
mod outcome;
pub mod policy;
pub mod trace;
pub mod wal;
pub mod window;

#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_config::ComponentId;

use self::config::TailSamplingConfig;
use self::metrics::WindowMetrics;
use self::policy::Policies;
use self::wal::{Compaction, Decision, DecisionBatch, Logged, Replayed, Wal, WalError, WalOptions};
use self::window::{tick_interval, to_logs, to_traces, Output, Window};
use crate::component::{BuildContext, Component, Processor, ProcessorFactory, Stability};
use crate::pipeline::{ConsumeError, Consumer, Logs, Payload, Traces};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

/// Released batches a refusing downstream may leave waiting before new data is refused.
const OUTBOX_LIMIT: usize = 256;
/// The retry delay clients are given while the outbox is full.
const OUTBOX_RETRY_AFTER: Duration = Duration::from_secs(1);

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<TailSamplingConfig>(
        "tail_sampling",
        Stability::Alpha,
        "keeps whole traces by policy; logs join their trace's window and follow its decision",
    )
    .signal::<ExportTraceServiceRequest, TailSamplingConfig>(build_side::<Traces>)
    .signal::<ExportLogsServiceRequest, TailSamplingConfig>(build_side::<Logs>)
}

/// The processor of one pipeline: a handle on the core shared by the processor's id.
fn build_side<T: WindowSignal>(
    ctx: BuildContext,
    cfg: &TailSamplingConfig,
    next: Arc<dyn Consumer<T>>,
) -> anyhow::Result<Arc<dyn Processor<T>>> {
    let core = TailSampling::shared(&ctx, cfg)?;
    T::downstream(&core).next.set(next).map_err(|_| {
        anyhow::anyhow!(
            "processor {} is listed twice in {signal} pipelines; a window feeds one {signal} pipeline",
            ctx.id,
            signal = T::SIGNAL
        )
    })?;
    core.users.fetch_add(1, Ordering::SeqCst);
    Ok(Arc::new(Side::<T>(core, PhantomData)))
}

/// The two signals a window holds, and what differs between them for the core: which side
/// of it their released data goes to, and how the window takes them in. Everything else in
/// this module is written once for both.
trait WindowSignal: Logged {
    fn downstream(core: &TailSampling) -> &Downstream<Self>;
    fn ingest(window: &Window, data: Self, now: Instant) -> Output;
}

impl WindowSignal for Traces {
    fn downstream(core: &TailSampling) -> &Downstream<Self> {
        &core.traces
    }
    fn ingest(window: &Window, data: Self, now: Instant) -> Output {
        window.ingest_spans(data, now)
    }
}

impl WindowSignal for Logs {
    fn downstream(core: &TailSampling) -> &Downstream<Self> {
        &core.logs
    }
    fn ingest(window: &Window, data: Self, now: Instant) -> Output {
        window.ingest_logs(data, now)
    }
}

/// Where one signal's released data goes, and what of it waits for a refusing next stage.
struct Downstream<T> {
    next: OnceLock<Arc<dyn Consumer<T>>>,
    /// Released batches the next stage refused, retried every tick, oldest first.
    outbox: Mutex<VecDeque<T>>,
}

impl<T> Default for Downstream<T> {
    fn default() -> Self {
        Self {
            next: OnceLock::new(),
            outbox: Mutex::new(VecDeque::new()),
        }
    }
}

/// The clock the window runs on; tests substitute their own.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The shared core of one `tail_sampling` id.
pub struct TailSampling {
    id: String,
    cfg: Arc<TailSamplingConfig>,
    window: Window,
    traces: Downstream<Traces>,
    logs: Downstream<Logs>,
    /// Pipelines using this instance; the last one to shut down flushes the window.
    users: AtomicUsize,
    started: AtomicBool,
    ticker: Mutex<Option<JoinHandle<()>>>,
    stop: CancellationToken,
    clock: Clock,
    /// The write-ahead log, when the window is durable.
    durable: Option<Durable>,
}

/// The durable window's state around its log (see [`wal`]).
struct Durable {
    wal: Wal,
    /// What the previous run left, until it is replayed at start.
    recovery: Mutex<Option<wal::Recovery>>,
    /// Decisions whose released data was accepted downstream (or sits in the outbox), not
    /// yet recorded: recorded by the tick once the outbox is empty.
    pending: Mutex<Vec<Decision>>,
    last_checkpoint: AtomicU64,
    compaction: Mutex<Compaction>,
}

impl TailSampling {
    fn shared(ctx: &BuildContext, cfg: &TailSamplingConfig) -> anyhow::Result<Arc<Self>> {
        // Looked up outside `get_or_try_insert`, which holds the shared instances' lock.
        let wal = Self::wal_options(ctx, cfg)?;
        let verdicts = crate::verdicts::VerdictBus::of(&ctx.shared, &ctx.id)?;
        ctx.shared.get_or_try_insert(&ctx.id, || {
            Ok(Arc::new(Self::build_core(
                ctx,
                cfg.clone(),
                Arc::new(Instant::now),
                wal,
                verdicts,
            )?))
        })
    }

    /// A core on `clock`; exposed for tests. With `storage` set, the `file_storage` extension
    /// it names must be running (built before the processors).
    pub fn new(ctx: &BuildContext, cfg: TailSamplingConfig, clock: Clock) -> anyhow::Result<Self> {
        let wal = Self::wal_options(ctx, &cfg)?;
        Self::with_wal(ctx, cfg, clock, wal)
    }

    /// Where the durable window's log lives: the folder the `storage` extension gives it.
    fn wal_options(
        ctx: &BuildContext,
        cfg: &TailSamplingConfig,
    ) -> anyhow::Result<Option<WalOptions>> {
        let Some(storage) = &cfg.storage else {
            return Ok(None);
        };
        let storage_id: ComponentId = storage
            .parse()
            .map_err(|e| anyhow::anyhow!("processor {}: storage: {e}", ctx.id))?;
        let storage =
            crate::extensions::file_storage::FileStorage::lookup(&ctx.shared, &storage_id)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "processor {}: storage: extension \"{storage_id}\" is not running: define it under extensions and list it in service::extensions",
                        ctx.id
                    )
                })?;
        Ok(Some(WalOptions::new(
            storage.window_dir(&ctx.id),
            storage.fsync(),
            storage.max_bytes(),
            cfg.decision_wait.get(),
        )))
    }

    /// A core on `clock` whose window is durable in `wal` (when given); exposed for tests
    /// and benches.
    pub fn with_wal(
        ctx: &BuildContext,
        cfg: TailSamplingConfig,
        clock: Clock,
        wal: Option<WalOptions>,
    ) -> anyhow::Result<Self> {
        let verdicts = crate::verdicts::VerdictBus::of(&ctx.shared, &ctx.id)?;
        Self::build_core(ctx, cfg, clock, wal, verdicts)
    }

    /// [`TailSampling::with_wal`] publishing its decisions on `verdicts` (the bus of its id,
    /// looked up by the caller: the shared instances' lock may be held here).
    fn build_core(
        ctx: &BuildContext,
        cfg: TailSamplingConfig,
        clock: Clock,
        wal: Option<WalOptions>,
        verdicts: Arc<crate::verdicts::VerdictBus>,
    ) -> anyhow::Result<Self> {
        let durable = match wal {
            Some(opts) => {
                let dir = opts.dir.clone();
                let (wal, recovery) = Wal::open(opts, clock.clone(), &ctx.telemetry, &ctx.id_str())
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "processor {}: cannot open the durable window's log in {}: {e}",
                            ctx.id,
                            dir.display()
                        )
                    })?;
                Some(Durable {
                    wal,
                    recovery: Mutex::new(Some(recovery)),
                    pending: Mutex::new(Vec::new()),
                    last_checkpoint: AtomicU64::new(0),
                    compaction: Mutex::new(Compaction::default()),
                })
            }
            None => None,
        };
        let policies = Policies::new(&cfg.policies)
            .map_err(|e| anyhow::anyhow!("processor {}: {e}", ctx.id))?
            .with_sample_on_first_match(cfg.sample_on_first_match);
        let cfg = Arc::new(cfg);
        let metrics = WindowMetrics::new(&ctx.telemetry, &ctx.id_str());
        // Components that act on the decisions (spanmetrics exemplars, samplingmetrics)
        // listen on this window's bus.
        verdicts.register_publisher();
        Ok(Self {
            id: ctx.id_str(),
            window: Window::new(cfg.clone(), policies, metrics).publishing_to(verdicts),
            cfg,
            traces: Downstream::default(),
            logs: Downstream::default(),
            users: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            ticker: Mutex::new(None),
            stop: CancellationToken::new(),
            clock,
            durable,
        })
    }

    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The id this window runs under (`tail_sampling`, `tail_sampling/edge`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Turns this window's decisions ring on (see [`decisions`]): the status page does,
    /// when it starts, before any data flows. Once on it stays on; a second call gets the
    /// same ring.
    pub fn decisions_ring(
        &self,
        settings: decisions::RingSettings,
    ) -> Arc<decisions::DecisionRing> {
        self.window.enable_ring(settings)
    }

    /// Released batches waiting in the outboxes of both signals.
    fn outbox_len(&self) -> usize {
        self.traces.outbox.lock().len() + self.logs.outbox.lock().len()
    }

    fn check_outbox(&self) -> Result<(), ConsumeError> {
        if self.outbox_len() >= OUTBOX_LIMIT {
            return Err(ConsumeError::unavailable(
                format!(
                    "processor {}: the next stage is refusing kept data; try again later",
                    self.id
                ),
                OUTBOX_RETRY_AFTER,
            ));
        }
        Ok(())
    }

    /// Sends released items on; whatever the next stage refuses waits in the outbox.
    pub async fn emit(&self, out: Output) {
        self.release(out, false).await;
    }

    /// As [`Self::emit`]; with `record` (a durable window's `consume`), a refused batch is also
    /// written to the log, and the returned receipts resolve once it is.
    async fn release(
        &self,
        out: Output,
        record: bool,
    ) -> Vec<oneshot::Receiver<crate::storage::Written>> {
        let mut receipts = Vec::new();
        if !out.spans.is_empty() {
            receipts.extend(self.send(to_traces(out.spans), record).await);
        }
        if !out.logs.is_empty() {
            receipts.extend(self.send(to_logs(out.logs), record).await);
        }
        receipts
    }

    /// Sends released `batch` on; a refused batch waits in its signal's outbox.
    async fn send<T: WindowSignal>(
        &self,
        batch: T,
        record: bool,
    ) -> Option<oneshot::Receiver<crate::storage::Written>> {
        let side = T::downstream(self);
        let Some(next) = side.next.get() else {
            tracing::warn!(
                component = %self.id,
                "kept {} have nowhere to go: list this processor in a {} pipeline",
                T::ITEM,
                T::SIGNAL
            );
            return None;
        };
        let e = next.consume(batch.clone()).await.err()?;
        let receipt = self.record_parked(&e, &batch, record);
        self.park(e, || side.outbox.lock().push_back(batch), T::ITEM);
        receipt
    }

    fn record_parked<T: Logged>(
        &self,
        e: &ConsumeError,
        batch: &T,
        record: bool,
    ) -> Option<oneshot::Receiver<crate::storage::Written>> {
        let d = self
            .durable
            .as_ref()
            .filter(|_| record && e.is_retryable())?;
        Some(d.wal.append_outbox(batch))
    }

    fn park(&self, e: ConsumeError, keep: impl FnOnce(), item: &str) {
        match e {
            ConsumeError::Refused { .. } => keep(),
            ConsumeError::Permanent(msg) => tracing::error!(
                component = %self.id, error = %msg,
                "the next stage rejected kept {item} as invalid; they are dropped"
            ),
        }
    }

    /// Retries the outboxes in order, spans first; stops at the first refusal. True when
    /// both are empty.
    async fn drain_outbox(&self) -> bool {
        self.drain::<Traces>().await && self.drain::<Logs>().await && self.outbox_len() == 0
    }

    /// Retries one signal's outbox in order; false at the first refusal.
    async fn drain<T: WindowSignal>(&self) -> bool {
        let side = T::downstream(self);
        loop {
            let waiting = side.outbox.lock().pop_front();
            let Some(batch) = waiting else { return true };
            let Some(next) = side.next.get() else {
                return true;
            };
            if let Err(e) = next.consume(batch.clone()).await {
                if matches!(e, ConsumeError::Refused { .. }) {
                    side.outbox.lock().push_front(batch);
                    return false;
                }
            }
        }
    }

    /// One decision tick at the clock's `now`.
    pub async fn tick(&self) {
        let cutoff = self.cutoff();
        let out = self.window.tick((self.clock)());
        self.emit_decided(out, cutoff).await;
        self.drain_outbox().await;
        if let Some(d) = &self.durable {
            self.record_decisions(d);
            d.compaction.lock().step(
                &d.wal,
                || self.window.oldest_first_seen(),
                || self.outbox_len() == 0,
            );
        }
    }

    /// The durable window's decision cutoff for a window operation starting now.
    fn cutoff(&self) -> u64 {
        self.durable.as_ref().map_or(0, |d| d.wal.completed_below())
    }

    /// Emits what a window operation released; its decisions are to be recorded.
    async fn emit_decided(&self, out: Output, cutoff: u64) {
        let decided = self.durable.as_ref().map(|_| decisions(&out, cutoff));
        self.emit(out).await;
        if let (Some(d), Some(decided)) = (&self.durable, decided) {
            d.pending.lock().extend(decided);
        }
    }

    /// Writes the pending decisions and a checkpoint, once the outbox is empty: what they
    /// released was accepted downstream.
    fn record_decisions(&self, d: &Durable) {
        let pending = std::mem::take(&mut *d.pending.lock());
        let completed_below = d.wal.completed_below();
        if self.outbox_len() != 0 {
            let mut waiting = d.pending.lock();
            let later = std::mem::replace(&mut *waiting, pending);
            waiting.extend(later);
            return;
        }
        if pending.is_empty() && completed_below <= d.last_checkpoint.load(Ordering::Relaxed) {
            return;
        }
        d.wal.append_decisions(&DecisionBatch {
            completed_below,
            decisions: pending,
        });
        d.last_checkpoint.store(completed_below, Ordering::Relaxed);
    }

    /// A durable window's `consume`: the batch is written to the log before the window takes
    /// it and before the client is answered.
    async fn consume_durable<T: Logged>(
        &self,
        d: &Durable,
        data: T,
        ingest: fn(&Window, T, Instant) -> Output,
    ) -> Result<(), ConsumeError> {
        let _running = d.wal.enter();
        let appended = d.wal.append(&data).map_err(|e| self.wal_refusal(e))?;
        let arrival = appended.arrival;
        let applied = appended
            .durable(d.wal.metrics())
            .await
            .map_err(|e| self.wal_refusal(e))?;
        let (earliest, cutoff) = d.wal.apply_point();
        let out = ingest(&self.window, data, earliest.unwrap_or(arrival).min(arrival));
        self.window.data_arrived(arrival);
        drop(applied);
        let decided = decisions(&out, cutoff);
        for receipt in self.release(out, true).await {
            if !matches!(receipt.await, Ok(Ok(_))) {
                return Err(ConsumeError::unavailable(
                    format!(
                        "processor {}: cannot write released data waiting for the next stage to the durable window's log",
                        self.id
                    ),
                    OUTBOX_RETRY_AFTER,
                ));
            }
        }
        d.pending.lock().extend(decided);
        Ok(())
    }

    fn wal_refusal(&self, e: WalError) -> ConsumeError {
        ConsumeError::unavailable(format!("processor {}: {e}", self.id), OUTBOX_RETRY_AFTER)
    }

    /// Replays what the durable window's log holds from before a restart (once; a no-op for
    /// a window that is not durable); the next tick decides what is due.
    pub async fn replay(&self) {
        let Some(d) = &self.durable else { return };
        let Some(recovery) = d.recovery.lock().take() else {
            return;
        };
        if recovery.is_empty() {
            return;
        }
        let now = (self.clock)();
        self.window.hold_replayed(now);
        let decisions = recovery.decisions();
        for (trace_id, kept) in &decisions {
            self.window.remember(*trace_id, kept.clone(), now);
        }
        let (mut spans, mut logs) = (0, 0);
        let recovery = Arc::new(recovery);
        for &segment in recovery.segments() {
            // Read and decoded on a blocking thread, one segment at a time.
            let reader = recovery.clone();
            let records = tokio::task::spawn_blocking(move || reader.read(segment))
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(component = %self.id, segment, error = %e, "reading a segment of the durable window's log failed; its data is not replayed");
                    Vec::new()
                });
            for record in records {
                match record {
                    Replayed::Traces {
                        seq,
                        arrival,
                        mut data,
                    } => {
                        wal::retain_spans(&mut data, |id| recovery.needs(id, seq));
                        spans += data.item_count();
                        let out = self.window.ingest_spans(data, arrival);
                        self.emit_decided(out, seq).await;
                    }
                    Replayed::Logs {
                        seq,
                        arrival,
                        mut data,
                    } => {
                        wal::retain_logs(&mut data, |id| recovery.needs(id, seq));
                        logs += data.item_count();
                        let out = self.window.ingest_logs(data, arrival);
                        self.emit_decided(out, seq).await;
                    }
                    Replayed::OutboxTraces(batch) => {
                        spans += batch.item_count();
                        self.send(batch, false).await;
                    }
                    Replayed::OutboxLogs(batch) => {
                        logs += batch.item_count();
                        self.send(batch, false).await;
                    }
                }
            }
        }
        self.window.replayed();
        recovery.count(spans, logs);
        tracing::info!(
            component = %self.id,
            segments = recovery.segments().len(),
            decisions = decisions.len(),
            spans,
            log_records = logs,
            pending_traces = self.window.trace_count(),
            "resuming the durable window: replayed its log"
        );
        // The replayed traces wait for data to flow again (`Window::hold_replayed`); the
        // tick that decides them runs in the background: a slow next stage does not hold up
        // the start.
    }

    /// Replays the durable log (once), then starts the decision tick.
    async fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        self.replay().await;
        self.start_ticker();
    }

    fn start_ticker(self: &Arc<Self>) {
        let core = self.clone();
        let interval = tick_interval(&self.cfg);
        *self.ticker.lock() = Some(tokio::spawn(async move {
            let mut due = tokio::time::Instant::now() + interval;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = core.stop.cancelled() => break,
                }
                let woke = tokio::time::Instant::now();
                core.window
                    .metrics
                    .tick_lateness
                    .observe(woke.saturating_duration_since(due).as_secs_f64());
                core.tick().await;
                due += interval;
                if due <= woke {
                    due = woke + interval;
                }
            }
        }));
    }

    /// Called by each pipeline's shutdown; the last one stops the window by `deadline`:
    ///
    /// - in memory, it decides (or, with `drop_pending_traces_on_shutdown`, drops) every
    ///   trace still waiting, and delivers what is kept;
    /// - durable, it keeps the waiting traces in the log instead — deciding them now would
    ///   decide on partial data (every rolling restart would) — and records which they are;
    ///   the next start replays them and decides them once data flows again,
    ///   with whatever arrives after the restart joined in. (`drop_pending_traces_on_shutdown`
    ///   still drops them, as asked.)
    ///
    /// Either way, decided data waiting for a refusing next stage is retried until the
    /// deadline, and a durable window records what was decided and delivered, so it is not
    /// sent again.
    async fn release_user(&self, deadline: Instant) -> anyhow::Result<()> {
        if self.users.fetch_sub(1, Ordering::SeqCst) != 1 {
            return Ok(());
        }
        self.stop.cancel();
        let ticker = self.ticker.lock().take();
        if let Some(t) = ticker {
            let _ = t.await;
        }
        // Kept spans waiting for late logs leave now, with the record of their decision.
        let cutoff = self.cutoff();
        let lingering = self.window.release_lingering((self.clock)(), true);
        self.emit_decided(lingering, cutoff).await;
        let pending = self.window.trace_count();
        let drop_pending = self.cfg.drop_pending_traces_on_shutdown;
        let keep = self.durable.is_some() && !drop_pending;
        if keep {
            tracing::info!(
                component = %self.id, pending_traces = pending,
                "shutdown: keeping the undecided traces in the durable window's log; the next start decides them when due"
            );
        } else {
            let cutoff = self.cutoff();
            let out = self.window.flush_all((self.clock)(), drop_pending);
            tracing::info!(
                component = %self.id, pending_traces = pending, dropped = drop_pending,
                "shutdown: deciding the traces still in the window"
            );
            self.emit_decided(out, cutoff).await;
        }
        while !self.drain_outbox().await {
            if Instant::now() + Duration::from_millis(100) >= deadline {
                let left = self.outbox_len();
                if let Some(d) = &self.durable {
                    // Undelivered, and undecided as far as the log knows: replayed next start.
                    d.wal.close().await;
                }
                anyhow::bail!(
                    "processor {}: {left} released batches not accepted downstream by the shutdown deadline",
                    self.id
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(d) = &self.durable {
            self.record_decisions(d);
            if self.window.trace_count() == 0 && d.wal.idle() {
                // Everything was decided and accepted downstream: nothing to replay.
                d.wal.close_and_clear().await;
            } else {
                let held = self.window.held_trace_ids();
                let kept = held.len();
                if let Err(e) = d.wal.append_shutdown(held).await {
                    // The traces are still in the log: the next start replays them by the
                    // rules for a crash (at least once).
                    tracing::warn!(component = %self.id, error = %e, "cannot record the shutdown in the durable window's log");
                }
                d.wal.close().await;
                if kept > 0 {
                    tracing::info!(
                        component = %self.id, pending_traces = kept,
                        "shutdown: undecided traces kept in the durable window's log for the next start"
                    );
                }
            }
        }
        Ok(())
    }
}

/// The decisions an operation made, as the durable log records them.
fn decisions(out: &Output, cutoff: u64) -> Vec<Decision> {
    out.decided
        .iter()
        .map(|(trace_id, kept)| {
            let summary = out
                .summaries
                .iter()
                .find(|(k, _)| k == trace_id)
                .map(|(_, s)| &**s)
                .filter(|_| *kept);
            let summary = match (kept, summary) {
                (true, None) => Some(enrich::Summary::default()),
                (_, s) => s.cloned(),
            };
            Decision::new(*trace_id, summary.as_ref(), cutoff)
        })
        .collect()
}

/// One pipeline's handle on the shared core.
struct Side<T>(Arc<TailSampling>, PhantomData<fn() -> T>);

#[async_trait]
impl<T: WindowSignal> Consumer<T> for Side<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        self.0.check_outbox()?;
        if let Some(d) = &self.0.durable {
            return self.0.consume_durable(d, data, T::ingest).await;
        }
        let out = T::ingest(&self.0.window, data, (self.0.clock)());
        self.0.emit(out).await;
        Ok(())
    }
}

#[async_trait]
impl<T: WindowSignal> Component for Side<T> {
    async fn start(&self) -> anyhow::Result<()> {
        self.0.start().await;
        Ok(())
    }

    async fn shutdown(&self, deadline: Instant) -> anyhow::Result<()> {
        self.0.release_user(deadline).await
    }
}
