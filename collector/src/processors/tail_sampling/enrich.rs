//! What a kept trace adds to its logs (its verdict, as attributes) and to its spans (its logs,
//! as span events).
//!
//! Attributes added to every exported log of a decided trace, under `enrichment.prefix`
//! (default `weft.`):
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `sampled` | bool | the trace was kept (false: exported by `keep_logs_at_or_above`) |
//! | `policy` | string | the policy that kept the trace |
//! | `root_service` | string | `service.name` of the trace's root span |
//! | `root_operation` | string | name of the root span |
//! | `trace_duration_ms` | int | earliest span start to latest span end |
//! | `trace_error` | bool | some span of the trace has status ERROR |
//! | `span_count` | int | spans of the trace held at decision time |

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::LogRecord;
use weft_proto::trace::v1::{span, status};
use weft_proto::wire::{Fields, Value as WireValue};

use super::config::EnrichmentConfig;
use super::policy::Verdict;
use super::trace::{LogEntry, SpanEntry, TraceData};

/// A decided trace's verdict, kept in the decision cache so late logs get it too.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub policy: Option<String>,
    pub root_service: Option<String>,
    pub root_operation: Option<String>,
    pub duration_ms: i64,
    pub error: bool,
    pub span_count: i64,
}

fn kv(key: String, value: any_value::Value) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

impl Summary {
    pub fn of(trace: &TraceData, verdict: &Verdict) -> Self {
        Self::of_trace(trace, verdict.policy.as_deref().map(str::to_string))
    }

    /// The summary of `trace`, kept by `policy` (`None`: dropped).
    pub fn of_trace(trace: &TraceData, policy: Option<String>) -> Self {
        let root = trace
            .spans
            .iter()
            .find(|s| s.span.parent_span_id.is_empty());
        let root_service = root.and_then(|r| {
            r.origin
                .resource
                .attributes
                .iter()
                .find_map(|kv| match (&kv.key[..], &kv.value) {
                    (
                        "service.name",
                        Some(AnyValue {
                            value: Some(any_value::Value::StringValue(s)),
                        }),
                    ) => Some(s.clone()),
                    _ => None,
                })
        });
        Self {
            policy,
            root_service,
            root_operation: root.map(|r| r.span.name.clone()),
            duration_ms: (trace.duration_nanos() / 1_000_000) as i64,
            error: trace.spans.iter().any(|s| {
                s.span
                    .status
                    .as_ref()
                    .is_some_and(|st| st.code == status::StatusCode::Error as i32)
            }),
            span_count: trace.span_count() as i64,
        }
    }

    /// For logs exported although their trace was dropped: only `sampled = false`.
    pub fn unsampled() -> Self {
        Self::default()
    }

    /// Adds the verdict's attributes to `record` (replacing earlier values of the same keys).
    pub fn enrich(&self, cfg: &EnrichmentConfig, record: &mut LogRecord, sampled: bool) {
        if !cfg.enabled {
            return;
        }
        let added = self.attributes(cfg, sampled);
        record
            .attributes
            .retain(|a| !added.iter().any(|n| n.key == a.key));
        record.attributes.extend(added);
    }

    /// [`Summary::enrich`] on an encoded log record: the record's bytes with the verdict's
    /// attributes appended (`extra`, from [`Summary::encoded_attributes`]; a repeated field
    /// may continue anywhere in a message). `None` when the record already has an attribute
    /// under the prefix, which must be replaced: then decode and [`Summary::enrich`].
    pub fn enrich_encoded(
        cfg: &EnrichmentConfig,
        record: &[u8],
        extra: &[u8],
    ) -> Option<Arc<[u8]>> {
        if !cfg.enabled {
            return Some(record.into());
        }
        for (n, v) in Fields::new(record).flatten() {
            let (6, WireValue::Len(kv)) = (n, v) else {
                continue;
            };
            let key = Fields::new(kv).flatten().find_map(|(n, v)| match (n, v) {
                (1, WireValue::Len(key)) => Some(key),
                _ => None,
            });
            if key.is_some_and(|k| k.starts_with(cfg.prefix.as_bytes())) {
                return None;
            }
        }
        // One allocation of the final size (a chain of slices has a trusted length).
        Some(record.iter().chain(extra).copied().collect())
    }

    /// The verdict's attributes as LogRecord field 6 (attributes) entries, to append to
    /// encoded records; empty when enrichment is off.
    pub fn encoded_attributes(&self, cfg: &EnrichmentConfig, sampled: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if cfg.enabled {
            for kv in self.attributes(cfg, sampled) {
                weft_proto::wire::put_len_field(&mut out, 6, &kv.encode_to_vec());
            }
        }
        out
    }

