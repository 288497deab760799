//! `tail_sampling`'s configuration: the Collector's tailsamplingprocessor keys, plus Weft's
//! keys for logs.

use serde::Deserialize;
use weft_config::{ByteSize, ComponentConfig, ConfigPath, Diagnostics, Duration};

use super::policy::{validate_policies, PolicyConfig, SeverityValue};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailSamplingConfig {
    /// Time from a trace's first span or log until its decision.
    pub decision_wait: Duration,
    /// When set (> 0), a trace is decided this long after its root span arrived, if that is
    /// earlier than `decision_wait` after its first item.
    pub decision_wait_after_root_received: Duration,
    /// Traces held at once; past it the oldest are decided early.
    pub num_traces: u64,
    /// Accepted for Collector compatibility; sizes the first allocation only.
    pub expected_new_traces_per_sec: u64,
    /// Remembers past decisions so late spans and logs follow them.
    pub decision_cache: DecisionCacheConfig,
    pub policies: Vec<PolicyConfig>,
    /// Stop evaluating at the first policy that samples (the Collector's key).
    pub sample_on_first_match: bool,
    /// At shutdown, drop traces still waiting instead of deciding them now.
    pub drop_pending_traces_on_shutdown: bool,
    /// Bytes (encoded OTLP size) the window may hold in all; past it the oldest traces are
    /// decided early. 0 = no byte bound (only `num_traces`).
    pub max_bytes: ByteSize,
    /// A trace larger than this is decided at once instead of starving the others.
    /// 0 = no per-trace bound.
    pub maximum_trace_size_bytes: ByteSize,
    /// What to do with log records that carry no trace id.
    pub logs_without_trace: LogsWithoutTrace,
    /// Logs of dropped traces at or above this severity are still exported, marked as from
    /// an unsampled trace.
    pub keep_logs_at_or_above: Option<SeverityValue>,
    /// Kept logs also become events on their span (Jaeger shows them as span logs).
    pub attach_logs_as_span_events: bool,
    /// With `attach_logs_as_span_events`: how long a kept trace's spans wait after the
    /// decision for logs still on their way, which are attached too. 0 sends them at once.
    pub attach_logs_wait: Duration,
    /// The trace's verdict added to each exported log as attributes.
    pub enrichment: EnrichmentConfig,
    /// A `file_storage` extension id: the window is then durable — every batch is written to
    /// a write-ahead log before it is acknowledged, and replayed after a crash (see
    /// [`super::wal`]).
    pub storage: Option<String>,
}

impl Default for TailSamplingConfig {
    fn default() -> Self {
        Self {
            decision_wait: Duration::from_secs(30),
            decision_wait_after_root_received: Duration::default(),
            num_traces: 50_000,
            expected_new_traces_per_sec: 0,
            decision_cache: DecisionCacheConfig::default(),
            policies: Vec::new(),
            sample_on_first_match: false,
            drop_pending_traces_on_shutdown: false,
            max_bytes: ByteSize::mib(512),
            maximum_trace_size_bytes: ByteSize::default(),
            logs_without_trace: LogsWithoutTrace::Pass,
            keep_logs_at_or_above: None,
            attach_logs_as_span_events: false,
            attach_logs_wait: Duration::from_secs(1),
            enrichment: EnrichmentConfig::default(),
            storage: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionCacheConfig {
    /// Trace ids remembered as kept. 0 turns the cache off: a late span then opens a new entry.
    pub sampled_cache_size: usize,
    /// Trace ids remembered as dropped.
    pub non_sampled_cache_size: usize,
}

impl Default for DecisionCacheConfig {
    fn default() -> Self {
        // Weft remembers decisions by default (the Collector does not): late logs are the
        // norm (log shippers lag spans), and they should follow their trace.
        Self {
            sampled_cache_size: 100_000,
            non_sampled_cache_size: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogsWithoutTrace {
    /// Exported at once, untouched.
    #[default]
    Pass,
    /// Dropped (counted).
    Drop,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichmentConfig {
    pub enabled: bool,
    /// Prepended to every attribute name, e.g. `weft.policy`.
    pub prefix: String,
}

impl Default for EnrichmentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: "weft.".to_string(),
        }
    }
}

impl ComponentConfig for TailSamplingConfig {
    fn extension_references(&self, path: &ConfigPath) -> Vec<weft_config::ExtensionReference> {
        self.storage
            .iter()
            .map(|id| weft_config::ExtensionReference::new(path.key("storage"), id.clone()))
            .collect()
    }

    /// Durable with `storage`: its write-ahead log has a batch before the client is answered.
    fn holds_data(&self) -> weft_config::DataHolding {
        match self.storage {
            Some(_) => weft_config::DataHolding::Durable,
            None => weft_config::DataHolding::Memory {
                remedy: "give it storage (a file_storage extension)",
            },
        }
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.decision_wait.is_zero() {
            diags.error(
                &path.key("decision_wait"),
                "must be greater than 0, e.g. \"30s\"",
            );
        }
        if self.num_traces == 0 {
            diags.error(&path.key("num_traces"), "must be at least 1");
        }
        if self.max_bytes.0 != 0 && self.max_bytes.0 < 1024 * 1024 {
            diags.error(
                &path.key("max_bytes"),
                "must be at least 1MiB (or 0 for no byte bound)",
            );
        }
        validate_policies(&self.policies, &path.key("policies"), diags);
        if let Some(sev) = &self.keep_logs_at_or_above {
            if let Err(e) = sev.resolve() {
                diags.error(&path.key("keep_logs_at_or_above"), e);
            }
        }
        if let Some(storage) = &self.storage {
            if let Err(e) = storage.parse::<weft_config::ComponentId>() {
                diags.error(&path.key("storage"), e);
            }
        }
        if self.enrichment.enabled && self.enrichment.prefix.contains(char::is_whitespace) {
            diags.error(
                &path.key("enrichment").key("prefix"),
                "must not contain whitespace",
            );
        }
    }
}
