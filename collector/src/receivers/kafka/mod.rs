//! The `kafka` receiver: a member of a Kafka consumer group reading OTLP messages (the
//! Collector contrib `kafkareceiver`'s keys), one consumer per signal.
//!
//! Contract, per message, in partition order:
//! - a message that is OTLP (checked as the `otlp` receiver checks a request) goes to the
//!   pipeline; its offset is stored, and committed, **only after `consume` returned `Ok`**;
//! - a message the pipeline refuses for now (a full queue, the memory limiter) is offered
//!   again, after the refusal's retry delay, until it is taken: never skipped;
//! - a message that is not valid OTLP, or that the pipeline refuses for good, is logged
//!   (topic, partition, offset, why), counted (`otelcol_kafka_receiver_messages{outcome=
//!   "failure"}`, `otelcol_kafka_receiver_unmarshal_failed_<items>`) and skipped: its offset is
//!   committed so that it does not stop the partition.
//!
//! Partitions, rebalancing and retention are Kafka's: when a member leaves (or dies and its
//! session times out), its partitions move to the others, which resume from the last
//! committed offsets, so messages accepted but not yet committed are read again
//! (at-least-once).

mod config;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_proto::limits::Limits;

pub use config::Config;

use crate::component::{BuildContext, Component, ReceiverFactory, Stability};
use crate::net::kafka::{client_config, topic_for, Encoding, LoggingContext};
use crate::pipeline::{
    for_each_signal, Batch, ConsumeError, Consumer, Consumers, Payload, Signal, SignalVisitor,
};
use crate::telemetry::{ReceiverMetrics, Telemetry};

pub fn factory() -> ReceiverFactory {
    ReceiverFactory::new::<Config>(
        "kafka",
        Stability::Beta,
        vec![weft_config::SignalKind::Traces, weft_config::SignalKind::Logs],
        "Reads OTLP traces and logs from Kafka topics as a consumer group member; commits only what the pipeline took",
        |ctx, cfg, next| Ok(Arc::new(KafkaReceiver::new(ctx, cfg, next)?) as Arc<dyn Component>),
    )
}

/// The longest a refused message waits before it is offered again.
const MAX_REFUSED_WAIT: Duration = Duration::from_secs(5);

struct KafkaReceiver {
    id: String,
    /// One per signal, started at `start`.
    loops: Mutex<Vec<Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: CancellationToken,
}

impl KafkaReceiver {
    fn new(ctx: BuildContext, cfg: &Config, next: Consumers) -> anyhow::Result<Self> {
        struct Each<'a> {
            ctx: &'a BuildContext,
            cfg: &'a Config,
            next: &'a Consumers,
            loops: Vec<Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>>,
            error: Option<anyhow::Error>,
        }
        impl SignalVisitor for Each<'_> {
            fn visit<S: Signal>(&mut self) {
                let Some(next) = self.next.get::<Batch<S>>() else {
                    return;
                };
                match SignalLoop::<S>::new(self.ctx, self.cfg, next) {
                    Ok(l) => {
                        let span = self.ctx.span();
                        self.loops.push(Box::new(move |stop| {
                            tokio::spawn(l.run(stop).instrument(span))
                        }))
                    }
                    Err(e) => self.error = Some(e),
                }
            }
        }
        let mut each = Each {
            ctx: &ctx,
            cfg,
            next: &next,
            loops: Vec::new(),
            error: None,
        };
        for_each_signal(&mut each);
        if let Some(e) = each.error {
            return Err(e);
        }
        Ok(Self {
            id: ctx.id_str(),
            loops: Mutex::new(each.loops),
            tasks: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
        })
    }
}

#[async_trait]
impl Component for KafkaReceiver {
    async fn start(&self) -> anyhow::Result<()> {
        let loops = std::mem::take(&mut *self.loops.lock());
        let mut tasks = self.tasks.lock();
        for l in loops {
            tasks.push(l(self.stop.clone()));
        }
        Ok(())
    }

