//! The durable window's write-ahead log: with `tail_sampling: { storage: file_storage }`,
//! every batch is written here before the window takes it and the client is answered, and
//! after a restart — a crash, or a clean shutdown that kept the undecided traces — the log
//! is replayed so the traces that were waiting for their decision are decided as if nothing
//! happened.
//!
//! # Layout
//!
//! A segment log ([`crate::storage`]: files, record framing, the torn-tail and corruption
//! rule, the group-commit writer thread) in one folder per processor id
//! (`<file_storage directory>/<id>-window`). A record's payload starts with its kind:
//!
//! | kind | payload after the kind byte | written |
//! |---|---|---|
//! | 1, 2 | `[seq: u64 LE][arrival, ns since the Unix epoch: u64 LE]` + an OTLP traces / logs request | by each `consume`, before it answers |
//! | 3 | a [`DecisionBatch`] (protobuf): decided traces, and a checkpoint | by the decision tick, once what the decisions released was accepted downstream |
//! | 4, 5 | an OTLP traces / logs request the next stage refused | by a `consume` whose released data had to wait in the outbox |
//! | 6 | a [`ShutdownRecord`] (protobuf): a checkpoint, and the traces still held | by a clean shutdown that keeps its undecided traces |
//!
//! This file is the only place that knows the payload types' encoding (`encode_payload`,
//! `decode_payload`, the retain helpers, and the [`Logged`] kinds).
//!
//! # What a record promises
//!
//! - A batch is acknowledged only once its record is written — *group commit*: the log's
//!   writer thread writes everything appended since its last write in one `write` (and, with
//!   the extension's `fsync: true`, one `fdatasync`), then releases every waiter of that write.
//! - A decision record for trace T with cutoff `c` says: every item of T in a data record
//!   with `seq < c` is taken care of (released and accepted downstream, or dropped by the
//!   policy). `c` is the lowest `seq` not yet ingested when the decision was made, so data in
//!   flight at that moment is never skipped on replay (it may be sent again: at least once).
//!   Decision records are bookkeeping: not synced on their own (a lost one means deciding
//!   again).
//! - The checkpoint `completed_below` says the same of every record below it as a whole:
//!   anything it released at once (logs without a trace id) was accepted downstream.
//! - An outbox record holds released data the next stage refused, so that data a client was
//!   told was accepted survives even when the trace's decision record is long gone.
//! - A shutdown record says which traces the window still held when it stopped; below its
//!   checkpoint, only their items are replayed.
//!
//! # Replay
//!
//! On start, every segment is read by the segment log's rule (a torn tail is cut off, a
//! damaged record skipped, logged and counted — never replayed corrupted); a record whose
//! encoding is wrong is skipped, logged and counted too. Decisions are put back in the
//! window's decision caches; data records are ingested again with their original arrival
//! time (and the replayed traces wait for data to flow again: `Window::hold_replayed`), except
//! items their trace's decision, the last checkpoint, or the last shutdown record covers;
//! outbox records not followed by a checkpoint are sent again. Segments are read and decoded
//! on a blocking thread, one at a time.
//!
//! # Deleting segments
//!
//! A closed segment is deleted once no trace held by the window has data in it and
//! everything it released was accepted downstream: every record in it arrived before the
//! oldest trace still held (`first_seen`, a watermark), before any batch not yet ingested,
//! every `consume` that was running then has finished, and the outbox is empty. Segments go
//! oldest first; the log's writer thread unlinks them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prost::Message;
use tokio::sync::oneshot;

use super::enrich::Summary;
use super::Clock;
use crate::pipeline::{Logs, Payload, Traces};
use crate::storage::{
    self, segment_bytes_for, Append, AppendError, Done, LogMetrics, LogOptions, Record, SegmentLog,
    Written,
};
use crate::telemetry::Telemetry;

/// The largest segment; smaller when `max_size_mib` is small ([`segment_bytes_for`]).
pub use crate::storage::SEGMENT_BYTES;

/// kind + seq + arrival.
const DATA_PREFIX: usize = 17;

const KIND_TRACES: u8 = 1;
const KIND_LOGS: u8 = 2;
const KIND_DECISIONS: u8 = 3;
const KIND_OUTBOX_TRACES: u8 = 4;
const KIND_OUTBOX_LOGS: u8 = 5;
const KIND_SHUTDOWN: u8 = 6;

type TraceKey = [u8; 16];

