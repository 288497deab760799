//! The correlation window: spans and logs held by trace id until their trace is decided.
//!
//! The window is synchronous and clock-free: every operation takes `now`, so tests drive it
//! with made-up instants and no sleeps. The async processor around it ([`super::TailSampling`])
//! supplies the clock, runs the decision tick and sends what comes out.
//!
//! Concurrency: traces live in `SHARDS` shards chosen by trace id, each behind its own mutex,
//! so ingest of different traces rarely contends and the tick locks one shard for one trace
//! at a time. A separate FIFO (`order`) remembers when each trace arrived; since every trace
//! waits the same `decision_wait`, its front is always the next trace due, and it is also the
//! oldest trace to decide early when the window is full. Locks are only ever nested in one
//! order (a shard, then the root FIFO), so they cannot deadlock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prost::Message;

use super::config::{LogsWithoutTrace, TailSamplingConfig};
use super::enrich::Summary;
use super::metrics::WindowMetrics;
use super::policy::{Policies, Verdict};
use super::trace::{LogEntry, Origin, SpanEntry, TraceData};
use crate::pipeline::{Logs, Traces};

const SHARDS: usize = 64;

type TraceKey = [u8; 16];

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

/// What a window operation releases: items to send downstream now.
#[derive(Debug, Default)]
pub struct Output {
    pub spans: Vec<SpanEntry>,
    pub logs: Vec<LogEntry>,
    /// Each trace decided by this operation, with its verdict (for tests and logs).
    pub decided: Vec<(TraceKey, bool)>,
    /// The summary of each kept trace in `decided` (the durable window records it).
    pub summaries: Vec<(TraceKey, Arc<Summary>)>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty()
    }

    fn append(&mut self, other: Output) {
        self.spans.extend(other.spans);
        self.logs.extend(other.logs);
        self.decided.extend(other.decided);
        self.summaries.extend(other.summaries);
    }
}

/// A trace waiting for its decision. Spans and logs are held protobuf-encoded: a decoded
/// span is a tree of small allocations about 3x its encoded size, an encoded one is a single
/// allocation of exactly its size. They are decoded once, when the trace is decided.
struct Entry {
    first_seen: Instant,
    spans: Vec<Held>,
    logs: Vec<Held>,
    bytes: usize,
    has_root: bool,
}

/// One item as it waits: where it came from, and its protobuf encoding.
struct Held {
    origin: Arc<Origin>,
    encoded: Box<[u8]>,
}

impl Held {
    fn new(origin: Arc<Origin>, item: &impl Message) -> Self {
        Self {
            origin,
            encoded: item.encode_to_vec().into_boxed_slice(),
        }
    }
}

/// The fields of a span that policies not reading attributes look at; decoding into it skips
/// everything else without allocating (field numbers from opentelemetry/proto/trace/v1).
#[derive(Clone, PartialEq, prost::Message)]
struct SpanScalars {
    #[prost(string, tag = "3")]
    trace_state: String,
    #[prost(bytes = "vec", tag = "4")]
    parent_span_id: Vec<u8>,
    #[prost(fixed64, tag = "7")]
    start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    end_time_unix_nano: u64,
    #[prost(message, optional, tag = "15")]
    status: Option<weft_proto::trace::v1::Status>,
}

/// The same for log records (opentelemetry/proto/logs/v1).
#[derive(Clone, PartialEq, prost::Message)]
struct LogScalars {
    #[prost(int32, tag = "2")]
    severity_number: i32,
    #[prost(string, tag = "3")]
    severity_text: String,
}

/// Whether any policy reads span or log attributes or log bodies, which only a full decode
/// provides. Without such a policy, most traces (the dropped ones) are decided on scalars.
pub fn policies_read_attributes(policies: &[super::policy::PolicyConfig]) -> bool {
    use super::policy::PolicyType as T;
    policies.iter().any(|p| {
        matches!(
            p.policy_type,
            Some(
                T::StringAttribute
                    | T::NumericAttribute
                    | T::BooleanAttribute
                    | T::LogBody
                    | T::LogAttribute
            )
        ) || p
            .and
            .as_ref()
            .is_some_and(|a| policies_read_attributes(&a.and_sub_policy))
            || p.drop
                .as_ref()
                .is_some_and(|d| policies_read_attributes(&d.drop_sub_policy))
            || p.composite
                .as_ref()
                .is_some_and(|c| policies_read_attributes(&c.composite_sub_policy))
    })
}