    /// Stops reading; a message being offered to the pipeline is abandoned uncommitted (the
    /// group reads it again), and what was taken is committed before leaving the group.
    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock());
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        if tokio::time::timeout(wait, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            anyhow::bail!(
                "receiver {}: consumers did not stop by the deadline",
                self.id
            );
        }
        Ok(())
    }
}

/// librdkafka's callbacks for a consumer: log lines and errors (through
/// [`LoggingContext`]) and partition assignments (counted).
struct ReceiverContext {
    log: LoggingContext,
    partition_start: Counter,
    partition_close: Counter,
}

impl ClientContext for ReceiverContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ConsumerContext for ReceiverContext {
    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                self.partition_start.inc_by(list.count() as u64);
                let parts: Vec<String> = list
                    .elements()
                    .iter()
                    .map(|e| format!("{}/{}", e.topic(), e.partition()))
                    .collect();
                tracing::info!(component = %self.log.component, partitions = ?parts, "partitions assigned");
            }
            Rebalance::Revoke(list) => {
                self.partition_close.inc_by(list.count() as u64);
                tracing::info!(component = %self.log.component, partitions = list.count(), "partitions revoked");
            }
            Rebalance::Error(e) => {
                tracing::warn!(component = %self.log.component, error = %e, "rebalance failed")
            }
        }
    }
}

/// The consumer of one signal's topic and its hand-off to the pipeline.
struct SignalLoop<S: Signal> {
    id: String,
    consumer: StreamConsumer<ReceiverContext>,
    topic: String,
    encoding: Encoding,
    next: Arc<dyn Consumer<Batch<S>>>,
    metrics: ReceiverMetrics,
    telemetry: Telemetry,
    limits: Limits,
}

impl<S: Signal> SignalLoop<S> {
    fn new(
        ctx: &BuildContext,
        cfg: &Config,
        next: Arc<dyn Consumer<Batch<S>>>,
    ) -> anyhow::Result<Self> {
        let id = ctx.id_str();
        let section = match S::KIND {
            weft_config::SignalKind::Traces => &cfg.traces,
            _ => &cfg.logs,
        };
        let (topic, encoding) = topic_for(S::KIND, &cfg.topic, &cfg.encoding, section)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let context = ReceiverContext {
            log: LoggingContext::new(id.clone()),
            partition_start: ctx.telemetry.counter(
                "otelcol_kafka_receiver_partition_start",
                "Number of started partitions",
                &[("receiver", &id)],
            ),
            partition_close: ctx.telemetry.counter(
                "otelcol_kafka_receiver_partition_close",
                "Number of finished partitions",
                &[("receiver", &id)],
            ),
        };
        let consumer: StreamConsumer<ReceiverContext> = client_config(
            &cfg.brokers,
            &cfg.client_id,
            &cfg.auth,
            &cfg.consumer_properties(),
        )
        .create_with_context(context)
        .map_err(|e| anyhow::anyhow!("receiver {id}: cannot create the Kafka consumer: {e}"))?;
        consumer
            .subscribe(&[topic.as_str()])
            .map_err(|e| anyhow::anyhow!("receiver {id}: cannot subscribe to {topic}: {e}"))?;
        Ok(Self {
            metrics: ReceiverMetrics::new(&ctx.telemetry, &id, "kafka", S::ITEM),
            id,
            consumer,
            topic,
            encoding,
            next,
            telemetry: ctx.telemetry.clone(),
            limits: Limits::default(),
        })
    }

