//! Counting metric data points, the unit the Collector counts metrics in
//! (`otelcol_receiver_accepted_metric_points`, `pmetric.Metrics.DataPointCount`).

use crate::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::metrics::v1::{metric::Data, Metric};

/// The data points of one metric, whatever its type; a metric without data holds none.
pub fn metric_points(metric: &Metric) -> usize {
    match &metric.data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// The data points of a whole request.
pub fn request_points(request: &ExportMetricsServiceRequest) -> usize {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(metric_points)
        .sum()
}

/// Moves the first `k` data points of `metric` into a new metric with the same name,
/// description, unit, metadata, temporality and monotonicity; `metric` keeps the rest.
pub fn split_metric(metric: &mut Metric, k: usize) -> Metric {
    fn head<T>(points: &mut Vec<T>, k: usize) -> Vec<T> {
        points.drain(..k.min(points.len())).collect()
    }
    let data = metric.data.as_mut().map(|data| match data {
        Data::Gauge(g) => Data::Gauge(crate::metrics::v1::Gauge {
            data_points: head(&mut g.data_points, k),
        }),
        Data::Sum(s) => Data::Sum(crate::metrics::v1::Sum {
            data_points: head(&mut s.data_points, k),
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: s.is_monotonic,
        }),
        Data::Histogram(h) => Data::Histogram(crate::metrics::v1::Histogram {
            data_points: head(&mut h.data_points, k),
            aggregation_temporality: h.aggregation_temporality,
        }),
        Data::ExponentialHistogram(h) => {
            Data::ExponentialHistogram(crate::metrics::v1::ExponentialHistogram {
                data_points: head(&mut h.data_points, k),
                aggregation_temporality: h.aggregation_temporality,
            })
        }
        Data::Summary(s) => Data::Summary(crate::metrics::v1::Summary {
            data_points: head(&mut s.data_points, k),
        }),
    });
    Metric {
        name: metric.name.clone(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        metadata: metric.metadata.clone(),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::v1::{number_data_point, NumberDataPoint, Sum};

    #[test]
    fn split_keeps_the_descriptor_and_moves_the_first_points() {
        let point = |v| NumberDataPoint {
            value: Some(number_data_point::Value::AsInt(v)),
            ..Default::default()
        };
        let mut metric = Metric {
            name: "calls".into(),
            unit: "1".into(),
            data: Some(Data::Sum(Sum {
                data_points: (0..5).map(point).collect(),
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let head = split_metric(&mut metric, 2);
        assert_eq!((metric_points(&head), metric_points(&metric)), (2, 3));
        assert_eq!(head.name, "calls");
        let Some(Data::Sum(s)) = &head.data else {
            panic!("a sum")
        };
        assert!(s.is_monotonic);
        assert_eq!(s.aggregation_temporality, 2);
        assert_eq!(s.data_points[1], point(1));
        assert_eq!(metric_points(&Metric::default()), 0);
    }
}
