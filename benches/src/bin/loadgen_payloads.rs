//! The load generator's payloads besides traces: OTLP metrics shaped as the SDKs export them
//! (`--payload metrics`, scenario m), and log records whose bodies are the seed's JSON lines
//! (`--payload json-logs`, scenario g). Both are built once into [`Template`]s, like traces.
//!
//! **Metrics**: each request carries 3 of the 8 services as resources, each with two scopes
//! (HTTP server instrumentation and the application's own meter), cumulative throughout:
//! a request-duration histogram per method × route × status (the semantic conventions'
//! advisory bounds), an active-requests up-down sum, an orders counter, a memory gauge and a
//! DB-duration histogram, 3–5 attributes per point. The item is a data point.
//!
//! **JSON logs**: 1–3 zap- or zerolog-shaped lines per trace (`level`, `ts`/`time`, `caller`,
//! `msg`/`message`, `trace_id`, `span_id`, `biz_*` keys), about a quarter carrying a mainland
//! mobile number or an e-mail, one in ten a bearer token or an ID card, as a string body with
//! no trace context on the record itself: the collector's `transform` must parse the body and
//! set `trace_id` from it. The trace id in the JSON is the benchmark's (hex), patched at send
//! time, so the sink's completeness check also proves every record got its trace id.

use std::fmt::Write as _;

use super::*;
use weft_proto::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};

/// Cumulative, as the SDKs' default OTLP metric exporters send.
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

fn number(
    attrs: Vec<KeyValue>,
    start: u64,
    now: u64,
    v: number_data_point::Value,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(v),
        ..Default::default()
    }
}

/// A histogram point over `bounds` with `count` observations spread by `rng`; its buckets add
/// up to `count` and its sum lies within the buckets, as the data model requires.
fn histogram_point(
    rng: &mut Rng,
    attrs: Vec<KeyValue>,
    start: u64,
    now: u64,
    bounds: &[f64],
    count: u64,
) -> HistogramDataPoint {
    let mut buckets = vec![0u64; bounds.len() + 1];
    let mut sum = 0.0;
    let (mut min, mut max) = (f64::INFINITY, 0.0f64);
    // Observations cluster in the low buckets, as latencies do.
    for _ in 0..count.min(64) {
        let b = (rng.range(0, 3) + rng.range(0, 3) + rng.range(0, 3)) as usize % buckets.len();
        let lo = if b == 0 { 0.0 } else { bounds[b - 1] };
        let hi = bounds.get(b).copied().unwrap_or(lo * 2.0 + 1.0);
        let v = lo + (hi - lo) * 0.5;
        buckets[b] += 1;
        sum += v;
        min = min.min(v);
        max = max.max(v);
    }
    // Larger counts: the rest in the first bucket at its lower bound (0), keeping the sum right.
    let rest = count.saturating_sub(64);
    buckets[0] += rest;
    if rest > 0 {
        min = 0.0;
    }
    HistogramDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: now,
        count,
        sum: Some(sum),
        bucket_counts: buckets,
        explicit_bounds: bounds.to_vec(),
        min: Some(if min.is_finite() { min } else { 0.0 }),
        max: Some(max),
        ..Default::default()
    }
}

/// The semantic conventions' advisory bounds for `http.server.request.duration` (seconds).
const HTTP_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// The SDKs' default explicit bounds (milliseconds).
const DEFAULT_BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.to_string(),
        description: String::new(),
        unit: unit.to_string(),
        data: Some(data),
        ..Default::default()
    }
}

