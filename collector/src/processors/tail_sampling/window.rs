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

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use prost::Message;

use super::config::{LogsWithoutTrace, TailSamplingConfig};
use super::decisions::{
    DecisionRecord, DecisionRing, Items, Packed, RecordParts, RecordSummary, RingSettings,
    UnreadSummary,
};
use super::enrich::Summary;
pub use super::metrics::DecideReason;
use super::metrics::WindowMetrics;
use super::policy::{Explain, Policies, PolicyConfig, Verdict};
use super::trace::{
    decode_log, decode_span, DecodeError, LogEntry, Origin, Reads, SpanEntry, TraceData,
};
use crate::pipeline::{Logs, Payload, Traces};
use weft_proto::common::v1::InstrumentationScope;
#[cfg(test)]
use weft_proto::logs::v1::LogRecord;
use weft_proto::resource::v1::Resource;
#[cfg(test)]
use weft_proto::trace::v1::Span;
use weft_proto::wire::{self, Fields, Value as WireValue};

const SHARDS: usize = 64;
/// How long past `decision_wait` replayed traces wait at most for data to flow again after a
/// restart (see [`Window::hold_replayed`]).
pub const REPLAY_HOLD_MAX: Duration = Duration::from_secs(30);

type TraceKey = [u8; 16];

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
/// allocation of exactly its size. When the trace is decided, only what the policies read is
/// decoded ([`Entry::view`]); a kept trace is decoded again for its summary when the
/// policies did not read enough for it.
struct Entry {
    first_seen: Instant,
    spans: Vec<Held>,
    logs: Vec<Held>,
    bytes: usize,
    /// Index in `spans` of the first root span (no parent), when one arrived.
    root: Option<u32>,
}

/// One span or log record as it waits, and as a kept span leaves: where it came from, and
/// its protobuf encoding (copied from the request it arrived in). The encoding is shared by
/// the export and the logs' enrichment; the decisions ring packs its own copy
/// ([`super::decisions::Packed`]).
#[derive(Clone, Debug)]
pub struct Held {
    pub origin: Arc<Origin>,
    pub encoded: Arc<[u8]>,
}

impl Held {
    fn new(origin: Arc<Origin>, item: &impl Message) -> Self {
        Self {
            origin,
            encoded: encode_shared(item),
        }
    }

    /// The span it holds, decoded (for tests: production code decodes fallibly).
    #[cfg(test)]
    pub fn span(&self) -> Span {
        decode_span(&self.encoded, Reads::ALL_SPAN).expect("test spans decode")
    }

    /// The log record it holds, decoded (for tests: production code decodes fallibly).
    #[cfg(test)]
    pub fn record(&self) -> LogRecord {
        decode_log(&self.encoded, Reads::ALL_LOG).expect("test logs decode")
    }

    /// A held log record's severity number, read without decoding the rest (0 when it does
    /// not decode: such a record is then not rescued by `keep_logs_at_or_above`).
    fn severity(&self) -> i32 {
        decode_log(&self.encoded, Reads::LOG_SEVERITY)
            .map(|l| l.severity_number)
            .unwrap_or_default()
    }

    fn span_entry(&self) -> Result<SpanEntry, String> {
        Ok(SpanEntry {
            origin: self.origin.clone(),
            span: decode_span(&self.encoded, Reads::ALL_SPAN)?,
            encoded_len: self.encoded.len(),
        })
    }

    fn log_entry(&self) -> Result<LogEntry, String> {
        Ok(LogEntry {
            origin: self.origin.clone(),
            record: decode_log(&self.encoded, Reads::ALL_LOG)?,
        })
    }
}

