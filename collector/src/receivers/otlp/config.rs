//! The `otlp` receiver's configuration: the OpenTelemetry Collector's `otlpreceiver` keys,
//! plus Weft's connection limits.
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:                          # present (even empty) = enabled
//!         endpoint: localhost:4317
//!         max_recv_msg_size_mib: 4
//!         max_concurrent_streams: 0    # 0 = no limit
//!         tls: { cert_file: …, key_file: …, client_ca_file: …, min_version: "1.2" }
//!         auth: { authenticator: bearertokenauth }
//!         keepalive:
//!           server_parameters: { time: 2h, timeout: 20s, max_connection_age: …, max_connection_age_grace: … }
//!         max_connections: 1000        # Weft: 0 = no limit
//!         handshake_timeout: 20s       # Weft: TLS + HTTP/2 handshake; 0 = none
//!       http:
//!         endpoint: localhost:4318
//!         traces_url_path: /v1/traces
//!         logs_url_path: /v1/logs
//!         max_request_body_size: 20971520
//!         tls: { … }                   # as for grpc
//!         auth: { authenticator: bearertokenauth }
//!         read_header_timeout: 10s     # Collector: 1m
//!         read_timeout: 30s            # the body, once the headers are in; Collector: 0 (none)
//!         idle_timeout: 1m
//!         max_connections: 1000        # Weft: 0 = no limit
//! ```
//!
//! Collector keys Weft does not implement yet (`cors`, `write_timeout`, `middlewares`, …) are
//! accepted by the parser only to be reported as "not supported yet": silently ignoring a
//! setting would serve something other than what was asked for. Keys whose absence cannot
//! weaken anything (`keepalive::enforcement_policy`, `tls::reload_interval`) are accepted
//! with a warning.

use serde::Deserialize;
use serde_yaml::Value;
use weft_config::{
    present, ByteSize, ComponentConfig, ComponentId, ConfigPath, Diagnostics,
    Duration as CfgDuration, Endpoint, ExtensionReference, SignalKind,
};

pub use super::tls::TlsServerSettings;

/// gRPC's own default message limit, and the Collector's default for `max_recv_msg_size_mib`.
pub const DEFAULT_MAX_RECV_MSG_SIZE_MIB: u64 = 4;
/// The largest message gRPC's 4-byte length prefix can announce is just under 4 GiB.
pub const MAX_RECV_MSG_SIZE_MIB_LIMIT: u64 = 4095;
/// The Collector's `confighttp` default body limit: 20 MiB.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: u64 = 20 * 1024 * 1024;
/// Weft's default cap on open connections, per protocol. Raise it for a gateway that many
/// SDKs connect to; each connection costs some buffers (tens of KiB) and a file descriptor.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Weft's default `handshake_timeout` on gRPC: the TLS handshake and the HTTP/2 connection
/// preface must arrive within it. (grpc-go's fixed equivalent is 120 s.)
pub const DEFAULT_HANDSHAKE_TIMEOUT: CfgDuration = CfgDuration::from_secs(20);
/// Weft's default `read_header_timeout`: tighter than the Collector's 1 m, since a client
/// that takes longer than this to send its headers is either broken or a slowloris.
pub const DEFAULT_READ_HEADER_TIMEOUT: CfgDuration = CfgDuration::from_secs(10);
/// Weft's default `read_timeout` (for the body): the Collector has none (0).
pub const DEFAULT_READ_TIMEOUT: CfgDuration = CfgDuration::from_secs(30);
/// The Collector's `confighttp` default `idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: CfgDuration = CfgDuration::from_secs(60);

/// `receivers::otlp`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    pub protocols: Protocols,
    /// What one request may carry; over a limit, the request is refused as invalid.
    pub limits: LimitsConfig,
}

/// `receivers::otlp::limits` (a Weft key): bounds on what decoded data may hold, checked in
/// both transports before anything reaches the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Attributes on one span, event, link, log record, resource or scope.
    pub max_attributes: usize,
    /// Bytes of one attribute key or string/bytes value.
    pub max_attribute_value_bytes: ByteSize,
    /// Nesting of arrays and kvlists in attribute values and log bodies.
    pub max_any_value_depth: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_attributes: weft_proto::limits::Limits::DEFAULT_MAX_ATTRIBUTES,
            max_attribute_value_bytes: ByteSize(
                weft_proto::limits::Limits::DEFAULT_MAX_VALUE_BYTES as u64,
            ),
            max_any_value_depth: weft_proto::limits::Limits::DEFAULT_MAX_DEPTH,
        }
    }
}

