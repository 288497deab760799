//! What the `kafka` exporter and receiver share: the brokers, the client id, `auth` (the
//! Collector's `plain_text`, `sasl` and `tls` keys), the per-signal topics and encoding, and
//! the librdkafka configuration built from them.
//!
//! librdkafka connects in the background and reconnects by itself: an unreachable broker is
//! never a failed start. It reports what goes wrong through [`LoggingContext`], which writes
//! it to Weft's log once per change (a broker that stays down is one warning, not one per
//! reconnect attempt).

use std::collections::BTreeMap;

use parking_lot::Mutex;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics, SignalKind};

use super::TlsClientSettings;
use crate::secret::Secret;

/// `auth`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Deprecated in the Collector: SASL/PLAIN without TLS.
    pub plain_text: Option<PlainText>,
    pub sasl: Option<Sasl>,
    pub tls: Option<TlsClientSettings>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlainText {
    pub username: String,
    pub password: Secret,
}

/// `auth::sasl`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sasl {
    pub username: String,
    pub password: Secret,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
}

/// One signal's `topic` and `encoding` (`traces:`, `logs:`, `metrics:`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalTopic {
    pub topic: Option<String>,
    pub encoding: Option<String>,
}

/// How a batch is written in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The export request's protobuf bytes.
    Proto,
    /// The export request as OTLP/JSON.
    Json,
}

impl Encoding {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "otlp_proto" => Ok(Self::Proto),
            "otlp_json" => Ok(Self::Json),
            other => Err(format!(
                "unknown encoding \"{other}\", expected \"otlp_proto\" or \"otlp_json\""
            )),
        }
    }
}

/// The Collector's default topic of each signal.
pub fn default_topic(kind: SignalKind) -> &'static str {
    match kind {
        SignalKind::Traces => "otlp_spans",
        SignalKind::Logs => "otlp_logs",
        SignalKind::Metrics => "otlp_metrics",
    }
}

/// Reports, at its path, each signal whose encoding is not one Weft reads and writes:
/// `section` gives a signal's own section (`traces`, `logs`, `metrics`); a bad shared
/// `encoding` is reported once.
pub fn validate_topics<'a>(
    topic: &Option<String>,
    encoding: &str,
    section: impl Fn(SignalKind) -> &'a SignalTopic,
    path: &ConfigPath,
    diags: &mut Diagnostics,
) {
    let mut shared_reported = false;
    for kind in SignalKind::ALL {
        let own = section(kind);
        if let Err(e) = topic_for(kind, topic, encoding, own) {
            if own.encoding.is_some() {
                diags.error(&path.key(kind.as_str()).key("encoding"), e);
            } else if !shared_reported {
                shared_reported = true;
                diags.error(&path.key("encoding"), e);
            }
        }
    }
}

/// The topic and encoding of `kind` from the shared `topic`/`encoding` keys and the
/// signal's own section (which wins).
pub fn topic_for(
    kind: SignalKind,
    topic: &Option<String>,
    encoding: &str,
    section: &SignalTopic,
) -> Result<(String, Encoding), String> {
    let topic = section
        .topic
        .clone()
        .or_else(|| topic.clone())
        .unwrap_or_else(|| default_topic(kind).to_string());
    let encoding = Encoding::parse(section.encoding.as_deref().unwrap_or(encoding))?;
    Ok((topic, encoding))
}