/// Wall-clock time in nanoseconds since the Unix epoch; tests substitute their own.
pub type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_wall_clock() -> WallClock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    })
}

// ---------------------------------------------------------------------------------------
// The only coupling to the payload types (their encoding and shape): keep it here.

/// `data`'s protobuf encoding: the received bytes themselves while the batch is still encoded
/// (no copy).
fn encode_payload<T: Payload>(data: &T) -> Bytes {
    data.to_bytes()
}

/// Decodes a payload written by [`encode_payload`] (a slice of the segment read back: no
/// copy).
fn decode_payload<T: Payload>(bytes: Bytes) -> Result<T, prost::DecodeError> {
    T::from_stored(bytes)
}

/// Keeps the spans of `data` whose trace id passes `keep`.
pub fn retain_spans(data: &mut Traces, keep: impl Fn(&[u8]) -> bool) {
    let data = data.request_mut();
    for rs in &mut data.resource_spans {
        for ss in &mut rs.scope_spans {
            ss.spans.retain(|s| keep(&s.trace_id));
        }
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    data.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
}

/// Keeps the log records of `data` whose trace id (empty for none) passes `keep`.
pub fn retain_logs(data: &mut Logs, keep: impl Fn(&[u8]) -> bool) {
    let data = data.request_mut();
    for rl in &mut data.resource_logs {
        for sl in &mut rl.scope_logs {
            sl.log_records.retain(|r| keep(&r.trace_id));
        }
        rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
    }
    data.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
}

// ---------------------------------------------------------------------------------------

/// The two signals the log holds, with their record kinds.
pub trait Logged: Payload {
    const DATA: u8;
    const OUTBOX: u8;
}

impl Logged for Traces {
    const DATA: u8 = KIND_TRACES;
    const OUTBOX: u8 = KIND_OUTBOX_TRACES;
}

impl Logged for Logs {
    const DATA: u8 = KIND_LOGS;
    const OUTBOX: u8 = KIND_OUTBOX_LOGS;
}

/// Decided traces, and the checkpoint; one record per decision tick.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DecisionBatch {
    /// Every data record with a lower `seq` was ingested, and what it released at once was
    /// accepted downstream.
    #[prost(uint64, tag = "1")]
    pub completed_below: u64,
    #[prost(message, repeated, tag = "2")]
    pub decisions: Vec<Decision>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Decision {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bool, tag = "2")]
    pub kept: bool,
    /// Items of this trace in data records below this `seq` are taken care of.
    #[prost(uint64, tag = "3")]
    pub cutoff: u64,
    /// A kept trace's verdict, for the logs that arrive after a restart.
    #[prost(message, optional, tag = "4")]
    pub summary: Option<SummaryRecord>,
}

/// Written at a clean shutdown that keeps undecided traces for the next start: which traces
/// the window still held. Every item in a data record below `completed_below` was ingested
/// and is taken care of — released and accepted downstream, dropped, or held by one of
/// `pending` — so replay needs exactly the items of the pending traces among them (not, say,
/// a late span of an already decided trace, released at once).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ShutdownRecord {
    #[prost(uint64, tag = "1")]
    pub completed_below: u64,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub pending: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryRecord {
    #[prost(string, optional, tag = "1")]
    pub policy: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub root_service: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub root_operation: Option<String>,
    #[prost(int64, tag = "4")]
    pub duration_ms: i64,
    #[prost(bool, tag = "5")]
    pub error: bool,
    #[prost(int64, tag = "6")]
    pub span_count: i64,
}

impl Decision {
    pub fn new(trace_id: TraceKey, summary: Option<&Summary>, cutoff: u64) -> Self {
        Self {
            trace_id: trace_id.to_vec(),
            kept: summary.is_some(),
            cutoff,
            summary: summary.map(|s| SummaryRecord {
                policy: s.policy.clone(),
                root_service: s.root_service.clone(),
                root_operation: s.root_operation.clone(),
                duration_ms: s.duration_ms,
                error: s.error,
                span_count: s.span_count,
            }),
        }
    }
}

