//! Shared harness for Weft's end-to-end tests: build and run the real `weft` binary on free
//! loopback ports, run the official OpenTelemetry SDK clients, and read what arrived.
//!
//! Every process a test starts is owned by a guard that kills it when the test ends, pass or
//! fail, so no test leaves a server behind.

#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod tier;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The workspace root (the folder holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests sits inside the workspace")
        .to_path_buf()
}

/// The `weft` binary under test: `$WEFT_BIN` when set (`make test` builds it first and sets
/// it), otherwise this workspace's debug build, built once per test process.
pub fn weft_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("WEFT_BIN") {
            return PathBuf::from(bin);
        }
        let root = workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "weft", "--bin", "weft"])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the weft binary failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join("debug").join("weft")
    })
    .clone()
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A `weft` that writes what it receives over OTLP/gRPC on `grpc` to `out/traces.jsonl` and
/// `out/logs.jsonl` (flushed every 100 ms): the backend of the delivery tests, read back
/// with [`file_sink_received`].
pub fn file_sink_config(grpc: u16, metrics: u16, out: &Path) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  file/traces:
    path: {out}/traces.jsonl
    flush_interval: 100ms
  file/logs:
    path: {out}/logs.jsonl
    flush_interval: 100ms
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [file/traces]}}
    logs: {{receivers: [otlp], exporters: [file/logs]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        out = out.display()
    )
}

/// The lines of a file an exporter is writing, without their newlines: only whole ones. A
/// line still being written has no newline yet and is left for the next read (a test that
/// read a file mid-write failed on a line cut 1.9 MB in).
pub fn written_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split_inclusive(|b| *b == b'\n')
        .filter_map(|l| l.strip_suffix(b"\n"))
        .filter(|l| !l.is_empty())
}

/// What a [`file_sink_config`] weft wrote to `out`, in order and with repeats: (trace id,
/// span id) in hex of every span, and "trace id|body" of every log with a string body.
pub fn file_sink_received(out: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let lines = |file: &str| {
        let text = std::fs::read(out.join(file)).unwrap_or_default();
        written_lines(&text).map(<[u8]>::to_vec).collect::<Vec<_>>()
    };
    let mut spans = Vec::new();
    for line in lines("traces.jsonl") {
        let req = weft_proto::otlp_json::decode_traces(&line).expect("OTLP/JSON line");
        for s in req
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
        {
            spans.push((hex::encode(&s.trace_id), hex::encode(&s.span_id)));
        }
    }
    let mut logs = Vec::new();
    for line in lines("logs.jsonl") {
        let req = weft_proto::otlp_json::decode_logs(&line).expect("OTLP/JSON line");
        for r in req
            .resource_logs
            .into_iter()
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
        {
            if let Some(weft_proto::common::v1::any_value::Value::StringValue(b)) =
                r.body.and_then(|b| b.value)
            {
                logs.push(format!("{}|{b}", hex::encode(&r.trace_id)));
            }
        }
    }
    (spans, logs)
}

/// A loopback port nobody listens on right now.
///
/// The kernel may hand the same ephemeral port to two binds in a row once the first listener
/// is closed, so a test asking for three ports could get one twice (seen: the OTLP receiver
/// and the metrics endpoint on one port). Ports handed out by this process are remembered
/// and never given again.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Waits until something accepts connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listened on {addr} within {timeout:?}")
}

/// A running `weft` process, killed when dropped.
pub struct Weft {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub log_path: PathBuf,
}

impl Weft {
    /// Writes `config` to a temp dir and starts `weft --config` on it. `ready` lists the
    /// addresses that must accept connections before this returns.
    pub fn start(config: &str, ready: &[SocketAddr]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, config, ready)
    }

    /// As [`Weft::start`], in a directory the caller prepared (config paths may point into it).
    pub fn start_in(
        dir: tempfile::TempDir,
        config: &str,
        ready: &[SocketAddr],
    ) -> anyhow::Result<Self> {
        let config_path = dir.path().join("weft.yaml");
        std::fs::write(&config_path, config)?;
        let log_path = dir.path().join("weft.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(weft_binary())
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting weft")?;
        let weft = Self {
            child: Some(child),
            dir,
            log_path,
        };
        for addr in ready {
            if let Err(e) = wait_for_port(*addr, Duration::from_secs(30)) {
                let log = weft.log();
                bail!("weft did not come up: {e}\n--- weft log ---\n{log}");
            }
        }
        Ok(weft)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or_default()
    }

    /// What weft wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Peak resident memory of the process so far (VmHWM), in bytes.
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .context("VmHWM in /proc/<pid>/status")?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .context("VmHWM value")?
            .parse()?;
        Ok(kib * 1024)
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status and the log.
    pub fn terminate(mut self) -> anyhow::Result<(std::process::ExitStatus, String)> {
        let mut child = self.child.take().context("weft already stopped")?;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok((status, self.log()));
            }
            if start.elapsed() > Duration::from_secs(40) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("weft did not exit within 40 s of SIGTERM\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Weft {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The Python interpreter of the cached venv holding the official OpenTelemetry SDK
/// (created on first use by `scripts/python-env.sh`).
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let script = workspace_root().join("scripts").join("python-env.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/python-env.sh runs");
        assert!(out.status.success(), "scripts/python-env.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
    })
    .clone()
}

