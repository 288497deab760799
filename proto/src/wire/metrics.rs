//! The metrics scanner: [`scan_metrics`] keeps the promise of the others (accepted ⇒ prost
//! decodes the body, [`crate::validate::validate_metrics_with`] accepts it with the same
//! limits, and the count is its data points) and one more: an accepted body has nothing
//! [`crate::validate::drop_malformed_metrics`] would remove. Points are checked against the
//! data model as they are walked (histogram buckets against bounds and count, scales,
//! quantiles, NaN sums), so a request that needs a partial success takes the slow path,
//! which words it.
//!
//! Field numbers are those of `opentelemetry/proto/metrics/v1/metrics.proto`.

use super::{
    envelope, expect_i64, expect_len, expect_varint, for_each_len, id_field, nest, once,
    optional_id, utf8, varint, Scan, Scanner, Value, Walk,
};
use std::cmp::Ordering;

use crate::limits::Limits;
use crate::validate::{MAX_SCALE, MIN_SCALE};

/// Counts the data points of an `ExportMetricsServiceRequest` body if it decodes, passes
/// [`crate::validate::validate_metrics_with`] under `limits` and holds nothing the data
/// model forbids; `None` when the slow path must decide.
pub fn scan_metrics(body: &[u8], limits: &Limits) -> Option<usize> {
    let s = Scanner { limits };
    let mut count = 0;
    for_each_len(body, 1, |rm| {
        envelope(&s, rm, 1, Scanner::resource, |sm| {
            envelope(&s, sm, 2, Scanner::scope, |metric| {
                count += s.metric(metric, 3)?;
                Ok(())
            })
        })
    })
    .ok()?;
    Some(count)
}

/// Counts the data points of a body already known to be valid: resource_metrics (1) →
/// scope_metrics (2) → metrics (2) → the data oneof (5, 7, 9, 10, 11) → data_points (1).
pub fn count_metric_points(body: &[u8]) -> usize {
    let mut count = 0;
    let _ = for_each_len(body, 1, |r| {
        for_each_len(r, 2, |s| {
            for_each_len(s, 2, |metric| {
                let mut walk = Walk(metric);
                while let Some(field) = walk.next()? {
                    if let (5 | 7 | 9 | 10 | 11, Value::Len(data)) = field {
                        for_each_len(data, 1, |_| {
                            count += 1;
                            Ok(())
                        })?;
                    }
                }
                Ok(())
            })
        })
    });
    count
}

/// The `NO_RECORDED_VALUE` data point flag.
const NO_RECORDED_VALUE: u64 = 1;

/// One element of a repeated fixed-width field, packed (one LEN field of 8-byte values) or
/// not (one I64 field each): calls `f` with each value's bits, as prost accepts both.
fn each_fixed64(v: Value<'_>, mut f: impl FnMut(u64) -> Scan) -> Scan {
    match v {
        Value::I64(bits) => f(bits),
        Value::Len(bytes) => {
            if bytes.len() % 8 != 0 {
                return Err(());
            }
            for chunk in bytes.chunks_exact(8) {
                let mut word = [0; 8];
                word.copy_from_slice(chunk);
                f(u64::from_le_bytes(word))?;
            }
            Ok(())
        }
        _ => Err(()),
    }
}

/// Like [`each_fixed64`] for a repeated varint field (`uint64`).
fn each_varint(v: Value<'_>, mut f: impl FnMut(u64) -> Scan) -> Scan {
    match v {
        Value::Varint(n) => f(n),
        Value::Len(mut bytes) => {
            while !bytes.is_empty() {
                f(varint(&mut bytes)?)?;
            }
            Ok(())
        }
        _ => Err(()),
    }
}

