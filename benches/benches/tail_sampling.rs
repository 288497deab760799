//! The tail-sampling window: insert + decide throughput, and bytes held per buffered span.
//!
//! `cargo bench -p weft-benches --bench tail_sampling` first prints the memory measurement
//! (live heap bytes the window holds per buffered span, against the span's encoded OTLP size)
//! and what the status page's decisions ring costs per span (CPU time, ring off and on in
//! interleaved rounds), then runs the criterion throughput benches.

// A counting allocator is the only way to see what the window really holds.
#![allow(unsafe_code, clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use prost::Message;
use weft::component::BuildContext;
use weft::pipeline::{Payload, Traces};
use weft::processors::tail_sampling::config::TailSamplingConfig;
use weft::processors::tail_sampling::decisions::RingSettings;
use weft::processors::tail_sampling::TailSampling;
use weft_config::{ConfigPath, Diagnostics, Kind};
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's own arguments, so the
// allocator contract (valid layouts, pointers from this allocator) is exactly System's; the
// only addition is a relaxed counter update, which cannot allocate or unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout (via `alloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `ptr`/`layout` describe a live System allocation.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const COMMON: &str = "
decision_wait: 10s
num_traces: 1000000
max_bytes: 0
decision_cache: {sampled_cache_size: 0, non_sampled_cache_size: 0}
";

/// Errors and slow traces: decided on span scalars alone.
const SCALAR_POLICIES: &str = "
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 1000}}
";

/// Adds a policy reading span attributes: every trace is decoded whole to be decided.
const ATTRIBUTE_POLICIES: &str = "
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 1000}}
  - {name: tenants, type: string_attribute, string_attribute: {key: biz_user_id, values: [u-1, u-2]}}
";

/// The status page's decisions ring (`weft_status` turns it on), at its default bounds.
fn ring() -> RingSettings {
    RingSettings {
        size: 10_000,
        keep_dropped_detail: false,
        detail_max_bytes: 64 << 20,
    }
}

fn core(policies: &str) -> TailSampling {
    let text = format!("{COMMON}{policies}");
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("bench config");
    let mut diags = Diagnostics::new();
    let cfg: TailSamplingConfig =
        weft_config::decode_component(&value, &ConfigPath::root(), &mut diags)
            .expect("valid config");
    let ctx = BuildContext::standalone("tail_sampling", Kind::Processor);
    TailSampling::new(&ctx, cfg, Arc::new(Instant::now)).expect("core")
}

/// Live heap bytes the window holds per buffered span, against the encoded size.
fn memory_per_span() {
    let core = core(SCALAR_POLICIES);
    // Everything allocated from here on and still live after ingest is the window's: the
    // requests are moved into it and consumed.
    let baseline = LIVE.load(Ordering::Relaxed);
    let mut encoded = 0;
    let spans = 20 * 500;
    let now = Instant::now();
    for b in 0..20u64 {
        let mut request = weft_benches::traces_request(50, 10);
        // Distinct trace ids per batch.
        for rs in &mut request.resource_spans {
            for ss in &mut rs.scope_spans {
                for s in &mut ss.spans {
                    s.trace_id[8..].copy_from_slice(&b.to_be_bytes());
                }
            }
        }
        encoded += request.encoded_len();
        drop(core.window().ingest_spans(as_received(&request), now));
    }
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(baseline);
    println!(
        "window memory: {spans} spans buffered; encoded OTLP {encoded} B ({:.0} B/span); heap held {held} B ({:.0} B/span) = {:.2}x encoded",
        encoded as f64 / spans as f64,
        held as f64 / spans as f64,
        held as f64 / encoded as f64,
    );
    drop(core.window().flush_all(now + Duration::from_secs(60), true));
}

/// A request as the receiver hands it on: its protobuf bytes, checked, not decoded.
fn as_received(request: &ExportTraceServiceRequest) -> Traces {
    let items = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    Traces::from_encoded(request.encode_to_vec().into(), items)
}

