//! Weft's own metrics, named as the OpenTelemetry Collector names them so existing dashboards
//! work. Counters are exposed with the `_total` suffix, as the Collector's Prometheus endpoint
//! does (`otelcol_receiver_accepted_spans_total`).
//!
//! Components do not reach for globals: each gets a [`Telemetry`] handle when it is built and
//! takes its own labelled series from it.

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub type Labels = Vec<(String, String)>;
pub type CounterFamily = Family<Labels, Counter>;
pub type GaugeFamily = Family<Labels, Gauge>;
/// Histograms are created with the bucket layout their family was first asked for.
pub type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The metrics registry of one running Weft, shared by every component.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Mutex<Registry>,
    counters: Mutex<Vec<(String, CounterFamily)>>,
    gauges: Mutex<Vec<(String, GaugeFamily)>>,
    histograms: Mutex<Vec<(String, HistogramFamily)>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                registry: Mutex::new(Registry::default()),
                counters: Mutex::new(Vec::new()),
                gauges: Mutex::new(Vec::new()),
                histograms: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The counter family `name` (registered on first use), e.g. `otelcol_receiver_accepted_spans`.
    pub fn counter_family(&self, name: &str, help: &str) -> CounterFamily {
        let mut counters = self.inner.counters.lock();
        if let Some((_, f)) = counters.iter().find(|(n, _)| n == name) {
            return f.clone();
        }
        let family = CounterFamily::default();
        self.inner
            .registry
            .lock()
            .register(name, help, family.clone());
        counters.push((name.to_string(), family.clone()));
        family
    }

    /// The gauge family `name` (registered on first use).
    pub fn gauge_family(&self, name: &str, help: &str) -> GaugeFamily {
        let mut gauges = self.inner.gauges.lock();
        if let Some((_, f)) = gauges.iter().find(|(n, _)| n == name) {
            return f.clone();
        }
        let family = GaugeFamily::default();
        self.inner
            .registry
            .lock()
            .register(name, help, family.clone());
        gauges.push((name.to_string(), family.clone()));
        family
    }

    /// The histogram family `name` (registered on first use with `buckets`).
    pub fn histogram_family(
        &self,
        name: &str,
        help: &str,
        buckets: fn() -> Histogram,
    ) -> HistogramFamily {
        let mut histograms = self.inner.histograms.lock();
        if let Some((_, f)) = histograms.iter().find(|(n, _)| n == name) {
            return f.clone();
        }
        let family = HistogramFamily::new_with_constructor(buckets);
        self.inner
            .registry
            .lock()
            .register(name, help, family.clone());
        histograms.push((name.to_string(), family.clone()));
        family
    }

    /// One histogram series.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: fn() -> Histogram,
    ) -> Histogram {
        self.histogram_family(name, help, buckets)
            .get_or_create(&to_labels(labels))
            .clone()
    }

    /// One counter series.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        self.counter_family(name, help)
            .get_or_create(&to_labels(labels))
            .clone()
    }

    /// One gauge series.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        self.gauge_family(name, help)
            .get_or_create(&to_labels(labels))
            .clone()
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.inner.registry.lock());
        out
    }

    /// The current value of a counter series, for tests and summaries.
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counters = self.inner.counters.lock();
        counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f.get_or_create(&to_labels(labels)).get())
            .unwrap_or(0)
    }
}

/// One sample of the text exposition: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// As exposed: counters with `_total`, histogram series with `_bucket`, `_sum`, `_count`.
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Telemetry {
    /// Every sample of every metric, read back from the text exposition: for views inside
    /// Weft (the status page) that show what `/metrics` shows without holding every
    /// component's metric handles. Costs one encoding of the registry.
    pub fn samples(&self) -> Vec<Sample> {
        parse_exposition(&self.encode())
    }
}

