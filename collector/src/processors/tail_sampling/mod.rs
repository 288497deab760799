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

pub mod config;
pub mod enrich;
mod metrics;
pub mod policy;
pub mod trace;
pub mod window;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::config::TailSamplingConfig;
use self::metrics::WindowMetrics;
use self::policy::Policies;
use self::window::{tick_interval, to_logs, to_traces, Output, Window};
use crate::component::{BuildContext, Component, Processor, ProcessorFactory, Stability};
use crate::pipeline::{ConsumeError, Consumer, Logs, Payload, Traces};

/// Released batches a refusing downstream may leave waiting before new data is refused.
const OUTBOX_LIMIT: usize = 256;
/// The retry delay clients are given while the outbox is full.
const OUTBOX_RETRY_AFTER: Duration = Duration::from_secs(1);

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<TailSamplingConfig>(
        "tail_sampling",
        Stability::Alpha,
        "keeps whole traces by policy; logs join their trace's window and follow its decision",
        |ctx, cfg, next| {
            let core = TailSampling::shared(&ctx, cfg)?;
            core.traces_next
                .set(next)
                .map_err(|_| anyhow::anyhow!("processor {} is listed twice in traces pipelines; a window feeds one traces pipeline", ctx.id))?;
            core.users.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(Side(core)) as Arc<dyn Processor<Traces>>)
        },
        |ctx, cfg, next| {
            let core = TailSampling::shared(&ctx, cfg)?;
            core.logs_next
                .set(next)
                .map_err(|_| anyhow::anyhow!("processor {} is listed twice in logs pipelines; a window feeds one logs pipeline", ctx.id))?;
            core.users.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(Side(core)) as Arc<dyn Processor<Logs>>)
        },
    )
}

/// The clock the window runs on; tests substitute their own.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The shared core of one `tail_sampling` id.
pub struct TailSampling {
    id: String,
    cfg: Arc<TailSamplingConfig>,
    window: Window,
    traces_next: OnceLock<Arc<dyn Consumer<Traces>>>,
    logs_next: OnceLock<Arc<dyn Consumer<Logs>>>,
    outbox: Mutex<Outbox>,
    /// Pipelines using this instance; the last one to shut down flushes the window.
    users: AtomicUsize,
    started: AtomicBool,
    ticker: Mutex<Option<JoinHandle<()>>>,
    stop: CancellationToken,
    clock: Clock,
}

#[derive(Default)]
struct Outbox {
    traces: VecDeque<Traces>,
    logs: VecDeque<Logs>,
}

impl Outbox {
    fn len(&self) -> usize {
        self.traces.len() + self.logs.len()
    }
}

impl TailSampling {
    fn shared(ctx: &BuildContext, cfg: &TailSamplingConfig) -> anyhow::Result<Arc<Self>> {
        ctx.shared.get_or_try_insert(&ctx.id, || {
            Ok(Arc::new(Self::new(
                ctx,
                cfg.clone(),
                Arc::new(Instant::now),
            )?))
        })
    }

    /// A core on `clock`; exposed for tests.
    pub fn new(ctx: &BuildContext, cfg: TailSamplingConfig, clock: Clock) -> anyhow::Result<Self> {
        let policies = Policies::new(&cfg.policies)
            .map_err(|e| anyhow::anyhow!("processor {}: {e}", ctx.id))?
            .with_sample_on_first_match(cfg.sample_on_first_match);
        let cfg = Arc::new(cfg);
        let metrics = WindowMetrics::new(&ctx.telemetry, &ctx.id_str());
        Ok(Self {
            id: ctx.id_str(),
            window: Window::new(cfg.clone(), policies, metrics),
            cfg,
            traces_next: OnceLock::new(),
            logs_next: OnceLock::new(),
            outbox: Mutex::new(Outbox::default()),
            users: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            ticker: Mutex::new(None),
            stop: CancellationToken::new(),
            clock,
        })
    }

    pub fn window(&self) -> &Window {
        &self.window
    }

