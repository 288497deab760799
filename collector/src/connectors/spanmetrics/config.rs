//! `connectors::spanmetrics`: the Collector's spanmetricsconnector keys, defaults and
//! checks, plus one Weft key (`exemplars.tail_sampling`).

use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration};

/// The default namespace: metric names are `traces.span.metrics.calls` and
/// `traces.span.metrics.duration`, as the Collector names them.
pub const DEFAULT_NAMESPACE: &str = "traces.span.metrics";

/// The Collector's default explicit buckets, in milliseconds.
pub const DEFAULT_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10_000.0, 15_000.0,
];

/// Series held when neither `aggregation_cardinality_limit` nor `dimensions_cache_size`
/// says otherwise. The Collector's default is unlimited; Weft always bounds what it holds
/// (one series with the default buckets costs about 400 bytes, so this is ~20 MB).
pub const DEFAULT_CARDINALITY_LIMIT: usize = 50_000;

/// The dimensions every span has; `dimensions` may not repeat them.
pub const SERVICE_NAME: &str = "service.name";
pub const SPAN_NAME: &str = "span.name";
pub const SPAN_KIND: &str = "span.kind";
pub const STATUS_CODE: &str = "status.code";
pub const RESERVED: [&str; 4] = [SERVICE_NAME, SPAN_NAME, SPAN_KIND, STATUS_CODE];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Span (then resource) attributes added as dimensions.
    pub dimensions: Vec<Dimension>,
    /// Default dimensions left out (`service.name`, `span.name`, `span.kind`, `status.code`).
    pub exclude_dimensions: Vec<String>,
    /// The Collector's deprecated series cache size; Weft uses it as the series bound when
    /// `aggregation_cardinality_limit` is not set.
    pub dimensions_cache_size: Option<usize>,
    /// Series held at most; spans of new series beyond it are counted in one overflow
    /// series per resource (`otel.metric.overflow: true`). 0: Weft's default bound.
    pub aggregation_cardinality_limit: usize,
    /// Resources held at most; the least recently seen one is forgotten beyond it.
    pub resource_metrics_cache_size: usize,
    /// Only these resource attributes tell resources apart (all of them when empty).
    pub resource_metrics_key_attributes: Vec<String>,
    pub aggregation_temporality: Temporality,
    pub histogram: HistogramConfig,
    /// How often the metrics are sent to the pipelines the connector feeds.
    pub metrics_flush_interval: CfgDuration,
    /// A series not updated for this long is no longer sent (0: never expires).
    pub metrics_expiration: CfgDuration,
    /// Delta start timestamps are tracked per series; accepted for Collector configs.
    pub metric_timestamp_cache_size: Option<usize>,
    /// Prefix of the metric names (`<namespace>.calls`); empty for none.
    pub namespace: String,
    pub exemplars: ExemplarsConfig,
    pub events: EventsConfig,
    /// Spans of these instrumentation scopes get `span.instrumentation.scope.name` and
    /// `.version` dimensions.
    pub include_instrumentation_scope: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dimensions: Vec::new(),
            exclude_dimensions: Vec::new(),
            dimensions_cache_size: None,
            aggregation_cardinality_limit: 0,
            resource_metrics_cache_size: 1000,
            resource_metrics_key_attributes: Vec::new(),
            aggregation_temporality: Temporality::Cumulative,
            histogram: HistogramConfig::default(),
            metrics_flush_interval: CfgDuration::from_secs(60),
            metrics_expiration: CfgDuration::default(),
            metric_timestamp_cache_size: None,
            namespace: DEFAULT_NAMESPACE.to_string(),
            exemplars: ExemplarsConfig::default(),
            events: EventsConfig::default(),
            include_instrumentation_scope: Vec::new(),
        }
    }
}

/// One extra dimension: an attribute name, and the value used when a span lacks it (without
/// a default, the dimension is left out for that span).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    pub name: String,
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum Temporality {
    #[default]
    #[serde(rename = "AGGREGATION_TEMPORALITY_CUMULATIVE")]
    Cumulative,
    #[serde(rename = "AGGREGATION_TEMPORALITY_DELTA")]
    Delta,
}

