"""Emits traces whose spans and logs come from two services through two different agents, as
several services' sidecars would send them: the "frontend" service (the SERVER root span, a
"SELECT cart" child, their logs) exports to --endpoint-a; the "payments" service (a
"POST /payments" child of the same trace, its logs) exports to --endpoint-b. Writes a manifest
of every trace: its category, span ids and log bodies.

Categories (shares of --traces): error (the payments span has status ERROR and logs an ERROR),
slow (the root lasts --slow-ms, timestamps set explicitly: no sleeping), ok.
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


def service(name, endpoint):
    resource = Resource.create({"service.name": name})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=30),
                           max_export_batch_size=128, max_queue_size=100000, schedule_delay_millis=200))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=30),
                                max_export_batch_size=128, max_queue_size=100000, schedule_delay_millis=200))
    return (tracer_provider, logger_provider,
            tracer_provider.get_tracer("weft.test." + name), logger_provider.get_logger("weft.test." + name))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint-a", required=True)
    p.add_argument("--endpoint-b", required=True)
    p.add_argument("--traces", type=int, default=300)
    p.add_argument("--error-share", type=float, default=0.1)
    p.add_argument("--slow-share", type=float, default=0.1)
    p.add_argument("--slow-ms", type=int, default=1500)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--pause-every", type=int, default=0, help="sleep --pause-ms after every N traces")
    p.add_argument("--pause-ms", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    rnd = random.Random(args.seed)

    tp_a, lp_a, tracer_a, logger_a = service("frontend", args.endpoint_a)
    tp_b, lp_b, tracer_b, logger_b = service("payments", args.endpoint_b)

    n = args.traces
    counts = {"error": round(n * args.error_share), "slow": round(n * args.slow_share)}
    categories = [c for c, k in counts.items() for _ in range(k)]
    categories += ["ok"] * (n - len(categories))
    rnd.shuffle(categories)

    manifest = {"traces": []}
    for i, category in enumerate(categories):
        start = time.time_ns()
        root_ms = args.slow_ms if category == "slow" else rnd.randint(5, 200)
        root = tracer_a.start_span("GET /checkout", kind=SpanKind.SERVER, start_time=start)
        ctx = set_span_in_context(root)
        entry = {"category": category, "trace_id": format(root.get_span_context().trace_id, "032x"),
                 "spans": [format(root.get_span_context().span_id, "016x")], "logs": []}

        def emit(logger, body, severity, text, context):
            logger.emit(body=body, severity_number=severity, severity_text=text, context=context)
            entry["logs"].append(body)

        emit(logger_a, "checkout %d started" % i, SeverityNumber.INFO, "INFO", ctx)
        cart = tracer_a.start_span("SELECT cart", kind=SpanKind.CLIENT, context=ctx, start_time=start + 1_000_000)
        entry["spans"].append(format(cart.get_span_context().span_id, "016x"))
        emit(logger_a, "cart loaded for %d" % i, SeverityNumber.DEBUG, "DEBUG", set_span_in_context(cart))
        cart.end(end_time=start + 2_000_000)
        pay = tracer_b.start_span("POST /payments", kind=SpanKind.SERVER, context=ctx, start_time=start + 2_000_000)
        pay_ctx = set_span_in_context(pay)
        entry["spans"].append(format(pay.get_span_context().span_id, "016x"))
        emit(logger_b, "charging order %d" % i, SeverityNumber.INFO, "INFO", pay_ctx)
        if category == "error":
            pay.set_status(Status(StatusCode.ERROR, "card declined"))
            emit(logger_b, "payment failed for %d" % i, SeverityNumber.ERROR, "ERROR", pay_ctx)
        pay.end(end_time=start + 3_000_000)
        root.set_status(Status(StatusCode.OK))
        root.end(end_time=start + root_ms * 1_000_000)
        manifest["traces"].append(entry)
        if args.pause_every and (i + 1) % args.pause_every == 0:
            time.sleep(args.pause_ms / 1000.0)

    ok = all(p.force_flush(60_000) for p in (tp_a, lp_a, tp_b, lp_b))
    for p in (tp_a, lp_a, tp_b, lp_b):
        p.shutdown()
    with open(args.out, "w") as f:
        json.dump(manifest, f)
    print("emitted %d traces (%s) through two agents" % (n, counts))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