impl LimitsConfig {
    pub fn limits(&self) -> weft_proto::limits::Limits {
        weft_proto::limits::Limits {
            max_attributes: self.max_attributes,
            max_value_bytes: self.max_attribute_value_bytes.0 as usize,
            max_depth: self.max_any_value_depth,
        }
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.max_attributes == 0 {
            diags.error(&path.key("max_attributes"), "must be at least 1");
        }
        if self.max_attribute_value_bytes.0 == 0 {
            diags.error(&path.key("max_attribute_value_bytes"), "must be at least 1");
        }
        let decodable = weft_proto::limits::DECODABLE_ANY_VALUE_DEPTH;
        if !(1..=decodable).contains(&self.max_any_value_depth) {
            diags.error(
                &path.key("max_any_value_depth"),
                format!("must be from 1 to {decodable}: deeper values are refused by the decoders themselves"),
            );
        }
    }
}

/// `receivers::otlp::protocols`: each protocol is on when its key is present.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    #[serde(deserialize_with = "present")]
    pub grpc: Option<GrpcConfig>,
    #[serde(deserialize_with = "present")]
    pub http: Option<HttpConfig>,
}

/// `auth` of either protocol: which authenticator extension checks each request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The id of an authenticator extension (`bearertokenauth`, `bearertokenauth/name`),
    /// which must be listed in `service::extensions`.
    pub authenticator: String,
    /// Collector HTTP key (query parameters as credentials): not supported.
    request_params: Option<Value>,
}

impl AuthSettings {
    /// The referenced extension id, once validated.
    pub fn authenticator_id(&self) -> Option<ComponentId> {
        self.authenticator.parse().ok()
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.authenticator.is_empty() {
            diags.error(
                &path.key("authenticator"),
                "name the authenticator extension, e.g. authenticator: bearertokenauth",
            );
        } else if let Err(e) = self.authenticator.parse::<ComponentId>() {
            diags.error(&path.key("authenticator"), e);
        }
        if self.request_params.is_some() {
            not_supported(diags, path, "request_params");
        }
    }
}

/// `keepalive` of `protocols::grpc` (the Collector's `configgrpc.KeepaliveServerConfig`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepalive {
    #[serde(deserialize_with = "present")]
    pub server_parameters: Option<KeepaliveServerParameters>,
    /// Rules for clients' pings; Weft accepts every ping, so this is ignored (with a warning).
    enforcement_policy: Option<Value>,
}

/// `keepalive::server_parameters`. Unset or 0 means the gRPC default (no limit, no pings).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveServerParameters {
    /// Not enforced (see `max_connection_age`); accepted with a warning.
    pub max_connection_idle: Option<CfgDuration>,
    /// Connections are closed (gracefully: GOAWAY) once this old.
    pub max_connection_age: Option<CfgDuration>,
    /// How long in-flight calls get after `max_connection_age` before the connection is cut.
    pub max_connection_age_grace: Option<CfgDuration>,
    /// Ping a connection after this long without activity.
    pub time: Option<CfgDuration>,
    /// Close the connection when a ping is not answered within this (default 20 s).
    pub timeout: Option<CfgDuration>,
}

fn nonzero(d: Option<CfgDuration>) -> Option<std::time::Duration> {
    d.filter(|d| !d.is_zero()).map(CfgDuration::get)
}

impl KeepaliveServerParameters {
    pub fn max_connection_age(&self) -> Option<std::time::Duration> {
        nonzero(self.max_connection_age)
    }
    pub fn max_connection_age_grace(&self) -> Option<std::time::Duration> {
        nonzero(self.max_connection_age_grace)
    }
    pub fn time(&self) -> Option<std::time::Duration> {
        nonzero(self.time)
    }
    pub fn timeout(&self) -> Option<std::time::Duration> {
        nonzero(self.timeout)
    }
}

impl GrpcKeepalive {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.enforcement_policy.is_some() {
            diags.warning(
                &path.key("enforcement_policy"),
                "accepted and ignored: Weft answers every client ping",
            );
        }
        if let Some(p) = &self.server_parameters {
            if nonzero(p.max_connection_idle).is_some() {
                diags.warning(
                    &path.key("server_parameters").key("max_connection_idle"),
                    "not enforced by Weft yet: use max_connection_age to bound how long a connection lives",
                );
            }
        }
    }
}