/// A singular field seen at most once (protobuf's "last one wins" is the slow path's).
fn single<T>(slot: &mut Option<T>, value: T) -> Scan {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

fn f64_of(v: Value<'_>) -> Scan<f64> {
    match v {
        Value::I64(bits) => Ok(f64::from_bits(bits)),
        _ => Err(()),
    }
}

fn u64_of(v: Value<'_>) -> Scan<u64> {
    match v {
        Value::I64(bits) => Ok(bits),
        _ => Err(()),
    }
}

/// prost's `sint32`: the varint cut to 32 bits, then zigzag-decoded.
fn sint32(v: Value<'_>) -> Scan<i32> {
    match v {
        Value::Varint(n) => {
            let n = n as u32;
            Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
        }
        _ => Err(()),
    }
}

fn not_nan(sum: Option<f64>) -> Scan {
    match sum {
        Some(s) if s.is_nan() => Err(()),
        _ => Ok(()),
    }
}

impl Scanner<'_> {
    /// Metric: 1 name, 2 description, 3 unit, 12 metadata, and one of 5 gauge, 7 sum,
    /// 9 histogram, 10 exponential_histogram, 11 summary. Returns its data points.
    fn metric(&self, msg: &[u8], depth: usize) -> Scan<usize> {
        nest(depth)?;
        let mut name = None;
        let mut data = false;
        let mut points = 0;
        let mut metadata = 0;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1, v) => {
                    let n = expect_len(v)?;
                    utf8(n)?;
                    single(&mut name, n)?;
                }
                (2 | 3, v) => utf8(expect_len(v)?)?,
                (12, v) => self.attribute(&mut metadata, expect_len(v)?, depth + 1)?,
                (5, v) => {
                    once(&mut data)?;
                    points = self.points(expect_len(v)?, depth + 1, &[], Self::number_point)?;
                }
                (7, v) => {
                    once(&mut data)?;
                    // Sum: 2 aggregation_temporality, 3 is_monotonic.
                    points = self.points(expect_len(v)?, depth + 1, &[2, 3], Self::number_point)?;
                }
                (9, v) => {
                    once(&mut data)?;
                    points = self.points(expect_len(v)?, depth + 1, &[2], Self::histogram_point)?;
                }
                (10, v) => {
                    once(&mut data)?;
                    points =
                        self.points(expect_len(v)?, depth + 1, &[2], Self::exponential_point)?;
                }
                (11, v) => {
                    once(&mut data)?;
                    points = self.points(expect_len(v)?, depth + 1, &[], Self::summary_point)?;
                }
                _ => {}
            }
        }
        match name {
            Some(n) if !n.is_empty() => Ok(points),
            _ => Err(()),
        }
    }

    /// Gauge, Sum, Histogram, ExponentialHistogram, Summary: 1 data_points (each checked
    /// by `point`), and the varint fields in `varints`. Returns the points.
    fn points(
        &self,
        msg: &[u8],
        depth: usize,
        varints: &[u32],
        point: fn(&Self, &[u8], usize) -> Scan,
    ) -> Scan<usize> {
        nest(depth)?;
        let mut count = 0;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1, v) => {
                    point(self, expect_len(v)?, depth + 1)?;
                    count += 1;
                }
                (n, v) if varints.contains(&n) => expect_varint(v)?,
                _ => {}
            }
        }
        Ok(count)
    }

    /// NumberDataPoint: 7 attributes, 2 start_time_unix_nano, 3 time_unix_nano,
    /// 4 as_double | 6 as_int, 5 exemplars, 8 flags.
    fn number_point(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let mut attributes = 0;
        let mut value = false;
        let mut flags = None;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (7, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (2 | 3, v) => expect_i64(v)?,
                (4 | 6, v) => {
                    once(&mut value)?;
                    expect_i64(v)?;
                }
                (5, v) => self.exemplar(expect_len(v)?, depth + 1)?,
                (8, Value::Varint(f)) => single(&mut flags, f as u32)?,
                (8, _) => return Err(()),
                _ => {}
            }
        }
        if value || flags.is_some_and(|f| u64::from(f) & NO_RECORDED_VALUE != 0) {
            Ok(())
        } else {
            Err(())
        }
    }

    /// HistogramDataPoint: 9 attributes, 2/3 times, 4 count, 5 sum, 6 bucket_counts,
    /// 7 explicit_bounds, 8 exemplars, 10 flags, 11 min, 12 max.
    fn histogram_point(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let mut attributes = 0;
        let (mut count, mut sum, mut min, mut max) = (None, None, None, None);
        let (mut buckets, mut in_buckets) = (0usize, 0u128);
        let (mut bounds, mut last_bound) = (0usize, None::<f64>);
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (9, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (2 | 3, v) => expect_i64(v)?,
                (4, v) => single(&mut count, u64_of(v)?)?,
                (5, v) => single(&mut sum, f64_of(v)?)?,
                (11, v) => single(&mut min, f64_of(v)?)?,
                (12, v) => single(&mut max, f64_of(v)?)?,
                (6, v) => each_fixed64(v, |c| {
                    buckets += 1;
                    in_buckets += u128::from(c);
                    Ok(())
                })?,
                (7, v) => each_fixed64(v, |bits| {
                    let bound = f64::from_bits(bits);
                    // Strictly increasing, no NaN (a NaN fails every comparison).
                    match last_bound {
                        Some(last) if last.partial_cmp(&bound) != Some(Ordering::Less) => {
                            return Err(())
                        }
                        None if bound.is_nan() => return Err(()),
                        _ => {}
                    }
                    last_bound = Some(bound);
                    bounds += 1;
                    Ok(())
                })?,
                (8, v) => self.exemplar(expect_len(v)?, depth + 1)?,
                (10, v) => expect_varint(v)?,
                _ => {}
            }
        }
        if buckets != 0 && (buckets != bounds + 1 || in_buckets != u128::from(count.unwrap_or(0))) {
            return Err(());
        }
        not_nan(sum)
    }

    /// ExponentialHistogramDataPoint: 1 attributes, 2/3 times, 4 count, 5 sum, 6 scale,
    /// 7 zero_count, 8 positive, 9 negative, 10 flags, 11 exemplars, 12 min, 13 max,
    /// 14 zero_threshold.
    fn exponential_point(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let mut attributes = 0;
        let (mut count, mut sum, mut scale, mut zero) = (None, None, None, None);
        let (mut min, mut max, mut threshold) = (None, None, None);
        let (mut positive, mut negative) = (None, None);
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (2 | 3, v) => expect_i64(v)?,
                (4, v) => single(&mut count, u64_of(v)?)?,
                (5, v) => single(&mut sum, f64_of(v)?)?,
                (6, v) => single(&mut scale, sint32(v)?)?,
                (7, v) => single(&mut zero, u64_of(v)?)?,
                (8, v) => single(&mut positive, buckets(expect_len(v)?, depth + 1)?)?,
                (9, v) => single(&mut negative, buckets(expect_len(v)?, depth + 1)?)?,
                (10, v) => expect_varint(v)?,
                (11, v) => self.exemplar(expect_len(v)?, depth + 1)?,
                (12, v) => single(&mut min, f64_of(v)?)?,
                (13, v) => single(&mut max, f64_of(v)?)?,
                (14, v) => single(&mut threshold, f64_of(v)?)?,
                _ => {}
            }
        }
        if !(MIN_SCALE..=MAX_SCALE).contains(&scale.unwrap_or(0)) {
            return Err(());
        }
        let total = u128::from(zero.unwrap_or(0)) + positive.unwrap_or(0) + negative.unwrap_or(0);
        if total != u128::from(count.unwrap_or(0)) {
            return Err(());
        }
        not_nan(sum)
    }

    /// SummaryDataPoint: 7 attributes, 2/3 times, 4 count, 5 sum, 6 quantile_values,
    /// 8 flags.
    fn summary_point(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let mut attributes = 0;
        let (mut count, mut sum) = (None, None);
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (7, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (2 | 3, v) => expect_i64(v)?,
                (4, v) => single(&mut count, u64_of(v)?)?,
                (5, v) => single(&mut sum, f64_of(v)?)?,
                (6, v) => value_at_quantile(expect_len(v)?, depth + 1)?,
                (8, v) => expect_varint(v)?,
                _ => {}
            }
        }
        not_nan(sum)
    }

    /// Exemplar: 7 filtered_attributes, 2 time_unix_nano, 3 as_double | 6 as_int,
    /// 4 span_id, 5 trace_id.
    fn exemplar(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let mut attributes = 0;
        let mut value = false;
        let (mut trace_id, mut span_id) = (None, None);
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (7, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (2, v) => expect_i64(v)?,
                (3 | 6, v) => {
                    once(&mut value)?;
                    expect_i64(v)?;
                }
                (4, v) => id_field(&mut span_id, v)?,
                (5, v) => id_field(&mut trace_id, v)?,
                _ => {}
            }
        }
        optional_id(trace_id, 16)?;
        optional_id(span_id, 8)
    }
}

