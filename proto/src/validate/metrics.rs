//! Metrics: the [`super::Limits`] and id checks every signal has, and the data model's rules
//! for the points themselves.
//!
//! The two are answered differently, on purpose:
//!
//! - A request over a limit, or with an exemplar id of the wrong length, is refused whole
//!   ([`validate_metrics_with`]), as traces and logs are: INVALID_ARGUMENT / 400.
//! - A data point the OTLP data model forbids — a metric without a name, a histogram whose
//!   `bucket_counts` do not match its `explicit_bounds` or its `count`, a NaN `sum` — is
//!   removed and the rest of the request is accepted with an OTLP partial success
//!   ([`drop_malformed_metrics`]). An SDK re-exports a cumulative series with every
//!   collection, so refusing the whole request would lose every other instrument of that
//!   process for as long as the one bad series exists; the partial success tells the client
//!   exactly what was dropped (`rejected_data_points`, and the first problem's path).
//!
//! What stays valid data: a NaN or infinite gauge or sum value (Prometheus staleness and
//! "no value" markers are NaN), an infinite histogram `sum`, points without exemplars.

use crate::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::limits::Limits;
use crate::metrics::v1::{
    metric::Data, number_data_point, Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint,
    Metric, NumberDataPoint, SummaryDataPoint,
};
use crate::points::metric_points;

use super::{at, attributes, check_resource, check_scope, optional_id, InvalidData, Problem};
use super::{SPAN_ID_LEN, TRACE_ID_LEN};

/// The exponential histogram scales the specification allows.
pub const MIN_SCALE: i32 = -10;
pub const MAX_SCALE: i32 = 20;

/// [`validate_metrics_with`] the default [`Limits`].
pub fn validate_metrics(req: &ExportMetricsServiceRequest) -> Result<(), InvalidData> {
    validate_metrics_with(req, &Limits::default())
}

/// Checks every attribute list (resource, scope, metric `metadata`, data point attributes,
/// exemplar `filtered_attributes`) against `limits`, and every exemplar's ids: `trace_id`
/// empty or 16 bytes, `span_id` empty or 8. Returns the first problem found. The data
/// model's rules are [`drop_malformed_metrics`]'s.
pub fn validate_metrics_with(
    req: &ExportMetricsServiceRequest,
    limits: &Limits,
) -> Result<(), InvalidData> {
    for (r, rm) in req.resource_metrics.iter().enumerate() {
        check_resource(rm.resource.as_ref(), limits)
            .map_err(|p| at(format_args!("resource_metrics[{r}]"), p))?;
        for (s, sm) in rm.scope_metrics.iter().enumerate() {
            check_scope(sm.scope.as_ref(), limits)
                .map_err(|p| at(format_args!("resource_metrics[{r}].scope_metrics[{s}]"), p))?;
            for (m, metric) in sm.metrics.iter().enumerate() {
                check_metric(metric, limits).map_err(|p| {
                    at(
                        format_args!("resource_metrics[{r}].scope_metrics[{s}].metrics[{m}]"),
                        p,
                    )
                })?;
            }
        }
    }
    Ok(())
}

fn check_metric(metric: &Metric, limits: &Limits) -> Result<(), Problem> {
    attributes(format_args!(".metadata"), &metric.metadata, limits)?;
    // Every point type has attributes and exemplars (a summary has no exemplars).
    fn each<P>(
        kind: &str,
        points: &[P],
        limits: &Limits,
        parts: impl Fn(&P) -> (&[crate::common::v1::KeyValue], &[Exemplar]),
    ) -> Result<(), Problem> {
        for (i, point) in points.iter().enumerate() {
            let (attrs, exemplars) = parts(point);
            attributes(
                format_args!(".{kind}.data_points[{i}].attributes"),
                attrs,
                limits,
            )?;
            for (e, exemplar) in exemplars.iter().enumerate() {
                let field = format!(".{kind}.data_points[{i}].exemplars[{e}]");
                check_exemplar(exemplar).map_err(|message| (field.clone(), message))?;
                attributes(
                    format_args!("{field}.filtered_attributes"),
                    &exemplar.filtered_attributes,
                    limits,
                )?;
            }
        }
        Ok(())
    }
    match &metric.data {
        None => Ok(()),
        Some(Data::Gauge(g)) => each("gauge", &g.data_points, limits, |p| {
            (&p.attributes, &p.exemplars)
        }),
        Some(Data::Sum(s)) => each("sum", &s.data_points, limits, |p| {
            (&p.attributes, &p.exemplars)
        }),
        Some(Data::Histogram(h)) => each("histogram", &h.data_points, limits, |p| {
            (&p.attributes, &p.exemplars)
        }),
        Some(Data::ExponentialHistogram(h)) => {
            each("exponential_histogram", &h.data_points, limits, |p| {
                (&p.attributes, &p.exemplars)
            })
        }
        Some(Data::Summary(s)) => each("summary", &s.data_points, limits, |p| (&p.attributes, &[])),
    }
}