/// `receivers::otlp::protocols::grpc`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Where to listen, `host:port`.
    pub endpoint: Endpoint,
    /// Only "tcp" is supported (the Collector also knows "unix").
    pub transport: String,
    /// The largest request message, in MiB, after decompression. 0 means the default (4).
    pub max_recv_msg_size_mib: u64,
    /// HTTP/2 streams one connection may have open at once. 0 means no limit.
    pub max_concurrent_streams: u32,
    /// Client metadata is not propagated yet: only `false` is accepted.
    pub include_metadata: bool,
    /// Present: serve gRPC over TLS only.
    #[serde(deserialize_with = "present")]
    pub tls: Option<TlsServerSettings>,
    /// Present: every call must pass the named authenticator (else UNAUTHENTICATED).
    #[serde(deserialize_with = "present")]
    pub auth: Option<AuthSettings>,
    #[serde(deserialize_with = "present")]
    pub keepalive: Option<GrpcKeepalive>,
    /// Weft: open connections at most; a connection beyond it is closed at once (counted in
    /// `weft_receiver_connections_refused`). 0 means no limit.
    pub max_connections: usize,
    /// Weft: the TLS handshake and the HTTP/2 connection preface must be complete this long
    /// after the connection was accepted, else it is closed. 0 means no limit.
    pub handshake_timeout: CfgDuration,
    #[serde(deserialize_with = "present")]
    pub read_buffer_size: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub write_buffer_size: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub middlewares: Option<Value>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::new("localhost", 4317),
            transport: "tcp".to_string(),
            max_recv_msg_size_mib: DEFAULT_MAX_RECV_MSG_SIZE_MIB,
            max_concurrent_streams: 0,
            include_metadata: false,
            tls: None,
            auth: None,
            keepalive: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            read_buffer_size: None,
            write_buffer_size: None,
            middlewares: None,
        }
    }
}

impl GrpcConfig {
    /// The message limit in bytes (0 in the config means the default, as in the Collector).
    pub fn max_recv_msg_size(&self) -> usize {
        let mib = if self.max_recv_msg_size_mib == 0 {
            DEFAULT_MAX_RECV_MSG_SIZE_MIB
        } else {
            self.max_recv_msg_size_mib.min(MAX_RECV_MSG_SIZE_MIB_LIMIT)
        };
        usize::try_from(mib * 1024 * 1024).unwrap_or(usize::MAX)
    }

    /// `handshake_timeout`, `None` when 0.
    pub fn handshake_timeout(&self) -> Option<std::time::Duration> {
        nonzero(Some(self.handshake_timeout))
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.transport != "tcp" {
            diags.error(
                &path.key("transport"),
                format!(
                    "unsupported transport {:?}: only \"tcp\" is supported",
                    self.transport
                ),
            );
        }
        if self.max_recv_msg_size_mib > MAX_RECV_MSG_SIZE_MIB_LIMIT {
            diags.error(
                &path.key("max_recv_msg_size_mib"),
                format!(
                    "{} MiB is more than a gRPC message can hold: expected at most {MAX_RECV_MSG_SIZE_MIB_LIMIT}",
                    self.max_recv_msg_size_mib
                ),
            );
        }
        if self.include_metadata {
            not_supported(diags, path, "include_metadata");
        }
        if let Some(tls) = &self.tls {
            tls.validate(&path.key("tls"), diags);
        }
        if let Some(auth) = &self.auth {
            auth.validate(&path.key("auth"), diags);
        }
        if let Some(keepalive) = &self.keepalive {
            keepalive.validate(&path.key("keepalive"), diags);
        }
        let unsupported = [
            ("read_buffer_size", &self.read_buffer_size),
            ("write_buffer_size", &self.write_buffer_size),
            ("middlewares", &self.middlewares),
        ];
        for (key, value) in unsupported {
            if value.is_some() {
                not_supported(diags, path, key);
            }
        }
    }
}

