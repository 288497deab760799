//! The `kafka` receiver: a member of a Kafka consumer group reading OTLP messages (the
//! Collector contrib `kafkareceiver`'s keys).
//!
//! One consumer group member per receiver, subscribed to every signal's topic with the range
//! assignor: partition p of the traces topic and of the logs topic go to the same member, and
//! the `kafka` exporter keys spans and logs by trace id, so a trace's spans and logs meet at one
//! gateway (both topics need the same partition count, which Kafka's auto-creation gives).
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
        vec![
            weft_config::SignalKind::Traces,
            weft_config::SignalKind::Logs,
            weft_config::SignalKind::Metrics,
        ],
        "Reads OTLP from Kafka, a topic per signal, as a consumer group member; commits only what the pipeline took",
        |ctx, cfg, next| Ok(Arc::new(KafkaReceiver::new(ctx, cfg, next)?) as Arc<dyn Component>),
    )
}

/// The longest a refused message waits before it is offered again.
const MAX_REFUSED_WAIT: Duration = Duration::from_secs(5);

struct KafkaReceiver {
    /// The consumer loop, started at `start`.
    run: Mutex<Option<ConsumerLoop>>,
    task: Mutex<Option<JoinHandle<()>>>,
    stop: CancellationToken,
    id: String,
    span: tracing::Span,
}

impl KafkaReceiver {
    fn new(ctx: BuildContext, cfg: &Config, next: Consumers) -> anyhow::Result<Self> {
        /// One [`SignalSink`] per signal the receiver feeds, keyed by its topic.
        struct Each<'a> {
            ctx: &'a BuildContext,
            cfg: &'a Config,
            next: &'a Consumers,
            sinks: Vec<(String, Box<dyn SignalSink>)>,
            error: Option<anyhow::Error>,
        }
        impl SignalVisitor for Each<'_> {
            fn visit<S: Signal>(&mut self) {
                let Some(next) = self.next.get::<Batch<S>>() else {
                    return;
                };
                match SignalHandler::<S>::new(self.ctx, self.cfg, next) {
                    Ok(h) => self.sinks.push((h.topic.clone(), Box::new(h))),
                    Err(e) => self.error = Some(e),
                }
            }
        }
        let mut each = Each {
            ctx: &ctx,
            cfg,
            next: &next,
            sinks: Vec::new(),
            error: None,
        };
        for_each_signal(&mut each);
        if let Some(e) = each.error {
            return Err(e);
        }
        let id = ctx.id_str();
        let topics: Vec<&str> = each.sinks.iter().map(|(t, _)| t.as_str()).collect();
        let mut unique = topics.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != topics.len() {
            anyhow::bail!(
                "receiver {id}: each signal needs a topic of its own (they read {:?})",
                topics
            );
        }
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
            .subscribe(&topics)
            .map_err(|e| anyhow::anyhow!("receiver {id}: cannot subscribe to {topics:?}: {e}"))?;
        Ok(Self {
            run: Mutex::new(Some(ConsumerLoop {
                id: id.clone(),
                consumer,
                sinks: each.sinks,
                telemetry: ctx.telemetry.clone(),
            })),
            task: Mutex::new(None),
            stop: CancellationToken::new(),
            id,
            span: ctx.span(),
        })
    }
}

#[async_trait]
impl Component for KafkaReceiver {
    async fn start(&self) -> anyhow::Result<()> {
        if let Some(run) = self.run.lock().take() {
            let task = tokio::spawn(run.run(self.stop.clone()).instrument(self.span.clone()));
            *self.task.lock() = Some(task);
        }
        Ok(())
    }

