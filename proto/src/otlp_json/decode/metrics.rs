//! OTLP/JSON decoding of metrics export requests and responses.

use serde_json::Value;

use super::{
    attributes, boolean, double, enumeration, int32, int64, message, optional, repeated, resource,
    scope, span_id, string, trace_id, uint32, uint64, Path, Result,
};
use crate::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use crate::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};

pub(in crate::otlp_json) fn metrics_request(
    v: &Value,
    p: &Path<'_>,
) -> Result<ExportMetricsServiceRequest> {
    message(v, p, |r: &mut ExportMetricsServiceRequest, key, v, p| {
        if let "resourceMetrics" | "resource_metrics" = key {
            r.resource_metrics = repeated(v, p, resource_metrics)?;
        }
        Ok(())
    })
}

fn resource_metrics(v: &Value, p: &Path<'_>) -> Result<ResourceMetrics> {
    message(v, p, |r: &mut ResourceMetrics, key, v, p| {
        match key {
            "resource" => r.resource = optional(v, p, resource)?,
            "scopeMetrics" | "scope_metrics" => r.scope_metrics = repeated(v, p, scope_metrics)?,
            "schemaUrl" | "schema_url" => r.schema_url = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn scope_metrics(v: &Value, p: &Path<'_>) -> Result<ScopeMetrics> {
    message(v, p, |s: &mut ScopeMetrics, key, v, p| {
        match key {
            "scope" => s.scope = optional(v, p, scope)?,
            "metrics" => s.metrics = repeated(v, p, metric)?,
            "schemaUrl" | "schema_url" => s.schema_url = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

/// A oneof member: `null` leaves it unset; a second member is an error (proto3 JSON).
fn set_once<T>(slot: &mut Option<T>, value: Option<T>, p: &Path<'_>, what: &str) -> Result<()> {
    if let Some(value) = value {
        if slot.is_some() {
            return Err(p.error(format!(
                "{what} must have at most one of its oneof fields set"
            )));
        }
        *slot = Some(value);
    }
    Ok(())
}

fn metric(v: &Value, p: &Path<'_>) -> Result<Metric> {
    message(v, p, |m: &mut Metric, key, v, p| {
        let data = match key {
            "name" => {
                m.name = string(v, p)?;
                None
            }
            "description" => {
                m.description = string(v, p)?;
                None
            }
            "unit" => {
                m.unit = string(v, p)?;
                None
            }
            "metadata" => {
                m.metadata = attributes(v, p)?;
                None
            }
            "gauge" => optional(v, p, gauge)?.map(Data::Gauge),
            "sum" => optional(v, p, sum)?.map(Data::Sum),
            "histogram" => optional(v, p, histogram)?.map(Data::Histogram),
            "exponentialHistogram" | "exponential_histogram" => {
                optional(v, p, exponential_histogram)?.map(Data::ExponentialHistogram)
            }
            "summary" => optional(v, p, summary)?.map(Data::Summary),
            _ => None,
        };
        set_once(&mut m.data, data, p, "Metric")
    })
}

fn temporality(name: &str) -> Option<i32> {
    AggregationTemporality::from_str_name(name).map(|t| t as i32)
}

fn gauge(v: &Value, p: &Path<'_>) -> Result<Gauge> {
    message(v, p, |g: &mut Gauge, key, v, p| {
        if let "dataPoints" | "data_points" = key {
            g.data_points = repeated(v, p, number_point)?;
        }
        Ok(())
    })
}

fn sum(v: &Value, p: &Path<'_>) -> Result<Sum> {
    message(v, p, |s: &mut Sum, key, v, p| {
        match key {
            "dataPoints" | "data_points" => s.data_points = repeated(v, p, number_point)?,
            "aggregationTemporality" | "aggregation_temporality" => {
                s.aggregation_temporality = enumeration(v, p, temporality)?
            }
            "isMonotonic" | "is_monotonic" => s.is_monotonic = boolean(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn histogram(v: &Value, p: &Path<'_>) -> Result<Histogram> {
    message(v, p, |h: &mut Histogram, key, v, p| {
        match key {
            "dataPoints" | "data_points" => h.data_points = repeated(v, p, histogram_point)?,
            "aggregationTemporality" | "aggregation_temporality" => {
                h.aggregation_temporality = enumeration(v, p, temporality)?
            }
            _ => {}
        }
        Ok(())
    })
}

fn exponential_histogram(v: &Value, p: &Path<'_>) -> Result<ExponentialHistogram> {
    message(v, p, |h: &mut ExponentialHistogram, key, v, p| {
        match key {
            "dataPoints" | "data_points" => h.data_points = repeated(v, p, exponential_point)?,
            "aggregationTemporality" | "aggregation_temporality" => {
                h.aggregation_temporality = enumeration(v, p, temporality)?
            }
            _ => {}
        }
        Ok(())
    })
}

fn summary(v: &Value, p: &Path<'_>) -> Result<Summary> {
    message(v, p, |s: &mut Summary, key, v, p| {
        if let "dataPoints" | "data_points" = key {
            s.data_points = repeated(v, p, summary_point)?;
        }
        Ok(())
    })
}

/// A proto3 `optional double`: `null` is absent, anything else is present (even 0).
fn optional_double(v: &Value, p: &Path<'_>) -> Result<Option<f64>> {
    optional(v, p, double)
}

fn number_point(v: &Value, p: &Path<'_>) -> Result<NumberDataPoint> {
    use number_data_point::Value as V;
    message(v, p, |d: &mut NumberDataPoint, key, v, p| {
        let value = match key {
            "attributes" => {
                d.attributes = attributes(v, p)?;
                None
            }
            "startTimeUnixNano" | "start_time_unix_nano" => {
                d.start_time_unix_nano = uint64(v, p)?;
                None
            }
            "timeUnixNano" | "time_unix_nano" => {
                d.time_unix_nano = uint64(v, p)?;
                None
            }
            "exemplars" => {
                d.exemplars = repeated(v, p, exemplar)?;
                None
            }
            "flags" => {
                d.flags = uint32(v, p)?;
                None
            }
            "asDouble" | "as_double" => optional(v, p, double)?.map(V::AsDouble),
            "asInt" | "as_int" => optional(v, p, int64)?.map(V::AsInt),
            _ => None,
        };
        set_once(&mut d.value, value, p, "NumberDataPoint")
    })
}

fn histogram_point(v: &Value, p: &Path<'_>) -> Result<HistogramDataPoint> {
    message(v, p, |d: &mut HistogramDataPoint, key, v, p| {
        match key {
            "attributes" => d.attributes = attributes(v, p)?,
            "startTimeUnixNano" | "start_time_unix_nano" => d.start_time_unix_nano = uint64(v, p)?,
            "timeUnixNano" | "time_unix_nano" => d.time_unix_nano = uint64(v, p)?,
            "count" => d.count = uint64(v, p)?,
            "sum" => d.sum = optional_double(v, p)?,
            "bucketCounts" | "bucket_counts" => d.bucket_counts = repeated(v, p, uint64)?,
            "explicitBounds" | "explicit_bounds" => d.explicit_bounds = repeated(v, p, double)?,
            "exemplars" => d.exemplars = repeated(v, p, exemplar)?,
            "flags" => d.flags = uint32(v, p)?,
            "min" => d.min = optional_double(v, p)?,
            "max" => d.max = optional_double(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn buckets(v: &Value, p: &Path<'_>) -> Result<Buckets> {
    message(v, p, |b: &mut Buckets, key, v, p| {
        match key {
            "offset" => b.offset = int32(v, p)?,
            "bucketCounts" | "bucket_counts" => b.bucket_counts = repeated(v, p, uint64)?,
            _ => {}
        }
        Ok(())
    })
}

fn exponential_point(v: &Value, p: &Path<'_>) -> Result<ExponentialHistogramDataPoint> {
    message(v, p, |d: &mut ExponentialHistogramDataPoint, key, v, p| {
        match key {
            "attributes" => d.attributes = attributes(v, p)?,
            "startTimeUnixNano" | "start_time_unix_nano" => d.start_time_unix_nano = uint64(v, p)?,
            "timeUnixNano" | "time_unix_nano" => d.time_unix_nano = uint64(v, p)?,
            "count" => d.count = uint64(v, p)?,
            "sum" => d.sum = optional_double(v, p)?,
            "scale" => d.scale = int32(v, p)?,
            "zeroCount" | "zero_count" => d.zero_count = uint64(v, p)?,
            "positive" => d.positive = optional(v, p, buckets)?,
            "negative" => d.negative = optional(v, p, buckets)?,
            "flags" => d.flags = uint32(v, p)?,
            "exemplars" => d.exemplars = repeated(v, p, exemplar)?,
            "min" => d.min = optional_double(v, p)?,
            "max" => d.max = optional_double(v, p)?,
            "zeroThreshold" | "zero_threshold" => d.zero_threshold = double(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn summary_point(v: &Value, p: &Path<'_>) -> Result<SummaryDataPoint> {
    message(v, p, |d: &mut SummaryDataPoint, key, v, p| {
        match key {
            "attributes" => d.attributes = attributes(v, p)?,
            "startTimeUnixNano" | "start_time_unix_nano" => d.start_time_unix_nano = uint64(v, p)?,
            "timeUnixNano" | "time_unix_nano" => d.time_unix_nano = uint64(v, p)?,
            "count" => d.count = uint64(v, p)?,
            "sum" => d.sum = double(v, p)?,
            "quantileValues" | "quantile_values" => {
                d.quantile_values = repeated(v, p, value_at_quantile)?
            }
            "flags" => d.flags = uint32(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn value_at_quantile(v: &Value, p: &Path<'_>) -> Result<ValueAtQuantile> {
    message(v, p, |q: &mut ValueAtQuantile, key, v, p| {
        match key {
            "quantile" => q.quantile = double(v, p)?,
            "value" => q.value = double(v, p)?,
            _ => {}
        }
        Ok(())
    })
}

fn exemplar(v: &Value, p: &Path<'_>) -> Result<Exemplar> {
    use exemplar::Value as V;
    message(v, p, |e: &mut Exemplar, key, v, p| {
        let value = match key {
            "filteredAttributes" | "filtered_attributes" => {
                e.filtered_attributes = attributes(v, p)?;
                None
            }
            "timeUnixNano" | "time_unix_nano" => {
                e.time_unix_nano = uint64(v, p)?;
                None
            }
            "spanId" | "span_id" => {
                e.span_id = span_id(v, p)?;
                None
            }
            "traceId" | "trace_id" => {
                e.trace_id = trace_id(v, p)?;
                None
            }
            "asDouble" | "as_double" => optional(v, p, double)?.map(V::AsDouble),
            "asInt" | "as_int" => optional(v, p, int64)?.map(V::AsInt),
            _ => None,
        };
        set_once(&mut e.value, value, p, "Exemplar")
    })
}

pub(in crate::otlp_json) fn metrics_response(
    v: &Value,
    p: &Path<'_>,
) -> Result<ExportMetricsServiceResponse> {
    message(v, p, |r: &mut ExportMetricsServiceResponse, key, v, p| {
        if let "partialSuccess" | "partial_success" = key {
            r.partial_success = optional(v, p, metrics_partial_success)?;
        }
        Ok(())
    })
}

fn metrics_partial_success(v: &Value, p: &Path<'_>) -> Result<ExportMetricsPartialSuccess> {
    message(v, p, |s: &mut ExportMetricsPartialSuccess, key, v, p| {
        match key {
            "rejectedDataPoints" | "rejected_data_points" => s.rejected_data_points = int64(v, p)?,
            "errorMessage" | "error_message" => s.error_message = string(v, p)?,
            _ => {}
        }
        Ok(())
    })
}