impl Entry {
    /// The trace with only what scalar policies read (status, times, parent, trace state,
    /// severity): cheap, and enough to decide every trace when no policy reads attributes.
    fn scalars(&self, trace_id: TraceKey) -> TraceData {
        let spans = self
            .spans
            .iter()
            .map(|h| {
                let s = SpanScalars::decode(&h.encoded[..])
                    .expect("held spans were encoded by this window");
                SpanEntry {
                    origin: h.origin.clone(),
                    span: weft_proto::trace::v1::Span {
                        trace_id: trace_id.to_vec(),
                        trace_state: s.trace_state,
                        parent_span_id: s.parent_span_id,
                        start_time_unix_nano: s.start_time_unix_nano,
                        end_time_unix_nano: s.end_time_unix_nano,
                        status: s.status,
                        ..Default::default()
                    },
                }
            })
            .collect();
        let logs = self
            .logs
            .iter()
            .map(|h| {
                let l = LogScalars::decode(&h.encoded[..])
                    .expect("held logs were encoded by this window");
                LogEntry {
                    origin: h.origin.clone(),
                    record: weft_proto::logs::v1::LogRecord {
                        severity_number: l.severity_number,
                        severity_text: l.severity_text,
                        ..Default::default()
                    },
                }
            })
            .collect();
        TraceData {
            trace_id,
            spans,
            logs,
        }
    }

    /// The trace as policies and exporters need it: every held item decoded.
    fn materialize(self, trace_id: TraceKey) -> TraceData {
        let decode_span = |h: Held| SpanEntry {
            span: weft_proto::trace::v1::Span::decode(&h.encoded[..])
                .expect("held spans were encoded by this window"),
            origin: h.origin,
        };
        let decode_log = |h: Held| LogEntry {
            record: weft_proto::logs::v1::LogRecord::decode(&h.encoded[..])
                .expect("held logs were encoded by this window"),
            origin: h.origin,
        };
        TraceData {
            trace_id,
            spans: self.spans.into_iter().map(decode_span).collect(),
            logs: self.logs.into_iter().map(decode_log).collect(),
        }
    }
}

/// A remembered decision.
#[derive(Clone)]
enum Cached {
    Kept { summary: Arc<Summary>, at: Instant },
    Dropped { at: Instant },
}

/// A bounded map that forgets its oldest insertions first.
struct FifoCache {
    map: HashMap<TraceKey, Cached>,
    order: VecDeque<TraceKey>,
    capacity: usize,
}

impl FifoCache {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn get(&self, key: &TraceKey) -> Option<&Cached> {
        self.map.get(key)
    }

