//! Where the backends come from: a static list, or a DNS name asked again every `interval`.
//!
//! A resolution that fails (the name does not resolve, the DNS server does not answer in
//! `timeout`) or that returns no address keeps the last good ring: losing every backend
//! because of a DNS hiccup would stop all traffic. It is logged (`warn`, once per change of
//! outcome) and counted in `otelcol_loadbalancer_num_resolutions{success="false"}`.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use super::balancer::RingListener;
use super::config::{DnsResolver, Resolver};
use crate::telemetry::Telemetry;

/// Runs the resolver and hands every new backend list to the listeners (one per signal).
pub struct Resolution {
    exporter: String,
    resolver: Resolver,
    dns: Option<TokioResolver>,
    listeners: Vec<Arc<dyn RingListener>>,
    metrics: ResolverMetrics,
    /// The last list handed to the listeners.
    last: parking_lot::Mutex<Option<Vec<String>>>,
    /// Whether the last resolution failed (to log a failure once, and the recovery).
    failing: std::sync::atomic::AtomicBool,
}

struct ResolverMetrics {
    backends: Gauge,
    updates: Counter,
    ok: Counter,
    failed: Counter,
}

impl Resolution {
    pub fn new(
        exporter: String,
        resolver: Resolver,
        listeners: Vec<Arc<dyn RingListener>>,
        telemetry: &Telemetry,
    ) -> anyhow::Result<Self> {
        let name = resolver.name();
        let labels = [("exporter", exporter.as_str()), ("resolver", name)];
        let resolutions = |success: &str| {
            telemetry.counter(
                "otelcol_loadbalancer_num_resolutions",
                "Number of times the resolver has triggered new resolutions.",
                &[
                    ("exporter", &exporter),
                    ("resolver", name),
                    ("success", success),
                ],
            )
        };
        let metrics = ResolverMetrics {
            backends: telemetry.gauge(
                "otelcol_loadbalancer_num_backends",
                "Current number of backends in use.",
                &labels,
            ),
            updates: telemetry.counter(
                "otelcol_loadbalancer_num_backend_updates",
                "Number of times the list of backends was updated.",
                &labels,
            ),
            ok: resolutions("true"),
            failed: resolutions("false"),
        };
        let dns = match &resolver {
            Resolver::Dns(d) => Some(dns_client(d)?),
            Resolver::Static(_) => None,
        };
        Ok(Self {
            exporter,
            resolver,
            dns,
            listeners,
            metrics,
            last: parking_lot::Mutex::new(None),
            failing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Resolves once and applies the result.
    pub async fn resolve_once(&self) {
        let resolved = match &self.resolver {
            Resolver::Static(s) => Ok(s.hostnames.clone()),
            Resolver::Dns(d) => self.resolve_dns(d).await,
        };
        let endpoints = match resolved {
            Ok(list) if list.is_empty() => Err("no address returned".to_string()),
            other => other,
        };
        match endpoints {
            Ok(mut endpoints) => {
                self.metrics.ok.inc();
                endpoints.sort();
                endpoints.dedup();
                if self
                    .failing
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::info!(component = %self.exporter, resolver = self.resolver.name(), backends = ?endpoints, "the resolver answers again");
                }
                self.apply(endpoints);
            }
            Err(e) => {
                self.metrics.failed.inc();
                if !self
                    .failing
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    let kept = self.last.lock().clone().unwrap_or_default();
                    tracing::warn!(
                        component = %self.exporter, resolver = self.resolver.name(), error = %e,
                        kept_backends = ?kept,
                        "resolving the backends failed; keeping the last good list until it answers again"
                    );
                }
            }
        }
    }

    fn apply(&self, endpoints: Vec<String>) {
        let mut last = self.last.lock();
        if last.as_ref() == Some(&endpoints) {
            return;
        }
        for listener in &self.listeners {
            if let Err(e) = listener.update(&endpoints) {
                tracing::error!(
                    component = %self.exporter, error = %e,
                    "cannot use the new backend list; keeping the previous one"
                );
                return;
            }
        }
        tracing::info!(component = %self.exporter, backends = ?endpoints, "backends changed");
        self.metrics.backends.set(endpoints.len() as i64);
        self.metrics.updates.inc();
        *last = Some(endpoints);
    }

    async fn resolve_dns(&self, cfg: &DnsResolver) -> Result<Vec<String>, String> {
        let dns = self.dns.as_ref().ok_or("no DNS client")?;
        let lookup = tokio::time::timeout(cfg.timeout.get(), dns.lookup_ip(cfg.hostname.as_str()))
            .await
            .map_err(|_| format!("no answer for {} within {}", cfg.hostname, cfg.timeout))?
            .map_err(|e| format!("{}: {e}", cfg.hostname))?;
        let port = cfg.port.as_ref().and_then(|p| p.get().ok());
        Ok(lookup
            .iter()
            .map(|ip| match port {
                Some(port) => SocketAddr::new(ip, port).to_string(),
                None => ip.to_string(),
            })
            .collect())
    }

    /// Resolves every `interval` until `stop` (a static list never changes: once is enough).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let interval = match &self.resolver {
            Resolver::Static(_) => return,
            Resolver::Dns(d) => d.interval.get(),
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => self.resolve_once().await,
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// A DNS client without a cache (each resolution asks the server): the system's
/// configuration, or the configured `nameserver`.
fn dns_client(cfg: &DnsResolver) -> anyhow::Result<TokioResolver> {
    let mut builder = match &cfg.nameserver {
        Some(ns) => {
            let addr: SocketAddr = ns.parse().map_err(|_| {
                anyhow::anyhow!("resolver::dns::nameserver: \"{ns}\" is not an ip:port")
            })?;
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut server.connections {
                c.port = addr.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio().map_err(|e| {
            anyhow::anyhow!("resolver::dns: cannot read the system's DNS configuration: {e}")
        })?,
    };
    let options = builder.options_mut();
    options.cache_size = 0;
    options.timeout = cfg.timeout.get();
    options.attempts = 1;
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("resolver::dns: {e}"))
}
