"""Emits a tail-sampling workload through the official OpenTelemetry Python SDK and writes
a manifest of every trace with its category, spans and logs.

Categories (shares are of --traces):
  error      a child span with status ERROR (and an ERROR log inside it)
  slow       a root span lasting --slow-ms (timestamps set explicitly: no sleeping)
  log_error  every span OK, but one log inside a span is at severity ERROR
  ok         fast, OK, INFO/DEBUG logs only
Each trace has a SERVER root and two children across the request, with logs emitted inside
spans (the SDK stamps them with trace and span ids). --orphan-logs logs are emitted outside
any span.
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
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--traces", type=int, default=600)
    p.add_argument("--error-share", type=float, default=0.08)
    p.add_argument("--slow-share", type=float, default=0.07)
    p.add_argument("--log-error-share", type=float, default=0.0)
    p.add_argument("--slow-ms", type=int, default=1500)
    p.add_argument("--orphan-logs", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    rnd = random.Random(args.seed)

    resource = Resource.create({"service.name": "frontend", "deployment.environment": "test"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=30),
                           max_export_batch_size=256, max_queue_size=100000))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=args.endpoint, insecure=True, timeout=30),
                                max_export_batch_size=256, max_queue_size=100000))
    tracer = tracer_provider.get_tracer("weft.test.traffic")
    logger = logger_provider.get_logger("weft.test.traffic.logs")

    # Exact category counts, shuffled, so the test knows precisely what to expect.
    n = args.traces
    counts = {
        "error": round(n * args.error_share),
        "slow": round(n * args.slow_share),
        "log_error": round(n * args.log_error_share),
    }
    categories = [c for c, k in counts.items() for _ in range(k)]
    categories += ["ok"] * (n - len(categories))
    rnd.shuffle(categories)

    manifest = {"traces": [], "orphan_logs": []}
    for i, category in enumerate(categories):
        start = time.time_ns()
        root_ms = args.slow_ms if category == "slow" else rnd.randint(5, 200)
        root = tracer.start_span("GET /checkout", kind=SpanKind.SERVER, start_time=start,
                                 attributes={"http.request.method": "GET", "biz_order_id": "o-%d" % i})
        ctx = set_span_in_context(root)
        entry = {"category": category, "trace_id": format(root.get_span_context().trace_id, "032x"),
                 "spans": [format(root.get_span_context().span_id, "016x")], "logs": []}

        def emit(body, severity, text, context):
            logger.emit(body=body, severity_number=severity, severity_text=text, context=context,
                        attributes={"biz_order_id": "o-%d" % i})
            entry["logs"].append(body)

        emit("checkout %d started" % i, SeverityNumber.INFO, "INFO", ctx)
        for name in ["SELECT cart", "POST /payments"]:
            child = tracer.start_span(name, kind=SpanKind.CLIENT, context=ctx, start_time=start + 1_000_000)
            child_ctx = set_span_in_context(child)
            entry["spans"].append(format(child.get_span_context().span_id, "016x"))
            emit("%s for %d" % (name, i), SeverityNumber.DEBUG, "DEBUG", child_ctx)
            if name == "POST /payments" and category == "error":
                child.set_status(Status(StatusCode.ERROR, "payment gateway 502"))
                emit("payment failed for %d" % i, SeverityNumber.ERROR, "ERROR", child_ctx)
            if name == "POST /payments" and category == "log_error":
                emit("payment retried after a gateway error for %d" % i, SeverityNumber.ERROR, "ERROR", child_ctx)
            child.end(end_time=start + 3_000_000)
        root.set_status(Status(StatusCode.ERROR) if category == "error" else Status(StatusCode.OK))
        root.end(end_time=start + root_ms * 1_000_000)
        manifest["traces"].append(entry)
    for i in range(args.orphan_logs):
        body = "scheduler heartbeat %d" % i
        logger.emit(body=body, severity_number=SeverityNumber.INFO, severity_text="INFO")
        manifest["orphan_logs"].append(body)

    ok = tracer_provider.force_flush(60_000) and logger_provider.force_flush(60_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    with open(args.out, "w") as f:
        json.dump(manifest, f)
    print("emitted %d traces (%s) and %d orphan logs" % (n, counts, args.orphan_logs))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
