//! A crash-safe on-disk queue of encoded batches: the `sending_queue` of an exporter whose
//! `storage` names a `file_storage` extension. It is a [`SegmentLog`] (see [`crate::storage`]
//! for the files, the record format, the torn-tail and corruption rule, and the writer
//! thread) in one folder per exporter and signal, holding two kinds of records:
//!
//! | kind | payload after the kind byte | written |
//! |---|---|---|
//! | 1 | an OTLP request (protobuf), as the exporter received it | by [`FileQueue::push`], before the batch is acknowledged |
//! | 2 | `(segment: u64 LE, offset: u64 LE)` of delivered batches | by [`FileQueue::done`], after delivery (bookkeeping: not synced on its own) |
//!
//! Contract:
//! - A pushed batch is acknowledged ([`Receipt::written`]) once the log's writer thread has
//!   written it (and, with `fsync: true`, synced it): it survives `kill -9` of Weft and, with
//!   `fsync`, a power loss. Pushing never does file I/O on the caller's thread.
//! - A batch is handed out ([`FileQueue::pop`], read back on a blocking thread) only once it
//!   is written, and is delivered at least once: its delivery record follows the delivery,
//!   so a crash between the two sends it again after the restart. The elasticsearch
//!   exporter's deterministic `_id` turns that into exactly once.
//! - On open, the log is read by its rule: a batch torn by a crash (never acknowledged) is
//!   cut off; a damaged one is skipped, logged and counted, never delivered corrupted.
//!   Batches without a delivery record are handed out again, oldest first.
//! - A closed segment is deleted once every batch in it is delivered. Delivery records it
//!   holds for older segments that still wait for a batch are written again first, so a
//!   batch stuck in an old segment never makes delivered ones be sent twice.
//! - The queue is bounded by the extension's `max_size_mib` (bytes of segment files) and by
//!   `queue_size` batches not yet handed out.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{oneshot, Notify};

use crate::storage::{
    self, Append, AppendError, Done, LogOptions, Position, Record, SegmentLog, Written,
};

const KIND_BATCH: u8 = 1;
const KIND_DELIVERED: u8 = 2;

/// Bytes of one entry of a delivery record.
const DELIVERED_ENTRY: usize = 16;

/// How long a worker waits before reading a batch again after an I/O error.
const READ_RETRY: Duration = Duration::from_secs(1);

/// Where a batch lives; handed out with it and given back to [`FileQueue::done`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(Position);

/// Why a push was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the persistent queue is full ({0})")]
    Full(&'static str),
    #[error("the persistent queue is closed")]
    Closed,
    #[error("cannot write to the persistent queue: {0}")]
    Io(String),
}

/// A pushed batch, on its way to the disk.
pub struct Receipt(oneshot::Receiver<Written>);

impl Receipt {
    /// Resolves once the batch is written (and synced, with `fsync`): from then on it is the
    /// queue's, and survives a crash.
    pub async fn written(self) -> Result<(), PushError> {
        match self.0.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(PushError::Io(e)),
            Err(_) => Err(PushError::Closed),
        }
    }
}

#[derive(Default)]
struct Segment {
    /// Batches appended to it and not yet written.
    appending: u64,
    /// Batches written to it.
    records: u64,
    /// Offsets of its batches that are delivered (or given up for good).
    delivered: HashSet<u64>,
}

impl Segment {
    fn finished(&self) -> bool {
        self.appending == 0 && self.delivered.len() as u64 >= self.records
    }
}

struct State {
    /// Written, not yet handed out, oldest first.
    ready: VecDeque<Position>,
    /// Pushed, not yet written.
    appending: u64,
    /// Handed out, not yet done.
    out: u64,
    /// The segments holding batches (a segment of the log that is not here holds none).
    segments: BTreeMap<u64, Segment>,
    /// The log's current segment when segments were last looked at for deletion.
    swept_at: u64,
    closed: bool,
}

struct Inner {
    log: SegmentLog,
    dir: PathBuf,
    owner: String,
    max_records: u64,
    state: Mutex<State>,
    notify: Notify,
    corrupt: Counter,
}

/// The persistent queue (see the module docs).
pub struct FileQueue {
    inner: Arc<Inner>,
    /// Damaged records skipped when the queue was opened.
    pub corrupted: u64,
}

