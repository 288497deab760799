//! The window and the processor around it, on an injected clock: no test sleeps for timing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use prost::Message;
use weft_config::{ComponentId, ConfigPath, Diagnostics, Kind};
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};

use super::config::TailSamplingConfig;
use super::window::{to_logs, to_traces, Held, Output, Window};
use super::*;
use crate::component::BuildContext;
use crate::telemetry::Telemetry;

const WAIT: Duration = Duration::from_secs(10);

fn config(yaml: &str) -> TailSamplingConfig {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
    let mut diags = Diagnostics::new();
    let cfg = weft_config::decode_component::<TailSamplingConfig>(
        &value,
        &ConfigPath::root().key("processors").key("tail_sampling"),
        &mut diags,
    );
    assert!(!diags.has_errors(), "{diags}");
    cfg.expect("decoded")
}

const POLICIES: &str = "
decision_wait: 10s
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 1000}}
  - {name: error-logs, type: log_severity, log_severity: {min_severity: ERROR}}
";

fn ctx(t: &Telemetry) -> BuildContext {
    BuildContext {
        id: ComponentId::new("tail_sampling", None),
        kind: Kind::Processor,
        telemetry: t.clone(),
        health: Default::default(),
        shared: Default::default(),
    }
}

fn window(yaml: &str) -> (Window, Telemetry) {
    let t = Telemetry::new();
    let cfg = config(yaml);
    let policies = policy::Policies::new(&cfg.policies).expect("policies");
    let metrics = super::metrics::WindowMetrics::new(&t, "tail_sampling");
    (Window::new(Arc::new(cfg), policies, metrics), t)
}

fn tid(n: u8) -> Vec<u8> {
    let mut id = vec![0u8; 16];
    id[0] = 0xab;
    id[15] = n;
    id
}

fn sid(n: u8) -> Vec<u8> {
    vec![n; 8]
}

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// A span of trace `t`, span `s` (root when `parent` is 0), lasting `ms`, with `code`.
fn span(t: u8, s: u8, parent: u8, ms: u64, code: status::StatusCode) -> Span {
    Span {
        trace_id: tid(t),
        span_id: sid(s),
        parent_span_id: if parent == 0 { vec![] } else { sid(parent) },
        name: format!("op-{s}"),
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_000_000_000 + ms * 1_000_000,
        status: Some(Status {
            code: code as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> Traces {
    Traces::from(
        weft_proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "checkout")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )
}

fn log(t: Option<u8>, s: u8, severity: i32, body: &str) -> LogRecord {
    LogRecord {
        trace_id: t.map(tid).unwrap_or_default(),
        span_id: if t.is_some() { sid(s) } else { vec![] },
        severity_number: severity,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        ..Default::default()
    }
}

fn logs(records: Vec<LogRecord>) -> Logs {
    Logs::from(weft_proto::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "checkout")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

const OK: status::StatusCode = status::StatusCode::Ok;
const ERR: status::StatusCode = status::StatusCode::Error;
const INFO: i32 = 9;
const ERROR: i32 = 17;

fn span_ids(out: &Output) -> Vec<(u8, u8)> {
    let mut ids: Vec<(u8, u8)> = out
        .spans
        .iter()
        .map(|s| (s.span().trace_id[15], s.span().span_id[0]))
        .collect();
    ids.sort_unstable();
    ids
}

fn bodies(out: &Output) -> Vec<String> {
    let mut b: Vec<String> = out
        .logs
        .iter()
        .map(
            |l| match l.record().body.as_ref().and_then(|b| b.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                _ => String::new(),
            },
        )
        .collect();
    b.sort();
    b
}

fn attr<'a>(record: &'a LogRecord, key: &str) -> Option<&'a any_value::Value> {
    record
        .attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// `(count, sum)` of the decision-lateness histogram, from the text exposition.
fn lateness(t: &Telemetry) -> (u64, f64) {
    let text = t.encode();
    let value = |suffix: &str| {
        let name = format!("weft_processor_tail_sampling_decision_lateness_seconds_{suffix}{{");
        text.lines()
            .find(|l| l.starts_with(&name))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0.0, |v| v.parse::<f64>().expect("a number"))
    };
    (value("count") as u64, value("sum"))
}

#[test]
fn decisions_count_how_late_they_were_against_their_deadline() {
    let (w, t) = window(POLICIES);
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(1, 1, 0, 50, OK)]), t0);
    w.ingest_spans(
        traces(vec![span(2, 2, 0, 50, OK)]),
        t0 + Duration::from_secs(1),
    );
    // Trace 1 has waited 300 ms past its deadline; trace 2 is not due.
    w.tick(t0 + WAIT + Duration::from_millis(300));
    let (count, sum) = lateness(&t);
    assert_eq!(count, 1);
    assert!(sum >= 0.3, "{sum}");
    // Trace 2, exactly at its deadline: late only by the time the tick took.
    w.tick(t0 + Duration::from_secs(1) + WAIT);
    let (count, later) = lateness(&t);
    assert_eq!(count, 2);
    assert!(later >= sum, "{later}");
    // A trace decided before its deadline (shutdown) is not counted.
    w.ingest_spans(traces(vec![span(3, 3, 0, 50, OK)]), t0 + WAIT);
    w.flush_all(t0 + WAIT, false);
    assert_eq!(lateness(&t).0, 2);
}

