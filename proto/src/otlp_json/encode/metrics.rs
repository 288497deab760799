//! OTLP/JSON encoding of metrics export requests and responses.
//!
//! Beyond the proto3 rule (defaults are omitted), two kinds of fields are written whenever
//! they are set, because their presence is their meaning: the `value` oneof of number points
//! and exemplars (`"asDouble": 0`), and the proto3 `optional double`s of histograms (`sum`,
//! `min`, `max`: an absent sum means "not recorded", a zero sum does not).

use super::{key_value, object, push_display, resource, scope, write_f64, Obj};
use crate::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use crate::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogramDataPoint,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, SummaryDataPoint,
};

impl Obj<'_> {
    /// A double that is written unless it is 0 (proto3's default).
    fn double(&mut self, name: &str, v: f64) {
        if v != 0.0 {
            write_f64(self.key(name), v);
        }
    }

    /// A proto3 `optional double`: written whenever present.
    fn optional_double(&mut self, name: &str, v: Option<f64>) {
        if let Some(v) = v {
            write_f64(self.key(name), v);
        }
    }

    /// A oneof `sfixed64` member: a decimal string, written even when 0.
    fn oneof_int64(&mut self, name: &str, v: i64) {
        push_display(self.key(name), format_args!("\"{v}\""));
    }
}

pub(in crate::otlp_json) fn metrics_request(out: &mut String, r: &ExportMetricsServiceRequest) {
    object(out, |o| {
        o.array("resourceMetrics", &r.resource_metrics, resource_metrics)
    });
}

fn resource_metrics(out: &mut String, r: &ResourceMetrics) {
    object(out, |o| {
        o.message("resource", r.resource.as_ref(), resource);
        o.array("scopeMetrics", &r.scope_metrics, scope_metrics);
        o.string("schemaUrl", &r.schema_url);
    });
}

fn scope_metrics(out: &mut String, s: &ScopeMetrics) {
    object(out, |o| {
        o.message("scope", s.scope.as_ref(), scope);
        o.array("metrics", &s.metrics, metric);
        o.string("schemaUrl", &s.schema_url);
    });
}

fn metric(out: &mut String, m: &Metric) {
    object(out, |o| {
        o.string("name", &m.name);
        o.string("description", &m.description);
        o.string("unit", &m.unit);
        match &m.data {
            None => {}
            Some(Data::Gauge(g)) => object(o.key("gauge"), |o| {
                o.array("dataPoints", &g.data_points, number_point)
            }),
            Some(Data::Sum(s)) => object(o.key("sum"), |o| {
                o.array("dataPoints", &s.data_points, number_point);
                o.int("aggregationTemporality", s.aggregation_temporality);
                if s.is_monotonic {
                    o.key("isMonotonic").push_str("true");
                }
            }),
            Some(Data::Histogram(h)) => object(o.key("histogram"), |o| {
                o.array("dataPoints", &h.data_points, histogram_point);
                o.int("aggregationTemporality", h.aggregation_temporality);
            }),
            Some(Data::ExponentialHistogram(h)) => object(o.key("exponentialHistogram"), |o| {
                o.array("dataPoints", &h.data_points, exponential_point);
                o.int("aggregationTemporality", h.aggregation_temporality);
            }),
            Some(Data::Summary(s)) => object(o.key("summary"), |o| {
                o.array("dataPoints", &s.data_points, summary_point)
            }),
        }
        o.array("metadata", &m.metadata, key_value);
    });
}

fn number_point(out: &mut String, d: &NumberDataPoint) {
    object(out, |o| {
        o.array("attributes", &d.attributes, key_value);
        o.int64("startTimeUnixNano", d.start_time_unix_nano);
        o.int64("timeUnixNano", d.time_unix_nano);
        match d.value {
            Some(number_data_point::Value::AsDouble(v)) => write_f64(o.key("asDouble"), v),
            Some(number_data_point::Value::AsInt(v)) => o.oneof_int64("asInt", v),
            None => {}
        }
        o.array("exemplars", &d.exemplars, exemplar);
        o.int("flags", d.flags);
    });
}