    async fn run(self, stop: CancellationToken) {
        tracing::info!(component = %self.id, topic = %self.topic, "consuming");
        loop {
            let message = tokio::select! {
                m = self.consumer.recv() => m,
                _ = stop.cancelled() => break,
            };
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    self.consumer.context().log.error(e, "consuming");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        _ = stop.cancelled() => break,
                    }
                }
            };
            self.consumer.context().log.recovered();
            let (partition, offset) = (message.partition(), message.offset());
            let partition_label = partition.to_string();
            let labels = [
                ("receiver", self.id.as_str()),
                ("topic", self.topic.as_str()),
                ("partition", partition_label.as_str()),
            ];
            self.telemetry
                .gauge(
                    "otelcol_kafka_receiver_current_offset",
                    "Current message offset",
                    &labels,
                )
                .set(offset);
            let taken = match self.decode(message.payload().unwrap_or_default()) {
                Err(reason) => {
                    self.telemetry
                        .counter(
                            &format!("otelcol_kafka_receiver_unmarshal_failed_{}", S::ITEM),
                            &format!("Number of {} failed to be unmarshaled", S::ITEM),
                            &labels,
                        )
                        .inc();
                    tracing::error!(
                        component = %self.id, topic = %self.topic, partition, offset, error = %reason,
                        "skipping a message that is not valid OTLP (its offset is committed)"
                    );
                    false
                }
                Ok(batch) => match self.hand_off(batch, &stop).await {
                    Some(taken) => taken,
                    // Shutting down while the pipeline refused it: not committed, read again.
                    None => break,
                },
            };
            self.outcome(&labels, taken).inc();
            if let Err(e) = self.consumer.store_offset_from_message(&message) {
                tracing::warn!(component = %self.id, error = %e, partition, offset, "cannot store the offset");
            }
            if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Async) {
                tracing::debug!(component = %self.id, error = %e, "commit failed; the next one carries it");
            }
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(component = %self.id, error = %e, "final commit");
        }
        tracing::info!(component = %self.id, topic = %self.topic, "stopped consuming");
    }

    fn outcome(&self, labels: &[(&str, &str); 3], success: bool) -> Counter {
        let mut with = labels.to_vec();
        with.push(("outcome", if success { "success" } else { "failure" }));
        self.telemetry.counter(
            "otelcol_kafka_receiver_messages",
            "The number of received messages.",
            &with,
        )
    }

    /// The message as a batch, checked as the `otlp` receiver checks a request.
    fn decode(&self, payload: &[u8]) -> Result<Batch<S>, String> {
        match self.encoding {
            Encoding::Proto => {
                if let Some(n) = S::scan(payload, &self.limits) {
                    return Ok(Batch::<S>::from_encoded(Bytes::copy_from_slice(payload), n));
                }
                let request =
                    S::decode(payload).map_err(|e| format!("not an OTLP {}: {e}", S::REQUEST))?;
                request.validate(&self.limits)?;
                Ok(Batch::<S>::from_request(request))
            }
            Encoding::Json => {
                let request = S::decode_json(payload)
                    .map_err(|(e, _)| format!("not OTLP/JSON {}: {e}", S::REQUEST))?;
                request.validate(&self.limits)?;
                Ok(Batch::<S>::from_request(request))
            }
        }
    }

    /// Offers `batch` until the pipeline takes it (`Some(true)`) or refuses it for good
    /// (`Some(false)`); `None` when `stop` came first.
    async fn hand_off(&self, batch: Batch<S>, stop: &CancellationToken) -> Option<bool> {
        let items = batch.item_count() as u64;
        let mut warned = false;
        loop {
            match self.next.consume(batch.clone()).await {
                Ok(()) => {
                    self.metrics.accepted.inc_by(items);
                    return Some(true);
                }
                Err(ConsumeError::Permanent(e)) => {
                    self.metrics.refused.inc_by(items);
                    tracing::error!(component = %self.id, topic = %self.topic, error = %e, dropped_items = items, "dropping a message the pipeline refused for good");
                    return Some(false);
                }
                Err(ConsumeError::Refused {
                    message,
                    retry_after,
                    ..
                }) => {
                    if !warned {
                        tracing::warn!(component = %self.id, topic = %self.topic, error = %message, "the pipeline refused a message for now; offering it again (the partition waits)");
                        warned = true;
                    }
                    let wait = retry_after.clamp(Duration::from_millis(50), MAX_REFUSED_WAIT);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => return None,
                    }
                }
            }
        }
    }
}