    fn insert(&mut self, key: TraceKey, value: Cached) {
        if self.capacity == 0 {
            return;
        }
        if self.map.insert(key, value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

struct Shard {
    live: HashMap<TraceKey, Entry>,
    kept: FifoCache,
    dropped: FifoCache,
}

/// The window of one `tail_sampling` processor id, shared by its traces and logs pipelines.
pub struct Window {
    cfg: Arc<TailSamplingConfig>,
    policies: Policies,
    shards: Box<[Mutex<Shard>]>,
    /// (trace, first_seen) in arrival order; may hold stale entries for traces decided early.
    order: Mutex<VecDeque<(TraceKey, Instant)>>,
    /// (trace, first_seen, due) for traces whose root arrived, in due order.
    root_due: Mutex<VecDeque<(TraceKey, Instant, Instant)>>,
    traces: AtomicUsize,
    bytes: AtomicUsize,
    keep_severity: Option<i32>,
    /// Decide on fully decoded traces (some policy reads attributes or bodies).
    full_decode: bool,
    pub(super) metrics: WindowMetrics,
}

fn shard_of(key: &TraceKey) -> usize {
    // Trace ids are random: their low bytes spread traces evenly.
    usize::from(key[15]) % SHARDS
}

fn trace_key(id: &[u8]) -> Option<TraceKey> {
    let key: TraceKey = id.try_into().ok()?;
    (key != [0u8; 16]).then_some(key)
}

impl Window {
    pub fn new(cfg: Arc<TailSamplingConfig>, policies: Policies, metrics: WindowMetrics) -> Self {
        let per_shard_cache = |n: usize| n.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    live: HashMap::new(),
                    kept: FifoCache::new(per_shard_cache(cfg.decision_cache.sampled_cache_size)),
                    dropped: FifoCache::new(per_shard_cache(
                        cfg.decision_cache.non_sampled_cache_size,
                    )),
                })
            })
            .collect();
        let keep_severity = cfg
            .keep_logs_at_or_above
            .as_ref()
            .and_then(|s| s.resolve().ok());
        let full_decode = policies_read_attributes(&cfg.policies);
        Self {
            full_decode,
            cfg,
            policies,
            shards,
            order: Mutex::new(VecDeque::new()),
            root_due: Mutex::new(VecDeque::new()),
            traces: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            keep_severity,
            metrics,
        }
    }

    /// Traces currently held.
    pub fn trace_count(&self) -> usize {
        self.traces.load(Ordering::Relaxed)
    }

    /// Encoded bytes currently held.
    pub fn byte_count(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Takes a batch of spans: joins each to its trace, or follows a remembered decision.
    pub fn ingest_spans(&self, data: Traces, now: Instant) -> Output {
        let mut by_shard: Vec<Vec<(TraceKey, SpanEntry)>> =
            (0..SHARDS).map(|_| Vec::new()).collect();
        for rs in data.resource_spans {
            let resource = rs.resource.unwrap_or_default();
            for ss in rs.scope_spans {
                let origin = Arc::new(Origin {
                    resource: resource.clone(),
                    resource_schema_url: rs.schema_url.clone(),
                    scope: ss.scope.unwrap_or_default(),
                    scope_schema_url: ss.schema_url,
                });
                for span in ss.spans {
                    // The receiver validated ids; a zero id here is from an in-process caller.
                    let Some(key) = trace_key(&span.trace_id) else {
                        continue;
                    };
                    by_shard[shard_of(&key)].push((
                        key,
                        SpanEntry {
                            origin: origin.clone(),
                            span,
                        },
                    ));
                }
            }
        }
        let mut out = Output::default();
        let mut opened = Vec::new();
        for (index, items) in by_shard.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            let mut shard = self.shards[index].lock();
            for (key, entry) in items {
                let is_root = entry.span.parent_span_id.is_empty();
                match self.cached(&shard, &key) {
                    Some(Cached::Kept { at, .. }) => {
                        self.metrics
                            .late_span_age
                            .observe(now.saturating_duration_since(at).as_secs_f64());
                        self.metrics.late_spans_kept.inc();
                        out.spans.push(entry);
                        continue;
                    }
                    Some(Cached::Dropped { at }) => {
                        self.metrics
                            .late_span_age
                            .observe(now.saturating_duration_since(at).as_secs_f64());
                        self.metrics.late_spans_dropped.inc();
                        continue;
                    }
                    None => {}
                }
                let held = Held::new(entry.origin, &entry.span);
                let size = held.encoded.len();
                let trace = self.entry(&mut shard, key, now, &mut opened);
                trace.bytes += size;
                trace.spans.push(held);
                self.bytes.fetch_add(size, Ordering::Relaxed);
                if is_root && !trace.has_root {
                    trace.has_root = true;
                    if !self.cfg.decision_wait_after_root_received.is_zero() {
                        let due = now + self.cfg.decision_wait_after_root_received.get();
                        self.root_due.lock().push_back((key, trace.first_seen, due));
                    }
                }
                if self.too_big(trace) {
                    out.append(self.decide_locked(
                        &mut shard,
                        key,
                        None,
                        now,
                        DecideReason::TraceSize,
                    ));
                }
            }
        }
        self.register_opened(opened);
        out.append(self.enforce_bounds(now));
        out
    }

    /// Takes a batch of logs: logs with a trace id join their trace (or follow its
    /// remembered decision); logs without one pass or are dropped, as configured.
    pub fn ingest_logs(&self, data: Logs, now: Instant) -> Output {
        let mut out = Output::default();
        let mut by_shard: Vec<Vec<(TraceKey, LogEntry)>> =
            (0..SHARDS).map(|_| Vec::new()).collect();
        for rl in data.resource_logs {
            let resource = rl.resource.unwrap_or_default();
            for sl in rl.scope_logs {
                let origin = Arc::new(Origin {
                    resource: resource.clone(),
                    resource_schema_url: rl.schema_url.clone(),
                    scope: sl.scope.unwrap_or_default(),
                    scope_schema_url: sl.schema_url,
                });
                for record in sl.log_records {
                    let entry = LogEntry {
                        origin: origin.clone(),
                        record,
                    };
                    match trace_key(&entry.record.trace_id) {
                        Some(key) => by_shard[shard_of(&key)].push((key, entry)),
                        None => match self.cfg.logs_without_trace {
                            LogsWithoutTrace::Pass => {
                                self.metrics.logs_passed.inc();
                                out.logs.push(entry);
                            }
                            LogsWithoutTrace::Drop => {
                                self.metrics.logs_dropped_no_trace.inc();
                            }
                        },
                    }
                }
            }
        }
        let mut opened = Vec::new();
        for (index, items) in by_shard.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            let mut shard = self.shards[index].lock();
            for (key, mut entry) in items {
                match self.cached(&shard, &key) {
                    Some(Cached::Kept { summary, .. }) => {
                        self.metrics.logs_late_kept.inc();
                        summary.enrich(&self.cfg.enrichment, &mut entry.record, true);
                        out.logs.push(entry);
                        continue;
                    }
                    Some(Cached::Dropped { .. }) => {
                        if self.keeps_anyway(&entry) {
                            self.metrics.logs_kept_by_severity.inc();
                            Summary::unsampled().enrich(
                                &self.cfg.enrichment,
                                &mut entry.record,
                                false,
                            );
                            out.logs.push(entry);
                        } else {
                            self.metrics.logs_late_dropped.inc();
                        }
                        continue;
                    }
                    None => {}
                }
                let held = Held::new(entry.origin, &entry.record);
                let size = held.encoded.len();
                self.metrics.logs_joined.inc();
                let trace = self.entry(&mut shard, key, now, &mut opened);
                trace.bytes += size;
                trace.logs.push(held);
                self.bytes.fetch_add(size, Ordering::Relaxed);
                if self.too_big(trace) {
                    out.append(self.decide_locked(
                        &mut shard,
                        key,
                        None,
                        now,
                        DecideReason::TraceSize,
                    ));
                }
            }
        }
        self.register_opened(opened);
        out.append(self.enforce_bounds(now));
        out
    }

    /// Decides every trace that is due at `now`.
    pub fn tick(&self, now: Instant) -> Output {
        let wait = self.cfg.decision_wait.get();
        let mut out = Output::default();
        loop {
            let next = {
                let mut order = self.order.lock();
                match order.front() {
                    Some((_, first_seen)) if *first_seen + wait <= now => order.pop_front(),
                    _ => None,
                }
            };
            let Some((key, first_seen)) = next else { break };
            out.append(self.decide(key, Some(first_seen), now, DecideReason::Wait));
        }
        loop {
            let next = {
                let mut due = self.root_due.lock();
                match due.front() {
                    Some((_, _, at)) if *at <= now => due.pop_front(),
                    _ => None,
                }
            };
            let Some((key, first_seen, _)) = next else {
                break;
            };
            out.append(self.decide(key, Some(first_seen), now, DecideReason::Root));
        }
        self.metrics.traces_on_memory.set(self.trace_count() as i64);
        self.metrics.bytes_on_memory.set(self.byte_count() as i64);
        out
    }

    /// Decides (or, with `drop`, discards) every trace still held; for shutdown.
    pub fn flush_all(&self, now: Instant, drop: bool) -> Output {
        let mut out = Output::default();
        let keys: Vec<(TraceKey, Instant)> = self.order.lock().drain(..).collect();
        self.root_due.lock().clear();
        for (key, first_seen) in keys {
            if drop {
                let mut shard = self.shards[shard_of(&key)].lock();
                if let Some(entry) = shard.live.remove(&key) {
                    self.release(&entry);
                    self.metrics.dropped_too_early.inc();
                }
            } else {
                out.append(self.decide(key, Some(first_seen), now, DecideReason::Shutdown));
            }
        }
        out
    }

    fn cached(&self, shard: &Shard, key: &TraceKey) -> Option<Cached> {
        shard
            .kept
            .get(key)
            .or_else(|| shard.dropped.get(key))
            .cloned()
    }

    fn keeps_anyway(&self, log: &LogEntry) -> bool {
        self.keep_severity
            .is_some_and(|min| log.record.severity_number >= min)
    }

    fn too_big(&self, entry: &Entry) -> bool {
        let max = self.cfg.maximum_trace_size_bytes.0 as usize;
        max != 0 && entry.bytes > max
    }

    /// The live entry for `key`, opened at `now` if there is none.
    fn entry<'a>(
        &self,
        shard: &'a mut Shard,
        key: TraceKey,
        now: Instant,
        opened: &mut Vec<(TraceKey, Instant)>,
    ) -> &'a mut Entry {
        shard.live.entry(key).or_insert_with(|| {
            self.traces.fetch_add(1, Ordering::Relaxed);
            opened.push((key, now));
            Entry {
                first_seen: now,
                spans: Vec::new(),
                logs: Vec::new(),
                bytes: 0,
                has_root: false,
            }
        })
    }

    fn register_opened(&self, opened: Vec<(TraceKey, Instant)>) {
        if !opened.is_empty() {
            self.metrics.new_traces.inc_by(opened.len() as u64);
            self.order.lock().extend(opened);
        }
    }

    /// Decides the oldest traces early while the window is over `num_traces` or `max_bytes`.
    fn enforce_bounds(&self, now: Instant) -> Output {
        let mut out = Output::default();
        loop {
            let reason = if self.trace_count() > self.cfg.num_traces as usize {
                DecideReason::NumTraces
            } else if self.cfg.max_bytes.0 != 0 && self.byte_count() > self.cfg.max_bytes.0 as usize
            {
                DecideReason::MaxBytes
            } else {
                break;
            };
            let Some((key, first_seen)) = self.order.lock().pop_front() else {
                break;
            };
            out.append(self.decide(key, Some(first_seen), now, reason));
        }
        out
    }

    /// Decides `key` if it is still the entry that arrived at `first_seen` (the FIFOs may
    /// name traces already decided early, or re-opened later under the same id).
    fn decide(
        &self,
        key: TraceKey,
        first_seen: Option<Instant>,
        now: Instant,
        reason: DecideReason,
    ) -> Output {
        let mut shard = self.shards[shard_of(&key)].lock();
        self.decide_locked(&mut shard, key, first_seen, now, reason)
    }

    fn decide_locked(
        &self,
        shard: &mut Shard,
        key: TraceKey,
        first_seen: Option<Instant>,
        now: Instant,
        reason: DecideReason,
    ) -> Output {
        match shard.live.get(&key) {
            Some(e) if first_seen.is_none_or(|t| t == e.first_seen) => {}
            _ => return Output::default(),
        }
        let Some(entry) = shard.live.remove(&key) else {
            return Output::default();
        };
        self.release(&entry);
        let first_seen = entry.first_seen;
        let held_logs = entry.logs.len();
        let started = std::time::Instant::now();
        let (verdict, data) = if self.full_decode {
            let data = entry.materialize(key);
            (self.policies.decide(&data, now), data)
        } else {
            let verdict = self.policies.decide(&entry.scalars(key), now);
            // Kept traces are exported whole; dropped ones only need the logs that
            // keep_logs_at_or_above rescues.
            let data = if verdict.sampled || self.keep_severity.is_some() {
                entry.materialize(key)
            } else {
                TraceData {
                    trace_id: key,
                    spans: Vec::new(),
                    logs: Vec::new(),
                }
            };
            (verdict, data)
        };
        self.metrics
            .decision_latency
            .observe(started.elapsed().as_secs_f64() * 1e6);
        self.metrics
            .decision_delay
            .observe(now.saturating_duration_since(first_seen).as_secs_f64());
        self.metrics.record_verdict(&verdict, reason);
        let summary = Arc::new(Summary::of(&data, &verdict));
        if verdict.sampled {
            shard.kept.insert(
                key,
                Cached::Kept {
                    summary: summary.clone(),
                    at: now,
                },
            );
        } else {
            shard.dropped.insert(key, Cached::Dropped { at: now });
        }
        self.release_output(data, held_logs, &verdict, summary, key)
    }

    fn release(&self, entry: &Entry) {
        self.traces.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(entry.bytes, Ordering::Relaxed);
    }

    /// What a decided trace sends downstream.
    fn release_output(
        &self,
        data: TraceData,
        held_logs: usize,
        verdict: &Verdict,
        summary: Arc<Summary>,
        key: TraceKey,
    ) -> Output {
        let mut out = Output {
            decided: vec![(key, verdict.sampled)],
            summaries: verdict
                .sampled
                .then(|| (key, summary.clone()))
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let TraceData {
            mut spans, logs, ..
        } = data;
        if verdict.sampled {
            if self.cfg.attach_logs_as_span_events {
                super::enrich::attach_as_events(&mut spans, &logs);
            }
            out.spans = spans;
            out.logs = logs;
            for log in &mut out.logs {
                summary.enrich(&self.cfg.enrichment, &mut log.record, true);
            }
            self.metrics.logs_kept.inc_by(out.logs.len() as u64);
        } else {
            out.logs = logs.into_iter().filter(|l| self.keeps_anyway(l)).collect();
            for log in &mut out.logs {
                Summary::unsampled().enrich(&self.cfg.enrichment, &mut log.record, false);
            }
            self.metrics
                .logs_kept_by_severity
                .inc_by(out.logs.len() as u64);
            self.metrics
                .logs_dropped
                .inc_by((held_logs - out.logs.len()) as u64);
        }
        out
    }
}

