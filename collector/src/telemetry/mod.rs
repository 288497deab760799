//! Weft's own telemetry: its logs (through `tracing`) and its Prometheus metrics endpoint.

mod metrics;

use std::net::SocketAddr;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use weft_config::{LogEncoding, LogsTelemetry, MetricsTelemetry};

pub use metrics::{
    parse_exposition, CounterFamily, ExporterMetrics, GaugeFamily, HistogramFamily, Labels,
    ReceiverMetrics, Sample, Telemetry,
};

/// Installs the process's log subscriber. `RUST_LOG`, when set, overrides the configured level.
pub fn init_logging(cfg: &LogsTelemetry) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(cfg.level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests building several services in one process) keeps the first subscriber.
    let _ = match cfg.encoding {
        LogEncoding::Json => builder.json().flatten_event(true).try_init(),
        LogEncoding::Text => builder.try_init(),
    };
}

/// Serves `/metrics` until `stop` is cancelled. Returns the bound address.
pub async fn serve_metrics(
    cfg: &MetricsTelemetry,
    telemetry: Telemetry,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let addr = cfg.address.to_socket_string();
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("service::telemetry::metrics: cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let t = telemetry.clone();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    t.encode(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::error!(component = "telemetry", error = %e, "metrics endpoint failed");
        }
    });
    tracing::info!(component = "telemetry", address = %local, "serving metrics at /metrics");
    Ok(local)
}
