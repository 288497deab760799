"""Emits one small trace, or one log into an existing trace, through the official
OpenTelemetry Python SDK (OTLP/gRPC), and prints what it sent as JSON.

  trace: a SERVER root span and a CLIENT child, an INFO log inside the root and a log inside
         the child (--log-severity, --log-body); --child-name, --error (the child's status is
         ERROR), --attribute-bytes N (the child carries an attribute of N bytes).
         Prints {"trace_id", "root_span_id", "child_span_id"}.
  log:   one log with the given trace and span ids, as a log written inside that span after
         the span ended would be (--trace-id, --span-id, --body, --severity).

Each run flushes before it exits and fails if the export failed, so when it returns the
collector has answered for everything it sent.

Usage: emit_spans_and_logs.py --endpoint URL trace [...] | log --trace-id HEX --span-id HEX --body TEXT
"""

import argparse
import json
import sys
import time

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import (NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags,
                                 set_span_in_context)

SEVERITIES = {
    "DEBUG": SeverityNumber.DEBUG,
    "INFO": SeverityNumber.INFO,
    "WARN": SeverityNumber.WARN,
    "ERROR": SeverityNumber.ERROR,
}


def providers(endpoint, service):
    resource = Resource.create({"service.name": service})
    traces = TracerProvider(resource=resource)
    traces.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=30)))
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=30)))
    return traces, logs


def close(traces, logs):
    ok = traces.force_flush(30_000) and logs.force_flush(30_000)
    traces.shutdown()
    logs.shutdown()
    return ok


def emit_trace(args):
    traces, logs = providers(args.endpoint, args.service)
    tracer = traces.get_tracer("weft.test.status")
    logger = logs.get_logger("weft.test.status")
    start = time.time_ns()
    root = tracer.start_span(args.root_name, kind=SpanKind.SERVER, start_time=start)
    root_ctx = set_span_in_context(root)
    logger.emit(body="request received", severity_number=SeverityNumber.INFO, severity_text="INFO",
                context=root_ctx)
    attributes = {"biz_order_id": "o-1"}
    if args.attribute_bytes:
        attributes["payload"] = "x" * args.attribute_bytes
    child = tracer.start_span(args.child_name, kind=SpanKind.CLIENT, context=root_ctx,
                              start_time=start + 2_000_000, attributes=attributes)
    child_ctx = set_span_in_context(child)
    logger.emit(body=args.log_body, severity_number=SEVERITIES[args.log_severity], severity_text=args.log_severity,
                context=child_ctx, attributes={"biz_order_id": "o-1"})
    if args.error:
        child.set_status(Status(StatusCode.ERROR, "upstream failed"))
    child.end(end_time=start + 12_000_000)
    root.end(end_time=start + 20_000_000)
    out = {
        "trace_id": format(root.get_span_context().trace_id, "032x"),
        "root_span_id": format(root.get_span_context().span_id, "016x"),
        "child_span_id": format(child.get_span_context().span_id, "016x"),
    }
    ok = close(traces, logs)
    print(json.dumps(out))
    return 0 if ok else 1


def emit_log(args):
    traces, logs = providers(args.endpoint, args.service)
    logger = logs.get_logger("weft.test.status")
    context = SpanContext(trace_id=int(args.trace_id, 16), span_id=int(args.span_id, 16), is_remote=False,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
    logger.emit(body=args.body, severity_number=SEVERITIES[args.severity], severity_text=args.severity,
                context=set_span_in_context(NonRecordingSpan(context)), attributes={"late": True})
    ok = close(traces, logs)
    print(json.dumps({"trace_id": args.trace_id, "span_id": args.span_id}))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--service", default="checkout")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("trace")
    t.add_argument("--root-name", default="POST /orders")
    t.add_argument("--child-name", default="Charge")
    t.add_argument("--error", action="store_true")
    t.add_argument("--log-body", default="charging the card")
    t.add_argument("--log-severity", choices=SEVERITIES, default="INFO")
    t.add_argument("--attribute-bytes", type=int, default=0)
    lg = sub.add_parser("log")
    lg.add_argument("--trace-id", required=True)
    lg.add_argument("--span-id", required=True)
    lg.add_argument("--body", required=True)
    lg.add_argument("--severity", choices=SEVERITIES, default="INFO")
    args = p.parse_args()
    return emit_trace(args) if args.what == "trace" else emit_log(args)


if __name__ == "__main__":
    sys.exit(main())
