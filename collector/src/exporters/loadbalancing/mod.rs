//! The `loadbalancing` exporter (also `load_balancing`, the Collector's newer name): the
//! first tier of a gateway tier. It sends each span and each log record to the backend that
//! owns its trace id on a consistent-hash ring ([`ring`], the Collector's own), so every span
//! and log of a trace meets at one gateway whatever sidecar it came through, and tail
//! sampling there sees whole traces.
//!
//! - Routing is per record, on the wire ([`route`]): a mixed batch is cut into one request
//!   per backend without decoding it. Logs are routed by trace id too (the Collector routes
//!   them by service unless told otherwise, which splits a trace's logs from its spans); logs
//!   without a trace id are spread round-robin. `routing_key: service` routes by
//!   `service.name` instead.
//! - Metrics are routed by `service.name` unless told otherwise (the Collector's default),
//!   or by every resource attribute (`resource`), the metric's name (`metric`), or each data
//!   point's stream (`streamID`: resource, scope, metric and point attributes), so every point
//!   of a series meets at one backend (what a cumulative-to-delta or aggregation step there
//!   needs). A metric is cut per data point only for `streamID`.
//! - The backends come from a resolver ([`resolver`]): a static list, or a DNS name asked
//!   again every `interval`. A failing resolution keeps the last good ring.
//! - Each backend has its own queue and retries ([`balancer`]). A backend that is down keeps
//!   its data queued and retried; a backend that leaves the ring hands its queued data to the
//!   new owners instead of dropping it (the Collector drops it: contrib #35378, #36717).
//!
//! Each backend is the `otlp` exporter's client ([`crate::exporters::otlp`]) with
//! `protocol::otlp`'s settings and the resolver's endpoint.

mod balancer;
mod config;
mod k8s;
mod resolver;
pub mod ring;
pub mod route;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_config::SignalKind;

pub use config::Config;
pub use ring::Ring;
pub use route::RoutingKey;

use self::balancer::{Balancer, MakeBackendSender, RingListener, Settings};
use self::resolver::Resolution;
use crate::component::{BuildContext, BuiltExporter, Component, ExporterFactory, Stability};
use crate::exporters::helper::{ComponentGroup, Sender, TimeoutSender};
use crate::exporters::otlp::{self, MakeGrpc};
use crate::pipeline::{Consumer, Consumers, MakeConsumer, Payload};

/// The factory under the Collector's historical name, `loadbalancing`.
pub fn factory() -> ExporterFactory {
    factory_named("loadbalancing")
}

/// The same exporter under the Collector's newer name, `load_balancing`.
pub fn factory_load_balancing() -> ExporterFactory {
    factory_named("load_balancing")
}

fn factory_named(name: &'static str) -> ExporterFactory {
    ExporterFactory::new::<Config>(
        name,
        Stability::Beta,
        vec![SignalKind::Traces, SignalKind::Logs, SignalKind::Metrics],
        "Routes spans and logs by trace id, metrics by service, resource, name or stream, to a tier of OTLP backends (consistent hashing; static, DNS or k8s resolver)",
        build,
    )
}

fn build(ctx: BuildContext, cfg: &Config, signals: &[SignalKind]) -> anyhow::Result<BuiltExporter> {
    let id = ctx.id_str();
    let resolver = cfg
        .resolver()
        .map_err(|e| anyhow::anyhow!("exporter {id}: resolver: {e}"))?;
    // Reads the TLS files now, so a missing one fails the start rather than the first ring.
    let mut probe = cfg.protocol.otlp.clone();
    probe.endpoint = "localhost:4317".into();
    MakeGrpc::new(&ctx.telemetry, id.clone(), &probe)
        .map_err(|e| anyhow::anyhow!("exporter {id}: protocol::otlp: {e:#}"))?;
    let make = Balancers {
        ctx: &ctx,
        cfg,
        made: Mutex::new(Vec::new()),
    };
    let consumers = Consumers::build(signals, &make)?;
    let made = make.made.into_inner();
    let listeners: Vec<Arc<dyn RingListener>> = made.iter().map(|(l, _)| l.clone()).collect();
    let components: Vec<Arc<dyn Component>> = made.into_iter().map(|(_, c)| c).collect();
    let resolution = Resolution::new(id, resolver, listeners, &ctx.telemetry)?;
    Ok(BuiltExporter {
        consumers,
        component: Arc::new(Exporter {
            resolution: Arc::new(resolution),
            balancers: ComponentGroup::new(components),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
            span: ctx.span(),
        }),
    })
}

/// A signal's balancer, as the resolver and the lifecycle see it.
type Made = (Arc<dyn RingListener>, Arc<dyn Component>);

/// Makes each signal's [`Balancer`], remembering it as a ring listener and a component.
struct Balancers<'a> {
    ctx: &'a BuildContext,
    cfg: &'a Config,
    made: Mutex<Vec<Made>>,
}

impl MakeConsumer for Balancers<'_> {
    fn consumer<T: Payload>(&self) -> anyhow::Result<Arc<dyn Consumer<T>>> {
        let id = self.ctx.id_str();
        let layout = route::layout(T::SIGNAL)
            .ok_or_else(|| anyhow::anyhow!("exporter {id}: cannot route {}", T::SIGNAL))?;
        let key = self
            .cfg
            .routing_key(T::SIGNAL)
            .map_err(|e| anyhow::anyhow!("exporter {id}: routing_key: {e}"))?;
        let telemetry = self.ctx.telemetry.clone();
        let otlp_cfg = self.cfg.protocol.otlp.clone();
        let timeout = self.cfg.timeout();
        let make: MakeBackendSender<T> = Box::new(move |endpoint: &str| {
            let mut backend: otlp::Config = otlp_cfg.clone();
            backend.endpoint = config::with_default_port(endpoint);
            backend.timeout = weft_config::Duration(timeout);
            let client = MakeGrpc::new(&telemetry, id.clone(), &backend)?;
            let sender = TimeoutSender::new(client.grpc_sender::<T>(), timeout);
            Ok(Arc::new(sender) as Arc<dyn Sender<T>>)
        });
        let balancer = Arc::new(Balancer::<T>::new(
            self.ctx.id_str(),
            &self.ctx.telemetry,
            key,
            layout,
            Settings {
                queue: self.cfg.queue(),
                retry: self.cfg.retry(),
            },
            make,
            self.ctx.span(),
        ));
        self.made.lock().push((balancer.clone(), balancer.clone()));
        Ok(balancer)
    }
}

/// The exporter as a component: the resolver's task and every signal's balancer.
struct Exporter {
    resolution: Arc<Resolution>,
    balancers: ComponentGroup,
    stop: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    span: tracing::Span,
}

#[async_trait]
impl Component for Exporter {
    /// Resolves the backends once (a failure is logged and retried every interval: data is
    /// refused with a retryable answer until a backend is known), then keeps resolving.
    async fn start(&self) -> anyhow::Result<()> {
        self.balancers.start().await?;
        self.resolution.resolve_once().await;
        let task = tokio::spawn(
            self.resolution
                .clone()
                .run(self.stop.clone())
                .instrument(self.span.clone()),
        );
        *self.task.lock() = Some(task);
        Ok(())
    }

    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.balancers.shutdown(deadline).await
    }
}
