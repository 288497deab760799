//! `exporters::prometheus`: the Collector's prometheusexporter keys Weft supports.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;
use weft_config::{
    present, ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration, Endpoint,
};

/// Series held when `max_series` is not set: every series is a few hundred bytes, and a
/// Prometheus server scraping more than this from one target is rarely what anyone meant.
pub const DEFAULT_MAX_SERIES: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where `/metrics` is served, `host:port` (required).
    pub endpoint: Option<Endpoint>,
    /// Prefix of every metric name (`<namespace>_<name>`).
    pub namespace: String,
    /// Labels added to every series.
    pub const_labels: BTreeMap<String, String>,
    /// A series not updated for this long leaves the exposition.
    pub metric_expiration: CfgDuration,
    pub resource_to_telemetry_conversion: ResourceConversion,
    /// Exemplars in the exposition (it is OpenMetrics text either way, see the README).
    pub enable_open_metrics: bool,
    /// Unit and type suffixes (`_seconds`, `_total`); the Collector's deprecated switch.
    pub add_metric_suffixes: bool,
    /// `UnderscoreEscapingWithSuffixes` (default) or `UnderscoreEscapingWithoutSuffixes`.
    pub translation_strategy: Option<String>,
    /// Weft: series exposed at most; points of new series beyond it are dropped and counted
    /// in `weft_exporter_prometheus_points_dropped{reason="max_series"}`.
    pub max_series: usize,
    /// Sample timestamps: not written (the prometheus-client encoder has none); `false` only.
    pub send_timestamps: bool,
    #[serde(deserialize_with = "present")]
    pub tls: Option<Value>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            namespace: String::new(),
            const_labels: BTreeMap::new(),
            metric_expiration: CfgDuration::from_secs(300),
            resource_to_telemetry_conversion: ResourceConversion::default(),
            enable_open_metrics: false,
            add_metric_suffixes: true,
            translation_strategy: None,
            max_series: DEFAULT_MAX_SERIES,
            send_timestamps: false,
            tls: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConversion {
    /// Every resource attribute becomes a label of every series of the resource.
    pub enabled: bool,
}

impl Config {
    /// Whether names get unit and type suffixes.
    pub fn suffixes(&self) -> bool {
        match self.translation_strategy.as_deref() {
            Some("UnderscoreEscapingWithoutSuffixes") => false,
            Some(_) => true,
            None => self.add_metric_suffixes,
        }
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.endpoint.is_none() {
            diags.error(
                &path.key("endpoint"),
                "required: the address Prometheus scrapes, e.g. \"0.0.0.0:8889\"",
            );
        }
        if self.max_series == 0 {
            diags.error(&path.key("max_series"), "must be at least 1");
        }
        if self.metric_expiration.is_zero() {
            diags.error(
                &path.key("metric_expiration"),
                "must be greater than 0, e.g. \"5m\"",
            );
        }
        match self.translation_strategy.as_deref() {
            None | Some("UnderscoreEscapingWithSuffixes" | "UnderscoreEscapingWithoutSuffixes") => {}
            Some(other) => diags.error(
                &path.key("translation_strategy"),
                format!("{other:?} is not supported: Weft writes names Prometheus 2 and 3 both read, \"UnderscoreEscapingWithSuffixes\" or \"UnderscoreEscapingWithoutSuffixes\""),
            ),
        }
        if self.send_timestamps {
            diags.error(
                &path.key("send_timestamps"),
                "not supported: samples carry no timestamps (Prometheus uses the scrape time)",
            );
        }
        if self.tls.is_some() {
            diags.error(
                &path.key("tls"),
                "not supported: serve /metrics on loopback or a private network, or put a TLS proxy in front",
            );
        }
        for name in self.const_labels.keys() {
            if super::naming::label_name(name).as_deref() != Some(name.as_str()) {
                diags.error(
                    &path.key("const_labels").key(name.clone()),
                    "not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                );
            }
        }
    }
}
