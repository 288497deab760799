//! The `elasticsearch` exporter's configuration.
//!
//! Key names follow the Collector's `elasticsearchexporter` where it has the concept
//! (`endpoint`/`endpoints`, `user`/`password`/`api_key`, `tls`, `headers`, `compression`,
//! `timeout`, `logs_index`, `traces_index`, `pipeline`, `mapping::mode`, `flush`,
//! `num_workers`, `retry`, `sending_queue`). Weft's additions: `bearer_token`, the Logstash
//! date pattern inside `logs_index`/`traces_index`, `data_stream`, `index_template`,
//! `dead_letter`, and `retry_on_failure` (the shared whole-batch retry layer, used once
//! `retry` has run out inside one attempt).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use weft_config::{ByteSize, ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration};

use super::index::{check_data_stream_part, IndexPattern};
use crate::exporters::helper::{QueueSettings, RetrySettings};
use crate::net::TlsClientSettings;

/// The default `logs_index`: one index per day, in the date-pattern mode.
pub const DEFAULT_LOGS_INDEX: &str = "weft-logs-%{+yyyy.MM.dd}";
/// The default `traces_index`.
pub const DEFAULT_TRACES_INDEX: &str = "weft-traces-%{+yyyy.MM.dd}";

/// `exporters::elasticsearch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// One Elasticsearch URL; exactly one of `endpoint` and `endpoints` is required.
    pub endpoint: String,
    /// Several URLs (nodes of one cluster): requests go round-robin, and an endpoint that
    /// refuses connections or answers 5xx is skipped for a while.
    pub endpoints: Vec<String>,
    /// HTTP Basic authentication, with `password`.
    pub user: String,
    pub password: Secret,
    /// An Elasticsearch API key in its encoded form, sent as `Authorization: ApiKey <key>`.
    pub api_key: Secret,
    /// Weft extension: sent as `Authorization: Bearer <token>` (e.g. an OpenSearch behind an
    /// OIDC proxy).
    pub bearer_token: Secret,
    pub tls: TlsClientSettings,
    /// Sent with every request. Values are treated as secrets in logs and `Debug` output.
    pub headers: BTreeMap<String, Secret>,
    pub compression: Compression,
    /// Bounds one attempt: the bulk requests of one batch with their item retries.
    pub timeout: CfgDuration,
    /// The index for log records, with optional Logstash date references
    /// (`go-logs-%{+yyyy.MM.dd}`); unset means `weft-logs-%{+yyyy.MM.dd}`. Not allowed with
    /// `data_stream::enabled`.
    pub logs_index: Option<String>,
    /// The index for spans, as `logs_index`; unset means `weft-traces-%{+yyyy.MM.dd}`.
    pub traces_index: Option<String>,
    pub data_stream: DataStreamSettings,
    pub index_template: IndexTemplateSettings,
    /// An ingest pipeline every document goes through (`?pipeline=` on `_bulk`).
    pub pipeline: String,
    pub mapping: MappingSettings,
    pub flush: FlushSettings,
    /// Parallel bulk requests per signal. When set it replaces `sending_queue::num_consumers`
    /// (the Collector's deprecated alias).
    pub num_workers: Option<usize>,
    pub retry: BulkRetrySettings,
    pub dead_letter: DeadLetterSettings,
    pub sending_queue: QueueSettings,
    pub retry_on_failure: RetrySettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            endpoints: Vec::new(),
            user: String::new(),
            password: Secret::default(),
            api_key: Secret::default(),
            bearer_token: Secret::default(),
            tls: TlsClientSettings::default(),
            headers: BTreeMap::new(),
            compression: Compression::Gzip,
            // The Collector's elasticsearch exporter default.
            timeout: CfgDuration::from_secs(90),
            logs_index: None,
            traces_index: None,
            data_stream: DataStreamSettings::default(),
            index_template: IndexTemplateSettings::default(),
            pipeline: String::new(),
            mapping: MappingSettings::default(),
            flush: FlushSettings::default(),
            num_workers: None,
            retry: BulkRetrySettings::default(),
            dead_letter: DeadLetterSettings::default(),
            sending_queue: QueueSettings::default(),
            retry_on_failure: RetrySettings::default(),
        }
    }
}

