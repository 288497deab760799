//! The `loadbalancing` exporter's configuration: the Collector contrib
//! `loadbalancingexporter`'s keys.

use super::k8s::K8sTarget;
use serde::Deserialize;
use weft_config::{
    ComponentConfig, ConfigPath, DataHolding, Diagnostics, Duration as CfgDuration, SignalKind,
};

use super::route::{self, Layout, RoutingKey};
use crate::exporters::helper::{QueueSettings, RetrySettings};
use crate::exporters::otlp;

/// `exporters::loadbalancing`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Spans and logs: `traceID` (their default) or `service`. Metrics: `service` (their
    /// default, as the Collector's), `resource`, `metric` or `streamID`. Unset, each signal
    /// takes its default; set, every signal the exporter carries must take it.
    pub routing_key: Option<String>,
    pub protocol: Protocol,
    pub resolver: Resolvers,
    /// Each backend's queue; `protocol::otlp::sending_queue` when not set here.
    pub sending_queue: Option<QueueSettings>,
    /// Each backend's retries; `protocol::otlp::retry_on_failure` when not set here.
    pub retry_on_failure: Option<RetrySettings>,
    /// Each attempt's bound; `protocol::otlp::timeout` when not set here.
    pub timeout: Option<CfgDuration>,
}

/// `protocol`: how to talk to each backend.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocol {
    /// The `otlp` exporter's settings; `endpoint` is filled in per backend by the resolver.
    pub otlp: otlp::Config,
}

/// `resolver`: exactly one of them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resolvers {
    #[serde(rename = "static")]
    pub static_: Option<StaticResolver>,
    pub dns: Option<DnsResolver>,
    pub k8s: Option<K8sResolver>,
}

/// `resolver::static`: a fixed list of backends.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticResolver {
    /// `host` or `host:port` (port 4317 when absent).
    pub hostnames: Vec<String>,
}

/// `resolver::dns`: the A/AAAA records of a name, asked again every `interval`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsResolver {
    pub hostname: String,
    /// Added to every address (the Collector writes it as a string: `"4317"`).
    pub port: Option<Port>,
    pub interval: CfgDuration,
    pub timeout: CfgDuration,
    /// Weft: ask this DNS server (`ip:port`) instead of the system's (`/etc/resolv.conf`).
    pub nameserver: Option<String>,
}

impl Default for DnsResolver {
    fn default() -> Self {
        Self {
            hostname: String::new(),
            port: None,
            interval: CfgDuration::from_secs(5),
            timeout: CfgDuration::from_secs(1),
            nameserver: None,
        }
    }
}

/// A port written as a number or as a string.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Number(u16),
    Text(String),
}

impl Port {
    pub fn get(&self) -> Result<u16, String> {
        match self {
            Port::Number(p) => Ok(*p),
            Port::Text(s) => s
                .parse()
                .map_err(|_| format!("\"{s}\" is not a port number")),
        }
    }
}

/// `resolver::k8s`: the ready endpoints of a Kubernetes Service (parsed, not yet built).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct K8sResolver {
    pub service: String,
    pub ports: Vec<u16>,
    pub timeout: Option<CfgDuration>,
    pub return_hostnames: bool,
}

/// The resolver in use, once validated.
#[derive(Clone, Debug)]
pub enum Resolver {
    Static(StaticResolver),
    Dns(DnsResolver),
    K8s(K8sTarget),
}

impl Resolver {
    /// The resolver's word in metrics (`resolver` label), as the Collector's.
    pub fn name(&self) -> &'static str {
        match self {
            Resolver::Static(_) => "static",
            Resolver::Dns(_) => "dns",
            Resolver::K8s(_) => "k8s",
        }
    }
}

impl Config {
    /// The `routing_key` as written, if it is a word Weft knows (for some signal).
    fn routing_key_word(&self) -> Result<Option<RoutingKey>, String> {
        let Some(word) = self.routing_key.as_deref() else {
            return Ok(None);
        };
        ALL_KEYS
            .iter()
            .find(|k| k.name() == word)
            .map(|k| Some(*k))
            .ok_or_else(|| {
                format!(
                    "unknown routing key \"{word}\", expected {} (traces and logs) or {} (metrics)",
                    key_list(SignalKind::Traces),
                    key_list(SignalKind::Metrics)
                )
            })
    }

    /// What `signal`'s records are routed by: the configured key, or the signal's default
    /// (the trace id for spans and logs; the service for metrics, as the Collector's).
    pub fn routing_key(&self, signal: SignalKind) -> Result<RoutingKey, String> {
        let keys = route::layout(signal).map_or(&[][..], Layout::keys);
        match self.routing_key_word()? {
            None => keys
                .first()
                .copied()
                .ok_or_else(|| format!("{signal} cannot be routed")),
            Some(key) if keys.contains(&key) => Ok(key),
            Some(key) => Err(format!(
                "\"{}\" cannot route {signal}, and a {signal} pipeline lists this exporter; {signal} take {} (use another loadbalancing exporter for {signal}, or leave routing_key unset for each signal's default)",
                key.name(),
                key_list(signal)
            )),
        }
    }

    pub fn resolver(&self) -> Result<Resolver, String> {
        let r = &self.resolver;
        match (&r.static_, &r.dns, &r.k8s) {
            (Some(s), None, None) => Ok(Resolver::Static(s.clone())),
            (None, Some(d), None) => Ok(Resolver::Dns(d.clone())),
            (None, None, Some(k)) => Ok(Resolver::K8s(
                K8sTarget::new(k).map_err(|e| format!("k8s::{e}"))?,
            )),
            (None, None, None) => Err("required: one of static, dns (or k8s)".into()),
            _ => Err("only one of static, dns, k8s may be set".into()),
        }
    }

