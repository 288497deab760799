//! `weft_status`: a live status page, in the spirit of the Collector's `zpages` (same
//! `endpoint` key and default port), that shows what the tail sampler did with the data.
//!
//! Four views, each a page of one embedded app (plain HTML, CSS and JavaScript compiled into
//! the binary with `include_str!`: no build step, no network access from the browser) and a
//! JSON endpoint behind it for scripts:
//!
//! | view | page | JSON |
//! |---|---|---|
//! | the configured pipelines, each component with its items in/out/refused/failed per second and queue fill | `/#/pipelines` | `/api/pipelines` |
//! | each `tail_sampling` window: traces and bytes held, oldest trace, decision delays, early decisions, decision cache, durable log | `/#/window` | `/api/window` |
//! | recent decisions, kept and dropped, filtered by verdict, policy, service, trace id | `/#/decisions` | `/api/decisions` |
//! | one trace: its verdict, every policy's reason, its spans as a waterfall with their logs inline | `/#/trace/<id>` | `/api/traces/<id>` |
//!
//! It finds every `tail_sampling` window through the shared instances when it starts
//! (before any data flows) and turns its decisions ring on
//! ([`crate::processors::tail_sampling::decisions`]); the pipelines come from the service's
//! graph and the counters from the telemetry registry, so the service knows nothing of it.
//!
//! Safe by default: it listens on `localhost`; `auth` puts an authenticator extension in
//! front of every request; it shows no configuration value (component ids only); every
//! attribute value and log body goes through the rules of any registered redaction
//! ([`crate::redaction`]) and is cut at `max_value_bytes`; the app writes every value as text
//! (never as HTML), and the page forbids inline scripts (`Content-Security-Policy`).

mod api;
mod detail;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_config::{
    ByteSize, ComponentConfig, ComponentId, ConfigPath, Diagnostics, Endpoint, ExtensionReference,
};

use super::auth::{self, ServerAuthenticator};
use crate::component::{BuildContext, Component, ExtensionFactory, SharedInstances, Stability};
use crate::processors::tail_sampling::decisions::{DecisionRing, RingSettings};
use crate::processors::tail_sampling::TailSampling;
use crate::telemetry::Sample;
use crate::telemetry::Telemetry;

/// `extensions::weft_status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where to listen; default `localhost:55679` (the Collector's zpages port).
    pub endpoint: Endpoint,
    /// An authenticator extension every request must pass.
    pub auth: Option<AuthSettings>,
    /// The decisions ring of every `tail_sampling` window.
    pub decisions: DecisionsConfig,
    /// Links from a trace to other tools (Jaeger, Kibana), `{trace_id}` replaced.
    pub links: Vec<LinkConfig>,
    /// Attribute values and log bodies longer than this are cut in the views.
    pub max_value_bytes: ByteSize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::new("localhost", 55679),
            auth: None,
            decisions: DecisionsConfig::default(),
            links: Vec::new(),
            max_value_bytes: ByteSize(2048),
        }
    }
}

/// `auth`: as a receiver's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The id of an authenticator extension, listed in `service::extensions`.
    pub authenticator: String,
}

/// `decisions`: the bounds of each window's ring.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionsConfig {
    /// Decided traces remembered per window, kept and dropped.
    pub size: usize,
    /// Also keep the spans and logs of dropped traces (kept traces always keep theirs).
    pub keep_dropped_detail: bool,
    /// Encoded bytes of spans and logs kept per window for the trace view; past it the
    /// oldest traces lose theirs (their summary stays).
    pub detail_max_bytes: ByteSize,
}

impl Default for DecisionsConfig {
    fn default() -> Self {
        Self {
            size: 10_000,
            keep_dropped_detail: false,
            detail_max_bytes: ByteSize::mib(64),
        }
    }
}

/// One `links` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// The link's text, e.g. `Jaeger`.
    pub text: String,
    /// `http(s)://…` with `{trace_id}` (32 hex digits) in it.
    pub url: String,
}

/// The largest ring: its records (a few hundred bytes each, more with many policies) stay
/// in memory.
const MAX_RING_SIZE: usize = 1_000_000;

impl ComponentConfig for Config {
    fn extension_references(&self, path: &ConfigPath) -> Vec<ExtensionReference> {
        self.auth
            .iter()
            .map(|a| {
                ExtensionReference::new(
                    path.key("auth").key("authenticator"),
                    a.authenticator.clone(),
                )
            })
            .collect()
    }

    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if let Some(a) = &self.auth {
            let at = path.key("auth").key("authenticator");
            if a.authenticator.is_empty() {
                diags.error(
                    &at,
                    "name the authenticator extension, e.g. authenticator: bearertokenauth",
                );
            } else if let Err(e) = a.authenticator.parse::<ComponentId>() {
                diags.error(&at, e);
            }
        }
        let d = path.key("decisions");
        if self.decisions.size == 0 || self.decisions.size > MAX_RING_SIZE {
            diags.error(
                &d.key("size"),
                format!(
                    "must be from 1 to {MAX_RING_SIZE}, got {}",
                    self.decisions.size
                ),
            );
        }
        if self.max_value_bytes.0 < 16 {
            diags.error(
                &path.key("max_value_bytes"),
                "must be at least 16 bytes: shorter cuts leave nothing to read",
            );
        }
        for (i, link) in self.links.iter().enumerate() {
            let at = path.key("links").index(i);
            if link.text.trim().is_empty() {
                diags.error(&at.key("text"), "required: the link's text, e.g. Jaeger");
            }
            if let Err(e) = check_link(&link.url) {
                diags.error(&at.key("url"), e);
            }
        }
    }
}

