//! The `health_check` extension, as the Collector's healthcheckextension: an HTTP endpoint for
//! liveness and readiness probes and load balancers.
//!
//! `GET <path>` answers 200 while the service runs every pipeline, and 503 while it starts,
//! once it shuts down, and after any component reported a failure (a listener that died).
//! The bodies are the Collector's JSON, so existing probes and scripts read them unchanged:
//! `{"status":"Server available","upSince":"…","uptime":"…"}` and
//! `{"status":"Server not available","reason":"…"}`; `response_body` replaces them with fixed
//! strings, as in the Collector.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, Endpoint};

use crate::component::{BuildContext, Component, ExtensionFactory, Stability};
use crate::health::Health;

/// `extensions::health_check`: the keys of the Collector's healthcheckextension that apply.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where to listen; default `localhost:13133`.
    pub endpoint: Endpoint,
    /// The URL path that answers; default `/`.
    pub path: String,
    /// Fixed bodies instead of the JSON status.
    pub response_body: Option<ResponseBody>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::new("localhost", 13133),
            path: "/".to_string(),
            response_body: None,
        }
    }
}

/// `response_body`: the text answered when healthy and when not.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseBody {
    pub healthy: String,
    pub unhealthy: String,
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if !self.path.starts_with('/') {
            diags.error(
                &path.key("path"),
                format!("must start with \"/\", got {:?}", self.path),
            );
        }
    }
}

pub fn factory() -> ExtensionFactory {
    ExtensionFactory::new::<Config>(
        "health_check",
        Stability::Beta,
        "answers HTTP health probes: 200 while every pipeline runs, 503 otherwise",
        |ctx, cfg| Ok(Arc::new(HealthCheck::new(ctx, cfg))),
    )
}

/// The running extension. The listener is bound in `start`, not when built, so
/// `weft validate` never opens sockets.
pub struct HealthCheck {
    id: String,
    endpoint: Endpoint,
    path: String,
    body: Option<ResponseBody>,
    health: Health,
    stop: CancellationToken,
    server: Mutex<Option<JoinHandle<()>>>,
    local_addr: Mutex<Option<SocketAddr>>,
}

impl HealthCheck {
    pub fn new(ctx: BuildContext, cfg: &Config) -> Self {
        Self {
            id: ctx.id_str(),
            endpoint: cfg.endpoint.clone(),
            path: cfg.path.clone(),
            body: cfg.response_body.clone(),
            health: ctx.health,
            stop: CancellationToken::new(),
            server: Mutex::new(None),
            local_addr: Mutex::new(None),
        }
    }

    /// The bound address once started (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.local_addr.lock()
    }
}

/// What the handler needs. The path is matched exactly by the handler rather than by the
/// router, so no configured path can be mistaken for a route pattern. `up_since` is when the extension started: the service starts its
/// pipelines right after, and never becomes healthy again once it stops, so this is the
/// Collector's "since the status became available" to within the start-up time.
struct Responder {
    path: String,
    health: Health,
    body: Option<ResponseBody>,
    up_since: SystemTime,
    started: Instant,
}

async fn answer(State(r): State<Arc<Responder>>, method: Method, uri: Uri) -> Response {
    if uri.path() != r.path {
        return StatusCode::NOT_FOUND.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let status = r.health.status();
    let code = match status {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    if let Some(body) = &r.body {
        let text = if status.is_ok() {
            body.healthy.clone()
        } else {
            body.unhealthy.clone()
        };
        return (
            code,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response();
    }
    let json = match status {
        Ok(()) => serde_json::json!({
            "status": "Server available",
            "upSince": rfc3339(r.up_since),
            "uptime": go_duration(r.started.elapsed()),
        }),
        Err(reason) => serde_json::json!({
            "status": "Server not available",
            "reason": reason,
        }),
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response()
}

#[async_trait]
impl Component for HealthCheck {
    async fn start(&self) -> anyhow::Result<()> {
        let addr = self.endpoint.to_socket_string();
        let listener = TcpListener::bind(&addr).await.map_err(|e| {
            anyhow::anyhow!(
                "extensions::{}: cannot listen on {addr}: {e}; free the port or set a different endpoint",
                self.id
            )
        })?;
        let local = listener.local_addr()?;
        *self.local_addr.lock() = Some(local);
        let responder = Arc::new(Responder {
            path: self.path.clone(),
            health: self.health.clone(),
            body: self.body.clone(),
            up_since: SystemTime::now(),
            started: Instant::now(),
        });
        let app = Router::new().fallback(answer).with_state(responder);
        let stop = self.stop.clone();
        let id = self.id.clone();
        let handle = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(component = %id, error = %e, "health check endpoint failed; probes will fail");
            }
        });
        *self.server.lock() = Some(handle);
        tracing::info!(component = %self.id, address = %local, path = %self.path, "health check endpoint listening");
        Ok(())
    }

    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        let server = self.server.lock().take();
        if let Some(server) = server {
            let deadline = tokio::time::Instant::from_std(deadline);
            if tokio::time::timeout_at(deadline, server).await.is_err() {
                anyhow::bail!(
                    "health check endpoint still had open connections at the shutdown deadline"
                );
            }
        }
        Ok(())
    }
}

/// A timestamp as Go's `time.Time` writes it in JSON (RFC 3339, UTC, trailing zeros of the
/// fraction trimmed): `2024-05-01T10:00:00.25Z`.
fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    out.push_str(&fraction(since.subsec_nanos().into(), 9));
    out.push('Z');
    out
}

