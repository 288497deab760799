//! The `otlphttp` exporter's configuration: the Collector's `confighttp.ClientConfig` keys Weft
//! supports, the per-signal endpoints, `encoding`, and the exporterhelper's queue and retry.

use std::collections::BTreeMap;

use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration, SignalKind};

use crate::exporters::helper::{QueueSettings, RetrySettings};
use crate::net::{Compression, TlsClientSettings};

/// `exporters::otlphttp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Base URL; `v1/traces`, `v1/logs` and `v1/metrics` are appended.
    pub endpoint: String,
    /// Full URL for traces, used as is instead of `endpoint` + `/v1/traces`.
    pub traces_endpoint: String,
    /// Full URL for logs, used as is instead of `endpoint` + `/v1/logs`.
    pub logs_endpoint: String,
    /// Full URL for metrics, used as is instead of `endpoint` + `/v1/metrics`.
    pub metrics_endpoint: String,
    pub tls: TlsClientSettings,
    /// Sent with every request.
    pub headers: BTreeMap<String, String>,
    pub compression: Compression,
    pub encoding: Encoding,
    /// Bounds each attempt (not the retries as a whole).
    pub timeout: CfgDuration,
    pub sending_queue: QueueSettings,
    pub retry_on_failure: RetrySettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            traces_endpoint: String::new(),
            logs_endpoint: String::new(),
            metrics_endpoint: String::new(),
            tls: TlsClientSettings::default(),
            headers: BTreeMap::new(),
            compression: Compression::Gzip,
            encoding: Encoding::Proto,
            timeout: CfgDuration::from_secs(30),
            sending_queue: QueueSettings::default(),
            retry_on_failure: RetrySettings::default(),
        }
    }
}

/// `encoding`: the request body's format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// `application/x-protobuf`.
    #[default]
    Proto,
    /// `application/json`, OTLP/JSON.
    Json,
}

impl Config {
    /// The URL for `signal`: its own `<signal>_endpoint`, else `endpoint` + `/` + `path`
    /// (the signal's OTLP/HTTP path, as the Collector composes it). `None` when neither is
    /// set.
    pub fn signal_url(&self, signal: SignalKind, path: &str) -> Option<String> {
        let own = match signal {
            SignalKind::Traces => &self.traces_endpoint,
            SignalKind::Logs => &self.logs_endpoint,
            SignalKind::Metrics => &self.metrics_endpoint,
        };
        if !own.is_empty() {
            return Some(own.to_string());
        }
        if self.endpoint.is_empty() {
            return None;
        }
        let base = self.endpoint.as_str();
        Some(if base.ends_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        })
    }
}

/// Checks that `url` is an absolute http(s) URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| {
        format!(
            "\"{url}\" is not a URL ({e}); expected e.g. \"https://collector.example.com:4318\""
        )
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "\"{url}\" must start with http:// or https://, e.g. \"http://collector:4318\""
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("\"{url}\" has no host"));
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
        if self.endpoint.is_empty()
            && self.traces_endpoint.is_empty()
            && self.logs_endpoint.is_empty()
            && self.metrics_endpoint.is_empty()
        {
            diags.error(
                &path.key("endpoint"),
                "at least one endpoint must be specified: endpoint (e.g. \"http://collector:4318\"), traces_endpoint, logs_endpoint or metrics_endpoint",
            );
        }
        for (key, url) in [
            ("endpoint", &self.endpoint),
            ("traces_endpoint", &self.traces_endpoint),
            ("logs_endpoint", &self.logs_endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
        ] {
            if !url.is_empty() {
                if let Err(e) = check_url(url) {
                    diags.error(&path.key(key), e);
                }
            }
        }
        self.tls.validate(&path.key("tls"), diags);
        if self.tls.server_name_override.is_some() {
            diags.error(
                &path.key("tls").key("server_name_override"),
                "not supported by otlphttp; put the certificate's name in the endpoint URL instead",
            );
        }
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                diags.error(
                    &path.key("headers").key(name.clone()),
                    "not a valid HTTP header name",
                );
            } else if http::HeaderValue::from_str(value).is_err() {
                diags.error(
                    &path.key("headers").key(name.clone()),
                    "not a valid HTTP header value (visible ASCII, no line breaks)",
                );
            }
        }
        self.sending_queue
            .validate(&path.key("sending_queue"), diags);
        self.retry_on_failure
            .validate(&path.key("retry_on_failure"), diags);
    }
}