impl Auth {
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.plain_text.is_some() && self.sasl.is_some() {
            diags.error(path, "set plain_text or sasl, not both");
        }
        if let Some(p) = &self.plain_text {
            if p.username.is_empty() {
                diags.error(&path.key("plain_text").key("username"), "required");
            }
        }
        if let Some(s) = &self.sasl {
            let p = path.key("sasl");
            if s.username.is_empty() {
                diags.error(&p.key("username"), "required");
            }
            if !matches!(
                s.mechanism.as_str(),
                "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
            ) {
                diags.error(
                    &p.key("mechanism"),
                    format!(
                        "\"{}\" is not supported, expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                        s.mechanism
                    ),
                );
            }
        }
        if let Some(tls) = &self.tls {
            tls.validate(&path.key("tls"), diags);
            if tls.server_name_override.is_some() {
                diags.warning(
                    &path.key("tls").key("server_name_override"),
                    "not supported by the Kafka client; the broker's advertised name is verified",
                );
            }
        }
    }

    /// The librdkafka settings for this `auth`.
    fn apply(&self, config: &mut ClientConfig) {
        let tls = self
            .tls
            .as_ref()
            .filter(|t| !t.insecure || t.ca_file.is_some());
        let sasl = match (&self.sasl, &self.plain_text) {
            (Some(s), _) => Some((s.mechanism.as_str(), &s.username, &s.password)),
            (None, Some(p)) => Some(("PLAIN", &p.username, &p.password)),
            (None, None) => None,
        };
        let protocol = match (sasl.is_some(), tls.is_some()) {
            (false, false) => "plaintext",
            (false, true) => "ssl",
            (true, false) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        config.set("security.protocol", protocol);
        if let Some((mechanism, username, password)) = sasl {
            config
                .set("sasl.mechanisms", mechanism)
                .set("sasl.username", username)
                .set("sasl.password", password.expose());
        }
        if let Some(tls) = tls {
            if let Some(ca) = &tls.ca_file {
                config.set("ssl.ca.location", ca.display().to_string());
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                config
                    .set("ssl.certificate.location", cert.display().to_string())
                    .set("ssl.key.location", key.display().to_string());
            }
            if tls.insecure_skip_verify {
                config.set("enable.ssl.certificate.verification", "false");
            }
        }
    }
}

/// The librdkafka configuration every client starts from: brokers, client id, auth, and
/// any extra properties. Credentials go to librdkafka only, never to a log line.
pub fn client_config(
    brokers: &[String],
    client_id: &str,
    auth: &Auth,
    extra: &BTreeMap<&str, String>,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers.join(","))
        .set("client.id", client_id)
        .set_log_level(RDKafkaLogLevel::Warning);
    auth.apply(&mut config);
    for (k, v) in extra {
        config.set(*k, v);
    }
    config
}

pub fn validate_brokers(brokers: &[String], path: &ConfigPath, diags: &mut Diagnostics) {
    if brokers.is_empty() {
        diags.error(path, "at least one broker (host:port) is required");
    }
    for (i, b) in brokers.iter().enumerate() {
        let ok = b
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !ok {
            diags.error(&path.index(i), format!("\"{b}\" is not a host:port"));
        }
    }
}

/// Writes librdkafka's errors and log lines to Weft's log, with the component's id; an
/// error repeated (a broker that stays unreachable) is written once until another comes.
#[derive(Clone)]
pub struct LoggingContext {
    pub component: String,
    /// Shared by the clones: the producer's context and the senders that report recovery.
    last: std::sync::Arc<Mutex<Option<String>>>,
}

impl LoggingContext {
    pub fn new(component: String) -> Self {
        Self {
            component,
            last: std::sync::Arc::new(Mutex::new(None)),
        }
    }

    /// Forgets the last error: the next one is written again (call once things work).
    pub fn recovered(&self) {
        if self.last.lock().take().is_some() {
            tracing::info!(component = %self.component, "the Kafka brokers answer again");
        }
    }
}

impl ClientContext for LoggingContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(component = %self.component, facility = fac, "kafka client: {log_message}")
            }
            L::Warning => {
                tracing::warn!(component = %self.component, facility = fac, "kafka client: {log_message}")
            }
            _ => {
                tracing::debug!(component = %self.component, facility = fac, "kafka client: {log_message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let message = format!("{error}: {reason}");
        let mut last = self.last.lock();
        if last.as_deref() == Some(message.as_str()) {
            return;
        }
        tracing::warn!(
            component = %self.component, error = %message,
            "Kafka client error; it keeps reconnecting and retrying (check brokers and auth)"
        );
        *last = Some(message);
    }
}