impl FileQueue {
    /// Opens (or creates) the queue in `dir`, recovering what a previous run left.
    pub fn open(dir: &Path, fsync: bool, max_bytes: u64, max_records: u64) -> io::Result<Self> {
        Self::open_with(
            LogOptions::new(dir.to_path_buf(), fsync, max_bytes, "file_storage"),
            max_records,
        )
    }

    /// As [`FileQueue::open`], with the log's options (its owner and metrics) given.
    pub fn open_with(opts: LogOptions, max_records: u64) -> io::Result<Self> {
        let dir = opts.dir.clone();
        let owner = opts.owner.clone();
        let corrupt = opts.metrics.corrupt_records.clone();
        let mut batches: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut delivered: HashSet<Position> = HashSet::new();
        let mut unreadable = 0u64;
        let (log, opened) = SegmentLog::open(opts, |segment, offset, payload| {
            match payload.split_first() {
                Some((&KIND_BATCH, _)) => batches.entry(segment).or_default().push(offset),
                Some((&KIND_DELIVERED, entries)) if entries.len() % DELIVERED_ENTRY == 0 => {
                    delivered.extend(entries.chunks_exact(DELIVERED_ENTRY).map(decode_position))
                }
                _ => {
                    unreadable += 1;
                    corrupt.inc();
                    tracing::error!(component = %owner, segment, offset, "skipping a record of the persistent queue that is neither a batch nor a delivery");
                }
            }
            None
        })?;
        let mut state = State {
            ready: VecDeque::new(),
            appending: 0,
            out: 0,
            segments: BTreeMap::new(),
            swept_at: 0,
            closed: false,
        };
        for n in &opened.segments {
            let offsets = batches.remove(n).unwrap_or_default();
            let mut segment = Segment {
                records: offsets.len() as u64,
                ..Segment::default()
            };
            for offset in offsets {
                let at = Position {
                    segment: *n,
                    offset,
                };
                if delivered.contains(&at) {
                    segment.delivered.insert(offset);
                } else {
                    state.ready.push_back(at);
                }
            }
            if segment.records > 0 {
                state.segments.insert(*n, segment);
            }
        }
        let queue = Self {
            inner: Arc::new(Inner {
                log,
                dir,
                owner,
                max_records,
                state: Mutex::new(state),
                notify: Notify::new(),
                corrupt,
            }),
            corrupted: opened.corrupt + unreadable,
        };
        // What the previous run finished delivering goes now.
        queue.inner.sweep(&mut queue.inner.state.lock(), true);
        Ok(queue)
    }