/// Calls `f` with every item (span or log record: field 2 of field 2 of field 1 in both
/// signals) of an encoded export request, and the origin it arrived under. The resource and
/// scope are decoded once per group; the items stay encoded. With `keep_wire` the origins
/// also keep the bytes they were decoded from ([`Origin::set_wire_from`]).
fn for_each_item(body: &[u8], keep_wire: bool, mut f: impl FnMut(&Arc<Origin>, &[u8])) {
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
        let mut resource_bytes: &[u8] = &[];
        let mut resource_schema_url = String::new();
        for (n, bytes) in len_fields(group) {
            match n {
                1 => {
                    resource = Resource::decode(bytes).unwrap_or_default();
                    resource_bytes = bytes;
                }
                3 => resource_schema_url = String::from_utf8_lossy(bytes).into_owned(),
                _ => {}
            }
        }
        for (n, scoped) in len_fields(group) {
            if n != 2 {
                continue;
            }
            let mut scope = InstrumentationScope::default();
            let mut scope_bytes: &[u8] = &[];
            let mut scope_schema_url = String::new();
            for (n, bytes) in len_fields(scoped) {
                match n {
                    1 => {
                        scope = InstrumentationScope::decode(bytes).unwrap_or_default();
                        scope_bytes = bytes;
                    }
                    3 => scope_schema_url = String::from_utf8_lossy(bytes).into_owned(),
                    _ => {}
                }
            }
            let mut origin = Origin {
                resource: resource.clone(),
                resource_schema_url: resource_schema_url.clone(),
                scope,
                scope_schema_url,
                ..Default::default()
            };
            if keep_wire {
                origin.set_wire_from(resource_bytes, scope_bytes);
            }
            let origin = Arc::new(origin);
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
    let mut fields = Fields::new(item);
    while let Some(Ok((n, v))) = fields.next() {
        match v {
            WireValue::Len(bytes) if n == number => key = trace_key(bytes),
            WireValue::Len(bytes) if n == parent => has_parent = !bytes.is_empty(),
            // The rest of a run of attributes (or any repeated field) at once.
            WireValue::Len(_) => fields.skip_run(n),
            _ => {}
        }
    }
    (key, has_parent)
}

/// Whether any policy reads more than scalars: attributes, bodies, events or links (what
/// used to require decoding held items whole). Derived from the policies' own `reads()`.
pub fn policies_read_attributes(policies: &[PolicyConfig]) -> bool {
    policies.iter().any(|p| {
        p.reads().intersects(
            Reads::SPAN_ATTRIBUTES
                | Reads::SPAN_EVENTS
                | Reads::SPAN_LINKS
                | Reads::LOG_BODY
                | Reads::LOG_ATTRIBUTES,
        )
    })
}

/// What a kept trace's [`Summary`] reads: the root span (its parent, name and resource), the
/// trace's times and error status.
/// Held items as a policy reading `reads` sees them (the decisions ring decodes what it
/// holds of a decided trace with it, when the status page asks).
pub(super) fn decode_held(
    trace_id: TraceKey,
    spans: &[Held],
    logs: &[Held],
    reads: Reads,
) -> Result<TraceData, DecodeError> {
    TraceData::decode(
        trace_id,
        spans.iter().map(|h| (&h.origin, &h.encoded[..])),
        logs.iter().map(|h| (&h.origin, &h.encoded[..])),
        reads,
    )
}

/// The `service.name` of the resource an item came from.
pub(super) fn service_of(origin: &Origin) -> Option<&str> {
    origin
        .resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            weft_proto::common::v1::any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

/// A span's name off its bytes, cheaply: the first `name` field, the one encoders write (a
/// span that repeats the field is read by its last, as protobuf reads it, everywhere else:
/// [`scan_summary`]); `None` when the bytes stop scanning before it, empty when absent.
pub(super) fn first_span_name(encoded: &[u8]) -> Option<&[u8]> {
    for field in Fields::new(encoded) {
        match field {
            Ok((5, WireValue::Len(name))) => return Some(name),
            Ok(_) => {}
            Err(()) => return None,
        }
    }
    Some(&[])
}

/// The [`Summary`] of a trace's held spans (kept by `policy`, or dropped: `None`), read off
/// their bytes without decoding them: one walk over each span's fields, allocating only the
/// root's name. What the decisions ring reads of a dropped trace's spans; the same as
/// [`Summary::of`] on those spans decoded (the unit tests check it), for a fraction of the
/// cost. Fields that do not scan count as absent.
pub(super) fn scan_summary(spans: &[Held], policy: Option<String>) -> Summary {
    let mut start = u64::MAX;
    let mut end = 0u64;
    let mut error = false;
    let mut root: Option<(&Held, &[u8])> = None;
    for held in spans {
        let (mut parent_empty, mut name, mut span_start, mut span_end, mut code) =
            (true, &[][..], 0u64, 0u64, 0u64);
        for field in Fields::new(&held.encoded) {
            match field {
                Ok((4, WireValue::Len(b))) => parent_empty = b.is_empty(),
                Ok((5, WireValue::Len(b))) => name = b,
                Ok((7, WireValue::I64(v))) => span_start = v,
                Ok((8, WireValue::I64(v))) => span_end = v,
                Ok((15, WireValue::Len(status))) => {
                    for f in Fields::new(status) {
                        if let Ok((3, WireValue::Varint(c))) = f {
                            code = c;
                        }
                    }
                }
                Ok(_) => {}
                Err(()) => break,
            }
        }
        start = start.min(span_start);
        end = end.max(span_end);
        error |= code == weft_proto::trace::v1::status::StatusCode::Error as u64;
        if parent_empty && root.is_none() {
            root = Some((held, name));
        }
    }
    let root_service = root.and_then(|(held, _)| service_of(&held.origin).map(str::to_string));
    Summary {
        policy,
        root_service,
        root_operation: root.map(|(_, name)| String::from_utf8_lossy(name).into_owned()),
        duration_ms: if spans.is_empty() || end <= start {
            0
        } else {
            ((end - start) / 1_000_000) as i64
        },
        error,
        span_count: spans.len() as i64,
    }
}

/// What a verdict's [`Summary`] reads.
pub(super) const SUMMARY_READS: Reads = Reads::SPAN_PARENT
    .union(Reads::SPAN_NAME)
    .union(Reads::SPAN_TIMES)
    .union(Reads::SPAN_STATUS)
    .union(Reads::RESOURCE);

impl Entry {
    /// Its held items, for the decisions ring to pack.
    fn items(&self) -> Items<'_> {
        Items {
            spans: &self.spans,
            logs: &self.logs,
        }
    }

    /// The trace as a policy reading `reads` sees it: only those parts of the held items
    /// decoded (see [`TraceData::decode`]). Most traces (the dropped ones) are never decoded
    /// further.
    fn view(&self, trace_id: TraceKey, reads: Reads) -> Result<TraceData, DecodeError> {
        decode_held(trace_id, &self.spans, &self.logs, reads)
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

/// Kept traces whose spans wait `attach_logs_wait` after their decision, decoded, for logs
/// still on their way to be attached as span events (`attach_logs_as_span_events`). Their
/// logs left at the decision; their spans, and the record of their decision, leave when
/// due.
#[derive(Default)]
struct Linger {
    traces: HashMap<TraceKey, Lingering>,
    /// (trace, due) in due order: every trace waits the same `attach_logs_wait`.
    order: VecDeque<(TraceKey, Instant)>,
}

struct Lingering {
    first_seen: Instant,
    spans: Vec<SpanEntry>,
    summary: Arc<Summary>,
}

/// The window of one `tail_sampling` processor id, shared by its traces and logs pipelines.
pub struct Window {
    cfg: Arc<TailSamplingConfig>,
    policies: Arc<Policies>,
    shards: Box<[Mutex<Shard>]>,
    /// (trace, first_seen) in arrival order; may hold stale entries for traces decided early.
    order: Mutex<VecDeque<(TraceKey, Instant)>>,
    /// (trace, first_seen, due) for traces whose root arrived, in due order.
    root_due: Mutex<VecDeque<(TraceKey, Instant, Instant)>>,
    traces: AtomicUsize,
    bytes: AtomicUsize,
    keep_severity: Option<i32>,
    /// What deciding decodes of a held trace: what the policies read, and the severities
    /// when `keep_logs_at_or_above` may rescue logs of dropped traces.
    reads: Reads,
    pub(super) metrics: WindowMetrics,
    /// The decisions ring, once the status page turned it on (see [`super::decisions`]).
    ring: OnceLock<Arc<DecisionRing>>,
    /// Kept spans waiting for late logs. Locked after a shard, never before one.
    linger: Mutex<Linger>,
    /// Where decisions are told, for those who listen (see `outcome`).
    verdicts: Option<Arc<crate::verdicts::VerdictBus>>,
    /// After a restart: until when the replayed traces wait (see [`Window::hold_replayed`]).
    replay_hold: Mutex<Option<ReplayHold>>,
    /// Whether the hold still waits for the first batch after the restart (the ingest path
    /// checks only this).
    replay_waits_for_data: AtomicBool,
}

/// Replayed traces held back after a restart.
struct ReplayHold {
    /// When the replay began: traces first seen before it are the replayed ones.
    resumed: Instant,
    /// From when they are decided.
    until: Instant,
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
        let mut reads = policies.reads();
        if keep_severity.is_some() {
            reads = reads | Reads::LOG_SEVERITY;
        }
        Self {
            reads,
            cfg,
            policies: Arc::new(policies),
            shards,
            order: Mutex::new(VecDeque::new()),
            root_due: Mutex::new(VecDeque::new()),
            traces: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            keep_severity,
            metrics,
            ring: OnceLock::new(),
            linger: Mutex::new(Linger::default()),
            verdicts: None,
            replay_hold: Mutex::new(None),
            replay_waits_for_data: AtomicBool::new(false),
        }
    }

    /// Holds the traces about to be replayed (first seen before `resumed`) back until data
    /// flows again: they are decided `decision_wait` after the first batch that arrives after
    /// the restart, or [`REPLAY_HOLD_MAX`] past `decision_wait` from `resumed` when none does,
    /// whichever comes first — never before they waited `decision_wait` in all. What a crash
    /// held back of their traces (the parts senders retry, the backlog a Kafka consumer reads
    /// once it has rejoined its group) arrives only after the restart; deciding the replayed
    /// parts at once, because they were overdue, would decide them without it, and the rest
    /// would then follow that decision as late data.
    pub fn hold_replayed(&self, resumed: Instant) {
        let until = resumed + self.cfg.decision_wait.get() + REPLAY_HOLD_MAX;
        *self.replay_hold.lock() = Some(ReplayHold { resumed, until });
        self.replay_waits_for_data.store(true, Ordering::Release);
    }

    /// The replay is over: the replayed traces whose root span had arrived are decided with
    /// the others, once the hold is over, not `decision_wait_after_root_received` after a
    /// root that arrived before the restart. (A replayed trace whose root arrives after the
    /// restart is decided that long after it, as any.)
    pub fn replayed(&self) {
        self.root_due.lock().clear();
    }

    /// A batch arrived at `at` (not a replayed one): replayed traces held back are decided
    /// `decision_wait` from now.
    pub fn data_arrived(&self, at: Instant) {
        if !self.replay_waits_for_data.load(Ordering::Acquire) {
            return;
        }
        if self.replay_waits_for_data.swap(false, Ordering::AcqRel) {
            if let Some(hold) = self.replay_hold.lock().as_mut() {
                hold.until = hold.until.min(at + self.cfg.decision_wait.get());
            }
        }
    }

    /// At `now`: the time before which traces first seen are still held back after a
    /// restart (`None` once the hold is over).
    fn replay_held_before(&self, now: Instant) -> Option<Instant> {
        let mut hold = self.replay_hold.lock();
        match hold.as_ref() {
            Some(h) if now < h.until => Some(h.resumed),
            Some(_) => {
                *hold = None;
                None
            }
            None => None,
        }
    }

    /// Turns the decisions ring on (once: a second call gets the same ring, whatever its
    /// settings). Turn it on before data flows; decisions made before are not in it.
    pub fn enable_ring(&self, settings: RingSettings) -> Arc<DecisionRing> {
        self.ring
            .get_or_init(|| {
                Arc::new(DecisionRing::new(settings).with_policies(self.policies.clone()))
            })
            .clone()
    }

    /// Whether origins keep their wire form from ingest: only the decisions ring copies it,
    /// when it holds traces' items (an origin without one encodes it when asked).
    fn keeps_wire(&self) -> bool {
        self.ring.get().is_some_and(|r| r.holds_items(true))
    }

    /// The decisions ring, when turned on.
    pub fn ring(&self) -> Option<&Arc<DecisionRing>> {
        self.ring.get()
    }

    /// The configuration the window runs with.
    pub fn config(&self) -> &TailSamplingConfig {
        &self.cfg
    }

    /// The `type` of the top-level policy named `name`.
    pub fn policy_type(&self, name: &str) -> Option<&'static str> {
        self.policies.type_of(name)
    }

    /// When the oldest trace held now arrived, looking at most at the 64 oldest arrivals
    /// (the arrival FIFO may name traces already decided early); `None` when none of them
    /// is held. For the status page: cheap, and never holds two locks.
    pub fn oldest_arrival(&self) -> Option<Instant> {
        let front: Vec<(TraceKey, Instant)> = self.order.lock().iter().take(64).copied().collect();
        front.into_iter().find_map(|(key, first_seen)| {
            let shard = self.shards[shard_of(&key)].lock();
            shard
                .live
                .get(&key)
                .filter(|e| e.first_seen == first_seen)
                .map(|e| e.first_seen)
        })
    }

    /// Decisions remembered now: (kept, dropped). Locks each shard once.
    pub fn cached_decisions(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(k, d), s| {
            let s = s.lock();
            (k + s.kept.map.len(), d + s.dropped.map.len())
        })
    }

    /// Whether `trace_id` is held now, waiting for its decision.
    pub fn holds(&self, trace_id: &TraceKey) -> bool {
        self.shards[shard_of(trace_id)]
            .lock()
            .live
            .contains_key(trace_id)
    }

    /// Kept traces whose spans wait for late logs now.
    pub fn lingering_count(&self) -> usize {
        self.linger.lock().traces.len()
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
        for_each_item(&body, self.keeps_wire(), |origin, span| {
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
                if is_root && trace.root.is_none() {
                    trace.root = Some((trace.spans.len() - 1) as u32);
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
        for_each_item(&body, self.keeps_wire(), |origin, record| {
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
                        if let Some(ring) = self.ring.get() {
                            ring.add_late_log(&key, &held);
                        }
                        if self.cfg.attach_logs_as_span_events {
                            self.attach_late(&key, &held);
                        }
                        let extra = summary.encoded_attributes(&self.cfg.enrichment, true);
                        out.logs
                            .push(self.enriched_or_as_received(held, &summary, true, &extra));
                        continue;
                    }
                    Some(Cached::Dropped { .. }) => {
                        if self.keeps_anyway(held.severity()) {
                            self.metrics.logs_kept_by_severity.inc();
                            let unsampled = Summary::unsampled();
                            let extra = unsampled.encoded_attributes(&self.cfg.enrichment, false);
                            out.logs.push(
                                self.enriched_or_as_received(held, &unsampled, false, &extra),
                            );
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
        let began = Instant::now();
        // Replayed traces are the oldest: while they are held back, so is what queues behind
        // them (nothing that arrived since is due before the hold ends).
        let held_before = self.replay_held_before(now);
        loop {
            let next = {
                let mut order = self.order.lock();
                match order.front() {
                    Some((_, first_seen))
                        if *first_seen + wait <= now
                            && held_before.is_none_or(|resumed| *first_seen >= resumed) =>
                    {
                        order.pop_front()
                    }
                    _ => None,
                }
            };
            let Some((key, first_seen)) = next else { break };
            let due = (first_seen + wait, began);
            out.append(self.decide_due(key, first_seen, now, DecideReason::Wait, due));
        }
        loop {
            let next = {
                let mut root_due = self.root_due.lock();
                match root_due.front() {
                    Some((_, _, at)) if *at <= now => root_due.pop_front(),
                    _ => None,
                }
            };
            let Some((key, first_seen, due)) = next else {
                break;
            };
            let due = (due, began);
            out.append(self.decide_due(key, first_seen, now, DecideReason::Root, due));
        }
        out.append(self.release_lingering(now, false));
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
                root: None,
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

    /// As [`Window::decide`], for a trace whose deadline was `due.0`, in a tick that began
    /// (in real time) at `due.1`: counts how late the decision is — behind its deadline at
    /// `now`, plus the time the tick has spent so far — if the trace was still held.
    fn decide_due(
        &self,
        key: TraceKey,
        first_seen: Instant,
        now: Instant,
        reason: DecideReason,
        due: (Instant, Instant),
    ) -> Output {
        let mut shard = self.shards[shard_of(&key)].lock();
        let Some(entry) = Self::take_held(&mut shard, key, Some(first_seen)) else {
            return Output::default();
        };
        let out = self.decide_entry(&mut shard, key, entry, now, reason);
        let (deadline, began) = due;
        let late = now.saturating_duration_since(deadline) + began.elapsed();
        self.metrics.decision_lateness.observe(late.as_secs_f64());
        out
    }

    fn decide_locked(
        &self,
        shard: &mut Shard,
        key: TraceKey,
        first_seen: Option<Instant>,
        now: Instant,
        reason: DecideReason,
    ) -> Output {
        match Self::take_held(shard, key, first_seen) {
            Some(entry) => self.decide_entry(shard, key, entry, now, reason),
            None => Output::default(),
        }
    }

    /// Takes trace `key` out of the shard if it holds it — with `first_seen`, only the
    /// entry opened then (not a later one under the same id) — in one lookup.
    fn take_held(shard: &mut Shard, key: TraceKey, first_seen: Option<Instant>) -> Option<Entry> {
        match shard.live.entry(key) {
            Slot::Occupied(held) if first_seen.is_none_or(|t| t == held.get().first_seen) => {
                Some(held.remove())
            }
            _ => None,
        }
    }

    /// Decides a trace taken out of its shard.
    fn decide_entry(
        &self,
        shard: &mut Shard,
        key: TraceKey,
        entry: Entry,
        now: Instant,
        reason: DecideReason,
    ) -> Output {
        self.release(&entry);
        let first_seen = entry.first_seen;
        let started = std::time::Instant::now();
        // Policies see what they declared they read; dropped traces (most of them) are never
        // decoded further. With the decisions ring on, the policies explain themselves (see
        // `explain`), and a dropped trace's summary is read off its bytes (`scan_summary`),
        // not decoded.
        let ring = self.ring.get();
        let reads = self.reads;
        let explain = self.explain();
        let view = match entry.view(key, reads) {
            Ok(view) => view,
            Err(e) => return self.drop_undecodable(shard, &entry, key, now, reason, &e),
        };
        let mut verdict = self.policies.decide_explained(&view, now, explain);
        // A record that will hold none of the trace's items cannot explain later the
        // policies that asked for something (kept it, dropped it, inverted): explain those
        // now, from this view (see `explain`).
        if ring.is_some_and(|r| !r.holds_items(verdict.sampled)) {
            self.explain_asked(&mut verdict, &view, now);
        }
        self.metrics
            .decision_latency
            .observe(started.elapsed().as_secs_f64() * 1e6);
        self.metrics
            .decision_delay
            .observe(now.saturating_duration_since(first_seen).as_secs_f64());
        self.report_policy_errors(&verdict, &key);
        // What listeners on the verdict bus need, read before the entry is released (only
        // when someone listens).
        let outcome = self
            .verdicts
            .as_ref()
            .filter(|bus| bus.has_listeners())
            .map(|bus| {
                super::outcome::Outcome::read(bus, &view, reads, |reads| entry.view(key, reads))
            });
        // The ring's record of the decision, but for the verdict: that moves in last, once
        // the bus has read it.
        let mut record = None;
        let out = if verdict.sampled {
            let kept = match self.kept_parts(&entry, view, reads, &verdict, key) {
                Ok(kept) => kept,
                Err(e) => return self.drop_undecodable(shard, &entry, key, now, reason, &e),
            };
            self.metrics.record_verdict(&verdict, reason);
            shard.kept.insert(
                key,
                Cached::Kept {
                    summary: kept.summary.clone(),
                    at: now,
                },
            );
            if let Some(ring) = ring {
                let detail = ring.holds_items(true).then(|| Packed::new(entry.items()));
                let parts =
                    Self::record_parts(ring, key, reason, now, &entry, kept.summary.clone());
                record = Some((parts, detail));
            }
            self.release_kept(entry, kept, key, now)
        } else {
            self.metrics.record_verdict(&verdict, reason);
            shard.dropped.insert(key, Cached::Dropped { at: now });
            if let Some(ring) = ring {
                let summary = UnreadSummary::of_dropped(&entry.spans, entry.root, &view, reads);
                let parts = Self::record_parts(ring, key, reason, now, &entry, summary);
                // With `keep_dropped_detail` the spans and logs are copied in too.
                let detail = ring.holds_items(false).then(|| Packed::new(entry.items()));
                record = Some((parts, detail));
            }
            self.release_dropped(entry, view, key)
        };
        if let (Some(bus), Some(outcome)) = (self.verdicts.as_ref(), outcome) {
            outcome.publish(bus, &key, &verdict, reason, out.logs.len() as u64);
        }
        if let (Some(ring), Some((parts, detail))) = (ring, record) {
            ring.record(parts, verdict, now, detail);
        }
        out
    }

    /// What the policies explain at a decision: nothing without the decisions ring; with it,
    /// only those whose reason cannot be written later ([`Explain::Later`]: the stateful ones,
    /// whose state decided and only now is what it was, and those whose words need the
    /// trace's items). The others are explained when the page asks (most decided traces are
    /// never looked at): from the trace's items when the ring holds them, or from its summary
    /// for a policy that did not ask for it ([`Policies::explain_not_sampled`]). For a record
    /// that will hold no items, a policy that did ask is explained at once from the
    /// decision's view ([`Window::explain_asked`]). Formatting every reason at every decision
    /// cost several percent of the sampler's CPU (BENCHMARKS.md).
    fn explain(&self) -> Explain {
        match self.ring.get() {
            None => Explain::Nothing,
            Some(_) => Explain::Later,
        }
    }

    /// Writes, from `view`, the reasons the record could not write later without the
    /// trace's items: those of the policies in `verdict` that asked for something (any
    /// decision but `NotSampled`) and were left for later ([`Explain::Later`] wrote the
    /// others' already).
    fn explain_asked(&self, verdict: &mut Verdict, view: &TraceData, now: Instant) {
        for (i, (name, decision)) in verdict.per_policy.iter().enumerate() {
            if *decision == super::policy::Decision::NotSampled
                || verdict.reasons.get(i).is_some_and(|r| !r.is_empty())
            {
                continue;
            }
            let reason = self.policies.explain(name, view, now).unwrap_or_default();
            if !reason.is_empty() {
                // The verdict keeps reasons only once one is written (`Verdict::reasons`).
                verdict
                    .reasons
                    .resize(verdict.per_policy.len(), String::new());
                verdict.reasons[i] = reason;
            }
        }
    }

    /// What `ring`'s record of a decision says besides the verdict.
    fn record_parts(
        ring: &DecisionRing,
        key: TraceKey,
        reason: DecideReason,
        now: Instant,
        entry: &Entry,
        summary: impl Into<RecordSummary>,
    ) -> RecordParts {
        RecordParts {
            trace_id: key,
            decided_at: ring.wall_time(now),
            when: reason,
            waited: now.saturating_duration_since(entry.first_seen),
            summary: summary.into(),
            log_count: entry.logs.len(),
            bytes: entry.bytes,
        }
    }

    fn release(&self, entry: &Entry) {
        self.traces.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(entry.bytes, Ordering::Relaxed);
    }

    /// Logs what policies reported on this trace; a policy that failed (`error_mode:
    /// propagate`) is counted, as the Collector counts it, and logged at debug, as it does.
    fn report_policy_errors(&self, verdict: &Verdict, key: &TraceKey) {
        for e in &verdict.errors {
            if e.failed {
                self.metrics.policy_evaluation_errors.inc();
                tracing::debug!(
                    component = %self.metrics.processor(),
                    trace_id = %hex::encode(key),
                    policy = %e.policy,
                    error = %e.message,
                    "sampling policy failed on this trace; its decision does not count"
                );
            } else {
                tracing::warn!(
                    component = %self.metrics.processor(),
                    trace_id = %hex::encode(key),
                    policy = %e.policy,
                    error = %e.message,
                    "sampling policy let evaluation errors through (error_mode: ignore)"
                );
            }
        }
    }

    /// A trace whose held items cannot all be decoded is dropped without a decision: logged
    /// with its id, counted, and remembered as dropped so its late items follow. The wire
    /// checks at the receiver make this unreachable unless they are wrong; it must then cost
    /// one trace, never the decision tick.
    fn drop_undecodable(
        &self,
        shard: &mut Shard,
        entry: &Entry,
        key: TraceKey,
        now: Instant,
        reason: DecideReason,
        error: &DecodeError,
    ) -> Output {
        tracing::error!(
            component = %self.metrics.processor(),
            trace_id = %hex::encode(key),
            error = %error,
            spans = entry.spans.len(),
            log_records = entry.logs.len(),
            "a held item of this trace does not decode: the trace is dropped without a decision"
        );
        self.metrics.dropped_undecodable.inc();
        self.metrics.logs_dropped.inc_by(entry.logs.len() as u64);
        shard.dropped.insert(key, Cached::Dropped { at: now });
        let verdict = Verdict {
            sampled: false,
            decision: super::policy::Decision::NotSampled,
            policy: None,
            per_policy: Vec::new(),
            errors: Vec::new(),
            reasons: Vec::new(),
        };
        // Counted with the others by whoever listens (`samplingmetrics`: policy `none`).
        if let Some(bus) = self.verdicts.as_ref().filter(|bus| bus.has_listeners()) {
            super::outcome::Outcome::undecoded(entry.spans.len(), entry.logs.len())
                .publish(bus, &key, &verdict, reason, 0);
        }
        if let Some(ring) = self.ring.get() {
            let parts = Self::record_parts(ring, key, reason, now, entry, Arc::default());
            let record = DecisionRecord::new(parts, verdict, ring.explain_later(now))
                .with_failure(format!(
                    "dropped without a decision: {error} (a bug to report: the receiver's checks let it in)"
                ));
            ring.push(record, None);
        }
        Output {
            spans: Vec::new(),
            logs: Vec::new(),
            decided: vec![(key, false)],
            summaries: Vec::new(),
        }
    }

    /// What a kept trace needs decoded: its summary (from the decision's view when that read
    /// enough), its spans with their logs attached as events (with
    /// `attach_logs_as_span_events`), and its logs enriched with the verdict. `Err` when a
    /// held item does not decode.
    fn kept_parts(
        &self,
        entry: &Entry,
        view: TraceData,
        reads: Reads,
        verdict: &Verdict,
        key: TraceKey,
    ) -> Result<Kept, DecodeError> {
        let view = if reads.contains(SUMMARY_READS) {
            view
        } else {
            entry.view(key, SUMMARY_READS)?
        };
        let summary = Arc::new(Summary::of(&view, verdict));
        let linger = !self.cfg.attach_logs_wait.is_zero() && !entry.spans.is_empty();
        let spans = if self.cfg.attach_logs_as_span_events && (linger || !entry.logs.is_empty()) {
            let logs = decode_all(&entry.logs, "log record", Held::log_entry)?;
            let mut spans = decode_all(&entry.spans, "span", Held::span_entry)?;
            super::enrich::attach_as_events(&mut spans, &logs);
            if linger {
                KeptSpans::Lingering(spans)
            } else {
                KeptSpans::WithEvents(
                    spans
                        .into_iter()
                        .map(|s| Held::new(s.origin, &s.span))
                        .collect(),
                )
            }
        } else {
            KeptSpans::AsReceived
        };
        let extra = summary.encoded_attributes(&self.cfg.enrichment, true);
        let logs = entry
            .logs
            .iter()
            .enumerate()
            .map(|(index, held)| {
                self.enriched(held, &summary, true, &extra)
                    .map_err(|error| DecodeError {
                        item: "log record",
                        index,
                        error,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Kept {
            summary,
            spans,
            logs,
        })
    }

    /// What a kept trace sends downstream: its spans as they arrived (unless its logs became
    /// span events), its logs with the verdict's attributes. Spans waiting for late logs
    /// (see [`Linger`]) leave later, with the record of the decision.
    fn release_kept(&self, entry: Entry, kept: Kept, key: TraceKey, now: Instant) -> Output {
        self.metrics.logs_kept.inc_by(kept.logs.len() as u64);
        let spans = match kept.spans {
            KeptSpans::AsReceived => entry.spans,
            KeptSpans::WithEvents(spans) => spans,
            KeptSpans::Lingering(spans) => {
                let due = now + self.cfg.attach_logs_wait.get();
                let mut linger = self.linger.lock();
                linger.traces.insert(
                    key,
                    Lingering {
                        first_seen: entry.first_seen,
                        spans,
                        summary: kept.summary,
                    },
                );
                linger.order.push_back((key, due));
                return Output {
                    logs: kept.logs,
                    ..Output::default()
                };
            }
        };
        Output {
            spans,
            logs: kept.logs,
            decided: vec![(key, true)],
            summaries: vec![(key, kept.summary)],
        }
    }

    /// A log of a kept trace that arrived after the decision: attached to its span while the
    /// trace's spans wait (see [`Linger`]); counted either way. It also leaves on its own
    /// (enriched) in the logs pipeline, as every late log of a kept trace does.
    fn attach_late(&self, key: &TraceKey, held: &Held) {
        let mut linger = self.linger.lock();
        let Some(lingering) = linger.traces.get_mut(key) else {
            self.metrics.late_logs_not_attached.inc();
            return;
        };
        match held.log_entry() {
            Ok(log) => {
                let before: usize = lingering.spans.iter().map(|s| s.span.events.len()).sum();
                super::enrich::attach_as_events(&mut lingering.spans, &[log]);
                let after: usize = lingering.spans.iter().map(|s| s.span.events.len()).sum();
                if after > before {
                    self.metrics.late_logs_attached.inc();
                } else {
                    // Its span is not among the trace's spans.
                    self.metrics.late_logs_not_attached.inc();
                }
            }
            Err(error) => {
                self.metrics.late_logs_not_attached.inc();
                tracing::warn!(
                    component = %self.metrics.processor(),
                    trace_id = %hex::encode(key),
                    error = %error,
                    "a late log record does not decode: it is not attached to its span"
                );
            }
        }
    }

    /// Sends the spans of kept traces whose wait for late logs is over (`all`: every one,
    /// at shutdown), with the record of their decision.
    pub fn release_lingering(&self, now: Instant, all: bool) -> Output {
        let mut out = Output::default();
        let mut linger = self.linger.lock();
        while let Some(&(key, due)) = linger.order.front() {
            if !all && due > now {
                break;
            }
            linger.order.pop_front();
            let Some(lingering) = linger.traces.remove(&key) else {
                continue;
            };
            out.spans.extend(
                lingering
                    .spans
                    .into_iter()
                    .map(|s| Held::new(s.origin, &s.span)),
            );
            out.decided.push((key, true));
            out.summaries.push((key, lingering.summary));
        }
        out
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
                    .map(|(held, _)| self.enriched_or_as_received(held, &unsampled, false, &extra))
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
    /// and encoded again; `Err` when it must be decoded and does not decode.
    fn enriched(
        &self,
        held: &Held,
        summary: &Summary,
        sampled: bool,
        extra: &[u8],
    ) -> Result<Held, String> {
        if !self.cfg.enrichment.enabled {
            return Ok(held.clone());
        }
        match Summary::enrich_encoded(&self.cfg.enrichment, &held.encoded, extra) {
            Some(encoded) => Ok(Held {
                origin: held.origin.clone(),
                encoded,
            }),
            None => {
                let mut entry = held.log_entry()?;
                summary.enrich(&self.cfg.enrichment, &mut entry.record, sampled);
                Ok(Held::new(entry.origin, &entry.record))
            }
        }
    }

    /// [`Window::enriched`] for a log leaving on its own (late, or rescued by severity): one
    /// that does not decode goes on as received, without the verdict's attributes, and is
    /// logged — it was accepted, and its trace's fate does not depend on it.
    fn enriched_or_as_received(
        &self,
        held: Held,
        summary: &Summary,
        sampled: bool,
        extra: &[u8],
    ) -> Held {
        match self.enriched(&held, summary, sampled, extra) {
            Ok(enriched) => enriched,
            Err(error) => {
                tracing::warn!(
                    component = %self.metrics.processor(),
                    error = %error,
                    "a log record to enrich does not decode: it goes on as received, without the trace's verdict"
                );
                held
            }
        }
    }
}

/// The parts of a kept trace that needed decoding (see [`Window::kept_parts`]).
struct Kept {
    summary: Arc<Summary>,
    spans: KeptSpans,
    /// The logs, enriched.
    logs: Vec<Held>,
}

/// How a kept trace's spans leave.
enum KeptSpans {
    /// As they arrived.
    AsReceived,
    /// Now, with their logs attached as events.
    WithEvents(Vec<Held>),
    /// After `attach_logs_wait`, with their logs attached as events, late ones included.
    Lingering(Vec<SpanEntry>),
}

/// Every held item decoded with `decode`, or the first that fails.
fn decode_all<T>(
    items: &[Held],
    item: &'static str,
    decode: impl Fn(&Held) -> Result<T, String>,
) -> Result<Vec<T>, DecodeError> {
    items
        .iter()
        .enumerate()
        .map(|(index, h)| decode(h).map_err(|error| DecodeError { item, index, error }))
        .collect()
}

/// What the durable window (see [`super::wal`]) needs from the window.
impl Window {
    /// The earliest `first_seen` of the traces held now (`None` when empty). Scans every
    /// shard: called when the write-ahead log looks for segments to delete, not per item.
    pub fn oldest_first_seen(&self) -> Option<Instant> {
        // Kept spans waiting for late logs count as held: their decision is recorded when
        // they leave, and their data must stay in the log until then.
        let lingering = self
            .linger
            .lock()
            .traces
            .values()
            .map(|l| l.first_seen)
            .min();
        self.shards
            .iter()
            .filter_map(|s| s.lock().live.values().map(|e| e.first_seen).min())
            .chain(lingering)
            .min()
    }

    /// The trace ids held now (undecided); for a durable window's shutdown, which keeps
    /// them for the next start. Scans every shard.
    pub fn held_trace_ids(&self) -> Vec<TraceKey> {
        self.shards
            .iter()
            .flat_map(|s| s.lock().live.keys().copied().collect::<Vec<_>>())
            .collect()
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

/// `item`'s protobuf encoding in one allocation of exactly its size.
fn encode_shared(item: &impl Message) -> Arc<[u8]> {
    let mut out: Arc<[u8]> = std::iter::repeat_n(0u8, item.encoded_len()).collect();
    let mut buf = Arc::get_mut(&mut out).expect("not shared yet");
    item.encode_raw(&mut buf);
    out
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

/// How long to wait between ticks: `decision_wait / 20`, between 10 and 50 ms — a trace is
/// decided on average half a tick after its due time, so at most 50 ms plus the tick's own
/// work (with 100 ms ticks, 80% load in bench-compare's scenario a put the p99 at 104 ms
/// against a 100 ms goal). A tick with nothing due costs a few microseconds.
pub fn tick_interval(cfg: &TailSamplingConfig) -> Duration {
    let wait = cfg.decision_wait.get();
    (wait / 20).clamp(Duration::from_millis(10), Duration::from_millis(50))
}

#[cfg(test)]
impl Window {
    /// Replaces the encoding of held span `index` (or, with `log`, held log `index`) of
    /// `trace_id`: how tests reach a held item the receiver's wire checks would never let in.
    fn replace_held(&self, trace_id: TraceKey, log: bool, index: usize, bytes: &[u8]) {
        let mut shard = self.shards[shard_of(&trace_id)].lock();
        let entry = shard.live.get_mut(&trace_id).expect("the trace is held");
        let items = if log {
            &mut entry.logs
        } else {
            &mut entry.spans
        };
        items[index].encoded = bytes.into();
    }
}

#[cfg(test)]
mod tests {
    //! A held item that does not decode when its trace is decided costs that trace, never
    //! the decision tick.

    use weft_config::Diagnostics;
    use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
    use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
    use weft_proto::logs::v1::{ResourceLogs, ScopeLogs};
    use weft_proto::trace::v1::{status, ResourceSpans, ScopeSpans, Status};

    use super::*;
    use crate::telemetry::Telemetry;

    const UNDECODABLE: &str = "otelcol_processor_tail_sampling_sampling_trace_dropped_undecodable";

    fn window(yaml: &str) -> (Window, Telemetry) {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        let mut diags = Diagnostics::new();
        let cfg: TailSamplingConfig =
            weft_config::decode_component(&value, &weft_config::ConfigPath::root(), &mut diags)
                .unwrap();
        assert!(!diags.has_errors(), "{diags}");
        let t = Telemetry::new();
        let policies = Policies::new(&cfg.policies).unwrap();
        let metrics = WindowMetrics::new(&t, "tail_sampling");
        (Window::new(Arc::new(cfg), policies, metrics), t)
    }

    fn key(n: u8) -> TraceKey {
        let mut k = [0xcd; 16];
        k[15] = n;
        k
    }

    fn spans(traces: &[u8]) -> Traces {
        let spans = traces
            .iter()
            .map(|t| Span {
                trace_id: key(*t).to_vec(),
                span_id: vec![*t; 8],
                name: "op".into(),
                start_time_unix_nano: 1,
                end_time_unix_nano: 2,
                status: Some(Status {
                    code: status::StatusCode::Error as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        Traces::from(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[test]
    fn origins_keep_the_bytes_they_came_in_only_for_a_ring_that_copies_them() {
        let body = spans(&[1]).to_bytes();
        let kept = |keep_wire| {
            let mut kept = Vec::new();
            for_each_item(&body, keep_wire, |origin, _| {
                kept.push(origin.wire.get().is_some())
            });
            kept
        };
        assert_eq!((kept(false), kept(true)), (vec![false], vec![true]));
        let ring = |detail_max_bytes| {
            let (w, _) = window("decision_wait: 1s\npolicies: [{name: all, type: always_sample}]");
            let before = w.keeps_wire();
            w.enable_ring(RingSettings {
                size: 10,
                keep_dropped_detail: false,
                detail_max_bytes,
            });
            (before, w.keeps_wire())
        };
        assert_eq!(ring(1 << 20), (false, true));
        assert_eq!(
            ring(0),
            (false, false),
            "a ring holding no items copies no origin"
        );
    }

    fn log_of(t: u8) -> Logs {
        Logs::from(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        trace_id: key(t).to_vec(),
                        severity_number: 17,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    /// Field 5 (name) claiming 5 bytes where 1 follows.
    const TRUNCATED: &[u8] = &[0x2a, 0x05, b'a'];

    #[test]
    fn a_corrupt_span_drops_its_trace_and_the_tick_decides_the_others() {
        let (w, t) = window(
            "decision_wait: 1s\npolicies: [{name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]",
        );
        let t0 = Instant::now();
        w.ingest_spans(spans(&[1, 2, 3]), t0);
        w.ingest_logs(log_of(2), t0);
        w.replace_held(key(2), false, 0, TRUNCATED);
        let out = w.tick(t0 + Duration::from_secs(1));
        let mut decided = out.decided.clone();
        decided.sort();
        assert_eq!(
            decided,
            vec![(key(1), true), (key(2), false), (key(3), true)]
        );
        assert_eq!(out.spans.len(), 2, "the two intact traces are kept whole");
        assert!(out.logs.is_empty(), "the corrupt trace's log goes with it");
        assert_eq!(
            t.counter_value(UNDECODABLE, &[("processor", "tail_sampling")]),
            1
        );
        assert_eq!(
            t.counter_value(
                "weft_processor_tail_sampling_log_records",
                &[("processor", "tail_sampling"), ("outcome", "dropped")]
            ),
            1
        );
        assert_eq!(w.trace_count(), 0);
        // The trace is remembered as dropped: a late span follows.
        let late = w.ingest_spans(spans(&[2]), t0 + Duration::from_secs(2));
        assert!(late.spans.is_empty() && late.decided.is_empty());
        // And the window goes on deciding.
        w.ingest_spans(spans(&[4]), t0 + Duration::from_secs(2));
        let next = w.tick(t0 + Duration::from_secs(3));
        assert_eq!(next.decided, vec![(key(4), true)]);
    }

    #[test]
    fn a_trace_dropped_without_a_decision_is_told_to_listeners() {
        use crate::verdicts::{Verdict as Told, VerdictBus, VerdictListener};
        type Heard = (bool, Option<String>, usize, Vec<(i32, u64)>);
        #[derive(Default)]
        struct Listener(Mutex<Vec<Heard>>);
        impl VerdictListener for Listener {
            fn decided(&self, v: &Told<'_>) {
                self.0.lock().push((
                    v.sampled,
                    v.policy.map(str::to_string),
                    v.spans,
                    v.logs_by_severity.to_vec(),
                ));
            }
        }
        let bus = Arc::new(VerdictBus::default());
        let listener = Arc::new(Listener::default());
        bus.subscribe(listener.clone(), false);
        let (w, _) = window(
            "decision_wait: 1s\npolicies: [{name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]",
        );
        let w = w.publishing_to(bus);
        let t0 = Instant::now();
        w.ingest_spans(spans(&[2]), t0);
        w.ingest_logs(log_of(2), t0);
        w.replace_held(key(2), false, 0, TRUNCATED);
        w.tick(t0 + Duration::from_secs(1));
        assert_eq!(
            *listener.0.lock(),
            vec![(false, None, 1, vec![(0, 1)])],
            "counted as dropped by no policy, its log as unspecified severity"
        );
    }

    #[test]
    fn a_span_corrupt_only_where_no_policy_looks_still_fails_a_kept_trace_s_summary() {
        // always_sample reads nothing, so deciding decodes nothing; keeping the trace reads
        // the root's name for its summary, and that fails.
        let (w, t) = window("decision_wait: 1s\npolicies: [{name: all, type: always_sample}]");
        let t0 = Instant::now();
        w.ingest_spans(spans(&[1, 2]), t0);
        let mut bad_name = Vec::new();
        wire::put_len_field(&mut bad_name, 5, &[0xff]);
        w.replace_held(key(1), false, 0, &bad_name);
        let out = w.tick(t0 + Duration::from_secs(1));
        let mut decided = out.decided.clone();
        decided.sort();
        assert_eq!(decided, vec![(key(1), false), (key(2), true)]);
        assert_eq!(out.spans.len(), 1);
        assert_eq!(
            t.counter_value(UNDECODABLE, &[("processor", "tail_sampling")]),
            1
        );
    }

    #[test]
    fn a_corrupt_log_of_a_kept_trace_drops_it_when_it_must_be_decoded() {
        // Logs attached as span events must be decoded whole.
        let (w, t) = window(
            "decision_wait: 1s\nattach_logs_as_span_events: true\npolicies: [{name: all, type: always_sample}]",
        );
        let t0 = Instant::now();
        w.ingest_spans(spans(&[1]), t0);
        w.ingest_logs(log_of(1), t0);
        w.replace_held(key(1), true, 0, TRUNCATED);
        let out = w.tick(t0 + Duration::from_secs(1));
        assert_eq!(out.decided, vec![(key(1), false)]);
        assert!(out.spans.is_empty() && out.logs.is_empty());
        assert_eq!(
            t.counter_value(UNDECODABLE, &[("processor", "tail_sampling")]),
            1
        );
    }

    #[test]
    fn a_corrupt_log_a_policy_reads_drops_its_trace_at_shutdown_too() {
        let (w, t) = window(
            "decision_wait: 1s\npolicies: [{name: logs, type: log_severity, log_severity: {min_severity: ERROR}}]",
        );
        let t0 = Instant::now();
        w.ingest_logs(log_of(1), t0);
        w.ingest_logs(log_of(2), t0);
        w.replace_held(key(1), true, 0, &[0x10, 0xff]);
        let out = w.flush_all(t0, false);
        let mut decided = out.decided.clone();
        decided.sort();
        assert_eq!(decided, vec![(key(1), false), (key(2), true)]);
        assert_eq!(out.logs.len(), 1);
        assert_eq!(
            t.counter_value(UNDECODABLE, &[("processor", "tail_sampling")]),
            1
        );
    }
}