/// The samples of a Prometheus text exposition (comments and malformed lines skipped).
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=')?;
            let key = rest[..eq].to_string();
            rest = rest[eq + 1..].strip_prefix('"')?;
            // The value runs to the first unescaped quote; \\, \" and \n are escapes.
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            rest = &rest[end + 1..];
            labels.push((key, value));
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn to_labels(labels: &[(&str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The series a receiver updates for one signal and transport.
#[derive(Clone)]
pub struct ReceiverMetrics {
    pub accepted: Counter,
    pub refused: Counter,
}

impl ReceiverMetrics {
    /// `item` is "spans" or "log_records"; `transport` is "grpc" or "http".
    pub fn new(t: &Telemetry, receiver: &str, transport: &str, item: &str) -> Self {
        let labels = [("receiver", receiver), ("transport", transport)];
        Self {
            accepted: t.counter(
                &format!("otelcol_receiver_accepted_{item}"),
                &format!("Number of {item} successfully pushed into the pipeline"),
                &labels,
            ),
            refused: t.counter(
                &format!("otelcol_receiver_refused_{item}"),
                &format!("Number of {item} that could not be pushed into the pipeline"),
                &labels,
            ),
        }
    }
}

/// The series an exporter updates for one signal.
#[derive(Clone)]
pub struct ExporterMetrics {
    pub sent: Counter,
    pub send_failed: Counter,
    pub enqueue_failed: Counter,
    pub queue_size: Gauge,
    pub queue_capacity: Gauge,
}

impl ExporterMetrics {
    /// `item` is "spans" or "log_records"; `data_type` is "traces" or "logs".
    pub fn new(t: &Telemetry, exporter: &str, item: &str, data_type: &str) -> Self {
        let labels = [("exporter", exporter)];
        let queue_labels = [("exporter", exporter), ("data_type", data_type)];
        Self {
            sent: t.counter(
                &format!("otelcol_exporter_sent_{item}"),
                &format!("Number of {item} successfully sent to destination"),
                &labels,
            ),
            send_failed: t.counter(
                &format!("otelcol_exporter_send_failed_{item}"),
                &format!("Number of {item} in failed attempts to send to destination"),
                &labels,
            ),
            enqueue_failed: t.counter(
                &format!("otelcol_exporter_enqueue_failed_{item}"),
                &format!("Number of {item} that failed to be added to the sending queue"),
                &labels,
            ),
            queue_size: t.gauge(
                "otelcol_exporter_queue_size",
                "Current size of the retry queue (in batches).",
                &queue_labels,
            ),
            queue_capacity: t.gauge(
                "otelcol_exporter_queue_capacity",
                "Fixed capacity of the retry queue (in batches).",
                &queue_labels,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_read_back_what_the_exposition_shows() {
        let t = Telemetry::new();
        t.counter("c", "help", &[("a", "x y,z=w"), ("b", "2")])
            .inc_by(5);
        t.gauge("g", "help", &[]).set(-3);
        let h = t.histogram("h", "help", &[("p", "q")], || Histogram::new([1.0, 2.0]));
        h.observe(1.5);
        let samples = t.samples();
        let c = samples.iter().find(|s| s.name == "c_total").unwrap();
        assert_eq!(c.value, 5.0);
        assert_eq!(c.label("a"), Some("x y,z=w"));
        assert_eq!(c.label("b"), Some("2"));
        let g = samples.iter().find(|s| s.name == "g").unwrap();
        assert_eq!((g.value, g.labels.len()), (-3.0, 0));
        let buckets: Vec<(String, f64)> = samples
            .iter()
            .filter(|s| s.name == "h_bucket")
            .map(|s| (s.label("le").unwrap().to_string(), s.value))
            .collect();
        assert_eq!(
            buckets,
            vec![
                ("1.0".to_string(), 0.0),
                ("2.0".to_string(), 1.0),
                ("+Inf".to_string(), 1.0)
            ]
        );
        // Escapes as the exposition format defines them; a broken line is skipped.
        let parsed = parse_exposition(
            "# HELP x y\nx_total{a=\"q\\\"u\\\\o\\nte\"} 2\nbroken{a=\"1} 3\ny +Inf\n",
        );
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].label("a"), Some("q\"u\\o\nte"));
        assert_eq!(parsed[1].value, f64::INFINITY);
    }

    #[test]
    fn series_use_collector_names_and_labels() {
        let t = Telemetry::new();
        let m = ReceiverMetrics::new(&t, "otlp", "grpc", "spans");
        m.accepted.inc_by(3);
        let again = ReceiverMetrics::new(&t, "otlp", "grpc", "spans");
        again.accepted.inc();
        let text = t.encode();
        assert!(
            text.contains(
                "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"} 4"
            ),
            "{text}"
        );
        assert_eq!(
            t.counter_value(
                "otelcol_receiver_accepted_spans",
                &[("receiver", "otlp"), ("transport", "grpc")]
            ),
            4
        );
    }
}
