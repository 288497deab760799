//! The `kafka` exporter's configuration: the Collector contrib `kafkaexporter`'s keys.

use serde::Deserialize;
use weft_config::{
    ComponentConfig, ConfigPath, DataHolding, Diagnostics, Duration as CfgDuration, SignalKind,
};

use crate::exporters::helper::{QueueSettings, RetrySettings};
use crate::net::kafka::{validate_brokers, validate_topics, Auth, SignalTopic};

/// `exporters::kafka`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub brokers: Vec<String>,
    pub client_id: String,
    /// Every signal's topic, unless `traces::topic` / `logs::topic` / `metrics::topic` says
    /// otherwise (the defaults are the Collector's: `otlp_spans`, `otlp_logs`,
    /// `otlp_metrics`).
    pub topic: Option<String>,
    /// `otlp_proto` or `otlp_json`.
    pub encoding: String,
    pub traces: SignalTopic,
    pub logs: SignalTopic,
    pub metrics: SignalTopic,
    /// One message per trace, keyed by trace id.
    pub partition_traces_by_id: bool,
    /// One message per trace's logs, keyed by trace id.
    pub partition_logs_by_trace_id: bool,
    /// One message per resource, keyed by a hash of all its attributes: every metric of one
    /// resource lands in one partition.
    pub partition_metrics_by_resource_attributes: bool,
    pub producer: ProducerSettings,
    pub auth: Auth,
    /// Bounds each send, and how long librdkafka tries to deliver a message.
    pub timeout: CfgDuration,
    pub sending_queue: QueueSettings,
    pub retry_on_failure: RetrySettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            brokers: vec!["localhost:9092".into()],
            client_id: "otel-collector".into(),
            topic: None,
            encoding: "otlp_proto".into(),
            traces: SignalTopic::default(),
            logs: SignalTopic::default(),
            metrics: SignalTopic::default(),
            partition_traces_by_id: false,
            partition_logs_by_trace_id: false,
            partition_metrics_by_resource_attributes: false,
            producer: ProducerSettings::default(),
            auth: Auth::default(),
            timeout: CfgDuration::from_secs(5),
            sending_queue: QueueSettings::default(),
            retry_on_failure: RetrySettings::default(),
        }
    }
}

/// `producer`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerSettings {
    pub max_message_bytes: u64,
    /// `0` (no acknowledgement), `1` (the leader), `-1` (all in-sync replicas).
    pub required_acks: i32,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: String,
    /// Accepted for Collector compatibility; librdkafka batches by `linger.ms`.
    pub flush_max_messages: u64,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        Self {
            max_message_bytes: 1_000_000,
            required_acks: 1,
            compression: "none".into(),
            flush_max_messages: 0,
        }
    }
}

impl Config {
    /// `kind`'s own `topic` / `encoding` section.
    pub fn section(&self, kind: SignalKind) -> &SignalTopic {
        match kind {
            SignalKind::Traces => &self.traces,
            SignalKind::Logs => &self.logs,
            SignalKind::Metrics => &self.metrics,
        }
    }
}

impl ComponentConfig for Config {
    fn extension_references(&self, path: &ConfigPath) -> Vec<weft_config::ExtensionReference> {
        self.sending_queue.extension_references(path)
    }

    fn holds_data(&self) -> DataHolding {
        self.sending_queue.holds_data()
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        validate_brokers(&self.brokers, &path.key("brokers"), diags);
        validate_topics(
            &self.topic,
            &self.encoding,
            |kind| self.section(kind),
            path,
            diags,
        );
        let p = path.key("producer");
        if !matches!(self.producer.required_acks, -1..=1) {
            diags.error(
                &p.key("required_acks"),
                "must be 0, 1 or -1 (all in-sync replicas)",
            );
        }
        if !matches!(
            self.producer.compression.as_str(),
            "none" | "gzip" | "snappy" | "lz4" | "zstd"
        ) {
            diags.error(
                &p.key("compression"),
                format!(
                    "unknown compression \"{}\", expected none, gzip, snappy, lz4 or zstd",
                    self.producer.compression
                ),
            );
        }
        if !(1000..=1_000_000_000).contains(&self.producer.max_message_bytes) {
            diags.error(
                &p.key("max_message_bytes"),
                "must be between 1000 and 1000000000",
            );
        }
        self.auth.validate(&path.key("auth"), diags);
        if self.timeout.is_zero() {
            diags.error(&path.key("timeout"), "must be greater than 0");
        }
        self.sending_queue
            .validate(&path.key("sending_queue"), diags);
        self.retry_on_failure
            .validate(&path.key("retry_on_failure"), diags);
    }
}
