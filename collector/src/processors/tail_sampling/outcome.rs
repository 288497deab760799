//! Telling the window's [`VerdictBus`] about each decision (for `spanmetrics` exemplars and
//! the `samplingmetrics` connector). Nothing is read or computed when no one listens.
//!
//! The policies' view of a trace holds only what they declared they read; what listeners need
//! (the root span's service and name, the logs' severities) is decoded again from the held
//! items when the view lacks it — for every decided trace, dropped ones included, which is the
//! price of counting what sampling throws away.

use weft_proto::common::v1::any_value;

use super::policy::{Decision, Verdict};
use super::trace::{DecodeError, Reads, TraceData};
use super::window::DecideReason;
use crate::verdicts::{self, VerdictBus};

/// What a root needs: which span is the root, its name, its resource's `service.name`.
const ROOT_READS: Reads = Reads::SPAN_PARENT
    .union(Reads::SPAN_NAME)
    .union(Reads::RESOURCE);

/// What listeners hear about one trace, read before the window releases it.
pub(super) struct Outcome {
    /// `service.name` and name of the root span.
    root: Option<(String, String)>,
    spans: usize,
    logs_by_severity: Vec<(i32, u64)>,
}

impl Outcome {
    /// Reads the outcome from `view` (decoded with `reads`) or, when that lacks something,
    /// from the trace decoded again by `decode`. A held item that does not decode then costs
    /// only the detail: no root, and the logs counted as unspecified severity (0).
    pub(super) fn read(
        bus: &VerdictBus,
        view: &TraceData,
        reads: Reads,
        decode: impl FnOnce(Reads) -> Result<TraceData, DecodeError>,
    ) -> Self {
        let needs = if bus.wants_roots() {
            ROOT_READS | Reads::LOG_SEVERITY
        } else {
            Reads::LOG_SEVERITY
        };
        let decoded;
        let view = if reads.contains(needs) {
            view
        } else {
            match decode(needs) {
                Ok(again) => {
                    decoded = again;
                    &decoded
                }
                Err(_) => return Self::undecoded(view.spans.len(), view.logs.len()),
            }
        };
        let root = if needs.contains(ROOT_READS) {
            view.spans
                .iter()
                .find(|s| s.span.parent_span_id.is_empty())
                .map(|root| {
                    let service = root
                        .origin
                        .resource
                        .attributes
                        .iter()
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            any_value::Value::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    (service, root.span.name.clone())
                })
        } else {
            None
        };
        let mut logs_by_severity: Vec<(i32, u64)> = Vec::new();
        for log in &view.logs {
            let severity = log.record.severity_number;
            match logs_by_severity.iter_mut().find(|(s, _)| *s == severity) {
                Some((_, n)) => *n += 1,
                None => logs_by_severity.push((severity, 1)),
            }
        }
        Self {
            root,
            spans: view.spans.len(),
            logs_by_severity,
        }
    }

    /// What listeners hear of a trace dropped without a decision (a held item does not
    /// decode): its counts, no root, its logs as unspecified severity.
    pub(super) fn undecoded(spans: usize, logs: usize) -> Self {
        Self {
            root: None,
            spans,
            logs_by_severity: if logs == 0 {
                Vec::new()
            } else {
                vec![(0, logs as u64)]
            },
        }
    }

    /// Publishes the decision; `logs_kept` is how many of the trace's logs left with it.
    pub(super) fn publish(
        &self,
        bus: &VerdictBus,
        trace_id: &[u8; 16],
        verdict: &Verdict,
        reason: DecideReason,
        logs_kept: u64,
    ) {
        // The policy that decided: the one that kept the trace, or a `drop` policy that
        // dropped it.
        let policy = verdict.policy.as_deref().or_else(|| {
            verdict
                .per_policy
                .iter()
                .find(|(_, d)| *d == Decision::Dropped)
                .map(|(p, _)| &**p)
        });
        bus.publish(&verdicts::Verdict {
            trace_id,
            sampled: verdict.sampled,
            policy,
            reason: reason.as_str(),
            root: self.root.as_ref().map(|(s, o)| (s.as_str(), o.as_str())),
            spans: self.spans,
            logs_by_severity: &self.logs_by_severity,
            logs_kept,
        });
    }
}

