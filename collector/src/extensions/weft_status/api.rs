//! The JSON behind each view. Every answer is one JSON object; errors are
//! `{"error": "..."}` with a 4xx/5xx status. Sizes are bounded: the pipelines and window
//! answers grow with the configuration only, a decisions answer holds at most 1000 entries
//! (`limit`), a trace answer at most the trace's held items with every value cut at
//! `max_value_bytes`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use weft_config::SignalKind;

use super::{detail, DecisionsParams, Shared, WindowView};
use crate::component::ServiceGraph;
use crate::pipeline::{visit_signal, Signal, SignalVisitor};
use crate::processors::tail_sampling::decisions::{DecisionRecord, RingStats};
use crate::processors::tail_sampling::policy::Decision;
use crate::telemetry::Sample;

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The metric word for one item of `signal`: `spans`, `log_records`.
fn item_word(signal: SignalKind) -> &'static str {
    struct Word(&'static str);
    impl SignalVisitor for Word {
        fn visit<S: Signal>(&mut self) {
            self.0 = S::ITEM;
        }
    }
    let mut word = Word("items");
    visit_signal(signal, &mut word);
    word.0
}

/// Counter values now and about five seconds ago.
struct Counters<'a> {
    now: &'a [Sample],
    before: Option<(Duration, &'a [Sample])>,
}