/// Credentials are [`crate::secret::Secret`]s: never shown in logs or diagnostics.
pub use crate::secret::Secret;

/// `compression`: of the request bodies. Elasticsearch accepts gzip only.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    #[serde(alias = "")]
    None,
}

/// `data_stream`: write into the data stream `<signal>-<dataset>-<namespace>` with the
/// `create` op instead of into `logs_index`/`traces_index`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DataStreamSettings {
    pub enabled: bool,
    pub dataset: String,
    pub namespace: String,
    /// Install (at start, retried before each bulk until it succeeds) an index template
    /// `weft-<signal>-<dataset>-<namespace>` that makes the name a data stream and maps the
    /// ids as keywords. Without a matching template, a `create` into the name makes a plain
    /// index on OpenSearch.
    pub install_template: bool,
}

impl Default for DataStreamSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            dataset: "generic".to_string(),
            namespace: "default".to_string(),
            install_template: true,
        }
    }
}

/// `index_template`: for the date-pattern mode, install an index template matching the
/// pattern's prefix (`go-logs-*`) that maps `@timestamp` as a date and the ids as keywords.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IndexTemplateSettings {
    pub install: bool,
}

/// `mapping`: the shape of the documents.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MappingSettings {
    pub mode: MappingMode,
    /// `flat` only: how `level` is written. `zap` (default): the words zap writes and the
    /// seed's schema allows — `debug`, `info`, `warn`, `error`, `fatal` (and `trace`) — from
    /// the severity number, else from the severity text (`WARNING` → `warn`, `CRITICAL` →
    /// `fatal`). `severity_text`: the severity text lowercased, as it came (`warning`).
    pub level: LevelWords,
    /// `flat` only: the attribute a record's `duration_ms` field is copied from when the
    /// record has no `duration_ms` of its own — the tail sampler's enrichment, so the seed's
    /// `level:"error" AND duration_ms > 500` finds the logs of slow traces. `""` writes no
    /// `duration_ms`. The attribute itself stays where it is.
    pub duration_ms_from: String,
}

impl Default for MappingSettings {
    fn default() -> Self {
        Self {
            mode: MappingMode::default(),
            level: LevelWords::default(),
            duration_ms_from: "weft.trace_duration_ms".to_string(),
        }
    }
}

/// `mapping::level`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LevelWords {
    #[default]
    Zap,
    SeverityText,
}

/// `mapping::mode`. (The Collector's own modes `none`, `raw`, `otel`, `bodymap` are not
/// offered: Weft's `flat` is what the seed's Kibana queries expect.)
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MappingMode {
    /// `@timestamp`, `trace_id`, `span_id`, `level`, `message`, `service.name`, attributes at
    /// the top level (`trace_id:"…"` works as in the seed).
    #[default]
    Flat,
    /// Elastic Common Schema names: `trace.id`, `span.id`, `log.level`, `labels.*`.
    Ecs,
}

/// `flush`: the exporter's own buffering in front of its sending queue.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FlushSettings {
    /// The most one `_bulk` request body carries (uncompressed NDJSON): a batch that is
    /// larger is sent as several requests. The buffer is also handed to the queue once it
    /// holds about this much (measured as OTLP protobuf, smaller than the NDJSON).
    pub bytes: ByteSize,
    /// The longest a record waits in the buffer before it is queued for sending; 0 turns
    /// the buffer off (each pipeline batch is queued as it is).
    pub interval: CfgDuration,
}

impl Default for FlushSettings {
    fn default() -> Self {
        Self {
            bytes: ByteSize(5_000_000),
            // The Collector used 30s; Weft prefers a log being searchable within a second.
            interval: CfgDuration::from_secs(1),
        }
    }
}

/// `retry`: the Collector's keys for retrying inside one attempt — whole requests on another
/// endpoint, and the bulk items Elasticsearch rejected with a retryable status.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BulkRetrySettings {
    pub enabled: bool,
    /// Item retries after the first bulk request, before the attempt gives up and the batch
    /// goes back to `retry_on_failure`.
    pub max_retries: u32,
    pub initial_interval: CfgDuration,
    pub max_interval: CfgDuration,
    /// Bulk item statuses that are retried. The Collector defaults to `[429]` to avoid
    /// duplicates; Weft's document ids are deterministic, so retrying 5xx cannot duplicate
    /// either. (A whole request answered 429 or 5xx, or not answered, is always retryable:
    /// it goes to the next endpoint, then back to `retry_on_failure`.)
    pub retry_on_status: Vec<u16>,
}

