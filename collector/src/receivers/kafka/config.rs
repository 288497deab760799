//! The `kafka` receiver's configuration: the Collector contrib `kafkareceiver`'s keys.

use std::collections::BTreeMap;

use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration, SignalKind};

use crate::net::kafka::{validate_brokers, validate_topics, Auth, SignalTopic};

/// `receivers::kafka`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub brokers: Vec<String>,
    /// Every signal's topic, unless `traces::topic` / `logs::topic` / `metrics::topic` says
    /// otherwise (the defaults are the Collector's: `otlp_spans`, `otlp_logs`,
    /// `otlp_metrics`).
    pub topic: Option<String>,
    /// `otlp_proto` or `otlp_json`.
    pub encoding: String,
    pub traces: SignalTopic,
    pub logs: SignalTopic,
    pub metrics: SignalTopic,
    pub group_id: String,
    pub client_id: String,
    /// Where a group without a committed offset starts: `latest` or `earliest`.
    pub initial_offset: String,
    pub session_timeout: CfgDuration,
    pub heartbeat_interval: CfgDuration,
    pub autocommit: AutoCommit,
    /// Accepted for Collector compatibility: Weft always marks a message after the pipeline
    /// took it, and skips (commits) one that is not OTLP.
    pub message_marking: MessageMarking,
    pub auth: Auth,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            brokers: vec!["localhost:9092".into()],
            topic: None,
            encoding: "otlp_proto".into(),
            traces: SignalTopic::default(),
            logs: SignalTopic::default(),
            metrics: SignalTopic::default(),
            group_id: "otel-collector".into(),
            client_id: "otel-collector".into(),
            initial_offset: "latest".into(),
            session_timeout: CfgDuration::from_secs(10),
            heartbeat_interval: CfgDuration::from_secs(3),
            autocommit: AutoCommit::default(),
            message_marking: MessageMarking::default(),
            auth: Auth::default(),
        }
    }
}

/// `autocommit`: off (Weft's default), every taken message's offset is committed as soon as
/// the pipeline took it; on, taken offsets are committed every `interval`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoCommit {
    pub enable: bool,
    pub interval: CfgDuration,
}

impl Default for AutoCommit {
    fn default() -> Self {
        Self {
            enable: false,
            interval: CfgDuration::from_secs(1),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessageMarking {
    pub after: bool,
    pub on_error: bool,
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

    /// librdkafka's consumer properties for these settings.
    pub fn consumer_properties(&self) -> BTreeMap<&'static str, String> {
        let mut p = BTreeMap::new();
        p.insert("group.id", self.group_id.clone());
        p.insert("auto.offset.reset", self.initial_offset.clone());
        p.insert("enable.auto.commit", self.autocommit.enable.to_string());
        p.insert(
            "auto.commit.interval.ms",
            self.autocommit.interval.get().as_millis().to_string(),
        );
        // Offsets are stored by the receiver, after the pipeline took the message.
        p.insert("enable.auto.offset.store", "false".into());
        // Co-partitioned topics: partition p of the traces and of the logs topic go to the same
        // member, so a trace's logs meet its spans (see the receiver's module docs). The
        // metrics topic's partitions are assigned the same way, independently of the others.
        p.insert("partition.assignment.strategy", "range".into());
        p.insert(
            "session.timeout.ms",
            self.session_timeout.get().as_millis().to_string(),
        );
        p.insert(
            "heartbeat.interval.ms",
            self.heartbeat_interval.get().as_millis().to_string(),
        );
        // A topic the producers have not created yet is created by the subscription
        // (when the brokers allow it) instead of leaving the group idle until the next
        // metadata refresh.
        p.insert("allow.auto.create.topics", "true".into());
        p.insert("topic.metadata.refresh.interval.ms", "10000".into());
        p
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        validate_brokers(&self.brokers, &path.key("brokers"), diags);
        validate_topics(
            &self.topic,
            &self.encoding,
            |kind| self.section(kind),
            path,
            diags,
        );
        if self.group_id.is_empty() {
            diags.error(&path.key("group_id"), "required");
        }
        if !matches!(self.initial_offset.as_str(), "latest" | "earliest") {
            diags.error(
                &path.key("initial_offset"),
                format!(
                    "\"{}\" is not an initial offset, expected \"latest\" or \"earliest\"",
                    self.initial_offset
                ),
            );
        }
        if self.session_timeout.is_zero() {
            diags.error(&path.key("session_timeout"), "must be greater than 0");
        }
        if self.heartbeat_interval >= self.session_timeout {
            diags.error(
                &path.key("heartbeat_interval"),
                "must be less than session_timeout (a third of it is usual)",
            );
        }
        if self.autocommit.enable && self.autocommit.interval.is_zero() {
            diags.error(
                &path.key("autocommit").key("interval"),
                "must be greater than 0",
            );
        }
        self.auth.validate(&path.key("auth"), diags);
    }
}