impl Counters<'_> {
    /// The sum of every series of `name` whose labels include `filters`; `None` when no
    /// series matches.
    fn sum(samples: &[Sample], name: &str, filters: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for s in samples.iter().filter(|s| s.name == name) {
            if filters.iter().all(|(k, v)| s.label(k) == Some(v)) {
                *found.get_or_insert(0.0) += s.value;
            }
        }
        found
    }

    fn total(&self, name: &str, filters: &[(&str, &str)]) -> Option<f64> {
        Self::sum(self.now, name, filters)
    }

    /// `{"total", "per_second"}` of a counter (per second over the last seconds; null
    /// before there are two snapshots), or null when there is no such series.
    fn counter(&self, name: &str, filters: &[(&str, &str)]) -> Value {
        let Some(total) = self.total(name, filters) else {
            return Value::Null;
        };
        let rate = self.before.and_then(|(dt, before)| {
            let old = Self::sum(before, name, filters).unwrap_or(0.0);
            (dt.as_secs_f64() > 0.0).then(|| ((total - old) / dt.as_secs_f64()).max(0.0))
        });
        json!({ "total": total, "per_second": rate.map(round2) })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------------------------
// /api/pipelines

pub(crate) async fn pipelines(State(s): State<Arc<Shared>>) -> Response {
    let (now, older) = s.snapshots();
    let counters = Counters {
        now: &now,
        before: older.as_ref().map(|(dt, v)| (*dt, &v[..])),
    };
    let Some(graph) = s.shared.service_graph() else {
        return json_response(StatusCode::OK, &json!({ "pipelines": [] }));
    };
    json_response(StatusCode::OK, &pipelines_json(&graph, &counters))
}

fn pipelines_json(graph: &ServiceGraph, c: &Counters<'_>) -> Value {
    let pipelines: Vec<Value> = graph
        .pipelines
        .iter()
        .map(|p| {
            let signal = p.id.signal;
            let item = item_word(signal);
            let signal_word = signal.to_string();
            let is_connector = |id: &weft_config::ComponentId| graph.connectors.contains(id);
            let connector = |id: &weft_config::ComponentId, role: &str| {
                json!({
                    "id": id.to_string(), "type": id.type_name, "kind": "connector", "role": role,
                    "in": null, "out": null, "refused": null, "failed": null, "queue": null,
                })
            };
            let receivers: Vec<Value> = p
                .receivers
                .iter()
                .map(|id| {
                    if is_connector(id) {
                        return connector(id, "receiver");
                    }
                    let label = id.to_string();
                    let f = [("receiver", label.as_str())];
                    let accepted = c.counter(&format!("otelcol_receiver_accepted_{item}_total"), &f);
                    json!({
                        "id": label, "type": id.type_name, "kind": "receiver",
                        "in": accepted, "out": accepted,
                        "refused": c.counter(&format!("otelcol_receiver_refused_{item}_total"), &f),
                        "failed": null, "queue": null,
                    })
                })
                .collect();
            let processors: Vec<Value> = p
                .processors
                .iter()
                .map(|id| {
                    let label = id.to_string();
                    let f = [
                        ("processor", label.as_str()),
                        ("otel_signal", signal_word.as_str()),
                    ];
                    json!({
                        "id": label, "type": id.type_name, "kind": "processor",
                        "in": c.counter("otelcol_processor_incoming_items_total", &f),
                        "out": c.counter("otelcol_processor_outgoing_items_total", &f),
                        "refused": c.counter(
                            &format!("otelcol_processor_refused_{item}_total"),
                            &[("processor", label.as_str())],
                        ),
                        "failed": null, "queue": null,
                    })
                })
                .collect();
            let exporters: Vec<Value> = p
                .exporters
                .iter()
                .map(|id| {
                    if is_connector(id) {
                        return connector(id, "exporter");
                    }
                    let label = id.to_string();
                    let f = [("exporter", label.as_str())];
                    let q = [("exporter", label.as_str()), ("data_type", signal_word.as_str())];
                    let queue = match (
                        c.total("otelcol_exporter_queue_size", &q),
                        c.total("otelcol_exporter_queue_capacity", &q),
                    ) {
                        (Some(size), Some(capacity)) => json!({"size": size, "capacity": capacity}),
                        _ => Value::Null,
                    };
                    json!({
                        "id": label, "type": id.type_name, "kind": "exporter",
                        "in": null,
                        "out": c.counter(&format!("otelcol_exporter_sent_{item}_total"), &f),
                        "refused": c.counter(&format!("otelcol_exporter_enqueue_failed_{item}_total"), &f),
                        "failed": c.counter(&format!("otelcol_exporter_send_failed_{item}_total"), &f),
                        "queue": queue,
                    })
                })
                .collect();
            json!({
                "id": p.id.to_string(),
                "signal": signal_word,
                "item": item,
                "receivers": receivers,
                "processors": processors,
                "exporters": exporters,
            })
        })
        .collect();
    json!({
        "now": rfc3339(SystemTime::now()),
        "rate_seconds": c.before.map(|(dt, _)| round2(dt.as_secs_f64())),
        "pipelines": pipelines,
        "extensions": graph.extensions.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------------------
// /api/window

pub(crate) async fn window(State(s): State<Arc<Shared>>) -> Response {
    let (now, older) = s.snapshots();
    let counters = Counters {
        now: &now,
        before: older.as_ref().map(|(dt, v)| (*dt, &v[..])),
    };
    let windows: Vec<Value> = s
        .windows
        .iter()
        .map(|w| window_json(w, &counters))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "now": rfc3339(SystemTime::now()), "windows": windows }),
    )
}

fn ring_json(stats: RingStats) -> Value {
    json!({
        "records": stats.records,
        "capacity": stats.capacity,
        "detail_bytes": stats.detail_bytes,
        "detail_max_bytes": stats.detail_max_bytes,
        "recorded": stats.recorded,
    })
}

fn window_json(w: &WindowView, c: &Counters<'_>) -> Value {
    let window = w.core.window();
    let cfg = window.config();
    let p = [("processor", w.id.as_str())];
    let with = |k: &'static str, v: &'static str| [("processor", w.id.as_str()), (k, v)];
    let decided = |sampled: &'static str| {
        c.counter(
            "otelcol_processor_tail_sampling_global_count_traces_sampled_total",
            &with("sampled", sampled),
        )
    };
    let by_reason: serde_json::Map<String, Value> = [
        "decision_wait",
        "root_received",
        "num_traces",
        "max_bytes",
        "trace_size",
        "shutdown",
    ]
    .into_iter()
    .map(|r| {
        (
            r.to_string(),
            c.counter(
                "weft_processor_tail_sampling_decisions_total",
                &with("reason", r),
            ),
        )
    })
    .collect();
    let buckets: Vec<Value> = c
        .now
        .iter()
        .filter(|s| {
            s.name == "weft_processor_tail_sampling_decision_delay_seconds_bucket"
                && s.label("processor") == Some(w.id.as_str())
        })
        .map(|s| json!({ "le": s.label("le").unwrap_or("+Inf"), "count": s.value }))
        .collect();
    let (cached_kept, cached_dropped) = window.cached_decisions();
    let per_shard_total = |n: usize| n.div_ceil(64) * 64;
    let late = |name: &str, k: &'static str, v: &'static str| c.counter(name, &with(k, v));
    let logs: serde_json::Map<String, Value> = [
        "joined",
        "passed_without_trace",
        "dropped_without_trace",
        "kept",
        "dropped",
        "kept_by_severity",
        "late_kept",
        "late_dropped",
    ]
    .into_iter()
    .map(|o| {
        (
            o.to_string(),
            c.counter(
                "weft_processor_tail_sampling_log_records_total",
                &with("outcome", o),
            ),
        )
    })
    .collect();
    let durable = cfg.storage.as_ref().map(|storage| {
        json!({
            "storage": storage,
            "wal_bytes": c.total("weft_processor_tail_sampling_wal_bytes", &p),
            "wal_segments": c.total("weft_processor_tail_sampling_wal_segments", &p),
            "decisions_written": c.counter("weft_processor_tail_sampling_wal_decisions_written_total", &p),
            "write_errors": c.counter("weft_processor_tail_sampling_wal_write_errors_total", &p),
        })
    });
    json!({
        "id": w.id,
        "traces": window.trace_count(),
        "bytes": window.byte_count(),
        "oldest_age_seconds": window.oldest_arrival().map(|at| round2(Instant::now().saturating_duration_since(at).as_secs_f64())),
        "spans_waiting_for_late_logs": window.lingering_count(),
        "limits": {
            "num_traces": cfg.num_traces,
            "max_bytes": cfg.max_bytes.0,
            "decision_wait_seconds": cfg.decision_wait.get().as_secs_f64(),
        },
        "new_traces": c.counter("otelcol_processor_tail_sampling_new_trace_id_received_total", &p),
        "decisions": {
            "kept": decided("true"),
            "dropped": decided("false"),
            "by_reason": by_reason,
        },
        "decision_delay_seconds": {
            "buckets": buckets,
            "count": c.total("weft_processor_tail_sampling_decision_delay_seconds_count", &p),
            "sum": c.total("weft_processor_tail_sampling_decision_delay_seconds_sum", &p),
        },
        "decision_cache": {
            "kept": cached_kept,
            "dropped": cached_dropped,
            "kept_capacity": per_shard_total(cfg.decision_cache.sampled_cache_size),
            "dropped_capacity": per_shard_total(cfg.decision_cache.non_sampled_cache_size),
            "hits": {
                "spans_of_kept": late("weft_processor_tail_sampling_late_spans_total", "sampled", "true"),
                "spans_of_dropped": late("weft_processor_tail_sampling_late_spans_total", "sampled", "false"),
                "logs_of_kept": late("weft_processor_tail_sampling_log_records_total", "outcome", "late_kept"),
                "logs_of_dropped": late("weft_processor_tail_sampling_log_records_total", "outcome", "late_dropped"),
            },
        },
        "late_log_events": {
            "attached": late("weft_processor_tail_sampling_late_log_events_total", "attached", "true"),
            "not_attached": late("weft_processor_tail_sampling_late_log_events_total", "attached", "false"),
        },
        "log_records": logs,
        "policy_errors": c.counter("otelcol_processor_tail_sampling_sampling_policy_evaluation_error_total", &p),
        "undecodable": c.counter("otelcol_processor_tail_sampling_sampling_trace_dropped_undecodable_total", &p),
        "durable": durable,
        "ring": ring_json(w.ring.stats()),
    })
}

