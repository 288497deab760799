//! The exposition: the [`Store`] written by the `prometheus-client` crate's OpenMetrics text
//! encoder, through its [`Collector`] interface (called on every scrape).
//!
//! Where the crate falls short, and what is done about it:
//! - it writes label values and help text as given: values are escaped here
//!   ([`Escaped`]: `\`, `"` and newlines), so an attribute cannot break the exposition;
//! - it has no summary type: a summary is written as the series Prometheus stores for one,
//!   `<name>{quantile="…"}`, `<name>_sum` and `<name>_count`, each an `unknown` family;
//! - an exemplar cannot be built from outside the crate except through
//!   [`CounterWithExemplar`]: counters carry theirs (value 1, one increment), histogram
//!   buckets carry none.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::exemplar::CounterWithExemplar;
use prometheus_client::metrics::MetricType;

use super::store::{Kind, Labels, Store, Value};

/// A label value written with the exposition format's escapes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Escaped(pub String);

impl EncodeLabelValue for Escaped {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

fn escaped(labels: &Labels) -> Vec<(String, Escaped)> {
    labels
        .iter()
        .map(|(k, v)| (k.clone(), Escaped(v.clone())))
        .collect()
}

/// Help text on one line: `\` and newlines escaped.
fn help_text(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The store, encoded on each scrape.
#[derive(Clone)]
pub struct Exposition {
    pub store: Arc<Mutex<Store>>,
    pub expiration: Duration,
    pub exemplars: bool,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition").finish_non_exhaustive()
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut store = self.store.lock();
        store.expire(std::time::Instant::now(), self.expiration);
        for (name, family) in &store.families {
            let help = help_text(&family.help);
            match family.kind {
                Kind::Summary => {
                    // Quantiles under the name, then the sums and counts.
                    let mut quantiles =
                        encoder.encode_descriptor(name, &help, None, MetricType::Unknown)?;
                    for (labels, series) in &family.series {
                        if let Value::Summary { quantiles: qs, .. } = &series.value {
                            for (q, v) in qs {
                                let mut l = escaped(labels);
                                l.push(("quantile".into(), Escaped(q.to_string())));
                                quantiles.encode_family(&l)?.encode_gauge(v)?;
                            }
                        }
                    }
                    for (suffix, pick) in [("sum", 0), ("count", 1)] {
                        let n = format!("{name}_{suffix}");
                        let mut e =
                            encoder.encode_descriptor(&n, &help, None, MetricType::Unknown)?;
                        for (labels, series) in &family.series {
                            if let Value::Summary { count, sum, .. } = &series.value {
                                let l = escaped(labels);
                                let mut m = e.encode_family(&l)?;
                                if pick == 0 {
                                    m.encode_gauge(sum)?;
                                } else {
                                    m.encode_gauge(&(*count as f64))?;
                                }
                            }
                        }
                    }
                }
                kind => {
                    let metric_type = match kind {
                        Kind::Counter => MetricType::Counter,
                        Kind::Gauge => MetricType::Gauge,
                        _ => MetricType::Histogram,
                    };
                    let mut e = encoder.encode_descriptor(name, &help, None, metric_type)?;
                    for (labels, series) in &family.series {
                        let l = escaped(labels);
                        let mut m = e.encode_family(&l)?;
                        match &series.value {
                            Value::Gauge(v) => m.encode_gauge(v)?,
                            Value::Counter(v, exemplar) => {
                                let c = CounterWithExemplar::<Vec<(String, Escaped)>, f64, AtomicU64>::default();
                                match exemplar.as_ref().filter(|_| self.exemplars && *v >= 1.0) {
                                    Some((labels, time)) => {
                                        c.inc_by(v - 1.0, None, None);
                                        let time =
                                            time.map(|t| UNIX_EPOCH + Duration::from_nanos(t));
                                        c.inc_by(1.0, Some(escaped(labels)), time);
                                    }
                                    None => {
                                        c.inc_by(*v, None, None);
                                    }
                                }
                                c.encode(m)?;
                            }
                            Value::Histogram {
                                count,
                                sum,
                                bounds,
                                counts,
                            } => {
                                // The last bucket is +Inf (f64::MAX is the encoder's mark).
                                let buckets: Vec<(f64, u64)> = bounds
                                    .iter()
                                    .copied()
                                    .chain(std::iter::once(f64::MAX))
                                    .zip(counts.iter().copied())
                                    .collect();
                                m.encode_histogram::<Vec<(String, Escaped)>>(
                                    *sum, *count, &buckets, None,
                                )?;
                            }
                            Value::Summary { .. } => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The whole exposition, as served.
pub fn render(exposition: &Exposition) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(exposition.clone()));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}
