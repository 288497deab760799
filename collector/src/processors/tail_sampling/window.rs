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

use parking_lot::{Mutex, MutexGuard};
use prost::Message;

use super::config::{LogsWithoutTrace, TailSamplingConfig};
use super::enrich::Summary;
use super::metrics::WindowMetrics;
use super::policy::Policies;
use super::trace::{LogEntry, Origin, SpanEntry, TraceData};
use crate::pipeline::{Logs, Payload, Traces};
use weft_proto::common::v1::InstrumentationScope;
use weft_proto::logs::v1::LogRecord;
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::Span;
use weft_proto::wire::{self, Fields, Value as WireValue};

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
    /// Kept spans, still encoded.
    pub spans: Vec<Held>,
    /// Logs to export, encoded, enriched with their trace's verdict.
    pub logs: Vec<Held>,
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

/// One span or log record as it waits, and as a kept span leaves: where it came from, and
/// its protobuf encoding (sliced from the request it arrived in).
#[derive(Clone, Debug)]
pub struct Held {
    pub origin: Arc<Origin>,
    pub encoded: Box<[u8]>,
}

impl Held {
    fn new(origin: Arc<Origin>, item: &impl Message) -> Self {
        Self {
            origin,
            encoded: item.encode_to_vec().into_boxed_slice(),
        }
    }

    /// The span it holds, decoded.
    pub fn span(&self) -> Span {
        Span::decode(&self.encoded[..]).expect("held spans come from checked requests")
    }

    /// The log record it holds, decoded.
    pub fn record(&self) -> LogRecord {
        LogRecord::decode(&self.encoded[..]).expect("held logs come from checked requests")
    }

    /// A held log record's severity number, read without decoding the rest.
    fn severity(&self) -> i32 {
        LogScalars::decode(&self.encoded[..])
            .map(|l| l.severity_number)
            .unwrap_or_default()
    }

    fn span_entry(&self) -> SpanEntry {
        SpanEntry {
            origin: self.origin.clone(),
            span: self.span(),
        }
    }

    fn log_entry(&self) -> LogEntry {
        LogEntry {
            origin: self.origin.clone(),
            record: self.record(),
        }
    }
}

/// Calls `f` with every item (span or log record: field 2 of field 2 of field 1 in both
/// signals) of an encoded export request, and the origin it arrived under. The resource and
/// scope are decoded once per group; the items stay encoded.
fn for_each_item(body: &[u8], mut f: impl FnMut(&Arc<Origin>, &[u8])) {
    fn len_fields(msg: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
        Fields::new(msg).filter_map(|field| match field {
            Ok((n, WireValue::Len(bytes))) => Some((n, bytes)),
            _ => None,
        })
    }
    for (n, group) in len_fields(body) {
        if n != 1 {
            continue;
        }
        let mut resource = Resource::default();
        let mut resource_schema_url = String::new();
        for (n, bytes) in len_fields(group) {
            match n {
                1 => resource = Resource::decode(bytes).unwrap_or_default(),
                3 => resource_schema_url = String::from_utf8_lossy(bytes).into_owned(),
                _ => {}
            }
        }
        for (n, scoped) in len_fields(group) {
            if n != 2 {
                continue;
            }
            let mut scope = InstrumentationScope::default();
            let mut scope_schema_url = String::new();
            for (n, bytes) in len_fields(scoped) {
                match n {
                    1 => scope = InstrumentationScope::decode(bytes).unwrap_or_default(),
                    3 => scope_schema_url = String::from_utf8_lossy(bytes).into_owned(),
                    _ => {}
                }
            }
            let origin = Arc::new(Origin {
                resource: resource.clone(),
                resource_schema_url: resource_schema_url.clone(),
                scope,
                scope_schema_url,
            });
            for (n, item) in len_fields(scoped) {
                if n == 2 {
                    f(&origin, item);
                }
            }
        }
    }
}