    /// Each backend's queue settings.
    pub fn queue(&self) -> QueueSettings {
        self.sending_queue
            .clone()
            .unwrap_or_else(|| self.protocol.otlp.sending_queue.clone())
    }

    /// Each backend's retry settings.
    pub fn retry(&self) -> RetrySettings {
        self.retry_on_failure
            .clone()
            .unwrap_or_else(|| self.protocol.otlp.retry_on_failure.clone())
    }

    /// Each attempt's timeout.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout.unwrap_or(self.protocol.otlp.timeout).get()
    }
}

/// `host` → `host:4317`; `host:port` and `[v6]:port` as they are.
pub fn with_default_port(endpoint: &str) -> String {
    let has_port = match endpoint.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        endpoint.to_string()
    } else if endpoint.contains(':') && !endpoint.starts_with('[') {
        format!("[{endpoint}]:4317")
    } else {
        format!("{endpoint}:4317")
    }
}

/// Every routing key, for the word check.
const ALL_KEYS: [RoutingKey; 5] = [
    RoutingKey::TraceId,
    RoutingKey::Service,
    RoutingKey::Resource,
    RoutingKey::Metric,
    RoutingKey::StreamId,
];

/// `"traceID" (the default) or "service"`: the keys `signal` takes, its default first.
fn key_list(signal: SignalKind) -> String {
    let keys = route::layout(signal).map_or(&[][..], Layout::keys);
    let words: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let default = if i == 0 { " (the default)" } else { "" };
            format!("\"{}\"{default}", k.name())
        })
        .collect();
    match words.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "nothing".into(),
    }
}

impl ComponentConfig for Config {
    fn validate_signal(&self, signal: SignalKind, path: &ConfigPath, diags: &mut Diagnostics) {
        // An unknown word is reported once, by `validate`.
        if self.routing_key_word().is_ok() {
            if let Err(e) = self.routing_key(signal) {
                diags.error(&path.key("routing_key"), e);
            }
        }
    }

    fn holds_data(&self) -> DataHolding {
        self.queue().holds_data()
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if let Err(e) = self.routing_key_word() {
            diags.error(&path.key("routing_key"), e);
        }
        let otlp_path = path.key("protocol").key("otlp");
        if !self.protocol.otlp.endpoint.is_empty() {
            diags.warning(
                &otlp_path.key("endpoint"),
                "ignored: each backend's endpoint comes from the resolver",
            );
        }
        self.protocol.otlp.validate_client(&otlp_path, diags);
        let resolver_path = path.key("resolver");
        match self.resolver() {
            Err(e) => diags.error(&resolver_path, e),
            Ok(Resolver::Static(s)) => {
                let p = resolver_path.key("static").key("hostnames");
                if s.hostnames.is_empty() {
                    diags.error(&p, "at least one backend is required");
                }
                for (i, host) in s.hostnames.iter().enumerate() {
                    if host.trim().is_empty() || host.contains('/') {
                        diags.error(
                            &p.index(i),
                            format!("\"{host}\" is not a host or host:port"),
                        );
                    }
                }
            }
            Ok(Resolver::Dns(d)) => {
                let p = resolver_path.key("dns");
                if d.hostname.is_empty() {
                    diags.error(&p.key("hostname"), "required");
                }
                if let Some(Err(e)) = d.port.as_ref().map(Port::get) {
                    diags.error(&p.key("port"), e);
                }
                if d.interval.is_zero() {
                    diags.error(&p.key("interval"), "must be greater than 0");
                }
                if d.timeout.is_zero() {
                    diags.error(&p.key("timeout"), "must be greater than 0");
                }
                if let Some(ns) = &d.nameserver {
                    if ns.parse::<std::net::SocketAddr>().is_err() {
                        diags.error(
                            &p.key("nameserver"),
                            format!("\"{ns}\" is not an ip:port, e.g. \"10.0.0.10:53\""),
                        );
                    }
                }
            }
            Ok(Resolver::K8s(_)) => {
                let timeout = self.resolver.k8s.as_ref().and_then(|k| k.timeout);
                if timeout.is_some_and(|t| t.is_zero()) {
                    diags.error(
                        &resolver_path.key("k8s").key("timeout"),
                        "must be greater than 0",
                    );
                }
            }
        }
        if let Some(q) = &self.sending_queue {
            q.validate(&path.key("sending_queue"), diags);
        }
        if let Some(r) = &self.retry_on_failure {
            r.validate(&path.key("retry_on_failure"), diags);
        }
        if self.queue().storage.is_some() {
            let p = if self.sending_queue.is_some() {
                path.key("sending_queue").key("storage")
            } else {
                otlp_path.key("sending_queue").key("storage")
            };
            diags.error(
                &p,
                "a persistent queue is not supported by loadbalancing yet (its queues are per backend and re-routed when the ring changes); leave it in memory",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_gets_the_otlp_port_when_it_has_none() {
        assert_eq!(with_default_port("gw-1"), "gw-1:4317");
        assert_eq!(with_default_port("gw-1:5317"), "gw-1:5317");
        assert_eq!(with_default_port("10.0.0.1"), "10.0.0.1:4317");
        assert_eq!(with_default_port("::1"), "[::1]:4317");
        assert_eq!(with_default_port("[::1]:5317"), "[::1]:5317");
    }
}
