//! `weft-loadgen`: sends realistic OTLP traces (and their logs) over gRPC at a fixed rate or as
//! fast as they are accepted, and prints a JSON summary of what was accepted and refused.
//!
//! Requests are built once, up front, as a pool of encoded templates; sending one is a memcpy,
//! a patch of its trace ids (see `harness.rs`: unique key, send time, span and log counts)
//! and a gRPC call, so the generator's own CPU stays small beside the process under test.
//!
//! **Trace completeness**: every request carries whole traces — all spans of each of its
//! traces — grouped by service into `ResourceSpans`, as a gateway in front of agents sees
//! them. With `--logs`, each traces request is followed, on the same stream, by a logs request
//! carrying those traces' log records (1–3 per span, with trace and span ids).
//!
//! `--payload metrics` and `--payload json-logs` send OTLP metrics or log records with JSON
//! bodies instead (see `loadgen_payloads.rs`); `--rate` then counts data points or records.
//!
//! Refused requests (UNAVAILABLE, RESOURCE_EXHAUSTED) are counted, never retried: a
//! benchmark run that saw any refusal has failed, and retries would only blur the number.

#![allow(clippy::print_stdout)]

mod harness;
#[path = "loadgen_payloads.rs"]
mod payloads;

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::{BufMut, Bytes};
use clap::Parser;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use weft_proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use weft_proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use weft_proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status as SpanStatus};

#[derive(Parser, Debug)]
#[command(
    name = "weft-loadgen",
    about = "OTLP/gRPC load generator for bench-compare"
)]
struct Args {
    /// The OTLP gRPC endpoint under test.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// What to send: `traces` (with `--logs`, their logs too), `metrics` (SDK-shaped
    /// collections; the item is a data point) or `json-logs` (log records whose bodies are
    /// zap/zerolog JSON lines carrying the trace id; the item is a record).
    #[arg(long, value_enum, default_value_t = Payload::Traces)]
    payload: Payload,
    /// Target items (spans, data points or records) per second; 0 sends as fast as requests
    /// are accepted.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds to send for.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Requests in flight at once (each stream sends its next request when the last is answered).
    #[arg(long, default_value_t = 16)]
    streams: usize,
    /// HTTP/2 connections the streams are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Also send each trace's logs (1–3 per span), right after its spans.
    #[arg(long)]
    logs: bool,
    /// Share of traces with a span in status ERROR.
    #[arg(long, default_value_t = 0.05)]
    error_share: f64,
    /// Share of traces whose root lasts `slow_ms`..2×`slow_ms`.
    #[arg(long, default_value_t = 0.05)]
    slow_share: f64,
    /// Duration of a slow trace's root, in ms (normal traces last 5–300 ms).
    #[arg(long, default_value_t = 2000)]
    slow_ms: u64,
    /// Whole traces per request.
    #[arg(long, default_value_t = 20)]
    traces_per_request: usize,
    /// Distinct pre-built requests, sent round-robin.
    #[arg(long, default_value_t = 64)]
    templates: usize,
    /// Seed of the payload generator (same seed, same payloads).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Per-request deadline in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Print a description of the payload pool and exit.
    #[arg(long)]
    describe: bool,
}

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// The kind of request a template's main body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Payload {
    Traces,
    Metrics,
    JsonLogs,
}

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

/// A small deterministic PRNG (xorshift64*): same seed, same payloads, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(harness::mix(seed) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

const SERVICES: [(&str, &str); 8] = [
    ("frontend", "nodejs"),
    ("checkout", "java"),
    ("payments", "go"),
    ("inventory", "java"),
    ("shipping", "rust"),
    ("auth", "go"),
    ("search", "python"),
    ("recommendation", "python"),
];