#[test]
fn an_error_trace_is_kept_whole_with_its_logs_enriched_and_an_ok_trace_is_dropped() {
    let (w, t) = window(POLICIES);
    let t0 = Instant::now();
    let out = w.ingest_spans(
        traces(vec![
            span(1, 1, 0, 50, OK),
            span(1, 2, 1, 10, ERR),
            span(2, 3, 0, 20, OK),
        ]),
        t0,
    );
    assert!(out.is_empty(), "nothing leaves before the decision");
    let out = w.ingest_logs(
        logs(vec![
            log(Some(1), 2, INFO, "db failed soon"),
            log(Some(2), 3, INFO, "fine"),
        ]),
        t0,
    );
    assert!(out.is_empty());
    assert_eq!(w.trace_count(), 2);

    assert!(
        w.tick(t0 + WAIT - Duration::from_millis(1)).is_empty(),
        "not due yet"
    );
    let out = w.tick(t0 + WAIT);
    assert_eq!(span_ids(&out), [(1, 1), (1, 2)]);
    assert_eq!(bodies(&out), ["db failed soon"]);
    let record = &out.logs[0].record();
    assert_eq!(
        attr(record, "weft.sampled"),
        Some(&any_value::Value::BoolValue(true))
    );
    assert_eq!(
        attr(record, "weft.policy"),
        Some(&any_value::Value::StringValue("errors".into()))
    );
    assert_eq!(
        attr(record, "weft.root_service"),
        Some(&any_value::Value::StringValue("checkout".into()))
    );
    assert_eq!(
        attr(record, "weft.root_operation"),
        Some(&any_value::Value::StringValue("op-1".into()))
    );
    assert_eq!(
        attr(record, "weft.trace_duration_ms"),
        Some(&any_value::Value::IntValue(50))
    );
    assert_eq!(
        attr(record, "weft.trace_error"),
        Some(&any_value::Value::BoolValue(true))
    );
    assert_eq!(
        attr(record, "weft.span_count"),
        Some(&any_value::Value::IntValue(2))
    );
    assert_eq!(w.trace_count(), 0);
    assert_eq!(w.byte_count(), 0, "every byte accounted for is released");
    let exposition = t.encode();
    assert!(exposition.contains("otelcol_processor_tail_sampling_count_traces_sampled_total{processor=\"tail_sampling\",policy=\"errors\",sampled=\"true\"} 1"), "{exposition}");
}

#[test]
fn a_slow_trace_is_kept_by_latency() {
    let (w, _) = window(POLICIES);
    let t0 = Instant::now();
    w.ingest_spans(
        traces(vec![span(3, 1, 0, 1500, OK), span(3, 2, 1, 5, OK)]),
        t0,
    );
    let out = w.tick(t0 + WAIT);
    assert_eq!(span_ids(&out), [(3, 1), (3, 2)]);
    assert_eq!(out.decided, [(tid(3).try_into().unwrap(), true)]);
}

#[test]
fn an_error_log_keeps_a_trace_whose_spans_are_all_ok() {
    let (w, _) = window(POLICIES);
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(4, 1, 0, 20, OK)]), t0);
    w.ingest_logs(
        logs(vec![
            log(Some(4), 1, ERROR, "payment declined"),
            log(Some(4), 1, INFO, "retrying"),
        ]),
        t0,
    );
    let out = w.tick(t0 + WAIT);
    assert_eq!(span_ids(&out), [(4, 1)]);
    assert_eq!(bodies(&out), ["payment declined", "retrying"]);
    assert_eq!(
        attr(&out.logs[0].record(), "weft.policy"),
        Some(&any_value::Value::StringValue("error-logs".into()))
    );
}

#[test]
fn logs_before_the_first_span_open_the_trace_and_its_wait_starts_then() {
    let (w, _) = window(POLICIES);
    let t0 = Instant::now();
    w.ingest_logs(logs(vec![log(Some(5), 1, INFO, "early")]), t0);
    w.ingest_spans(
        traces(vec![span(5, 1, 0, 10, ERR)]),
        t0 + Duration::from_secs(3),
    );
    assert!(w.tick(t0 + WAIT - Duration::from_millis(1)).is_empty());
    let out = w.tick(t0 + WAIT);
    assert_eq!(span_ids(&out), [(5, 1)]);
    assert_eq!(bodies(&out), ["early"]);
}

#[test]
fn logs_without_a_trace_pass_at_once_or_are_dropped() {
    let (w, t) = window(POLICIES);
    let out = w.ingest_logs(logs(vec![log(None, 0, INFO, "cron tick")]), Instant::now());
    assert_eq!(bodies(&out), ["cron tick"]);
    assert!(
        attr(&out.logs[0].record(), "weft.sampled").is_none(),
        "pass-through logs are untouched"
    );
    assert_eq!(w.trace_count(), 0);
    assert_eq!(
        t.counter_value(
            "weft_processor_tail_sampling_log_records",
            &[
                ("processor", "tail_sampling"),
                ("outcome", "passed_without_trace")
            ]
        ),
        1
    );

    let (w, _) = window(&format!("{POLICIES}\nlogs_without_trace: drop"));
    assert!(w
        .ingest_logs(logs(vec![log(None, 0, INFO, "cron tick")]), Instant::now())
        .is_empty());
}