/// The metrics one service's SDK exports in one collection: two scopes.
fn service_metrics(rng: &mut Rng, svc: usize, start: u64, now: u64) -> Vec<ScopeMetrics> {
    let mut http_points = Vec::new();
    for method in ["GET", "POST", "PUT"] {
        for route in ["/api/orders/{id}", "/api/cart", "/api/pay"] {
            for status in [200, 500] {
                let count = if status == 500 {
                    rng.range(0, 20)
                } else {
                    rng.range(100, 5_000)
                };
                http_points.push(histogram_point(
                    rng,
                    vec![
                        kv("http.request.method", s(method)),
                        kv("http.route", s(route)),
                        kv(
                            "http.response.status_code",
                            any_value::Value::IntValue(status),
                        ),
                        kv("url.scheme", s("https")),
                        kv("network.protocol.version", s("2")),
                    ],
                    start,
                    now,
                    &HTTP_BOUNDS,
                    count,
                ));
            }
        }
    }
    let active = ["GET", "POST", "PUT"]
        .iter()
        .map(|m| {
            number(
                vec![
                    kv("http.request.method", s(*m)),
                    kv("url.scheme", s("https")),
                ],
                start,
                now,
                number_data_point::Value::AsInt(rng.range(0, 40) as i64),
            )
        })
        .collect();
    let http = ScopeMetrics {
        scope: Some(InstrumentationScope {
            name: format!("io.opentelemetry.{}.http", SERVICES[svc].1),
            version: "2.10.0".into(),
            ..Default::default()
        }),
        metrics: vec![
            metric(
                "http.server.request.duration",
                "s",
                metric::Data::Histogram(Histogram {
                    data_points: http_points,
                    aggregation_temporality: CUMULATIVE,
                }),
            ),
            metric(
                "http.server.active_requests",
                "{request}",
                metric::Data::Sum(Sum {
                    data_points: active,
                    aggregation_temporality: CUMULATIVE,
                    is_monotonic: false,
                }),
            ),
        ],
        ..Default::default()
    };
    let orders = ["cn-north", "cn-east", "cn-south", "intl"]
        .iter()
        .map(|region| {
            number(
                vec![
                    kv("biz_region", s(*region)),
                    kv("biz_channel", s(*rng.pick(&["app", "web", "mini-program"]))),
                    kv("payment.method", s(*rng.pick(&["card", "wallet"]))),
                ],
                start,
                now,
                number_data_point::Value::AsInt(rng.range(1_000, 900_000) as i64),
            )
        })
        .collect();
    let memory = ["heap", "non_heap"]
        .iter()
        .map(|t| {
            number(
                vec![
                    kv("memory.type", s(*t)),
                    kv("pool", s(*rng.pick(&["eden", "old", "metaspace"]))),
                    kv("host.arch", s("amd64")),
                ],
                start,
                now,
                number_data_point::Value::AsDouble(rng.range(50, 900) as f64 * 1_048_576.0),
            )
        })
        .collect();
    let mut db_points = Vec::new();
    for system in ["postgresql", "redis"] {
        for op in ["SELECT", "INSERT", "UPDATE"] {
            let count = rng.range(10, 3_000);
            db_points.push(histogram_point(
                rng,
                vec![
                    kv("db.system.name", s(system)),
                    kv("db.operation.name", s(op)),
                    kv("db.namespace", s("shop")),
                    kv("server.address", s(format!("{system}.shop.svc"))),
                ],
                start,
                now,
                &DEFAULT_BOUNDS,
                count,
            ));
        }
    }
    let app = ScopeMetrics {
        scope: Some(InstrumentationScope {
            name: format!("shop.{}", SERVICES[svc].0),
            version: format!("2.{svc}.7"),
            ..Default::default()
        }),
        metrics: vec![
            metric(
                "shop.orders.placed",
                "{order}",
                metric::Data::Sum(Sum {
                    data_points: orders,
                    aggregation_temporality: CUMULATIVE,
                    is_monotonic: true,
                }),
            ),
            metric(
                "process.memory.usage",
                "By",
                metric::Data::Gauge(Gauge {
                    data_points: memory,
                }),
            ),
            metric(
                "db.client.operation.duration",
                "ms",
                metric::Data::Histogram(Histogram {
                    data_points: db_points,
                    aggregation_temporality: CUMULATIVE,
                }),
            ),
        ],
        ..Default::default()
    };
    vec![http, app]
}