fn check_exemplar(exemplar: &Exemplar) -> Result<(), String> {
    optional_id("trace_id", &exemplar.trace_id, TRACE_ID_LEN)?;
    optional_id("span_id", &exemplar.span_id, SPAN_ID_LEN)
}

/// What [`drop_malformed_metrics`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Data points removed (a metric without a name counts all its points).
    pub rejected_points: usize,
    /// Problems found, each a point or a nameless metric.
    pub problems: usize,
    /// The first problem, its path in the request as it was received.
    pub first: InvalidData,
}

impl Malformed {
    /// The partial success's `error_message`.
    pub fn message(&self) -> String {
        let more = match self.problems {
            1 => String::new(),
            n => format!(" ({} more problems)", n - 1),
        };
        format!(
            "{} data points rejected by the OTLP data model; first: {}{more}",
            self.rejected_points, self.first
        )
    }
}

/// Removes what the OTLP metrics data model forbids and says what was removed (`None`: the
/// request was clean and is unchanged):
///
/// - a metric with an empty `name` (all its points);
/// - a number point with no value (unless flagged `NO_RECORDED_VALUE`);
/// - a histogram point whose `bucket_counts` are neither empty nor one more than its
///   `explicit_bounds`, whose bounds are not strictly increasing (or NaN), whose buckets
///   do not add up to `count`, or whose `sum` is NaN;
/// - an exponential histogram point whose `scale` is outside \[-10, 20\], whose buckets and
///   `zero_count` do not add up to `count`, or whose `sum` is NaN;
/// - a summary point with a quantile outside \[0, 1\] (or NaN), or a NaN `sum`.
///
/// A metric left without points, and scopes and resources left without metrics, are
/// removed too. Paths in the report are those of the request as received.
pub fn drop_malformed_metrics(req: &mut ExportMetricsServiceRequest) -> Option<Malformed> {
    let mut report: Option<Malformed> = None;
    let mut note = |path: String, message: String, points: usize| match &mut report {
        None => {
            report = Some(Malformed {
                rejected_points: points,
                problems: 1,
                first: InvalidData { path, message },
            })
        }
        Some(r) => {
            r.rejected_points += points;
            r.problems += 1;
        }
    };
    for (r, rm) in req.resource_metrics.iter_mut().enumerate() {
        for (s, sm) in rm.scope_metrics.iter_mut().enumerate() {
            let mut m = 0;
            sm.metrics.retain_mut(|metric| {
                let path = format!("resource_metrics[{r}].scope_metrics[{s}].metrics[{m}]");
                m += 1;
                if metric.name.is_empty() {
                    note(path, "metric name is empty".into(), metric_points(metric));
                    return false;
                }
                let before = metric_points(metric);
                drop_points(metric, |kind, i, message| {
                    note(format!("{path}.{kind}.data_points[{i}]"), message, 1)
                });
                before == 0 || metric_points(metric) > 0
            });
        }
    }
    if report.is_some() {
        for rm in &mut req.resource_metrics {
            rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
        }
        req.resource_metrics
            .retain(|rm| !rm.scope_metrics.is_empty());
    }
    report
}

