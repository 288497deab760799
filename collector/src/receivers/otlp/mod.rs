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
//! - `compression`: `Content-Encoding` decoding with a hard output cap;
//! - `listener`: the accept loop both servers share: `max_connections`, the TLS handshake
//!   and the handshake deadline that closes connections too slow to start;
//! - `tls`: the `tls` keys and the rustls server configuration.
//!
//! Contract: a request is answered with success only after the pipeline's `consume`
//! returned `Ok`; every other outcome is an error answer the client can act on. With `auth`,
//! a request is only looked at once the authenticator accepted it.
//!
//! Weft's own metrics here, next to the Collector's `otelcol_receiver_*`:
//! `weft_receiver_connections_refused{receiver,transport}` (over `max_connections`),
//! `weft_receiver_tls_handshakes_failed{receiver,transport}`, and
//! `weft_receiver_requests_refused{receiver,transport,reason}` with reason
//! `unauthenticated` or `read_timeout`.

mod answer;
mod compression;
pub mod config;
mod grpc;
mod http;
mod listener;
mod receive;
#[cfg(test)]
mod test_support;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use async_trait::async_trait;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_proto::limits::Limits;

use crate::component::{BuildContext, Component, ReceiverFactory, Stability};
use crate::extensions::auth::{self, ServerAuthenticator};
use crate::health::Health;
use crate::pipeline::{all_signals, for_each_signal, Batch, Consumers, Signal, SignalVisitor};
use crate::telemetry::{ReceiverMetrics, Telemetry};
pub use config::OtlpReceiverConfig;
use config::{AuthSettings, TlsServerSettings};
use listener::{ListenerMetrics, ListenerSettings, Proof};
use receive::SignalReceiver;

pub fn factory() -> ReceiverFactory {
    ReceiverFactory::new::<OtlpReceiverConfig>(
        "otlp",
        Stability::Beta,
        all_signals(),
        "OTLP over gRPC and HTTP (protobuf and JSON), as the Collector's otlpreceiver",
        |ctx, cfg, next| Ok(Arc::new(OtlpReceiver::new(ctx, cfg, next)?) as Arc<dyn Component>),
    )
}

/// How one server accepts connections, before it listens (TLS files are read at start).
struct Accepting {
    /// `receivers::<id>::protocols::<grpc|http>::tls`, for error messages.
    tls_section: String,
    tls: Option<TlsServerSettings>,
    max_connections: usize,
    handshake_timeout: Option<std::time::Duration>,
    metrics: ListenerMetrics,
}

/// The gRPC server as configured, before it listens.
struct GrpcPlan {
    endpoint: String,
    settings: grpc::GrpcServerSettings,
    routes: tonic::service::Routes,
    accepting: Accepting,
}

/// The HTTP server as configured, before it listens.
struct HttpPlan {
    endpoint: String,
    router: axum::Router,
    timeouts: http::ConnTimeouts,
    accepting: Accepting,
}

/// The refusal counters of requests turned away before decoding:
/// `weft_receiver_requests_refused{receiver,transport,reason}`.
#[derive(Clone)]
pub(crate) struct RequestRefusals {
    /// No or wrong credentials (reason `unauthenticated`).
    pub(crate) unauthenticated: Counter,
    /// The body did not arrive within `read_timeout` (reason `read_timeout`).
    pub(crate) read_timeout: Counter,
}

impl RequestRefusals {
    pub(crate) fn new(t: &Telemetry, receiver: &str, transport: &str) -> Self {
        let counter = |reason: &str| {
            t.counter(
                "weft_receiver_requests_refused",
                "Requests refused before their data was read, by reason",
                &[
                    ("receiver", receiver),
                    ("transport", transport),
                    ("reason", reason),
                ],
            )
        };
        Self {
            unauthenticated: counter("unauthenticated"),
            read_timeout: counter("read_timeout"),
        }
    }
}

/// The authenticator `auth` names, as extensions registered it when they were built (they
/// are built before receivers).
fn authenticator(
    ctx: &BuildContext,
    auth: &Option<AuthSettings>,
    protocol: &str,
) -> anyhow::Result<Option<Arc<dyn ServerAuthenticator>>> {
    let Some(settings) = auth else {
        return Ok(None);
    };
    let key = format!(
        "receivers::{}::protocols::{protocol}::auth::authenticator",
        ctx.id
    );
    let id = settings
        .authenticator_id()
        .with_context(|| format!("{key}: {:?} is not a component id", settings.authenticator))?;
    let found = auth::lookup(&ctx.shared, &id).with_context(|| {
        format!(
            "{key}: extension \"{id}\" is not running or is not an authenticator: define it under extensions and list it in service::extensions (Weft's authenticator is bearertokenauth)"
        )
    })?;
    Ok(Some(found))
}

