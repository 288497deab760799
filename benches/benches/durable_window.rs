//! What the durable tail-sampling window costs: `consume` of a 500-span request through the
//! real `tail_sampling` processor (built by its factory, its decision tick running), with the
//! window in memory, durable without fsync, and durable with fsync (`file_storage.fsync`).
//!
//! `cargo bench -p weft-benches --bench durable_window`
//!
//! Two shapes: one `consume` at a time (each waits for its own write: latency-bound), and 16
//! in flight at once (the log's writer commits them in groups, as under real load). Every
//! request carries 50 new trace ids; `num_traces: 2000` keeps the window (and so the log)
//! at a steady size by deciding the oldest traces early, in every variant alike.
//!
//! It first prints a table measured in interleaved rounds (wall and CPU time per request,
//! the CPU of every thread, the log's writer included), which a shared, noisy machine
//! distorts less than consecutive runs; then runs the criterion benches.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{criterion_group, Criterion, Throughput};
use prost::Message;
use weft::component::{AnyConfig, BuildContext, Processor, SharedInstances};
use weft::extensions::file_storage;
use weft::pipeline::{ConsumeError, Consumer, Payload, Traces};
use weft::processors::tail_sampling;
use weft::processors::tail_sampling::config::TailSamplingConfig;
use weft::telemetry::Telemetry;
use weft_config::{ComponentId, ConfigPath, Diagnostics, Kind};
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

const WINDOW: &str = "
decision_wait: 30s
num_traces: 2000
max_bytes: 0
decision_cache: {sampled_cache_size: 0, non_sampled_cache_size: 0}
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 1000}}
";

/// The next stage: takes everything.
struct Accept;

#[async_trait]
impl Consumer<Traces> for Accept {
    async fn consume(&self, _data: Traces) -> Result<(), ConsumeError> {
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Variant {
    Memory,
    Wal,
    WalFsync,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Memory => "memory",
            Variant::Wal => "wal",
            Variant::WalFsync => "wal_fsync",
        }
    }
}

fn ctx(
    kind: Kind,
    type_name: &str,
    telemetry: &Telemetry,
    shared: &SharedInstances,
) -> BuildContext {
    BuildContext {
        id: ComponentId::new(type_name, None),
        kind,
        telemetry: telemetry.clone(),
        health: Default::default(),
        shared: shared.clone(),
    }
}

/// The processor as the service builds it, started (its decision tick runs), and the
/// folder of its log.
async fn processor(variant: Variant, dir: &std::path::Path) -> Arc<dyn Processor<Traces>> {
    let telemetry = Telemetry::new();
    let shared = SharedInstances::default();
    let mut text = WINDOW.to_string();
    if !matches!(variant, Variant::Memory) {
        let storage = file_storage::Config {
            directory: Some(dir.to_path_buf()),
            fsync: matches!(variant, Variant::WalFsync),
            ..Default::default()
        };
        let ext = file_storage::factory()
            .build(
                ctx(Kind::Extension, "file_storage", &telemetry, &shared),
                &(Arc::new(storage) as AnyConfig),
            )
            .expect("file_storage");
        ext.start().await.expect("started");
        text.push_str("storage: file_storage\n");
    }
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("bench config");
    let mut diags = Diagnostics::new();
    let cfg: TailSamplingConfig =
        weft_config::decode_component(&value, &ConfigPath::root(), &mut diags)
            .expect("valid config");
    let p = tail_sampling::factory()
        .build_typed(
            ctx(Kind::Processor, "tail_sampling", &telemetry, &shared),
            &(Arc::new(cfg) as AnyConfig),
            Arc::new(Accept),
        )
        .expect("processor");
    p.start().await.expect("started");
    p
}

static NEXT_TRACE: AtomicU64 = AtomicU64::new(1);

