//! What the exporter exposes: the latest state of every series, as the Collector's
//! prometheus exporter accumulates it.
//!
//! - cumulative sums and histograms, gauges and summaries: the latest point replaces the
//!   series' value;
//! - delta monotonic sums and delta histograms: added to the series (a Prometheus counter is
//!   cumulative); a histogram whose bounds changed starts again;
//! - delta non-monotonic sums: dropped, as the Collector does (counted, reason
//!   `delta_updown`);
//! - exponential histograms: exposed as classic histograms, one `le` per exponential bucket
//!   (`le` = the bucket's upper bound) — the text format has no native histograms.
//!
//! Bounds: at most `max_series` series; a point of a new series beyond it is dropped and
//! counted (reason `max_series`), never held. A series not updated for `metric_expiration`
//! leaves the exposition.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::metrics::v1::{
    metric::Data, number_data_point, Exemplar, ExponentialHistogramDataPoint, Metric,
};

use super::naming::{label_name, metric_name, NameKind};
use crate::telemetry::Telemetry;

/// A series' labels: sorted by name, names sanitised, values as text.
pub type Labels = Vec<(String, String)>;

/// What kind of family a series belongs to; a family keeps the kind it was created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

#[derive(Clone, Debug)]
pub enum Value {
    /// `value`, and the latest exemplar (its labels, its time) when there is one. A counter
    /// exemplar stands for one increment (OpenMetrics: its value is the increment).
    Counter(f64, Option<(Labels, Option<u64>)>),
    Gauge(f64),
    Histogram {
        count: u64,
        sum: f64,
        /// Upper bounds, then per-bucket (not cumulative) counts, one more than bounds.
        bounds: Vec<f64>,
        counts: Vec<u64>,
    },
    Summary {
        count: u64,
        sum: f64,
        quantiles: Vec<(f64, f64)>,
    },
}

#[derive(Clone, Debug)]
pub struct Series {
    pub value: Value,
    updated: Instant,
}

#[derive(Debug)]
pub struct Family {
    pub kind: Kind,
    pub help: String,
    pub series: HashMap<Labels, Series>,
}

/// Why points were not exposed.
#[derive(Clone)]
pub struct StoreMetrics {
    max_series: Counter,
    delta_updown: Counter,
    type_conflict: Counter,
    invalid_name: Counter,
}

impl StoreMetrics {
    pub fn new(t: &Telemetry, exporter: &str) -> Self {
        let dropped = |reason| {
            t.counter(
                "weft_exporter_prometheus_points_dropped",
                "Data points the prometheus exporter could not expose, by reason: max_series (a new series beyond the bound), delta_updown (a delta non-monotonic sum), type_conflict (a name already exposed as another type), invalid_name",
                &[("exporter", exporter), ("reason", reason)],
            )
        };
        Self {
            max_series: dropped("max_series"),
            delta_updown: dropped("delta_updown"),
            type_conflict: dropped("type_conflict"),
            invalid_name: dropped("invalid_name"),
        }
    }
}

/// How points become series.
pub struct Naming {
    pub namespace: String,
    pub const_labels: BTreeMap<String, String>,
    pub suffixes: bool,
    pub resource_to_labels: bool,
    pub exemplars: bool,
}

#[derive(Default)]
pub struct Store {
    pub families: BTreeMap<String, Family>,
    series: usize,
}

const DELTA: i32 = 1;