impl Default for BulkRetrySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_retries: 2,
            initial_interval: CfgDuration::from_millis(100),
            max_interval: CfgDuration::from_secs(60),
            retry_on_status: vec![429, 500, 502, 503, 504],
        }
    }
}

/// `dead_letter`: where documents Elasticsearch refuses for good (a mapping conflict) go.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterSettings {
    /// A file, appended to: one JSON line per refused document with the reason. Unset: the
    /// refusal is logged and counted as a failed send.
    pub path: Option<PathBuf>,
}

/// How the exporter authenticates, derived from the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { user: String, password: Secret },
    ApiKey(Secret),
    Bearer(Secret),
}

impl Config {
    /// The endpoints as written, `endpoint` or `endpoints`.
    pub fn all_endpoints(&self) -> Vec<String> {
        if self.endpoint.is_empty() {
            self.endpoints.clone()
        } else {
            vec![self.endpoint.clone()]
        }
    }

    pub fn auth(&self) -> Auth {
        if !self.user.is_empty() {
            Auth::Basic {
                user: self.user.clone(),
                password: self.password.clone(),
            }
        } else if !self.api_key.is_empty() {
            Auth::ApiKey(self.api_key.clone())
        } else if !self.bearer_token.is_empty() {
            Auth::Bearer(self.bearer_token.clone())
        } else {
            Auth::None
        }
    }

    /// The parsed `logs_index` (default applied). Validation rejected a bad pattern.
    pub fn logs_pattern(&self) -> Result<IndexPattern, String> {
        IndexPattern::parse(self.logs_index.as_deref().unwrap_or(DEFAULT_LOGS_INDEX))
    }

    /// The parsed `traces_index` (default applied).
    pub fn traces_pattern(&self) -> Result<IndexPattern, String> {
        IndexPattern::parse(self.traces_index.as_deref().unwrap_or(DEFAULT_TRACES_INDEX))
    }

    /// The queue settings with `num_workers` applied.
    pub fn queue_settings(&self) -> QueueSettings {
        let mut q = self.sending_queue.clone();
        if let Some(n) = self.num_workers {
            q.num_consumers = n;
        }
        q
    }
}

/// Checks an endpoint URL: absolute, http or https, with a host.
fn check_url(url: &str) -> Result<(), String> {
    let example = "e.g. \"https://elasticsearch.example.com:9200\"";
    if url.is_empty() {
        return Err(format!("must not be empty; expected a URL, {example}"));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("\"{url}\" is not a URL ({e}); expected {example}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "\"{url}\" must start with http:// or https://, {example}"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{url}\" has no host; expected {example}"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "\"{url}\" must not have a query or fragment; the exporter appends /_bulk"
        ));
    }
    Ok(())
}

impl ComponentConfig for Config {
    fn extension_references(&self, path: &ConfigPath) -> Vec<weft_config::ExtensionReference> {
        self.sending_queue.extension_references(path)
    }

    fn holds_data(&self) -> weft_config::DataHolding {
        self.sending_queue.holds_data()
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        self.validate_endpoints(path, diags);
        self.validate_auth(path, diags);
        self.tls.validate(&path.key("tls"), diags);
        if self.tls.server_name_override.is_some() {
            diags.error(
                &path.key("tls").key("server_name_override"),
                "not supported by elasticsearch; put the certificate's name in the endpoint URL instead",
            );
        }
        self.validate_indices(path, diags);
        if self.flush.bytes.bytes() == 0 {
            diags.error(
                &path.key("flush").key("bytes"),
                "must be greater than 0, e.g. 5000000 or \"5MB\"",
            );
        }
        if self.num_workers == Some(0) {
            diags.error(&path.key("num_workers"), "must be at least 1");
        }
        self.validate_retry(&path.key("retry"), diags);
        if let Some(p) = &self.dead_letter.path {
            if p.as_os_str().is_empty() {
                diags.error(
                    &path.key("dead_letter").key("path"),
                    "must not be empty; remove the key to log refused documents instead",
                );
            }
        }
        self.queue_settings()
            .validate(&path.key("sending_queue"), diags);
        self.retry_on_failure
            .validate(&path.key("retry_on_failure"), diags);
    }
}