#[test]
fn late_spans_and_logs_follow_the_cached_decision() {
    let (w, _) = window(&format!("{POLICIES}\nkeep_logs_at_or_above: WARN"));
    let t0 = Instant::now();
    w.ingest_spans(
        traces(vec![span(6, 1, 0, 10, ERR), span(7, 2, 0, 10, OK)]),
        t0,
    );
    w.tick(t0 + WAIT);
    let later = t0 + WAIT + Duration::from_secs(5);

    // Kept trace: a late span and a late log go straight on, the log enriched.
    let out = w.ingest_spans(traces(vec![span(6, 9, 1, 1, OK)]), later);
    assert_eq!(span_ids(&out), [(6, 9)]);
    let out = w.ingest_logs(logs(vec![log(Some(6), 9, INFO, "late for kept")]), later);
    assert_eq!(bodies(&out), ["late for kept"]);
    assert_eq!(
        attr(&out.logs[0].record(), "weft.policy"),
        Some(&any_value::Value::StringValue("errors".into()))
    );

    // Dropped trace: late items are dropped, except logs at or above keep_logs_at_or_above.
    assert!(w
        .ingest_spans(traces(vec![span(7, 9, 2, 1, OK)]), later)
        .is_empty());
    let out = w.ingest_logs(
        logs(vec![
            log(Some(7), 2, INFO, "late info"),
            log(Some(7), 2, 13, "late warning"),
        ]),
        later,
    );
    assert_eq!(bodies(&out), ["late warning"]);
    assert_eq!(
        attr(&out.logs[0].record(), "weft.sampled"),
        Some(&any_value::Value::BoolValue(false))
    );
    assert_eq!(w.trace_count(), 0, "no late item opened a new entry");
}

#[test]
fn without_a_cache_a_late_span_opens_a_new_entry() {
    let (w, _) = window(&format!(
        "{POLICIES}\ndecision_cache: {{sampled_cache_size: 0, non_sampled_cache_size: 0}}"
    ));
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(8, 1, 0, 10, ERR)]), t0);
    assert_eq!(span_ids(&w.tick(t0 + WAIT)), [(8, 1)]);
    let out = w.ingest_spans(traces(vec![span(8, 2, 1, 10, OK)]), t0 + WAIT);
    assert!(out.is_empty());
    assert_eq!(
        w.trace_count(),
        1,
        "the late span waits for a decision of its own"
    );
    assert!(
        w.tick(t0 + WAIT * 2).is_empty(),
        "alone, it is an OK trace and is dropped"
    );
}

#[test]
fn a_dropped_trace_keeps_only_logs_at_or_above_the_configured_severity() {
    let (w, _) = window(&format!("{POLICIES}\nkeep_logs_at_or_above: 13"));
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(9, 1, 0, 10, OK)]), t0);
    w.ingest_logs(
        logs(vec![
            log(Some(9), 1, INFO, "info"),
            log(Some(9), 1, 14, "warn2"),
        ]),
        t0,
    );
    let out = w.tick(t0 + WAIT);
    assert!(out.spans.is_empty());
    assert_eq!(bodies(&out), ["warn2"]);
}

/// The trace decided early lives in the shard the ingest locked last (trace ids ending in
/// the same byte share a shard): deciding it must not wait on a lock the ingest still holds.
/// Run on a thread with a deadline so a regression fails instead of hanging the test run.
#[test]
fn an_early_decision_in_the_shard_just_ingested_does_not_deadlock() {
    let (w, _) = window(&format!("{POLICIES}\nnum_traces: 1"));
    let w = Arc::new(w);
    let t0 = Instant::now();
    let (done, finished) = std::sync::mpsc::channel();
    let worker = w.clone();
    std::thread::spawn(move || {
        worker.ingest_spans(traces(vec![span(63, 1, 0, 10, ERR)]), t0);
        let mut second = span(63, 2, 0, 10, OK);
        second.trace_id[0] = 0xcd; // another trace, same shard
        let out = worker.ingest_spans(traces(vec![second]), t0 + Duration::from_secs(1));
        let _ = done.send(span_ids(&out));
    });
    let out = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("ingest deadlocked deciding a trace in the shard it had locked");
    assert_eq!(
        out,
        [(63, 1)],
        "the older trace was decided (and kept) early"
    );
    assert_eq!(w.trace_count(), 1);
}

#[test]
fn overflow_by_count_decides_the_oldest_early() {
    let (w, t) = window(&format!("{POLICIES}\nnum_traces: 2"));
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(10, 1, 0, 10, ERR)]), t0);
    w.ingest_spans(
        traces(vec![span(11, 2, 0, 10, OK)]),
        t0 + Duration::from_secs(1),
    );
    let out = w.ingest_spans(
        traces(vec![span(12, 3, 0, 10, ERR)]),
        t0 + Duration::from_secs(2),
    );
    assert_eq!(
        span_ids(&out),
        [(10, 1)],
        "the oldest trace was decided (and kept) early"
    );
    assert_eq!(w.trace_count(), 2);
    assert_eq!(
        t.counter_value(
            "weft_processor_tail_sampling_decisions",
            &[
                ("processor", "tail_sampling"),
                ("sampled", "true"),
                ("reason", "num_traces")
            ]
        ),
        1
    );
    // The rest are decided on time, and the early one is not decided twice.
    let out = w.tick(t0 + Duration::from_secs(2) + WAIT);
    assert_eq!(span_ids(&out), [(12, 3)]);
    assert_eq!(out.decided.len(), 2);
}

