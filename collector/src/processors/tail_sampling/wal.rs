//! The durable window's write-ahead log: with `tail_sampling: { storage: file_storage }`,
//! every batch is written here before the window takes it and the client is answered, and
//! after a crash the log is replayed so the traces that were waiting for their decision are
//! decided as if nothing happened.
//!
//! # Layout
//!
//! One folder per processor id (`<file_storage directory>/<id>-window`) of append-only
//! segment files `wal-<n>.log`, each a sequence of records
//! `[length: u32 LE][CRC-32 of the payload: u32 LE][payload]`. A payload starts with its kind:
//!
//! | kind | payload after the kind byte | written |
//! |---|---|---|
//! | 1, 2 | `[seq: u64 LE][arrival, ns since the Unix epoch: u64 LE]` + an OTLP traces / logs request | by each `consume`, before it answers |
//! | 3 | a [`DecisionBatch`] (protobuf): decided traces, and a checkpoint | by the decision tick, once what the decisions released was accepted downstream |
//! | 4, 5 | an OTLP traces / logs request the next stage refused | by a `consume` whose released data had to wait in the outbox |
//!
//! # What a record promises
//!
//! - A batch is acknowledged only once its record is written — *group commit*: one writer
//!   thread writes everything appended since its last write in one `write` (and, with the
//!   extension's `fsync: true`, one `fdatasync`), then releases every waiter of that write.
//! - A decision record for trace T with cutoff `c` says: every item of T in a data record
//!   with `seq < c` is taken care of (released and accepted downstream, or dropped by the
//!   policy). `c` is the lowest `seq` not yet ingested when the decision was made, so data in
//!   flight at that moment is never skipped on replay (it may be sent again: at least once).
//! - The checkpoint `completed_below` says the same of every record below it as a whole:
//!   anything it released at once (logs without a trace id) was accepted downstream.
//! - An outbox record holds released data the next stage refused, so that data a client was
//!   told was accepted survives even when the trace's decision record is long gone.
//!
//! # Replay
//!
//! On start, every segment is read: a record torn by the crash at the end of the last
//! segment (it was never acknowledged) is cut off; a record whose checksum or encoding is
//! wrong is skipped, logged and counted, never replayed corrupted. Decisions are put back in
//! the window's decision caches; data records are ingested again with their original arrival
//! time (a trace that already waited `decision_wait` is decided at the first tick), except
//! items their trace's decision covers; outbox records not followed by a checkpoint are sent
//! again.
//!
//! # Deleting segments
//!
//! A closed segment is deleted once no trace held by the window has data in it and
//! everything it released was accepted downstream: every record in it arrived before the
//! oldest trace still held (`first_seen`, a watermark), before any batch not yet ingested,
//! every `consume` that was running then has finished, and the outbox is empty. Segments go
//! oldest first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prost::Message;
use tokio::sync::oneshot;

use super::enrich::Summary;
use super::Clock;
use crate::pipeline::{Logs, Payload, Traces};
use crate::telemetry::Telemetry;

/// A segment is closed once it holds this many bytes (or is older than `rotate_after`).
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const HEADER: usize = 8;
/// kind + seq + arrival.
const DATA_PREFIX: usize = 17;

const KIND_TRACES: u8 = 1;
const KIND_LOGS: u8 = 2;
const KIND_DECISIONS: u8 = 3;
const KIND_OUTBOX_TRACES: u8 = 4;
const KIND_OUTBOX_LOGS: u8 = 5;

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

/// Appends `data`'s protobuf encoding to `buf`.
fn encode_payload<T: Payload>(data: &T, buf: &mut Vec<u8>) {
    buf.reserve(data.encoded_len());
    data.write_to(buf);
}

/// Decodes a payload written by [`encode_payload`].
fn decode_payload<T: Payload>(bytes: &[u8]) -> Result<T, prost::DecodeError> {
    T::from_stored(bytes::Bytes::copy_from_slice(bytes))
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
            segment_bytes: SEGMENT_BYTES,
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
                || Histogram::new(exponential_buckets(1.0, 2.0, 12)),
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
// Segments on disk.

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("wal-{n:020}.log"))
}