impl Temporality {
    /// The OTLP enum value.
    pub fn otlp(self) -> i32 {
        match self {
            Temporality::Cumulative => 2,
            Temporality::Delta => 1,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramConfig {
    /// No duration histogram at all.
    pub disable: bool,
    pub unit: DurationUnit,
    #[serde(deserialize_with = "weft_config::present")]
    pub explicit: Option<ExplicitConfig>,
    #[serde(deserialize_with = "weft_config::present")]
    pub exponential: Option<ExponentialConfig>,
}

impl Default for HistogramConfig {
    fn default() -> Self {
        Self {
            disable: false,
            unit: DurationUnit::Milliseconds,
            explicit: None,
            exponential: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum DurationUnit {
    #[default]
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "s")]
    Seconds,
}

impl DurationUnit {
    /// The metric's `unit`.
    pub fn as_str(self) -> &'static str {
        match self {
            DurationUnit::Milliseconds => "ms",
            DurationUnit::Seconds => "s",
        }
    }

    /// Nanoseconds in one unit.
    pub fn nanos(self) -> f64 {
        match self {
            DurationUnit::Milliseconds => 1e6,
            DurationUnit::Seconds => 1e9,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplicitConfig {
    /// Bucket bounds as durations (`[2ms, 10ms, 1s]`); the Collector's defaults when empty.
    pub buckets: Vec<CfgDuration>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExponentialConfig {
    /// Buckets per histogram at most; the scale drops as the range of durations grows.
    pub max_size: usize,
}

impl Default for ExponentialConfig {
    fn default() -> Self {
        Self { max_size: 160 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    pub enabled: bool,
    /// Exemplars per data point and flush at most.
    pub max_per_data_point: usize,
    /// Weft: the id of a `tail_sampling` processor. An exemplar is attached only once that
    /// window kept the span's trace, so every exemplar points at a trace the backend has.
    pub tail_sampling: Option<String>,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_per_data_point: 5,
            tail_sampling: None,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// A `<namespace>.events` counter of span events.
    pub enabled: bool,
    /// Event attributes added as dimensions of the events counter (required when enabled).
    pub dimensions: Vec<Dimension>,
}

impl Config {
    /// The series bound: `aggregation_cardinality_limit`, else `dimensions_cache_size`,
    /// else Weft's default.
    pub fn cardinality_limit(&self) -> usize {
        match (
            self.aggregation_cardinality_limit,
            self.dimensions_cache_size,
        ) {
            (0, Some(n)) if n > 0 => n,
            (0, _) => DEFAULT_CARDINALITY_LIMIT,
            (n, _) => n,
        }
    }

    /// `<namespace>.<name>`, or `name` without a namespace.
    pub fn metric_name(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.namespace)
        }
    }

    /// The explicit bucket bounds in the histogram's unit.
    pub fn bounds(&self) -> Vec<f64> {
        let unit = self.histogram.unit;
        match self.histogram.explicit.as_ref().map(|e| &e.buckets) {
            Some(buckets) if !buckets.is_empty() => buckets
                .iter()
                .map(|d| d.get().as_nanos() as f64 / unit.nanos())
                .collect(),
            _ => DEFAULT_BUCKETS_MS
                .iter()
                .map(|ms| ms * 1e6 / unit.nanos())
                .collect(),
        }
    }
}

fn check_dimensions(dims: &[Dimension], path: &ConfigPath, diags: &mut Diagnostics) {
    let mut seen: Vec<&str> = RESERVED.to_vec();
    for (i, d) in dims.iter().enumerate() {
        let at = path.index(i).key("name");
        if d.name.is_empty() {
            diags.error(&at, "a dimension needs a name");
        } else if seen.contains(&d.name.as_str()) {
            diags.error(
                &at,
                format!(
                    "duplicate dimension name \"{}\" (service.name, span.name, span.kind and status.code are always there)",
                    d.name
                ),
            );
        } else {
            seen.push(&d.name);
        }
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        check_dimensions(&self.dimensions, &path.key("dimensions"), diags);
        for (i, name) in self.exclude_dimensions.iter().enumerate() {
            if !RESERVED.contains(&name.as_str()) {
                diags.warning(
                    &path.key("exclude_dimensions").index(i),
                    format!(
                        "\"{name}\" is not a default dimension ({}): nothing to exclude",
                        RESERVED.join(", ")
                    ),
                );
            }
        }
        if self.events.enabled {
            if self.events.dimensions.is_empty() {
                diags.error(
                    &path.key("events").key("dimensions"),
                    "no dimensions configured for events: list the event attributes to count by",
                );
            }
            check_dimensions(
                &self.events.dimensions,
                &path.key("events").key("dimensions"),
                diags,
            );
        }
        let h = &self.histogram;
        if h.explicit.is_some() && h.exponential.is_some() {
            diags.error(
                &path.key("histogram"),
                "use either `explicit` or `exponential` buckets histogram, not both",
            );
        }
        if let Some(explicit) = &h.explicit {
            let bounds = self.bounds();
            if !explicit.buckets.is_empty() && bounds.windows(2).any(|w| w[0] >= w[1]) {
                diags.error(
                    &path.key("histogram").key("explicit").key("buckets"),
                    "bucket bounds must be strictly increasing",
                );
            }
        }
        if let Some(exponential) = &h.exponential {
            if exponential.max_size < 2 {
                diags.error(
                    &path.key("histogram").key("exponential").key("max_size"),
                    "must be at least 2",
                );
            }
        }
        if self.metrics_flush_interval.is_zero() {
            diags.error(
                &path.key("metrics_flush_interval"),
                "must be greater than 0, e.g. \"15s\"",
            );
        }
        if self.resource_metrics_cache_size == 0 {
            diags.error(
                &path.key("resource_metrics_cache_size"),
                "must be at least 1",
            );
        }
        if self.dimensions_cache_size == Some(0) {
            diags.error(&path.key("dimensions_cache_size"), "must be at least 1");
        }
        if self.exemplars.max_per_data_point == 0 {
            diags.error(
                &path.key("exemplars").key("max_per_data_point"),
                "must be at least 1",
            );
        }
        if let Some(id) = &self.exemplars.tail_sampling {
            if id.parse::<weft_config::ComponentId>().is_err() {
                diags.error(
                    &path.key("exemplars").key("tail_sampling"),
                    format!("{id:?} is not a component id, e.g. \"tail_sampling\""),
                );
            } else if !self.exemplars.enabled {
                diags.warning(
                    &path.key("exemplars").key("tail_sampling"),
                    "has no effect while exemplars.enabled is false",
                );
            }
        }
    }
}