fn s(v: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn resource(service: usize) -> Resource {
    let (name, lang) = SERVICES[service];
    Resource {
        attributes: vec![
            kv("service.name", s(name)),
            kv("service.namespace", s("shop")),
            kv("service.version", s(format!("2.{service}.7"))),
            kv("deployment.environment.name", s("production")),
            kv("host.name", s(format!("node-{}", 10 + service))),
            kv("k8s.namespace.name", s("shop")),
            kv("k8s.pod.name", s(format!("{name}-7d9f8b6c4-x{service}q2z"))),
            kv("telemetry.sdk.language", s(lang)),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.version", s("1.38.0")),
        ],
        ..Default::default()
    }
}

/// One export request of `by_service`'s records: per service its resource and one logs scope.
fn logs_request(by_service: BTreeMap<usize, Vec<LogRecord>>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: by_service
            .into_iter()
            .map(|(svc, log_records)| ResourceLogs {
                resource: Some(resource(svc)),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: format!("io.opentelemetry.{}.logs", SERVICES[svc].1),
                        ..Default::default()
                    }),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// The `i`-th candidate attribute of a span; spans take the first 10–20 (the bench's own two
/// counts included), so their sets vary like real instrumentation's do.
fn span_attribute(i: usize, rng: &mut Rng, trace: u64, error: bool) -> KeyValue {
    let order = trace % 100_000;
    match i {
        0 => kv("http.request.method", s(*rng.pick(&["GET", "POST", "PUT"]))),
        1 => kv(
            "http.route",
            s(*rng.pick(&["/api/orders/{id}", "/api/cart", "/api/pay"])),
        ),
        2 => kv(
            "http.response.status_code",
            any_value::Value::IntValue(if error { 500 } else { 200 }),
        ),
        3 => kv(
            "url.full",
            s(format!("https://shop.example.com/api/orders/{order}")),
        ),
        4 => kv("server.address", s("shop.example.com")),
        5 => kv("server.port", any_value::Value::IntValue(443)),
        6 => kv("network.protocol.version", s("2")),
        7 => kv(
            "user_agent.original",
            s("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
        ),
        8 => kv(
            "client.address",
            s(format!("10.1.{}.{}", rng.range(0, 255), rng.range(1, 254))),
        ),
        9 => kv("biz_order_id", s(format!("ord-{order:08}"))),
        10 => kv("biz_user_id", s(format!("u-{}", rng.range(1, 50_000)))),
        11 => kv(
            "db.system.name",
            s(*rng.pick(&["postgresql", "redis", "mongodb"])),
        ),
        12 => kv(
            "db.query.text",
            s("SELECT id, status, total FROM orders WHERE id = $1 AND tenant = $2"),
        ),
        13 => kv(
            "db.response.returned_rows",
            any_value::Value::IntValue(rng.range(0, 40) as i64),
        ),
        14 => kv("retry", any_value::Value::BoolValue(rng.chance(0.05))),
        15 => kv("cache.hit_ratio", any_value::Value::DoubleValue(0.87)),
        16 => kv("thread.name", s(format!("worker-{}", rng.range(1, 32)))),
        17 => kv("code.function.name", s("OrderController.handle")),
        _ => kv(&format!("custom.tag.{}", i - 18), s("value")),
    }
}

/// One generated trace: spans and logs tagged with the index of their service.
struct GenTrace {
    spans: Vec<(usize, Span)>,
    logs: Vec<(usize, LogRecord)>,
    keep: bool,
}

fn gen_trace(rng: &mut Rng, k: usize, args: &Args, base_ns: u64, sentinel: [u8; 16]) -> GenTrace {
    let n_spans = rng.range(5, 20) as usize;
    let n_services = rng.range(3, 5) as usize;
    let mut services: Vec<usize> = Vec::with_capacity(n_services);
    while services.len() < n_services {
        let svc = rng.range(0, SERVICES.len() as u64 - 1) as usize;
        if !services.contains(&svc) {
            services.push(svc);
        }
    }
    let error = rng.chance(args.error_share);
    let slow = rng.chance(args.slow_share);
    let error_span = if error {
        Some(rng.range(0, n_spans as u64 - 1) as usize)
    } else {
        None
    };
    let trace_no = rng.next();

    let root_start = base_ns + k as u64 * 1_000_000 + rng.range(0, 999_999);
    let root_dur_ns = if slow {
        rng.range(args.slow_ms, args.slow_ms * 2) * 1_000_000
    } else {
        rng.range(5, 300) * 1_000_000
    };

    let mut times: Vec<(u64, u64)> = Vec::with_capacity(n_spans);
    let mut spans: Vec<(usize, Span)> = Vec::with_capacity(n_spans);
    let mut logs = Vec::new();
    // Logs draw from their own generator, so the spans are the same with and without --logs.
    let mut lrng = Rng::new(trace_no);
    let mut n_logs_total = 0usize;
    let mut logs_per_span = Vec::with_capacity(n_spans);
    if args.logs {
        for _ in 0..n_spans {
            let n = lrng.range(1, 3) as usize;
            logs_per_span.push(n);
            n_logs_total += n;
        }
    }
    for i in 0..n_spans {
        let (parent, service) = if i == 0 {
            (None, services[0])
        } else {
            let p = rng.range(0, i as u64 - 1) as usize;
            // The first spans visit every chosen service once; the rest stay with their
            // parent's service or call another one.
            let svc = if i < n_services {
                services[i]
            } else if rng.chance(0.5) {
                spans[p].0
            } else {
                *rng.pick(&services)
            };
            (Some(p), svc)
        };
        let (start, end) = match parent {
            None => (root_start, root_start + root_dur_ns),
            Some(p) => {
                let (ps, pe) = times[p];
                let dur = pe - ps;
                let start = ps + dur / 10 + rng.range(0, dur / 3);
                let end = start + (pe - start) * rng.range(10, 90) / 100;
                (start, end.max(start + 1_000))
            }
        };
        times.push((start, end));
        let is_error = error_span == Some(i);
        let n_attrs = rng.range(10, 20) as usize;
        let mut attributes = Vec::with_capacity(n_attrs);
        attributes.push(kv(
            "bench.trace_span_count",
            any_value::Value::IntValue(n_spans as i64),
        ));
        attributes.push(kv(
            "bench.trace_log_count",
            any_value::Value::IntValue(n_logs_total as i64),
        ));
        for a in 0..n_attrs - 2 {
            attributes.push(span_attribute(a, rng, trace_no, is_error));
        }
        let span_id = rng.next().max(1).to_be_bytes().to_vec();
        let span = Span {
            trace_id: sentinel.to_vec(),
            span_id: span_id.clone(),
            parent_span_id: parent
                .map(|p| spans[p].1.span_id.clone())
                .unwrap_or_default(),
            name: match (i, service % 3) {
                (0, _) => "GET /api/orders/{id}".to_string(),
                (_, 0) => format!("{} /api/internal/{}", "POST", SERVICES[service].0),
                (_, 1) => "SELECT orders".to_string(),
                _ => format!("{}.Handle", SERVICES[service].0),
            },
            kind: if i == 0 {
                span::SpanKind::Server as i32
            } else {
                *rng.pick(&[
                    span::SpanKind::Client as i32,
                    span::SpanKind::Server as i32,
                    span::SpanKind::Internal as i32,
                ])
            },
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            status: Some(SpanStatus {
                code: if is_error {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
                message: if is_error {
                    "upstream timed out".to_string()
                } else {
                    String::new()
                },
            }),
            ..Default::default()
        };
        if args.logs {
            for l in 0..logs_per_span[i] {
                let (severity, text) = if is_error && l == 0 {
                    (17, "ERROR")
                } else if lrng.chance(0.1) {
                    (13, "WARN")
                } else {
                    (9, "INFO")
                };
                let t = start + (end - start) * (l as u64 + 1) / 4;
                logs.push((
                    service,
                    LogRecord {
                        time_unix_nano: t,
                        observed_time_unix_nano: t + 50_000,
                        severity_number: severity,
                        severity_text: text.to_string(),
                        body: Some(AnyValue {
                            value: Some(s(format!(
                                "{} order ord-{:08} step {l} in {} ms",
                                SERVICES[service].0,
                                trace_no % 100_000,
                                (end - start) / 1_000_000
                            ))),
                        }),
                        attributes: vec![
                            kv("log.logger", s(format!("shop.{}", SERVICES[service].0))),
                            kv("thread.name", s(format!("worker-{}", lrng.range(1, 32)))),
                            kv("code.function.name", s("OrderController.handle")),
                            kv("biz_order_id", s(format!("ord-{:08}", trace_no % 100_000))),
                        ],
                        trace_id: sentinel.to_vec(),
                        span_id: span_id.clone(),
                        flags: 1,
                        ..Default::default()
                    },
                ));
            }
        }
        spans.push((service, span));
    }
    GenTrace {
        spans,
        logs,
        keep: error || slow,
    }
}

/// The placeholder trace id of trace `k` of a template: an 8-byte magic, `k`, a 4-byte magic.
/// It cannot collide with other encoded content, so its offsets are found by a plain scan.
fn sentinel(k: usize) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&SENTINEL_HEAD);
    id[8..12].copy_from_slice(&(k as u32).to_be_bytes());
    id[12..].copy_from_slice(&SENTINEL_TAIL);
    id
}
const SENTINEL_HEAD: [u8; 8] = [0xA5, 0x5A, 0xC3, 0x3C, 0x0F, 0xF0, 0x96, 0x69];
const SENTINEL_TAIL: [u8; 4] = [0x71, 0x17, 0xE2, 0x2E];

/// Offsets of every trace id in `buf`, per trace index.
fn find_sentinels(buf: &[u8], traces: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); traces];
    let mut i = 0;
    while i + 16 <= buf.len() {
        if buf[i..i + 8] == SENTINEL_HEAD && buf[i + 12..i + 16] == SENTINEL_TAIL {
            let mut k = [0u8; 4];
            k.copy_from_slice(&buf[i + 8..i + 12]);
            out[u32::from_be_bytes(k) as usize].push(i);
            i += 16;
        } else {
            i += 1;
        }
    }
    out
}

