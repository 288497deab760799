//! Overload: a client sends at twice the rate the backend can take, for a burst. Weft, with a
//! `memory_limiter` (100 MiB, spike 20 MiB: the Collector's 20% convention, checked every
//! 100 ms) in front of `batch` and an `otlp` exporter, must
//! - keep its resident memory under the limit + 10% (sampled from /proc every 100 ms, and the
//!   kernel's own high-water mark, VmHWM, at the end);
//! - refuse what it cannot hold with retryable answers only (RESOURCE_EXHAUSTED from the
//!   memory limiter, UNAVAILABLE from a full queue), never a non-retryable one;
//! - once the burst is over, deliver everything it accepted: every span id exactly once.
//!
//! The backend is an OTLP/gRPC server inside the test that works through spans at a fixed
//! rate, one request after the other: each export is answered only when its turn has come
//! and its spans have been "processed" at [`BACKEND_SPANS_PER_SEC`]. That is what a saturated
//! backend does to its clients: it answers slower, so Weft's exporter can only send that fast
//! and the rest piles up in Weft (real backpressure, no refusals from the backend). The
//! sustainable rate through Weft is therefore the backend's; the client offers twice it.
//! It records each span id when it answers OK, so the count is exact. (Jaeger or OpenSearch
//! would also do, but their rate on a shared machine is unknown in advance and counting
//! 30 000 spans in them takes longer than the test.)
//!
//! The client is a Rust OTLP/gRPC client (weft-proto's generated tonic client) behaving like
//! an SDK's batch exporter with a few concurrent exports: it retries every retryable answer
//! after the RetryInfo delay Weft gives, until accepted. The official SDKs cannot be used to
//! check "everything is delivered": they give up on a batch after their export timeout
//! (10 s by default in Python) and drop it, so under a long overload what they send and
//! what they drop is decided by their timers, not by Weft.
//!
//! `check_interval` is 100 ms rather than the Collector's usual 1 s because the spike limit
//! must cover what can arrive between two checks: when the limiter lets data in again, a
//! client with a backlog sends it at loopback speed, ~75 MiB in a second here, and with 1 s
//! checks RSS peaked at ~157 MiB (see docs/RELIABILITY.md).
//!
//! Rates and durations are inputs; nothing here asserts on timing.

// The measured numbers (peak RSS, refusals, delivered) are printed for docs/RELIABILITY.md:
// `cargo test --test overload -- --nocapture`.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use tonic::{Code, Request, Response, Status};
use weft_integration_tests::{eventually, free_port, http_get, metric_value, Weft};
use weft_proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use weft_proto::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use weft_proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

const MIB: u64 = 1024 * 1024;
/// The memory_limiter's `limit_mib`; `spike_limit_mib` is a fifth of it.
const LIMIT_MIB: u64 = 100;
/// Each span carries this many bytes of attribute value, so memory fills with few spans
/// (and little CPU).
const SPAN_PAYLOAD: usize = 8 * 1024;
/// What the backend takes: ~8 MiB/s of spans.
const BACKEND_SPANS_PER_SEC: u64 = 1000;
/// The client offers twice that, for this long.
const BURST: Duration = Duration::from_secs(15);
const SPANS_PER_REQUEST: u64 = 100;
/// Concurrent exports in the client, as an SDK exporter with a few workers.
const CLIENT_WORKERS: usize = 8;
/// How long the client keeps retrying in all before the test fails.
const CLIENT_GIVES_UP: Duration = Duration::from_secs(60);

/// A backend working through spans at a fixed rate, one request after the other.
struct SlowBackend {
    spans_per_sec: u64,
    /// When the backend is free again.
    next_free: tokio::sync::Mutex<tokio::time::Instant>,
    /// Span id -> times it was answered OK.
    received: Mutex<HashMap<u64, u32>>,
    requests: AtomicU64,
}

/// The gRPC service of a [`SlowBackend`] the test keeps reading.
struct Backend(Arc<SlowBackend>);

#[tonic::async_trait]
impl TraceService for Backend {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.export(request.into_inner()).await
    }
}

