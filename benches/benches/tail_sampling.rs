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

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use prost::Message;
use weft::component::BuildContext;
use weft::pipeline::{Payload, Traces};
use weft::processors::tail_sampling::config::TailSamplingConfig;
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

fn insert_and_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("tail_sampling");
    let request = weft_benches::traces_request(50, 10);
    group.throughput(Throughput::Elements(500));
    for (name, policies) in [
        ("scalar_policies", SCALAR_POLICIES),
        ("attribute_policy", ATTRIBUTE_POLICIES),
    ] {
        group.bench_function(format!("ingest_and_decide_500_spans/{name}"), |b| {
            let core = core(policies);
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
    benches();
    Criterion::default().configure_from_args().final_summary();
}
