//! What the two-tier tests (a load-balancing tier and a Kafka tier in front of tail-sampling
//! gateways) share: the gateway's configuration, reading what each gateway kept, and the
//! completeness checks against the client's manifest; for metrics, the SDK's points against
//! what each gateway wrote.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde_json::Value as Json;

/// A gateway: `receiver` (YAML of the `receivers:` section, defining `receiver_id`) → one `tail_sampling` window for
/// traces and logs (errors and slow traces kept, `decision_wait` 2 s) → files in `out`;
/// metrics straight to `out/metrics.jsonl`; the files are appended to, so a gateway restarted
/// on the same `out` keeps what it exported before.
/// `window_extra` goes into the window's section, `extra` at the top level (an `extensions:`
/// section), `extensions` into `service::extensions`.
pub fn gateway_config(
    receiver_id: &str,
    receiver: &str,
    window_extra: &str,
    extra: &str,
    extensions: &str,
    metrics: u16,
    out: &Path,
) -> String {
    format!(
        r#"
receivers:
{receiver}
processors:
  tail_sampling:
    decision_wait: 2s
    num_traces: 20000
{window_extra}
    policies:
      - {{ name: errors, type: status_code, status_code: {{ status_codes: [ERROR] }} }}
      - {{ name: slow, type: latency, latency: {{ threshold_ms: 1000 }} }}
exporters:
  file/traces:
    path: {out}/traces.jsonl
    flush_interval: 100ms
    append: true
  file/logs:
    path: {out}/logs.jsonl
    flush_interval: 100ms
    append: true
  file/metrics:
    path: {out}/metrics.jsonl
    flush_interval: 100ms
    append: true
{extra}
service:
  extensions: [{extensions}]
  pipelines:
    traces: {{receivers: [{receiver_id}], processors: [tail_sampling], exporters: [file/traces]}}
    logs: {{receivers: [{receiver_id}], processors: [tail_sampling], exporters: [file/logs]}}
    metrics: {{receivers: [{receiver_id}], exporters: [file/metrics]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        out = out.display()
    )
}

/// One trace of the client's manifest.
#[derive(Clone, Debug)]
pub struct Sent {
    pub category: String,
    pub spans: BTreeSet<String>,
    pub logs: BTreeSet<String>,
}

/// The manifest `emit_two_services.py` wrote: trace id → what was sent.
pub fn read_manifest(path: &Path) -> BTreeMap<String, Sent> {
    let json: Json = serde_json::from_str(&std::fs::read_to_string(path).expect("manifest"))
        .expect("JSON manifest");
    json["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .map(|t| {
            let strings = |key: &str| -> BTreeSet<String> {
                t[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            (
                t["trace_id"].as_str().unwrap().to_string(),
                Sent {
                    category: t["category"].as_str().unwrap().to_string(),
                    spans: strings("spans"),
                    logs: strings("logs"),
                },
            )
        })
        .collect()
}

/// What one gateway exported: trace id → span ids, and trace id → log bodies.
#[derive(Clone, Debug, Default)]
pub struct Kept {
    pub spans: HashMap<String, BTreeSet<String>>,
    pub logs: HashMap<String, BTreeSet<String>>,
}

impl Kept {
    pub fn read(out: &Path) -> Self {
        let (spans, logs) = crate::file_sink_received(out);
        let mut kept = Kept::default();
        for (trace, span) in spans {
            kept.spans.entry(trace).or_default().insert(span);
        }
        for log in logs {
            let (trace, body) = log.split_once('|').unwrap();
            kept.logs
                .entry(trace.to_string())
                .or_default()
                .insert(body.to_string());
        }
        kept
    }

    pub fn traces(&self) -> BTreeSet<&String> {
        self.spans.keys().chain(self.logs.keys()).collect()
    }
}

/// For each expected-kept trace of `sent` (errors and slow ones), the gateways that exported
/// any of it, and whether the union of what they exported is the whole trace.
pub struct Completeness {
    /// Expected-kept traces with every span and log exported at one single gateway.
    pub whole_at_one: usize,
    /// Expected-kept traces exported in parts by several gateways.
    pub split: Vec<String>,
    /// Expected-kept traces missing a span or a log in the union of all gateways.
    pub incomplete: Vec<String>,
    /// Traces exported that should have been dropped (category ok).
    pub wrongly_kept: Vec<String>,
    /// Expected-kept trace id → the gateways (indexes) that exported any of it.
    pub placement: HashMap<String, Vec<usize>>,
}

pub fn completeness(sent: &BTreeMap<String, Sent>, gateways: &[Kept]) -> Completeness {
    let mut c = Completeness {
        whole_at_one: 0,
        split: Vec::new(),
        incomplete: Vec::new(),
        wrongly_kept: Vec::new(),
        placement: HashMap::new(),
    };
    for (trace, s) in sent {
        let at: Vec<usize> = gateways
            .iter()
            .enumerate()
            .filter(|(_, g)| g.spans.contains_key(trace) || g.logs.contains_key(trace))
            .map(|(i, _)| i)
            .collect();
        if s.category == "ok" {
            if !at.is_empty() {
                c.wrongly_kept.push(trace.clone());
            }
            continue;
        }
        let spans: BTreeSet<String> = gateways
            .iter()
            .filter_map(|g| g.spans.get(trace))
            .flatten()
            .cloned()
            .collect();
        let logs: BTreeSet<String> = gateways
            .iter()
            .filter_map(|g| g.logs.get(trace))
            .flatten()
            .cloned()
            .collect();
        if spans != s.spans || logs != s.logs {
            c.incomplete.push(trace.clone());
        } else if at.len() == 1 {
            c.whole_at_one += 1;
        }
        if at.len() > 1 {
            c.split.push(trace.clone());
        }
        c.placement.insert(trace.clone(), at);
    }
    c
}

/// Number of expected-kept traces in `sent`.
pub fn expected_kept(sent: &BTreeMap<String, Sent>) -> usize {
    sent.values().filter(|s| s.category != "ok").count()
}

/// One data point: its service, and its identity within the service (metric name,
/// attributes, collection time), unique per point of an `emit_metrics.py` run.
pub type Point = (String, String);

fn point_id(metric: &str, attributes: &Json, time: &Json) -> String {
    format!("{metric}|{attributes}|{time}")
}

/// Runs `emit_metrics.py` (the Python SDK's default OTLP gRPC metric exporter) as service
/// `service` against `endpoint`, and returns the points it exported. Panics when the SDK
/// reports a failed export or logs a problem.
pub fn send_sdk_metrics(endpoint: &str, service: &str, seed: u64, dir: &Path) -> Vec<Point> {
    let manifest = dir.join(format!("metrics-{service}.json"));
    let out = crate::run_python_client(
        "emit_metrics.py",
        &[
            "--endpoint",
            endpoint,
            "--protocol",
            "grpc",
            "--service",
            service,
            "--seed",
            &seed.to_string(),
            "--out",
            manifest.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let json: Json = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(json["failed_exports"], 0, "{out}");
    assert_eq!(json["sdk_problems"], serde_json::json!([]), "{out}");
    json["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                service.to_string(),
                point_id(
                    p["metric"].as_str().unwrap(),
                    &p["attributes"],
                    &p["time_unix_nano"],
                ),
            )
        })
        .collect()
}

/// Every data point a gateway wrote to `out/metrics.jsonl`, duplicates included.
pub fn received_points(out: &Path) -> Vec<Point> {
    use weft_proto::common::v1::{any_value::Value as V, KeyValue};
    use weft_proto::metrics::v1::metric::Data;
    let json = |attrs: &[KeyValue]| -> Json {
        Json::Object(
            attrs
                .iter()
                .map(|kv| {
                    let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(V::StringValue(s)) => Json::from(s.clone()),
                        Some(V::BoolValue(b)) => Json::from(*b),
                        Some(V::IntValue(i)) => Json::from(*i),
                        Some(V::DoubleValue(d)) => Json::from(*d),
                        other => panic!("unexpected attribute value {other:?}"),
                    };
                    (kv.key.clone(), v)
                })
                .collect(),
        )
    };
    let text = std::fs::read(out.join("metrics.jsonl")).unwrap_or_default();
    let mut points = Vec::new();
    for line in crate::written_lines(&text) {
        let req = weft_proto::otlp_json::decode_metrics(line).expect("OTLP/JSON line");
        for rm in &req.resource_metrics {
            let resource = json(&rm.resource.clone().unwrap_or_default().attributes);
            let service = resource["service.name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                // Every point type has `attributes` and `time_unix_nano`.
                macro_rules! each {
                    ($d:expr) => {
                        $d.data_points
                            .iter()
                            .map(|p| (&p.attributes[..], p.time_unix_nano))
                            .collect()
                    };
                }
                let each: Vec<(&[KeyValue], u64)> = match m.data.as_ref() {
                    Some(Data::Sum(d)) => each!(d),
                    Some(Data::Gauge(d)) => each!(d),
                    Some(Data::Histogram(d)) => each!(d),
                    Some(Data::ExponentialHistogram(d)) => each!(d),
                    Some(Data::Summary(d)) => each!(d),
                    None => Vec::new(),
                };
                for (attrs, time) in each {
                    points.push((
                        service.clone(),
                        point_id(&m.name, &json(attrs), &Json::from(time)),
                    ));
                }
            }
        }
    }
    points
}

/// Waits until the gateways in `outs` together hold as many points as `sent`, then checks
/// that every sent point arrived exactly once and nothing else did, and that each service's
/// points all arrived at one gateway. Returns service → the gateway (index) that got it.
pub fn metrics_grouped_by_service(
    sent: &[Point],
    outs: &[&Path],
    logs: &dyn Fn() -> String,
) -> BTreeMap<String, usize> {
    let mut got = 0;
    let received = crate::eventually(std::time::Duration::from_secs(60), || {
        let received: Vec<Vec<Point>> = outs.iter().map(|o| received_points(o)).collect();
        got = received.iter().map(Vec::len).sum();
        (got >= sent.len()).then_some(received)
    })
    .unwrap_or_else(|| panic!("{got} of {} data points arrived\n{}", sent.len(), logs()));
    let mut count: HashMap<&Point, usize> = HashMap::new();
    let mut at: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (i, points) in received.iter().enumerate() {
        for p in points {
            *count.entry(p).or_default() += 1;
            at.entry(p.0.clone()).or_default().insert(i);
        }
    }
    for p in sent {
        assert_eq!(
            count.get(p),
            Some(&1),
            "point {p:?} arrived {:?} times",
            count.get(p)
        );
    }
    assert_eq!(got, sent.len(), "no point arrived that was not sent");
    at.into_iter()
        .map(|(service, gateways)| {
            assert_eq!(
                gateways.len(),
                1,
                "service {service}'s points are split between gateways {gateways:?}"
            );
            (service, gateways.into_iter().next().unwrap())
        })
        .collect()
}