/// ExponentialHistogramDataPoint.Buckets: 1 offset (sint32), 2 bucket_counts (uint64).
/// Returns the sum of its counts.
fn buckets(msg: &[u8], depth: usize) -> Scan<u128> {
    nest(depth)?;
    let mut total = 0u128;
    let mut walk = Walk(msg);
    while let Some(field) = walk.next()? {
        match field {
            (1, v) => expect_varint(v)?,
            (2, v) => each_varint(v, |c| {
                total += u128::from(c);
                Ok(())
            })?,
            _ => {}
        }
    }
    Ok(total)
}

/// SummaryDataPoint.ValueAtQuantile: 1 quantile (in [0, 1]), 2 value.
fn value_at_quantile(msg: &[u8], depth: usize) -> Scan {
    nest(depth)?;
    let mut quantile = None;
    let mut walk = Walk(msg);
    while let Some(field) = walk.next()? {
        match field {
            (1, v) => single(&mut quantile, f64_of(v)?)?,
            (2, v) => expect_i64(v)?,
            _ => {}
        }
    }
    if (0.0..=1.0).contains(&quantile.unwrap_or(0.0)) {
        Ok(())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    //! The metrics scanner against the slow path: prost, the validator and the data model.

    use prost::Message;

    use super::*;
    use crate::collector::metrics::v1::ExportMetricsServiceRequest;
    use crate::common::v1::{any_value, AnyValue, KeyValue};
    use crate::metrics::v1::{
        exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
        summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram,
        ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    };
    use crate::points::request_points;
    use crate::validate::{drop_malformed_metrics, validate_metrics_with};

    fn kv(key: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("v".into())),
            }),
            ..Default::default()
        }
    }

    fn number(v: f64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: vec![kv("route")],
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            value: Some(number_data_point::Value::AsDouble(v)),
            exemplars: vec![Exemplar {
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                value: Some(exemplar::Value::AsInt(3)),
                filtered_attributes: vec![kv("user")],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn histogram_point() -> HistogramDataPoint {
        HistogramDataPoint {
            attributes: vec![kv("route")],
            count: 6,
            sum: Some(7.5),
            bucket_counts: vec![1, 2, 3],
            explicit_bounds: vec![0.5, 5.0],
            min: Some(0.1),
            max: Some(9.0),
            ..Default::default()
        }
    }

    fn exponential_point() -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            count: 4,
            sum: Some(3.0),
            scale: -2,
            zero_count: 1,
            positive: Some(Buckets {
                offset: -1,
                bucket_counts: vec![1, 300],
            }),
            negative: Some(Buckets {
                offset: 2,
                bucket_counts: vec![0],
            }),
            ..Default::default()
        }
    }

    fn every_type() -> Vec<Metric> {
        let metric = |name: &str, data| Metric {
            name: name.into(),
            description: "d".into(),
            unit: "ms".into(),
            data: Some(data),
            ..Default::default()
        };
        let mut exponential = exponential_point();
        exponential.count = 302;
        vec![
            metric(
                "g",
                Data::Gauge(Gauge {
                    data_points: vec![number(f64::NAN), number(1.0)],
                }),
            ),
            metric(
                "s",
                Data::Sum(Sum {
                    data_points: vec![number(2.0)],
                    aggregation_temporality: 2,
                    is_monotonic: true,
                }),
            ),
            metric(
                "h",
                Data::Histogram(Histogram {
                    data_points: vec![histogram_point(), HistogramDataPoint::default()],
                    aggregation_temporality: 1,
                }),
            ),
            metric(
                "e",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![exponential],
                    aggregation_temporality: 1,
                }),
            ),
            metric(
                "q",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        count: 3,
                        sum: 4.0,
                        quantile_values: vec![ValueAtQuantile {
                            quantile: 0.5,
                            value: 1.0,
                        }],
                        ..Default::default()
                    }],
                }),
            ),
            Metric {
                name: "no data".into(),
                ..Default::default()
            },
        ]
    }

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

    /// What the slow path says: `Some(points)` when the request is accepted untouched.
    fn slow_path(bytes: &[u8], limits: &Limits) -> Option<usize> {
        let mut req = ExportMetricsServiceRequest::decode(bytes).ok()?;
        validate_metrics_with(&req, limits).ok()?;
        if drop_malformed_metrics(&mut req).is_some() {
            return None;
        }
        Some(request_points(&req))
    }

    #[test]
    fn every_point_type_is_scanned_and_counted() {
        let bytes = request(every_type()).encode_to_vec();
        let limits = Limits::default();
        assert_eq!(slow_path(&bytes, &limits), Some(7));
        assert_eq!(scan_metrics(&bytes, &limits), Some(7));
        assert_eq!(count_metric_points(&bytes), 7);
    }

    #[test]
    fn what_the_data_model_forbids_goes_to_the_slow_path() {
        let limits = Limits::default();
        let broken: Vec<fn(&mut Vec<Metric>)> = vec![
            |m| m[0].name.clear(),
            |m| {
                if let Some(Data::Gauge(g)) = &mut m[0].data {
                    g.data_points[1].value = None;
                }
            },
            |m| {
                if let Some(Data::Histogram(h)) = &mut m[2].data {
                    h.data_points[0].explicit_bounds.push(9.0);
                }
            },
            |m| {
                if let Some(Data::Histogram(h)) = &mut m[2].data {
                    h.data_points[0].count = 5;
                }
            },
            |m| {
                if let Some(Data::Histogram(h)) = &mut m[2].data {
                    h.data_points[0].explicit_bounds = vec![5.0, 0.5];
                }
            },
            |m| {
                if let Some(Data::Histogram(h)) = &mut m[2].data {
                    h.data_points[0].sum = Some(f64::NAN);
                }
            },
            |m| {
                if let Some(Data::ExponentialHistogram(h)) = &mut m[3].data {
                    h.data_points[0].scale = -11;
                }
            },
            |m| {
                if let Some(Data::ExponentialHistogram(h)) = &mut m[3].data {
                    h.data_points[0].zero_count = 2;
                }
            },
            |m| {
                if let Some(Data::Summary(s)) = &mut m[4].data {
                    s.data_points[0].quantile_values[0].quantile = f64::NAN;
                }
            },
            |m| {
                if let Some(Data::Summary(s)) = &mut m[4].data {
                    s.data_points[0].sum = f64::NAN;
                }
            },
            |m| {
                if let Some(Data::Sum(s)) = &mut m[1].data {
                    s.data_points[0].exemplars[0].span_id = vec![1; 7];
                }
            },
        ];
        for (i, breaks) in broken.iter().enumerate() {
            let mut metrics = every_type();
            breaks(&mut metrics);
            let bytes = request(metrics).encode_to_vec();
            assert_eq!(scan_metrics(&bytes, &limits), None, "case {i}");
            assert_eq!(slow_path(&bytes, &limits), None, "case {i}");
        }
        // The same limits as every signal: point and exemplar attributes, metadata.
        let tight = Limits {
            max_attributes: 0,
            ..Limits::default()
        };
        let bytes = request(every_type()).encode_to_vec();
        assert_eq!(scan_metrics(&bytes, &tight), None);
        assert_eq!(slow_path(&bytes, &tight), None);
    }

    #[test]
    fn unpacked_repeated_fields_and_repeated_singulars_agree_with_prost() {
        // bucket_counts (6) and explicit_bounds (7) unpacked, one field per value.
        let mut point = Vec::new();
        for c in [1u64, 2, 3] {
            point.push((6 << 3) | 1);
            point.extend_from_slice(&c.to_le_bytes());
        }
        for b in [0.5f64, 5.0] {
            point.push((7 << 3) | 1);
            point.extend_from_slice(&b.to_le_bytes());
        }
        point.push((4 << 3) | 1);
        point.extend_from_slice(&6u64.to_le_bytes());
        let wrap = |point: &[u8]| {
            let mut histogram = Vec::new();
            super::super::put_len_field(&mut histogram, 1, point);
            let mut metric = Vec::new();
            super::super::put_len_field(&mut metric, 1, b"h");
            super::super::put_len_field(&mut metric, 9, &histogram);
            let mut scope = Vec::new();
            super::super::put_len_field(&mut scope, 2, &metric);
            let mut resource = Vec::new();
            super::super::put_len_field(&mut resource, 2, &scope);
            let mut body = Vec::new();
            super::super::put_len_field(&mut body, 1, &resource);
            body
        };
        let limits = Limits::default();
        let body = wrap(&point);
        assert_eq!(slow_path(&body, &limits), Some(1));
        assert_eq!(scan_metrics(&body, &limits), Some(1));
        // count twice: prost keeps the last (7, which no longer matches): the slow path.
        let mut twice = point.clone();
        twice.push((4 << 3) | 1);
        twice.extend_from_slice(&7u64.to_le_bytes());
        let body = wrap(&twice);
        assert_eq!(scan_metrics(&body, &limits), None);
        assert_eq!(slow_path(&body, &limits), None);
        // A packed field whose length is not a multiple of 8 does not decode.
        let mut torn = point.clone();
        torn.extend_from_slice(&[(6 << 3) | 2, 3, 0, 0, 0]);
        let body = wrap(&torn);
        assert_eq!(scan_metrics(&body, &limits), None);
        assert!(ExportMetricsServiceRequest::decode(&body[..]).is_err());
    }
}
