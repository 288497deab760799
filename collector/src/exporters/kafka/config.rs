//! The `kafka` exporter's configuration: the Collector contrib `kafkaexporter`'s keys.

use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, DataHolding, Diagnostics, Duration as CfgDuration};

use crate::exporters::helper::{QueueSettings, RetrySettings};
use crate::net::kafka::{topic_for, validate_brokers, Auth, SignalTopic};

/// `exporters::kafka`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub brokers: Vec<String>,
    pub client_id: String,
    /// Every signal's topic, unless `traces::topic` / `logs::topic` says otherwise.
    pub topic: Option<String>,
    /// `otlp_proto` or `otlp_json`.
    pub encoding: String,
    pub traces: SignalTopic,
    pub logs: SignalTopic,
    /// One message per trace, keyed by trace id.
    pub partition_traces_by_id: bool,
    /// One message per trace's logs, keyed by trace id.
    pub partition_logs_by_trace_id: bool,
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
            partition_traces_by_id: false,
            partition_logs_by_trace_id: false,
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

impl ComponentConfig for Config {
    fn extension_references(&self, path: &ConfigPath) -> Vec<weft_config::ExtensionReference> {
        self.sending_queue.extension_references(path)
    }

    fn holds_data(&self) -> DataHolding {
        self.sending_queue.holds_data()
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        validate_brokers(&self.brokers, &path.key("brokers"), diags);
        for (key, section, kind) in [
            ("traces", &self.traces, weft_config::SignalKind::Traces),
            ("logs", &self.logs, weft_config::SignalKind::Logs),
        ] {
            if let Err(e) = topic_for(kind, &self.topic, &self.encoding, section) {
                let at = if section.encoding.is_some() {
                    path.key(key).key("encoding")
                } else {
                    path.key("encoding")
                };
                diags.error(&at, e);
            }
        }
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