/// `receivers::otlp::protocols::http`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where to listen, `host:port`.
    pub endpoint: Endpoint,
    /// Where OTLP/HTTP trace exports are POSTed.
    pub traces_url_path: String,
    /// Where OTLP/HTTP log exports are POSTed.
    pub logs_url_path: String,
    /// Where OTLP/HTTP metric exports are POSTed.
    pub metrics_url_path: String,
    /// The largest request body, in bytes; bounds both the body as sent and its decompressed
    /// size. 0 means the default (20 MiB), as in the Collector.
    pub max_request_body_size: ByteSize,
    /// Client metadata is not propagated yet: only `false` is accepted.
    pub include_metadata: bool,
    /// Present: serve HTTPS only.
    #[serde(deserialize_with = "present")]
    pub tls: Option<TlsServerSettings>,
    /// Present: every request must pass the named authenticator (else 401).
    #[serde(deserialize_with = "present")]
    pub auth: Option<AuthSettings>,
    /// The time a client has to send a request's headers (for a new connection: from the
    /// accept, TLS handshake included). 0 means `read_timeout` is used; both 0, no limit.
    pub read_header_timeout: CfgDuration,
    /// The time a client has to send a request's body once its headers are in (a Weft
    /// reading of the Collector's key, which also counts the headers). 0 means no limit.
    pub read_timeout: CfgDuration,
    /// A connection without a request in flight for this long is closed. 0 means
    /// `read_timeout` is used; both 0, no limit.
    pub idle_timeout: CfgDuration,
    /// Weft: open connections at most; a connection beyond it is closed at once (counted in
    /// `weft_receiver_connections_refused`). 0 means no limit.
    pub max_connections: usize,
    #[serde(deserialize_with = "present")]
    pub cors: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub keepalive: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub response_headers: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub compression_algorithms: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub write_timeout: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub middlewares: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub profiles_url_path: Option<Value>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::new("localhost", 4318),
            traces_url_path: "/v1/traces".to_string(),
            logs_url_path: "/v1/logs".to_string(),
            metrics_url_path: "/v1/metrics".to_string(),
            max_request_body_size: ByteSize(DEFAULT_MAX_REQUEST_BODY_SIZE),
            include_metadata: false,
            tls: None,
            auth: None,
            read_header_timeout: DEFAULT_READ_HEADER_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            cors: None,
            keepalive: None,
            response_headers: None,
            compression_algorithms: None,
            write_timeout: None,
            middlewares: None,
            profiles_url_path: None,
        }
    }
}

impl HttpConfig {
    /// The body limit in bytes (0 in the config means the default).
    pub fn body_limit(&self) -> usize {
        let bytes = match self.max_request_body_size.bytes() {
            0 => DEFAULT_MAX_REQUEST_BODY_SIZE,
            n => n,
        };
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// The `<signal>_url_path` of `signal` as served: the Collector prefixes a relative path
    /// with `/`.
    pub fn url_path(&self, signal: SignalKind) -> String {
        absolute(match signal {
            SignalKind::Traces => &self.traces_url_path,
            SignalKind::Logs => &self.logs_url_path,
            SignalKind::Metrics => &self.metrics_url_path,
        })
    }

    /// The header deadline, as Go's `http.Server` derives it: `read_header_timeout`, else
    /// `read_timeout`, else none.
    pub fn header_timeout(&self) -> Option<std::time::Duration> {
        nonzero(Some(self.read_header_timeout)).or_else(|| self.body_timeout())
    }

    /// The body deadline: `read_timeout`, none when 0.
    pub fn body_timeout(&self) -> Option<std::time::Duration> {
        nonzero(Some(self.read_timeout))
    }

    /// The idle deadline: `idle_timeout`, else `read_timeout`, else none.
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        nonzero(Some(self.idle_timeout)).or_else(|| self.body_timeout())
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        for (key, value) in [
            ("traces_url_path", &self.traces_url_path),
            ("logs_url_path", &self.logs_url_path),
            ("metrics_url_path", &self.metrics_url_path),
        ] {
            if value.contains(['?', '#']) || value.chars().any(char::is_whitespace) {
                diags.error(
                    &path.key(key),
                    format!("invalid URL path {value:?}: expected a path like \"/v1/traces\", without query, fragment or spaces"),
                );
            }
        }
        // Each signal needs its own path; a clash is reported at the later key.
        let keys = [
            (SignalKind::Traces, "traces_url_path"),
            (SignalKind::Logs, "logs_url_path"),
            (SignalKind::Metrics, "metrics_url_path"),
        ];
        for (i, (signal, key)) in keys.iter().enumerate() {
            for (earlier, earlier_key) in &keys[..i] {
                if self.url_path(*signal) == self.url_path(*earlier) {
                    diags.error(
                        &path.key(*key),
                        format!(
                            "{:?} is also {earlier_key}: {earlier} and {signal} need different paths",
                            self.url_path(*signal)
                        ),
                    );
                }
            }
        }
        if self.include_metadata {
            not_supported(diags, path, "include_metadata");
        }
        if let Some(tls) = &self.tls {
            tls.validate(&path.key("tls"), diags);
        }
        if let Some(auth) = &self.auth {
            auth.validate(&path.key("auth"), diags);
        }
        if self.header_timeout().is_none() {
            diags.warning(
                &path.key("read_header_timeout"),
                "0 with read_timeout 0: a client may hold a connection forever without sending a request",
            );
        }
        let unsupported = [
            ("cors", &self.cors),
            ("keepalive", &self.keepalive),
            ("response_headers", &self.response_headers),
            ("compression_algorithms", &self.compression_algorithms),
            ("write_timeout", &self.write_timeout),
            ("middlewares", &self.middlewares),
            ("profiles_url_path", &self.profiles_url_path),
        ];
        for (key, value) in unsupported {
            if value.is_some() {
                not_supported(diags, path, key);
            }
        }
    }
}