/// One pre-built request (and its logs request), with where to patch its trace ids.
struct Template {
    payload: Payload,
    /// The main request: traces, or metrics / JSON logs per `payload`.
    traces: Vec<u8>,
    logs: Option<Vec<u8>>,
    trace_offsets: Vec<Vec<usize>>,
    log_offsets: Vec<Vec<usize>>,
    /// Per trace: span count, log count.
    per_trace: Vec<(u8, u8)>,
    /// Items in the main request: spans, data points or records.
    spans: u64,
    logs_n: u64,
    kept_traces: u64,
    kept_spans: u64,
    kept_logs: u64,
}

fn build_template(rng: &mut Rng, args: &Args, base_ns: u64) -> Template {
    let mut resource_spans: BTreeMap<usize, Vec<Span>> = BTreeMap::new();
    let mut resource_logs: BTreeMap<usize, Vec<LogRecord>> = BTreeMap::new();
    let mut per_trace = Vec::with_capacity(args.traces_per_request);
    let (mut spans, mut logs_n, mut kept_traces, mut kept_spans, mut kept_logs) = (0, 0, 0, 0, 0);
    for k in 0..args.traces_per_request {
        let t = gen_trace(rng, k, args, base_ns, sentinel(k));
        let (ns, nl) = (t.spans.len() as u64, t.logs.len() as u64);
        per_trace.push((ns as u8, nl as u8));
        spans += ns;
        logs_n += nl;
        if t.keep {
            kept_traces += 1;
            kept_spans += ns;
            kept_logs += nl;
        }
        for (svc, sp) in t.spans {
            resource_spans.entry(svc).or_default().push(sp);
        }
        for (svc, lr) in t.logs {
            resource_logs.entry(svc).or_default().push(lr);
        }
    }
    let traces_req = ExportTraceServiceRequest {
        resource_spans: resource_spans
            .into_iter()
            .map(|(svc, spans)| ResourceSpans {
                resource: Some(resource(svc)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: format!("io.opentelemetry.{}", SERVICES[svc].1),
                        version: "2.10.0".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect(),
    };
    let traces = traces_req.encode_to_vec();
    let trace_offsets = find_sentinels(&traces, args.traces_per_request);
    let (logs, log_offsets) = if args.logs {
        let bytes = logs_request(resource_logs).encode_to_vec();
        let offsets = find_sentinels(&bytes, args.traces_per_request);
        (Some(bytes), offsets)
    } else {
        (None, Vec::new())
    };
    Template {
        payload: Payload::Traces,
        traces,
        logs,
        trace_offsets,
        log_offsets,
        per_trace,
        spans,
        logs_n,
        kept_traces,
        kept_spans,
        kept_logs,
    }
}

/// A copy of `template` with trace `k`'s placeholder replaced by `ids[k]` everywhere.
fn patch(template: &[u8], offsets: &[Vec<usize>], ids: &[[u8; 16]]) -> Bytes {
    let mut buf = template.to_vec();
    for (k, offs) in offsets.iter().enumerate() {
        for &o in offs {
            buf[o..o + 16].copy_from_slice(&ids[k]);
        }
    }
    Bytes::from(buf)
}

// ---------------------------------------------------------------------------------------------
// gRPC: already-encoded requests in, prost responses out
// ---------------------------------------------------------------------------------------------

/// A codec that sends pre-encoded protobuf bytes as they are and decodes the response `R`.
struct RawCodec<R>(PhantomData<R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

struct MessageDecoder<R>(PhantomData<R>);

impl<R: Message + Default> Decoder for MessageDecoder<R> {
    type Item = R;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("decoding the response: {e}")))
    }
}

impl<R: Message + Default + Send + 'static> Codec for RawCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = MessageDecoder<R>;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> MessageDecoder<R> {
        MessageDecoder(PhantomData)
    }
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Counts {
    requests_ok: u64,
    requests_refused: u64,
    requests_failed: u64,
    spans_accepted: u64,
    spans_refused: u64,
    logs_accepted: u64,
    logs_refused: u64,
    traces_accepted: u64,
    kept_traces: u64,
    kept_spans: u64,
    kept_logs: u64,
    errors: BTreeMap<String, u64>,
    rtt_us: Vec<u32>,
    max_late_us: u64,
}

