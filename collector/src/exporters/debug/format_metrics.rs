//! The debug exporter's text for metrics, as the Collector's debug exporter prints them:
//! - basic: `MetricsExporter {… "resource metrics": 1, "metrics": 3, "data points": 7}`;
//! - normal: a line per data point, `name{attr=value,…} value` (histograms: count, sum and
//!   buckets; summaries: count, sum and quantiles);
//! - detailed: every field, in the Collector's text marshaler layout.

use std::fmt::{self, Write};

use chrono::{DateTime, Utc};
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::common::v1::KeyValue;
use weft_proto::metrics::v1::{
    exemplar, metric::Data, number_data_point, AggregationTemporality, Exemplar, Metric,
};

use super::format::{
    detailed_attributes, detailed_resource, detailed_scope, go_time, normal_resource, normal_scope,
    plain,
};
use super::Verbosity;
use crate::pipeline::Signal;

pub(super) fn write_metrics(
    out: &mut String,
    verbosity: Verbosity,
    exporter: &str,
    now: DateTime<Utc>,
    data: &ExportMetricsServiceRequest,
) -> fmt::Result {
    let metrics: usize = data
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .map(|s| s.metrics.len())
        .sum();
    writeln!(
        out,
        "{}\tinfo\tMetricsExporter\t{{\"kind\": \"exporter\", \"data_type\": \"metrics\", \"name\": \"{exporter}\", \"resource metrics\": {}, \"metrics\": {metrics}, \"data points\": {}}}",
        now.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        data.resource_metrics.len(),
        Signal::items(data),
    )?;
    match verbosity {
        Verbosity::Basic => Ok(()),
        Verbosity::Normal => normal(out, data),
        Verbosity::Detailed => detailed(out, data),
    }
}

/// `{k=v,k2=v2}`, or nothing without attributes.
fn braces(out: &mut String, attributes: &[KeyValue]) -> fmt::Result {
    if attributes.is_empty() {
        return Ok(());
    }
    out.push('{');
    for (i, kv) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let value = kv.value.as_ref().map(plain).unwrap_or_default();
        write!(out, "{}={value}", kv.key)?;
    }
    out.push('}');
    Ok(())
}

fn number(value: Option<&number_data_point::Value>) -> String {
    match value {
        Some(number_data_point::Value::AsDouble(d)) => d.to_string(),
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        None => "-".into(),
    }
}

fn normal(out: &mut String, data: &ExportMetricsServiceRequest) -> fmt::Result {
    for (i, rm) in data.resource_metrics.iter().enumerate() {
        normal_resource(out, "ResourceMetrics", i, rm.resource.as_ref())?;
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            normal_scope(out, "ScopeMetrics", j, sm.scope.as_ref())?;
            for metric in &sm.metrics {
                normal_metric(out, metric)?;
            }
        }
    }
    Ok(())
}

fn normal_metric(out: &mut String, metric: &Metric) -> fmt::Result {
    let name = &metric.name;
    match &metric.data {
        None => writeln!(out, "{name} (no data)"),
        Some(Data::Gauge(g)) => g.data_points.iter().try_for_each(|p| {
            write!(out, "{name}")?;
            braces(out, &p.attributes)?;
            writeln!(out, " {}", number(p.value.as_ref()))
        }),
        Some(Data::Sum(s)) => s.data_points.iter().try_for_each(|p| {
            write!(out, "{name}")?;
            braces(out, &p.attributes)?;
            writeln!(out, " {}", number(p.value.as_ref()))
        }),
        Some(Data::Histogram(h)) => h.data_points.iter().try_for_each(|p| {
            write!(out, "{name}")?;
            braces(out, &p.attributes)?;
            write!(out, " count={}", p.count)?;
            if let Some(sum) = p.sum {
                write!(out, " sum={sum}")?;
            }
            for (i, c) in p.bucket_counts.iter().enumerate() {
                match p.explicit_bounds.get(i) {
                    Some(b) => write!(out, " le{b}={c}")?,
                    None => write!(out, " inf={c}")?,
                }
            }
            out.push('\n');
            Ok(())
        }),
        Some(Data::ExponentialHistogram(h)) => h.data_points.iter().try_for_each(|p| {
            write!(out, "{name}")?;
            braces(out, &p.attributes)?;
            write!(out, " count={} scale={}", p.count, p.scale)?;
            if let Some(sum) = p.sum {
                write!(out, " sum={sum}")?;
            }
            writeln!(out, " zero={}", p.zero_count)
        }),
        Some(Data::Summary(s)) => s.data_points.iter().try_for_each(|p| {
            write!(out, "{name}")?;
            braces(out, &p.attributes)?;
            write!(out, " count={} sum={}", p.count, p.sum)?;
            for q in &p.quantile_values {
                write!(out, " q{}={}", q.quantile, q.value)?;
            }
            out.push('\n');
            Ok(())
        }),
    }
}