impl SlowBackend {
    async fn export(
        &self,
        req: ExportTraceServiceRequest,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let ids: Vec<u64> = req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| u64::from_be_bytes(s.span_id[..].try_into().unwrap_or_default()))
            .collect();
        let work = Duration::from_secs_f64(ids.len() as f64 / self.spans_per_sec as f64);
        let done_at = {
            let mut next = self.next_free.lock().await;
            let start = (*next).max(tokio::time::Instant::now());
            *next = start + work;
            *next
        };
        tokio::time::sleep_until(done_at).await;
        // Recorded only when answering: an export the client gave up on (its future is
        // dropped here) is not counted, so a resend is not a false duplicate.
        let mut received = self.received.lock().unwrap();
        for id in ids {
            *received.entry(id).or_default() += 1;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn weft_config(grpc: u16, metrics: u16, backend: u16) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: {LIMIT_MIB}
    spike_limit_mib: {spike}
  batch:
    send_batch_size: 64
    send_batch_max_size: 64
    timeout: 200ms
exporters:
  otlp:
    endpoint: 127.0.0.1:{backend}
    tls:
      insecure: true
    compression: none
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 0s
    sending_queue:
      num_consumers: 4
      queue_size: 1000
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        spike = LIMIT_MIB / 5
    )
}