/// What the durable window (see [`super::wal`]) needs from the window.
impl Window {
    /// The earliest `first_seen` of the traces held now (`None` when empty). Scans every
    /// shard: called when the write-ahead log looks for segments to delete, not per item.
    pub fn oldest_first_seen(&self) -> Option<Instant> {
        self.shards
            .iter()
            .filter_map(|s| s.lock().live.values().map(|e| e.first_seen).min())
            .min()
    }

    /// Remembers a decision made before a restart, so late items follow it: kept with its
    /// summary (`Some`), or dropped (`None`).
    pub fn remember(&self, trace_id: TraceKey, kept: Option<Arc<Summary>>, now: Instant) {
        let mut shard = self.shards[shard_of(&trace_id)].lock();
        match kept {
            Some(summary) => shard
                .kept
                .insert(trace_id, Cached::Kept { summary, at: now }),
            None => shard.dropped.insert(trace_id, Cached::Dropped { at: now }),
        }
    }
}

/// Items in order, grouped by the batch (resource and scope) they arrived in.
fn group_by_origin<T>(items: impl Iterator<Item = (Arc<Origin>, T)>) -> Vec<(Arc<Origin>, Vec<T>)> {
    let mut groups: Vec<(Arc<Origin>, Vec<T>)> = Vec::new();
    let mut index: HashMap<*const Origin, usize> = HashMap::new();
    for (origin, item) in items {
        let slot = *index.entry(Arc::as_ptr(&origin)).or_insert_with(|| {
            groups.push((origin.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(item);
    }
    groups
}

/// Regroups released spans into an OTLP request: one ResourceSpans per origin batch.
pub fn to_traces(spans: Vec<SpanEntry>) -> Traces {
    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans};
    let groups = group_by_origin(spans.into_iter().map(|e| (e.origin, e.span)));
    Traces {
        resource_spans: groups
            .into_iter()
            .map(|(origin, spans)| ResourceSpans {
                resource: Some(origin.resource.clone()),
                schema_url: origin.resource_schema_url.clone(),
                scope_spans: vec![ScopeSpans {
                    scope: Some(origin.scope.clone()),
                    schema_url: origin.scope_schema_url.clone(),
                    spans,
                }],
            })
            .collect(),
    }
}

/// Regroups released logs into an OTLP request: one ResourceLogs per origin batch.
pub fn to_logs(logs: Vec<LogEntry>) -> Logs {
    use weft_proto::logs::v1::{ResourceLogs, ScopeLogs};
    let groups = group_by_origin(logs.into_iter().map(|e| (e.origin, e.record)));
    Logs {
        resource_logs: groups
            .into_iter()
            .map(|(origin, log_records)| ResourceLogs {
                resource: Some(origin.resource.clone()),
                schema_url: origin.resource_schema_url.clone(),
                scope_logs: vec![ScopeLogs {
                    scope: Some(origin.scope.clone()),
                    schema_url: origin.scope_schema_url.clone(),
                    log_records,
                }],
            })
            .collect(),
    }
}

/// How long to wait between ticks: often enough that a trace is decided within 100 ms of
/// its due time, never more often than every 10 ms.
pub fn tick_interval(cfg: &TailSamplingConfig) -> Duration {
    let wait = cfg.decision_wait.get();
    (wait / 10).clamp(Duration::from_millis(10), Duration::from_millis(100))
}