    /// Batches not yet handed out (written, or being written).
    pub fn len(&self) -> u64 {
        let st = self.inner.state.lock();
        st.ready.len() as u64 + st.appending
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batches not yet delivered: not handed out, or handed out and not done. What a
    /// shutdown leaves for the next start.
    pub fn undelivered(&self) -> u64 {
        let st = self.inner.state.lock();
        st.ready.len() as u64 + st.appending + st.out
    }

    /// Appends one batch; it is the queue's once [`Receipt::written`] resolves. Refused when
    /// the queue is full or closed. Never touches the disk on the caller's thread.
    pub fn push(&self, payload: &[u8]) -> Result<Receipt, PushError> {
        let crc = storage::checksum(payload);
        let (tx, rx) = oneshot::channel();
        let inner = &self.inner;
        let mut st = inner.state.lock();
        if st.closed {
            return Err(PushError::Closed);
        }
        if st.ready.len() as u64 + st.appending >= inner.max_records {
            return Err(PushError::Full("queue_size batches"));
        }
        // The writer completes the batch only after this lock is released, by which time the
        // segment it went to is known.
        let segment_of = Arc::new(AtomicU64::new(0));
        let done = {
            let inner = inner.clone();
            let segment_of = segment_of.clone();
            Done::Call(Box::new(move |written| {
                inner.written(&segment_of, written, tx)
            }))
        };
        let segment = inner
            .log
            .append(
                Record::new(&[KIND_BATCH], payload).with_body_checksum(crc),
                Append::data(done),
            )
            .map_err(|e| match e {
                AppendError::Full(_) => PushError::Full("max_size_mib of storage"),
                AppendError::Closed => PushError::Closed,
                e @ AppendError::TooLarge(_) => PushError::Io(e.to_string()),
            })?;
        segment_of.store(segment, Ordering::Release);
        st.appending += 1;
        st.segments.entry(segment).or_default().appending += 1;
        Ok(Receipt(rx))
    }

    /// The next batch, waiting for one; `None` once the queue is closed and nothing waits.
    pub async fn pop(&self) -> Option<(Ticket, Bytes)> {
        self.pop_map(|bytes| bytes).await
    }

    /// As [`FileQueue::pop`], with `decode` applied to the batch on the blocking thread that
    /// reads it (so decoding stays off the async workers too).
    pub async fn pop_map<R: Send + 'static>(
        &self,
        decode: impl Fn(Bytes) -> R + Clone + Send + 'static,
    ) -> Option<(Ticket, R)> {
        let inner = &self.inner;
        loop {
            let notified = inner.notify.notified();
            let next = {
                let mut st = inner.state.lock();
                match st.ready.pop_front() {
                    Some(at) => {
                        st.out += 1;
                        Some(at)
                    }
                    None if st.closed && st.appending == 0 => return None,
                    None => None,
                }
            };
            let Some(at) = next else {
                notified.await;
                continue;
            };
            let dir = inner.dir.clone();
            let decode = decode.clone();
            let read = tokio::task::spawn_blocking(move || {
                let payload = storage::read_record(&dir, at)?;
                match payload.first() {
                    Some(&KIND_BATCH) => Ok(decode(Bytes::from(payload).slice(1..))),
                    _ => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "not a batch record",
                    )),
                }
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
            match read {
                Ok(batch) => return Some((Ticket(at), batch)),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    inner.corrupt.inc();
                    tracing::error!(component = %inner.owner, error = %e, segment = at.segment, offset = at.offset, "skipping a damaged batch of the persistent queue (checksum mismatch): it is lost");
                    self.done(Ticket(at));
                }
                Err(e) => {
                    tracing::error!(component = %inner.owner, error = %e, dir = %inner.dir.display(), "cannot read the persistent queue; retrying in 1s");
                    {
                        let mut st = inner.state.lock();
                        st.out -= 1;
                        st.ready.push_front(at);
                    }
                    tokio::time::sleep(READ_RETRY).await;
                }
            }
        }
    }

    /// Marks a batch delivered (or given up for good): a delivery record is appended, and a
    /// closed segment whose batches are all delivered is deleted.
    pub fn done(&self, ticket: Ticket) {
        let at = ticket.0;
        let inner = &self.inner;
        let mut st = inner.state.lock();
        st.out = st.out.saturating_sub(1);
        let finished = st.segments.get_mut(&at.segment).is_some_and(|seg| {
            seg.delivered.insert(at.offset);
            seg.finished()
        });
        let entry = encode_position(at);
        if let Err(e) = inner.log.append(
            Record::new(&[KIND_DELIVERED], &entry),
            Append::bookkeeping(Done::Nothing),
        ) {
            // Only after the queue was shut down: the batch is sent again next start.
            tracing::debug!(component = %inner.owner, error = %e, "a delivery was not recorded");
        }
        inner.sweep(&mut st, finished);
    }

    /// No more pushes; `pop` returns `None` once everything written was handed out.
    pub fn close(&self) {
        self.inner.state.lock().closed = true;
        self.inner.notify.notify_waiters();
    }

    /// Closes the queue and its log: what was appended (delivery records included) is
    /// written before it returns. For shutdown, once no worker hands batches back any more.
    pub async fn shutdown(&self) {
        self.close();
        self.inner.log.close().await;
    }
}

impl Inner {
    /// A pushed batch's write ended (on the log's writer thread). `segment_of` is read under
    /// the state lock: `push` stores it while holding that lock, so it is set by then (read
    /// before the lock, a fast writer could see 0 and file the batch under no segment).
    fn written(&self, segment_of: &AtomicU64, written: Written, tx: oneshot::Sender<Written>) {
        let mut st = self.state.lock();
        let segment = segment_of.load(Ordering::Acquire);
        st.appending = st.appending.saturating_sub(1);
        let seg = st.segments.entry(segment).or_default();
        seg.appending = seg.appending.saturating_sub(1);
        match &written {
            Ok(at) => {
                seg.records += 1;
                st.ready.push_back(*at);
            }
            Err(_) => self.sweep(&mut st, true),
        }
        drop(st);
        if written.is_ok() {
            self.notify.notify_one();
        } else {
            // A closed queue with nothing left being written: waiting pops end.
            self.notify.notify_waiters();
        }
        // The pusher may have stopped waiting (its request was cancelled): the batch is
        // queued all the same.
        let _ = tx.send(written);
    }