/// `.ddd` for `value` with `digits` decimals, trailing zeros trimmed; empty for 0.
fn fraction(value: u128, digits: usize) -> String {
    if value == 0 {
        return String::new();
    }
    let text = format!("{value:0digits$}");
    format!(".{}", text.trim_end_matches('0'))
}

/// A duration as Go's `time.Duration.String()` writes it: `1h2m3.5s`, `2m0s`, `150ms`.
fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let scaled = |unit: u128, digits: usize, suffix: &str| {
        format!("{}{}{suffix}", nanos / unit, fraction(nanos % unit, digits))
    };
    match nanos {
        0 => "0s".to_string(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => scaled(1_000, 3, "µs"),
        n if n < 1_000_000_000 => scaled(1_000_000, 6, "ms"),
        _ => {
            let secs = d.as_secs();
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            let seconds = format!("{s}{}s", fraction(d.subsec_nanos().into(), 9));
            match (h, m) {
                (0, 0) => seconds,
                (0, m) => format!("{m}m{seconds}"),
                (h, m) => format!("{h}h{m}m{seconds}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_config::{ComponentId, Kind};

    use super::*;
    use crate::telemetry::Telemetry;

    fn extension(cfg: &Config) -> (HealthCheck, Health) {
        let health = Health::default();
        let ctx = BuildContext {
            id: ComponentId::new("health_check", None),
            kind: Kind::Extension,
            telemetry: Telemetry::new(),
            health: health.clone(),
            shared: Default::default(),
        };
        (HealthCheck::new(ctx, cfg), health)
    }

    fn local_config(path: &str) -> Config {
        Config {
            endpoint: Endpoint::new("127.0.0.1", 0),
            path: path.to_string(),
            response_body: None,
        }
    }

    /// A client that ignores proxy settings of the environment.
    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    async fn get(url: &str) -> (u16, serde_json::Value) {
        let response = client()
            .get(url)
            .send()
            .await
            .expect("health check answers");
        let code = response.status().as_u16();
        let text = response.text().await.unwrap();
        (code, serde_json::from_str(&text).expect(&text))
    }

    fn deadline() -> std::time::Instant {
        std::time::Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn answers_200_only_while_the_service_runs() {
        let (ext, health) = extension(&local_config("/health/status"));
        ext.start().await.unwrap();
        let url = format!("http://{}/health/status", ext.local_addr().unwrap());

        // Extensions start before the pipelines: not available yet.
        let (code, body) = get(&url).await;
        assert_eq!(code, 503);
        assert_eq!(body["status"], "Server not available");
        assert!(body["reason"].as_str().unwrap().contains("not running"));

        health.set_running(true);
        let (code, body) = get(&url).await;
        assert_eq!(code, 200);
        assert_eq!(body["status"], "Server available");
        assert!(body["upSince"].as_str().unwrap().ends_with('Z'), "{body}");
        assert!(body["uptime"].as_str().unwrap().ends_with('s'), "{body}");

        health.report_failure("receiver otlp", "grpc listener stopped");
        let (code, body) = get(&url).await;
        assert_eq!(code, 503);
        assert_eq!(body["reason"], "receiver otlp: grpc listener stopped");

        let other = client()
            .get(format!("http://{}/", ext.local_addr().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status().as_u16(), 404);
        let post = client().post(&url).send().await.unwrap();
        assert_eq!(post.status().as_u16(), 405);

        ext.shutdown(deadline()).await.unwrap();
        assert!(
            client().get(&url).send().await.is_err(),
            "stopped after shutdown"
        );
    }

    #[tokio::test]
    async fn custom_response_bodies() {
        let mut cfg = local_config("/");
        cfg.response_body = Some(ResponseBody {
            healthy: "I'm OK".into(),
            unhealthy: "I'm bad".into(),
        });
        let (ext, health) = extension(&cfg);
        ext.start().await.unwrap();
        let url = format!("http://{}/", ext.local_addr().unwrap());
        let r = client().get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(r.text().await.unwrap(), "I'm bad");
        health.set_running(true);
        let r = client().get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.text().await.unwrap(), "I'm OK");
        ext.shutdown(deadline()).await.unwrap();
    }

    #[tokio::test]
    async fn a_busy_port_fails_start_naming_the_endpoint() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let mut cfg = local_config("/");
        cfg.endpoint = Endpoint::new("127.0.0.1", port);
        let (ext, _) = extension(&cfg);
        let err = ext.start().await.unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "extensions::health_check: cannot listen on 127.0.0.1:{port}"
            )),
            "{err}"
        );
    }

    #[test]
    fn config_defaults_and_errors() {
        let c = Config::default();
        assert_eq!(c.endpoint.to_string(), "localhost:13133");
        assert_eq!(c.path, "/");
        let value: serde_yaml::Value = serde_yaml::from_str("path: health").unwrap();
        let mut diags = Diagnostics::new();
        let path = ConfigPath::root().key("extensions").key("health_check");
        weft_config::decode_component::<Config>(&value, &path, &mut diags);
        assert!(
            diags
                .to_string()
                .contains("error: extensions::health_check::path: must start with \"/\""),
            "{diags}"
        );
    }

    #[test]
    fn formats_time_as_go_does() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_714_557_600, 250_000_000);
        assert_eq!(rfc3339(t), "2024-05-01T10:00:00.25Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_millis(150)), "150ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_millis(3500)), "3.5s");
        assert_eq!(go_duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
    }
}