impl Counts {
    fn merge(&mut self, o: Counts) {
        self.requests_ok += o.requests_ok;
        self.requests_refused += o.requests_refused;
        self.requests_failed += o.requests_failed;
        self.spans_accepted += o.spans_accepted;
        self.spans_refused += o.spans_refused;
        self.logs_accepted += o.logs_accepted;
        self.logs_refused += o.logs_refused;
        self.traces_accepted += o.traces_accepted;
        self.kept_traces += o.kept_traces;
        self.kept_spans += o.kept_spans;
        self.kept_logs += o.kept_logs;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.rtt_us.extend(o.rtt_us);
        self.max_late_us = self.max_late_us.max(o.max_late_us);
    }

    /// Books a failed call; true when it was a refusal (retryable back-pressure).
    fn failed(&mut self, status: &Status) -> bool {
        let refused = matches!(status.code(), Code::Unavailable | Code::ResourceExhausted);
        if refused {
            self.requests_refused += 1;
        } else {
            self.requests_failed += 1;
        }
        *self
            .errors
            .entry(format!("{:?}", status.code()))
            .or_default() += 1;
        refused
    }
}

/// The send schedule shared by all streams: which template goes next and when it is due.
struct Schedule {
    next: usize,
    spans: f64,
}

struct Shared {
    templates: Vec<Template>,
    schedule: Mutex<Schedule>,
    seq: AtomicU64,
    start: Instant,
    end: Instant,
    rate: f64,
}