fn segment_numbers(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("wal-")?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

fn frame(kind: u8, prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let len = 1 + prefix.len() + body.len();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(prefix);
    crc.update(body);
    let mut out = Vec::with_capacity(HEADER + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(prefix);
    out.extend_from_slice(body);
    out
}

/// A segment read from disk: its bytes and where its valid records are.
struct Scan {
    data: Vec<u8>,
    /// (offset of the record, payload range)
    records: Vec<(u64, std::ops::Range<usize>)>,
    corrupt: u64,
    /// Where the last complete record ends.
    end: usize,
}

fn scan(path: &Path) -> io::Result<Scan> {
    let data = std::fs::read(path)?;
    let mut records = Vec::new();
    let mut corrupt = 0;
    let mut at = 0usize;
    while at + HEADER <= data.len() {
        let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let crc = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
        let end = at + HEADER + len;
        // A zero length is never written: zeroed space left by a crash, like a torn tail.
        if len == 0 || end > data.len() {
            break;
        }
        let payload = at + HEADER..end;
        if crc32fast::hash(&data[payload.clone()]) == crc {
            records.push((at as u64, payload));
        } else {
            corrupt += 1;
        }
        at = end;
    }
    Ok(Scan {
        data,
        records,
        corrupt,
        end: at,
    })
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
    /// `seq` still needs its replay: its trace's decision and the checkpoint do not cover it.
    pub fn needs(&self, trace_id: &[u8], seq: u64) -> bool {
        match <TraceKey>::try_from(trace_id) {
            Ok(key) if key != [0u8; 16] => self
                .decisions
                .get(&key)
                .is_none_or(|(cutoff, _)| seq >= *cutoff),
            // Released at once by its consume; done once a checkpoint covers it.
            _ => seq >= self.checkpoint,
        }
    }

    /// The records of one segment that still matter, decoded. A record that does not decode
    /// is skipped, logged and counted.
    pub fn read(&self, segment: u64) -> Vec<Replayed> {
        let path = segment_path(&self.dir, segment);
        let scan = match scan(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(component = %self.processor, file = %path.display(), error = %e, "cannot read a segment of the durable window's log; its data is not replayed");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (offset, range) in scan.records {
            let payload = &scan.data[range];
            let decoded: Result<Option<Replayed>, String> = match payload[0] {
                KIND_TRACES | KIND_LOGS => match parse_data_prefix(payload) {
                    Some((seq, wall, body)) => {
                        let arrival = self.map.instant(wall);
                        if payload[0] == KIND_TRACES {
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
                    decode_payload::<Traces>(&payload[1..])
                        .map(|d| Some(Replayed::OutboxTraces(d)))
                        .map_err(|e| e.to_string())
                }
                KIND_OUTBOX_LOGS if self.outbox.contains(&(segment, offset)) => {
                    decode_payload::<Logs>(&payload[1..])
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
                    tracing::error!(component = %self.processor, file = %path.display(), offset, error = %e, "skipping a record of the durable window's log that does not decode");
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

#[derive(Default)]
struct Segment {
    bytes: u64,
    /// Latest arrival of a data record in it.
    max_arrival: Option<Instant>,
}

struct State {
    /// Framed records appended since the writer's last write.
    buf: Vec<u8>,
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    buf_records: u64,
    buf_decisions: u64,
    buf_max_arrival: Option<Instant>,
    next_seq: u64,
    /// Arrivals are recorded non-decreasing in `seq` order, whatever the wall clock does.
    last_wall: u64,
    /// Data records appended but not yet ingested by the window: seq → arrival.
    unapplied: BTreeMap<u64, Instant>,
    segments: BTreeMap<u64, Segment>,
    current: u64,
    bytes: u64,
    closed: bool,
}

struct Shared {
    opts: WalOptions,
    clock: Clock,
    state: Mutex<State>,
    wake: Condvar,
    metrics: WalMetrics,
    processor: String,
    /// Running `consume`s, per epoch (see [`Wal::enter`]).
    active: [AtomicUsize; 2],
    epoch: AtomicUsize,
}

/// A processor's write-ahead log (see the module docs).
pub struct Wal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// A data record appended to the log; [`Appended::durable`] waits until it is written.
pub struct Appended {
    applied: Unapplied,
    pub arrival: Instant,
    started: std::time::Instant,
    done: oneshot::Receiver<Result<(), String>>,
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
            Ok(Ok(())) => Ok(self.applied),
            Ok(Err(e)) => Err(WalError::Io(e)),
            Err(_) => Err(WalError::Closed),
        }
    }
}

impl Wal {
    /// Opens (or creates) the log in `opts.dir`: reads what a previous run left (cutting a
    /// torn tail, counting corrupt records) and starts the writer on a new segment.
    pub fn open(
        opts: WalOptions,
        clock: Clock,
        telemetry: &Telemetry,
        processor: &str,
    ) -> io::Result<(Self, Recovery)> {
        std::fs::create_dir_all(&opts.dir)?;
        let metrics = WalMetrics::new(telemetry, processor);
        let numbers = segment_numbers(&opts.dir)?;
        let map = WallMap::new(clock(), (opts.wall)(), opts.max_replay_age);
        let mut recovery = Recovery {
            dir: opts.dir.clone(),
            segments: Vec::new(),
            decisions: HashMap::new(),
            checkpoint: 0,
            outbox: HashSet::new(),
            map,
            metrics: metrics.clone(),
            processor: processor.to_string(),
        };
        let mut segments = BTreeMap::new();
        let mut total = 0;
        let mut max_seq = 0u64;
        let mut last_wall = 0u64;
        for (i, &n) in numbers.iter().enumerate() {
            let path = segment_path(&opts.dir, n);
            let scan = scan(&path)?;
            if scan.corrupt > 0 {
                metrics.corrupt_records.inc_by(scan.corrupt);
                tracing::error!(component = %processor, file = %path.display(), records = scan.corrupt, "skipping records of the durable window's log whose checksum does not match (damaged on disk)");
            }
            if scan.end < scan.data.len() {
                if i + 1 == numbers.len() {
                    metrics.torn_tails.inc();
                    tracing::warn!(component = %processor, file = %path.display(), bytes = scan.data.len() - scan.end, "cutting off a record torn by a crash (it was never acknowledged)");
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(scan.end as u64)?;
                } else {
                    metrics.corrupt_records.inc();
                    tracing::error!(component = %processor, file = %path.display(), bytes = scan.data.len() - scan.end, "skipping the unreadable end of a segment of the durable window's log");
                }
            }
            let mut max_wall = None;
            for (offset, range) in &scan.records {
                let payload = &scan.data[range.clone()];
                match payload[0] {
                    KIND_TRACES | KIND_LOGS => {
                        if let Some((seq, wall, _)) = parse_data_prefix(payload) {
                            max_seq = max_seq.max(seq);
                            last_wall = last_wall.max(wall);
                            max_wall = max_wall.max(Some(wall));
                        }
                    }
                    KIND_DECISIONS => match DecisionBatch::decode(&payload[1..]) {
                        Ok(batch) => {
                            recovery.checkpoint = recovery.checkpoint.max(batch.completed_below);
                            max_seq = max_seq.max(batch.completed_below);
                            // Outbox records before a checkpoint were accepted downstream.
                            recovery.outbox.clear();
                            for d in batch.decisions {
                                let Ok(key) = TraceKey::try_from(&d.trace_id[..]) else {
                                    continue;
                                };
                                max_seq = max_seq.max(d.cutoff);
                                let summary = d
                                    .summary
                                    .filter(|_| d.kept)
                                    .map(|s| Arc::new(s.summary()))
                                    .or_else(|| d.kept.then(|| Arc::new(Summary::default())));
                                match recovery.decisions.get(&key) {
                                    Some((c, _)) if *c > d.cutoff => {}
                                    _ => {
                                        recovery.decisions.insert(key, (d.cutoff, summary));
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            metrics.corrupt_records.inc();
                            tracing::error!(component = %processor, file = %path.display(), offset, error = %e, "skipping a decision record of the durable window's log that does not decode");
                        }
                    },
                    KIND_OUTBOX_TRACES | KIND_OUTBOX_LOGS => {
                        recovery.outbox.insert((n, *offset));
                    }
                    kind => {
                        metrics.corrupt_records.inc();
                        tracing::error!(component = %processor, file = %path.display(), offset, kind, "skipping a record of unknown kind in the durable window's log");
                    }
                }
            }
            let bytes = scan.end as u64;
            total += bytes;
            recovery.segments.push(n);
            segments.insert(
                n,
                Segment {
                    bytes,
                    max_arrival: max_wall.map(|w| map.instant(w)),
                },
            );
        }
        let current = numbers.last().map_or(1, |n| n + 1);
        let file = open_segment(&opts.dir, current, opts.fsync)?;
        segments.insert(current, Segment::default());
        metrics.bytes.set(total as i64);
        metrics.segments.set(segments.len() as i64);
        let shared = Arc::new(Shared {
            clock,
            state: Mutex::new(State {
                buf: Vec::new(),
                waiters: Vec::new(),
                buf_records: 0,
                buf_decisions: 0,
                buf_max_arrival: None,
                next_seq: max_seq + 1,
                last_wall,
                unapplied: BTreeMap::new(),
                segments,
                current,
                bytes: total,
                closed: false,
            }),
            wake: Condvar::new(),
            metrics,
            processor: processor.to_string(),
            active: [AtomicUsize::new(0), AtomicUsize::new(0)],
            epoch: AtomicUsize::new(0),
            opts,
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("weft-wal".to_string())
                .spawn(move || writer(shared, file, current))?
        };
        Ok((
            Self {
                shared,
                writer: Mutex::new(Some(writer)),
            },
            recovery,
        ))
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

    /// Appends a batch; the record gets the next `seq` and its arrival time (now).
    pub fn append<T: Logged>(&self, data: &T) -> Result<Appended, WalError> {
        let mut body = Vec::new();
        encode_payload(data, &mut body);
        let mut body_crc = crc32fast::Hasher::new();
        body_crc.update(&body);
        let len = DATA_PREFIX + body.len();
        let (tx, rx) = oneshot::channel();
        let mut st = self.shared.state.lock();
        if st.closed {
            return Err(WalError::Closed);
        }
        let on_disk = st.bytes + st.buf.len() as u64;
        if on_disk > 0 && on_disk + (HEADER + len) as u64 > self.shared.opts.max_bytes {
            return Err(WalError::Full(on_disk));
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let arrival = (self.shared.clock)();
        let wall = st.last_wall.max((self.shared.opts.wall)());
        st.last_wall = wall;
        let mut prefix = [0u8; DATA_PREFIX];
        prefix[0] = T::DATA;
        prefix[1..9].copy_from_slice(&seq.to_le_bytes());
        prefix[9..17].copy_from_slice(&wall.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&prefix);
        crc.combine(&body_crc);
        st.buf.extend_from_slice(&(len as u32).to_le_bytes());
        st.buf.extend_from_slice(&crc.finalize().to_le_bytes());
        st.buf.extend_from_slice(&prefix);
        st.buf.extend_from_slice(&body);
        st.buf_records += 1;
        st.buf_max_arrival = st.buf_max_arrival.max(Some(arrival));
        st.waiters.push(tx);
        st.unapplied.insert(seq, arrival);
        drop(st);
        self.shared.wake.notify_one();
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

    /// Appends released data the next stage refused; resolves once it is written.
    pub fn append_outbox<T: Logged>(&self, data: &T) -> oneshot::Receiver<Result<(), String>> {
        let mut body = Vec::new();
        encode_payload(data, &mut body);
        self.push(frame(T::OUTBOX, &[], &body))
    }

    /// Appends decisions and a checkpoint; not waited for (losing it only means sending again).
    pub fn append_decisions(&self, batch: &DecisionBatch) {
        let body = batch.encode_to_vec();
        let mut st = self.shared.state.lock();
        if st.closed {
            return;
        }
        st.buf.extend_from_slice(&frame(KIND_DECISIONS, &[], &body));
        st.buf_records += 1;
        st.buf_decisions += batch.decisions.len() as u64;
        drop(st);
        self.shared.wake.notify_one();
    }

    fn push(&self, record: Vec<u8>) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.shared.state.lock();
        if st.closed {
            let _ = tx.send(Err("the log is closed".to_string()));
            return rx;
        }
        st.buf.extend_from_slice(&record);
        st.buf_records += 1;
        st.waiters.push(tx);
        drop(st);
        self.shared.wake.notify_one();
        rx
    }

    /// Resolves once everything appended so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.state.lock();
            if st.closed {
                return;
            }
            st.waiters.push(tx);
        }
        self.shared.wake.notify_one();
        let _ = rx.await;
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
    /// closed.
    fn registration_floor(&self) -> Option<Instant> {
        let st = self.shared.state.lock();
        if !st.segments.keys().any(|n| *n != st.current) {
            return None;
        }
        let now = (self.shared.clock)();
        Some(st.unapplied.values().min().copied().unwrap_or(now).min(now))
    }

    /// Deletes closed segments, oldest first, whose records all arrived before `watermark`.
    fn delete_before(&self, watermark: Instant) -> usize {
        let mut st = self.shared.state.lock();
        let mut deleted = 0;
        let closed: Vec<u64> = st
            .segments
            .keys()
            .copied()
            .filter(|n| *n != st.current)
            .collect();
        for n in closed {
            let deletable = st
                .segments
                .get(&n)
                .is_some_and(|s| s.max_arrival.is_none_or(|a| a < watermark));
            if !deletable {
                break;
            }
            match std::fs::remove_file(segment_path(&self.shared.opts.dir, n)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(component = %self.shared.processor, error = %e, "cannot delete a segment of the durable window's log; retrying later");
                    break;
                }
            }
            if let Some(seg) = st.segments.remove(&n) {
                st.bytes = st.bytes.saturating_sub(seg.bytes);
            }
            deleted += 1;
        }
        self.shared.metrics.bytes.set(st.bytes as i64);
        self.shared.metrics.segments.set(st.segments.len() as i64);
        deleted
    }

    /// Bytes of segment files on disk.
    pub fn bytes(&self) -> u64 {
        self.shared.state.lock().bytes
    }

    /// Segment files on disk (the one being written included).
    pub fn segment_count(&self) -> usize {
        self.shared.state.lock().segments.len()
    }

    /// Whether nothing is waiting to be ingested and no `consume` is running.
    pub fn idle(&self) -> bool {
        self.shared.state.lock().unapplied.is_empty() && self.quiet(0) && self.quiet(1)
    }

    /// Stops the writer once it has written everything appended (synced, with fsync).
    pub async fn close(&self) {
        let handle = self.stop_writer();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }

    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        self.shared.state.lock().closed = true;
        self.shared.wake.notify_all();
        self.writer.lock().take()
    }

    /// Closes the log and deletes every segment: for a clean shutdown that left nothing to
    /// replay.
    pub async fn close_and_clear(&self) {
        self.close().await;
        let mut st = self.shared.state.lock();
        let numbers: Vec<u64> = st.segments.keys().copied().collect();
        for n in numbers {
            if let Err(e) = std::fs::remove_file(segment_path(&self.shared.opts.dir, n)) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(component = %self.shared.processor, error = %e, "cannot delete a segment of the durable window's log");
                    continue;
                }
            }
            if let Some(seg) = st.segments.remove(&n) {
                st.bytes = st.bytes.saturating_sub(seg.bytes);
            }
        }
        self.shared.metrics.bytes.set(st.bytes as i64);
        self.shared.metrics.segments.set(st.segments.len() as i64);
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(h) = self.stop_writer() {
            let _ = h.join();
        }
    }
}

fn open_segment(dir: &Path, n: u64, fsync: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, n))?;
    if fsync {
        // The new file's name must survive a power loss too.
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

enum Job {
    Write {
        buf: Vec<u8>,
        waiters: Vec<oneshot::Sender<Result<(), String>>>,
        records: u64,
        decisions: u64,
        max_arrival: Option<Instant>,
    },
    RotateIdle,
    Exit,
}

/// The group-commit writer: writes everything appended since its last write at once.
fn writer(shared: Arc<Shared>, mut file: File, mut current: u64) {
    let opts = &shared.opts;
    let mut written = 0u64;
    let mut opened = std::time::Instant::now();
    let mut spare = Vec::new();
    loop {
        let job = {
            let mut st = shared.state.lock();
            loop {
                if !st.buf.is_empty() || !st.waiters.is_empty() {
                    let buf = std::mem::replace(&mut st.buf, std::mem::take(&mut spare));
                    break Job::Write {
                        buf,
                        waiters: std::mem::take(&mut st.waiters),
                        records: std::mem::take(&mut st.buf_records),
                        decisions: std::mem::take(&mut st.buf_decisions),
                        max_arrival: st.buf_max_arrival.take(),
                    };
                }
                if st.closed {
                    break Job::Exit;
                }
                let idle = shared
                    .wake
                    .wait_for(&mut st, Duration::from_secs(1))
                    .timed_out();
                if idle && st.buf.is_empty() && written > 0 && opened.elapsed() >= opts.rotate_after
                {
                    break Job::RotateIdle;
                }
            }
        };
        match job {
            Job::Exit => {
                if opts.fsync {
                    let _ = file.sync_data();
                }
                return;
            }
            Job::RotateIdle => {
                if let Err(e) = rotate(&shared, &mut file, &mut current) {
                    tracing::warn!(component = %shared.processor, error = %e, "cannot start a new segment of the durable window's log");
                }
                written = 0;
                opened = std::time::Instant::now();
            }
            Job::Write {
                mut buf,
                waiters,
                records,
                decisions,
                max_arrival,
            } => {
                if buf.is_empty() {
                    // Only waiters of a flush: everything before them is written.
                    for w in waiters {
                        let _ = w.send(Ok(()));
                    }
                    continue;
                }
                if written >= opts.segment_bytes
                    || (written > 0 && opened.elapsed() >= opts.rotate_after)
                {
                    match rotate(&shared, &mut file, &mut current) {
                        Ok(()) => {
                            written = 0;
                            opened = std::time::Instant::now();
                        }
                        Err(e) => {
                            tracing::warn!(component = %shared.processor, error = %e, "cannot start a new segment of the durable window's log; writing on in the current one")
                        }
                    }
                }
                let result = file.write_all(&buf).and_then(|()| {
                    if opts.fsync {
                        file.sync_data()
                    } else {
                        Ok(())
                    }
                });
                let len = buf.len() as u64;
                {
                    let mut st = shared.state.lock();
                    if result.is_ok() {
                        if let Some(seg) = st.segments.get_mut(&current) {
                            seg.bytes += len;
                            seg.max_arrival = seg.max_arrival.max(max_arrival);
                        }
                        st.bytes += len;
                        shared.metrics.bytes.set(st.bytes as i64);
                    }
                }
                let answer = match &result {
                    Ok(()) => {
                        written += len;
                        shared.metrics.records_per_write.observe(records as f64);
                        shared.metrics.decisions_written.inc_by(decisions);
                        Ok(())
                    }
                    Err(e) => {
                        shared.metrics.write_errors.inc();
                        tracing::error!(component = %shared.processor, error = %e, "cannot write the durable window's log; the batches are refused (retryably)");
                        // Whatever part of the write landed must not be read as records:
                        // cut it off, and go on in a new segment.
                        let _ = file.set_len(written);
                        if rotate(&shared, &mut file, &mut current).is_ok() {
                            written = 0;
                            opened = std::time::Instant::now();
                        }
                        Err(e.to_string())
                    }
                };
                for w in waiters {
                    let _ = w.send(answer.clone());
                }
                buf.clear();
                if buf.capacity() <= 4 * 1024 * 1024 {
                    spare = buf;
                }
            }
        }
    }
}

fn rotate(shared: &Shared, file: &mut File, current: &mut u64) -> io::Result<()> {
    if shared.opts.fsync {
        file.sync_data()?;
    }
    let next = *current + 1;
    *file = open_segment(&shared.opts.dir, next, shared.opts.fsync)?;
    *current = next;
    let mut st = shared.state.lock();
    st.current = next;
    st.segments.insert(next, Segment::default());
    shared.metrics.segments.set(st.segments.len() as i64);
    Ok(())
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