/// An attribute value as label text (`AsString`): strings as they are, others printed,
/// arrays and maps as JSON.
pub fn value_text(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => weft_proto::base64::encode(b),
        Some(any_value::Value::StringValueStrindex(i)) => i.to_string(),
        Some(any_value::Value::ArrayValue(a)) => format!(
            "[{}]",
            a.values
                .iter()
                .map(|v| serde_json::to_string(&value_text(v)).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(any_value::Value::KvlistValue(l)) => format!(
            "{{{}}}",
            l.values
                .iter()
                .map(|kv| format!(
                    "{}:{}",
                    serde_json::to_string(&kv.key).unwrap_or_default(),
                    serde_json::to_string(&kv.value.as_ref().map(value_text).unwrap_or_default())
                        .unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn attribute<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key)?.value.as_ref()
}

/// Adds `attrs` as labels; names that collide after sanitising join their values with `;`
/// (as the Collector's translator does).
fn add_labels(into: &mut BTreeMap<String, String>, attrs: &[KeyValue]) {
    for kv in attrs {
        let Some(name) = label_name(&kv.key) else {
            continue;
        };
        let value = kv.value.as_ref().map(value_text).unwrap_or_default();
        into.entry(name)
            .and_modify(|v| {
                v.push(';');
                v.push_str(&value);
            })
            .or_insert(value);
    }
}

/// `job` and `instance` from the resource, as the Collector derives them: `job` is
/// `service.namespace/service.name` (or `service.name`), `instance` is
/// `service.instance.id`.
fn job_and_instance(resource: &[KeyValue], into: &mut BTreeMap<String, String>) {
    if let Some(name) = attribute(resource, "service.name").map(value_text) {
        let job = match attribute(resource, "service.namespace").map(value_text) {
            Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
            _ => name,
        };
        into.insert("job".into(), job);
    }
    if let Some(id) = attribute(resource, "service.instance.id").map(value_text) {
        into.insert("instance".into(), id);
    }
}

/// A histogram point's value: added to the series' previous one when the point is a delta
/// with the same bounds, else (cumulative, first point, or bounds changed) the point itself.
fn histogram_value(
    delta: bool,
    old: Option<&Value>,
    count: u64,
    sum: f64,
    bounds: Vec<f64>,
    counts: Vec<u64>,
) -> Value {
    match old {
        Some(Value::Histogram {
            count: c,
            sum: s,
            bounds: b,
            counts: k,
        }) if delta && *b == bounds => Value::Histogram {
            count: c + count,
            sum: s + sum,
            counts: k.iter().zip(&counts).map(|(a, b)| a + b).collect(),
            bounds,
        },
        _ => Value::Histogram {
            count,
            sum,
            bounds,
            counts,
        },
    }
}

/// The exponential buckets as classic ones: negative buckets (most negative first), the
/// zero bucket, positive buckets; each bound the bucket's upper edge.
fn classic_of_exponential(p: &ExponentialHistogramDataPoint) -> (Vec<f64>, Vec<u64>) {
    let base = 2f64.powf(2f64.powi(-p.scale));
    let mut bounds = Vec::new();
    let mut counts = Vec::new();
    if let Some(neg) = &p.negative {
        // Bucket i holds [-base^(i+1), -base^i): its upper edge is -base^i.
        for (k, c) in neg.bucket_counts.iter().enumerate().rev() {
            let index = neg.offset + k as i32;
            bounds.push(-base.powi(index));
            counts.push(*c);
        }
    }
    bounds.push(p.zero_threshold.max(0.0));
    counts.push(p.zero_count);
    if let Some(pos) = &p.positive {
        for (k, c) in pos.bucket_counts.iter().enumerate() {
            let index = pos.offset + k as i32;
            bounds.push(base.powi(index + 1));
            counts.push(*c);
        }
    }
    // Rounding can make neighbouring bounds equal at high scales: merge those.
    let mut merged_bounds: Vec<f64> = Vec::with_capacity(bounds.len());
    let mut merged_counts: Vec<u64> = Vec::with_capacity(counts.len() + 1);
    for (b, c) in bounds.into_iter().zip(counts) {
        match merged_bounds.last() {
            Some(last) if b <= *last => *merged_counts.last_mut().unwrap_or(&mut 0) += c,
            _ => {
                merged_bounds.push(b);
                merged_counts.push(c);
            }
        }
    }
    merged_counts.push(0); // +Inf: every value is in a finite bucket
    (merged_bounds, merged_counts)
}

impl Store {
    pub fn series_count(&self) -> usize {
        self.series
    }

    /// Takes in every point of `request`.
    pub fn update(
        &mut self,
        request: &ExportMetricsServiceRequest,
        naming: &Naming,
        max_series: usize,
        metrics: &StoreMetrics,
        now: Instant,
    ) {
        for rm in &request.resource_metrics {
            let resource = rm
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let mut base = BTreeMap::new();
            if naming.resource_to_labels {
                add_labels(&mut base, resource);
            }
            job_and_instance(resource, &mut base);
            for (k, v) in &naming.const_labels {
                base.insert(k.clone(), v.clone());
            }
            if !naming.resource_to_labels {
                self.target_info(resource, &base, max_series, metrics, now);
            }
            for sm in &rm.scope_metrics {
                let mut scoped = base.clone();
                if let Some(scope) = &sm.scope {
                    if !scope.name.is_empty() {
                        scoped.insert("otel_scope_name".into(), scope.name.clone());
                    }
                    if !scope.version.is_empty() {
                        scoped.insert("otel_scope_version".into(), scope.version.clone());
                    }
                }
                for metric in &sm.metrics {
                    self.metric(metric, &scoped, naming, max_series, metrics, now);
                }
            }
        }
    }

    /// `target_info{job,instance,<other resource attributes>} 1`, as the Collector exposes
    /// a resource's attributes when they are not on every series.
    fn target_info(
        &mut self,
        resource: &[KeyValue],
        base: &BTreeMap<String, String>,
        max_series: usize,
        metrics: &StoreMetrics,
        now: Instant,
    ) {
        let others: Vec<KeyValue> = resource
            .iter()
            .filter(|kv| {
                !matches!(
                    kv.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .cloned()
            .collect();
        if others.is_empty() {
            return;
        }
        let mut labels = base.clone();
        add_labels(&mut labels, &others);
        self.set(
            "target_info",
            Kind::Gauge,
            "Target metadata",
            labels.into_iter().collect(),
            |_| Value::Gauge(1.0),
            max_series,
            metrics,
            now,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn set(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        labels: Labels,
        value: impl FnOnce(Option<&Value>) -> Value,
        max_series: usize,
        metrics: &StoreMetrics,
        now: Instant,
    ) {
        let family = self
            .families
            .entry(name.to_string())
            .or_insert_with(|| Family {
                kind,
                help: help.to_string(),
                series: HashMap::new(),
            });
        if family.kind != kind {
            metrics.type_conflict.inc();
            return;
        }
        match family.series.get_mut(&labels) {
            Some(series) => {
                series.value = value(Some(&series.value));
                series.updated = now;
            }
            None if self.series < max_series => {
                self.series += 1;
                family.series.insert(
                    labels,
                    Series {
                        value: value(None),
                        updated: now,
                    },
                );
            }
            None => {
                metrics.max_series.inc();
            }
        }
    }

    fn metric(
        &mut self,
        metric: &Metric,
        base: &BTreeMap<String, String>,
        naming: &Naming,
        max_series: usize,
        metrics: &StoreMetrics,
        now: Instant,
    ) {
        let Some(data) = &metric.data else { return };
        let name_kind = match data {
            Data::Sum(s) if s.is_monotonic => NameKind::MonotonicCounter,
            Data::Gauge(_) | Data::Sum(_) => NameKind::Gauge,
            _ => NameKind::Other,
        };
        let name = metric_name(
            &metric.name,
            &metric.unit,
            name_kind,
            &naming.namespace,
            naming.suffixes,
        );
        if name.is_empty() || name.chars().all(|c| c == '_') {
            metrics.invalid_name.inc();
            return;
        }
        let labels = |attrs: &[KeyValue]| -> Labels {
            let mut l = base.clone();
            add_labels(&mut l, attrs);
            l.into_iter().collect()
        };
        let help = &metric.description;
        let number = |v: Option<&number_data_point::Value>| match v {
            Some(number_data_point::Value::AsDouble(d)) => *d,
            Some(number_data_point::Value::AsInt(i)) => *i as f64,
            None => f64::NAN,
        };
        let exemplar = |list: &[Exemplar]| -> Option<(Labels, Option<u64>)> {
            if !naming.exemplars {
                return None;
            }
            let e = list.iter().rev().find(|e| !e.trace_id.is_empty())?;
            let mut l = vec![("trace_id".to_string(), hex::encode(&e.trace_id))];
            if !e.span_id.is_empty() {
                l.push(("span_id".to_string(), hex::encode(&e.span_id)));
            }
            Some((l, (e.time_unix_nano > 0).then_some(e.time_unix_nano)))
        };
        match data {
            Data::Gauge(g) => {
                for p in &g.data_points {
                    let v = number(p.value.as_ref());
                    self.set(
                        &name,
                        Kind::Gauge,
                        help,
                        labels(&p.attributes),
                        |_| Value::Gauge(v),
                        max_series,
                        metrics,
                        now,
                    );
                }
            }
            Data::Sum(s) if !s.is_monotonic => {
                if s.aggregation_temporality == DELTA {
                    metrics.delta_updown.inc_by(s.data_points.len() as u64);
                    return;
                }
                for p in &s.data_points {
                    let v = number(p.value.as_ref());
                    self.set(
                        &name,
                        Kind::Gauge,
                        help,
                        labels(&p.attributes),
                        |_| Value::Gauge(v),
                        max_series,
                        metrics,
                        now,
                    );
                }
            }
            Data::Sum(s) => {
                let counter = name.strip_suffix("_total").unwrap_or(&name).to_string();
                let delta = s.aggregation_temporality == DELTA;
                for p in &s.data_points {
                    let v = number(p.value.as_ref());
                    let ex = exemplar(&p.exemplars);
                    self.set(
                        &counter,
                        Kind::Counter,
                        help,
                        labels(&p.attributes),
                        |old| {
                            let total = match (delta, old) {
                                (true, Some(Value::Counter(prev, _))) => prev + v,
                                _ => v,
                            };
                            let ex = ex.or_else(|| match old {
                                Some(Value::Counter(_, e)) => e.clone(),
                                _ => None,
                            });
                            Value::Counter(total, ex)
                        },
                        max_series,
                        metrics,
                        now,
                    );
                }
            }
            Data::Histogram(h) => {
                let delta = h.aggregation_temporality == DELTA;
                for p in &h.data_points {
                    let (bounds, counts) = if p.bucket_counts.is_empty() {
                        (Vec::new(), vec![p.count])
                    } else {
                        (p.explicit_bounds.clone(), p.bucket_counts.clone())
                    };
                    let sum = p.sum.unwrap_or(0.0);
                    let count = p.count;
                    self.set(
                        &name,
                        Kind::Histogram,
                        help,
                        labels(&p.attributes),
                        |old| histogram_value(delta, old, count, sum, bounds, counts),
                        max_series,
                        metrics,
                        now,
                    );
                }
            }
            Data::ExponentialHistogram(h) => {
                let delta = h.aggregation_temporality == DELTA;
                for p in &h.data_points {
                    let (bounds, counts) = classic_of_exponential(p);
                    let sum = p.sum.unwrap_or(0.0);
                    let count = p.count;
                    self.set(
                        &name,
                        Kind::Histogram,
                        help,
                        labels(&p.attributes),
                        |old| histogram_value(delta, old, count, sum, bounds, counts),
                        max_series,
                        metrics,
                        now,
                    );
                }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    let value = Value::Summary {
                        count: p.count,
                        sum: p.sum,
                        quantiles: p
                            .quantile_values
                            .iter()
                            .map(|q| (q.quantile, q.value))
                            .collect(),
                    };
                    self.set(
                        &name,
                        Kind::Summary,
                        help,
                        labels(&p.attributes),
                        |_| value,
                        max_series,
                        metrics,
                        now,
                    );
                }
            }
        }
    }

    /// Forgets series not updated for `expiration`.
    pub fn expire(&mut self, now: Instant, expiration: Duration) {
        let mut gone = 0;
        for family in self.families.values_mut() {
            let before = family.series.len();
            family
                .series
                .retain(|_, s| now.saturating_duration_since(s.updated) < expiration);
            gone += before - family.series.len();
        }
        self.families.retain(|_, f| !f.series.is_empty());
        self.series -= gone;
    }
}