/// The trace id (field `number`) of an encoded span or log record, if it has a valid one,
/// and whether field `parent` (a span's parent_span_id) is non-empty.
fn item_key(item: &[u8], number: u32, parent: u32) -> (Option<TraceKey>, bool) {
    let mut key = None;
    let mut has_parent = false;
    for (n, v) in Fields::new(item).flatten() {
        match v {
            WireValue::Len(bytes) if n == number => key = trace_key(bytes),
            WireValue::Len(bytes) if n == parent => has_parent = !bytes.is_empty(),
            _ => {}
        }
    }
    (key, has_parent)
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

/// [`SpanScalars`] and the name: what a kept trace's [`Summary`] reads.
#[derive(Clone, PartialEq, prost::Message)]
struct SpanHead {
    #[prost(string, tag = "3")]
    trace_state: String,
    #[prost(bytes = "vec", tag = "4")]
    parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    name: String,
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
    /// With `names`, span names too (for a kept trace's [`Summary`]). The spans' own ids are
    /// left empty: policies read the trace's id from [`TraceData`].
    fn scalars(&self, trace_id: TraceKey, names: bool) -> TraceData {
        let spans = self
            .spans
            .iter()
            .map(|h| {
                let span = if names {
                    let s = SpanHead::decode(&h.encoded[..])
                        .expect("held spans come from checked requests");
                    Span {
                        trace_state: s.trace_state,
                        parent_span_id: s.parent_span_id,
                        name: s.name,
                        start_time_unix_nano: s.start_time_unix_nano,
                        end_time_unix_nano: s.end_time_unix_nano,
                        status: s.status,
                        ..Default::default()
                    }
                } else {
                    let s = SpanScalars::decode(&h.encoded[..])
                        .expect("held spans come from checked requests");
                    Span {
                        trace_state: s.trace_state,
                        parent_span_id: s.parent_span_id,
                        start_time_unix_nano: s.start_time_unix_nano,
                        end_time_unix_nano: s.end_time_unix_nano,
                        status: s.status,
                        ..Default::default()
                    }
                };
                SpanEntry {
                    origin: h.origin.clone(),
                    span,
                }
            })
            .collect();
        let logs = self
            .logs
            .iter()
            .map(|h| {
                let l = LogScalars::decode(&h.encoded[..])
                    .expect("held logs come from checked requests");
                LogEntry {
                    origin: h.origin.clone(),
                    record: LogRecord {
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

    /// The trace as policies reading attributes need it: every held item decoded.
    fn decoded(&self, trace_id: TraceKey) -> TraceData {
        TraceData {
            trace_id,
            spans: self.spans.iter().map(Held::span_entry).collect(),
            logs: self.logs.iter().map(Held::log_entry).collect(),
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
    /// Where decisions are told, for those who listen (see `outcome`).
    verdicts: Option<Arc<crate::verdicts::VerdictBus>>,
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
            verdicts: None,
        }
    }

    /// Publishes every decision on `bus`.
    pub fn publishing_to(mut self, bus: Arc<crate::verdicts::VerdictBus>) -> Self {
        self.verdicts = Some(bus);
        self
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
    /// Spans are sliced out of the batch's encoding, never decoded here.
    pub fn ingest_spans(&self, data: Traces, now: Instant) -> Output {
        let body = data.to_bytes();
        let mut items: Vec<(TraceKey, bool, Held)> = Vec::with_capacity(data.item_count());
        for_each_item(&body, |origin, span| {
            // Field 1 is trace_id, field 4 parent_span_id. The receiver validated ids; a
            // zero id here is from an in-process caller.
            if let (Some(key), has_parent) = item_key(span, 1, 4) {
                let held = Held {
                    origin: origin.clone(),
                    encoded: span.into(),
                };
                items.push((key, !has_parent, held));
            }
        });
        drop(body);
        items.sort_by_key(|(key, ..)| shard_of(key));
        let mut out = Output::default();
        let mut opened = Vec::new();
        let mut locked = None;
        for (key, is_root, held) in items {
            let shard = self.lock_shard(&mut locked, &key);
            {
                match self.cached(shard, &key) {
                    Some(Cached::Kept { at, .. }) => {
                        self.metrics
                            .late_span_age
                            .observe(now.saturating_duration_since(at).as_secs_f64());
                        self.metrics.late_spans_kept.inc();
                        out.spans.push(held);
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
                let size = held.encoded.len();
                let trace = self.entry(shard, key, now, &mut opened);
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
                    out.append(self.decide_locked(shard, key, None, now, DecideReason::TraceSize));
                }
            }
        }
        // Release the last shard before deciding more: `enforce_bounds` locks shards one at
        // a time, and holding one here would deadlock on it (or on another thread's tick).
        drop(locked);
        self.register_opened(opened);
        out.append(self.enforce_bounds(now));
        out
    }

    /// Takes a batch of logs: logs with a trace id join their trace (or follow its
    /// remembered decision); logs without one pass or are dropped, as configured. Only logs
    /// that leave at once are decoded (to be enriched).
    pub fn ingest_logs(&self, data: Logs, now: Instant) -> Output {
        let mut out = Output::default();
        let body = data.to_bytes();
        let mut items: Vec<(TraceKey, Held)> = Vec::with_capacity(data.item_count());
        for_each_item(&body, |origin, record| {
            let held = Held {
                origin: origin.clone(),
                encoded: record.into(),
            };
            // Field 9 is trace_id (field 0 never occurs: no parent to look for).
            match item_key(record, 9, 0).0 {
                Some(key) => items.push((key, held)),
                None => match self.cfg.logs_without_trace {
                    LogsWithoutTrace::Pass => {
                        self.metrics.logs_passed.inc();
                        out.logs.push(held);
                    }
                    LogsWithoutTrace::Drop => {
                        self.metrics.logs_dropped_no_trace.inc();
                    }
                },
            }
        });
        drop(body);
        items.sort_by_key(|(key, _)| shard_of(key));
        let mut opened = Vec::new();
        let mut locked = None;
        for (key, held) in items {
            let shard = self.lock_shard(&mut locked, &key);
            {
                match self.cached(shard, &key) {
                    Some(Cached::Kept { summary, .. }) => {
                        self.metrics.logs_late_kept.inc();
                        let extra = summary.encoded_attributes(&self.cfg.enrichment, true);
                        out.logs.push(self.enriched(held, &summary, true, &extra));
                        continue;
                    }
                    Some(Cached::Dropped { .. }) => {
                        if self.keeps_anyway(held.severity()) {
                            self.metrics.logs_kept_by_severity.inc();
                            let unsampled = Summary::unsampled();
                            let extra = unsampled.encoded_attributes(&self.cfg.enrichment, false);
                            out.logs
                                .push(self.enriched(held, &unsampled, false, &extra));
                        } else {
                            self.metrics.logs_late_dropped.inc();
                        }
                        continue;
                    }
                    None => {}
                }
                let size = held.encoded.len();
                self.metrics.logs_joined.inc();
                let trace = self.entry(shard, key, now, &mut opened);
                trace.bytes += size;
                trace.logs.push(held);
                self.bytes.fetch_add(size, Ordering::Relaxed);
                if self.too_big(trace) {
                    out.append(self.decide_locked(shard, key, None, now, DecideReason::TraceSize));
                }
            }
        }
        // Release the last shard before deciding more: `enforce_bounds` locks shards one at
        // a time, and holding one here would deadlock on it (or on another thread's tick).
        drop(locked);
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

    /// The shard of `key`, locked: the one in `locked` when it is that shard (items are
    /// sorted by shard, so each is locked once per batch), else after releasing it.
    fn lock_shard<'a, 'g>(
        &'a self,
        locked: &'g mut Option<(usize, MutexGuard<'a, Shard>)>,
        key: &TraceKey,
    ) -> &'g mut Shard {
        let index = shard_of(key);
        if locked.as_ref().is_none_or(|(i, _)| *i != index) {
            *locked = None;
            *locked = Some((index, self.shards[index].lock()));
        }
        &mut locked.as_mut().expect("locked just above").1
    }

    fn cached(&self, shard: &Shard, key: &TraceKey) -> Option<Cached> {
        shard
            .kept
            .get(key)
            .or_else(|| shard.dropped.get(key))
            .cloned()
    }

    fn keeps_anyway(&self, severity_number: i32) -> bool {
        self.keep_severity.is_some_and(|min| severity_number >= min)
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
        let started = std::time::Instant::now();
        // Policies reading attributes see every item decoded; the others see scalars, and
        // dropped traces (most of them) are never decoded further.
        let view = if self.full_decode {
            entry.decoded(key)
        } else {
            entry.scalars(key, false)
        };
        let verdict = self.policies.decide(&view, now);
        self.metrics
            .decision_latency
            .observe(started.elapsed().as_secs_f64() * 1e6);
        self.metrics
            .decision_delay
            .observe(now.saturating_duration_since(first_seen).as_secs_f64());
        self.metrics.record_verdict(&verdict, reason);
        if let Some(bus) = self.verdicts.as_ref().filter(|b| b.has_listeners()) {
            let logs_kept = if verdict.sampled {
                entry.logs.len()
            } else {
                view.logs
                    .iter()
                    .filter(|l| self.keeps_anyway(l.record.severity_number))
                    .count()
            };
            super::outcome::publish(
                bus,
                &key,
                &verdict,
                reason,
                &view,
                &entry.spans,
                logs_kept as u64,
            );
        }
        if verdict.sampled {
            let view = if self.full_decode {
                view
            } else {
                entry.scalars(key, true)
            };
            let summary = Arc::new(Summary::of(&view, &verdict));
            shard.kept.insert(
                key,
                Cached::Kept {
                    summary: summary.clone(),
                    at: now,
                },
            );
            self.release_kept(entry, view, summary, key)
        } else {
            shard.dropped.insert(key, Cached::Dropped { at: now });
            self.release_dropped(entry, view, key)
        }
    }

    fn release(&self, entry: &Entry) {
        self.traces.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(entry.bytes, Ordering::Relaxed);
    }

    /// What a kept trace sends downstream: its spans as they arrived (unless its logs become
    /// span events), its logs with the verdict's attributes appended.
    fn release_kept(
        &self,
        entry: Entry,
        view: TraceData,
        summary: Arc<Summary>,
        key: TraceKey,
    ) -> Output {
        let spans = if self.cfg.attach_logs_as_span_events && !entry.logs.is_empty() {
            let logs: Vec<LogEntry> = if self.full_decode {
                view.logs
            } else {
                entry.logs.iter().map(Held::log_entry).collect()
            };
            let mut spans: Vec<SpanEntry> = entry.spans.iter().map(Held::span_entry).collect();
            super::enrich::attach_as_events(&mut spans, &logs);
            spans
                .into_iter()
                .map(|s| Held::new(s.origin, &s.span))
                .collect()
        } else {
            entry.spans
        };
        let extra = summary.encoded_attributes(&self.cfg.enrichment, true);
        let logs: Vec<Held> = entry
            .logs
            .into_iter()
            .map(|held| self.enriched(held, &summary, true, &extra))
            .collect();
        self.metrics.logs_kept.inc_by(logs.len() as u64);
        Output {
            spans,
            logs,
            decided: vec![(key, true)],
            summaries: vec![(key, summary)],
        }
    }

    /// What a dropped trace sends downstream: the logs `keep_logs_at_or_above` rescues.
    fn release_dropped(&self, entry: Entry, view: TraceData, key: TraceKey) -> Output {
        let held_logs = entry.logs.len();
        let logs: Vec<Held> = match self.keep_severity {
            None => Vec::new(),
            Some(_) => {
                let unsampled = Summary::unsampled();
                let extra = unsampled.encoded_attributes(&self.cfg.enrichment, false);
                // `view.logs` holds the severities of `entry.logs`, in the same order.
                entry
                    .logs
                    .into_iter()
                    .zip(&view.logs)
                    .filter(|(_, seen)| self.keeps_anyway(seen.record.severity_number))
                    .map(|(held, _)| self.enriched(held, &unsampled, false, &extra))
                    .collect()
            }
        };
        self.metrics.logs_kept_by_severity.inc_by(logs.len() as u64);
        self.metrics
            .logs_dropped
            .inc_by((held_logs - logs.len()) as u64);
        Output {
            spans: Vec::new(),
            logs,
            decided: vec![(key, false)],
            summaries: Vec::new(),
        }
    }

    /// `held` with the verdict's attributes: `extra` appended to its bytes, or (when it
    /// already has attributes under the prefix, which must be replaced) decoded, enriched
    /// and encoded again.
    fn enriched(&self, held: Held, summary: &Summary, sampled: bool, extra: &[u8]) -> Held {
        match Summary::enrich_encoded(&self.cfg.enrichment, &held.encoded, extra) {
            Some(encoded) => Held {
                origin: held.origin,
                encoded,
            },
            None => {
                let mut entry = held.log_entry();
                summary.enrich(&self.cfg.enrichment, &mut entry.record, sampled);
                Held::new(entry.origin, &entry.record)
            }
        }
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

/// Regroups released items into the encoding of an export request: one resource group
/// (ResourceSpans / ResourceLogs) per origin batch, the items' own bytes inside. Both
/// signals nest the same way: field 1 → resource 1, scope group 2 → scope 1, items 2, and
/// schema_url 3 at both levels.
fn envelope(items: Vec<Held>) -> Vec<u8> {
    let groups = group_by_origin(items.into_iter().map(|h| (h.origin, h.encoded)));
    let mut body = Vec::new();
    let mut scoped = Vec::new();
    let mut group = Vec::new();
    for (origin, items) in groups {
        scoped.clear();
        wire::put_len_field(&mut scoped, 1, &origin.scope.encode_to_vec());
        for item in &items {
            wire::put_len_field(&mut scoped, 2, item);
        }
        if !origin.scope_schema_url.is_empty() {
            wire::put_len_field(&mut scoped, 3, origin.scope_schema_url.as_bytes());
        }
        group.clear();
        wire::put_len_field(&mut group, 1, &origin.resource.encode_to_vec());
        wire::put_len_field(&mut group, 2, &scoped);
        if !origin.resource_schema_url.is_empty() {
            wire::put_len_field(&mut group, 3, origin.resource_schema_url.as_bytes());
        }
        wire::put_len_field(&mut body, 1, &group);
    }
    body
}

/// Regroups released spans into an OTLP request (encoded).
pub fn to_traces(spans: Vec<Held>) -> Traces {
    let count = spans.len();
    Traces::from_encoded(envelope(spans).into(), count)
}

/// Regroups released logs into an OTLP request (encoded).
pub fn to_logs(logs: Vec<Held>) -> Logs {
    let count = logs.len();
    Logs::from_encoded(envelope(logs).into(), count)
}

/// How long to wait between ticks: often enough that a trace is decided within 100 ms of
/// its due time, never more often than every 10 ms.
pub fn tick_interval(cfg: &TailSamplingConfig) -> Duration {
    let wait = cfg.decision_wait.get();
    (wait / 10).clamp(Duration::from_millis(10), Duration::from_millis(100))
}
