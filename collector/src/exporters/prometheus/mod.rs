//! The `prometheus` exporter, as the Collector's prometheusexporter: a scrape endpoint
//! (`/metrics` on `endpoint`) exposing the latest state of every series the metrics
//! pipelines delivered, named by the OpenTelemetry → Prometheus rules ([`naming`]) and
//! written by the `prometheus-client` crate's text encoder ([`expose`]).
//!
//! There is no queue: `consume` updates the store ([`store`]) before it returns, so an
//! acknowledged batch is already what the next scrape sees. The store is bounded
//! (`max_series`); what it cannot hold is counted, never silently lost.

mod config;
mod expose;
mod naming;
mod store;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use async_trait::async_trait;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_config::SignalKind;

pub use config::Config;
use expose::Exposition;
use store::{Naming, Store, StoreMetrics};

use crate::component::{BuildContext, BuiltExporter, Component, ExporterFactory, Stability};
use crate::pipeline::{ConsumeError, Consumer, Consumers, Metrics, Payload};
use crate::telemetry::ExporterMetrics;

pub fn factory() -> ExporterFactory {
    ExporterFactory::new::<Config>(
        "prometheus",
        Stability::Alpha,
        vec![SignalKind::Metrics],
        "Serves metrics for Prometheus to scrape (OpenMetrics text at /metrics), with the OpenTelemetry to Prometheus naming rules",
        build,
    )
}

fn build(
    ctx: BuildContext,
    cfg: &Config,
    _signals: &[SignalKind],
) -> anyhow::Result<BuiltExporter> {
    let id = ctx.id_str();
    let endpoint = cfg
        .endpoint
        .clone()
        .context("endpoint is required (config validation should have said so)")?;
    let store = Arc::new(Mutex::new(Store::default()));
    let naming = Naming {
        namespace: cfg.namespace.clone(),
        const_labels: cfg.const_labels.clone(),
        suffixes: cfg.suffixes(),
        resource_to_labels: cfg.resource_to_telemetry_conversion.enabled,
        exemplars: cfg.enable_open_metrics,
    };
    let consumer = Arc::new(PrometheusConsumer {
        store: store.clone(),
        naming,
        max_series: cfg.max_series,
        metrics: StoreMetrics::new(&ctx.telemetry, &id),
        exporter: ExporterMetrics::new(&ctx.telemetry, &id, "metric_points", "metrics"),
        series: ctx.telemetry.gauge(
            "weft_exporter_prometheus_series",
            "Series the prometheus exporter exposes",
            &[("exporter", &id)],
        ),
    });
    let component = Arc::new(PrometheusExporter {
        id,
        address: endpoint.to_socket_string(),
        exposition: Exposition {
            store,
            expiration: cfg.metric_expiration.get(),
            exemplars: cfg.enable_open_metrics,
        },
        stop: CancellationToken::new(),
        bound: Mutex::new(None),
        span: ctx.span(),
    });
    Ok(BuiltExporter {
        consumers: Consumers::default().with::<Metrics>(consumer),
        component,
    })
}

struct PrometheusConsumer {
    store: Arc<Mutex<Store>>,
    naming: Naming,
    max_series: usize,
    metrics: StoreMetrics,
    exporter: ExporterMetrics,
    series: Gauge,
}

#[async_trait]
impl Consumer<Metrics> for PrometheusConsumer {
    async fn consume(&self, data: Metrics) -> Result<(), ConsumeError> {
        let points = data.item_count() as u64;
        let request = data.into_request();
        let mut store = self.store.lock();
        store.update(
            &request,
            &self.naming,
            self.max_series,
            &self.metrics,
            Instant::now(),
        );
        self.series.set(store.series_count() as i64);
        self.exporter.sent.inc_by(points);
        Ok(())
    }
}

pub struct PrometheusExporter {
    id: String,
    address: String,
    exposition: Exposition,
    stop: CancellationToken,
    bound: Mutex<Option<SocketAddr>>,
    span: tracing::Span,
}

impl PrometheusExporter {
    /// Where `/metrics` is served, once started.
    pub fn address(&self) -> Option<SocketAddr> {
        *self.bound.lock()
    }
}

#[async_trait]
impl Component for PrometheusExporter {
    async fn start(&self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(&self.address).await.with_context(|| {
            format!("exporters::{}: cannot listen on {}", self.id, self.address)
        })?;
        let local = listener.local_addr()?;
        *self.bound.lock() = Some(local);
        let exposition = self.exposition.clone();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let exposition = exposition.clone();
                async move {
                    let body = tokio::task::spawn_blocking(move || expose::render(&exposition))
                        .await
                        .unwrap_or_default();
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        );
        let stop = self.stop.clone();
        let id = self.id.clone();
        tokio::spawn(
            async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    tracing::error!(component = %id, error = %e, "the scrape endpoint failed");
                }
            }
            .instrument(self.span.clone()),
        );
        tracing::info!(component = %self.id, address = %local, "serving metrics for Prometheus at /metrics");
        Ok(())
    }

    async fn shutdown(&self, _deadline: std::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        Ok(())
    }
}