/// Runs `integration-tests/clients/<script>` with the SDK venv's Python.
pub fn run_python_client(script: &str, args: &[&str]) -> anyhow::Result<String> {
    let path = workspace_root()
        .join("integration-tests")
        .join("clients")
        .join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {script}"))?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr)?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{script} failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}");
    }
    Ok(format!("{stdout}{stderr}"))
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout`.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP/1.0 GET on loopback; returns the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::Write;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .context("status line")?
        .parse()?;
    Ok((status, body.to_string()))
}

/// The value of one sample in a Prometheus text exposition, e.g.
/// `otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"}`.
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        l.strip_prefix(series)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// Where the local real backends listen (written by `scripts/services.sh up`).
#[derive(Clone, Debug)]
pub struct Services {
    /// `host:port` of Jaeger's OTLP gRPC receiver.
    pub jaeger_otlp_grpc: String,
    /// Base URL of Jaeger's query API.
    pub jaeger_query_url: String,
    /// Base URL of OpenSearch.
    pub opensearch_url: String,
    /// `host:port` of the Kafka broker.
    pub kafka_brokers: String,
}

/// An HTTP client for the local services' APIs: no proxy, a 30 s timeout.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

impl Services {
    /// Every document (at most 10 000) that `query`, in OpenSearch's query DSL, finds in
    /// `index` (a name or pattern); an error answer fails the test.
    pub async fn search_dsl(
        &self,
        index: &str,
        query: serde_json::Value,
    ) -> Vec<serde_json::Value> {
        let url = format!("{}/{index}/_search", self.opensearch_url);
        let body = serde_json::json!({"query": query, "size": 10000});
        let resp = http_client()
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("opensearch answers");
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.expect("opensearch answers JSON");
        assert!(
            status.is_success(),
            "search {query} on {index}: {status} {body}"
        );
        body["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| h["_source"].clone())
            .collect()
    }

    /// Every document a Lucene query string (`trace_id:"…"`) finds in `index`.
    pub async fn search_lucene(&self, index: &str, query: &str) -> Vec<serde_json::Value> {
        self.search_dsl(index, serde_json::json!({"query_string": {"query": query}}))
            .await
    }

    /// Makes what was indexed into `index` (a name or pattern) searchable now.
    pub async fn refresh(&self, index: &str) {
        let url = format!("{}/{index}/_refresh", self.opensearch_url);
        let resp = http_client()
            .post(&url)
            .send()
            .await
            .expect("opensearch answers");
        assert!(
            resp.status().is_success(),
            "refresh {index}: {}",
            resp.status()
        );
    }
}

/// Starts (once per test process, idempotently) the local Jaeger v2, OpenSearch and Kafka with the
/// project's own script, and reads their addresses. `make test` starts them before the tests
/// and stops them after; run alone, a test leaves them running for the next one
/// (`make services-down` stops them).
pub fn services() -> Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES
        .get_or_init(|| {
            let root = workspace_root();
            let status = Command::new("bash")
                .arg(root.join("scripts").join("services.sh"))
                .arg("up")
                .current_dir(&root)
                .status()
                .expect("scripts/services.sh runs");
            assert!(status.success(), "scripts/services.sh up failed");
            let env = std::fs::read_to_string(root.join("target/services/env"))
                .expect("target/services/env written by services.sh up");
            let get = |key: &str| -> String {
                env.lines()
                    .find_map(|l| l.strip_prefix(&format!("{key}=")))
                    .unwrap_or_else(|| panic!("{key} missing from target/services/env:\n{env}"))
                    .trim()
                    .to_string()
            };
            Services {
                jaeger_otlp_grpc: get("JAEGER_OTLP_GRPC"),
                jaeger_query_url: get("JAEGER_QUERY_URL"),
                opensearch_url: get("OPENSEARCH_URL"),
                kafka_brokers: get("KAFKA_BROKERS"),
            }
        })
        .clone()
}

