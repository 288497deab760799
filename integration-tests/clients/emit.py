"""Emits traces and logs through the official OpenTelemetry Python SDK, as an instrumented
service would, and writes a manifest of exactly what the SDK produced.

Each trace is a request: a SERVER root span with CLIENT/INTERNAL children, attributes of every
type, logs emitted inside spans (so the SDK stamps them with the span's trace and span ids),
and some logs outside any span. The manifest lets a test check that everything arrived
exactly once with its ids, names, status, attributes, resource and scope intact.

Usage: emit.py --endpoint URL --protocol grpc|http --traces N --out manifest.json
"""

import argparse
import json
import random
import sys
import time

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode


def exporters(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return (
            OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=30),
            OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=30),
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = endpoint.rstrip("/")
    return (
        OTLPSpanExporter(endpoint=base + "/v1/traces", timeout=30),
        OTLPLogExporter(endpoint=base + "/v1/logs", timeout=30),
    )


def hex_id(value, width):
    return format(value, "0%dx" % width) if value else ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--protocol", choices=["grpc", "http"], required=True)
    p.add_argument("--traces", type=int, default=20)
    p.add_argument("--service", default="checkout")
    p.add_argument("--error-ratio", type=float, default=0.1)
    p.add_argument("--orphan-logs", type=int, default=5, help="logs emitted outside any span")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    rnd = random.Random(args.seed)

    resource = Resource.create(
        {"service.name": args.service, "service.version": "1.4.2", "deployment.environment": "test"}
    )
    span_exporter, log_exporter = exporters(args.protocol, args.endpoint)
    seen_spans = InMemorySpanExporter()
    seen_logs = InMemoryLogRecordExporter()

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(seen_spans))
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter, max_export_batch_size=64))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(seen_logs))
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter, max_export_batch_size=64))

    tracer = tracer_provider.get_tracer("weft.test.emitter", "0.1.0")
    logger = logger_provider.get_logger("weft.test.emitter.logs", "0.1.0")

    for i in range(args.traces):
        failing = rnd.random() < args.error_ratio
        with tracer.start_as_current_span(
            "GET /orders/{id}",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "GET", "http.response.status_code": 500 if failing else 200,
                        "biz_order_id": "ord-%05d" % i, "retry": False, "load": 0.25},
        ) as root:
            logger.emit(body="request received", severity_number=SeverityNumber.INFO, severity_text="INFO",
                        attributes={"biz_user_id": "u-%d" % rnd.randint(1, 999)})
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT,
                                              attributes={"db.system": "postgresql", "db.rows": rnd.randint(0, 50)}):
                logger.emit(body="query orders", severity_number=SeverityNumber.DEBUG, severity_text="DEBUG")
            with tracer.start_as_current_span("render", attributes={"tags": ["a", "b"]}) as child:
                if failing:
                    child.set_status(Status(StatusCode.ERROR, "template missing"))
                    logger.emit(body="render failed: template missing", severity_number=SeverityNumber.ERROR,
                                severity_text="ERROR", attributes={"error.type": "TemplateError"})
            if failing:
                root.set_status(Status(StatusCode.ERROR, "internal error"))
            else:
                root.set_status(Status(StatusCode.OK))
    for i in range(args.orphan_logs):
        logger.emit(body="background job tick %d" % i, severity_number=SeverityNumber.WARN, severity_text="WARN",
                    attributes={"job": "compaction"})

    ok = tracer_provider.force_flush(60_000) and logger_provider.force_flush(60_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()

    spans = []
    for s in seen_spans.get_finished_spans():
        spans.append({
            "trace_id": hex_id(s.context.trace_id, 32),
            "span_id": hex_id(s.context.span_id, 16),
            "parent_span_id": hex_id(s.parent.span_id, 16) if s.parent else "",
            "name": s.name,
            "kind": s.kind.value + 1,  # SDK enum is 0-based; OTLP's SPAN_KIND_INTERNAL is 1
            "status_code": {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}[s.status.status_code],
            "status_message": s.status.description or "",
            "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (s.attributes or {}).items()},
            "scope": s.instrumentation_scope.name,
            "start_time_unix_nano": s.start_time,
            "end_time_unix_nano": s.end_time,
        })
    logs = []
    for data in seen_logs.get_finished_logs():
        r = data.log_record
        logs.append({
            "trace_id": hex_id(r.trace_id or 0, 32),
            "span_id": hex_id(r.span_id or 0, 16),
            "body": r.body,
            "severity_number": r.severity_number.value if r.severity_number else 0,
            "severity_text": r.severity_text or "",
            "attributes": dict(r.attributes or {}),
            "scope": data.instrumentation_scope.name,
            "time_unix_nano": r.timestamp,
        })
    manifest = {"resource": dict(resource.attributes), "spans": spans, "logs": logs, "flushed": bool(ok)}
    with open(args.out, "w") as f:
        json.dump(manifest, f)
    print("emitted %d spans and %d logs (flushed=%s)" % (len(spans), len(logs), ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
