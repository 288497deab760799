//! The ceiling: how fast this machine decodes an OTLP trace request with prost alone.
//! Weft's pipeline throughput is reported as a fraction of this (docs/BENCHMARKS.md). Beside
//! it, what Weft's receiver does instead: the wire scan that checks a request (what decoding
//! plus validation would check) without building it.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

fn decode(c: &mut Criterion) {
    let request = weft_benches::traces_request(50, 10);
    let bytes = request.encode_to_vec();
    let spans = 500u64;
    let mut group = c.benchmark_group("prost_decode");
    group.throughput(Throughput::Elements(spans));
    group.bench_function("export_trace_request_500_spans", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid payload"))
    });
    group.finish();
    let mut group = c.benchmark_group("wire_scan");
    group.throughput(Throughput::Elements(spans));
    let limits = weft_proto::limits::Limits::default();
    group.bench_function("export_trace_request_500_spans", |b| {
        b.iter(|| weft_proto::wire::scan_traces(&bytes, &limits).expect("valid payload"))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