/// Removes the malformed points of one metric, calling `bad(kind, index, why)` for each.
fn drop_points(metric: &mut Metric, mut bad: impl FnMut(&str, usize, String)) {
    fn retain<P>(
        points: &mut Vec<P>,
        kind: &str,
        check: fn(&P) -> Result<(), String>,
        bad: &mut impl FnMut(&str, usize, String),
    ) {
        let mut i = 0;
        points.retain(|p| {
            let ok = match check(p) {
                Ok(()) => true,
                Err(message) => {
                    bad(kind, i, message);
                    false
                }
            };
            i += 1;
            ok
        });
    }
    match &mut metric.data {
        None => {}
        Some(Data::Gauge(g)) => retain(&mut g.data_points, "gauge", number_point, &mut bad),
        Some(Data::Sum(s)) => retain(&mut s.data_points, "sum", number_point, &mut bad),
        Some(Data::Histogram(h)) => {
            retain(&mut h.data_points, "histogram", histogram_point, &mut bad)
        }
        Some(Data::ExponentialHistogram(h)) => retain(
            &mut h.data_points,
            "exponential_histogram",
            exponential_point,
            &mut bad,
        ),
        Some(Data::Summary(s)) => retain(&mut s.data_points, "summary", summary_point, &mut bad),
    }
}

/// The `NO_RECORDED_VALUE` data point flag: the point marks a gap, its value is not read.
const NO_RECORDED_VALUE: u32 = 1;

fn number_point(p: &NumberDataPoint) -> Result<(), String> {
    match p.value {
        Some(number_data_point::Value::AsDouble(_) | number_data_point::Value::AsInt(_)) => Ok(()),
        None if p.flags & NO_RECORDED_VALUE != 0 => Ok(()),
        None => Err("no value: as_double or as_int must be set".into()),
    }
}

fn nan_sum(sum: Option<f64>) -> Result<(), String> {
    match sum {
        Some(s) if s.is_nan() => {
            Err("sum is NaN: a sum of recorded values cannot be NaN (drop NaN measurements, or leave sum unset)".into())
        }
        _ => Ok(()),
    }
}

fn histogram_point(p: &HistogramDataPoint) -> Result<(), String> {
    let (buckets, bounds) = (p.bucket_counts.len(), p.explicit_bounds.len());
    if buckets != 0 && buckets != bounds + 1 {
        return Err(format!(
            "{buckets} bucket_counts for {bounds} explicit_bounds: expected {} (or none)",
            bounds + 1
        ));
    }
    for (i, pair) in p.explicit_bounds.windows(2).enumerate() {
        if pair[0].partial_cmp(&pair[1]) != Some(std::cmp::Ordering::Less) {
            return Err(format!(
                "explicit_bounds must be strictly increasing: [{i}] is {} and [{}] is {}",
                pair[0],
                i + 1,
                pair[1]
            ));
        }
    }
    if let Some(i) = p.explicit_bounds.iter().position(|b| b.is_nan()) {
        return Err(format!("explicit_bounds[{i}] is NaN"));
    }
    if buckets != 0 {
        let total: u128 = p.bucket_counts.iter().map(|&c| u128::from(c)).sum();
        if total != u128::from(p.count) {
            return Err(format!(
                "bucket_counts add up to {total} but count is {}",
                p.count
            ));
        }
    }
    nan_sum(p.sum)
}

fn exponential_point(p: &ExponentialHistogramDataPoint) -> Result<(), String> {
    if !(MIN_SCALE..=MAX_SCALE).contains(&p.scale) {
        return Err(format!(
            "scale {} is outside [{MIN_SCALE}, {MAX_SCALE}]",
            p.scale
        ));
    }
    let in_buckets = |b: &Option<crate::metrics::v1::exponential_histogram_data_point::Buckets>| {
        b.as_ref().map_or(0u128, |b| {
            b.bucket_counts.iter().map(|&c| u128::from(c)).sum()
        })
    };
    let total = u128::from(p.zero_count) + in_buckets(&p.positive) + in_buckets(&p.negative);
    if total != u128::from(p.count) {
        return Err(format!(
            "zero_count and the positive and negative bucket_counts add up to {total} but count is {}",
            p.count
        ));
    }
    nan_sum(p.sum)
}

