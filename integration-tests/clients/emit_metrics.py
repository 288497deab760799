"""Records metrics with every instrument kind of the official OpenTelemetry Python SDK and
exports them with the SDK's default OTLP metric exporter (gRPC or HTTP/protobuf, default
temporality and aggregation, one View for an exponential histogram), then writes a manifest
of exactly what the exporter sent: every data point of every export, with its values.

Instruments: Counter (int and float), UpDownCounter, Histogram (explicit buckets, some
measurements inside a sampled span so the SDK attaches exemplars with trace ids), Histogram
with the exponential aggregation, Gauge (synchronous), ObservableCounter,
ObservableUpDownCounter, ObservableGauge. Several attribute sets each, several collections.

Exits non-zero when an export failed or the SDK logged a warning or an error.

Usage: emit_metrics.py --endpoint URL --protocol grpc|http --service NAME --out manifest.json
"""

import argparse
import json
import logging
import random
import sys

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
    Sum,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider


class Problems(logging.Handler):
    """Every warning or error the SDK logs (a failed export is one)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append("%s: %s" % (record.name, record.getMessage()))


class Recording(MetricExporter):
    """The SDK's OTLP exporter, unchanged, with a record of what it was asked to send."""

    def __init__(self, inner):
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.sent = []
        self.results = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis)
        self.results.append(result)
        self.sent.append(metrics_data)
        return result

    def force_flush(self, timeout_millis=10_000):
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis=30_000, **kwargs):
        self.inner.shutdown(timeout_millis=timeout_millis)


def otlp_exporter(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=endpoint.rstrip("/") + "/v1/metrics")


def number(value):
    # The OTLP encoding: ints go as as_int, floats as as_double.
    return {"as_int": value} if isinstance(value, int) else {"as_double": float(value)}


def exemplars(point):
    out = []
    for e in point.exemplars or []:
        out.append({
            "trace_id": format(e.trace_id, "032x") if e.trace_id else "",
            "span_id": format(e.span_id, "016x") if e.span_id else "",
            "time_unix_nano": e.time_unix_nano,
            "value": number(e.value),
        })
    return out


