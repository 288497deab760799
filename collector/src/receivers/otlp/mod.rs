//! The `otlp` receiver: OTLP over gRPC (4317) and HTTP (4318), as the OpenTelemetry
//! Collector's `otlpreceiver` serves it.
//!
//! - [`config`]: the Collector's keys and defaults;
//! - `grpc`: `TraceService/Export` and `LogsService/Export` on one tonic server;
//! - `http`: `POST /v1/traces` and `/v1/logs`, protobuf or JSON, compressed or not;
//! - `receive`: decoding (off the async threads when large), the hand-off to the pipeline and
//!   the receiver metrics, shared by both transports;
//! - `answer`: the OTLP answer for every kind of rejection, including the retry delay that
//!   turns a full pipeline into backpressure;
//! - `compression`: `Content-Encoding` decoding with a hard output cap.
//!
//! Contract: a request is answered with success only after the pipeline's `consume`
//! returned `Ok`; every other outcome is an error answer the client can act on.

mod answer;
mod compression;
pub mod config;
mod grpc;
mod http;
mod receive;
#[cfg(test)]
mod test_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_config::Signal;

use crate::component::{BuildContext, Component, ReceiverConsumers, ReceiverFactory, Stability};
use crate::pipeline::{Logs, Traces};
use crate::service::Health;
use crate::telemetry::{ReceiverMetrics, Telemetry};
pub use config::OtlpReceiverConfig;
use receive::{OtlpSignal, SignalReceiver};

pub fn factory() -> ReceiverFactory {
    ReceiverFactory::new::<OtlpReceiverConfig>(
        "otlp",
        Stability::Beta,
        &[Signal::Traces, Signal::Logs],
        "OTLP over gRPC and HTTP (protobuf and JSON), as the Collector's otlpreceiver",
        |ctx, cfg, next| Ok(Arc::new(OtlpReceiver::new(ctx, cfg, next)?) as Arc<dyn Component>),
    )
}

/// The gRPC server as configured, before it listens.
struct GrpcPlan {
    endpoint: String,
    max_concurrent_streams: u32,
    routes: tonic::service::Routes,
}

/// The HTTP server as configured, before it listens.
struct HttpPlan {
    endpoint: String,
    router: axum::Router,
}

/// The servers while they run.
struct Running {
    stop: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

/// One `otlp` receiver: up to two servers feeding the same pipelines.
pub struct OtlpReceiver {
    id: String,
    health: Health,
    grpc: Mutex<Option<GrpcPlan>>,
    http: Mutex<Option<HttpPlan>>,
    grpc_addr: Mutex<Option<SocketAddr>>,
    http_addr: Mutex<Option<SocketAddr>>,
    running: Mutex<Option<Running>>,
}

fn signal_receiver<T: OtlpSignal>(
    next: &Option<Arc<dyn crate::pipeline::Consumer<T>>>,
    telemetry: &Telemetry,
    id: &str,
    transport: &str,
) -> Option<Arc<SignalReceiver<T>>> {
    next.as_ref().map(|next| {
        Arc::new(SignalReceiver::new(
            next.clone(),
            ReceiverMetrics::new(telemetry, id, transport, T::ITEM),
        ))
    })
}

impl OtlpReceiver {
    /// Prepares the servers; nothing listens before [`Component::start`].
    pub fn new(
        ctx: BuildContext,
        cfg: &OtlpReceiverConfig,
        next: ReceiverConsumers,
    ) -> anyhow::Result<Self> {
        let id = ctx.id_str();
        anyhow::ensure!(
            next.traces.is_some() || next.logs.is_some(),
            "receiver {id} is in no traces or logs pipeline"
        );
        let grpc = cfg.protocols.grpc.as_ref().map(|g| GrpcPlan {
            endpoint: g.endpoint.to_socket_string(),
            max_concurrent_streams: g.max_concurrent_streams,
            routes: grpc::routes(
                signal_receiver::<Traces>(&next.traces, &ctx.telemetry, &id, "grpc"),
                signal_receiver::<Logs>(&next.logs, &ctx.telemetry, &id, "grpc"),
                g.max_recv_msg_size(),
            ),
        });
        let http = cfg.protocols.http.as_ref().map(|h| HttpPlan {
            endpoint: h.endpoint.to_socket_string(),
            router: http::router(Arc::new(http::HttpRoutes {
                traces: signal_receiver::<Traces>(&next.traces, &ctx.telemetry, &id, "http"),
                logs: signal_receiver::<Logs>(&next.logs, &ctx.telemetry, &id, "http"),
                traces_path: h.traces_path(),
                logs_path: h.logs_path(),
                limit: h.body_limit(),
            })),
        });
        anyhow::ensure!(
            grpc.is_some() || http.is_some(),
            "receiver {id} has no protocol configured"
        );
        Ok(Self {
            id,
            health: ctx.health,
            grpc: Mutex::new(grpc),
            http: Mutex::new(http),
            grpc_addr: Mutex::new(None),
            http_addr: Mutex::new(None),
            running: Mutex::new(None),
        })
    }