/// A copy of `template` (50 traces, ids `t+1` in their first 8 bytes) with 50 new trace ids,
/// as the receiver hands it on: encoded, checked, not decoded.
fn fresh(template: &ExportTraceServiceRequest) -> Traces {
    let mut request = template.clone();
    let base = NEXT_TRACE.fetch_add(50, Ordering::Relaxed);
    for rs in &mut request.resource_spans {
        for ss in &mut rs.scope_spans {
            for s in &mut ss.spans {
                let mut t = [0u8; 8];
                t.copy_from_slice(&s.trace_id[..8]);
                let n = base + u64::from_be_bytes(t);
                s.trace_id[8..].copy_from_slice(&n.to_be_bytes());
            }
        }
    }
    Traces::from_encoded(request.encode_to_vec().into(), 500)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// CPU time of every thread of this process (the log's writer thread included), in ns.
fn process_cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| t.ok())
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// `requests` consumes (new trace ids each), `in_flight` at a time; returns the wall time and
/// the CPU time per request.
async fn run(
    p: &Arc<dyn Processor<Traces>>,
    template: &ExportTraceServiceRequest,
    requests: usize,
    in_flight: usize,
) -> (Duration, Duration) {
    let per_task = requests.div_ceil(in_flight).max(1);
    let batches: Vec<Vec<Traces>> = (0..in_flight)
        .map(|_| (0..per_task).map(|_| fresh(template)).collect())
        .collect();
    let cpu = process_cpu_ns();
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let p = p.clone();
            tokio::spawn(async move {
                for r in batch {
                    p.consume(r).await.expect("accepted");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let n = (per_task * in_flight) as u32;
    let cpu = Duration::from_nanos(process_cpu_ns().saturating_sub(cpu));
    (started.elapsed() / n, cpu / n)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

const VARIANTS: [Variant; 3] = [Variant::Memory, Variant::Wal, Variant::WalFsync];
const SHAPES: [(&str, usize); 2] = [("sequential", 1), ("16_in_flight", 16)];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The three variants measured in turns (round-robin, 15 rounds), so that the load of a
/// shared machine weighs on all of them alike: medians per request, wall and CPU.
fn interleaved() {
    let runtime = runtime();
    let template = weft_benches::traces_request(50, 10);
    let dirs: Vec<PathBuf> = VARIANTS.iter().map(|v| scratch(v.name())).collect();
    let processors: Vec<_> = VARIANTS
        .iter()
        .zip(&dirs)
        .map(|(v, d)| runtime.block_on(processor(*v, d)))
        .collect();
    println!("durable window: consume of one 500-span request, medians of 15 interleaved rounds");
    println!("| shape | window | wall / request | CPU / request | CPU vs memory |");
    println!("|---|---|---|---|---|");
    for (shape, in_flight) in SHAPES {
        let requests = 160;
        let mut wall = vec![Vec::new(); VARIANTS.len()];
        let mut cpu = vec![Vec::new(); VARIANTS.len()];
        runtime.block_on(async {
            for round in 0..15 {
                for k in 0..VARIANTS.len() {
                    let i = (round + k) % VARIANTS.len();
                    let (w, c) = run(&processors[i], &template, requests, in_flight).await;
                    wall[i].push(w);
                    cpu[i].push(c);
                }
            }
        });
        let base = median(cpu[0].clone()).as_secs_f64();
        for (i, v) in VARIANTS.iter().enumerate() {
            let c = median(cpu[i].clone()).as_secs_f64();
            println!(
                "| {shape} | {} | {:.2} ms | {:.2} ms | {:.2}x |",
                v.name(),
                median(wall[i].clone()).as_secs_f64() * 1e3,
                c * 1e3,
                c / base,
            );
        }
    }
    runtime.block_on(async {
        for p in &processors {
            let _ = p.shutdown(Instant::now() + Duration::from_secs(10)).await;
        }
    });
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn durable_window(c: &mut Criterion) {
    let runtime = runtime();
    let template = weft_benches::traces_request(50, 10);
    let mut group = c.benchmark_group("durable_window");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(500));
    for variant in VARIANTS {
        let dir = scratch(variant.name());
        let p = runtime.block_on(processor(variant, &dir));
        for (shape, in_flight) in SHAPES {
            group.bench_function(
                format!("consume_500_spans/{shape}/{}", variant.name()),
                |b| {
                    b.iter_custom(|iters| {
                        let (wall, _) =
                            runtime.block_on(run(&p, &template, iters as usize, in_flight));
                        wall * iters as u32
                    })
                },
            );
        }
        runtime.block_on(async {
            let _ = p.shutdown(Instant::now() + Duration::from_secs(10)).await;
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
}

criterion_group!(benches, durable_window);

fn main() {
    interleaved();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