    fn attributes(&self, cfg: &EnrichmentConfig, sampled: bool) -> Vec<KeyValue> {
        let p = &cfg.prefix;
        let mut added = vec![kv(
            format!("{p}sampled"),
            any_value::Value::BoolValue(sampled),
        )];
        if sampled {
            if let Some(policy) = &self.policy {
                added.push(kv(
                    format!("{p}policy"),
                    any_value::Value::StringValue(policy.clone()),
                ));
            }
            if let Some(service) = &self.root_service {
                added.push(kv(
                    format!("{p}root_service"),
                    any_value::Value::StringValue(service.clone()),
                ));
            }
            if let Some(op) = &self.root_operation {
                added.push(kv(
                    format!("{p}root_operation"),
                    any_value::Value::StringValue(op.clone()),
                ));
            }
            added.push(kv(
                format!("{p}trace_duration_ms"),
                any_value::Value::IntValue(self.duration_ms),
            ));
            added.push(kv(
                format!("{p}trace_error"),
                any_value::Value::BoolValue(self.error),
            ));
            added.push(kv(
                format!("{p}span_count"),
                any_value::Value::IntValue(self.span_count),
            ));
        }
        added
    }
}

/// Adds each log to its span as a span event (name: the log body; attributes: severity and
/// the log's own attributes). Logs whose span is not in the trace are left out.
pub fn attach_as_events(spans: &mut [SpanEntry], logs: &[LogEntry]) {
    let mut by_span: HashMap<&[u8], usize> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        by_span.insert(&s.span.span_id[..], i);
    }
    let mut events: Vec<(usize, span::Event)> = Vec::new();
    for log in logs {
        let Some(&i) = by_span.get(&log.record.span_id[..]) else {
            continue;
        };
        let r = &log.record;
        let name = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            Some(_) => "log".to_string(),
            None => "log".to_string(),
        };
        let mut attributes = Vec::with_capacity(r.attributes.len() + 2);
        if !r.severity_text.is_empty() {
            attributes.push(kv(
                "log.severity".into(),
                any_value::Value::StringValue(r.severity_text.clone()),
            ));
        }
        if r.severity_number != 0 {
            attributes.push(kv(
                "log.severity_number".into(),
                any_value::Value::IntValue(i64::from(r.severity_number)),
            ));
        }
        attributes.extend(r.attributes.iter().cloned());
        let time = if r.time_unix_nano != 0 {
            r.time_unix_nano
        } else {
            r.observed_time_unix_nano
        };
        events.push((
            i,
            span::Event {
                time_unix_nano: time,
                name,
                attributes,
                dropped_attributes_count: 0,
            },
        ));
    }
    for (i, event) in events {
        spans[i].span.events.push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            policy: Some("errors".into()),
            root_service: Some("checkout".into()),
            root_operation: Some("POST /pay".into()),
            duration_ms: 42,
            error: true,
            span_count: 3,
        }
    }

    fn record(keys: &[&str]) -> LogRecord {
        LogRecord {
            severity_number: 17,
            attributes: keys
                .iter()
                .map(|k| kv(k.to_string(), any_value::Value::IntValue(1)))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn appending_encoded_attributes_equals_enriching_the_decoded_record() {
        let cfg = EnrichmentConfig::default();
        for sampled in [true, false] {
            let s = if sampled {
                summary()
            } else {
                Summary::unsampled()
            };
            let extra = s.encoded_attributes(&cfg, sampled);
            let plain = record(&["user.id"]);
            let encoded = Summary::enrich_encoded(&cfg, &plain.encode_to_vec(), &extra)
                .expect("no attribute under the prefix yet");
            let mut expected = plain.clone();
            s.enrich(&cfg, &mut expected, sampled);
            assert_eq!(LogRecord::decode(&encoded[..]).unwrap(), expected);
        }
    }

    #[test]
    fn a_record_with_a_prefixed_attribute_takes_the_decoding_path() {
        let cfg = EnrichmentConfig::default();
        let extra = summary().encoded_attributes(&cfg, true);
        let stale = record(&["weft.policy"]).encode_to_vec();
        assert!(Summary::enrich_encoded(&cfg, &stale, &extra).is_none());
        let off = EnrichmentConfig {
            enabled: false,
            ..Default::default()
        };
        assert_eq!(
            Summary::enrich_encoded(&off, &stale, &[]).as_deref(),
            Some(&stale[..])
        );
        assert!(summary().encoded_attributes(&off, true).is_empty());
    }
}
