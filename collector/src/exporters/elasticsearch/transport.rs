//! HTTP to the cluster: one reqwest client, the configured endpoints in round-robin order
//! with failover, authentication, extra headers and request compression.
//!
//! Each request starts at the next endpoint in turn. An endpoint that refuses the connection
//! (or cannot be reached) or answers 5xx is marked down for [`DOWN_FOR`] and the same request
//! goes to the next one; endpoints marked down are tried last, not never, so a cluster whose
//! every node blipped is still reached as soon as one is back. Every request the exporter
//! sends is idempotent (deterministic document ids, PUT of a template), so sending one again
//! elsewhere is safe.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER,
};
use http::{Method, StatusCode};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::config::{Auth, Compression, Config};
use super::mapping::basic_credentials;
use crate::net::error_chain;

/// How long an endpoint that failed is tried only after the others.
pub const DOWN_FOR: Duration = Duration::from_secs(30);

/// The cluster's answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    /// The endpoint that answered, for messages.
    pub endpoint: String,
    /// `Retry-After`, for a 429 or 503.
    pub retry_after: Option<String>,
}

/// No endpoint gave an answer that could be used: every one refused the connection, or
/// every one that answered said 5xx (the last such answer is kept).
#[derive(Debug)]
pub struct Unreachable {
    pub message: String,
    /// The last 5xx answer, when at least one endpoint answered.
    pub last_answer: Option<Answer>,
}

struct Endpoint {
    /// The URL without a trailing slash; request paths are appended.
    base: String,
    down_until: Mutex<Option<Instant>>,
}

impl Endpoint {
    fn is_down(&self, now: Instant) -> bool {
        self.down_until.lock().is_some_and(|until| until > now)
    }
    fn mark_down(&self) {
        *self.down_until.lock() = Some(Instant::now() + DOWN_FOR);
    }
    fn mark_up(&self) {
        *self.down_until.lock() = None;
    }
}

/// The exporter's connection to its cluster, shared by both signals and the template
/// installer.
pub struct Transport {
    client: reqwest::Client,
    endpoints: Vec<Endpoint>,
    next: AtomicUsize,
    headers: HeaderMap,
    compression: Compression,
}

impl Transport {
    /// Builds the client, reading the TLS files now. Errors name the key at fault.
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        let endpoints = cfg
            .all_endpoints()
            .into_iter()
            .map(|url| Endpoint {
                base: url.trim_end_matches('/').to_string(),
                down_until: Mutex::new(None),
            })
            .collect::<Vec<_>>();
        anyhow::ensure!(!endpoints.is_empty(), "no endpoints configured");
        Ok(Self {
            client: cfg.tls.http_client()?,
            endpoints,
            next: AtomicUsize::new(0),
            headers: header_map(cfg)?,
            compression: cfg.compression,
        })
    }

    /// The order in which one request tries the endpoints: round-robin from the next one,
    /// endpoints marked down moved to the end.
    fn order(&self) -> Vec<usize> {
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = Instant::now();
        let (mut up, down): (Vec<usize>, Vec<usize>) = (0..n)
            .map(|i| (start + i) % n)
            .partition(|&i| !self.endpoints[i].is_down(now));
        up.extend(down);
        up
    }

    /// Sends `body` (compressed here as configured) to `path` on the first endpoint that
    /// answers with anything but 5xx; see the module doc for the failover rules.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Answer, Unreachable> {
        let body = match self.compression {
            Compression::Gzip => Bytes::from(gzip(&body).map_err(|e| Unreachable {
                message: format!("cannot compress the request body: {e}"),
                last_answer: None,
            })?),
            Compression::None => Bytes::from(body),
        };
        let mut failures = Vec::new();
        let mut last_answer = None;
        for i in self.order() {
            let endpoint = &self.endpoints[i];
            let url = format!("{}{path_and_query}", endpoint.base);
            let mut request = self
                .client
                .request(method.clone(), &url)
                .headers(self.headers.clone())
                .header(CONTENT_TYPE, content_type);
            if self.compression == Compression::Gzip {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
            let response = match request.body(body.clone()).send().await {
                Ok(r) => r,
                Err(e) => {
                    endpoint.mark_down();
                    tracing::warn!(
                        endpoint = %endpoint.base, error = %error_chain(&e),
                        "cannot reach Elasticsearch endpoint; trying the next one"
                    );
                    failures.push(format!("{}: {}", endpoint.base, error_chain(&e)));
                    continue;
                }
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    endpoint.mark_down();
                    failures.push(format!(
                        "{}: the answer was cut off: {}",
                        endpoint.base,
                        error_chain(&e)
                    ));
                    continue;
                }
            };
            let answer = Answer {
                status,
                body,
                endpoint: endpoint.base.clone(),
                retry_after,
            };
            if status.is_server_error() {
                endpoint.mark_down();
                tracing::warn!(
                    endpoint = %endpoint.base, status = status.as_u16(),
                    "Elasticsearch endpoint answered with a server error; trying the next one"
                );
                failures.push(format!("{}: HTTP {status}", endpoint.base));
                last_answer = Some(answer);
                continue;
            }
            endpoint.mark_up();
            return Ok(answer);
        }
        Err(Unreachable {
            message: failures.join("; "),
            last_answer,
        })
    }
}

/// `headers` plus the `Authorization` header of the configured method, marked sensitive so
/// the HTTP stack never prints it.
fn header_map(cfg: &Config) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (k, v) in &cfg.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| anyhow::anyhow!("headers::{k}: not a valid HTTP header name"))?;
        let mut value = HeaderValue::from_str(v.expose())
            .map_err(|_| anyhow::anyhow!("headers::{k}: not a valid HTTP header value"))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    let auth = match cfg.auth() {
        Auth::None => None,
        Auth::Basic { user, password } => Some(format!(
            "Basic {}",
            basic_credentials(&user, password.expose())
        )),
        Auth::ApiKey(key) => Some(format!("ApiKey {}", key.expose())),
        Auth::Bearer(token) => Some(format!("Bearer {}", token.expose())),
    };
    if let Some(auth) = auth {
        let mut value = HeaderValue::from_str(&auth).map_err(|_| {
            anyhow::anyhow!("the credentials contain characters an HTTP header cannot carry")
        })?;
        value.set_sensitive(true);
        map.insert(AUTHORIZATION, value);
    }
    Ok(map)
}

fn gzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    // Level 1, as the Collector's elasticsearch exporter: bulk bodies compress well anyway.
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(raw)?;
    enc.finish()
}