fn absolute(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

fn not_supported(diags: &mut Diagnostics, path: &ConfigPath, key: &str) {
    diags.error(
        &path.key(key),
        format!("\"{key}\" is not supported yet by Weft's otlp receiver: remove it"),
    );
}

impl ComponentConfig for OtlpReceiverConfig {
    fn extension_references(&self, path: &ConfigPath) -> Vec<ExtensionReference> {
        let protocols = path.key("protocols");
        let grpc = self.protocols.grpc.as_ref().and_then(|g| g.auth.as_ref());
        let http = self.protocols.http.as_ref().and_then(|h| h.auth.as_ref());
        [("grpc", grpc), ("http", http)]
            .into_iter()
            .filter_map(|(protocol, auth)| {
                let auth = auth?;
                Some(ExtensionReference::new(
                    protocols.key(protocol).key("auth").key("authenticator"),
                    auth.authenticator.clone(),
                ))
            })
            .collect()
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        self.limits.validate(&path.key("limits"), diags);
        let protocols = path.key("protocols");
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            diags.error(
                &protocols,
                "must specify at least one protocol when using the OTLP receiver: add \"grpc:\" and/or \"http:\"",
            );
        }
        if let Some(grpc) = &self.protocols.grpc {
            grpc.validate(&protocols.key("grpc"), diags);
        }
        if let Some(http) = &self.protocols.http {
            http.validate(&protocols.key("http"), diags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_config::decode_component;

    fn decode(yaml: &str) -> (Option<OtlpReceiverConfig>, Vec<String>) {
        let v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diagnostics::new();
        let path = ConfigPath::root().key("receivers").key("otlp");
        let c = decode_component::<OtlpReceiverConfig>(&v, &path, &mut d);
        (c, d.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn present_protocols_get_the_collector_defaults() {
        let (c, msgs) = decode("protocols:\n  grpc:\n  http:\n");
        assert!(msgs.is_empty(), "{msgs:?}");
        let c = c.unwrap();
        let grpc = c.protocols.grpc.unwrap();
        assert_eq!(grpc.endpoint, Endpoint::new("localhost", 4317));
        assert_eq!(grpc.max_recv_msg_size(), 4 * 1024 * 1024);
        assert_eq!(grpc.max_concurrent_streams, 0);
        let http = c.protocols.http.unwrap();
        assert_eq!(http.endpoint, Endpoint::new("localhost", 4318));
        assert_eq!(http.url_path(SignalKind::Traces), "/v1/traces");
        assert_eq!(http.url_path(SignalKind::Logs), "/v1/logs");
        assert_eq!(http.body_limit(), 20_971_520);
    }

    #[test]
    fn only_the_present_protocol_is_enabled() {
        let (c, msgs) = decode("protocols:\n  http:\n    endpoint: 0.0.0.0:9999\n");
        assert!(msgs.is_empty(), "{msgs:?}");
        let c = c.unwrap();
        assert!(c.protocols.grpc.is_none());
        assert_eq!(
            c.protocols.http.unwrap().endpoint,
            Endpoint::new("0.0.0.0", 9999)
        );
    }

    #[test]
    fn settings_are_read() {
        let (c, msgs) = decode(
            "protocols:\n  grpc:\n    max_recv_msg_size_mib: 16\n    max_concurrent_streams: 8\n    transport: tcp\n  http:\n    traces_url_path: t\n    logs_url_path: /l\n    max_request_body_size: 1MiB\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let c = c.unwrap();
        let grpc = c.protocols.grpc.unwrap();
        assert_eq!(grpc.max_recv_msg_size(), 16 << 20);
        assert_eq!(grpc.max_concurrent_streams, 8);
        let http = c.protocols.http.unwrap();
        assert_eq!(http.url_path(SignalKind::Traces), "/t");
        assert_eq!(http.url_path(SignalKind::Logs), "/l");
        assert_eq!(http.body_limit(), 1 << 20);
    }

    #[test]
    fn no_protocol_is_an_error() {
        for yaml in ["~", "protocols:", "protocols: {}"] {
            let (_, msgs) = decode(yaml);
            assert_eq!(
                msgs,
                ["error: receivers::otlp::protocols: must specify at least one protocol when using the OTLP receiver: add \"grpc:\" and/or \"http:\""],
                "{yaml}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let (_, msgs) = decode(
            "protocols:\n  grpc:\n    transport: unix\n    max_recv_msg_size_mib: 5000\n    tls:\n      cert_file: x\n    auth:\n    keepalive:\n      enforcement_policy: {min_time: 1s}\n    read_buffer_size: 1\n  http:\n    cors: {}\n    include_metadata: true\n    traces_url_path: /same\n    logs_url_path: same\n    auth: {authenticator: 'bad id'}\n    write_timeout: 1s\n",
        );
        let expected = [
            "error: receivers::otlp::protocols::grpc::transport: unsupported transport \"unix\": only \"tcp\" is supported",
            "error: receivers::otlp::protocols::grpc::max_recv_msg_size_mib: 5000 MiB is more than a gRPC message can hold: expected at most 4095",
            "error: receivers::otlp::protocols::grpc::tls::key_file: a TLS server needs its private key: set key_file next to cert_file",
            "error: receivers::otlp::protocols::grpc::auth::authenticator: name the authenticator extension, e.g. authenticator: bearertokenauth",
            "warning: receivers::otlp::protocols::grpc::keepalive::enforcement_policy: accepted and ignored: Weft answers every client ping",
            "error: receivers::otlp::protocols::grpc::read_buffer_size: \"read_buffer_size\" is not supported yet by Weft's otlp receiver: remove it",
            "error: receivers::otlp::protocols::http::logs_url_path: \"/same\" is also traces_url_path: traces and logs need different paths",
            "error: receivers::otlp::protocols::http::include_metadata: \"include_metadata\" is not supported yet by Weft's otlp receiver: remove it",
            "error: receivers::otlp::protocols::http::auth::authenticator: invalid component id \"bad id\": the type must start with a letter and hold only letters, digits and '_'",
            "error: receivers::otlp::protocols::http::cors: \"cors\" is not supported yet by Weft's otlp receiver: remove it",
            "error: receivers::otlp::protocols::http::write_timeout: \"write_timeout\" is not supported yet by Weft's otlp receiver: remove it",
        ];
        assert_eq!(msgs, expected);
    }

    #[test]
    fn security_and_connection_settings_are_read() {
        let (c, msgs) = decode(
            "protocols:\n  grpc:\n    tls: {cert_file: s.crt, key_file: s.key, client_ca_file: ca.crt, min_version: '1.3'}\n    auth: {authenticator: bearertokenauth/in}\n    keepalive:\n      server_parameters: {time: 30s, timeout: 5s, max_connection_age: 1h, max_connection_age_grace: 1m}\n    max_connections: 50\n    handshake_timeout: 2s\n  http:\n    tls: {cert_file: s.crt, key_file: s.key}\n    auth: {authenticator: bearertokenauth}\n    read_header_timeout: 3s\n    read_timeout: 4s\n    idle_timeout: 5s\n    max_connections: 0\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let c = c.unwrap();
        let grpc = c.protocols.grpc.unwrap();
        let tls = grpc.tls.as_ref().unwrap();
        assert_eq!(tls.cert_file.as_ref().unwrap().to_str(), Some("s.crt"));
        assert_eq!(
            tls.client_ca_file.as_ref().unwrap().to_str(),
            Some("ca.crt")
        );
        assert_eq!(tls.min_version, "1.3");
        assert_eq!(
            grpc.auth.as_ref().unwrap().authenticator_id(),
            Some(ComponentId::new("bearertokenauth", Some("in")))
        );
        let sp = grpc
            .keepalive
            .as_ref()
            .unwrap()
            .server_parameters
            .as_ref()
            .unwrap();
        assert_eq!(sp.time(), Some(std::time::Duration::from_secs(30)));
        assert_eq!(sp.timeout(), Some(std::time::Duration::from_secs(5)));
        assert_eq!(
            sp.max_connection_age(),
            Some(std::time::Duration::from_secs(3600))
        );
        assert_eq!(
            sp.max_connection_age_grace(),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(grpc.max_connections, 50);
        assert_eq!(
            grpc.handshake_timeout(),
            Some(std::time::Duration::from_secs(2))
        );
        let http = c.protocols.http.unwrap();
        assert!(http.tls.is_some());
        assert_eq!(
            http.header_timeout(),
            Some(std::time::Duration::from_secs(3))
        );
        assert_eq!(http.body_timeout(), Some(std::time::Duration::from_secs(4)));
        assert_eq!(http.idle_timeout(), Some(std::time::Duration::from_secs(5)));
        assert_eq!(http.max_connections, 0);
    }

    #[test]
    fn connection_defaults() {
        let (c, _) = decode("protocols:\n  grpc:\n  http:\n");
        let c = c.unwrap();
        let grpc = c.protocols.grpc.unwrap();
        assert!(grpc.tls.is_none() && grpc.auth.is_none() && grpc.keepalive.is_none());
        assert_eq!(grpc.max_connections, 1000);
        assert_eq!(
            grpc.handshake_timeout(),
            Some(std::time::Duration::from_secs(20))
        );
        let http = c.protocols.http.unwrap();
        assert_eq!(
            http.header_timeout(),
            Some(std::time::Duration::from_secs(10))
        );
        assert_eq!(
            http.body_timeout(),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            http.idle_timeout(),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(http.max_connections, 1000);
        // 0 falls back as Go's http.Server does; both 0 is allowed with a warning.
        let (c, msgs) =
            decode("protocols:\n  http:\n    read_header_timeout: 0\n    idle_timeout: 0\n");
        assert!(msgs.is_empty(), "{msgs:?}");
        let http = c.unwrap().protocols.http.unwrap();
        assert_eq!(
            http.header_timeout(),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            http.idle_timeout(),
            Some(std::time::Duration::from_secs(30))
        );
        let (_, msgs) =
            decode("protocols:\n  http:\n    read_header_timeout: 0\n    read_timeout: 0\n");
        assert_eq!(
            msgs,
            ["warning: receivers::otlp::protocols::http::read_header_timeout: 0 with read_timeout 0: a client may hold a connection forever without sending a request"]
        );
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let (_, msgs) = decode("protocols:\n  grpc:\n    endpont: x:1\n");
        assert_eq!(msgs.len(), 1);
        assert!(
            msgs[0].starts_with(
                "error: receivers::otlp::protocols::grpc: unknown field \"endpont\", expected"
            ),
            "{msgs:?}"
        );
        let (_, msgs) = decode("protocols:\n  http:\n    endpoint: nope\n");
        assert!(
            msgs[0].starts_with(
                "error: receivers::otlp::protocols::http::endpoint: invalid address \"nope\""
            ),
            "{msgs:?}"
        );
        let (_, msgs) = decode("protocls:\n  grpc:\n");
        assert!(
            msgs[0].starts_with("error: receivers::otlp: unknown field \"protocls\""),
            "{msgs:?}"
        );
        let (_, msgs) = decode("protocols:\n  http:\n    traces_url_path: '/a b?x'\n");
        assert!(
            msgs[0].starts_with(
                "error: receivers::otlp::protocols::http::traces_url_path: invalid URL path"
            ),
            "{msgs:?}"
        );
    }

    #[test]
    fn zero_limits_mean_the_defaults() {
        let (c, msgs) = decode(
            "protocols:\n  grpc:\n    max_recv_msg_size_mib: 0\n  http:\n    max_request_body_size: 0\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let c = c.unwrap();
        assert_eq!(c.protocols.grpc.unwrap().max_recv_msg_size(), 4 << 20);
        assert_eq!(c.protocols.http.unwrap().body_limit(), 20 << 20);
    }
}