#[test]
fn overflow_by_bytes_decides_the_oldest_early() {
    let (w, t) = window(&format!("{POLICIES}\nmax_bytes: 1MiB"));
    let t0 = Instant::now();
    let mut big = span(13, 1, 0, 10, ERR);
    big.attributes = vec![kv("blob", &"x".repeat(700 * 1024))];
    w.ingest_spans(traces(vec![big.clone()]), t0);
    big.trace_id = tid(14);
    let out = w.ingest_spans(traces(vec![big]), t0 + Duration::from_secs(1));
    assert_eq!(span_ids(&out), [(13, 1)]);
    assert!(w.byte_count() < 1024 * 1024);
    assert_eq!(
        t.counter_value(
            "weft_processor_tail_sampling_decisions",
            &[
                ("processor", "tail_sampling"),
                ("sampled", "true"),
                ("reason", "max_bytes")
            ]
        ),
        1
    );
}

#[test]
fn a_huge_trace_is_decided_at_once_instead_of_starving_the_rest() {
    let (w, _) = window(&format!("{POLICIES}\nmaximum_trace_size_bytes: 4096"));
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(16, 1, 0, 10, OK)]), t0);
    let many: Vec<Span> = (2..100).map(|s| span(15, s, 1, 1, ERR)).collect();
    let out = w.ingest_spans(traces(many), t0);
    assert!(
        !out.spans.is_empty(),
        "decided as soon as it passed 4096 bytes"
    );
    assert!(out.spans.iter().all(|s| s.span().trace_id == tid(15)));
    assert_eq!(w.trace_count(), 1, "the small trace still waits");
}

#[test]
fn root_received_shortens_the_wait() {
    let (w, _) = window(&format!(
        "{POLICIES}\ndecision_wait_after_root_received: 2s"
    ));
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(17, 2, 1, 10, ERR)]), t0);
    w.ingest_spans(
        traces(vec![span(17, 1, 0, 10, OK)]),
        t0 + Duration::from_secs(1),
    );
    assert!(w.tick(t0 + Duration::from_millis(2999)).is_empty());
    assert_eq!(
        span_ids(&w.tick(t0 + Duration::from_secs(3))),
        [(17, 1), (17, 2)]
    );
    assert!(w.tick(t0 + WAIT).is_empty(), "not decided twice");
}

#[test]
fn a_late_log_is_attached_while_the_kept_spans_wait_and_one_later_still_is_not() {
    let (w, t) = window(&format!(
        "{POLICIES}\nattach_logs_as_span_events: true\nattach_logs_wait: 2s"
    ));
    let t0 = Instant::now();
    w.ingest_spans(
        traces(vec![span(19, 1, 0, 10, ERR), span(19, 2, 1, 5, OK)]),
        t0,
    );
    w.ingest_logs(logs(vec![log(Some(19), 1, ERROR, "early")]), t0);
    let decided = w.tick(t0 + WAIT);
    assert!(decided.spans.is_empty(), "the spans wait for late logs");
    assert_eq!(
        bodies(&decided),
        ["early"],
        "the logs leave at the decision"
    );
    assert!(
        decided.decided.is_empty(),
        "the decision is recorded when the spans leave"
    );
    assert_eq!(w.lingering_count(), 1);

    // Arrives after the decision, while the spans wait: attached to span 2, and exported.
    let late = w.ingest_logs(
        logs(vec![log(Some(19), 2, INFO, "late")]),
        t0 + WAIT + Duration::from_secs(1),
    );
    assert_eq!(bodies(&late), ["late"]);
    assert!(w.tick(t0 + WAIT + Duration::from_secs(1)).spans.is_empty());

    let out = w.tick(t0 + WAIT + Duration::from_secs(2));
    assert_eq!(out.decided, [(tid(19).try_into().unwrap(), true)]);
    let events = |s: u8| -> Vec<String> {
        out.spans
            .iter()
            .map(Held::span)
            .find(|x| x.span_id == sid(s))
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(events(1), ["early"]);
    assert_eq!(events(2), ["late"]);
    assert_eq!(w.lingering_count(), 0);

    // Later still: the spans have left; the log is exported, not attached.
    let later = w.ingest_logs(
        logs(vec![log(Some(19), 2, INFO, "later")]),
        t0 + WAIT + Duration::from_secs(3),
    );
    assert_eq!(bodies(&later), ["later"]);
    let count = |attached| {
        t.counter_value(
            "weft_processor_tail_sampling_late_log_events",
            &[("processor", "tail_sampling"), ("attached", attached)],
        )
    };
    assert_eq!((count("true"), count("false")), (1, 1));
}

#[test]
fn waiting_spans_leave_at_shutdown() {
    let (w, _) = window(&format!("{POLICIES}\nattach_logs_as_span_events: true"));
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(20, 1, 0, 10, ERR)]), t0);
    assert!(w.tick(t0 + WAIT).spans.is_empty());
    let out = w.release_lingering(t0 + WAIT, true);
    assert_eq!(span_ids(&out), [(20, 1)]);
    assert_eq!(out.decided.len(), 1);
}

