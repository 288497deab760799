//! The `otlp` exporter's configuration: the Collector's `configgrpc.ClientConfig` keys plus the
//! exporterhelper's `timeout`, `sending_queue` and `retry_on_failure`. The TLS and compression
//! settings here are shared with `otlphttp`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration};

use crate::exporters::helper::{QueueSettings, RetrySettings};

/// `exporters::otlp`.
#[derive(Debug, Deserialize)]
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

/// `compression`, as the Collector spells it (`""` also means none).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    #[serde(alias = "")]
    None,
}

/// `tls`: the Collector's `configtls.ClientConfig` keys Weft supports.
///
/// As in the Collector, TLS is on unless `insecure: true` (and no `ca_file` is given); an
/// `https://` endpoint always uses TLS. Files are read when the exporter is built, so
/// `weft validate` does not need them to exist.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientSettings {
    /// Plaintext connection (gRPC only; an `otlphttp` endpoint's scheme decides there).
    pub insecure: bool,
    /// Accept any server certificate. For testing only: it defeats the point of TLS.
    pub insecure_skip_verify: bool,
    /// PEM file of the CA(s) that signed the server's certificate, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for mutual TLS; both or neither.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name to verify the server's certificate against, instead of the endpoint's host.
    pub server_name_override: Option<String>,
}

impl TlsClientSettings {
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.cert_file.is_some() != self.key_file.is_some() {
            let missing = if self.cert_file.is_some() {
                "key_file"
            } else {
                "cert_file"
            };
            diags.error(
                &path.key(missing),
                "for client authentication via TLS, provide both cert_file and key_file, or neither",
            );
        }
    }

    /// The PEM contents of the configured files, read now. Errors name the key and the file.
    pub fn load(&self) -> anyhow::Result<LoadedTls> {
        let read = |key: &str, file: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
            file.as_ref()
                .map(|p| {
                    std::fs::read(p).map_err(|e| {
                        anyhow::anyhow!("tls::{key}: cannot read \"{}\": {e}", p.display())
                    })
                })
                .transpose()
        };
        let ca = read("ca_file", &self.ca_file)?;
        let cert = read("cert_file", &self.cert_file)?;
        let key = read("key_file", &self.key_file)?;
        Ok(LoadedTls {
            ca,
            identity: cert.zip(key),
        })
    }

    /// An HTTP client (for `otlphttp` and `elasticsearch`) trusting `ca_file` (instead of the
    /// system roots, as the Collector does), presenting `cert_file`/`key_file`, and skipping
    /// verification only with `insecure_skip_verify`. Files are read now.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10));
        let loaded = self.load()?;
        if let Some(ca) = loaded.ca {
            let cert = reqwest::Certificate::from_pem(&ca)
                .map_err(|e| anyhow::anyhow!("tls::ca_file: not a PEM certificate: {e}"))?;
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(cert);
        }
        if let Some((cert, key)) = loaded.identity {
            let mut pem = cert;
            pem.push(b'\n');
            pem.extend_from_slice(&key);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                anyhow::anyhow!("tls::cert_file/key_file: not a PEM certificate and key: {e}")
            })?;
            builder = builder.identity(identity);
        }
        if self.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        Ok(builder.build()?)
    }
}

/// PEM material read from [`TlsClientSettings`]' files.
pub struct LoadedTls {
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
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

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if let Err(e) = self.target() {
            diags.error(&path.key("endpoint"), e);
        }
        self.tls.validate(&path.key("tls"), diags);
        validate_grpc_headers(&self.headers, &path.key("headers"), diags);
        self.sending_queue
            .validate(&path.key("sending_queue"), diags);
        self.retry_on_failure
            .validate(&path.key("retry_on_failure"), diags);
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