    /// Deletes the closed segments holding no batch that waits, when something may have
    /// changed: `changed` (a segment finished), or the log closed a segment since last time.
    fn sweep(&self, st: &mut State, changed: bool) {
        let current = self.log.current();
        if !changed && current == st.swept_at {
            return;
        }
        st.swept_at = current;
        let gone: Vec<u64> = self
            .log
            .segments()
            .into_iter()
            .filter(|s| !s.current)
            .map(|s| s.number)
            .filter(|n| st.segments.get(n).is_none_or(Segment::finished))
            .collect();
        let Some(&newest_gone) = gone.iter().max() else {
            return;
        };
        // Delivery records in the segments going away may be all an older, still-waiting
        // segment has: write them again, before the deletion (the writer keeps that order).
        let carried: Vec<u8> = st
            .segments
            .iter()
            .filter(|(n, seg)| **n < newest_gone && !gone.contains(n) && !seg.delivered.is_empty())
            .flat_map(|(n, seg)| {
                seg.delivered.iter().flat_map(|offset| {
                    encode_position(Position {
                        segment: *n,
                        offset: *offset,
                    })
                })
            })
            .collect();
        if !carried.is_empty() {
            if let Err(e) = self.log.append(
                Record::new(&[KIND_DELIVERED], &carried),
                Append::bookkeeping(Done::Nothing),
            ) {
                tracing::debug!(component = %self.owner, error = %e, "deliveries not carried over; segments are kept");
                return;
            }
        }
        for n in gone {
            self.log.delete(n);
            st.segments.remove(&n);
        }
    }
}

fn encode_position(at: Position) -> [u8; DELIVERED_ENTRY] {
    let mut out = [0u8; DELIVERED_ENTRY];
    out[..8].copy_from_slice(&at.segment.to_le_bytes());
    out[8..].copy_from_slice(&at.offset.to_le_bytes());
    out
}