/// One element of a repeated 64-bit integer: a decimal string.
fn count(out: &mut String, v: &u64) {
    push_display(out, format_args!("\"{v}\""));
}

fn histogram_point(out: &mut String, d: &HistogramDataPoint) {
    object(out, |o| {
        o.array("attributes", &d.attributes, key_value);
        o.int64("startTimeUnixNano", d.start_time_unix_nano);
        o.int64("timeUnixNano", d.time_unix_nano);
        o.int64("count", d.count);
        o.optional_double("sum", d.sum);
        o.array("bucketCounts", &d.bucket_counts, count);
        o.array("explicitBounds", &d.explicit_bounds, |out, b| {
            write_f64(out, *b)
        });
        o.array("exemplars", &d.exemplars, exemplar);
        o.int("flags", d.flags);
        o.optional_double("min", d.min);
        o.optional_double("max", d.max);
    });
}

fn buckets(out: &mut String, b: &Buckets) {
    object(out, |o| {
        o.int("offset", b.offset);
        o.array("bucketCounts", &b.bucket_counts, count);
    });
}

fn exponential_point(out: &mut String, d: &ExponentialHistogramDataPoint) {
    object(out, |o| {
        o.array("attributes", &d.attributes, key_value);
        o.int64("startTimeUnixNano", d.start_time_unix_nano);
        o.int64("timeUnixNano", d.time_unix_nano);
        o.int64("count", d.count);
        o.optional_double("sum", d.sum);
        o.int("scale", d.scale);
        o.int64("zeroCount", d.zero_count);
        o.message("positive", d.positive.as_ref(), buckets);
        o.message("negative", d.negative.as_ref(), buckets);
        o.int("flags", d.flags);
        o.array("exemplars", &d.exemplars, exemplar);
        o.optional_double("min", d.min);
        o.optional_double("max", d.max);
        o.double("zeroThreshold", d.zero_threshold);
    });
}

fn summary_point(out: &mut String, d: &SummaryDataPoint) {
    object(out, |o| {
        o.array("attributes", &d.attributes, key_value);
        o.int64("startTimeUnixNano", d.start_time_unix_nano);
        o.int64("timeUnixNano", d.time_unix_nano);
        o.int64("count", d.count);
        o.double("sum", d.sum);
        o.array("quantileValues", &d.quantile_values, value_at_quantile);
        o.int("flags", d.flags);
    });
}

fn value_at_quantile(out: &mut String, q: &ValueAtQuantile) {
    object(out, |o| {
        o.double("quantile", q.quantile);
        o.double("value", q.value);
    });
}

fn exemplar(out: &mut String, e: &Exemplar) {
    object(out, |o| {
        o.array("filteredAttributes", &e.filtered_attributes, key_value);
        o.int64("timeUnixNano", e.time_unix_nano);
        match e.value {
            Some(exemplar::Value::AsDouble(v)) => write_f64(o.key("asDouble"), v),
            Some(exemplar::Value::AsInt(v)) => o.oneof_int64("asInt", v),
            None => {}
        }
        o.hex_id("spanId", &e.span_id);
        o.hex_id("traceId", &e.trace_id);
    });
}

pub(in crate::otlp_json) fn metrics_response(out: &mut String, r: &ExportMetricsServiceResponse) {
    object(out, |o| {
        o.message(
            "partialSuccess",
            r.partial_success.as_ref(),
            metrics_partial_success,
        )
    });
}

fn metrics_partial_success(out: &mut String, s: &ExportMetricsPartialSuccess) {
    object(out, |o| {
        o.int64("rejectedDataPoints", s.rejected_data_points);
        o.string("errorMessage", &s.error_message);
    });
}