/// Data points in one service's collection (see [`service_metrics`]).
fn points_of(scopes: &[ScopeMetrics]) -> u64 {
    scopes
        .iter()
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Histogram(h)) => h.data_points.len(),
            Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(metric::Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}

/// One metrics request: 3 distinct services, each one collection. No trace ids to patch.
pub(crate) fn build_metrics_template(rng: &mut Rng, base_ns: u64) -> Template {
    let mut services: Vec<usize> = Vec::with_capacity(3);
    while services.len() < 3 {
        let svc = rng.range(0, SERVICES.len() as u64 - 1) as usize;
        if !services.contains(&svc) {
            services.push(svc);
        }
    }
    let start = base_ns.saturating_sub(3_600_000_000_000);
    let mut points = 0;
    let resource_metrics = services
        .into_iter()
        .map(|svc| {
            let scope_metrics = service_metrics(rng, svc, start, base_ns);
            points += points_of(&scope_metrics);
            ResourceMetrics {
                resource: Some(resource(svc)),
                scope_metrics,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }
        })
        .collect();
    let body = ExportMetricsServiceRequest { resource_metrics }.encode_to_vec();
    Template {
        payload: Payload::Metrics,
        traces: body,
        logs: None,
        trace_offsets: Vec::new(),
        log_offsets: Vec::new(),
        per_trace: Vec::new(),
        spans: points,
        logs_n: 0,
        kept_traces: 0,
        kept_spans: 0,
        kept_logs: 0,
    }
}