#[test]
fn the_decisions_ring_records_kept_and_dropped_traces_with_why() {
    use super::decisions::RingSettings;
    let (w, _) = window(POLICIES);
    let ring = w.enable_ring(RingSettings {
        size: 10,
        keep_dropped_detail: false,
        detail_max_bytes: 1 << 20,
    });
    let t0 = Instant::now();
    w.ingest_spans(
        traces(vec![
            span(21, 1, 0, 50, OK),
            span(21, 2, 1, 10, ERR),
            span(22, 3, 0, 20, OK),
        ]),
        t0,
    );
    w.ingest_logs(logs(vec![log(Some(21), 2, ERROR, "card declined")]), t0);
    w.tick(t0 + WAIT);
    let kept = ring
        .get(&tid(21).try_into().unwrap())
        .expect("kept trace recorded");
    assert!(kept.sampled);
    assert_eq!(kept.decided_by(), Some("errors"));
    assert_eq!(kept.summary().root_operation.as_deref(), Some("op-1"));
    assert_eq!((kept.summary().span_count, kept.log_count), (2, 1));
    let why: Vec<(String, &str, String)> = kept
        .policies()
        .iter()
        .map(|p| (p.name.to_string(), p.type_name, p.reason.clone()))
        .collect();
    assert_eq!(
        why[0],
        (
            "errors".to_string(),
            "status_code",
            "span #2 \"op-2\" has status ERROR".to_string()
        )
    );
    assert_eq!(why[1].2, "lasted 50 ms < 1 s");
    // The policies read severities only: the reason says no more than was decoded.
    assert_eq!(why[2].2, "log #1 at ERROR ≥ ERROR");
    let detail = kept.detail().expect("kept traces keep their detail");
    assert_eq!((detail.spans.len(), detail.logs.len()), (2, 1));

    let dropped = ring
        .get(&tid(22).try_into().unwrap())
        .expect("dropped trace recorded");
    assert!(!dropped.sampled);
    assert_eq!(dropped.decided_by(), None);
    // A dropped trace's summary is decoded when asked, from the spans the ring moved in.
    assert_eq!(dropped.summary().root_service.as_deref(), Some("checkout"));
    assert_eq!(dropped.summary().duration_ms, 20);
    assert!(dropped.detail().is_none(), "keep_dropped_detail is off");
    assert_eq!(
        dropped.policies()[0].reason,
        "none of 1 span(s) has status ERROR"
    );

    // A late log of the kept trace joins its detail.
    w.ingest_logs(
        logs(vec![log(Some(21), 1, INFO, "refund queued")]),
        t0 + WAIT + Duration::from_secs(1),
    );
    let detail = ring
        .get(&tid(21).try_into().unwrap())
        .unwrap()
        .detail()
        .unwrap();
    assert_eq!((detail.logs.len(), detail.late_logs), (2, 1));
    let newest: Vec<u8> = ring.newest_first().iter().map(|r| r.trace_id[15]).collect();
    assert_eq!(newest.len(), 2);
}

#[test]
fn dropped_records_read_the_same_whether_kept_inline_or_whole() {
    use super::decisions::RingSettings;
    use super::policy::Decision;
    // Most dropped traces' records are kept inline in the ring (short names, few policies
    // whose reasons can be written from the summary); a long root name, or a long service
    // name, keeps the record whole. The page reads both alike.
    let policies = "
decision_wait: 10s
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 1000}}
";
    let (w, _) = window(policies);
    let ring = w.enable_ring(RingSettings {
        size: 10,
        keep_dropped_detail: false,
        detail_max_bytes: 1 << 20,
    });
    let long = "x".repeat(300);
    let with_name = |t: u8, name: &str| {
        let mut root = span(t, 1, 0, 40, OK);
        root.name = name.to_string();
        root
    };
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![with_name(40, "GET /orders")]), t0);
    w.ingest_spans(traces(vec![with_name(41, &long)]), t0);
    w.tick(t0 + Duration::from_secs(10));
    let read = |t: u8| {
        let r = ring.get(&tid(t).try_into().unwrap()).expect("recorded");
        let s = r.summary();
        let policies: Vec<(String, &str, Decision)> = r
            .policies()
            .iter()
            .map(|p| (p.name.to_string(), p.type_name, p.decision))
            .collect();
        (
            r.sampled,
            r.decided_by().map(str::to_string),
            s.root_service.clone(),
            s.root_operation.clone(),
            (s.duration_ms, s.span_count, s.error),
            policies,
            r.policies()
                .iter()
                .map(|p| p.reason.clone())
                .collect::<Vec<_>>(),
        )
    };
    let inline = |t: u8| ring.keeps_inline(&tid(t).try_into().unwrap());
    assert_eq!(
        (inline(40), inline(41)),
        (Some(true), Some(false)),
        "short names inline, a long one whole"
    );
    let short = read(40);
    let whole = read(41);
    assert_eq!(short.3.as_deref(), Some("GET /orders"));
    assert_eq!(whole.3.as_deref(), Some(long.as_str()));
    for r in [&short, &whole] {
        assert!(!r.0);
        assert_eq!(r.1, None);
        assert_eq!(r.2.as_deref(), Some("checkout"));
        assert_eq!(r.4, (40, 1, false));
        assert_eq!(
            r.5,
            [
                ("errors".to_string(), "status_code", Decision::NotSampled),
                ("slow".to_string(), "latency", Decision::NotSampled),
            ]
        );
        assert_eq!(
            r.6,
            ["none of 1 span(s) has status ERROR", "lasted 40 ms < 1 s"]
        );
    }
}