/// A name no other test run uses (for OpenSearch indices shared by every test).
pub fn unique_name(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // Letters, not digits: a run of digits can pass for a card or phone number, and a test's
    // redaction rules then mask its own index names (13 digits were a Luhn-valid card once).
    let letters = |mut n: u128| {
        let mut out = Vec::new();
        loop {
            out.push(b'a' + (n % 26) as u8);
            n /= 26;
            if n == 0 {
                break;
            }
        }
        String::from_utf8(out).expect("ASCII letters")
    };
    format!(
        "{prefix}-{}-{}",
        letters(u128::from(std::process::id())),
        letters(nanos % 1_000_000_000)
    )
}

impl Weft {
    /// As [`Weft::start_in`], with extra environment variables for the `weft` process (for
    /// `${env:…}` references in `config`), leaving the test process's own environment alone.
    pub fn start_in_with_env(
        dir: tempfile::TempDir,
        config: &str,
        ready: &[SocketAddr],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let config_path = dir.path().join("weft.yaml");
        std::fs::write(&config_path, config)?;
        let log_path = dir.path().join("weft.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(weft_binary());
        command
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().context("starting weft")?;
        let weft = Self {
            child: Some(child),
            dir,
            log_path,
        };
        for addr in ready {
            if let Err(e) = wait_for_port(*addr, Duration::from_secs(30)) {
                let log = weft.log();
                bail!("weft did not come up: {e}\n--- weft log ---\n{log}");
            }
        }
        Ok(weft)
    }
}

/// Runs `weft validate --config <config>` with `env` added; returns the exit code and
/// everything it printed (stdout then stderr).
pub fn weft_validate(config: &str, env: &[(&str, &str)]) -> anyhow::Result<(i32, String)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("weft.yaml");
    std::fs::write(&path, config)?;
    let mut command = Command::new(weft_binary());
    command.arg("validate").arg("--config").arg(&path);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().context("running weft validate")?;
    Ok((
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// The Go shop of `examples/goshop` (zap, zerolog, the OpenTelemetry Go SDK), built once
/// from the Go module proxy by `scripts/goshop.sh` and cached under `~/.cache/weft/bin`.
pub fn goshop() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = workspace_root().join("scripts").join("goshop.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/goshop.sh runs");
        assert!(out.status.success(), "scripts/goshop.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
    })
    .clone()
}

/// A private Prometheus server (built and started by `scripts/services.sh start-prometheus`)
/// scraping one Weft's `/metrics` every second; stopped when dropped.
pub struct Prometheus {
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:port` of its HTTP API.
    pub url: String,
}

impl Prometheus {
    /// Starts one scraping `target` (`host:port`); builds Prometheus first if needed.
    pub fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let out = Command::new("bash")
            .arg(workspace_root().join("scripts/services.sh"))
            .args(["start-prometheus"])
            .arg(dir.path())
            .args(["--scrape", &target.to_string(), "--interval", "1s"])
            .output()
            .context("running scripts/services.sh start-prometheus")?;
        if !out.status.success() {
            bail!(
                "services.sh start-prometheus failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("PROMETHEUS_URL=").map(str::to_string))
            .context("start-prometheus printed no PROMETHEUS_URL")?;
        Ok(Self { dir, url })
    }

    /// `GET /api/v1/query?query=<promql>`: the answer's JSON text.
    pub fn query(&self, promql: &str) -> anyhow::Result<String> {
        let addr: SocketAddr = self
            .url
            .trim_start_matches("http://")
            .parse()
            .context("PROMETHEUS_URL is http://host:port")?;
        let (status, body) =
            http_get(addr, &format!("/api/v1/query?query={}", url_encode(promql)))?;
        if status != 200 {
            bail!("query {promql:?}: HTTP {status}: {body}");
        }
        Ok(body)
    }

    /// Prometheus's own log (start-up and scrape errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(workspace_root().join("scripts/services.sh"))
            .arg("stop-prometheus")
            .arg(self.dir.path())
            .arg("--kill")
            .output();
    }
}

/// Percent-encodes a query string value (everything but unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
