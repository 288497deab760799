//! The tail sampler's metrics: the Collector's names where they exist
//! (`otelcol_processor_tail_sampling_*`), Weft's own for logs and the window.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use super::policy::Verdict;
use crate::telemetry::{CounterFamily, Telemetry};

/// Why a trace was decided when it was; a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecideReason {
    /// `decision_wait` after its first item.
    Wait,
    /// `decision_wait_after_root_received` after its root span.
    Root,
    /// The window held `num_traces` traces; this was the oldest.
    NumTraces,
    /// The window held `max_bytes`; this was the oldest.
    MaxBytes,
    /// The trace alone exceeded `maximum_trace_size_bytes`.
    TraceSize,
    /// Weft is shutting down.
    Shutdown,
}

impl DecideReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DecideReason::Wait => "decision_wait",
            DecideReason::Root => "root_received",
            DecideReason::NumTraces => "num_traces",
            DecideReason::MaxBytes => "max_bytes",
            DecideReason::TraceSize => "trace_size",
            DecideReason::Shutdown => "shutdown",
        }
    }
}

fn micros_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 20))
}

fn seconds_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// 1 ms to 18 s in steps of 25%: fine enough to read a p99 against a goal such as "within
/// 100 ms of the deadline" (the buckets around it are 87 and 108 ms).
fn lateness_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 1.25, 45))
}

#[derive(Clone)]
pub struct WindowMetrics {
    processor: String,
    count_traces_sampled: CounterFamily,
    decisions: CounterFamily,
    /// The counters of the families above as the decisions hit them, looked up by policy
    /// name (or outcome and reason) without building a label set per decision: a decision
    /// costs a read lock and a hash of the name instead of a dozen small allocations.
    per_policy: Arc<RwLock<HashMap<String, [Counter; 2]>>>,
    by_reason: Arc<RwLock<HashMap<(bool, &'static str), Counter>>>,
    /// `global_count_traces_sampled`, not sampled and sampled.
    global: [Counter; 2],
    pub decision_latency: Histogram,
    pub decision_delay: Histogram,
    /// How long after its deadline (`decision_wait` after its first item, or
    /// `decision_wait_after_root_received` after its root) a trace was decided.
    pub decision_lateness: Histogram,
    pub tick_lateness: Histogram,
    pub late_span_age: Histogram,
    pub dropped_too_early: Counter,
    /// Traces dropped because a held span or log did not decode at decision time.
    pub dropped_undecodable: Counter,
    /// Policies that failed on a trace (the Collector's evaluation error count).
    pub policy_evaluation_errors: Counter,
    pub new_traces: Counter,
    pub traces_on_memory: Gauge,
    pub bytes_on_memory: Gauge,
    pub late_spans_kept: Counter,
    pub late_spans_dropped: Counter,
    pub logs_joined: Counter,
    pub logs_passed: Counter,
    pub logs_dropped_no_trace: Counter,
    pub logs_kept: Counter,
    pub logs_dropped: Counter,
    pub logs_kept_by_severity: Counter,
    pub logs_late_kept: Counter,
    pub logs_late_dropped: Counter,
    /// Late logs of kept traces attached as span events while the spans waited
    /// (`attach_logs_wait`).
    pub late_logs_attached: Counter,
    /// Late logs of kept traces that came after their spans had left (or whose span is not
    /// in the trace): exported as logs only.
    pub late_logs_not_attached: Counter,
}

impl WindowMetrics {
    pub fn new(t: &Telemetry, processor: &str) -> Self {
        let p = [("processor", processor)];
        let logs = |outcome: &str, help: &str| {
            t.counter(
                "weft_processor_tail_sampling_log_records",
                help,
                &[("processor", processor), ("outcome", outcome)],
            )
        };
        let logs_help = "Log records seen by the tail sampler, by what happened to them";
        Self {
            processor: processor.to_string(),
            count_traces_sampled: t.counter_family(
                "otelcol_processor_tail_sampling_count_traces_sampled",
                "Count of traces that were sampled or not per sampling policy",
            ),
            global: ["false", "true"].map(|sampled| {
                t.counter(
                    "otelcol_processor_tail_sampling_global_count_traces_sampled",
                    "Global count of traces that were sampled or not by at least one policy",
                    &[("processor", processor), ("sampled", sampled)],
                )
            }),
            per_policy: Arc::default(),
            by_reason: Arc::default(),
            decisions: t.counter_family(
                "weft_processor_tail_sampling_decisions",
                "Traces decided, by outcome and by why they were decided then",
            ),
            decision_latency: t.histogram(
                "otelcol_processor_tail_sampling_sampling_decision_latency",
                "Latency (in microseconds) of evaluating the policies for one trace",
                &p,
                micros_buckets,
            ),
            decision_delay: t.histogram(
                "weft_processor_tail_sampling_decision_delay_seconds",
                "Time from a trace's first span or log to its decision",
                &p,
                seconds_buckets,
            ),
            decision_lateness: t.histogram(
                "weft_processor_tail_sampling_decision_lateness_seconds",
                "Time from a trace's decision deadline (decision_wait after its first item, or decision_wait_after_root_received after its root) to its decision, for traces decided when their wait ran out",
                &p,
                lateness_buckets,
            ),
            tick_lateness: t.histogram(
                "weft_processor_tail_sampling_tick_lateness_seconds",
                "How late the decision tick ran against its schedule",
                &p,
                seconds_buckets,
            ),
            late_span_age: t.histogram(
                "otelcol_processor_tail_sampling_sampling_late_span_age",
                "Time (in seconds) from the sampling decision to the arrival of a late span",
                &p,
                seconds_buckets,
            ),
            dropped_too_early: t.counter(
                "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
                "Count of traces dropped before their decision (only with drop_pending_traces_on_shutdown)",
                &p,
            ),
            dropped_undecodable: t.counter(
                "otelcol_processor_tail_sampling_sampling_trace_dropped_undecodable",
                "Count of traces dropped without a decision because a held span or log record did not decode",
                &p,
            ),
            policy_evaluation_errors: t.counter(
                "otelcol_processor_tail_sampling_sampling_policy_evaluation_error",
                "Count of sampling policy evaluation errors",
                &p,
            ),
            new_traces: t.counter(
                "otelcol_processor_tail_sampling_new_trace_id_received",
                "Counts the arrival of new traces",
                &p,
            ),
            traces_on_memory: t.gauge(
                "otelcol_processor_tail_sampling_sampling_traces_on_memory",
                "Tracks the number of traces current on memory",
                &p,
            ),
            bytes_on_memory: t.gauge(
                "weft_processor_tail_sampling_window_bytes",
                "Encoded bytes of the spans and logs held in the window",
                &p,
            ),
            late_spans_kept: t.counter(
                "weft_processor_tail_sampling_late_spans",
                "Spans that arrived after their trace's decision",
                &[("processor", processor), ("sampled", "true")],
            ),
            late_spans_dropped: t.counter(
                "weft_processor_tail_sampling_late_spans",
                "Spans that arrived after their trace's decision",
                &[("processor", processor), ("sampled", "false")],
            ),
            logs_joined: logs("joined", logs_help),
            logs_passed: logs("passed_without_trace", logs_help),
            logs_dropped_no_trace: logs("dropped_without_trace", logs_help),
            logs_kept: logs("kept", logs_help),
            logs_dropped: logs("dropped", logs_help),
            logs_kept_by_severity: logs("kept_by_severity", logs_help),
            logs_late_kept: logs("late_kept", logs_help),
            logs_late_dropped: logs("late_dropped", logs_help),
            late_logs_attached: t.counter(
                "weft_processor_tail_sampling_late_log_events",
                "Logs of kept traces that arrived after the decision, by whether they became span events (attach_logs_as_span_events)",
                &[("processor", processor), ("attached", "true")],
            ),
            late_logs_not_attached: t.counter(
                "weft_processor_tail_sampling_late_log_events",
                "Logs of kept traces that arrived after the decision, by whether they became span events (attach_logs_as_span_events)",
                &[("processor", processor), ("attached", "false")],
            ),
        }
    }