impl SummaryRecord {
    fn summary(self) -> Summary {
        Summary {
            policy: self.policy,
            root_service: self.root_service,
            root_operation: self.root_operation,
            duration_ms: self.duration_ms,
            error: self.error,
            span_count: self.span_count,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("the durable window's log is full ({0} bytes on disk, the file_storage extension's max_size_mib)")]
    Full(u64),
    #[error("the durable window's log is closed (shutting down)")]
    Closed,
    #[error("cannot write the durable window's log: {0}")]
    Io(String),
}

/// Where and how the log is kept.
#[derive(Clone)]
pub struct WalOptions {
    pub dir: PathBuf,
    pub fsync: bool,
    /// Bytes of segment files; past it new data is refused (retryably).
    pub max_bytes: u64,
    pub segment_bytes: u64,
    /// A segment holding data is closed after this long even if not full, so that a quiet
    /// window's log shrinks too.
    pub rotate_after: Duration,
    /// Replayed arrival times older than this are treated as this old.
    pub max_replay_age: Duration,
    pub wall: WallClock,
}

impl WalOptions {
    pub fn new(dir: PathBuf, fsync: bool, max_bytes: u64, decision_wait: Duration) -> Self {
        Self {
            dir,
            fsync,
            max_bytes,
            segment_bytes: segment_bytes_for(max_bytes),
            rotate_after: decision_wait.max(Duration::from_secs(1)),
            max_replay_age: decision_wait + Duration::from_secs(600),
            wall: system_wall_clock(),
        }
    }
}

/// The log's metrics (Weft's own: the Collector has no durable window).
#[derive(Clone)]
pub struct WalMetrics {
    pub bytes: Gauge,
    pub segments: Gauge,
    pub append_duration: Histogram,
    pub records_per_write: Histogram,
    pub replayed_records: Counter,
    pub replayed_spans: Counter,
    pub replayed_logs: Counter,
    pub corrupt_records: Counter,
    pub torn_tails: Counter,
    pub write_errors: Counter,
    pub decisions_written: Counter,
}

impl WalMetrics {
    /// The metrics the segment log under the WAL keeps itself.
    fn log_metrics(&self) -> LogMetrics {
        LogMetrics {
            bytes: self.bytes.clone(),
            segments: self.segments.clone(),
            records_per_write: self.records_per_write.clone(),
            write_errors: self.write_errors.clone(),
            corrupt_records: self.corrupt_records.clone(),
            torn_tails: self.torn_tails.clone(),
        }
    }