fn temporality(t: i32) -> &'static str {
    AggregationTemporality::try_from(t)
        .map(|t| match t {
            AggregationTemporality::Unspecified => "Unspecified",
            AggregationTemporality::Delta => "Delta",
            AggregationTemporality::Cumulative => "Cumulative",
        })
        .unwrap_or("Unknown")
}

fn detailed(out: &mut String, data: &ExportMetricsServiceRequest) -> fmt::Result {
    for (i, rm) in data.resource_metrics.iter().enumerate() {
        writeln!(out, "ResourceMetrics #{i}")?;
        detailed_resource(out, &rm.schema_url, rm.resource.as_ref())?;
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            writeln!(out, "ScopeMetrics #{j}")?;
            detailed_scope(out, "ScopeMetrics", &sm.schema_url, sm.scope.as_ref())?;
            for (k, metric) in sm.metrics.iter().enumerate() {
                writeln!(out, "Metric #{k}")?;
                detailed_metric(out, metric)?;
            }
        }
    }
    Ok(())
}

fn point_head(
    out: &mut String,
    kind: &str,
    i: usize,
    attributes: &[KeyValue],
    start: u64,
    time: u64,
) -> fmt::Result {
    writeln!(out, "{kind} #{i}")?;
    detailed_attributes(out, "Data point attributes:", "     -> ", attributes)?;
    writeln!(out, "StartTimestamp: {}", go_time(start))?;
    writeln!(out, "Timestamp: {}", go_time(time))
}

fn exemplars(out: &mut String, list: &[Exemplar]) -> fmt::Result {
    if list.is_empty() {
        return Ok(());
    }
    writeln!(out, "Exemplars:")?;
    for (i, e) in list.iter().enumerate() {
        writeln!(out, "Exemplar #{i}")?;
        writeln!(out, "     -> Trace ID: {}", hex::encode(&e.trace_id))?;
        writeln!(out, "     -> Span ID: {}", hex::encode(&e.span_id))?;
        writeln!(out, "     -> Timestamp: {}", go_time(e.time_unix_nano))?;
        match e.value {
            Some(exemplar::Value::AsDouble(d)) => writeln!(out, "     -> Value: {d}")?,
            Some(exemplar::Value::AsInt(v)) => writeln!(out, "     -> Value: {v}")?,
            None => {}
        }
        detailed_attributes(
            out,
            "     -> FilteredAttributes:",
            "          -> ",
            &e.filtered_attributes,
        )?;
    }
    Ok(())
}