    fn check_outbox(&self) -> Result<(), ConsumeError> {
        if self.outbox.lock().len() >= OUTBOX_LIMIT {
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
        if !out.spans.is_empty() {
            match self.traces_next.get() {
                Some(next) => {
                    let batch = to_traces(out.spans);
                    if let Err(e) = next.consume(batch.clone()).await {
                        self.park(
                            e,
                            || self.outbox.lock().traces.push_back(batch),
                            Traces::ITEM,
                        );
                    }
                }
                None => tracing::warn!(
                    component = %self.id,
                    "kept spans have nowhere to go: list this processor in a traces pipeline"
                ),
            }
        }
        if !out.logs.is_empty() {
            match self.logs_next.get() {
                Some(next) => {
                    let batch = to_logs(out.logs);
                    if let Err(e) = next.consume(batch.clone()).await {
                        self.park(e, || self.outbox.lock().logs.push_back(batch), Logs::ITEM);
                    }
                }
                None => tracing::warn!(
                    component = %self.id,
                    "kept logs have nowhere to go: list this processor in a logs pipeline"
                ),
            }
        }
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

    /// Retries the outbox in order; stops at the first refusal. True when it is empty.
    async fn drain_outbox(&self) -> bool {
        loop {
            let next_traces = self.outbox.lock().traces.pop_front();
            let Some(batch) = next_traces else { break };
            let Some(next) = self.traces_next.get() else {
                break;
            };
            if let Err(e) = next.consume(batch.clone()).await {
                if matches!(e, ConsumeError::Refused { .. }) {
                    self.outbox.lock().traces.push_front(batch);
                    return false;
                }
            }
        }
        loop {
            let next_logs = self.outbox.lock().logs.pop_front();
            let Some(batch) = next_logs else { break };
            let Some(next) = self.logs_next.get() else {
                break;
            };
            if let Err(e) = next.consume(batch.clone()).await {
                if matches!(e, ConsumeError::Refused { .. }) {
                    self.outbox.lock().logs.push_front(batch);
                    return false;
                }
            }
        }
        self.outbox.lock().len() == 0
    }

    /// One decision tick at the clock's `now`.
    pub async fn tick(&self) {
        let out = self.window.tick((self.clock)());
        self.emit(out).await;
        self.drain_outbox().await;
    }

    fn start_ticker(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
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

    /// Called by each pipeline's shutdown; the last one decides (or drops) what is pending
    /// and delivers it by `deadline`.
    async fn release_user(&self, deadline: Instant) -> anyhow::Result<()> {
        if self.users.fetch_sub(1, Ordering::SeqCst) != 1 {
            return Ok(());
        }
        self.stop.cancel();
        let ticker = self.ticker.lock().take();
        if let Some(t) = ticker {
            let _ = t.await;
        }
        let pending = self.window.trace_count();
        let out = self
            .window
            .flush_all((self.clock)(), self.cfg.drop_pending_traces_on_shutdown);
        tracing::info!(
            component = %self.id, pending_traces = pending,
            dropped = self.cfg.drop_pending_traces_on_shutdown,
            "shutdown: deciding the traces still in the window"
        );
        self.emit(out).await;
        while !self.drain_outbox().await {
            if Instant::now() + Duration::from_millis(100) >= deadline {
                let left = self.outbox.lock().len();
                anyhow::bail!(
                    "processor {}: {left} released batches not accepted downstream by the shutdown deadline",
                    self.id
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

/// One pipeline's handle on the shared core.
struct Side(Arc<TailSampling>);

#[async_trait]
impl Consumer<Traces> for Side {
    async fn consume(&self, data: Traces) -> Result<(), ConsumeError> {
        self.0.check_outbox()?;
        let out = self.0.window.ingest_spans(data, (self.0.clock)());
        self.0.emit(out).await;
        Ok(())
    }
}

#[async_trait]
impl Consumer<Logs> for Side {
    async fn consume(&self, data: Logs) -> Result<(), ConsumeError> {
        self.0.check_outbox()?;
        let out = self.0.window.ingest_logs(data, (self.0.clock)());
        self.0.emit(out).await;
        Ok(())
    }
}

#[async_trait]
impl Component for Side {
    async fn start(&self) -> anyhow::Result<()> {
        self.0.start_ticker();
        Ok(())
    }

    async fn shutdown(&self, deadline: Instant) -> anyhow::Result<()> {
        self.0.release_user(deadline).await
    }
}