#[test]
fn a_dropped_trace_keeps_its_summary_and_decisions_past_the_byte_bound() {
    use super::decisions::RingSettings;
    // With keep_dropped_detail and room for one dropped trace's spans, each push gives the
    // older ones up; with no room (0 bytes), or without keep_dropped_detail, none are held.
    // Either way the summary (read off the bytes at the decision), each policy's decision,
    // and — for policies that did not ask for the trace — the reason, written from the
    // summary in the words the policy uses, stay.
    for (detail_max_bytes, keep_dropped_detail) in [(0, true), (1 << 20, false), (200, true)] {
        let (w, _) = window(POLICIES);
        let ring = w.enable_ring(RingSettings {
            size: 10,
            keep_dropped_detail,
            detail_max_bytes,
        });
        let t0 = Instant::now();
        for t in 30..34 {
            w.ingest_spans(
                traces(vec![span(t, 1, 0, u64::from(t), OK), span(t, 2, 1, 5, OK)]),
                t0,
            );
        }
        w.tick(t0 + WAIT);
        // With 200 B the newest trace's spans (~130 B) stay; the older ones were given up.
        let held = ring.stats().detail_bytes;
        assert!(held <= detail_max_bytes);
        assert_eq!(held > 0, detail_max_bytes == 200, "{detail_max_bytes} B");
        let mut explained_count = 0;
        for t in 30..34 {
            let record = ring.get(&tid(t).try_into().unwrap()).unwrap();
            assert!(!record.sampled);
            let summary = record.summary();
            assert_eq!(
                (
                    summary.root_operation.as_deref(),
                    summary.duration_ms,
                    summary.span_count
                ),
                (Some("op-1"), i64::from(t), 2),
                "trace {t} with {detail_max_bytes} B of detail"
            );
            let decisions: Vec<super::policy::Decision> =
                record.policies().iter().map(|p| p.decision).collect();
            assert_eq!(decisions[..2], [super::policy::Decision::NotSampled; 2]);
            let why: Vec<&str> = record
                .policies()
                .iter()
                .map(|p| p.reason.as_str())
                .collect();
            let explained = [
                "none of 2 span(s) has status ERROR",
                &format!("lasted {t} ms < 1 s"),
            ];
            if why[..2] == explained {
                explained_count += 1;
            }
        }
        // With room for one trace's spans, only the trace still held shows them; every trace
        // is explained: from its spans, or from its summary.
        let shown = (30..34)
            .filter(|t| ring.get(&tid(*t).try_into().unwrap()).unwrap().has_detail())
            .count();
        assert_eq!(shown, usize::from(detail_max_bytes == 200));
        assert_eq!(explained_count, 4, "{detail_max_bytes} B of detail");
    }
}

#[test]
fn a_summary_read_off_the_bytes_is_the_decoded_one() {
    use super::trace::{Origin, Reads, TraceData};
    let origin = |service: &str| {
        Arc::new(Origin {
            resource: Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            },
            ..Default::default()
        })
    };
    let held = |o: &Arc<Origin>, s: &Span| Held {
        origin: o.clone(),
        encoded: s.encode_to_vec().into(),
    };
    let (front, back) = (origin("frontend"), origin("payments"));
    let cases: Vec<Vec<Held>> = vec![
        // The root is not first; a child failed; the child outlasts the root.
        vec![
            held(&back, &span(40, 2, 1, 900, ERR)),
            held(&front, &span(40, 1, 0, 120, OK)),
        ],
        // No root (its span never came), no status, a span without times.
        vec![
            held(&back, &span(41, 3, 1, 30, OK)),
            held(
                &back,
                &Span {
                    status: None,
                    ..span(41, 4, 3, 0, OK)
                },
            ),
            held(
                &front,
                &Span {
                    start_time_unix_nano: 0,
                    end_time_unix_nano: 0,
                    ..span(41, 5, 3, 0, OK)
                },
            ),
        ],
        // Two roots: the first counts, as in the decoded summary.
        vec![
            held(&front, &span(42, 6, 0, 10, OK)),
            held(&back, &span(42, 7, 0, 20, OK)),
        ],
        vec![],
    ];
    for (i, spans) in cases.iter().enumerate() {
        let view = TraceData::decode(
            [0; 16],
            spans.iter().map(|h| (&h.origin, &h.encoded[..])),
            std::iter::empty(),
            Reads::ALL,
        )
        .unwrap();
        let decoded = super::enrich::Summary::of_trace(&view, Some("p".into()));
        let scanned = window::scan_summary(spans, Some("p".into()));
        assert_eq!(scanned, decoded, "case {i}");
    }
}

#[test]
fn the_ring_keeps_dropped_detail_when_asked() {
    use super::decisions::RingSettings;
    let (w, t) = window(POLICIES);
    let ring = w.enable_ring(RingSettings {
        size: 10,
        keep_dropped_detail: true,
        detail_max_bytes: 1 << 20,
    });
    let t0 = Instant::now();
    w.ingest_spans(traces(vec![span(23, 1, 0, 20, OK)]), t0);
    w.ingest_logs(logs(vec![log(Some(23), 1, INFO, "cart shown")]), t0);
    let out = w.tick(t0 + WAIT);
    assert_eq!(out.decided, [(tid(23).try_into().unwrap(), false)]);
    let record = ring.get(&tid(23).try_into().unwrap()).unwrap();
    let detail = record.detail().unwrap();
    assert_eq!((detail.spans.len(), detail.logs.len()), (1, 1));
    // The ring's copy does not hide the log from the window's own count of dropped logs.
    let dropped_logs: f64 = t
        .samples()
        .iter()
        .filter(|s| {
            s.name == "weft_processor_tail_sampling_log_records_total"
                && s.label("outcome") == Some("dropped")
        })
        .map(|s| s.value)
        .sum();
    assert_eq!(dropped_logs, 1.0);
}