fn detailed_metric(out: &mut String, metric: &Metric) -> fmt::Result {
    writeln!(out, "Descriptor:")?;
    writeln!(out, "     -> Name: {}", metric.name)?;
    writeln!(out, "     -> Description: {}", metric.description)?;
    writeln!(out, "     -> Unit: {}", metric.unit)?;
    let data_type = match &metric.data {
        None => "Empty",
        Some(Data::Gauge(_)) => "Gauge",
        Some(Data::Sum(_)) => "Sum",
        Some(Data::Histogram(_)) => "Histogram",
        Some(Data::ExponentialHistogram(_)) => "ExponentialHistogram",
        Some(Data::Summary(_)) => "Summary",
    };
    writeln!(out, "     -> DataType: {data_type}")?;
    match &metric.data {
        None => Ok(()),
        Some(Data::Gauge(g)) => g.data_points.iter().enumerate().try_for_each(|(i, p)| {
            let kind = "NumberDataPoints";
            point_head(
                out,
                kind,
                i,
                &p.attributes,
                p.start_time_unix_nano,
                p.time_unix_nano,
            )?;
            writeln!(out, "Value: {}", number(p.value.as_ref()))?;
            exemplars(out, &p.exemplars)
        }),
        Some(Data::Sum(s)) => {
            writeln!(out, "     -> IsMonotonic: {}", s.is_monotonic)?;
            writeln!(
                out,
                "     -> AggregationTemporality: {}",
                temporality(s.aggregation_temporality)
            )?;
            s.data_points.iter().enumerate().try_for_each(|(i, p)| {
                let kind = "NumberDataPoints";
                point_head(
                    out,
                    kind,
                    i,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                )?;
                writeln!(out, "Value: {}", number(p.value.as_ref()))?;
                exemplars(out, &p.exemplars)
            })
        }
        Some(Data::Histogram(h)) => {
            writeln!(
                out,
                "     -> AggregationTemporality: {}",
                temporality(h.aggregation_temporality)
            )?;
            h.data_points.iter().enumerate().try_for_each(|(i, p)| {
                let kind = "HistogramDataPoints";
                point_head(
                    out,
                    kind,
                    i,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                )?;
                writeln!(out, "Count: {}", p.count)?;
                if let Some(sum) = p.sum {
                    writeln!(out, "Sum: {sum}")?;
                }
                if let Some(min) = p.min {
                    writeln!(out, "Min: {min}")?;
                }
                if let Some(max) = p.max {
                    writeln!(out, "Max: {max}")?;
                }
                for (j, b) in p.explicit_bounds.iter().enumerate() {
                    writeln!(out, "ExplicitBounds #{j}: {b}")?;
                }
                for (j, c) in p.bucket_counts.iter().enumerate() {
                    writeln!(out, "Buckets #{j}, Count: {c}")?;
                }
                exemplars(out, &p.exemplars)
            })
        }
        Some(Data::ExponentialHistogram(h)) => {
            writeln!(
                out,
                "     -> AggregationTemporality: {}",
                temporality(h.aggregation_temporality)
            )?;
            h.data_points.iter().enumerate().try_for_each(|(i, p)| {
                let kind = "ExponentialHistogramDataPoints";
                point_head(
                    out,
                    kind,
                    i,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                )?;
                writeln!(out, "Count: {}", p.count)?;
                if let Some(sum) = p.sum {
                    writeln!(out, "Sum: {sum}")?;
                }
                writeln!(out, "Scale: {}", p.scale)?;
                writeln!(out, "ZeroCount: {}", p.zero_count)?;
                for (side, buckets) in [("Positive", &p.positive), ("Negative", &p.negative)] {
                    if let Some(b) = buckets {
                        writeln!(
                            out,
                            "{side} offset: {} counts: {:?}",
                            b.offset, b.bucket_counts
                        )?;
                    }
                }
                exemplars(out, &p.exemplars)
            })
        }
        Some(Data::Summary(s)) => s.data_points.iter().enumerate().try_for_each(|(i, p)| {
            let kind = "SummaryDataPoints";
            point_head(
                out,
                kind,
                i,
                &p.attributes,
                p.start_time_unix_nano,
                p.time_unix_nano,
            )?;
            writeln!(out, "Count: {}", p.count)?;
            writeln!(out, "Sum: {}", p.sum)?;
            for (j, q) in p.quantile_values.iter().enumerate() {
                writeln!(
                    out,
                    "QuantileValue #{j}: Quantile {}, Value {}",
                    q.quantile, q.value
                )?;
            }
            Ok(())
        }),
    }
}