/// The servers while they run.
struct Running {
    stop: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

/// One `otlp` receiver: up to two servers feeding the same pipelines.
pub struct OtlpReceiver {
    id: String,
    /// Its `tracing` span: the servers' tasks run inside it, so their log lines carry the id.
    span: tracing::Span,
    health: Health,
    grpc: Mutex<Option<GrpcPlan>>,
    http: Mutex<Option<HttpPlan>>,
    grpc_addr: Mutex<Option<SocketAddr>>,
    http_addr: Mutex<Option<SocketAddr>>,
    running: Mutex<Option<Running>>,
}

/// What every transport needs to make its per-signal receivers.
struct SignalSetup<'a> {
    next: &'a Consumers,
    telemetry: &'a Telemetry,
    id: &'a str,
    transport: &'static str,
    limits: Limits,
}

impl SignalSetup<'_> {
    /// The receiver of signal `S` on this transport, when the receiver feeds `S`.
    fn receiver<S: Signal>(&self) -> Option<Arc<SignalReceiver<Batch<S>>>> {
        let next = self.next.get::<Batch<S>>()?;
        Some(Arc::new(
            SignalReceiver::new(
                next,
                ReceiverMetrics::new(self.telemetry, self.id, self.transport, S::ITEM),
            )
            .with_limits(self.limits),
        ))
    }
}

/// Collects the gRPC `Export` service of every signal the receiver feeds.
struct GrpcServices<'a> {
    setup: SignalSetup<'a>,
    builder: tonic::service::RoutesBuilder,
    max_message: usize,
    auth: Option<Arc<grpc::GrpcAuth>>,
    span: tracing::Span,
}

impl SignalVisitor for GrpcServices<'_> {
    fn visit<S: Signal>(&mut self) {
        if let Some(receiver) = self.setup.receiver::<S>() {
            grpc::add_service(
                &mut self.builder,
                receiver,
                self.max_message,
                self.auth.clone(),
                self.span.clone(),
            );
        }
    }
}

/// Collects the HTTP route of every signal, served or not.
struct HttpSignalRoutes<'a> {
    setup: SignalSetup<'a>,
    config: &'a config::HttpConfig,
    routes: Vec<http::HttpRoute>,
}

impl SignalVisitor for HttpSignalRoutes<'_> {
    fn visit<S: Signal>(&mut self) {
        self.routes.push(http::HttpRoute {
            path: self.config.url_path(S::KIND),
            signal: S::KIND,
            export: self
                .setup
                .receiver::<S>()
                .map(|r| r as Arc<dyn http::HttpExport>),
        });
    }
}

