//! OpenTelemetry → Prometheus names, as the Collector's prometheus exporter writes them
//! (prometheus/otlptranslator with `UnderscoreEscapingWithSuffixes`):
//!
//! - metric names: the name's runs of `[a-zA-Z0-9:]` joined by `_`, then the unit (`ms` →
//!   `milliseconds`, `By/s` → `bytes_per_second`, `{request}` → nothing, `1` → nothing) unless
//!   a token already is it, `_total` for monotonic counters, `_ratio` for gauges of unit `1`,
//!   the namespace in front, and `_` in front of a leading digit;
//! - label names: every character outside `[a-zA-Z0-9_]` becomes `_`; a leading digit gets
//!   `key_`, a single leading `_` gets `key`.

/// The kind of a metric, as far as naming goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    MonotonicCounter,
    Gauge,
    Other,
}

fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

fn valid_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// `s` with every run of characters outside `[a-zA-Z0-9:]` made one `_`, without a leading
/// `_` (the otlptranslator's `cleanUpUnit`).
fn clean_unit(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if valid_metric_char(c) { c } else { '_' };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    out
}

/// The main and per-unit suffixes of a UCUM unit (`By/s` → `bytes`, `per_second`).
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let main = if main.is_empty() || main.contains(['{', '}']) {
        String::new()
    } else {
        clean_unit(unit_word(main))
    };
    let per = match parts.next().map(str::trim) {
        Some(p) if !p.is_empty() && !p.contains(['{', '}']) => {
            let word = clean_unit(per_unit_word(p));
            if word.is_empty() {
                String::new()
            } else {
                format!("per_{word}")
            }
        }
        _ => String::new(),
    };
    (main, per)
}

/// The Prometheus name of a metric.
pub fn metric_name(
    name: &str,
    unit: &str,
    kind: NameKind,
    namespace: &str,
    suffixes: bool,
) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !valid_metric_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if suffixes {
        let (mut main, mut per) = unit_suffixes(unit);
        if tokens.contains(&main) {
            main.clear();
        }
        if per == "per_" {
            per.clear();
        } else {
            per = per.trim_end_matches('_').to_string();
            if tokens.contains(&per) {
                per.clear();
            }
        }
        if !per.is_empty() {
            main = main.trim_end_matches('_').to_string();
        }
        if !main.is_empty() {
            tokens.push(main);
        }
        if !per.is_empty() {
            tokens.push(per);
        }
        if kind == NameKind::MonotonicCounter {
            tokens.retain(|t| t != "total");
            tokens.push("total".into());
        }
        if unit == "1" && kind == NameKind::Gauge {
            tokens.retain(|t| t != "ratio");
            tokens.push("ratio".into());
        }
    }
    if !namespace.is_empty() {
        let ns: Vec<&str> = namespace
            .split(|c: char| !valid_metric_char(c))
            .filter(|t| !t.is_empty())
            .collect();
        tokens.insert(0, ns.join("_"));
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus name of an attribute; `None` when nothing of it is left (`""`, `"..."`).
pub fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    if out.chars().all(|c| c == '_') {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_the_collector() {
        let cases = [
            (
                "traces.span.metrics.calls",
                "",
                NameKind::MonotonicCounter,
                "",
                "traces_span_metrics_calls_total",
            ),
            (
                "traces.span.metrics.duration",
                "ms",
                NameKind::Other,
                "",
                "traces_span_metrics_duration_milliseconds",
            ),
            (
                "http.server.request.duration",
                "s",
                NameKind::Other,
                "",
                "http_server_request_duration_seconds",
            ),
            (
                "system.network.io",
                "By",
                NameKind::MonotonicCounter,
                "",
                "system_network_io_bytes_total",
            ),
            (
                "throughput",
                "By/s",
                NameKind::Gauge,
                "",
                "throughput_bytes_per_second",
            ),
            (
                "requests",
                "{request}",
                NameKind::MonotonicCounter,
                "",
                "requests_total",
            ),
            (
                "requests.total",
                "1",
                NameKind::MonotonicCounter,
                "",
                "requests_total",
            ),
            (
                "cpu.utilization",
                "1",
                NameKind::Gauge,
                "",
                "cpu_utilization_ratio",
            ),
            (
                "latency_seconds",
                "s",
                NameKind::Other,
                "",
                "latency_seconds",
            ),
            ("2xx.count", "", NameKind::Gauge, "", "_2xx_count"),
            (
                "queue.items",
                "{item}",
                NameKind::Other,
                "weft",
                "weft_queue_items",
            ),
            (
                "device.temperature",
                "Cel",
                NameKind::Gauge,
                "",
                "device_temperature_celsius",
            ),
            (
                "weird  name--x",
                "foo/bar",
                NameKind::Gauge,
                "",
                "weird_name_x_foo_per_bar",
            ),
            ("a:b", "", NameKind::Gauge, "", "a:b"),
        ];
        for (name, unit, kind, ns, expected) in cases {
            assert_eq!(
                metric_name(name, unit, kind, ns, true),
                expected,
                "{name} [{unit}]"
            );
        }
        assert_eq!(
            metric_name(
                "traces.span.metrics.calls",
                "",
                NameKind::MonotonicCounter,
                "",
                false
            ),
            "traces_span_metrics_calls"
        );
    }

    #[test]
    fn label_names_are_sanitised() {
        let cases = [
            ("service.name", Some("service_name")),
            (
                "http.response.status_code",
                Some("http_response_status_code"),
            ),
            ("123abc", Some("key_123abc")),
            ("_private", Some("key_private")),
            ("__reserved", Some("__reserved")),
            ("ünïcode", Some("key_n_code")),
            ("", None),
            ("...", None),
        ];
        for (key, expected) in cases {
            assert_eq!(label_name(key).as_deref(), expected, "{key}");
        }
    }
}