def point_json(metric, point):
    base = {
        "metric": metric.name,
        "unit": metric.unit or "",
        "description": metric.description or "",
        "attributes": dict(point.attributes or {}),
        "start_time_unix_nano": point.start_time_unix_nano or 0,
        "time_unix_nano": point.time_unix_nano,
    }
    data = metric.data
    if isinstance(data, Sum):
        base.update({
            "type": "sum",
            "monotonic": bool(data.is_monotonic),
            "temporality": int(data.aggregation_temporality),
            "value": number(point.value),
            "exemplars": exemplars(point),
        })
    elif isinstance(data, Gauge):
        base.update({"type": "gauge", "value": number(point.value), "exemplars": exemplars(point)})
    elif isinstance(data, Histogram):
        base.update({
            "type": "histogram",
            "temporality": int(data.aggregation_temporality),
            "count": point.count,
            "sum": float(point.sum),
            "bucket_counts": list(point.bucket_counts),
            "explicit_bounds": [float(b) for b in point.explicit_bounds],
            "min": float(point.min),
            "max": float(point.max),
            "exemplars": exemplars(point),
        })
    elif isinstance(data, ExponentialHistogram):
        base.update({
            "type": "exponential_histogram",
            "temporality": int(data.aggregation_temporality),
            "count": point.count,
            "sum": float(point.sum),
            "scale": point.scale,
            "zero_count": point.zero_count,
            "positive": {"offset": point.positive.offset, "bucket_counts": list(point.positive.bucket_counts)},
            "negative": {"offset": point.negative.offset, "bucket_counts": list(point.negative.bucket_counts)},
            "min": float(point.min),
            "max": float(point.max),
            "exemplars": exemplars(point),
        })
    else:
        raise TypeError("unexpected metric data %r" % type(data))
    return base


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--protocol", choices=["grpc", "http"], required=True)
    p.add_argument("--service", default="inventory")
    p.add_argument("--collections", type=int, default=3)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    rnd = random.Random(args.seed)

    problems = Problems()
    logging.getLogger().addHandler(problems)

    resource = Resource.create({"service.name": args.service, "service.version": "2.0.1"})
    exporter = Recording(otlp_exporter(args.protocol, args.endpoint))
    # A long interval: the collections below are the explicit force_flush calls.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[View(instrument_name="payload.size", aggregation=ExponentialBucketHistogramAggregation())],
    )
    tracer = TracerProvider(resource=resource).get_tracer("weft.test.metrics.tracer")
    meter = provider.get_meter("weft.test.metrics", "0.3.0")

    orders = meter.create_counter("orders.created", unit="{order}", description="orders placed")
    revenue = meter.create_counter("orders.revenue", unit="EUR")
    queue = meter.create_up_down_counter("queue.items", unit="{item}")
    latency = meter.create_histogram("http.server.request.duration", unit="s")
    size = meter.create_histogram("payload.size", unit="By")
    temperature = meter.create_gauge("device.temperature", unit="Cel")

    state = {"cpu": 0.0, "open": 10}

    def cpu_time(options: CallbackOptions):
        state["cpu"] += 0.25
        yield Observation(state["cpu"], {"cpu": "0"})
        yield Observation(state["cpu"] * 2, {"cpu": "1"})

    def connections(options: CallbackOptions):
        state["open"] += rnd.randint(-3, 3)
        yield Observation(state["open"], {"pool": "db"})

    def memory(options: CallbackOptions):
        yield Observation(rnd.randint(1_000_000, 2_000_000), {"area": "heap"})
        yield Observation(rnd.randint(100_000, 200_000), {"area": "stack"})

    meter.create_observable_counter("process.cpu.time", [cpu_time], unit="s")
    meter.create_observable_up_down_counter("db.connections.open", [connections], unit="{connection}")
    meter.create_observable_gauge("process.memory.usage", [memory], unit="By")

    regions = ["eu", "us", "ap"]
    routes = ["/cart", "/pay", "/search"]
    for _ in range(args.collections):
        for _ in range(40):
            region = rnd.choice(regions)
            orders.add(rnd.randint(1, 3), {"region": region})
            revenue.add(round(rnd.uniform(1, 90), 2), {"region": region, "vip": rnd.random() < 0.3})
            queue.add(rnd.randint(-2, 4), {"queue": rnd.choice(["mail", "sms"])})
            route = rnd.choice(routes)
            duration = rnd.choice([0.001, 0.02, 0.3, 1.7, 12.0]) * rnd.uniform(0.5, 1.5)
            if rnd.random() < 0.5:
                # Inside a sampled span: the SDK keeps the measurement as an exemplar.
                with tracer.start_as_current_span("handle " + route):
                    latency.record(duration, {"http.route": route})
            else:
                latency.record(duration, {"http.route": route})
            size.record(rnd.choice([0, 12, 900, 64_000, 3_000_000]) * rnd.uniform(0.9, 1.1), {"direction": "in"})
            temperature.set(round(rnd.uniform(30, 80), 1), {"sensor": rnd.choice(["a", "b"])})
        if not provider.force_flush(60_000):
            problems.records.append("force_flush timed out")

    provider.shutdown()

    points = []
    for data in exporter.sent:
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        item = point_json(metric, point)
                        item["scope"] = sm.scope.name
                        item["scope_version"] = sm.scope.version or ""
                        points.append(item)
    failed = [r for r in exporter.results if r != MetricExportResult.SUCCESS]
    manifest = {
        "resource": dict(resource.attributes),
        "points": points,
        "exports": len(exporter.results),
        "failed_exports": len(failed),
        "sdk_problems": problems.records,
    }
    with open(args.out, "w") as f:
        json.dump(manifest, f)
    print("exported %d data points in %d exports (%d failed); SDK problems: %s"
          % (len(points), len(exporter.results), len(failed), problems.records))
    return 0 if not failed and not problems.records else 1


if __name__ == "__main__":
    sys.exit(main())
