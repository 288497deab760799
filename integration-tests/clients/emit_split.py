"""Emits traces in two parts, through the official OpenTelemetry Python SDK, for the test of a
durable window's restart: the first part before Weft is restarted, the rest after.

--phase first:
  --complete N traces, whole (a SERVER root and a child, a log in each); every third has an
  ERROR child. And --split N traces of which only the first part is sent: a child span (OK)
  and a log, under a remote parent span that is never sent (so the trace has no root and
  waits the whole decision_wait). Writes the manifest to --out.
--phase rest:
  reads --manifest and sends the rest of each split trace: a second child under the same
  remote parent, ERROR for the first --split-errors of them, OK for the others, and a log in
  it. Writes the manifest, completed, to --out.

The second part is timestamped 3 ms after the first (its delivery, not the work, waited for
the restart), so no split trace looks slow. Manifest: {"complete": [{trace_id, error, spans,
logs}], "split": [{trace_id, parent, error, start, spans, logs}]} with hex ids and log
bodies.
"""

import argparse
import json
import random
import sys
import time

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import (NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode,
                                 TraceFlags, set_span_in_context)


def remote_parent(trace_id, span_id):
    return set_span_in_context(NonRecordingSpan(SpanContext(
        trace_id=trace_id, span_id=span_id, is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--phase", choices=["first", "rest"], required=True)
    p.add_argument("--complete", type=int, default=9)
    p.add_argument("--split", type=int, default=10)
    p.add_argument("--split-errors", type=int, default=4)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--manifest")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    rnd = random.Random(args.seed)

    resource = Resource.create({"service.name": "checkout", "deployment.environment": "test"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=30)))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=args.endpoint, insecure=True, timeout=30)))
    tracer = tracer_provider.get_tracer("weft.test.split")
    logger = logger_provider.get_logger("weft.test.split.logs")

    def span_hex(span):
        return format(span.get_span_context().span_id, "016x")

    def child(name, context, error, entry, body, start=None):
        start = start or time.time_ns()
        span = tracer.start_span(name, kind=SpanKind.CLIENT, context=context, start_time=start)
        ctx = set_span_in_context(span)
        entry["spans"].append(span_hex(span))
        severity = (SeverityNumber.ERROR, "ERROR") if error else (SeverityNumber.INFO, "INFO")
        logger.emit(body=body, severity_number=severity[0], severity_text=severity[1], context=ctx)
        entry["logs"].append(body)
        if error:
            span.set_status(Status(StatusCode.ERROR, "payment gateway 502"))
        span.end(end_time=start + 2_000_000)

    if args.phase == "first":
        manifest = {"complete": [], "split": []}
        for i in range(args.complete):
            error = i % 3 == 0
            start = time.time_ns()
            root = tracer.start_span("GET /checkout", kind=SpanKind.SERVER, start_time=start)
            entry = {"trace_id": format(root.get_span_context().trace_id, "032x"), "error": error,
                     "spans": [span_hex(root)], "logs": []}
            child("POST /payments", set_span_in_context(root), error, entry,
                  "payment %d (complete)" % i)
            root.end(end_time=start + 5_000_000)
            manifest["complete"].append(entry)
        for i in range(args.split):
            trace_id, parent = rnd.getrandbits(128), rnd.getrandbits(64)
            entry = {"trace_id": format(trace_id, "032x"), "parent": format(parent, "016x"),
                     "error": i < args.split_errors, "start": time.time_ns(), "spans": [],
                     "logs": []}
            child("SELECT cart", remote_parent(trace_id, parent), False, entry,
                  "cart %d (before the restart)" % i, start=entry["start"])
            manifest["split"].append(entry)
    else:
        with open(args.manifest) as f:
            manifest = json.load(f)
        for i, entry in enumerate(manifest["split"]):
            context = remote_parent(int(entry["trace_id"], 16), int(entry["parent"], 16))
            # Timed as if it had happened right after the first part: only its delivery
            # waited for the restart (a trace seconds long would be kept as slow).
            child("POST /payments", context, entry["error"], entry,
                  "payment %d (after the restart)" % i, start=entry["start"] + 3_000_000)

    ok = tracer_provider.force_flush(60_000) and logger_provider.force_flush(60_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    with open(args.out, "w") as f:
        json.dump(manifest, f)
    print("phase %s: %d complete, %d split traces" % (
        args.phase, len(manifest["complete"]), len(manifest["split"])))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