/// Hex of the placeholder id of trace `k` (see `sentinel`), as it stands in a JSON body.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Offsets of every hex-written placeholder trace id in `buf`, per trace index.
pub(crate) fn find_hex_sentinels(buf: &[u8], traces: usize) -> Vec<Vec<usize>> {
    let head = hex(&SENTINEL_HEAD);
    let tail = hex(&SENTINEL_TAIL);
    let mut out = vec![Vec::new(); traces];
    let mut i = 0;
    while i + 32 <= buf.len() {
        if &buf[i..i + 16] == head.as_bytes() && &buf[i + 24..i + 32] == tail.as_bytes() {
            let k = std::str::from_utf8(&buf[i + 16..i + 24])
                .ok()
                .and_then(|k| u32::from_str_radix(k, 16).ok());
            if let Some(k) = k {
                out[k as usize].push(i);
                i += 32;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// A copy of `template` with trace `k`'s hex placeholder replaced by the hex of `ids[k]`.
pub(crate) fn patch_hex(template: &[u8], offsets: &[Vec<usize>], ids: &[[u8; 16]]) -> Bytes {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = template.to_vec();
    for (k, offs) in offsets.iter().enumerate() {
        for &o in offs {
            for (j, b) in ids[k].iter().enumerate() {
                buf[o + 2 * j] = DIGITS[(b >> 4) as usize];
                buf[o + 2 * j + 1] = DIGITS[(b & 15) as usize];
            }
        }
    }
    Bytes::from(buf)
}

/// Something to mask in about a third of the lines: what the seed's PII rules are for.
fn personal_data(rng: &mut Rng) -> Option<(&'static str, String)> {
    match rng.range(0, 19) {
        0..=2 => Some((
            "user_phone",
            format!("1{}{:09}", rng.range(3, 9), rng.range(0, 999_999_999)),
        )),
        3..=4 => Some((
            "user_email",
            format!(
                "{}.{}@{}",
                rng.pick(&["li", "wang", "zhang", "chen"]),
                rng.pick(&["wei", "fang", "min", "jing"]),
                rng.pick(&["example.com", "mail.example.cn"])
            ),
        )),
        5 => Some((
            "auth_header",
            format!("Bearer eyJhbGciOiJIUzI1NiJ9.{:016x}", rng.next()),
        )),
        6 => Some((
            "id_card",
            format!(
                "110105{:08}{:03}X",
                rng.range(19_600_101, 20_051_231),
                rng.range(0, 999)
            ),
        )),
        _ => None,
    }
}

/// One JSON line as zap (Go services) or zerolog writes it, for trace `k` of a template.
fn json_line(rng: &mut Rng, svc: usize, k: usize, span_id: u64, t_ns: u64, error: bool) -> String {
    let (name, _) = SERVICES[svc];
    let level = if error {
        "error"
    } else if rng.chance(0.1) {
        "warn"
    } else {
        "info"
    };
    let secs = t_ns / 1_000_000_000;
    let millis = (t_ns / 1_000_000) % 1000;
    // A civil date is not needed to be right, only to look right; both collectors only
    // carry the string through.
    let ts = format!(
        "2026-12-03T{:02}:{:02}:{:02}.{millis:03}Z",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    );
    let order = format!("ord-{:08}", rng.range(0, 99_999_999));
    let trace = hex(&sentinel(k));
    let span = format!("{span_id:016x}");
    let pii = personal_data(rng)
        .map(|(key, v)| format!(",\"{key}\":\"{v}\""))
        .unwrap_or_default();
    let duration = rng.range(1, 900);
    let (msg, err) = if error {
        (
            "payment failed",
            ",\"error\":\"upstream timed out after 3 retries\"",
        )
    } else {
        (
            *rng.pick(&["order created", "cart updated", "stock reserved"]),
            "",
        )
    };
    if svc.is_multiple_of(2) {
        format!(
            "{{\"level\":\"{level}\",\"ts\":\"{ts}\",\"caller\":\"{name}/handler.go:{}\",\"msg\":\"{msg}\",\"service\":\"{name}\",\"trace_id\":\"{trace}\",\"span_id\":\"{span}\",\"biz_order_id\":\"{order}\",\"duration_ms\":{duration}{err}{pii}}}",
            rng.range(40, 240)
        )
    } else {
        format!(
            "{{\"level\":\"{level}\",\"time\":\"{ts}\",\"service\":\"{name}\",\"trace_id\":\"{trace}\",\"span_id\":\"{span}\",\"event\":\"{}\",\"biz_order_id\":\"{order}\",\"biz_amount_cents\":{}{err}{pii},\"message\":\"{msg}\"}}",
            msg.replace(' ', "_"),
            rng.range(100, 99_999)
        )
    }
}

/// One logs request of `traces_per_request` traces, 1–3 JSON lines each, grouped by service.
pub(crate) fn build_json_logs_template(rng: &mut Rng, args: &Args, base_ns: u64) -> Template {
    let mut by_service: BTreeMap<usize, Vec<LogRecord>> = BTreeMap::new();
    let mut per_trace = Vec::with_capacity(args.traces_per_request);
    let mut records = 0u64;
    for k in 0..args.traces_per_request {
        let n = rng.range(1, 3) as usize;
        let error = rng.chance(args.error_share);
        let t0 = base_ns + k as u64 * 1_000_000;
        for l in 0..n {
            let svc = rng.range(0, SERVICES.len() as u64 - 1) as usize;
            let t = t0 + l as u64 * 3_000_000;
            let span_id = rng.next().max(1);
            let line = json_line(rng, svc, k, span_id, t, error && l + 1 == n);
            by_service.entry(svc).or_default().push(LogRecord {
                time_unix_nano: t,
                observed_time_unix_nano: t + 50_000,
                body: Some(AnyValue {
                    value: Some(s(line)),
                }),
                attributes: vec![kv("log.iostream", s("stdout"))],
                ..Default::default()
            });
        }
        per_trace.push((0u8, n as u8));
        records += n as u64;
    }
    let body = logs_request(by_service).encode_to_vec();
    let trace_offsets = find_hex_sentinels(&body, args.traces_per_request);
    Template {
        payload: Payload::JsonLogs,
        traces: body,
        logs: None,
        trace_offsets,
        log_offsets: Vec::new(),
        per_trace,
        spans: records,
        logs_n: 0,
        kept_traces: 0,
        kept_spans: 0,
        kept_logs: 0,
    }
}