#[cfg(test)]
mod tests {
    //! What a listener hears: every decision, with its policy, root and logs.

    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use parking_lot::Mutex;
    use weft_config::{ConfigPath, Diagnostics};
    use weft_proto::common::v1::{AnyValue, KeyValue};
    use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weft_proto::resource::v1::Resource;
    use weft_proto::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};

    use super::super::config::TailSamplingConfig;
    use super::super::policy::Policies;
    use super::super::window::Window;
    use crate::pipeline::{Logs, Traces};
    use crate::telemetry::Telemetry;
    use crate::verdicts::{Verdict, VerdictBus, VerdictListener};

    #[derive(Debug, PartialEq)]
    struct Heard {
        trace: u8,
        sampled: bool,
        policy: Option<String>,
        root: Option<(String, String)>,
        spans: usize,
        logs: Vec<(i32, u64)>,
        logs_kept: u64,
    }

    struct Ears(Mutex<Vec<Heard>>);

    impl VerdictListener for Ears {
        fn decided(&self, v: &Verdict<'_>) {
            let mut logs = v.logs_by_severity.to_vec();
            logs.sort();
            self.0.lock().push(Heard {
                trace: v.trace_id[15],
                sampled: v.sampled,
                policy: v.policy.map(str::to_string),
                root: v.root.map(|(s, o)| (s.to_string(), o.to_string())),
                spans: v.spans,
                logs,
                logs_kept: v.logs_kept,
            });
        }
    }

    fn tid(n: u8) -> Vec<u8> {
        let mut id = vec![0xab; 16];
        id[15] = n;
        id
    }

    fn span(t: u8, s: u8, root: bool, error: bool) -> Span {
        Span {
            trace_id: tid(t),
            span_id: vec![s; 8],
            parent_span_id: if root { vec![] } else { vec![1; 8] },
            name: format!("op-{s}"),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            status: error.then(|| Status {
                code: status::StatusCode::Error as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn service() -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(weft_proto::common::v1::any_value::Value::StringValue(
                        "shop".into(),
                    )),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    #[test]
    fn every_decision_is_heard_with_its_root_policy_and_logs() {
        let value: serde_yaml::Value = serde_yaml::from_str(
            "decision_wait: 10s\nkeep_logs_at_or_above: WARN\npolicies: [{name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]",
        )
        .unwrap();
        let mut diags = Diagnostics::new();
        let cfg = weft_config::decode_component::<TailSamplingConfig>(
            &value,
            &ConfigPath::root(),
            &mut diags,
        )
        .unwrap();
        let t = Telemetry::new();
        let bus = Arc::new(VerdictBus::default());
        let ears = Arc::new(Ears(Mutex::new(Vec::new())));
        bus.subscribe(ears.clone(), true);
        let window = Window::new(
            Arc::new(cfg.clone()),
            Policies::new(&cfg.policies).unwrap(),
            super::super::metrics::WindowMetrics::new(&t, "tail_sampling"),
        )
        .publishing_to(bus);
        let now = Instant::now();
        window.ingest_spans(
            Traces::from(
                weft_proto::collector::trace::v1::ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        resource: service(),
                        scope_spans: vec![ScopeSpans {
                            spans: vec![
                                span(1, 1, true, false),
                                span(1, 2, false, true),
                                span(2, 1, true, false),
                            ],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                },
            ),
            now,
        );
        let log = |t: u8, severity: i32| LogRecord {
            trace_id: tid(t),
            span_id: vec![1; 8],
            severity_number: severity,
            ..Default::default()
        };
        window.ingest_logs(
            Logs::from(weft_proto::collector::logs::v1::ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: service(),
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![log(1, 9), log(2, 9), log(2, 9), log(2, 13)],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }),
            now,
        );
        window.tick(now + Duration::from_secs(11));
        let mut heard = std::mem::take(&mut *ears.0.lock());
        heard.sort_by_key(|h| h.trace);
        let root = Some(("shop".to_string(), "op-1".to_string()));
        assert_eq!(
            heard,
            [
                Heard {
                    trace: 1,
                    sampled: true,
                    policy: Some("errors".into()),
                    root: root.clone(),
                    spans: 2,
                    logs: vec![(9, 1)],
                    logs_kept: 1,
                },
                Heard {
                    trace: 2,
                    sampled: false,
                    policy: None,
                    root,
                    spans: 1,
                    logs: vec![(9, 2), (13, 1)],
                    logs_kept: 1,
                },
            ]
        );
    }
}