async fn stream(shared: Arc<Shared>, channel: Channel) -> Counts {
    let mut counts = Counts::default();
    let mut grpc = tonic::client::Grpc::new(channel);
    let logs_path = PathAndQuery::from_static(LOGS_PATH);
    let mut ids: Vec<[u8; 16]> = Vec::new();
    loop {
        let (i, due) = {
            let mut s = shared.schedule.lock().expect("schedule lock");
            let i = s.next % shared.templates.len();
            s.next += 1;
            let due = if shared.rate > 0.0 {
                shared.start + Duration::from_secs_f64(s.spans / shared.rate)
            } else {
                shared.start
            };
            s.spans += shared.templates[i].spans as f64;
            (i, due)
        };
        if due >= shared.end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        if now >= shared.end {
            break;
        }
        if shared.rate > 0.0 {
            counts.max_late_us = counts
                .max_late_us
                .max(now.duration_since(due).as_micros() as u64);
        }
        let t = &shared.templates[i];
        let first = shared
            .seq
            .fetch_add(t.per_trace.len() as u64, Ordering::Relaxed);
        let sent_us = harness::now_micros48();
        ids.clear();
        ids.extend(
            t.per_trace
                .iter()
                .enumerate()
                .map(|(k, &(ns, nl))| harness::make_trace_id(first + k as u64, sent_us, ns, nl)),
        );

        let body = match t.payload {
            Payload::JsonLogs => payloads::patch_hex(&t.traces, &t.trace_offsets, &ids),
            Payload::Traces | Payload::Metrics => patch(&t.traces, &t.trace_offsets, &ids),
        };
        if let Err(e) = grpc.ready().await {
            counts.requests_failed += 1;
            *counts.errors.entry(format!("transport: {e}")).or_default() += 1;
            continue;
        }
        let sent = Instant::now();
        let result = export(&mut grpc, t.payload, body).await;
        counts
            .rtt_us
            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        match result {
            Ok(rejected) => {
                counts.requests_ok += 1;
                counts.spans_refused += rejected;
                counts.spans_accepted += t.spans - rejected.min(t.spans);
                if rejected == 0 {
                    counts.traces_accepted += t.per_trace.len() as u64;
                    counts.kept_traces += t.kept_traces;
                    counts.kept_spans += t.kept_spans;
                }
            }
            Err(status) => {
                counts.failed(&status);
                counts.spans_refused += t.spans;
            }
        }

        if let Some(logs) = &t.logs {
            let body = patch(logs, &t.log_offsets, &ids);
            if let Err(e) = grpc.ready().await {
                counts.requests_failed += 1;
                *counts.errors.entry(format!("transport: {e}")).or_default() += 1;
                continue;
            }
            let result = grpc
                .unary::<_, ExportLogsServiceResponse, _>(
                    tonic::Request::new(body),
                    logs_path.clone(),
                    RawCodec::default(),
                )
                .await;
            match result {
                Ok(resp) => {
                    counts.requests_ok += 1;
                    let rejected = resp
                        .into_inner()
                        .partial_success
                        .map(|p| p.rejected_log_records.max(0) as u64)
                        .unwrap_or(0);
                    counts.logs_refused += rejected;
                    counts.logs_accepted += t.logs_n - rejected.min(t.logs_n);
                    if rejected == 0 {
                        counts.kept_logs += t.kept_logs;
                    }
                }
                Err(status) => {
                    counts.failed(&status);
                    counts.logs_refused += t.logs_n;
                }
            }
        }
    }
    counts
}

