//! `weft-sink`: an OTLP/gRPC server (traces, logs and metrics) that counts what arrives and
//! checks that every trace arrived whole, for `bench-compare` to tell "no loss". Metrics are
//! counted in data points (they carry no benchmark trace id).
//!
//! It decodes nothing but trace ids (light prost messages that skip every other field), so it
//! costs little beside the process under test; the ids say how many spans and logs their trace
//! has and when it was sent (see `harness.rs`). A trace is *complete* when exactly that many
//! spans and logs arrived; anything arriving for a trace already complete opens a new entry,
//! which then never completes and shows up as `traces_partial`. A trace of logs only (an id
//! saying 0 spans, as the JSON-log payload's are) completes when all its logs arrived.
//!
//! Control (plain HTTP on `--control`): `GET /stats` answers the counts as JSON, `GET /reset`
//! zeroes them. On SIGTERM or Ctrl-C it prints the stats and exits.

#![allow(clippy::print_stdout)]

mod harness;

use std::collections::HashMap;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{http, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{NamedService, UnaryService};
use weft_proto::collector::logs::v1::ExportLogsServiceResponse;
use weft_proto::collector::metrics::v1::ExportMetricsServiceResponse;
use weft_proto::collector::trace::v1::ExportTraceServiceResponse;

#[derive(Parser, Debug)]
#[command(
    name = "weft-sink",
    about = "Counting OTLP/gRPC sink for bench-compare"
)]
struct Args {
    /// OTLP gRPC listen address; repeat it to listen on several (the gateways of the two-tier
    /// scenario), all counted together.
    #[arg(long, default_value = "127.0.0.1:4417")]
    grpc: Vec<SocketAddr>,
    /// HTTP control address (GET /stats, GET /reset).
    #[arg(long, default_value = "127.0.0.1:4418")]
    control: SocketAddr,
}

// Light OTLP messages: only the path down to the trace id; prost skips every other field.