    /// The processor id the metrics are labelled with (and logs name).
    pub fn processor(&self) -> &str {
        &self.processor
    }

    pub fn record_verdict(&self, verdict: &Verdict, reason: DecideReason) {
        for (policy, decision) in &verdict.per_policy {
            let sampled = decision.sampled_label() == "true";
            self.policy_counter(policy, sampled).inc();
        }
        self.global[usize::from(verdict.sampled)].inc();
        self.reason_counter(verdict.sampled, reason).inc();
    }

    fn policy_counter(&self, policy: &str, sampled: bool) -> Counter {
        if let Some(c) = self.per_policy.read().get(policy) {
            return c[usize::from(sampled)].clone();
        }
        let counters = ["false", "true"].map(|label| {
            self.count_traces_sampled
                .get_or_create(&vec![
                    ("processor".to_string(), self.processor.clone()),
                    ("policy".to_string(), policy.to_string()),
                    ("sampled".to_string(), label.to_string()),
                ])
                .clone()
        });
        let c = counters[usize::from(sampled)].clone();
        self.per_policy
            .write()
            .entry(policy.to_string())
            .or_insert(counters);
        c
    }

    fn reason_counter(&self, sampled: bool, reason: DecideReason) -> Counter {
        let key = (sampled, reason.as_str());
        if let Some(c) = self.by_reason.read().get(&key) {
            return c.clone();
        }
        let c = self
            .decisions
            .get_or_create(&vec![
                ("processor".to_string(), self.processor.clone()),
                ("sampled".to_string(), sampled.to_string()),
                ("reason".to_string(), reason.as_str().to_string()),
            ])
            .clone();
        self.by_reason.write().entry(key).or_insert(c).clone()
    }
}