fn summary_point(p: &SummaryDataPoint) -> Result<(), String> {
    for (i, q) in p.quantile_values.iter().enumerate() {
        if !(0.0..=1.0).contains(&q.quantile) {
            return Err(format!(
                "quantile_values[{i}].quantile is {}: must be in [0, 1]",
                q.quantile
            ));
        }
    }
    nan_sum(Some(p.sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::v1::{any_value, AnyValue, KeyValue};
    use crate::metrics::v1::{
        exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
        ExponentialHistogram, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Summary,
    };

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn gauge(name: &str, values: &[f64]) -> Metric {
        Metric {
            name: name.into(),
            data: Some(Data::Gauge(Gauge {
                data_points: values
                    .iter()
                    .map(|&v| NumberDataPoint {
                        value: Some(number_data_point::Value::AsDouble(v)),
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        }
    }

    fn histogram(points: Vec<HistogramDataPoint>) -> Metric {
        Metric {
            name: "latency".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: points,
                aggregation_temporality: 2,
            })),
            ..Default::default()
        }
    }

    fn good_histogram_point() -> HistogramDataPoint {
        HistogramDataPoint {
            count: 6,
            sum: Some(12.5),
            bucket_counts: vec![1, 2, 3],
            explicit_bounds: vec![1.0, 5.0],
            ..Default::default()
        }
    }

    const M0: &str = "resource_metrics[0].scope_metrics[0].metrics[0]";

    #[test]
    fn a_clean_request_is_left_alone() {
        let mut req = request(vec![
            gauge("temperature", &[f64::NAN, f64::INFINITY, 1.0]),
            histogram(vec![
                good_histogram_point(),
                HistogramDataPoint {
                    count: 3,
                    sum: Some(f64::INFINITY),
                    ..Default::default()
                },
            ]),
        ]);
        let before = prost::Message::encode_to_vec(&req);
        assert_eq!(drop_malformed_metrics(&mut req), None);
        // Compared as bytes: NaN is not equal to itself.
        assert_eq!(prost::Message::encode_to_vec(&req), before);
        assert_eq!(validate_metrics(&req), Ok(()));
    }

    #[test]
    fn histogram_buckets_that_do_not_match_their_bounds_are_dropped_with_their_path() {
        let mut bad = good_histogram_point();
        bad.bucket_counts = vec![1, 2, 3];
        bad.explicit_bounds = vec![1.0, 5.0, 10.0];
        let mut req = request(vec![histogram(vec![good_histogram_point(), bad])]);
        let report = drop_malformed_metrics(&mut req).unwrap();
        assert_eq!(report.rejected_points, 1);
        assert_eq!(
            report.first.to_string(),
            format!("{M0}.histogram.data_points[1]: 3 bucket_counts for 3 explicit_bounds: expected 4 (or none)")
        );
        assert_eq!(crate::points::request_points(&req), 1);
    }

    #[test]
    fn every_data_model_rule_names_its_problem() {
        let cases: Vec<(HistogramDataPoint, &str)> = vec![
            (
                HistogramDataPoint {
                    sum: Some(f64::NAN),
                    ..good_histogram_point()
                },
                "sum is NaN",
            ),
            (
                HistogramDataPoint {
                    count: 7,
                    ..good_histogram_point()
                },
                "bucket_counts add up to 6 but count is 7",
            ),
            (
                HistogramDataPoint {
                    explicit_bounds: vec![5.0, 1.0],
                    ..good_histogram_point()
                },
                "explicit_bounds must be strictly increasing: [0] is 5 and [1] is 1",
            ),
            (
                HistogramDataPoint {
                    explicit_bounds: vec![1.0, f64::NAN],
                    ..good_histogram_point()
                },
                "explicit_bounds must be strictly increasing: [0] is 1 and [1] is NaN",
            ),
        ];
        for (point, expected) in cases {
            let mut req = request(vec![histogram(vec![point])]);
            let report = drop_malformed_metrics(&mut req).unwrap();
            assert!(report.first.message.starts_with(expected), "{report:?}");
            // The metric had no good point left: it is gone, and so are its scope and resource.
            assert!(req.resource_metrics.is_empty());
        }

        let exp = |p: ExponentialHistogramDataPoint| Metric {
            name: "e".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![p],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        };
        let good = ExponentialHistogramDataPoint {
            count: 5,
            zero_count: 1,
            scale: 3,
            positive: Some(Buckets {
                offset: -2,
                bucket_counts: vec![1, 2],
            }),
            negative: Some(Buckets {
                offset: 0,
                bucket_counts: vec![1],
            }),
            ..Default::default()
        };
        let mut req = request(vec![exp(good.clone())]);
        assert_eq!(drop_malformed_metrics(&mut req), None);
        for (point, expected) in [
            (
                ExponentialHistogramDataPoint {
                    scale: 21,
                    ..good.clone()
                },
                "scale 21 is outside [-10, 20]",
            ),
            (
                ExponentialHistogramDataPoint {
                    count: 4,
                    ..good.clone()
                },
                "zero_count and the positive and negative bucket_counts add up to 5 but count is 4",
            ),
        ] {
            let report = drop_malformed_metrics(&mut request(vec![exp(point)])).unwrap();
            assert_eq!(report.first.message, expected);
        }

        let summary = |q: f64| Metric {
            name: "s".into(),
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    quantile_values: vec![ValueAtQuantile {
                        quantile: q,
                        value: 1.0,
                    }],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        assert_eq!(
            drop_malformed_metrics(&mut request(vec![summary(0.99)])),
            None
        );
        let report = drop_malformed_metrics(&mut request(vec![summary(1.5)])).unwrap();
        assert_eq!(
            report.first.to_string(),
            format!("{M0}.summary.data_points[0]: quantile_values[0].quantile is 1.5: must be in [0, 1]")
        );

        let mut no_value = gauge("g", &[1.0]);
        if let Some(Data::Gauge(g)) = &mut no_value.data {
            g.data_points[0].value = None;
        }
        let report = drop_malformed_metrics(&mut request(vec![no_value.clone()])).unwrap();
        assert_eq!(
            report.first.message,
            "no value: as_double or as_int must be set"
        );
        if let Some(Data::Gauge(g)) = &mut no_value.data {
            g.data_points[0].flags = NO_RECORDED_VALUE;
        }
        assert_eq!(drop_malformed_metrics(&mut request(vec![no_value])), None);
    }

    #[test]
    fn a_nameless_metric_is_dropped_whole_and_the_rest_kept() {
        let mut req = request(vec![
            gauge("ok", &[1.0]),
            gauge("", &[1.0, 2.0, 3.0]),
            gauge("also_ok", &[2.0]),
        ]);
        let report = drop_malformed_metrics(&mut req).unwrap();
        assert_eq!(report.rejected_points, 3);
        assert_eq!(
            report.message(),
            "3 data points rejected by the OTLP data model; first: \
             resource_metrics[0].scope_metrics[0].metrics[1]: metric name is empty"
        );
        let names: Vec<&str> = req.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["ok", "also_ok"]);
    }

    #[test]
    fn limits_and_exemplar_ids_refuse_the_request() {
        let kv = |i: usize| KeyValue {
            key: format!("k{i}"),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(1)),
            }),
            ..Default::default()
        };
        let mut metric = gauge("g", &[1.0]);
        if let Some(Data::Gauge(g)) = &mut metric.data {
            g.data_points[0].attributes = (0..3).map(kv).collect();
        }
        let limits = Limits {
            max_attributes: 2,
            ..Limits::default()
        };
        let req = request(vec![metric.clone()]);
        assert_eq!(
            validate_metrics_with(&req, &limits)
                .unwrap_err()
                .to_string(),
            format!("{M0}.gauge.data_points[0].attributes: 3 attributes, the limit is 2")
        );
        if let Some(Data::Gauge(g)) = &mut metric.data {
            g.data_points[0].attributes.clear();
            g.data_points[0].exemplars = vec![Exemplar {
                trace_id: vec![1; 15],
                ..Default::default()
            }];
        }
        assert_eq!(
            validate_metrics(&request(vec![metric])).unwrap_err().to_string(),
            format!("{M0}.gauge.data_points[0].exemplars[0]: trace_id must be empty or 16 bytes, got 15")
        );
        let mut metric = gauge("g", &[]);
        metric.metadata = (0..3).map(kv).collect();
        assert_eq!(
            validate_metrics_with(&request(vec![metric]), &limits)
                .unwrap_err()
                .to_string(),
            format!("{M0}.metadata: 3 attributes, the limit is 2")
        );
    }
}