/// Sends one main request (traces, metrics or JSON logs, per `payload`); the items the
/// answer's partial success rejected.
async fn export(
    grpc: &mut tonic::client::Grpc<Channel>,
    payload: Payload,
    body: Bytes,
) -> Result<u64, Status> {
    let req = tonic::Request::new(body);
    let rejected = match payload {
        Payload::Traces => grpc
            .unary::<_, ExportTraceServiceResponse, _>(
                req,
                PathAndQuery::from_static(TRACES_PATH),
                RawCodec::default(),
            )
            .await?
            .into_inner()
            .partial_success
            .map_or(0, |p| p.rejected_spans),
        Payload::Metrics => grpc
            .unary::<_, ExportMetricsServiceResponse, _>(
                req,
                PathAndQuery::from_static(METRICS_PATH),
                RawCodec::default(),
            )
            .await?
            .into_inner()
            .partial_success
            .map_or(0, |p| p.rejected_data_points),
        Payload::JsonLogs => grpc
            .unary::<_, ExportLogsServiceResponse, _>(
                req,
                PathAndQuery::from_static(LOGS_PATH),
                RawCodec::default(),
            )
            .await?
            .into_inner()
            .partial_success
            .map_or(0, |p| p.rejected_log_records),
    };
    Ok(rejected.max(0) as u64)
}

fn quantile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx] as f64
}