fn decode_position(entry: &[u8]) -> Position {
    let mut segment = [0u8; 8];
    let mut offset = [0u8; 8];
    segment.copy_from_slice(&entry[..8]);
    offset.copy_from_slice(&entry[8..DELIVERED_ENTRY]);
    Position {
        segment: u64::from_le_bytes(segment),
        offset: u64::from_le_bytes(offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SEGMENT_BYTES;

    fn open(dir: &Path) -> FileQueue {
        FileQueue::open(dir, false, 1 << 30, 1000).unwrap()
    }

    async fn push(q: &FileQueue, payload: &[u8]) {
        q.push(payload).unwrap().written().await.unwrap();
    }

    /// Segment files (not the deleted ones kept for reuse while the log is open).
    fn segment_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count()
    }

    #[tokio::test]
    async fn records_come_back_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path());
        for i in 0..5u8 {
            push(&q, &[i; 10]).await;
        }
        let (t0, p0) = q.pop().await.unwrap();
        assert_eq!(p0, vec![0u8; 10]);
        q.done(t0);
        let (_t1, p1) = q.pop().await.unwrap();
        assert_eq!(p1, vec![1u8; 10]);
        // Crash: record 1 was handed out but not acknowledged; 2..4 never handed out.
        q.inner.log.flushed().await;
        drop(q);
        let q = open(dir.path());
        assert_eq!(q.len(), 4);
        let mut got = Vec::new();
        while !q.is_empty() {
            let (t, p) = q.pop().await.unwrap();
            got.push(p[0]);
            q.done(t);
        }
        assert_eq!(
            got,
            [1, 2, 3, 4],
            "at least once: the unacknowledged record comes again"
        );
        q.shutdown().await;
        drop(q);
        let q = open(dir.path());
        assert!(q.is_empty());
        q.inner.log.flushed().await;
        assert_eq!(segment_files(dir.path()), 0, "all delivered: nothing left");
    }

    #[tokio::test]
    async fn a_queue_dropped_with_a_push_in_flight_still_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path());
        let receipt = q.push(b"in flight").unwrap();
        // The write's completion now holds the last reference to the queue: the writer
        // thread drops it, and must end without waiting for itself.
        drop(q);
        receipt.written().await.expect("written");
        let q = open(dir.path());
        let (_, p) = q.pop().await.unwrap();
        assert_eq!(p, b"in flight"[..]);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_a_corrupt_record_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path());
        push(&q, b"first").await;
        push(&q, b"second").await;
        push(&q, b"third").await;
        q.shutdown().await;
        drop(q);
        let path = dir.path().join("segment-00000000000000000001.log");
        let mut bytes = std::fs::read(&path).unwrap();
        // The log's writer sealed the segment when it closed; a crash leaves no seal.
        assert!(bytes.ends_with(&crate::storage::seal(1)));
        bytes.truncate(bytes.len() - crate::storage::seal(1).len());
        // Flip a byte of "second", and tear a fourth record half-written.
        let second = bytes.windows(6).position(|w| w == b"second").unwrap();
        bytes[second] ^= 0xff;
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        let q = open(dir.path());
        assert_eq!(q.corrupted, 1);
        let mut got = Vec::new();
        while !q.is_empty() {
            let (t, p) = q.pop().await.unwrap();
            got.push(String::from_utf8(p.to_vec()).unwrap());
            q.done(t);
        }
        assert_eq!(got, ["first", "third"]);
    }

    #[tokio::test]
    async fn bounds_refuse_and_delivered_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let q = FileQueue::open(dir.path(), true, 1 << 30, 2).unwrap();
        push(&q, b"a").await;
        push(&q, b"b").await;
        assert!(matches!(q.push(b"c"), Err(PushError::Full(_))));
        let (t, _) = q.pop().await.unwrap();
        q.done(t);
        push(&q, b"c").await;

        // A segment closes past its size; once all its batches are delivered it goes.
        let q2dir = tempfile::tempdir().unwrap();
        let q2 = FileQueue::open(q2dir.path(), false, 1 << 30, 100).unwrap();
        let big = vec![7u8; SEGMENT_BYTES as usize];
        push(&q2, &big).await;
        push(&q2, b"next segment").await;
        assert_eq!(segment_files(q2dir.path()), 2);
        let (t1, _) = q2.pop().await.unwrap();
        q2.done(t1);
        q2.inner.log.flushed().await;
        assert_eq!(segment_files(q2dir.path()), 1, "delivered segment deleted");
        let (_, p) = q2.pop().await.unwrap();
        assert_eq!(p, b"next segment"[..]);
        q2.close();
        assert!(q2.pop().await.is_none());

        // The bytes bound: an empty queue takes one batch of any size, then refuses.
        let q3dir = tempfile::tempdir().unwrap();
        let q3 = FileQueue::open(q3dir.path(), false, 100, 100).unwrap();
        push(&q3, &[1u8; 200]).await;
        assert!(matches!(
            q3.push(b"more"),
            Err(PushError::Full("max_size_mib of storage"))
        ));
    }

    #[tokio::test]
    async fn a_batch_stuck_in_an_old_segment_does_not_make_delivered_ones_come_again() {
        let dir = tempfile::tempdir().unwrap();
        let opts = || {
            let mut o = LogOptions::new(dir.path().to_path_buf(), false, 1 << 30, "test");
            // A batch record here is 18 bytes: two fill a segment.
            o.segment_bytes = 30;
            o
        };
        let q = FileQueue::open_with(opts(), 100).unwrap();
        push(&q, b"stuck").await;
        push(&q, b"done1").await;
        let (_stuck, _) = q.pop().await.unwrap();
        let (t, p) = q.pop().await.unwrap();
        assert_eq!(p, b"done1"[..]);
        // Its delivery record goes to segment 2, with the next batch.
        q.done(t);
        push(&q, b"later").await;
        let (t, _) = q.pop().await.unwrap();
        q.done(t);
        // Segment 2 is all delivered and goes, while segment 1 waits for "stuck".
        q.inner.log.flushed().await;
        let exists = |n: u64| dir.path().join(format!("segment-{n:020}.log")).exists();
        assert!(exists(1) && !exists(2));
        drop(q);

        let q = FileQueue::open_with(opts(), 100).unwrap();
        let (_, p) = q.pop().await.unwrap();
        assert_eq!(p, b"stuck"[..], "the undelivered batch comes again");
        assert!(
            q.is_empty(),
            "and only it: the delivery of done1 was carried over before segment 2 went"
        );
    }
}