/// Request `n` of the client: spans `n * SPANS_PER_REQUEST + 1 ..`, span id = that number.
fn request(n: u64, payload: &str) -> ExportTraceServiceRequest {
    let spans = (0..SPANS_PER_REQUEST)
        .map(|i| {
            let id = n * SPANS_PER_REQUEST + i + 1;
            Span {
                trace_id: [id.to_be_bytes(), 7u64.to_be_bytes()].concat(),
                span_id: id.to_be_bytes().to_vec(),
                name: "checkout".to_string(),
                kind: 2,
                start_time_unix_nano: 1_700_000_000_000_000_000 + id,
                end_time_unix_nano: 1_700_000_000_001_000_000 + id,
                attributes: vec![KeyValue {
                    key: "payload".to_string(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(payload.to_string())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".to_string(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("overload".to_string())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "weft.test.overload".to_string(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `google.rpc.RetryInfo` and `google.protobuf.Duration`, to read the delay Weft asks for.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}
#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The RetryInfo delay in a gRPC status's details, if any.
fn retry_delay(status: &Status) -> Option<Duration> {
    let details = weft_proto::status::Status::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .filter(|a| a.type_url == "type.googleapis.com/google.rpc.RetryInfo")
        .find_map(|a| RetryInfo::decode(&a.value[..]).ok()?.retry_delay)
        .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
}

/// What the client saw.
#[derive(Default)]
struct ClientStats {
    accepted_requests: AtomicU64,
    /// Refusals by gRPC code.
    refused: Mutex<HashMap<String, u64>>,
    /// Refusals that came without a RetryInfo delay.
    refused_without_delay: AtomicU64,
    /// Non-retryable answers, with their messages.
    errors: Mutex<Vec<String>>,
    /// Span ids the client was told were accepted.
    accepted_ids: Mutex<Vec<u64>>,
}

/// The OTLP spec's retryable gRPC codes (RESOURCE_EXHAUSTED only with a RetryInfo).
fn retryable(status: &Status) -> bool {
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_delay(status).is_some(),
        _ => false,
    }
}

/// Samples VmRSS of `pid` every 100 ms until `stop`; returns (max, samples).
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let (mut max, mut samples) = (0u64, 0u64);
        while !stop.load(Ordering::Relaxed) {
            if let Some(rss) = proc_status_kib(pid, "VmRSS:") {
                max = max.max(rss * 1024);
                samples += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (max, samples)
    })
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Sends requests 0..total, request n due at `start + n * interval`, from `CLIENT_WORKERS`
/// concurrent exports; each retries after the delay Weft asks for until accepted (or a
/// non-retryable answer).
async fn run_client(
    endpoint: String,
    total: u64,
    interval: Duration,
    stats: Arc<ClientStats>,
) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint)?
        .connect()
        .await?;
    let payload: Arc<str> = "x".repeat(SPAN_PAYLOAD).into();
    let next = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENT_WORKERS {
        let mut client = TraceServiceClient::new(channel.clone())
            .max_decoding_message_size(16 * MIB as usize)
            .max_encoding_message_size(16 * MIB as usize);
        let (next, stats, payload) = (next.clone(), stats.clone(), payload.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                tokio::time::sleep_until(start + interval * n as u32).await;
                let req = request(n, &payload);
                let mut backoff = Duration::from_millis(500);
                loop {
                    match client.export(req.clone()).await {
                        Ok(_) => {
                            stats.accepted_requests.fetch_add(1, Ordering::Relaxed);
                            stats.accepted_ids.lock().unwrap().extend(
                                (0..SPANS_PER_REQUEST).map(|i| n * SPANS_PER_REQUEST + i + 1),
                            );
                            break;
                        }
                        Err(status) if retryable(&status) => {
                            *stats
                                .refused
                                .lock()
                                .unwrap()
                                .entry(format!("{:?}", status.code()))
                                .or_default() += 1;
                            let delay = match retry_delay(&status) {
                                Some(d) => d,
                                None => {
                                    stats.refused_without_delay.fetch_add(1, Ordering::Relaxed);
                                    backoff = (backoff * 2).min(Duration::from_secs(5));
                                    backoff
                                }
                            };
                            tokio::time::sleep(delay).await;
                        }
                        Err(status) => {
                            stats.errors.lock().unwrap().push(format!(
                                "{:?}: {}",
                                status.code(),
                                status.message()
                            ));
                            break;
                        }
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    Ok(())
}

#[test]
fn twice_the_sustainable_rate_stays_under_the_memory_limit_and_loses_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let backend_port = free_port();
    let backend = Arc::new(SlowBackend {
        spans_per_sec: BACKEND_SPANS_PER_SEC,
        next_free: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        received: Mutex::new(HashMap::new()),
        requests: AtomicU64::new(0),
    });
    let backend_addr = SocketAddr::from(([127, 0, 0, 1], backend_port));
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(Backend(backend.clone()))
                    .max_decoding_message_size(64 * MIB as usize),
            )
            .serve(backend_addr),
    );

    let (grpc, metrics) = (free_port(), free_port());
    let weft = Weft::start(
        &weft_config(grpc, metrics, backend_port),
        &[
            SocketAddr::from(([127, 0, 0, 1], grpc)),
            SocketAddr::from(([127, 0, 0, 1], metrics)),
        ],
    )
    .unwrap();
    let rss_before = proc_status_kib(weft.pid(), "VmRSS:").unwrap_or(0) * 1024;

    // 2x the backend's rate: a request of SPANS_PER_REQUEST spans every `interval`.
    let offered = 2 * BACKEND_SPANS_PER_SEC;
    let interval = Duration::from_secs_f64(SPANS_PER_REQUEST as f64 / offered as f64);
    let total = offered * BURST.as_secs() / SPANS_PER_REQUEST;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(weft.pid(), stop.clone());
    let stats = Arc::new(ClientStats::default());
    let started = Instant::now();
    // Not a timing assertion: a bound so that a Weft that never accepts again fails the test
    // instead of hanging it.
    let client = runtime.block_on(async {
        tokio::time::timeout(
            CLIENT_GIVES_UP,
            run_client(
                format!("http://127.0.0.1:{grpc}"),
                total,
                interval,
                stats.clone(),
            ),
        )
        .await
    });
    let rss_now = proc_status_kib(weft.pid(), "VmRSS:").unwrap_or(0) / 1024;
    match client {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("client: {e:#}\n{}", weft.log()),
        Err(_) => panic!(
            "Weft still refused the client {CLIENT_GIVES_UP:?} after the burst began: {} of {total} requests accepted, refusals {:?}, RSS now {rss_now} MiB\n{}",
            stats.accepted_requests.load(Ordering::Relaxed),
            stats.refused.lock().unwrap(),
            weft.log()
        ),
    }
    let client_done = started.elapsed();

    // Everything accepted reaches the backend.
    let accepted: Vec<u64> = stats.accepted_ids.lock().unwrap().clone();
    let received_count = || backend.received.lock().unwrap().len();
    let all_in = eventually(Duration::from_secs(60), || {
        (received_count() >= accepted.len()).then_some(())
    });
    let delivered_after = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (sampled_peak, samples) = sampler.join().unwrap();
    let hwm = weft.peak_rss_bytes().unwrap();
    let (_, exposition) =
        http_get(SocketAddr::from(([127, 0, 0, 1], metrics)), "/metrics").unwrap_or_default();
    let limiter_refused = metric_value(
        &exposition,
        "otelcol_processor_refused_spans_total{processor=\"memory_limiter\"}",
    )
    .unwrap_or(-1.0);
    // Let anything still in flight (a duplicate would be) arrive before counting.
    std::thread::sleep(Duration::from_millis(500));
    let received = backend.received.lock().unwrap().clone();
    let refused = stats.refused.lock().unwrap().clone();
    let errors = stats.errors.lock().unwrap().clone();
    let refusals: u64 = refused.values().sum();
    println!(
        "overload: backend {BACKEND_SPANS_PER_SEC} spans/s, client offered {offered} spans/s \
         ({} KiB/span) for {BURST:?}: {total} requests, {} spans",
        SPAN_PAYLOAD / 1024,
        total * SPANS_PER_REQUEST
    );
    println!(
        "overload: client done after {client_done:.1?} ({} accepted, {refusals} refusals {refused:?}, \
         {} without a delay, {} errors); all delivered after {delivered_after:.1?}; \
         memory_limiter refused {limiter_refused} spans",
        stats.accepted_requests.load(Ordering::Relaxed),
        stats.refused_without_delay.load(Ordering::Relaxed),
        errors.len()
    );
    println!(
        "overload: RSS before {} MiB, sampled peak {} MiB ({samples} samples), VmHWM {} MiB; limit {LIMIT_MIB} MiB (+10% = {:.0} MiB)",
        rss_before / MIB,
        sampled_peak / MIB,
        hwm / MIB,
        LIMIT_MIB as f64 * 1.1
    );
    println!(
        "overload: backend received {} distinct spans in {} requests",
        received.len(),
        backend.requests.load(Ordering::Relaxed)
    );

    let bound = LIMIT_MIB * MIB * 11 / 10;
    assert!(errors.is_empty(), "only retryable answers: {errors:?}");
    assert_eq!(
        accepted.len() as u64,
        total * SPANS_PER_REQUEST,
        "the client got every request accepted in the end"
    );
    assert!(
        refusals > 0,
        "at twice the sustainable rate Weft refuses some requests: {refused:?}\n{}",
        weft.log()
    );
    assert!(
        refused.get("ResourceExhausted").copied().unwrap_or(0) > 0,
        "the memory limiter engaged (else the RSS bound says nothing): {refused:?}\n{}",
        weft.log()
    );
    assert_eq!(
        stats.refused_without_delay.load(Ordering::Relaxed),
        0,
        "every refusal says when to retry (RetryInfo)"
    );
    assert_eq!(
        limiter_refused,
        (refused.get("ResourceExhausted").copied().unwrap_or(0) * SPANS_PER_REQUEST) as f64,
        "every span the memory limiter refused is counted in otelcol_processor_refused_spans"
    );
    assert!(
        hwm <= bound && sampled_peak <= bound,
        "peak RSS (VmHWM {} MiB, sampled {} MiB) within the limit + 10% ({} MiB)\n{}",
        hwm / MIB,
        sampled_peak / MIB,
        bound / MIB,
        weft.log()
    );
    assert!(
        all_in.is_some(),
        "everything accepted arrives: {} of {} spans\n{}",
        received.len(),
        accepted.len(),
        weft.log()
    );
    let missing: Vec<_> = accepted
        .iter()
        .filter(|id| !received.contains_key(id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "accepted but not delivered: {missing:?}"
    );
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(twice.is_empty(), "each span exactly once: {twice:?}");
    assert_eq!(
        received.len(),
        accepted.len(),
        "nothing the client was not told was accepted"
    );
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");
}