/// The payload's decode ceiling: spans per second one thread turns from encoded requests into
/// prost `ExportTraceServiceRequest`s (about a second of decoding the pool over and over). No
/// pipeline that decodes OTLP into prost structs goes faster per core.
fn decode_rate(templates: &[Template], pool_spans: u64) -> f64 {
    let start = Instant::now();
    let mut spans = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for t in templates {
            let req =
                ExportTraceServiceRequest::decode(t.traces.as_slice()).expect("a template decodes");
            std::hint::black_box(&req);
        }
        spans += pool_spans;
    }
    spans as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.traces_per_request > 0 && args.templates > 0 && args.streams > 0,
        "--traces-per-request, --templates and --streams must be at least 1"
    );
    let base_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut rng = Rng::new(args.seed);
    let templates: Vec<Template> = (0..args.templates)
        .map(|_| match args.payload {
            Payload::Traces => build_template(&mut rng, &args, base_ns),
            Payload::Metrics => payloads::build_metrics_template(&mut rng, base_ns),
            Payload::JsonLogs => payloads::build_json_logs_template(&mut rng, &args, base_ns),
        })
        .collect();
    let pool_spans: u64 = templates.iter().map(|t| t.spans).sum();
    let pool_logs: u64 = templates.iter().map(|t| t.logs_n).sum();
    let pool_bytes: usize = templates.iter().map(|t| t.traces.len()).sum();
    let pool_log_bytes: usize = templates
        .iter()
        .map(|t| t.logs.as_ref().map_or(0, Vec::len))
        .sum();
    let pool_kept: u64 = templates.iter().map(|t| t.kept_traces).sum();
    let pool_traces = (args.templates * args.traces_per_request) as u64;
    let describe = serde_json::json!({
        "payload": format!("{:?}", args.payload),
        "items_per_request": pool_spans as f64 / args.templates as f64,
        "bytes_per_item": pool_bytes as f64 / pool_spans as f64,
        "templates": args.templates,
        "traces_per_request": args.traces_per_request,
        "spans_per_request": pool_spans as f64 / args.templates as f64,
        "spans_per_trace": pool_spans as f64 / pool_traces as f64,
        "logs_per_span": pool_logs as f64 / pool_spans as f64,
        "bytes_per_span": pool_bytes as f64 / pool_spans as f64,
        "bytes_per_log": if pool_logs > 0 { pool_log_bytes as f64 / pool_logs as f64 } else { 0.0 },
        "kept_trace_share": pool_kept as f64 / pool_traces as f64,
    });
    if args.describe {
        let mut describe = describe;
        if args.payload != Payload::Traces {
            // The span and log keys describe trace payloads only.
            let keep = [
                "payload",
                "items_per_request",
                "bytes_per_item",
                "templates",
            ];
            if let Some(map) = describe.as_object_mut() {
                map.retain(|k, _| keep.contains(&k.as_str()));
            }
            println!("{describe}");
            return Ok(());
        }
        describe["decode_spans_per_s"] = serde_json::json!(decode_rate(&templates, pool_spans));
        println!("{describe}");
        return Ok(());
    }

    let mut channels = Vec::with_capacity(args.connections.max(1));
    for _ in 0..args.connections.max(1) {
        let ch = Endpoint::from_shared(args.endpoint.clone())
            .context("--endpoint is not a URL like http://127.0.0.1:4317")?
            .timeout(Duration::from_secs_f64(args.timeout))
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.endpoint))?;
        channels.push(ch);
    }

    let start = Instant::now() + Duration::from_millis(50);
    let shared = Arc::new(Shared {
        templates,
        schedule: Mutex::new(Schedule {
            next: 0,
            spans: 0.0,
        }),
        seq: AtomicU64::new(base_ns),
        start,
        end: start + Duration::from_secs_f64(args.duration),
        rate: args.rate,
    });
    let tasks: Vec<_> = (0..args.streams)
        .map(|i| tokio::spawn(stream(shared.clone(), channels[i % channels.len()].clone())))
        .collect();
    let mut total = Counts::default();
    for t in tasks {
        total.merge(t.await.context("a sending stream panicked")?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    total.rtt_us.sort_unstable();
    // The main requests' items are spans, data points or records; the per-signal keys say
    // which, and the items_* keys are the same count whatever the payload.
    let items = total.spans_accepted;
    let of = |p: Payload| if args.payload == p { items } else { 0 };
    let summary = serde_json::json!({
        "target_items_per_s": args.rate,
        "items_accepted": items,
        "items_refused": total.spans_refused,
        "achieved_items_per_s": items as f64 / args.duration,
        "points_accepted": of(Payload::Metrics),
        "target_spans_per_s": args.rate,
        "duration_s": args.duration,
        "elapsed_s": elapsed,
        "achieved_spans_per_s": of(Payload::Traces) as f64 / args.duration,
        "requests_ok": total.requests_ok,
        "requests_refused": total.requests_refused,
        "requests_failed": total.requests_failed,
        "spans_accepted": of(Payload::Traces),
        "spans_refused": if args.payload == Payload::Traces { total.spans_refused } else { 0 },
        "logs_accepted": total.logs_accepted + of(Payload::JsonLogs),
        "logs_refused": total.logs_refused,
        "traces_accepted": total.traces_accepted,
        "kept_traces": total.kept_traces,
        "kept_spans": total.kept_spans,
        "kept_logs": total.kept_logs,
        "errors": total.errors,
        "rtt_ms_p50": quantile(&total.rtt_us, 0.5) / 1000.0,
        "rtt_ms_p99": quantile(&total.rtt_us, 0.99) / 1000.0,
        "max_late_ms": total.max_late_us as f64 / 1000.0,
        "payload": describe,
    });
    println!("{summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(logs: bool) -> Args {
        let mut a = Args::parse_from(["weft-loadgen", "--traces-per-request", "8"]);
        a.logs = logs;
        a.error_share = 0.5;
        a
    }

    #[test]
    fn patched_requests_carry_whole_traces_with_their_ids() {
        let a = args(true);
        let t = build_template(&mut Rng::new(7), &a, 1_700_000_000_000_000_000);
        let ids: Vec<[u8; 16]> = t
            .per_trace
            .iter()
            .enumerate()
            .map(|(k, &(ns, nl))| harness::make_trace_id(100 + k as u64, 12345, ns, nl))
            .collect();
        let traces =
            ExportTraceServiceRequest::decode(patch(&t.traces, &t.trace_offsets, &ids)).unwrap();
        let logs =
            ExportLogsServiceRequest::decode(patch(t.logs.as_ref().unwrap(), &t.log_offsets, &ids))
                .unwrap();
        for (k, id) in ids.iter().enumerate() {
            let spans = traces
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .filter(|s| s.trace_id == id.as_slice())
                .count();
            let records = logs
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .filter(|l| l.trace_id == id.as_slice())
                .count();
            assert_eq!(spans, t.per_trace[k].0 as usize, "trace {k}");
            assert_eq!(records, t.per_trace[k].1 as usize, "trace {k}");
            assert!((5..=20).contains(&spans));
            assert!((spans..=3 * spans).contains(&records));
        }
        assert_eq!(t.spans, t.per_trace.iter().map(|p| p.0 as u64).sum::<u64>());
        assert!(t.kept_traces > 0 && t.kept_spans < t.spans);
    }

    #[test]
    fn spans_are_the_same_with_and_without_logs() {
        let with = build_template(&mut Rng::new(3), &args(true), 0);
        let without = build_template(&mut Rng::new(3), &args(false), 0);
        let spans = |t: &Template| {
            ExportTraceServiceRequest::decode(t.traces.as_slice())
                .unwrap()
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| {
                    (
                        s.span_id.clone(),
                        s.start_time_unix_nano,
                        s.attributes.len(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(spans(&with), spans(&without));
        assert!(without.logs.is_none());
    }

    #[test]
    fn metrics_requests_are_valid_sdk_shaped_and_counted_in_points() {
        let mut rng = Rng::new(5);
        for _ in 0..8 {
            let t = payloads::build_metrics_template(&mut rng, 1_700_000_000_000_000_000);
            // Weft's fast path accepts it whole (it decodes, passes validation and holds
            // nothing the data model forbids), with the count the template claims.
            assert_eq!(
                weft_proto::wire::scan_metrics(&t.traces, &weft_proto::limits::Limits::default()),
                Some(t.spans as usize)
            );
            let req = ExportMetricsServiceRequest::decode(t.traces.as_slice()).unwrap();
            assert_eq!(req.resource_metrics.len(), 3);
            assert!(req
                .resource_metrics
                .iter()
                .all(|r| r.scope_metrics.len() == 2));
            assert_eq!(t.payload, Payload::Metrics);
            assert!(t.per_trace.is_empty());
        }
    }

    #[test]
    fn json_log_bodies_carry_their_trace_ids_once_patched() {
        let a = args(false);
        let t = payloads::build_json_logs_template(&mut Rng::new(9), &a, 1_700_000_000_000_000_000);
        let ids: Vec<[u8; 16]> = t
            .per_trace
            .iter()
            .enumerate()
            .map(|(k, &(ns, nl))| harness::make_trace_id(7 + k as u64, 99, ns, nl))
            .collect();
        let req = ExportLogsServiceRequest::decode(payloads::patch_hex(
            &t.traces,
            &t.trace_offsets,
            &ids,
        ))
        .unwrap();
        let mut per_id = BTreeMap::<String, u8>::new();
        let mut with_pii = 0;
        let records: Vec<_> = req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .collect();
        for r in &records {
            assert!(
                r.trace_id.is_empty(),
                "the record itself has no trace context"
            );
            let Some(any_value::Value::StringValue(line)) =
                r.body.as_ref().and_then(|b| b.value.as_ref())
            else {
                panic!("a string body");
            };
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            *per_id
                .entry(v["trace_id"].as_str().unwrap().to_string())
                .or_default() += 1;
            assert_eq!(v["span_id"].as_str().unwrap().len(), 16);
            assert!(v["level"].is_string() && v["biz_order_id"].is_string());
            with_pii += ["user_phone", "user_email", "auth_header", "id_card"]
                .iter()
                .any(|k| v.get(k).is_some()) as usize;
        }
        assert_eq!(records.len() as u64, t.spans);
        assert!(with_pii > 0 && with_pii < records.len());
        for (k, id) in ids.iter().enumerate() {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(per_id.get(&hex), Some(&t.per_trace[k].1), "trace {k}");
            assert_eq!(t.per_trace[k].0, 0);
        }
    }
}
