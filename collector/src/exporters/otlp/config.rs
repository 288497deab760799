//! The `otlp` exporter's configuration: the Collector's `configgrpc.ClientConfig` keys plus the
//! exporterhelper's `timeout`, `sending_queue` and `retry_on_failure`. The TLS and compression
//! settings are the shared ones of [`crate::net`].

use std::collections::BTreeMap;

use serde::Deserialize;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration};

use crate::exporters::helper::{QueueSettings, RetrySettings};
use crate::net::{Compression, TlsClientSettings};

/// `exporters::otlp`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `host:port`, or `http(s)://host:port` (the scheme is stripped; `https` forces TLS).
    pub endpoint: String,
    pub tls: TlsClientSettings,
    /// Sent with every request as gRPC metadata.
    pub headers: BTreeMap<String, String>,
    pub compression: Compression,
    pub keepalive: Option<KeepaliveSettings>,
    /// Bounds each attempt (not the retries as a whole).
    pub timeout: CfgDuration,
    pub sending_queue: QueueSettings,
    pub retry_on_failure: RetrySettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            tls: TlsClientSettings::default(),
            headers: BTreeMap::new(),
            compression: Compression::Gzip,
            keepalive: None,
            timeout: CfgDuration::from_secs(5),
            sending_queue: QueueSettings::default(),
            retry_on_failure: RetrySettings::default(),
        }
    }
}

/// `keepalive`: HTTP/2 pings on an otherwise idle connection (the Collector's keys).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveSettings {
    /// Ping after this long without activity.
    pub time: CfgDuration,
    /// Close the connection when a ping is not answered within this.
    pub timeout: CfgDuration,
    /// Ping even when no request is in flight.
    pub permit_without_stream: bool,
}

impl Default for KeepaliveSettings {
    fn default() -> Self {
        Self {
            time: CfgDuration::from_secs(10),
            timeout: CfgDuration::from_secs(20),
            permit_without_stream: false,
        }
    }
}

/// Where and how to connect, derived from `endpoint` and `tls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, without scheme.
    pub authority: String,
    pub tls: bool,
}

impl Target {
    /// The URI tonic connects to: `https://` selects its TLS connector.
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

impl Config {
    /// Splits `endpoint` the way the Collector's configgrpc does and decides on TLS.
    pub fn target(&self) -> Result<Target, String> {
        let (rest, https) = if let Some(r) = self.endpoint.strip_prefix("https://") {
            (r, true)
        } else if let Some(r) = self.endpoint.strip_prefix("http://") {
            (r, false)
        } else {
            (self.endpoint.as_str(), false)
        };
        parse_host_port(rest)?;
        let tls = https || !self.tls.insecure || self.tls.ca_file.is_some();
        Ok(Target {
            authority: rest.to_string(),
            tls,
        })
    }
}

/// Checks `host:port` (`[v6]:port` for IPv6); the port must be a number.
fn parse_host_port(s: &str) -> Result<(&str, u16), String> {
    let expected =
        "expected host:port, e.g. \"jaeger:4317\" or \"https://collector.example.com:4317\"";
    if s.is_empty() {
        return Err(format!("required; {expected}"));
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("\"{s}\" has no port; {expected}"))?;
    if host.is_empty() || host.contains('/') || (host.contains(':') && !host.starts_with('[')) {
        return Err(format!("\"{s}\" is not a host:port; {expected}"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("\"{port}\" is not a port number in \"{s}\"; {expected}"))?;
    Ok((host, port))
}

impl Config {
    /// Checks everything but `endpoint` (which the `loadbalancing` exporter's resolver fills in
    /// for each backend), under `path`.
    pub fn validate_client(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        self.tls.validate(&path.key("tls"), diags);
        validate_grpc_headers(&self.headers, &path.key("headers"), diags);
        self.sending_queue
            .validate(&path.key("sending_queue"), diags);
        self.retry_on_failure
            .validate(&path.key("retry_on_failure"), diags);
    }
}

impl ComponentConfig for Config {
    fn extension_references(&self, path: &ConfigPath) -> Vec<weft_config::ExtensionReference> {
        self.sending_queue.extension_references(path)
    }

    fn holds_data(&self) -> weft_config::DataHolding {
        self.sending_queue.holds_data()
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if let Err(e) = self.target() {
            diags.error(&path.key("endpoint"), e);
        }
        self.validate_client(path, diags);
    }
}

fn validate_grpc_headers(
    headers: &BTreeMap<String, String>,
    path: &ConfigPath,
    diags: &mut Diagnostics,
) {
    for (name, value) in headers {
        if name.ends_with("-bin") || AsciiMetadataKey::from_bytes(name.as_bytes()).is_err() {
            diags.error(
                &path.key(name.clone()),
                "not a valid gRPC metadata key (ASCII letters, digits, '-', '_', '.'; binary \"-bin\" keys are not supported)",
            );
        } else if AsciiMetadataValue::try_from(value.as_str()).is_err() {
            diags.error(
                &path.key(name.clone()),
                "not a valid gRPC metadata value (printable ASCII only)",
            );
        }
    }
}