    pub fn new(t: &Telemetry, processor: &str) -> Self {
        let p = [("processor", processor)];
        Self {
            bytes: t.gauge(
                "weft_processor_tail_sampling_wal_bytes",
                "Bytes of the durable window's log on disk",
                &p,
            ),
            segments: t.gauge(
                "weft_processor_tail_sampling_wal_segments",
                "Segment files of the durable window's log",
                &p,
            ),
            append_duration: t.histogram(
                "weft_processor_tail_sampling_wal_append_duration_seconds",
                "Time from appending a batch to the log until it is durable (written, or synced with fsync)",
                &p,
                || Histogram::new(exponential_buckets(0.000_01, 2.0, 20)),
            ),
            records_per_write: t.histogram(
                "weft_processor_tail_sampling_wal_records_per_write",
                "Records written by one write (group commit)",
                &p,
                LogMetrics::records_per_write_buckets,
            ),
            replayed_records: t.counter(
                "weft_processor_tail_sampling_wal_replayed_records",
                "Records of the durable window's log replayed at start",
                &p,
            ),
            replayed_spans: t.counter(
                "weft_processor_tail_sampling_wal_replayed_items",
                "Spans and log records replayed from the durable window's log at start",
                &[("processor", processor), ("item", "spans")],
            ),
            replayed_logs: t.counter(
                "weft_processor_tail_sampling_wal_replayed_items",
                "Spans and log records replayed from the durable window's log at start",
                &[("processor", processor), ("item", "log_records")],
            ),
            corrupt_records: t.counter(
                "weft_processor_tail_sampling_wal_corrupt_records",
                "Records of the durable window's log skipped at replay: wrong checksum or encoding",
                &p,
            ),
            torn_tails: t.counter(
                "weft_processor_tail_sampling_wal_torn_tails",
                "Records torn by a crash mid-write (never acknowledged), cut off at replay",
                &p,
            ),
            write_errors: t.counter(
                "weft_processor_tail_sampling_wal_write_errors",
                "Writes to the durable window's log that failed (the batches were refused, retryably)",
                &p,
            ),
            decisions_written: t.counter(
                "weft_processor_tail_sampling_wal_decisions_written",
                "Trace decisions written to the durable window's log (resumed after a restart)",
                &p,
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Recovery: what the previous run left.

/// Maps a recorded wall-clock arrival to this run's monotonic clock: `now - age`, with the
/// age capped (so very old data is simply due now) and never negative (a clock that went
/// back). Monotonic: later arrivals never map earlier.
#[derive(Clone, Copy)]
struct WallMap {
    base_instant: Instant,
    base_wall: u64,
    cap: Duration,
}

impl WallMap {
    fn new(base_instant: Instant, base_wall: u64, mut cap: Duration) -> Self {
        // The monotonic clock may not reach that far back (a machine booted recently).
        while base_instant.checked_sub(cap).is_none() && !cap.is_zero() {
            cap /= 2;
        }
        Self {
            base_instant,
            base_wall,
            cap,
        }
    }

    fn instant(&self, wall: u64) -> Instant {
        let age = Duration::from_nanos(self.base_wall.saturating_sub(wall)).min(self.cap);
        self.base_instant
            .checked_sub(age)
            .unwrap_or(self.base_instant)
    }
}

/// One record to replay, decoded.
pub enum Replayed {
    Traces {
        seq: u64,
        arrival: Instant,
        data: Traces,
    },
    Logs {
        seq: u64,
        arrival: Instant,
        data: Logs,
    },
    /// Released data that waited for a refusing next stage when Weft stopped.
    OutboxTraces(Traces),
    OutboxLogs(Logs),
}

/// What the previous run left, found by [`Wal::open`]; replayed by the processor at start.
pub struct Recovery {
    dir: PathBuf,
    segments: Vec<u64>,
    /// The latest decision per trace: (cutoff, summary if kept).
    decisions: HashMap<TraceKey, (u64, Option<Arc<Summary>>)>,
    checkpoint: u64,
    /// Outbox records written after the last checkpoint: (segment, offset).
    outbox: HashSet<(u64, u64)>,
    /// The last clean shutdown: its checkpoint and the traces it kept.
    shutdown: Option<(u64, HashSet<TraceKey>)>,
    map: WallMap,
    metrics: WalMetrics,
    processor: String,
}

impl Recovery {
    /// Whether there is anything to replay.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The recorded decisions, oldest first: to put back in the window's decision caches.
    pub fn decisions(&self) -> Vec<(TraceKey, Option<Arc<Summary>>)> {
        let mut all: Vec<(u64, TraceKey, Option<Arc<Summary>>)> = self
            .decisions
            .iter()
            .map(|(k, (cutoff, s))| (*cutoff, *k, s.clone()))
            .collect();
        all.sort_by_key(|(cutoff, _, _)| *cutoff);
        all.into_iter().map(|(_, k, s)| (k, s)).collect()
    }

    /// The segments to replay, oldest first.
    pub fn segments(&self) -> &[u64] {
        &self.segments
    }

    /// Whether an item of trace `trace_id` (empty: a log without a trace) in the data record
    /// `seq` still needs its replay: its trace's decision, the checkpoint and the last
    /// shutdown record do not cover it.
    pub fn needs(&self, trace_id: &[u8], seq: u64) -> bool {
        let key = <TraceKey>::try_from(trace_id)
            .ok()
            .filter(|k| *k != [0u8; 16]);
        let undecided = |key: &TraceKey| {
            self.decisions
                .get(key)
                .is_none_or(|(cutoff, _)| seq >= *cutoff)
        };
        match (key, &self.shutdown) {
            // Below a clean shutdown: only what the window still held then.
            (key, Some((below, pending))) if seq < *below => {
                key.is_some_and(|k| pending.contains(&k) && undecided(&k))
            }
            (Some(key), _) => undecided(&key),
            // Released at once by its consume; done once a checkpoint covers it.
            (None, _) => seq >= self.checkpoint,
        }
    }

    /// The records of one segment that still matter, decoded. A record that does not decode
    /// is skipped, logged and counted. Reads the segment file: call it from a blocking
    /// thread.
    pub fn read(&self, segment: u64) -> Vec<Replayed> {
        let records = match storage::read_segment(&self.dir, segment) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(component = %self.processor, segment, error = %e, "cannot read a segment of the durable window's log; its data is not replayed");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (offset, payload) in records {
            let Some(&kind) = payload.first() else {
                continue;
            };
            let decoded: Result<Option<Replayed>, String> = match kind {
                KIND_TRACES | KIND_LOGS => match parse_data_prefix(&payload) {
                    Some((seq, wall, _)) => {
                        let arrival = self.map.instant(wall);
                        let body = payload.slice(DATA_PREFIX..);
                        if kind == KIND_TRACES {
                            decode_payload::<Traces>(body)
                                .map(|data| Some(Replayed::Traces { seq, arrival, data }))
                        } else {
                            decode_payload::<Logs>(body)
                                .map(|data| Some(Replayed::Logs { seq, arrival, data }))
                        }
                        .map_err(|e| e.to_string())
                    }
                    None => Err("data record shorter than its prefix".to_string()),
                },
                KIND_OUTBOX_TRACES if self.outbox.contains(&(segment, offset)) => {
                    decode_payload::<Traces>(payload.slice(1..))
                        .map(|d| Some(Replayed::OutboxTraces(d)))
                        .map_err(|e| e.to_string())
                }
                KIND_OUTBOX_LOGS if self.outbox.contains(&(segment, offset)) => {
                    decode_payload::<Logs>(payload.slice(1..))
                        .map(|d| Some(Replayed::OutboxLogs(d)))
                        .map_err(|e| e.to_string())
                }
                _ => Ok(None),
            };
            match decoded {
                Ok(Some(r)) => {
                    self.metrics.replayed_records.inc();
                    out.push(r);
                }
                Ok(None) => {}
                Err(e) => {
                    self.metrics.corrupt_records.inc();
                    tracing::error!(component = %self.processor, segment, offset, error = %e, "skipping a record of the durable window's log that does not decode");
                }
            }
        }
        out
    }

    /// Counts what was replayed.
    pub fn count(&self, spans: usize, logs: usize) {
        self.metrics.replayed_spans.inc_by(spans as u64);
        self.metrics.replayed_logs.inc_by(logs as u64);
    }

    /// Takes in one record found when opening the log (in log order); returns its arrival,
    /// for data records. `max_seq` and `last_wall` follow what it holds.
    fn visit(
        &mut self,
        segment: u64,
        offset: u64,
        payload: &[u8],
        max_seq: &mut u64,
        last_wall: &mut u64,
    ) -> Option<Instant> {
        let (&kind, body) = payload.split_first()?;
        let corrupt = |what: &str, error: String| {
            self.metrics.corrupt_records.inc();
            tracing::error!(component = %self.processor, segment, offset, error = %error, "skipping {what} of the durable window's log that does not decode");
        };
        match kind {
            KIND_TRACES | KIND_LOGS => {
                let (seq, wall, _) = parse_data_prefix(payload)?;
                *max_seq = (*max_seq).max(seq);
                *last_wall = (*last_wall).max(wall);
                return Some(self.map.instant(wall));
            }
            KIND_DECISIONS => match DecisionBatch::decode(body) {
                Ok(batch) => {
                    self.checkpoint = self.checkpoint.max(batch.completed_below);
                    *max_seq = (*max_seq).max(batch.completed_below);
                    // Outbox records before a checkpoint were accepted downstream.
                    self.outbox.clear();
                    for d in batch.decisions {
                        let Ok(key) = TraceKey::try_from(&d.trace_id[..]) else {
                            continue;
                        };
                        *max_seq = (*max_seq).max(d.cutoff);
                        let summary = d
                            .summary
                            .filter(|_| d.kept)
                            .map(|s| Arc::new(s.summary()))
                            .or_else(|| d.kept.then(|| Arc::new(Summary::default())));
                        match self.decisions.get(&key) {
                            Some((c, _)) if *c > d.cutoff => {}
                            _ => {
                                self.decisions.insert(key, (d.cutoff, summary));
                            }
                        }
                    }
                }
                Err(e) => corrupt("a decision record", e.to_string()),
            },
            KIND_SHUTDOWN => match ShutdownRecord::decode(body) {
                Ok(record) => {
                    let below = record.completed_below;
                    self.checkpoint = self.checkpoint.max(below);
                    *max_seq = (*max_seq).max(below);
                    self.outbox.clear();
                    if self.shutdown.as_ref().is_none_or(|(b, _)| *b <= below) {
                        let pending = record
                            .pending
                            .iter()
                            .filter_map(|id| TraceKey::try_from(&id[..]).ok())
                            .collect();
                        self.shutdown = Some((below, pending));
                    }
                }
                Err(e) => corrupt("a shutdown record", e.to_string()),
            },
            KIND_OUTBOX_TRACES | KIND_OUTBOX_LOGS => {
                self.outbox.insert((segment, offset));
            }
            kind => corrupt("a record", format!("unknown kind {kind}")),
        }
        None
    }
}

fn parse_data_prefix(payload: &[u8]) -> Option<(u64, u64, &[u8])> {
    if payload.len() < DATA_PREFIX {
        return None;
    }
    let seq = u64::from_le_bytes(payload[1..9].try_into().ok()?);
    let wall = u64::from_le_bytes(payload[9..17].try_into().ok()?);
    Some((seq, wall, &payload[DATA_PREFIX..]))
}

// ---------------------------------------------------------------------------------------
// The log.

struct State {
    next_seq: u64,
    /// Arrivals are recorded non-decreasing in `seq` order, whatever the wall clock does.
    last_wall: u64,
    /// Data records appended but not yet ingested by the window: seq → arrival.
    unapplied: BTreeMap<u64, Instant>,
}

struct Shared {
    clock: Clock,
    wall: WallClock,
    /// Taken before the segment log's own lock when appending, so `seq` follows log order.
    state: Mutex<State>,
    metrics: WalMetrics,
    /// Running `consume`s, per epoch (see [`Wal::enter`]).
    active: [AtomicUsize; 2],
    epoch: AtomicUsize,
}

/// A processor's write-ahead log (see the module docs).
pub struct Wal {
    log: SegmentLog,
    shared: Arc<Shared>,
}

/// A data record appended to the log; [`Appended::durable`] waits until it is written.
pub struct Appended {
    applied: Unapplied,
    pub arrival: Instant,
    started: std::time::Instant,
    done: oneshot::Receiver<Written>,
}

/// A data record not yet ingested by the window; dropping it says it is.
pub struct Unapplied {
    shared: Arc<Shared>,
    seq: u64,
}

impl Drop for Unapplied {
    fn drop(&mut self) {
        self.shared.state.lock().unapplied.remove(&self.seq);
    }
}

/// A running `consume`: the segments its data may need are not deleted until it ends.
pub struct Running {
    shared: Arc<Shared>,
    slot: usize,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.active[self.slot].fetch_sub(1, Ordering::SeqCst);
    }
}

impl Appended {
    /// Waits until the record is written (and synced, with fsync). Returns the guard to drop
    /// once the window has ingested the batch.
    pub async fn durable(self, metrics: &WalMetrics) -> Result<Unapplied, WalError> {
        let result = self.done.await;
        metrics
            .append_duration
            .observe(self.started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(_)) => Ok(self.applied),
            Ok(Err(e)) => Err(WalError::Io(e)),
            Err(_) => Err(WalError::Closed),
        }
    }
}

fn refusal(e: AppendError) -> WalError {
    match e {
        AppendError::Full(bytes) => WalError::Full(bytes),
        AppendError::Closed => WalError::Closed,
        e @ AppendError::TooLarge(_) => WalError::Io(e.to_string()),
    }
}

impl Wal {
    /// Opens (or creates) the log in `opts.dir`: reads what a previous run left (cutting a
    /// torn tail, counting damaged records) and starts the writer on a new segment.
    pub fn open(
        opts: WalOptions,
        clock: Clock,
        telemetry: &Telemetry,
        processor: &str,
    ) -> io::Result<(Self, Recovery)> {
        let metrics = WalMetrics::new(telemetry, processor);
        let map = WallMap::new(clock(), (opts.wall)(), opts.max_replay_age);
        let mut recovery = Recovery {
            dir: opts.dir.clone(),
            segments: Vec::new(),
            decisions: HashMap::new(),
            checkpoint: 0,
            outbox: HashSet::new(),
            shutdown: None,
            map,
            metrics: metrics.clone(),
            processor: processor.to_string(),
        };
        let log_opts = LogOptions {
            dir: opts.dir.clone(),
            fsync: opts.fsync,
            max_bytes: opts.max_bytes,
            segment_bytes: opts.segment_bytes,
            rotate_after: Some(opts.rotate_after),
            owner: processor.to_string(),
            metrics: metrics.log_metrics(),
        };
        let (mut max_seq, mut last_wall) = (0u64, 0u64);
        let (log, opened) = SegmentLog::open(log_opts, |segment, offset, payload| {
            recovery.visit(segment, offset, payload, &mut max_seq, &mut last_wall)
        })?;
        recovery.segments = opened.segments;
        let shared = Arc::new(Shared {
            clock,
            wall: opts.wall,
            state: Mutex::new(State {
                next_seq: max_seq + 1,
                last_wall,
                unapplied: BTreeMap::new(),
            }),
            metrics,
            active: [AtomicUsize::new(0), AtomicUsize::new(0)],
            epoch: AtomicUsize::new(0),
        });
        Ok((Self { log, shared }, recovery))
    }

    pub fn metrics(&self) -> &WalMetrics {
        &self.shared.metrics
    }

    /// Marks a `consume` as running until the guard drops (see the module docs).
    pub fn enter(&self) -> Running {
        loop {
            let epoch = self.shared.epoch.load(Ordering::SeqCst);
            let slot = epoch & 1;
            self.shared.active[slot].fetch_add(1, Ordering::SeqCst);
            if self.shared.epoch.load(Ordering::SeqCst) == epoch {
                return Running {
                    shared: self.shared.clone(),
                    slot,
                };
            }
            self.shared.active[slot].fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Starts a new epoch; returns the old one's slot, quiet once every `consume` that was
    /// running has ended.
    fn flip(&self) -> usize {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst) & 1
    }

    fn quiet(&self, slot: usize) -> bool {
        self.shared.active[slot].load(Ordering::SeqCst) == 0
    }

    /// Appends a batch; the record gets the next `seq` and its arrival time (now). The
    /// batch's bytes are checksummed before any lock is taken, and copied once, into the
    /// log's buffer.
    pub fn append<T: Logged>(&self, data: &T) -> Result<Appended, WalError> {
        let body = encode_payload(data);
        let body_crc = storage::checksum(&body);
        let (tx, rx) = oneshot::channel();
        let mut st = self.shared.state.lock();
        let seq = st.next_seq;
        let arrival = (self.shared.clock)();
        let wall = st.last_wall.max((self.shared.wall)());
        let mut prefix = [0u8; DATA_PREFIX];
        prefix[0] = T::DATA;
        prefix[1..9].copy_from_slice(&seq.to_le_bytes());
        prefix[9..17].copy_from_slice(&wall.to_le_bytes());
        self.log
            .append(
                Record::new(&prefix, &body).with_body_checksum(body_crc),
                Append::data(Done::Channel(tx)).stamped(arrival),
            )
            .map_err(refusal)?;
        st.next_seq += 1;
        st.last_wall = wall;
        st.unapplied.insert(seq, arrival);
        drop(st);
        Ok(Appended {
            applied: Unapplied {
                shared: self.shared.clone(),
                seq,
            },
            arrival,
            started: std::time::Instant::now(),
            done: rx,
        })
    }

    /// Appends released data the next stage refused; resolves once it is written. Never
    /// refused for room: the data was already acknowledged.
    pub fn append_outbox<T: Logged>(&self, data: &T) -> oneshot::Receiver<Written> {
        let body = encode_payload(data);
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self.log.append(
            Record::new(&[T::OUTBOX], &body),
            Append::data(Done::Channel(tx)).unbounded(),
        ) {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(Err(e.to_string()));
            return rx;
        }
        rx
    }

    /// Appends decisions and a checkpoint; not waited for (losing it only means sending
    /// again), counted in `…_wal_decisions_written` once written.
    pub fn append_decisions(&self, batch: &DecisionBatch) {
        let body = batch.encode_to_vec();
        let decided = batch.decisions.len() as u64;
        let counter = self.shared.metrics.decisions_written.clone();
        let done = Done::Call(Box::new(move |written: Written| {
            if written.is_ok() {
                counter.inc_by(decided);
            }
        }));
        // Only refused once the log is closed, when nothing more is recorded anyway.
        let _ = self.log.append(
            Record::new(&[KIND_DECISIONS], &body),
            Append::bookkeeping(done),
        );
    }

    /// Records a clean shutdown that keeps `pending` (the traces the window still holds)
    /// for the next start, with the checkpoint; resolves once it is written.
    pub async fn append_shutdown(&self, pending: Vec<TraceKey>) -> Result<(), WalError> {
        let record = ShutdownRecord {
            completed_below: self.completed_below(),
            pending: pending.iter().map(|k| k.to_vec()).collect(),
        };
        let (tx, rx) = oneshot::channel();
        self.log
            .append(
                Record::new(&[KIND_SHUTDOWN], &record.encode_to_vec()),
                Append::data(Done::Channel(tx)).unbounded(),
            )
            .map_err(refusal)?;
        match rx.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(WalError::Io(e)),
            Err(_) => Err(WalError::Closed),
        }
    }

    /// Resolves once everything appended so far is written (and what the writer was asked
    /// to delete, deleted).
    pub async fn flush(&self) {
        self.log.flushed().await;
    }

    /// What the window should ingest a batch at, and the decision cutoff: the earliest
    /// arrival and the lowest `seq` of the batches not yet ingested (this one included).
    /// Ingesting at the earliest pending arrival keeps every trace's `first_seen` at or
    /// before the arrival of each of its records, which segment deletion relies on.
    pub fn apply_point(&self) -> (Option<Instant>, u64) {
        let st = self.shared.state.lock();
        let earliest = st.unapplied.values().min().copied();
        let cutoff = st.unapplied.keys().next().copied().unwrap_or(st.next_seq);
        (earliest, cutoff)
    }

    /// The lowest `seq` not yet ingested.
    pub fn completed_below(&self) -> u64 {
        self.apply_point().1
    }

    /// The first step of deleting segments (see [`Compaction`]); `None` when no segment is
    /// closed. Holds the WAL's lock, so no record is appended meanwhile: every one appended
    /// later arrives at or after the floor.
    fn registration_floor(&self) -> Option<Instant> {
        let st = self.shared.state.lock();
        if !self.log.has_closed_segments() {
            return None;
        }
        let now = (self.shared.clock)();
        Some(st.unapplied.values().min().copied().unwrap_or(now).min(now))
    }

    /// Asks for the closed segments, oldest first, whose records all arrived before
    /// `watermark` to be deleted; the log's writer unlinks them. Returns how many.
    fn delete_before(&self, watermark: Instant) -> usize {
        let mut deleted = 0;
        for segment in self.log.segments() {
            let deletable =
                !segment.current && segment.newest.is_none_or(|arrival| arrival < watermark);
            if !deletable {
                break;
            }
            if self.log.delete(segment.number) {
                deleted += 1;
            }
        }
        deleted
    }

    /// Bytes of segment files on disk.
    pub fn bytes(&self) -> u64 {
        self.log.bytes()
    }

    /// Segment files on disk (the one being written included).
    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }

    /// Whether nothing is waiting to be ingested and no `consume` is running.
    pub fn idle(&self) -> bool {
        self.shared.state.lock().unapplied.is_empty() && self.quiet(0) && self.quiet(1)
    }

    /// Stops the writer once it has written everything appended (synced, with fsync).
    pub async fn close(&self) {
        self.log.close().await;
    }

    /// Closes the log and deletes every segment: for a clean shutdown that left nothing to
    /// replay.
    pub async fn close_and_clear(&self) {
        self.log.close_and_clear().await;
    }
}

// ---------------------------------------------------------------------------------------
// Deleting segments.

/// Segment deletion, one step per decision tick:
///
/// 1. Under the log's lock, the earliest arrival not yet ingested (or now): every record
///    appended later arrives later than that.
/// 2. The window's oldest `first_seen`: a trace still held has data only in records that
///    arrived at or after it.
/// 3. A new epoch: the `consume`s running until now are waited for (a trace they decided
///    early is no longer in the window, but what they released may not be accepted yet).
///
/// The watermark is the earlier of 1 and 2. Once the old epoch is quiet and the outbox is
/// empty, every closed segment whose records all arrived before the watermark is deleted.
#[derive(Default)]
pub enum Compaction {
    #[default]
    Idle,
    Waiting {
        watermark: Instant,
        slot: usize,
    },
}

impl Compaction {
    /// One step; `oldest` reads the window's oldest `first_seen`, `outbox_empty` whether
    /// released data is waiting. Returns the segments deleted.
    pub fn step(
        &mut self,
        wal: &Wal,
        oldest: impl FnOnce() -> Option<Instant>,
        outbox_empty: impl FnOnce() -> bool,
    ) -> usize {
        match *self {
            Compaction::Idle => {
                let Some(floor) = wal.registration_floor() else {
                    return 0;
                };
                let watermark = oldest().map_or(floor, |o| o.min(floor));
                let slot = wal.flip();
                *self = Compaction::Waiting { watermark, slot };
                0
            }
            Compaction::Waiting { watermark, slot } => {
                if !wal.quiet(slot) || !outbox_empty() {
                    return 0;
                }
                *self = Compaction::Idle;
                wal.delete_before(watermark)
            }
        }
    }
}
