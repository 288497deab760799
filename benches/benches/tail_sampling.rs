//! The tail-sampling window: insert + decide throughput, and bytes held per buffered span.
//!
//! `cargo bench -p weft-benches --bench tail_sampling` first prints the memory measurement
//! (live heap bytes the window holds per buffered span, against the span's encoded OTLP size),
//! then runs the criterion throughput benches.

// A counting allocator is the only way to see what the window really holds.
#![allow(unsafe_code, clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use prost::Message;
use weft::component::BuildContext;
use weft::processors::tail_sampling::config::TailSamplingConfig;
use weft::processors::tail_sampling::TailSampling;
use weft::telemetry::Telemetry;
use weft_config::{ComponentId, ConfigPath, Diagnostics, Kind};

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

const CONFIG: &str = "
decision_wait: 10s
num_traces: 1000000
max_bytes: 0
decision_cache: {sampled_cache_size: 0, non_sampled_cache_size: 0}
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 1000}}
  - {name: tenants, type: string_attribute, string_attribute: {key: biz_user_id, values: [u-1, u-2]}}
";

fn core() -> TailSampling {
    let value: serde_yaml::Value = serde_yaml::from_str(CONFIG).expect("bench config");
    let mut diags = Diagnostics::new();
    let cfg: TailSamplingConfig =
        weft_config::decode_component(&value, &ConfigPath::root(), &mut diags)
            .expect("valid config");
    let ctx = BuildContext {
        id: ComponentId::new("tail_sampling", None),
        kind: Kind::Processor,
        telemetry: Telemetry::new(),
        health: Default::default(),
        shared: Default::default(),
    };
    TailSampling::new(&ctx, cfg, Arc::new(Instant::now)).expect("core")
}

/// Live heap bytes the window holds per buffered span, against the encoded size.
fn memory_per_span() {
    let core = core();
    let batches: Vec<_> = (0..20u64)
        .map(|b| {
            let mut r = weft_benches::traces_request(50, 10);
            // Distinct trace ids per batch.
            for rs in &mut r.resource_spans {
                for ss in &mut rs.scope_spans {
                    for s in &mut ss.spans {
                        s.trace_id[8..].copy_from_slice(&b.to_be_bytes());
                    }
                }
            }
            r
        })
        .collect();
    let encoded: usize = batches.iter().map(|b| b.encoded_len()).sum();
    let spans = 20 * 500;
    let now = Instant::now();
    // The requests are moved into the window, so the heap they occupy (measured once on a
    // clone) is taken off the baseline: everything above it after ingest is what the window
    // holds, spans included.
    let empty = LIVE.load(Ordering::Relaxed);
    let decoded = {
        let copy = batches.clone();
        let with_copy = LIVE.load(Ordering::Relaxed);
        drop(copy);
        with_copy - empty
    };
    let before = LIVE.load(Ordering::Relaxed) - decoded;
    for b in batches {
        drop(core.window().ingest_spans(b, now));
    }
    let held = LIVE.load(Ordering::Relaxed) as i64 - before as i64;
    println!(
        "window memory: {spans} spans buffered, encoded OTLP {encoded} B ({:.0} B/span), heap held {held} B ({:.0} B/span), ratio {:.2}x encoded (window accounting: {} B)",
        encoded as f64 / spans as f64,
        held as f64 / spans as f64,
        held as f64 / encoded as f64,
        core.window().byte_count(),
    );
    drop(core.window().flush_all(now + Duration::from_secs(60), true));
}

fn insert_and_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("tail_sampling");
    let request = weft_benches::traces_request(50, 10);
    group.throughput(Throughput::Elements(500));
    group.bench_function("ingest_and_decide_500_spans", |b| {
        let core = core();
        let mut t = Instant::now();
        b.iter(|| {
            let out = core.window().ingest_spans(request.clone(), t);
            t += Duration::from_secs(11);
            let decided = core.window().tick(t);
            (out, decided)
        })
    });
    group.bench_function("clone_only_baseline_500_spans", |b| {
        b.iter(|| request.clone())
    });
    group.finish();
}

criterion_group!(benches, insert_and_decide);

fn main() {
    memory_per_span();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