impl OtlpReceiver {
    /// Prepares the servers; nothing listens before [`Component::start`].
    pub fn new(
        ctx: BuildContext,
        cfg: &OtlpReceiverConfig,
        next: Consumers,
    ) -> anyhow::Result<Self> {
        let id = ctx.id_str();
        anyhow::ensure!(!next.is_empty(), "receiver {id} is in no pipeline");
        let setup = |transport| SignalSetup {
            next: &next,
            telemetry: &ctx.telemetry,
            id: &id,
            transport,
            limits: cfg.limits.limits(),
        };
        let grpc = match &cfg.protocols.grpc {
            None => None,
            Some(g) => {
                let auth = authenticator(&ctx, &g.auth, "grpc")?.map(|authenticator| {
                    Arc::new(grpc::GrpcAuth {
                        authenticator,
                        refused: RequestRefusals::new(&ctx.telemetry, &id, "grpc").unauthenticated,
                    })
                });
                let keepalive = g
                    .keepalive
                    .as_ref()
                    .and_then(|k| k.server_parameters.as_ref());
                Some(GrpcPlan {
                    endpoint: g.endpoint.to_socket_string(),
                    settings: grpc::GrpcServerSettings {
                        max_concurrent_streams: g.max_concurrent_streams,
                        keepalive_time: keepalive.and_then(|k| k.time()),
                        keepalive_timeout: keepalive.and_then(|k| k.timeout()),
                        max_connection_age: keepalive.and_then(|k| k.max_connection_age()),
                        max_connection_age_grace: keepalive
                            .and_then(|k| k.max_connection_age_grace()),
                    },
                    routes: {
                        let mut services = GrpcServices {
                            setup: setup("grpc"),
                            builder: tonic::service::Routes::builder(),
                            max_message: g.max_recv_msg_size(),
                            auth,
                            span: ctx.span(),
                        };
                        for_each_signal(&mut services);
                        services.builder.routes()
                    },
                    accepting: Accepting {
                        tls_section: format!("receivers::{id}::protocols::grpc::tls"),
                        tls: g.tls.clone(),
                        max_connections: g.max_connections,
                        handshake_timeout: g.handshake_timeout(),
                        metrics: ListenerMetrics::new(&ctx.telemetry, &id, "grpc"),
                    },
                })
            }
        };
        let http = match &cfg.protocols.http {
            None => None,
            Some(h) => Some(HttpPlan {
                endpoint: h.endpoint.to_socket_string(),
                router: http::router(Arc::new(http::HttpRoutes {
                    routes: {
                        let mut routes = HttpSignalRoutes {
                            setup: setup("http"),
                            config: h,
                            routes: Vec::new(),
                        };
                        for_each_signal(&mut routes);
                        routes.routes
                    },
                    limit: h.body_limit(),
                    auth: authenticator(&ctx, &h.auth, "http")?,
                    read_timeout: h.body_timeout(),
                    refusals: RequestRefusals::new(&ctx.telemetry, &id, "http"),
                })),
                timeouts: http::ConnTimeouts {
                    header: h.header_timeout(),
                    idle: h.idle_timeout(),
                },
                accepting: Accepting {
                    tls_section: format!("receivers::{id}::protocols::http::tls"),
                    tls: h.tls.clone(),
                    max_connections: h.max_connections,
                    handshake_timeout: h.header_timeout(),
                    metrics: ListenerMetrics::new(&ctx.telemetry, &id, "http"),
                },
            }),
        };
        anyhow::ensure!(
            grpc.is_some() || http.is_some(),
            "receiver {id} has no protocol configured"
        );
        Ok(Self {
            id,
            span: ctx.span(),
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

    /// The accept loop's settings, reading the TLS files now. `alpn` is what TLS offers.
    fn listener_settings(
        &self,
        accepting: &Accepting,
        transport: &'static str,
        proof: Proof,
        alpn: &[&[u8]],
    ) -> anyhow::Result<ListenerSettings> {
        let tls = match &accepting.tls {
            Some(tls) => Some(tokio_rustls::TlsAcceptor::from(
                tls.load(&accepting.tls_section, alpn)?,
            )),
            None => None,
        };
        Ok(ListenerSettings {
            receiver: self.id.clone(),
            transport,
            max_connections: accepting.max_connections,
            tls,
            handshake_timeout: accepting.handshake_timeout,
            proof,
            metrics: accepting.metrics.clone(),
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
        let handle = tokio::spawn(
            async move {
                if let Err(e) = server.await {
                    health.report_failure(&id, &format!("the OTLP/{protocol} server stopped: {e}"));
                }
            }
            .instrument(self.span.clone()),
        );
        (protocol, handle)
    }
}

#[async_trait]
impl Component for OtlpReceiver {
    /// Reads the TLS files and binds every configured endpoint first (so a missing
    /// certificate or a port in use fails the start with nothing left half-running), then
    /// serves.
    async fn start(&self) -> anyhow::Result<()> {
        let grpc = self.grpc.lock().take();
        let http = self.http.lock().take();
        anyhow::ensure!(
            grpc.is_some() || http.is_some(),
            "receiver {} was already started",
            self.id
        );
        let grpc_accept = match &grpc {
            Some(plan) => Some(self.listener_settings(
                &plan.accepting,
                "grpc",
                Proof::Http2Preface,
                &[b"h2"],
            )?),
            None => None,
        };
        let http_accept = match &http {
            Some(plan) => Some(self.listener_settings(
                &plan.accepting,
                "http",
                Proof::FirstRequest,
                &[b"h2", b"http/1.1"],
            )?),
            None => None,
        };
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
        if let (Some(plan), Some(listener), Some(accept)) = (grpc, grpc_listener, grpc_accept) {
            let addr = listener.local_addr()?;
            *self.grpc_addr.lock() = Some(addr);
            let tls = accept.tls.is_some();
            let (incoming, accept_task) = self
                .span
                .in_scope(|| listener::spawn_accept_loop(listener, accept, stop.clone()));
            tasks.push(("gRPC accept loop", accept_task));
            tasks.push(self.spawn(
                "gRPC",
                grpc::serve(incoming, plan.routes, plan.settings, stop.clone()),
            ));
            tracing::info!(component = %self.id, address = %addr, tls, "receiving OTLP/gRPC");
        }
        if let (Some(plan), Some(listener), Some(accept)) = (http, http_listener, http_accept) {
            let addr = listener.local_addr()?;
            *self.http_addr.lock() = Some(addr);
            let tls = accept.tls.is_some();
            let (incoming, accept_task) = self
                .span
                .in_scope(|| listener::spawn_accept_loop(listener, accept, stop.clone()));
            tasks.push(("HTTP accept loop", accept_task));
            tasks.push(self.spawn(
                "HTTP",
                http::serve(incoming, plan.router, plan.timeouts, stop.clone()),
            ));
            tracing::info!(component = %self.id, address = %addr, tls, "receiving OTLP/HTTP");
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
                    component = %self.id,
                    "the OTLP/{protocol} server still had requests in flight at the shutdown deadline; they were cut off"
                );
            }
        }
        tracing::info!(component = %self.id, "stopped receiving");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