/// A link template must be an http(s) URL using `{trace_id}`, with no other placeholder and
/// no credentials (the page shows it to every visitor).
fn check_link(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("must start with http:// or https://, got {url:?}"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(
            "must not hold credentials (user:password@): the page shows its links to every visitor"
                .to_string(),
        );
    }
    if !url.contains("{trace_id}") {
        return Err(format!(
            "must contain {{trace_id}}, replaced by the trace's id: {url:?}"
        ));
    }
    let mut rest = url.replace("{trace_id}", "");
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open..=open + len];
        // Kibana's rison (`_a=(query:…)`) has no braces; a brace pair is a placeholder.
        if name.len() > 2
            && name[1..name.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "unknown placeholder {name}: the only one is {{trace_id}}"
            ));
        }
        rest = rest[open + len + 1..].to_string();
    }
    Ok(())
}

pub fn factory() -> ExtensionFactory {
    ExtensionFactory::new::<Config>(
        "weft_status",
        Stability::Alpha,
        "a live status page: pipelines, the tail-sampling window, each decision with why and the trace's logs",
        |ctx, cfg| Ok(Arc::new(WeftStatus::new(ctx, cfg))),
    )
}

/// One window the page shows.
pub(crate) struct WindowView {
    pub(crate) id: String,
    pub(crate) core: Arc<TailSampling>,
    pub(crate) ring: Arc<DecisionRing>,
}

/// One reading of every metric.
pub(crate) type Snapshot = Arc<Vec<Sample>>;

/// Counter snapshots, one per second, for rates.
type History = Mutex<VecDeque<(Instant, Snapshot)>>;

/// How far back rates look.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Trace views rendered at once; more wait. A trace view copies and decodes the trace's
/// held items, so this bounds what many concurrent page loads cost.
const DETAIL_RENDERS: usize = 4;

/// What the handlers share.
pub(crate) struct Shared {
    pub(crate) shared: SharedInstances,
    pub(crate) telemetry: Telemetry,
    pub(crate) windows: Vec<WindowView>,
    pub(crate) links: Vec<LinkConfig>,
    pub(crate) max_value_bytes: usize,
    auth: Option<Arc<dyn ServerAuthenticator>>,
    history: History,
    renders: Semaphore,
}

impl Shared {
    /// The newest counter snapshot and one about [`RATE_WINDOW`] older (when there is one).
    pub(crate) fn snapshots(&self) -> (Snapshot, Option<(Duration, Snapshot)>) {
        let history = self.history.lock();
        let Some((newest_at, newest)) = history.back().cloned() else {
            drop(history);
            return (Arc::new(self.telemetry.samples()), None);
        };
        let older = history
            .iter()
            .find(|(at, _)| newest_at.duration_since(*at) <= RATE_WINDOW)
            .filter(|(at, _)| *at < newest_at)
            .map(|(at, s)| (newest_at.duration_since(*at), s.clone()));
        (newest, older)
    }

    fn sample(&self) {
        let now = Instant::now();
        let samples = Arc::new(self.telemetry.samples());
        let mut history = self.history.lock();
        history.push_back((now, samples));
        while history
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW * 2)
        {
            history.pop_front();
        }
    }
}

/// The running extension. The listener is bound in `start`, so `weft validate` never opens
/// sockets.
pub struct WeftStatus {
    ctx: BuildContext,
    endpoint: Endpoint,
    auth: Option<ComponentId>,
    settings: RingSettings,
    links: Vec<LinkConfig>,
    max_value_bytes: usize,
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    local_addr: Mutex<Option<SocketAddr>>,
}

impl WeftStatus {
    pub fn new(ctx: BuildContext, cfg: &Config) -> Self {
        Self {
            endpoint: cfg.endpoint.clone(),
            auth: cfg.auth.as_ref().and_then(|a| a.authenticator.parse().ok()),
            settings: RingSettings {
                size: cfg.decisions.size,
                keep_dropped_detail: cfg.decisions.keep_dropped_detail,
                detail_max_bytes: cfg.decisions.detail_max_bytes.0 as usize,
            },
            links: cfg.links.clone(),
            max_value_bytes: cfg.max_value_bytes.0 as usize,
            ctx,
            stop: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            local_addr: Mutex::new(None),
        }
    }