#[test]
fn logs_become_events_on_their_span() {
    // Without the wait for late logs: the spans leave with the decision.
    let (w, _) = window(&format!(
        "{POLICIES}\nattach_logs_as_span_events: true\nattach_logs_wait: 0s"
    ));
    let t0 = Instant::now();
    w.ingest_spans(
        traces(vec![span(18, 1, 0, 10, ERR), span(18, 2, 1, 5, OK)]),
        t0,
    );
    let mut record = log(Some(18), 2, ERROR, "card declined");
    record.severity_text = "ERROR".into();
    record.time_unix_nano = 1_000_000_123;
    record.attributes = vec![kv("biz_order_id", "o-1")];
    w.ingest_logs(
        logs(vec![record, log(Some(18), 99, INFO, "span not in trace")]),
        t0,
    );
    let out = w.tick(t0 + WAIT);
    let child = out
        .spans
        .iter()
        .find(|s| s.span().span_id == sid(2))
        .unwrap();
    assert_eq!(child.span().events.len(), 1);
    let child_span = child.span();
    let event = &child_span.events[0];
    assert_eq!(event.name, "card declined");
    assert_eq!(event.time_unix_nano, 1_000_000_123);
    assert!(event.attributes.iter().any(|a| a.key == "log.severity"));
    assert!(event.attributes.iter().any(|a| a.key == "biz_order_id"));
    let root = out
        .spans
        .iter()
        .find(|s| s.span().span_id == sid(1))
        .unwrap();
    assert!(root.span().events.is_empty());
    assert_eq!(out.logs.len(), 2, "the logs themselves are still exported");
}

#[test]
fn flush_all_decides_or_drops_what_is_pending() {
    let (w, _) = window(POLICIES);
    let t0 = Instant::now();
    w.ingest_spans(
        traces(vec![span(19, 1, 0, 10, ERR), span(20, 2, 0, 10, OK)]),
        t0,
    );
    let out = w.flush_all(t0, false);
    assert_eq!(span_ids(&out), [(19, 1)]);
    assert_eq!(out.decided.len(), 2);

    let (w, t) = window(POLICIES);
    w.ingest_spans(traces(vec![span(19, 1, 0, 10, ERR)]), t0);
    assert!(w.flush_all(t0, true).is_empty());
    assert_eq!(w.trace_count(), 0);
    assert_eq!(
        t.counter_value(
            "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
            &[("processor", "tail_sampling")]
        ),
        1
    );
}

#[test]
fn released_items_regroup_by_resource_and_scope() {
    let (w, _) = window(POLICIES);
    let t0 = Instant::now();
    let mut two = traces(vec![span(21, 1, 0, 10, ERR)]);
    two.merge(traces(vec![span(21, 2, 1, 10, OK)]));
    w.ingest_spans(two, t0);
    let out = w.tick(t0 + WAIT);
    let req = to_traces(out.spans);
    assert_eq!(
        req.request().resource_spans.len(),
        2,
        "one ResourceSpans per origin batch"
    );
    assert_eq!(req.item_count(), 2);
    assert!(to_logs(Vec::new()).request().resource_logs.is_empty());
}

#[test]
fn config_errors_have_paths() {
    let value: serde_yaml::Value = serde_yaml::from_str(
        "decision_wait: 0s\nnum_traces: 0\npolicies: []\nkeep_logs_at_or_above: LOUD",
    )
    .unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("processors").key("tail_sampling");
    weft_config::decode_component::<TailSamplingConfig>(&value, &path, &mut diags);
    let text = diags.to_string();
    for expected in [
        "processors::tail_sampling::decision_wait: must be greater than 0",
        "processors::tail_sampling::num_traces: must be at least 1",
        "processors::tail_sampling::policies: at least one policy is required",
        "processors::tail_sampling::keep_logs_at_or_above: invalid severity \"LOUD\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// Records what reaches it; refuses while `refuse` is set. Shared with `durable_tests`.
#[derive(Default)]
pub(super) struct Sink<T> {
    pub(super) got: Mutex<Vec<T>>,
    pub(super) refuse: Mutex<bool>,
}

#[async_trait]
impl<T: Payload> Consumer<T> for Sink<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        if *self.refuse.lock() {
            return Err(ConsumeError::unavailable("full", Duration::from_secs(1)));
        }
        self.got.lock().push(data);
        Ok(())
    }
}

impl<T: Payload> Sink<T> {
    fn items(&self) -> usize {
        self.got.lock().iter().map(Payload::item_count).sum()
    }
}

struct ManualClock(Mutex<Instant>);

impl ManualClock {
    fn advance(&self, d: Duration) {
        *self.0.lock() += d;
    }
}

