//! The `otlp` receiver's configuration: the OpenTelemetry Collector's `otlpreceiver` keys.
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:                          # present (even empty) = enabled
//!         endpoint: localhost:4317
//!         max_recv_msg_size_mib: 4
//!         max_concurrent_streams: 0    # 0 = no limit
//!       http:
//!         endpoint: localhost:4318
//!         traces_url_path: /v1/traces
//!         logs_url_path: /v1/logs
//!         max_request_body_size: 20971520
//! ```
//!
//! Collector keys Weft does not implement yet (`tls`, `auth`, `keepalive`, `cors`, …) are
//! accepted by the parser only to be reported as "not supported yet": silently ignoring a
//! `tls:` section would serve plaintext to someone who asked for TLS.

use serde::Deserialize;
use serde_yaml::Value;
use weft_config::{present, ByteSize, ComponentConfig, ConfigPath, Diagnostics, Endpoint};

/// gRPC's own default message limit, and the Collector's default for `max_recv_msg_size_mib`.
pub const DEFAULT_MAX_RECV_MSG_SIZE_MIB: u64 = 4;
/// The largest message gRPC's 4-byte length prefix can announce is just under 4 GiB.
pub const MAX_RECV_MSG_SIZE_MIB_LIMIT: u64 = 4095;
/// The Collector's `confighttp` default body limit: 20 MiB.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: u64 = 20 * 1024 * 1024;

/// `receivers::otlp`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    pub protocols: Protocols,
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
    #[serde(deserialize_with = "present")]
    pub tls: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub auth: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub keepalive: Option<Value>,
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
        let unsupported = [
            ("tls", &self.tls),
            ("auth", &self.auth),
            ("keepalive", &self.keepalive),
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
    /// The largest request body, in bytes; bounds both the body as sent and its decompressed
    /// size. 0 means the default (20 MiB), as in the Collector.
    pub max_request_body_size: ByteSize,
    /// Client metadata is not propagated yet: only `false` is accepted.
    pub include_metadata: bool,
    #[serde(deserialize_with = "present")]
    pub tls: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub auth: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub cors: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub keepalive: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub response_headers: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub compression_algorithms: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub read_timeout: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub read_header_timeout: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub write_timeout: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub idle_timeout: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub middlewares: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub metrics_url_path: Option<Value>,
    #[serde(deserialize_with = "present")]
    pub profiles_url_path: Option<Value>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::new("localhost", 4318),
            traces_url_path: "/v1/traces".to_string(),
            logs_url_path: "/v1/logs".to_string(),
            max_request_body_size: ByteSize(DEFAULT_MAX_REQUEST_BODY_SIZE),
            include_metadata: false,
            tls: None,
            auth: None,
            cors: None,
            keepalive: None,
            response_headers: None,
            compression_algorithms: None,
            read_timeout: None,
            read_header_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            middlewares: None,
            metrics_url_path: None,
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

    /// `traces_url_path` as served: the Collector prefixes a relative path with `/`.
    pub fn traces_path(&self) -> String {
        absolute(&self.traces_url_path)
    }

    /// `logs_url_path` as served.
    pub fn logs_path(&self) -> String {
        absolute(&self.logs_url_path)
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        for (key, value) in [
            ("traces_url_path", &self.traces_url_path),
            ("logs_url_path", &self.logs_url_path),
        ] {
            if value.contains(['?', '#']) || value.chars().any(char::is_whitespace) {
                diags.error(
                    &path.key(key),
                    format!("invalid URL path {value:?}: expected a path like \"/v1/traces\", without query, fragment or spaces"),
                );
            }
        }
        if self.traces_path() == self.logs_path() {
            diags.error(
                &path.key("logs_url_path"),
                format!(
                    "{:?} is also traces_url_path: traces and logs need different paths",
                    self.logs_path()
                ),
            );
        }
        if self.include_metadata {
            not_supported(diags, path, "include_metadata");
        }
        let unsupported = [
            ("tls", &self.tls),
            ("auth", &self.auth),
            ("cors", &self.cors),
            ("keepalive", &self.keepalive),
            ("response_headers", &self.response_headers),
            ("compression_algorithms", &self.compression_algorithms),
            ("read_timeout", &self.read_timeout),
            ("read_header_timeout", &self.read_header_timeout),
            ("write_timeout", &self.write_timeout),
            ("idle_timeout", &self.idle_timeout),
            ("middlewares", &self.middlewares),
            ("metrics_url_path", &self.metrics_url_path),
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
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
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
        assert_eq!(http.traces_path(), "/v1/traces");
        assert_eq!(http.logs_path(), "/v1/logs");
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
        assert_eq!(http.traces_path(), "/t");
        assert_eq!(http.logs_path(), "/l");
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
            "protocols:\n  grpc:\n    transport: unix\n    max_recv_msg_size_mib: 5000\n    tls:\n      cert_file: x\n    keepalive:\n  http:\n    cors: {}\n    include_metadata: true\n    traces_url_path: /same\n    logs_url_path: same\n",
        );
        let expected = [
            "error: receivers::otlp::protocols::grpc::transport: unsupported transport \"unix\": only \"tcp\" is supported",
            "error: receivers::otlp::protocols::grpc::max_recv_msg_size_mib: 5000 MiB is more than a gRPC message can hold: expected at most 4095",
            "error: receivers::otlp::protocols::grpc::tls: \"tls\" is not supported yet by Weft's otlp receiver: remove it",
            "error: receivers::otlp::protocols::grpc::keepalive: \"keepalive\" is not supported yet by Weft's otlp receiver: remove it",
            "error: receivers::otlp::protocols::http::logs_url_path: \"/same\" is also traces_url_path: traces and logs need different paths",
            "error: receivers::otlp::protocols::http::include_metadata: \"include_metadata\" is not supported yet by Weft's otlp receiver: remove it",
            "error: receivers::otlp::protocols::http::cors: \"cors\" is not supported yet by Weft's otlp receiver: remove it",
        ];
        assert_eq!(msgs, expected);
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