    /// The bound address once started (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.local_addr.lock()
    }

    /// Every `tail_sampling` window, its ring turned on, in id order.
    fn windows(&self) -> Vec<WindowView> {
        let mut windows: Vec<WindowView> = self
            .ctx
            .shared
            .all::<TailSampling>()
            .into_iter()
            .map(|(id, core)| WindowView {
                id: id.to_string(),
                ring: core.decisions_ring(self.settings.clone()),
                core,
            })
            .collect();
        windows.sort_by(|a, b| a.id.cmp(&b.id));
        windows
    }

    fn shared_state(&self) -> anyhow::Result<Arc<Shared>> {
        let id = self.ctx.id_str();
        let auth = match &self.auth {
            None => None,
            Some(auth_id) => Some(auth::lookup(&self.ctx.shared, auth_id).ok_or_else(|| {
                anyhow::anyhow!(
                    "extensions::{id}: auth: authenticator \"{auth_id}\" is not running: define it under extensions and list it in service::extensions"
                )
            })?),
        };
        Ok(Arc::new(Shared {
            shared: self.ctx.shared.clone(),
            telemetry: self.ctx.telemetry.clone(),
            windows: self.windows(),
            links: self.links.clone(),
            max_value_bytes: self.max_value_bytes,
            auth,
            history: Mutex::new(VecDeque::new()),
            renders: Semaphore::new(DETAIL_RENDERS),
        }))
    }
}

/// The app's files, compiled in.
const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// No inline script or style, nothing from elsewhere, no framing: even a value that slipped
/// through as markup could not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/static/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        // Browsers ask for it; there is none.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/pipelines", get(api::pipelines))
        .route("/api/window", get(api::window))
        .route("/api/decisions", get(api::decisions))
        .route("/api/traces/{trace_id}", get(trace))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn trace(State(s): State<Arc<Shared>>, Path(trace_id): Path<String>) -> Response {
    // Bounded: see DETAIL_RENDERS. The permit is held while the detail is copied and decoded.
    let Ok(_permit) = s.renders.acquire().await else {
        return api::error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let state = s.clone();
    match tokio::task::spawn_blocking(move || api::trace(&state, &trace_id)).await {
        Ok(response) => response,
        Err(e) => api::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("rendering the trace failed: {e}"),
        ),
    }
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let _ = method;
    api::error(
        StatusCode::NOT_FOUND,
        &format!(
            "no page at {:?}: the views are /#/pipelines, /#/window, /#/decisions, /#/trace/<id>; the JSON is under /api/",
            clip_path(uri.path())
        ),
    )
}

fn clip_path(path: &str) -> String {
    path.chars().take(200).collect()
}

/// Every request: GET or HEAD only, authenticated when `auth` is set, answered with the
/// security headers.
async fn guard(
    State(s): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = api::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the status page only reads: use GET",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else if let Some(Err(message)) = s.auth.as_ref().map(|a| a.authenticate(request.headers())) {
        let challenge = s.auth.as_ref().map(|a| a.challenge()).unwrap_or_default();
        let mut r = api::error(StatusCode::UNAUTHORIZED, &message);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    } else {
        next.run(request).await
    };
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The query of `/api/decisions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DecisionsQuery {
    /// `kept` or `dropped`.
    pub(crate) verdict: Option<String>,
    /// The policy that decided.
    pub(crate) policy: Option<String>,
    /// The root span's service.
    pub(crate) service: Option<String>,
    /// A trace id, or the start of one (hex).
    pub(crate) q: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub(crate) limit: Option<usize>,
}

pub(crate) type DecisionsParams = Query<DecisionsQuery>;

#[async_trait]
impl Component for WeftStatus {
    async fn start(&self) -> anyhow::Result<()> {
        let id = self.ctx.id_str();
        let state = self.shared_state()?;
        let addr = self.endpoint.to_socket_string();
        let listener = TcpListener::bind(&addr).await.map_err(|e| {
            anyhow::anyhow!(
                "extensions::{id}: cannot listen on {addr}: {e}; free the port or set a different endpoint"
            )
        })?;
        let local = listener.local_addr()?;
        *self.local_addr.lock() = Some(local);
        let windows: Vec<String> = state.windows.iter().map(|w| w.id.clone()).collect();

        let sampler_state = state.clone();
        let stop = self.stop.clone();
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => sampler_state.sample(),
                    _ = stop.cancelled() => break,
                }
            }
        });

        let app = router(state);
        let stop = self.stop.clone();
        let server_id = id.clone();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(component = %server_id, error = %e, "the status page stopped serving");
            }
        });
        self.tasks.lock().extend([sampler, server]);
        tracing::info!(
            component = %id,
            address = %format!("http://{local}/"),
            windows = %windows.join(", "),
            "status page listening"
        );
        Ok(())
    }

    async fn shutdown(&self, deadline: Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock());
        let deadline = tokio::time::Instant::from_std(deadline);
        for task in tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                anyhow::bail!(
                    "the status page still had open connections at the shutdown deadline"
                );
            }
        }
        Ok(())
    }
}
