//! The `kafka` exporter: writes each batch to a Kafka topic (the Collector contrib
//! `kafkaexporter`'s keys), behind the shared queue → retry → timeout layers.
//!
//! With `partition_traces_by_id` (`partition_logs_by_trace_id` for logs) a batch is cut, on
//! the wire, into one message per trace with the trace id (32 hex digits) as the message key,
//! so every span and log of a trace lands in one partition, and a consumer group of gateways
//! sees whole traces (Kafka's partitioner is librdkafka's `murmur2_random`, the Java
//! client's: a trace goes to the same partition whichever client wrote it). Logs without a
//! trace id go in one message without a key (spread by Kafka). With
//! `partition_metrics_by_resource_attributes` a metrics batch is cut into one message per
//! resource, keyed by a hash of all its attributes (in key order), so one resource's metrics
//! stay in one partition, in order.
//!
//! A batch is acknowledged to the pipeline once its queue took it; a send succeeds once the
//! brokers acknowledged every message of it (`producer::required_acks`). A failed send is
//! retried whole (at-least-once: a retry may write messages that had already been written).
//! A message larger than `producer::max_message_bytes` is a permanent error.

mod config;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use weft_config::SignalKind;

pub use config::Config;

use crate::component::{BuildContext, BuiltExporter, ExporterFactory, Stability};
use crate::exporters::helper::{self, ExportError, MakeSender, Sender};
use crate::exporters::loadbalancing::route::{self, RecordKey, RoutingKey, Split};
use crate::net::kafka::{client_config, topic_for, Encoding, LoggingContext};
use crate::pipeline::{Payload, Signal};

pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>(
        "kafka",
        Stability::Beta,
        vec![SignalKind::Traces, SignalKind::Logs, SignalKind::Metrics],
        "Writes to Kafka, a topic per signal; optionally one message per trace (keyed by trace id) or per resource",
        build,
    )
}

fn build(ctx: BuildContext, cfg: &Config, signals: &[SignalKind]) -> anyhow::Result<BuiltExporter> {
    let id = ctx.id_str();
    let mut extra = BTreeMap::new();
    extra.insert(
        "message.max.bytes",
        cfg.producer.max_message_bytes.to_string(),
    );
    extra.insert("acks", cfg.producer.required_acks.to_string());
    extra.insert("compression.codec", cfg.producer.compression.clone());
    extra.insert("partitioner", "murmur2_random".to_string());
    // A message not acknowledged within the exporter's timeout fails its send (retried by
    // the retry layer), instead of librdkafka retrying it for its default 5 minutes.
    extra.insert(
        "message.timeout.ms",
        cfg.timeout.get().as_millis().max(1).to_string(),
    );
    extra.insert("linger.ms", "5".to_string());
    let config = client_config(&cfg.brokers, &cfg.client_id, &cfg.auth, &extra);
    let context = LoggingContext::new(id.clone());
    let producer: FutureProducer<LoggingContext> = config
        .create_with_context(context.clone())
        .map_err(|e| anyhow::anyhow!("exporter {id}: cannot create the Kafka producer: {e}"))?;
    let make = MakeKafka {
        producer: Arc::new(producer),
        log: context,
        cfg: cfg.clone(),
        timeout: cfg.timeout.get(),
    };
    helper::build_queued_exporter(
        &ctx,
        signals,
        &make,
        cfg.timeout.get(),
        &cfg.retry_on_failure,
        &cfg.sending_queue,
    )
}

struct MakeKafka {
    producer: Arc<FutureProducer<LoggingContext>>,
    log: LoggingContext,
    cfg: Config,
    timeout: Duration,
}

