"""A small online shop, instrumented with the official OpenTelemetry Python SDK: the demo
workload of `make run`.

Three services (frontend → checkout → payments, plus inventory) handle orders. Each request
is a trace across the services with structured logs inside its spans, carrying the business
keys the users' zap/zerolog logs carry (biz_order_id, biz_user_id). Some payments fail
(status ERROR plus an ERROR log), some inventory lookups are slow (the trace lasts > 1 s),
a few requests only log an ERROR while every span is OK, the rest are fast and healthy. A
background job logs outside any trace.

Span timestamps are set explicitly, so "slow" requests do not make the demo wait.

Usage: shop.py --endpoint http://127.0.0.1:4317 [--requests 200] [--rate 50] [--summary out.json]
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

SERVICES = ["frontend", "checkout", "payments", "inventory"]
MS = 1_000_000


class Service:
    def __init__(self, name, endpoint):
        resource = Resource.create({"service.name": name, "service.version": "2.3.1",
                                    "deployment.environment": "demo", "host.name": "demo-%s-1" % name})
        self.traces = TracerProvider(resource=resource)
        self.traces.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        self.logs = LoggerProvider(resource=resource)
        self.logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
        self.tracer = self.traces.get_tracer("shop." + name, "2.3.1")
        self.logger = self.logs.get_logger("shop." + name, "2.3.1")

    def log(self, span, severity, text, message, **attrs):
        self.logger.emit(body=message, severity_number=severity, severity_text=text,
                         context=set_span_in_context(span) if span else None, attributes=attrs)

    def close(self):
        self.traces.force_flush(30_000)
        self.logs.force_flush(30_000)
        self.traces.shutdown()
        self.logs.shutdown()


def request(svc, rnd, i, kind):
    order = "ord-%06d" % (100000 + i)
    user = "u-%04d" % rnd.randint(1, 5000)
    t0 = time.time_ns()
    fe, co, pay, inv = svc["frontend"], svc["checkout"], svc["payments"], svc["inventory"]
    total_ms = 1400 + rnd.randint(0, 600) if kind == "slow" else rnd.randint(20, 180)

    root = fe.tracer.start_span("POST /api/orders", kind=SpanKind.SERVER, start_time=t0,
                                attributes={"http.request.method": "POST", "http.route": "/api/orders",
                                            "biz_order_id": order, "biz_user_id": user})
    fe.log(root, SeverityNumber.INFO, "INFO", "order received", biz_order_id=order, biz_user_id=user)
    ctx = set_span_in_context(root)
    checkout = co.tracer.start_span("PlaceOrder", kind=SpanKind.SERVER, context=ctx, start_time=t0 + 2 * MS)
    co.log(checkout, SeverityNumber.INFO, "INFO", "placing order", biz_order_id=order)
    cctx = set_span_in_context(checkout)

    stock = inv.tracer.start_span("CheckStock", kind=SpanKind.SERVER, context=cctx, start_time=t0 + 4 * MS,
                                  attributes={"db.system": "postgresql"})
    stock_ms = total_ms - 20 if kind == "slow" else rnd.randint(2, 10)
    if kind == "slow":
        inv.log(stock, SeverityNumber.WARN, "WARN", "stock query slow: %d ms" % stock_ms,
                biz_order_id=order, db_statement="SELECT qty FROM stock WHERE sku = $1")
    else:
        inv.log(stock, SeverityNumber.DEBUG, "DEBUG", "stock ok", biz_order_id=order)
    stock.end(end_time=t0 + (4 + stock_ms) * MS)

    charge = pay.tracer.start_span("Charge", kind=SpanKind.SERVER, context=cctx,
                                   start_time=t0 + (6 + stock_ms) * MS,
                                   attributes={"payment.provider": "acme-pay", "biz_order_id": order})
    if kind == "error":
        charge.set_status(Status(StatusCode.ERROR, "card declined"))
        pay.log(charge, SeverityNumber.ERROR, "ERROR", "payment failed: card declined",
                biz_order_id=order, biz_user_id=user, error_code="CARD_DECLINED")
    elif kind == "log_error":
        pay.log(charge, SeverityNumber.ERROR, "ERROR", "fraud check timed out; charged without it",
                biz_order_id=order, biz_user_id=user)
    else:
        pay.log(charge, SeverityNumber.INFO, "INFO", "payment captured", biz_order_id=order, amount_cents=rnd.randint(500, 90000))
    charge.end(end_time=t0 + (10 + stock_ms) * MS)

    if kind == "error":
        checkout.set_status(Status(StatusCode.ERROR, "payment failed"))
        root.set_status(Status(StatusCode.ERROR))
    checkout.end(end_time=t0 + (total_ms - 2) * MS)
    fe.log(root, SeverityNumber.INFO, "INFO", "order %s" % ("failed" if kind == "error" else "completed"),
           biz_order_id=order, http_status=502 if kind == "error" else 201)
    root.end(end_time=t0 + total_ms * MS)
    return format(root.get_span_context().trace_id, "032x")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", default="http://127.0.0.1:4317")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--rate", type=float, default=50.0, help="requests per second")
    p.add_argument("--summary", help="write the trace ids by kind to this JSON file")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args()
    rnd = random.Random(args.seed)
    svc = {name: Service(name, args.endpoint) for name in SERVICES}
    by_kind = {"error": [], "slow": [], "log_error": [], "ok": []}
    for i in range(args.requests):
        roll = rnd.random()
        kind = "error" if roll < 0.06 else "slow" if roll < 0.11 else "log_error" if roll < 0.13 else "ok"
        by_kind[kind].append(request(svc, rnd, i, kind))
        if i % 25 == 0:
            svc["checkout"].log(None, SeverityNumber.INFO, "INFO", "outbox relay: %d events published" % rnd.randint(0, 40))
        time.sleep(1.0 / args.rate)
    for s in svc.values():
        s.close()
    counts = {k: len(v) for k, v in by_kind.items()}
    print("shop: sent %d requests: %s" % (args.requests, ", ".join("%s %d" % kv for kv in counts.items())))
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(by_kind, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
