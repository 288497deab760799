//! What the two-tier tests (a load-balancing tier and a Kafka tier in front of tail-sampling
//! gateways) share: the gateway's configuration, reading what each gateway kept, and the
//! completeness checks against the client's manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde_json::Value as Json;

/// A gateway: `receiver` (YAML of the `receivers:` section, defining `receiver_id`) → one `tail_sampling` window for
/// traces and logs (errors and slow traces kept, `decision_wait` 2 s) → files in `out`.
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
  file/logs:
    path: {out}/logs.jsonl
    flush_interval: 100ms
{extra}
service:
  extensions: [{extensions}]
  pipelines:
    traces: {{receivers: [{receiver_id}], processors: [tail_sampling], exporters: [file/traces]}}
    logs: {{receivers: [{receiver_id}], processors: [tail_sampling], exporters: [file/logs]}}
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