impl MakeSender for MakeKafka {
    fn sender<T: Payload>(&self) -> anyhow::Result<impl Sender<T>> {
        let (topic, encoding) = topic_for(
            T::SIGNAL,
            &self.cfg.topic,
            &self.cfg.encoding,
            self.cfg.section(T::SIGNAL),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (partition, key) = match T::SIGNAL {
            SignalKind::Traces => (self.cfg.partition_traces_by_id, RoutingKey::TraceId),
            SignalKind::Logs => (self.cfg.partition_logs_by_trace_id, RoutingKey::TraceId),
            SignalKind::Metrics => (
                self.cfg.partition_metrics_by_resource_attributes,
                RoutingKey::Resource,
            ),
        };
        Ok(KafkaSender::<T> {
            producer: self.producer.clone(),
            log: self.log.clone(),
            topic,
            encoding,
            route: route::layout(T::SIGNAL)
                .filter(|_| partition)
                .map(|layout| (layout, key)),
            timeout: self.timeout,
            _signal: PhantomData,
        })
    }
}

/// Writes one batch as one message, or one message per trace.
struct KafkaSender<T> {
    producer: Arc<FutureProducer<LoggingContext>>,
    log: LoggingContext,
    topic: String,
    encoding: Encoding,
    /// Set when partitioning: by trace id (spans, logs) or by resource (metrics).
    route: Option<(route::Layout, RoutingKey)>,
    timeout: Duration,
    _signal: PhantomData<fn() -> T>,
}

impl<T: Payload> KafkaSender<T> {
    /// The messages of `batch`: (key, payload).
    fn messages(&self, batch: &T) -> Vec<(Option<String>, Vec<u8>)> {
        let Some((layout, key)) = self.route else {
            return vec![(None, self.encode(batch))];
        };
        let mut keys: Vec<Option<String>> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut choose = |record: RecordKey<'_>| {
            let k = match record {
                RecordKey::Key(k) => k.to_vec(),
                RecordKey::None => Vec::new(),
            };
            *index.entry(k.clone()).or_insert_with(|| {
                keys.push((!k.is_empty()).then(|| message_key(key, &k)));
                keys.len() - 1
            })
        };
        match route::split_batch(batch, layout, key, &mut choose) {
            Ok(Split::Empty) => Vec::new(),
            Ok(Split::Whole(k)) => vec![(keys[k].clone(), self.encode(batch))],
            Ok(Split::Parts(parts)) => parts
                .into_iter()
                .map(|(k, bytes, n)| {
                    (
                        keys[k].clone(),
                        self.encode(&T::from_encoded(bytes.into(), n)),
                    )
                })
                .collect(),
            // Not reachable for a batch prost encoded; one unkeyed message keeps the data.
            Err(_) => vec![(None, self.encode(batch))],
        }
    }

    fn encode(&self, batch: &T) -> Vec<u8> {
        match self.encoding {
            Encoding::Proto => batch.to_bytes().to_vec(),
            Encoding::Json => batch.request().encode_json(),
        }
    }
}

#[async_trait]
impl<T: Payload> Sender<T> for KafkaSender<T> {
    async fn send(&self, data: &T) -> Result<(), ExportError> {
        let messages = self.messages(data);
        let mut deliveries = Vec::with_capacity(messages.len());
        for (key, payload) in &messages {
            let mut record = FutureRecord::<str, [u8]>::to(&self.topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key.as_str());
            }
            // Waits (up to the timeout) for room in librdkafka's local queue.
            deliveries.push(self.producer.send(record, Timeout::After(self.timeout)));
        }
        for result in futures::future::join_all(deliveries).await {
            if let Err((e, _)) = result {
                return Err(classify(&e, &self.topic));
            }
        }
        self.log.recovered();
        Ok(())
    }
}

/// A message's key: a trace id as its 32 hex digits; a resource's identity (every
/// attribute, in key order, as [`route`] writes it) as the first 16 bytes of its SHA-256, in
/// hex. The Collector keys by its own hash of the attributes, so a topic written by both
/// puts one resource in two partitions at most.
fn message_key(key: RoutingKey, bytes: &[u8]) -> String {
    match key {
        RoutingKey::TraceId => hex::encode(bytes),
        _ => {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(bytes)[..16])
        }
    }
}

/// Whether a failed produce may succeed when tried again.
fn classify(e: &KafkaError, topic: &str) -> ExportError {
    let message = format!("writing to Kafka topic {topic}: {e}");
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::UnknownTopic,
        ) => ExportError::permanent(message),
        _ => ExportError::retryable(message),
    }
}