// ---------------------------------------------------------------------------------------------
// /api/decisions

/// How a record reads in lists (and at the top of a trace).
pub(crate) fn summary_json(window: &str, r: &DecisionRecord) -> Value {
    let summary = r.summary();
    json!({
        "trace_id": hex::encode(r.trace_id),
        "window": window,
        "decided_at": rfc3339(r.decided_at),
        "verdict": if r.sampled { "kept" } else { "dropped" },
        "decision": r.decision.decision_label(),
        "decided_by": r.decided_by(),
        "decided_because": r.when.as_str(),
        "waited_ms": r.waited.as_millis() as u64,
        "root_service": summary.root_service,
        "root_operation": summary.root_operation,
        "duration_ms": summary.duration_ms,
        "error": summary.error,
        "span_count": summary.span_count,
        "log_count": r.log_count,
        "bytes": r.bytes,
        "has_detail": r.has_detail(),
        "failure": r.failure,
    })
}

/// What a decisions list is filtered by.
pub(crate) struct Filter {
    kept: Option<bool>,
    policy: Option<String>,
    service: Option<String>,
    id_prefix: Option<String>,
    limit: usize,
}

pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 1000;

impl Filter {
    pub(crate) fn from_query(q: &super::DecisionsQuery) -> Result<Self, String> {
        let kept = match q.verdict.as_deref().map(str::trim) {
            None | Some("") | Some("all") => None,
            Some("kept") => Some(true),
            Some("dropped") => Some(false),
            Some(other) => {
                return Err(format!(
                    "verdict: expected kept, dropped or all, got {:?}",
                    clip(other)
                ))
            }
        };
        let id_prefix = match q.q.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let text = text.to_ascii_lowercase();
                if text.len() > 32 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!(
                        "q: a trace id (up to 32 hex digits) or its start, got {:?}",
                        clip(&text)
                    ));
                }
                Some(text)
            }
        };
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        Ok(Self {
            kept,
            policy: non_empty(&q.policy),
            service: non_empty(&q.service),
            id_prefix,
            limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        })
    }

    fn matches(&self, r: &DecisionRecord) -> bool {
        self.kept.is_none_or(|k| r.sampled == k)
            && self
                .policy
                .as_ref()
                .is_none_or(|p| r.decided_by() == Some(p.as_str()))
            && self
                .service
                .as_ref()
                .is_none_or(|s| r.summary().root_service.as_ref() == Some(s))
            && self
                .id_prefix
                .as_ref()
                .is_none_or(|prefix| hex::encode(r.trace_id).starts_with(prefix.as_str()))
    }
}

fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

pub(crate) async fn decisions(
    State(s): State<Arc<Shared>>,
    query: Result<DecisionsParams, axum::extract::rejection::QueryRejection>,
) -> Response {
    let filter = match query
        .map_err(|e| e.body_text())
        .and_then(|q| Filter::from_query(&q))
    {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    json_response(StatusCode::OK, &decisions_json(&s.windows, &filter))
}

pub(crate) fn decisions_json(windows: &[WindowView], filter: &Filter) -> Value {
    let mut all: Vec<(&str, Arc<DecisionRecord>)> = windows
        .iter()
        .flat_map(|w| {
            w.ring
                .newest_first()
                .into_iter()
                .map(move |r| (w.id.as_str(), r))
        })
        .collect();
    if windows.len() > 1 {
        all.sort_by_key(|(_, r)| std::cmp::Reverse(r.decided_at));
    }
    // The filter menus: what the ring holds, bounded.
    let mut policies = BTreeSet::new();
    let mut services = BTreeSet::new();
    for (_, r) in &all {
        if policies.len() < 200 {
            r.policy_names(|name| {
                if !policies.contains(name) {
                    policies.insert(name.to_string());
                }
            });
        }
        if services.len() < 200 {
            if let Some(s) = &r.summary().root_service {
                services.insert(s.clone());
            }
        }
    }
    let mut matching = 0usize;
    let mut shown = Vec::new();
    for (window, r) in &all {
        if !filter.matches(r) {
            continue;
        }
        matching += 1;
        if shown.len() < filter.limit {
            shown.push(summary_json(window, r));
        }
    }
    let rings: Vec<Value> = windows
        .iter()
        .map(|w| json!({ "window": w.id, "ring": ring_json(w.ring.stats()) }))
        .collect();
    json!({
        "rings": rings,
        "matching": matching,
        "limit": filter.limit,
        "policies": policies,
        "services": services,
        "decisions": shown,
    })
}

// ---------------------------------------------------------------------------------------------
// /api/traces/<id>

/// A trace id as typed: 32 hex digits, any case, surrounding spaces ignored.
pub(crate) fn parse_trace_id(text: &str) -> Result<[u8; 16], String> {
    let text = text.trim();
    let mut id = [0u8; 16];
    hex::decode_to_slice(text, &mut id)
        .map_err(|_| format!("{:?} is not a trace id: expected 32 hex digits", clip(text)))?;
    Ok(id)
}

pub(crate) fn trace(s: &Shared, text: &str) -> Response {
    let trace_id = match parse_trace_id(text) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let hex_id = hex::encode(trace_id);
    let found = s
        .windows
        .iter()
        .find_map(|w| w.ring.get(&trace_id).map(|r| (w, r)));
    let Some((w, record)) = found else {
        let held = s.windows.iter().find(|w| w.core.window().holds(&trace_id));
        let rings: Vec<String> = s
            .windows
            .iter()
            .map(|w| format!("the last {} decisions of {}", w.ring.stats().records, w.id))
            .collect();
        let message = match held {
            Some(w) => format!(
                "trace {hex_id} is not decided yet: {} holds it until its decision (decision_wait {} s)",
                w.id,
                w.core.window().config().decision_wait.get().as_secs_f64()
            ),
            None if s.windows.is_empty() => format!(
                "trace {hex_id}: no tail_sampling window runs, so there are no decisions to show"
            ),
            None => format!(
                "trace {hex_id} is not in {}: it was decided before those, or never reached this Weft",
                rings.join(" or ")
            ),
        };
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": message, "trace_id": hex_id, "pending": held.is_some() }),
        );
    };
    let policies: Vec<Value> = record
        .policies()
        .iter()
        .map(|p| {
            json!({
                "name": &*p.name,
                "type": p.type_name,
                "decision": p.decision.decision_label(),
                "inverted": matches!(p.decision, Decision::InvertSampled | Decision::InvertNotSampled),
                "for_the_trace": p.decision.sampled_label() == "true",
                "reason": p.reason,
            })
        })
        .collect();
    let errors: Vec<Value> = record
        .errors
        .iter()
        .map(|e| json!({ "policy": e.policy, "message": e.message, "failed": e.failed }))
        .collect();
    let links: Vec<Value> = s
        .links
        .iter()
        .map(|l| json!({ "text": l.text, "url": l.url.replace("{trace_id}", &hex_id) }))
        .collect();
    let rules = crate::redaction::registered(&s.shared);
    let detail = record
        .detail()
        .map(|d| detail::render(&d, &rules, s.max_value_bytes));
    let detail_note = match (&detail, record.sampled) {
        (Some(_), _) => None,
        (None, true) => Some(
            "its spans and logs left the status page's memory (decisions.detail_max_bytes): the summary stays; see the links",
        ),
        (None, false) => Some(
            "dropped traces keep only their summary: set decisions.keep_dropped_detail to keep their spans and logs too",
        ),
    };
    json_response(
        StatusCode::OK,
        &json!({
            "trace_id": hex_id,
            "decision": summary_json(&w.id, &record),
            "policies": policies,
            "errors": errors,
            "links": links,
            "detail": detail,
            "detail_note": detail_note,
        }),
    )
}