#[derive(Clone, PartialEq, prost::Message)]
struct LightTracesRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<LightResourceSpans>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<LightScopeSpans>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<LightSpan>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightSpan {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightLogsRequest {
    #[prost(message, repeated, tag = "1")]
    resource_logs: Vec<LightResourceLogs>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightResourceLogs {
    #[prost(message, repeated, tag = "2")]
    scope_logs: Vec<LightScopeLogs>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightScopeLogs {
    #[prost(message, repeated, tag = "2")]
    log_records: Vec<LightLogRecord>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightLogRecord {
    #[prost(bytes = "vec", tag = "9")]
    trace_id: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LightMetricsRequest {
    #[prost(message, repeated, tag = "1")]
    resource_metrics: Vec<LightResourceMetrics>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightResourceMetrics {
    #[prost(message, repeated, tag = "2")]
    scope_metrics: Vec<LightScopeMetrics>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightScopeMetrics {
    #[prost(message, repeated, tag = "2")]
    metrics: Vec<LightMetric>,
}
/// A metric's data, whichever of the five kinds it is: only the number of points.
#[derive(Clone, PartialEq, prost::Message)]
struct LightMetric {
    #[prost(message, optional, tag = "5")]
    gauge: Option<LightPoints>,
    #[prost(message, optional, tag = "7")]
    sum: Option<LightPoints>,
    #[prost(message, optional, tag = "9")]
    histogram: Option<LightPoints>,
    #[prost(message, optional, tag = "10")]
    exponential_histogram: Option<LightPoints>,
    #[prost(message, optional, tag = "11")]
    summary: Option<LightPoints>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LightPoints {
    #[prost(message, repeated, tag = "1")]
    data_points: Vec<Nothing>,
}
/// A message whose every field is skipped.
#[derive(Clone, PartialEq, prost::Message)]
struct Nothing {}

/// What arrived so far for one trace that is not complete yet.
#[derive(Default)]
struct Entry {
    spans: u32,
    logs: u32,
    want_spans: u8,
    want_logs: u8,
}

#[derive(Default)]
struct State {
    open: HashMap<u64, Entry>,
    spans: u64,
    logs: u64,
    /// Metric data points (any kind).
    points: u64,
    trace_requests: u64,
    log_requests: u64,
    metric_requests: u64,
    traces_complete: u64,
    /// Spans and logs whose trace id is not a benchmark id.
    foreign: u64,
    /// Send → first span arrival, per trace, in microseconds.
    latency_us: Vec<u64>,
}

impl State {
    fn item(&mut self, trace_id: &[u8], now_us: u64, is_span: bool) {
        let Some(info) = harness::parse_trace_id(trace_id) else {
            self.foreign += 1;
            return;
        };
        if info.spans == 0 && info.logs == 0 {
            self.foreign += 1;
            return;
        }
        let e = self.open.entry(info.key).or_insert_with(|| Entry {
            want_spans: info.spans,
            want_logs: info.logs,
            ..Default::default()
        });
        // Latency is to a trace's first span, or first log when it has no spans.
        if e.spans == 0 && (is_span || (e.want_spans == 0 && e.logs == 0)) {
            self.latency_us
                .push(harness::elapsed_micros48(info.sent_us, now_us));
        }
        if is_span {
            e.spans += 1;
        } else {
            e.logs += 1;
        }
        if e.spans == u32::from(e.want_spans) && e.logs == u32::from(e.want_logs) {
            self.open.remove(&info.key);
            self.traces_complete += 1;
        }
    }

    fn stats(&self) -> serde_json::Value {
        let (mut partial, mut logs_only, mut logs_mismatch) = (0u64, 0u64, 0u64);
        for e in self.open.values() {
            if e.want_spans == 0 {
                logs_mismatch += 1;
            } else if e.spans == 0 {
                logs_only += 1;
            } else if e.spans != u32::from(e.want_spans) {
                partial += 1;
            } else {
                logs_mismatch += 1;
            }
        }
        let mut lat = self.latency_us.clone();
        lat.sort_unstable();
        let q = |p: f64| {
            if lat.is_empty() {
                0.0
            } else {
                lat[((lat.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
            }
        };
        serde_json::json!({
            "spans": self.spans,
            "logs": self.logs,
            "points": self.points,
            "trace_requests": self.trace_requests,
            "log_requests": self.log_requests,
            "metric_requests": self.metric_requests,
            "traces_complete": self.traces_complete,
            "traces_partial": partial,
            "traces_logs_only": logs_only,
            "traces_logs_mismatch": logs_mismatch,
            "foreign": self.foreign,
            "latency_ms_p50": q(0.5),
            "latency_ms_p99": q(0.99),
            "latency_ms_max": q(1.0),
            "latency_samples": lat.len(),
        })
    }
}

type Shared = Arc<Mutex<State>>;

/// One OTLP signal the sink serves: its gRPC path, light request type and how to count it.
trait Signal: Send + Sync + 'static {
    const SERVICE: &'static str;
    const PATH: &'static str;
    type Request: prost::Message + Default + Send + 'static;
    type Response: prost::Message + Default + Send + 'static;
    fn record(state: &mut State, req: Self::Request, now_us: u64);
}

struct TracesSignal;
impl Signal for TracesSignal {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    type Request = LightTracesRequest;
    type Response = ExportTraceServiceResponse;
    fn record(state: &mut State, req: LightTracesRequest, now_us: u64) {
        state.trace_requests += 1;
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                for sp in ss.spans {
                    state.spans += 1;
                    state.item(&sp.trace_id, now_us, true);
                }
            }
        }
    }
}

struct LogsSignal;
impl Signal for LogsSignal {
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    type Request = LightLogsRequest;
    type Response = ExportLogsServiceResponse;
    fn record(state: &mut State, req: LightLogsRequest, now_us: u64) {
        state.log_requests += 1;
        for rl in req.resource_logs {
            for sl in rl.scope_logs {
                for lr in sl.log_records {
                    state.logs += 1;
                    state.item(&lr.trace_id, now_us, false);
                }
            }
        }
    }
}

struct MetricsSignal;
impl Signal for MetricsSignal {
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    type Request = LightMetricsRequest;
    type Response = ExportMetricsServiceResponse;
    fn record(state: &mut State, req: LightMetricsRequest, _now_us: u64) {
        state.metric_requests += 1;
        for rm in req.resource_metrics {
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    state.points += [
                        m.gauge,
                        m.sum,
                        m.histogram,
                        m.exponential_histogram,
                        m.summary,
                    ]
                    .iter()
                    .flatten()
                    .map(|p| p.data_points.len() as u64)
                    .sum::<u64>();
                }
            }
        }
    }
}

/// The tonic service of one signal, written by hand (as tonic's generated code is) so the
/// request type can be the light message.
struct SinkService<S> {
    state: Shared,
    _signal: PhantomData<S>,
}

impl<S> Clone for SinkService<S> {
    fn clone(&self) -> Self {
        SinkService {
            state: self.state.clone(),
            _signal: PhantomData,
        }
    }
}

impl<S: Signal> NamedService for SinkService<S> {
    const NAME: &'static str = S::SERVICE;
}

struct Export<S>(Shared, PhantomData<S>);

impl<S: Signal> UnaryService<S::Request> for Export<S> {
    type Response = S::Response;
    type Future = BoxFuture<tonic::Response<S::Response>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<S::Request>) -> Self::Future {
        let now_us = harness::now_micros48();
        {
            let mut state = self.0.lock().expect("sink state lock");
            S::record(&mut state, request.into_inner(), now_us);
        }
        Box::pin(async { Ok(tonic::Response::new(S::Response::default())) })
    }
}

impl<S, B> Service<http::Request<B>> for SinkService<S>
where
    S: Signal,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let state = self.state.clone();
        if req.uri().path() != S::PATH {
            return Box::pin(async {
                Ok(tonic::Status::unimplemented("only Export is served").into_http())
            });
        }
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<S::Response, S::Request>::default();
            let mut grpc = tonic::server::Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(1 << 30);
            Ok(grpc.unary(Export::<S>(state, PhantomData), req).await)
        })
    }
}

/// Answers one control request: `/stats` or `/reset`.
async fn control(mut sock: tokio::net::TcpStream, state: Shared) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let (code, body) = match path {
        "/stats" => ("200 OK", state.lock().expect("sink state lock").stats()),
        "/reset" => {
            *state.lock().expect("sink state lock") = State::default();
            ("200 OK", serde_json::json!({"reset": true}))
        }
        _ => (
            "404 Not Found",
            serde_json::json!({"error": "use /stats or /reset"}),
        ),
    };
    let body = body.to_string();
    let resp = format!(
        "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let state: Shared = Arc::default();

    let listener = TcpListener::bind(args.control)
        .await
        .with_context(|| format!("binding the control address {}", args.control))?;
    let control_state = state.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let st = control_state.clone();
            tokio::spawn(async move {
                let _ = control(sock, st).await;
            });
        }
    });

    let traces = SinkService::<TracesSignal> {
        state: state.clone(),
        _signal: PhantomData,
    };
    let logs = SinkService::<LogsSignal> {
        state: state.clone(),
        _signal: PhantomData,
    };
    let metrics = SinkService::<MetricsSignal> {
        state: state.clone(),
        _signal: PhantomData,
    };
    let mut incoming = tokio_stream::StreamMap::new();
    for (k, addr) in args.grpc.iter().enumerate() {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the OTLP gRPC address {addr}"))?;
        incoming.insert(k, tokio_stream::wrappers::TcpListenerStream::new(listener));
    }
    println!(
        "weft-sink ready grpc={:?} control={}",
        args.grpc, args.control
    );
    let server = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_service(traces)
        .add_service(logs)
        .add_service(metrics)
        .serve_with_incoming_shutdown(
            tokio_stream::StreamExt::map(incoming, |(_, conn)| conn),
            weft_benches::shutdown_signal(),
        );
    server.await.context("serving OTLP gRPC")?;
    println!("{}", state.lock().expect("sink state lock").stats());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_completes_when_all_its_spans_and_logs_arrived() {
        let mut st = State::default();
        let id = harness::make_trace_id(1, 1_000, 2, 1);
        st.item(&id, 2_000, true);
        st.item(&id, 2_500, false);
        assert_eq!(st.traces_complete, 0);
        st.item(&id, 3_000, true);
        assert_eq!(st.traces_complete, 1);
        assert!(st.open.is_empty());
        assert_eq!(st.latency_us, vec![1_000]);

        // A duplicate span after completion opens an entry that never completes.
        st.item(&id, 4_000, true);
        assert_eq!(st.stats()["traces_partial"], 1);
        // Logs of a trace whose spans were dropped stay logs-only.
        st.item(&harness::make_trace_id(2, 0, 5, 2), 0, false);
        assert_eq!(st.stats()["traces_logs_only"], 1);
        st.item(&[1, 2, 3], 0, true);
        assert_eq!(st.foreign, 1);
    }

    #[test]
    fn a_trace_of_logs_only_completes_with_its_last_log() {
        let mut st = State::default();
        let id = harness::make_trace_id(3, 1_000, 0, 2);
        st.item(&id, 1_500, false);
        assert_eq!(st.stats()["traces_logs_mismatch"], 1);
        st.item(&id, 2_000, false);
        assert_eq!(st.traces_complete, 1);
        assert_eq!(st.latency_us, vec![500]);
        st.item(&harness::make_trace_id(4, 0, 0, 0), 0, false);
        assert_eq!(st.foreign, 1);
    }

    #[test]
    fn metrics_are_counted_in_data_points_of_every_kind() {
        use prost::Message as _;
        use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
        use weft_proto::metrics::v1::{
            metric, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
            ScopeMetrics,
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "g".into(),
                            data: Some(metric::Data::Gauge(Gauge {
                                data_points: vec![NumberDataPoint::default(); 3],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "h".into(),
                            data: Some(metric::Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint::default(); 2],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let light = LightMetricsRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        let mut st = State::default();
        MetricsSignal::record(&mut st, light, 0);
        assert_eq!((st.points, st.metric_requests), (5, 1));
    }
}