    /// Stops reading; a message being offered to the pipeline is abandoned uncommitted (the
    /// group reads it again), and what was taken is committed before leaving the group.
    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        let task = self.task.lock().take();
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        if let Some(task) = task {
            if tokio::time::timeout(wait, task).await.is_err() {
                anyhow::bail!(
                    "receiver {}: the consumer did not stop by the deadline",
                    self.id
                );
            }
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

/// What happened to one message.
enum Outcome {
    /// The pipeline took it.
    Taken,
    /// Not OTLP, or refused for good: skipped.
    Skipped,
    /// Shutting down while the pipeline refused it: not committed, read again later.
    Abandoned,
}

/// One signal's side of the receiver: decodes a message of its topic and hands it to its
/// pipeline.
#[async_trait]
trait SignalSink: Send + Sync {
    async fn handle(&self, payload: &[u8], at: &Position<'_>, stop: &CancellationToken) -> Outcome;
}

/// Where a message sits, for log lines and metric labels.
struct Position<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
}

/// The group member: one consumer subscribed to every signal's topic, so that partition `p`
/// of the traces topic and partition `p` of the logs topic (where the spans and the logs of
/// the same trace ids land) are assigned to the same member by the range assignor.
struct ConsumerLoop {
    id: String,
    consumer: StreamConsumer<ReceiverContext>,
    /// (topic, its signal's sink).
    sinks: Vec<(String, Box<dyn SignalSink>)>,
    telemetry: Telemetry,
}

impl ConsumerLoop {
    async fn run(self, stop: CancellationToken) {
        let topics: Vec<&str> = self.sinks.iter().map(|(t, _)| t.as_str()).collect();
        tracing::info!(component = %self.id, topics = ?topics, "consuming");
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
            let at = Position {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
            };
            let partition = at.partition.to_string();
            let labels = [
                ("receiver", self.id.as_str()),
                ("topic", at.topic),
                ("partition", partition.as_str()),
            ];
            self.telemetry
                .gauge(
                    "otelcol_kafka_receiver_current_offset",
                    "Current message offset",
                    &labels,
                )
                .set(at.offset);
            let Some((_, sink)) = self.sinks.iter().find(|(t, _)| t == at.topic) else {
                continue;
            };
            let taken = match sink
                .handle(message.payload().unwrap_or_default(), &at, &stop)
                .await
            {
                Outcome::Taken => true,
                Outcome::Skipped => false,
                Outcome::Abandoned => break,
            };
            let mut with = labels.to_vec();
            with.push(("outcome", if taken { "success" } else { "failure" }));
            self.telemetry
                .counter(
                    "otelcol_kafka_receiver_messages",
                    "The number of received messages.",
                    &with,
                )
                .inc();
            if let Err(e) = self.consumer.store_offset_from_message(&message) {
                tracing::warn!(component = %self.id, error = %e, partition = at.partition, offset = at.offset, "cannot store the offset");
            }
            if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Async) {
                tracing::debug!(component = %self.id, error = %e, "commit failed; the next one carries it");
            }
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(component = %self.id, error = %e, "final commit");
        }
        tracing::info!(component = %self.id, "stopped consuming");
    }
}

/// Decodes one signal's messages and offers them to its pipeline.
struct SignalHandler<S: Signal> {
    id: String,
    topic: String,
    encoding: Encoding,
    next: Arc<dyn Consumer<Batch<S>>>,
    metrics: ReceiverMetrics,
    telemetry: Telemetry,
    limits: Limits,
}

impl<S: Signal> SignalHandler<S> {
    fn new(
        ctx: &BuildContext,
        cfg: &Config,
        next: Arc<dyn Consumer<Batch<S>>>,
    ) -> anyhow::Result<Self> {
        let id = ctx.id_str();
        let (topic, encoding) = topic_for(S::KIND, &cfg.topic, &cfg.encoding, cfg.section(S::KIND))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self {
            metrics: ReceiverMetrics::new(&ctx.telemetry, &id, "kafka", S::ITEM),
            id,
            topic,
            encoding,
            next,
            telemetry: ctx.telemetry.clone(),
            limits: Limits::default(),
        })
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
}

#[async_trait]
impl<S: Signal> SignalSink for SignalHandler<S> {
    async fn handle(&self, payload: &[u8], at: &Position<'_>, stop: &CancellationToken) -> Outcome {
        let batch = match self.decode(payload) {
            Ok(batch) => batch,
            Err(reason) => {
                let partition = at.partition.to_string();
                self.telemetry
                    .counter(
                        &format!("otelcol_kafka_receiver_unmarshal_failed_{}", S::ITEM),
                        &format!("Number of {} failed to be unmarshaled", S::ITEM),
                        &[
                            ("receiver", self.id.as_str()),
                            ("topic", at.topic),
                            ("partition", partition.as_str()),
                        ],
                    )
                    .inc();
                tracing::error!(
                    component = %self.id, topic = %at.topic, partition = at.partition, offset = at.offset, error = %reason,
                    "skipping a message that is not valid OTLP (its offset is committed)"
                );
                return Outcome::Skipped;
            }
        };
        let items = batch.item_count() as u64;
        let mut warned = false;
        loop {
            match self.next.consume(batch.clone()).await {
                Ok(()) => {
                    self.metrics.accepted.inc_by(items);
                    return Outcome::Taken;
                }
                Err(ConsumeError::Permanent(e)) => {
                    self.metrics.refused.inc_by(items);
                    tracing::error!(component = %self.id, topic = %at.topic, partition = at.partition, offset = at.offset, error = %e, dropped_items = items, "dropping a message the pipeline refused for good");
                    return Outcome::Skipped;
                }
                Err(ConsumeError::Refused {
                    message,
                    retry_after,
                    ..
                }) => {
                    if !warned {
                        tracing::warn!(component = %self.id, topic = %at.topic, partition = at.partition, error = %message, "the pipeline refused a message for now; offering it again (the partition waits)");
                        warned = true;
                    }
                    let wait = retry_after.clamp(Duration::from_millis(50), MAX_REFUSED_WAIT);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => return Outcome::Abandoned,
                    }
                }
            }
        }
    }
}