    /// Where the gRPC server listens, once started (useful with port 0).
    pub fn grpc_address(&self) -> Option<SocketAddr> {
        *self.grpc_addr.lock()
    }

    /// Where the HTTP server listens, once started.
    pub fn http_address(&self) -> Option<SocketAddr> {
        *self.http_addr.lock()
    }

    async fn bind(&self, protocol: &str, endpoint: &str) -> anyhow::Result<TcpListener> {
        TcpListener::bind(endpoint).await.with_context(|| {
            format!(
                "receiver {}: cannot listen for OTLP/{protocol} on {endpoint} (is another process using the port?)",
                self.id
            )
        })
    }

    /// Runs a server until it ends; a server that fails while Weft runs makes it unhealthy.
    fn spawn<E: std::fmt::Display>(
        &self,
        protocol: &'static str,
        server: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
    ) -> (&'static str, JoinHandle<()>) {
        let id = self.id.clone();
        let health = self.health.clone();
        let handle = tokio::spawn(async move {
            if let Err(e) = server.await {
                health.report_failure(&id, &format!("the OTLP/{protocol} server stopped: {e}"));
            }
        });
        (protocol, handle)
    }
}

#[async_trait]
impl Component for OtlpReceiver {
    /// Binds every configured endpoint first (so a port in use fails the start with nothing
    /// left half-running), then serves.
    async fn start(&self) -> anyhow::Result<()> {
        let grpc = self.grpc.lock().take();
        let http = self.http.lock().take();
        anyhow::ensure!(
            grpc.is_some() || http.is_some(),
            "receiver {} was already started",
            self.id
        );
        let grpc_listener = match &grpc {
            Some(plan) => Some(self.bind("gRPC", &plan.endpoint).await?),
            None => None,
        };
        let http_listener = match &http {
            Some(plan) => Some(self.bind("HTTP", &plan.endpoint).await?),
            None => None,
        };
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        if let (Some(plan), Some(listener)) = (grpc, grpc_listener) {
            let addr = listener.local_addr()?;
            *self.grpc_addr.lock() = Some(addr);
            tasks.push(self.spawn(
                "gRPC",
                grpc::serve(
                    listener,
                    plan.routes,
                    plan.max_concurrent_streams,
                    stop.clone(),
                ),
            ));
            tracing::info!(component = "otlp", id = %self.id, address = %addr, "receiving OTLP/gRPC");
        }
        if let (Some(plan), Some(listener)) = (http, http_listener) {
            let addr = listener.local_addr()?;
            *self.http_addr.lock() = Some(addr);
            tasks.push(self.spawn("HTTP", http::serve(listener, plan.router, stop.clone())));
            tracing::info!(component = "otlp", id = %self.id, address = %addr, "receiving OTLP/HTTP");
        }
        *self.running.lock() = Some(Running { stop, tasks });
        Ok(())
    }

    /// Stops accepting connections and lets requests in flight finish (their data is already
    /// on its way into the pipeline) until `deadline`; what is still running then is aborted.
    async fn shutdown(&self, deadline: Instant) -> anyhow::Result<()> {
        let Some(running) = self.running.lock().take() else {
            return Ok(());
        };
        running.stop.cancel();
        let deadline = tokio::time::Instant::from_std(deadline);
        for (protocol, mut task) in running.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(
                    component = "otlp",
                    id = %self.id,
                    "the OTLP/{protocol} server still had requests in flight at the shutdown deadline; they were cut off"
                );
            }
        }
        tracing::info!(component = "otlp", id = %self.id, "stopped receiving");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