#[tokio::test]
async fn one_instance_serves_both_pipelines_and_a_refusing_next_stage_loses_nothing() {
    let t = Telemetry::new();
    let ctx = ctx(&t);
    let clock = Arc::new(ManualClock(Mutex::new(Instant::now())));
    let c = clock.clone();
    let core =
        Arc::new(TailSampling::new(&ctx, config(POLICIES), Arc::new(move || *c.0.lock())).unwrap());
    let span_sink = Arc::new(Sink::<Traces>::default());
    let log_sink = Arc::new(Sink::<Logs>::default());
    assert!(core.traces.next.set(span_sink.clone()).is_ok());
    assert!(core.logs.next.set(log_sink.clone()).is_ok());
    core.users.store(2, std::sync::atomic::Ordering::SeqCst);
    let traces_side = Side::<Traces>(core.clone(), PhantomData);
    let logs_side = Side::<Logs>(core.clone(), PhantomData);

    Consumer::<Traces>::consume(&traces_side, traces(vec![span(30, 1, 0, 10, ERR)]))
        .await
        .unwrap();
    Consumer::<Logs>::consume(&logs_side, logs(vec![log(Some(30), 1, ERROR, "boom")]))
        .await
        .unwrap();
    *span_sink.refuse.lock() = true;
    clock.advance(WAIT);
    core.tick().await;
    assert_eq!(
        span_sink.items(),
        0,
        "refused: the spans wait in the outbox"
    );
    assert_eq!(log_sink.items(), 1, "logs went on");
    *span_sink.refuse.lock() = false;
    core.tick().await;
    assert_eq!(span_sink.items(), 1, "retried on the next tick");

    // Pending traces are decided at the last pipeline's shutdown.
    Consumer::<Traces>::consume(&traces_side, traces(vec![span(31, 1, 0, 10, ERR)]))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    traces_side.shutdown(deadline).await.unwrap();
    assert_eq!(
        span_sink.items(),
        1,
        "the first pipeline's shutdown does not flush"
    );
    logs_side.shutdown(deadline).await.unwrap();
    assert_eq!(span_sink.items(), 2, "the last one does");
}

#[test]
fn the_shared_instance_is_one_per_id() {
    let t = Telemetry::new();
    let ctx = ctx(&t);
    let cfg = config(POLICIES);
    let a = TailSampling::shared(&ctx, &cfg).unwrap();
    let b = TailSampling::shared(&ctx, &cfg).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn attribute_policies_decide_on_fully_decoded_spans_and_scalar_ones_do_not_need_them() {
    let (w, _) = window(
        "decision_wait: 10s\npolicies:\n  - {name: vip, type: string_attribute, string_attribute: {key: tier, values: [gold]}}",
    );
    let t0 = Instant::now();
    let mut gold = span(40, 1, 0, 10, OK);
    gold.attributes = vec![kv("tier", "gold")];
    let mut bronze = span(41, 2, 0, 10, OK);
    bronze.attributes = vec![kv("tier", "bronze")];
    w.ingest_spans(traces(vec![gold, bronze]), t0);
    let out = w.tick(t0 + WAIT);
    assert_eq!(span_ids(&out), [(40, 1)]);
    assert_eq!(
        out.spans[0].span().attributes,
        vec![kv("tier", "gold")],
        "exported whole"
    );

    let cfg = config(POLICIES);
    assert!(!window::policies_read_attributes(&cfg.policies));
    let cfg = config("policies:\n  - {name: a, type: and, and: {and_sub_policy: [{name: b, type: log_body, log_body: {values: [x]}}]}}");
    assert!(window::policies_read_attributes(&cfg.policies));
}

#[test]
fn a_dropped_trace_s_summary_is_the_same_whether_the_policies_read_times_or_not() {
    use super::decisions::RingSettings;
    // Both policies read the spans' times and statuses: the summary takes them from the
    // decision's view and reads only the root's name later. One reads neither: one walk over
    // the spans' bytes at the decision. Either way the page shows the same summary, read
    // only when asked; the root is the first span without a parent, whatever its position.
    let with_view = "decision_wait: 10s\npolicies:\n  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n  - {name: slow, type: latency, latency: {threshold_ms: 1000}}\n";
    let without = "decision_wait: 10s\npolicies:\n  - {name: few, type: span_count, span_count: {min_spans: 10}}\n";
    for yaml in [with_view, without] {
        let (w, _) = window(yaml);
        let ring = w.enable_ring(RingSettings {
            size: 10,
            keep_dropped_detail: false,
            detail_max_bytes: 1 << 20,
        });
        let t0 = Instant::now();
        let mut late_root = span(40, 1, 0, 0, OK);
        late_root.start_time_unix_nano -= 5_000_000;
        late_root.end_time_unix_nano += 20_000_000;
        w.ingest_spans(
            traces(vec![span(40, 2, 1, 12, OK), span(40, 3, 1, 7, OK)]),
            t0,
        );
        w.ingest_spans(traces(vec![late_root]), t0);
        w.tick(t0 + WAIT);
        let record = ring.get(&tid(40).try_into().unwrap()).unwrap();
        assert!(!record.sampled);
        let s = record.summary();
        assert_eq!(
            (
                s.root_operation.as_deref(),
                s.duration_ms,
                s.error,
                s.span_count
            ),
            (Some("op-1"), 25, false, 3),
            "{yaml}"
        );
    }
}
