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
            Resolver::Static(_) | Resolver::K8s(_) => None,
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

    /// Resolves once and applies the result. The k8s resolver has no "once": its watch
    /// ([`Resolution::run`]) delivers the first list as soon as the API server answers.
    pub async fn resolve_once(&self) {
        let resolved = match &self.resolver {
            Resolver::Static(s) => Ok(s.hostnames.clone()),
            Resolver::Dns(d) => self.resolve_dns(d).await,
            Resolver::K8s(_) => return,
        };
        self.outcome(resolved);
    }

    /// Applies a resolution's outcome: a new list, or a failure that keeps the last one.
    fn outcome(&self, resolved: Result<Vec<String>, String>) {
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
            Resolver::K8s(target) => {
                let this = self.clone();
                let watch = super::k8s::watch(target.clone(), move |update| match update {
                    super::k8s::Update::Backends(list) => this.outcome(Ok(list)),
                    super::k8s::Update::Failed(e) => this.outcome(Err(e)),
                });
                tokio::select! {
                    _ = watch => {}
                    _ = stop.cancelled() => {}
                }
                return;
            }
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

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::exporters::loadbalancing::config::Port;

    /// Records every list it is given.
    #[derive(Default)]
    struct Lists(parking_lot::Mutex<Vec<Vec<String>>>);

    impl RingListener for Lists {
        fn update(&self, endpoints: &[String]) -> anyhow::Result<()> {
            self.0.lock().push(endpoints.to_vec());
            Ok(())
        }
    }

    /// A DNS server answering every A question with 10.0.0.1 and 10.0.0.2, or NXDOMAIN once
    /// `broken` is set.
    fn dns_server(broken: Arc<AtomicBool>) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let q = &buf[..n];
                let mut end = 12;
                while q[end] != 0 {
                    end += 1 + usize::from(q[end]);
                }
                let is_a = q[end + 2] == 1;
                let nx = broken.load(Ordering::Relaxed);
                let ips: &[[u8; 4]] = if is_a && !nx {
                    &[[10, 0, 0, 1], [10, 0, 0, 2]]
                } else {
                    &[]
                };
                let mut out = q[..2].to_vec();
                out.extend_from_slice(&[
                    0x81,
                    if nx { 0x83 } else { 0x80 },
                    0,
                    1,
                    0,
                    ips.len() as u8,
                    0,
                    0,
                    0,
                    0,
                ]);
                out.extend_from_slice(&q[12..end + 5]);
                for ip in ips {
                    out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
                    out.extend_from_slice(ip);
                }
                let _ = socket.send_to(&out, from);
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_name_that_stops_resolving_keeps_the_last_good_ring_and_counts_the_failure() {
        let broken = Arc::new(AtomicBool::new(false));
        let server = dns_server(broken.clone());
        let lists = Arc::new(Lists::default());
        let telemetry = Telemetry::new();
        let resolution = Resolution::new(
            "loadbalancing".into(),
            Resolver::Dns(DnsResolver {
                hostname: "gateways.weft.test".into(),
                port: Some(Port::Text("4317".into())),
                nameserver: Some(server.to_string()),
                ..DnsResolver::default()
            }),
            vec![lists.clone()],
            &telemetry,
        )
        .unwrap();
        resolution.resolve_once().await;
        let good = vec!["10.0.0.1:4317".to_string(), "10.0.0.2:4317".to_string()];
        assert_eq!(*lists.0.lock(), std::slice::from_ref(&good));
        broken.store(true, Ordering::Relaxed);
        resolution.resolve_once().await;
        resolution.resolve_once().await;
        assert_eq!(*lists.0.lock(), [good], "the ring was kept");
        let labels = |success| {
            [
                ("exporter", "loadbalancing"),
                ("resolver", "dns"),
                ("success", success),
            ]
        };
        assert_eq!(
            telemetry.counter_value("otelcol_loadbalancer_num_resolutions", &labels("false")),
            2
        );
        assert_eq!(
            telemetry.counter_value("otelcol_loadbalancer_num_resolutions", &labels("true")),
            1
        );
    }
}
