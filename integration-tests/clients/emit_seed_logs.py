"""Emits the seed's JSON log lines (zap-style: one JSON object per line, as the services of
structured-logging-elk-jaeger write them) as OTLP log bodies through the official
OpenTelemetry Python SDK, with the traces they belong to, and writes a manifest.

The log records carry no trace context from the SDK: they are emitted outside any span, and
the trace id is only inside the JSON line, as in a file a log shipper tails. Weft's
`transform` must find it there for the line to join its trace.

Two services, one per routing domain: `order-api` (business, pod label app=order) and
`kafka-broker` (middleware, pod label component=kafka). Each runs four traces:

    err-fast  root span ERROR, 30 ms          kept (errors)
    ok-slow   root span OK, 800 ms            kept (slow, > 500 ms)
    err-slow  root span ERROR, 900 ms         kept
    ok-fast   root span OK, 30 ms             dropped

Each trace has an `info` line and an `error` line, valid under the seed's schema and full of
personal data (phone numbers, an ID card, a bank card, an e-mail, a bearer token, a key
outside the biz_ namespace); the `*-fast` traces also have an invalid line (level
`warning`). Each service also writes a valid line outside any trace and a plain-text line
(not JSON: invalid). Every line carries a unique `biz_line` id.

Usage: emit_seed_logs.py --endpoint URL --run RUN --out manifest.json
"""

import argparse
import datetime
import json
import sys
import time

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

SERVICES = [
    ("order-api", {"k8s.pod.labels.app": "order", "k8s.namespace.name": "shop", "host.ip": "10.0.0.7"}),
    ("kafka-broker", {"k8s.pod.labels.component": "kafka", "k8s.namespace.name": "infra", "host.ip": "10.0.0.9"}),
]

SCENARIOS = [
    # name, error, duration ms
    ("err-fast", True, 30),
    ("ok-slow", False, 800),
    ("err-slow", True, 900),
    ("ok-fast", False, 30),
]

PHONE = "13812345678"
OTHER_PHONE = "13912345678"
ID_CARD = "11010519491231002X"
CARD = "4111 1111 1111 1111"


def iso(ns):
    dt = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    lines = []
    providers = []
    for service, labels in SERVICES:
        resource = Resource.create(dict({"service.name": service}, **labels))
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=30)))
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=args.endpoint, insecure=True, timeout=30)))
        providers.append((tracer_provider, logger_provider))
        tracer = tracer_provider.get_tracer("seed.handler", "1.0.0")
        logger = logger_provider.get_logger("seed.zap", "1.0.0")

        def emit(line_id, scenario, trace_id, fields, valid, text=None):
            body = text if text is not None else json.dumps(dict(fields, biz_line=line_id))
            # Outside any span: the SDK stamps no trace context on the record.
            logger.emit(body=body)
            lines.append({"id": line_id, "service": service, "scenario": scenario,
                          "trace_id": trace_id, "level": fields.get("level", ""), "valid": valid})

        for name, error, duration_ms in SCENARIOS:
            end = time.time_ns()
            start = end - duration_ms * 1_000_000
            root = tracer.start_span("POST /api/v1/orders", kind=SpanKind.SERVER, start_time=start)
            child = tracer.start_span("SELECT orders", kind=SpanKind.CLIENT,
                                      context=set_span_in_context(root), start_time=start + 1_000_000)
            child.end(end_time=start + 5_000_000)
            root.set_status(Status(StatusCode.ERROR, "payment failed") if error else Status(StatusCode.OK))
            root.end(end_time=end)
            trace_id = format(root.get_span_context().trace_id, "032x")
            span_id = format(root.get_span_context().span_id, "016x")
            base = {"timestamp": iso(end), "service": service, "trace_id": trace_id, "span_id": span_id,
                    "caller": "handler.go:42"}
            emit("%s-%s-%s-info" % (args.run, service, name), name, trace_id,
                 dict(base, level="info", event="order placed by user %s" % PHONE, biz_phone=PHONE,
                      user_id=1001, context={"path": "/api/v1/orders", "biz_id_card": ID_CARD}), True)
            emit("%s-%s-%s-error" % (args.run, service, name), name, trace_id,
                 dict(base, level="error", event="payment declined: card %s, auth Bearer eyJhbGci.x-y" % CARD,
                      biz_email="li.lei@example.com", context={"path": "/api/v1/pay", "biz_mobile": OTHER_PHONE}),
                 True)
            if name.endswith("-fast"):
                emit("%s-%s-%s-invalid" % (args.run, service, name), name, trace_id,
                     dict(base, level="warning", event="retrying for %s" % PHONE), False)
        now = iso(time.time_ns())
        emit("%s-%s-notrace" % (args.run, service), "none", "",
             {"timestamp": now, "level": "info", "service": service, "event": "cron tick from %s" % PHONE},
             True)
        plain_id = "%s-%s-plain" % (args.run, service)
        emit(plain_id, "none", "", {}, False, text="plain text %s from %s" % (plain_id, OTHER_PHONE))

    ok = True
    for tracer_provider, logger_provider in providers:
        ok = tracer_provider.force_flush(60_000) and ok
    for tracer_provider, logger_provider in providers:
        ok = logger_provider.force_flush(60_000) and ok
        tracer_provider.shutdown()
        logger_provider.shutdown()
    with open(args.out, "w") as f:
        json.dump({"lines": lines, "flushed": bool(ok)}, f)
    print("emitted %d lines (flushed=%s)" % (len(lines), ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