impl Config {
    fn validate_endpoints(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        match (self.endpoint.is_empty(), self.endpoints.is_empty()) {
            (true, true) => diags.error(
                &path.key("endpoints"),
                "required: exactly one of endpoint and endpoints, e.g. endpoints: [\"http://127.0.0.1:9200\"]",
            ),
            (false, false) => diags.error(
                &path.key("endpoint"),
                "exactly one of endpoint and endpoints may be set; move it into endpoints",
            ),
            _ => {}
        }
        if !self.endpoint.is_empty() {
            if let Err(e) = check_url(&self.endpoint) {
                diags.error(&path.key("endpoint"), e);
            }
        }
        for (i, url) in self.endpoints.iter().enumerate() {
            if let Err(e) = check_url(url) {
                diags.error(&path.key("endpoints").index(i), e);
            }
        }
    }

    fn validate_auth(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.user.is_empty() && !self.password.is_empty() {
            diags.error(
                &path.key("user"),
                "required when password is set (HTTP Basic authentication)",
            );
        }
        if !self.user.is_empty() && self.password.is_empty() {
            diags.error(
                &path.key("password"),
                "required when user is set (HTTP Basic authentication)",
            );
        }
        let methods: Vec<&str> = [
            ("user", !self.user.is_empty()),
            ("api_key", !self.api_key.is_empty()),
            ("bearer_token", !self.bearer_token.is_empty()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if methods.len() > 1 {
            diags.error(
                &path.key(methods[1]),
                format!(
                    "only one authentication method may be set, found {}",
                    methods.join(" and ")
                ),
            );
        }
        for (name, value) in &self.headers {
            let at = path.key("headers").key(name.clone());
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                diags.error(&at, "not a valid HTTP header name");
            } else if http::HeaderValue::from_str(value.expose()).is_err() {
                diags.error(
                    &at,
                    "not a valid HTTP header value (visible ASCII, no line breaks)",
                );
            } else if name.eq_ignore_ascii_case("authorization") && !methods.is_empty() {
                diags.error(
                    &at,
                    format!(
                        "conflicts with {}: set the credentials in one place",
                        methods.join(", ")
                    ),
                );
            }
        }
    }

    fn validate_indices(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        for (key, value) in [
            ("logs_index", &self.logs_index),
            ("traces_index", &self.traces_index),
        ] {
            let Some(pattern) = value else { continue };
            if let Err(e) = IndexPattern::parse(pattern) {
                diags.error(&path.key(key), e);
            }
            if self.data_stream.enabled {
                diags.error(
                    &path.key(key),
                    "not used with data_stream::enabled (documents go to <signal>-<dataset>-<namespace>); remove one of them",
                );
            }
        }
        let ds = path.key("data_stream");
        for (key, value) in [
            ("dataset", &self.data_stream.dataset),
            ("namespace", &self.data_stream.namespace),
        ] {
            if let Err(e) = check_data_stream_part(value) {
                diags.error(&ds.key(key), e);
            }
        }
        if self.data_stream.enabled && self.index_template.install {
            diags.error(
                &path.key("index_template").key("install"),
                "applies to the date-pattern mode only; with data_stream::enabled use data_stream::install_template",
            );
        }
    }

    fn validate_retry(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        let r = &self.retry;
        if !r.enabled {
            return;
        }
        if r.initial_interval.is_zero() {
            diags.error(&path.key("initial_interval"), "must be greater than 0");
        }
        if r.max_interval < r.initial_interval {
            diags.error(
                &path.key("max_interval"),
                "must not be less than initial_interval",
            );
        }
        for (i, status) in r.retry_on_status.iter().enumerate() {
            if !(400..=599).contains(status) {
                diags.error(
                    &path.key("retry_on_status").index(i),
                    format!("{status} is not an HTTP error status (400-599)"),
                );
            }
        }
    }
}