/// CPU time this thread has run, in nanoseconds (the bench is single-threaded: ingest and
/// decide run on the caller's thread). The thread's CPU clock, not `/proc`'s accounting,
/// which on this kind of VM moves in scheduler ticks.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_THREAD_CPUTIME_ID is a clock every Linux supports; on failure it is left zero.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `count` copies of the 500-span request, each with trace ids of its own (from `first`),
/// as the receiver hands them on.
fn distinct_requests(template: &ExportTraceServiceRequest, first: u64, count: u64) -> Vec<Traces> {
    (first..first + count)
        .map(|n| {
            let mut request = template.clone();
            for s in request
                .resource_spans
                .iter_mut()
                .flat_map(|r| &mut r.scope_spans)
                .flat_map(|s| &mut s.spans)
            {
                s.trace_id[8..].copy_from_slice(&n.to_be_bytes());
            }
            as_received(&request)
        })
        .collect()
}

/// The decisions ring's cost per span: the same window work (ingest a 500-span request of
/// 50 new traces, then decide them, 11 s later on the window's clock; all are dropped, as
/// most traces are) with the ring off and on, in
/// turns over 15 rounds so that a shared machine's load weighs on both alike; CPU time of
/// the deciding thread, the median of the rounds' on/off ratios. The ring is full (10 000
/// records) after the first round, so every decision also forgets the oldest record.
fn ring_cost() {
    const ROUNDS: usize = 15;
    const REQUESTS: u64 = 400;
    let template = weft_benches::traces_request(50, 10);
    let cores = [core(SCALAR_POLICIES), core(SCALAR_POLICIES)];
    cores[1].decisions_ring(ring());
    let mut clocks = [Instant::now(); 2];
    let mut next_id = [1u64; 2];
    let mut per_span = [Vec::new(), Vec::new()];
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let mut cpu = [0u64; 2];
        for k in 0..2 {
            let i = (round + k) % 2;
            let batches = distinct_requests(&template, next_id[i], REQUESTS);
            next_id[i] += REQUESTS;
            let started = thread_cpu_ns();
            for batch in batches {
                drop(cores[i].window().ingest_spans(batch, clocks[i]));
                clocks[i] += Duration::from_secs(11);
                drop(cores[i].window().tick(clocks[i]));
            }
            cpu[i] = thread_cpu_ns().saturating_sub(started);
            per_span[i].push(cpu[i] as f64 / (REQUESTS * 500) as f64);
        }
        if cpu[0] > 0 {
            ratios.push(cpu[1] as f64 / cpu[0] as f64);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let records = cores[1].window().ring().map_or(0, |r| r.stats().records);
    println!(
        "decisions ring: window CPU per span, ring off {:.0} ns, on {:.0} ns ({records} records held); on/off median of {ROUNDS} interleaved rounds {:+.1}% (rounds {:+.1}% … {:+.1}%)",
        median(per_span[0].clone()),
        median(per_span[1].clone()),
        (median(ratios.clone()) - 1.0) * 100.0,
        (ratios.iter().copied().fold(f64::INFINITY, f64::min) - 1.0) * 100.0,
        (ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 1.0) * 100.0,
    );
}

fn insert_and_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("tail_sampling");
    let request = weft_benches::traces_request(50, 10);
    group.throughput(Throughput::Elements(500));
    for (name, policies, with_ring) in [
        ("scalar_policies", SCALAR_POLICIES, false),
        ("attribute_policy", ATTRIBUTE_POLICIES, false),
        // The same with the status page's decisions ring on: what it costs per span.
        ("scalar_policies+decisions_ring", SCALAR_POLICIES, true),
        ("attribute_policy+decisions_ring", ATTRIBUTE_POLICIES, true),
    ] {
        group.bench_function(format!("ingest_and_decide_500_spans/{name}"), |b| {
            let core = core(policies);
            if with_ring {
                core.decisions_ring(ring());
            }
            let mut t = Instant::now();
            // The batch is made outside the measurement: ingest takes it by value, as the
            // pipeline hands it over (the receiver's bytes, checked but not decoded).
            b.iter_batched(
                || as_received(&request),
                |r| {
                    let out = core.window().ingest_spans(r, t);
                    t += Duration::from_secs(11);
                    let decided = core.window().tick(t);
                    (out, decided)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, insert_and_decide);

fn main() {
    memory_per_span();
    ring_cost();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
