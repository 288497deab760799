//! The `spanmetrics` connector, as the Collector's spanmetricsconnector: request, error and
//! duration (R.E.D.) metrics computed from every span it sees — `traces.span.metrics.calls`
//! and `traces.span.metrics.duration` per service, span name, kind and status (plus the
//! configured dimensions) — sent every `metrics_flush_interval` to the metrics pipelines
//! that list it as a receiver.
//!
//! Placed in a traces pipeline beside a `tail_sampling` window (listed as an exporter of a
//! pipeline the same receiver feeds), it counts 100% of the spans, not what sampling keeps.
//! What Weft adds: with `exemplars.tail_sampling: <window id>`, an exemplar waits for its
//! trace's verdict and is attached only when the window kept the trace, so every exemplar
//! leads to a trace the backend has (the Collector attaches exemplars of traces sampling
//! then throws away).
//!
//! It takes spans without holding them: a batch is aggregated before `consume` returns.
//! What it holds are the series (bounded, see [`aggregate`]); at shutdown they are flushed a
//! last time.

mod aggregate;
mod config;
mod histogram;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_config::ComponentId;
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

pub use config::Config;

use crate::component::{
    BuildContext, Component, ConnectorFactory, ConnectorTargets, Processor, Stability,
};
use crate::pipeline::{ConsumeError, Consumer, Fanout, Metrics, Payload, Traces};
use crate::verdicts::{Verdict, VerdictBus, VerdictListener};
use aggregate::{unix_nanos, Aggregator, ConnectorMetrics, Settings};

pub fn factory() -> ConnectorFactory {
    ConnectorFactory::new::<Config>(
        "spanmetrics",
        Stability::Alpha,
        "request, error and duration metrics from every span (traces to metrics); exemplars only of traces a tail_sampling window kept",
    )
    .connect::<ExportTraceServiceRequest, ExportMetricsServiceRequest, Config>(build)
}

fn build(
    ctx: BuildContext,
    cfg: &Config,
    targets: ConnectorTargets<Metrics>,
) -> anyhow::Result<Arc<dyn Processor<Traces>>> {
    let id = ctx.id_str();
    let aggregator = Arc::new(Aggregator::new(
        Settings::new(cfg),
        ConnectorMetrics::new(&ctx.telemetry, &id),
    ));
    let window = match (&cfg.exemplars.tail_sampling, cfg.exemplars.enabled) {
        (Some(window), true) => {
            let window: ComponentId = window
                .parse()
                .map_err(|e| anyhow::anyhow!("exemplars.tail_sampling: {e}"))?;
            let bus = VerdictBus::of(&ctx.shared, &window)?;
            bus.subscribe(Arc::new(Listener(aggregator.clone())), false);
            Some((window, bus))
        }
        _ => None,
    };
    Ok(Arc::new(SpanMetrics {
        id,
        aggregator,
        next: Fanout::of(targets.into_iter().map(|(_, c)| c).collect()),
        interval: cfg.metrics_flush_interval.get(),
        window,
        stop: CancellationToken::new(),
        task: Mutex::new(None),
        span: ctx.span(),
    }))
}

/// Hands a window's verdicts to the aggregator.
struct Listener(Arc<Aggregator>);

impl VerdictListener for Listener {
    fn decided(&self, verdict: &Verdict<'_>) {
        self.0.decided(verdict);
    }
}

pub struct SpanMetrics {
    id: String,
    aggregator: Arc<Aggregator>,
    next: Arc<dyn Consumer<Metrics>>,
    interval: std::time::Duration,
    window: Option<(ComponentId, Arc<VerdictBus>)>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    span: tracing::Span,
}

#[async_trait]
impl Consumer<Traces> for SpanMetrics {
    async fn consume(&self, data: Traces) -> Result<(), ConsumeError> {
        let bytes = data.to_bytes();
        self.aggregator
            .record(&bytes, Instant::now(), unix_nanos(SystemTime::now()));
        Ok(())
    }
}

/// Sends what the aggregator holds now; on a refusal, cumulative series carry their totals
/// to the next flush and delta data is put back.
async fn flush(id: &str, aggregator: &Aggregator, next: &Arc<dyn Consumer<Metrics>>) {
    let Some((request, taken)) = aggregator.flush(Instant::now(), unix_nanos(SystemTime::now()))
    else {
        return;
    };
    if let Err(e) = next.consume(Metrics::from_request(request)).await {
        aggregator.metrics.flush_failures.inc();
        tracing::warn!(
            component = %id,
            error = %e,
            "the metrics pipeline refused the span metrics; they are sent again with the next flush"
        );
        if let Some(taken) = taken {
            aggregator.restore(taken);
        }
    }
}

#[async_trait]
impl Component for SpanMetrics {
    async fn start(&self) -> anyhow::Result<()> {
        if let Some((window, bus)) = &self.window {
            anyhow::ensure!(
                bus.has_publisher(),
                "exemplars.tail_sampling names \"{window}\", but no tail_sampling processor \"{window}\" is in a traces pipeline: list it in one, or remove the key"
            );
        }
        let (aggregator, next, stop, interval, id) = (
            self.aggregator.clone(),
            self.next.clone(),
            self.stop.clone(),
            self.interval,
            self.id.clone(),
        );
        let task = tokio::spawn(
            async move {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => flush(&id, &aggregator, &next).await,
                    }
                }
            }
            .instrument(self.span.clone()),
        );
        *self.task.lock() = Some(task);
        Ok(())
    }

    /// Stops the flush loop and flushes a last time, so the last interval is not lost.
    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        let last = flush(&self.id, &self.aggregator, &self.next);
        if tokio::time::timeout(remaining, last).await.is_err() {
            tracing::warn!(component = %self.id, "the last span metrics flush did not finish before the deadline");
        }
        Ok(())
    }
}
