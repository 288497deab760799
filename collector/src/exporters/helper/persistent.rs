//! A crash-safe on-disk queue of encoded batches: the `sending_queue` of an exporter whose
//! `storage` names a `file_storage` extension.
//!
//! Layout, in one directory per exporter and signal:
//!
//! ```text
//! seg-00000000000000000001.log   records: [len: u32 LE][crc32: u32 LE][payload: len bytes]
//! seg-00000000000000000001.ack   offsets (u64 LE) of the records already delivered
//! seg-00000000000000000002.log   ... written to until it passes SEGMENT_BYTES
//! ```
//!
//! Contract:
//! - [`FileQueue::push`] returns only once the record is written to the segment file (and, with
//!   `fsync: true`, synced to the disk). A batch it accepted survives `kill -9` of Weft (the
//!   kernel holds the written bytes) and, with `fsync`, a power loss.
//! - A record is delivered at least once: its offset goes to the `.ack` file after delivery, so
//!   a crash between the two re-delivers it on restart. The elasticsearch exporter's
//!   deterministic `_id` turns that into exactly once.
//! - On open, every segment is scanned: a torn record at the end of the last segment (a crash
//!   mid-write, never acknowledged to anyone) is cut off; a record whose checksum does not
//!   match is skipped and counted, never delivered corrupted.
//! - A segment whose records are all acknowledged is deleted, with its `.ack` file.
//! - The queue is bounded by `max_bytes` of segment files and by `max_records` waiting records.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// A segment is closed for writing once it holds this many bytes.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const HEADER: u64 = 8;

/// Where a record lives; handed out with it and given back to [`FileQueue::done`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket {
    segment: u64,
    offset: u64,
}

/// Why a push was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the persistent queue is full ({0})")]
    Full(&'static str),
    #[error("the persistent queue is closed")]
    Closed,
    #[error("cannot write to the persistent queue: {0}")]
    Io(#[from] io::Error),
}

struct Segment {
    /// Records written to it (valid ones).
    records: u64,
    /// Records acknowledged (delivered or given up for good).
    acked: u64,
    bytes: u64,
    ack_file: Option<File>,
}

struct State {
    segments: BTreeMap<u64, Segment>,
    writer: File,
    write_segment: u64,
    write_offset: u64,
    /// The next record to hand out.
    read_segment: u64,
    read_offset: u64,
    reader: Option<(u64, BufReader<File>)>,
    /// Offsets acknowledged before the last start, skipped when reading.
    acked_before: HashSet<Ticket>,
    /// Records written and not yet handed out.
    waiting: u64,
    bytes: u64,
    closed: bool,
}

pub struct FileQueue {
    dir: PathBuf,
    fsync: bool,
    max_bytes: u64,
    max_records: u64,
    state: Mutex<State>,
    notify: Notify,
    /// Records skipped on open because their checksum did not match.
    pub corrupted: u64,
}

fn segment_path(dir: &Path, n: u64, ext: &str) -> PathBuf {
    dir.join(format!("seg-{n:020}.{ext}"))
}

fn checksum(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

impl FileQueue {
    /// Opens (or creates) the queue in `dir`, recovering what a previous run left.
    pub fn open(dir: &Path, fsync: bool, max_bytes: u64, max_records: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut numbers: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("seg-")?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()
            })
            .collect();
        numbers.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut acked_before = HashSet::new();
        let mut corrupted = 0;
        let mut waiting = 0;
        let mut total = 0;
        let last = numbers.last().copied();
        for &n in &numbers {
            let acks = read_acks(&segment_path(dir, n, "ack"))?;
            let scan = scan_segment(&segment_path(dir, n, "log"), Some(n) == last)?;
            corrupted += scan.corrupted;
            let acked = scan.offsets.iter().filter(|o| acks.contains(o)).count() as u64;
            if acked == scan.offsets.len() as u64 {
                // Fully delivered (or empty) before the crash: nothing to keep.
                let _ = std::fs::remove_file(segment_path(dir, n, "log"));
                let _ = std::fs::remove_file(segment_path(dir, n, "ack"));
                continue;
            }
            for o in &scan.offsets {
                if acks.contains(o) {
                    acked_before.insert(Ticket {
                        segment: n,
                        offset: *o,
                    });
                }
            }
            waiting += scan.offsets.len() as u64 - acked;
            total += scan.end;
            segments.insert(
                n,
                Segment {
                    records: scan.offsets.len() as u64,
                    acked,
                    bytes: scan.end,
                    ack_file: None,
                },
            );
        }
        let write_segment = last.map_or(1, |n| n + 1);
        let writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(dir, write_segment, "log"))?;
        segments.insert(
            write_segment,
            Segment {
                records: 0,
                acked: 0,
                bytes: 0,
                ack_file: None,
            },
        );
        let read_segment = *segments.keys().next().unwrap_or(&write_segment);
        Ok(Self {
            dir: dir.to_path_buf(),
            fsync,
            max_bytes,
            max_records,
            state: Mutex::new(State {
                segments,
                writer,
                write_segment,
                write_offset: 0,
                read_segment,
                read_offset: 0,
                reader: None,
                acked_before,
                waiting,
                bytes: total,
                closed: false,
            }),
            notify: Notify::new(),
            corrupted,
        })
    }

    /// Records written and not yet handed out.
    pub fn len(&self) -> u64 {
        self.state.lock().waiting
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one record; returns once it is written (and synced, with `fsync`).
    pub fn push(&self, payload: &[u8]) -> Result<(), PushError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(PushError::Closed);
        }
        let size = HEADER + payload.len() as u64;
        if st.waiting >= self.max_records {
            return Err(PushError::Full("queue_size batches"));
        }
        if st.bytes + size > self.max_bytes && st.waiting > 0 {
            return Err(PushError::Full("max_size_mib of storage"));
        }
        if st.write_offset >= SEGMENT_BYTES {
            self.rotate(&mut st)?;
        }
        let mut record = Vec::with_capacity(size as usize);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(payload).to_le_bytes());
        record.extend_from_slice(payload);
        st.writer.write_all(&record)?;
        if self.fsync {
            st.writer.sync_data()?;
        }
        st.write_offset += size;
        st.bytes += size;
        st.waiting += 1;
        let ws = st.write_segment;
        if let Some(seg) = st.segments.get_mut(&ws) {
            seg.records += 1;
            seg.bytes += size;
        }
        drop(st);
        self.notify.notify_one();
        Ok(())
    }

    fn rotate(&self, st: &mut State) -> io::Result<()> {
        st.writer.sync_data()?;
        let old = st.write_segment;
        if st.segments.get(&old).is_some_and(|s| s.acked >= s.records) {
            // Everything in it was already delivered while it was being written.
            if let Some(seg) = st.segments.remove(&old) {
                st.bytes = st.bytes.saturating_sub(seg.bytes);
            }
            let _ = std::fs::remove_file(segment_path(&self.dir, old, "log"));
            let _ = std::fs::remove_file(segment_path(&self.dir, old, "ack"));
        }
        let next = st.write_segment + 1;
        st.writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, next, "log"))?;
        st.write_segment = next;
        st.write_offset = 0;
        st.segments.insert(
            next,
            Segment {
                records: 0,
                acked: 0,
                bytes: 0,
                ack_file: None,
            },
        );
        Ok(())
    }

    /// The next record, waiting for one; `None` once the queue is closed and nothing waits.
    pub async fn pop(&self) -> Option<(Ticket, Vec<u8>)> {
        loop {
            let notified = self.notify.notified();
            match self.try_pop() {
                Ok(Some(r)) => return Some(r),
                Ok(None) if self.state.lock().closed => return None,
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(component = "file_storage", error = %e, dir = %self.dir.display(), "cannot read the persistent queue; retrying in 1s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            }
            notified.await;
        }
    }

    fn try_pop(&self) -> io::Result<Option<(Ticket, Vec<u8>)>> {
        let mut st = self.state.lock();
        loop {
            if st.waiting == 0 {
                return Ok(None);
            }
            let seg = st.read_segment;
            let in_segment = st.segments.get(&seg).map_or(0, |s| s.bytes);
            if st.read_offset >= in_segment {
                if seg >= st.write_segment {
                    return Ok(None);
                }
                // The next segment that still exists.
                let next = st.segments.range(seg + 1..).next().map(|(n, _)| *n);
                st.read_segment = next.unwrap_or(st.write_segment);
                st.read_offset = 0;
                st.reader = None;
                continue;
            }
            if st.reader.as_ref().map(|(n, _)| *n) != Some(seg) {
                let mut f = File::open(segment_path(&self.dir, seg, "log"))?;
                f.seek(SeekFrom::Start(st.read_offset))?;
                st.reader = Some((seg, BufReader::new(f)));
            }
            let offset = st.read_offset;
            let (_, reader) = st.reader.as_mut().expect("opened above");
            let mut header = [0u8; HEADER as usize];
            reader.read_exact(&mut header)?;
            let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
            let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
            let mut payload = vec![0u8; len as usize];
            reader.read_exact(&mut payload)?;
            st.read_offset += HEADER + len;
            let ticket = Ticket {
                segment: seg,
                offset,
            };
            if st.acked_before.remove(&ticket) {
                continue;
            }
            if checksum(&payload) != crc {
                // Counted at open; skip it (and acknowledge it so the segment can go).
                st.waiting -= 1;
                drop(st);
                self.done(ticket);
                st = self.state.lock();
                continue;
            }
            st.waiting -= 1;
            return Ok(Some((ticket, payload)));
        }
    }

    /// Marks a record delivered (or given up for good); deletes a segment once all of its
    /// records are.
    pub fn done(&self, ticket: Ticket) {
        let mut st = self.state.lock();
        let write_segment = st.write_segment;
        let dir = self.dir.clone();
        let Some(seg) = st.segments.get_mut(&ticket.segment) else {
            return;
        };
        seg.acked += 1;
        let finished = seg.acked >= seg.records && ticket.segment != write_segment;
        if finished {
            let bytes = seg.bytes;
            st.segments.remove(&ticket.segment);
            st.bytes = st.bytes.saturating_sub(bytes);
            let _ = std::fs::remove_file(segment_path(&dir, ticket.segment, "log"));
            let _ = std::fs::remove_file(segment_path(&dir, ticket.segment, "ack"));
            return;
        }
        let file = match seg.ack_file.take() {
            Some(f) => Ok(f),
            None => OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&dir, ticket.segment, "ack")),
        };
        match file {
            Ok(mut f) => {
                // Losing an ack only re-delivers the record: no sync needed.
                if let Err(e) = f.write_all(&ticket.offset.to_le_bytes()) {
                    tracing::warn!(component = "file_storage", error = %e, "cannot record a delivery; the batch may be sent again after a restart");
                }
                seg.ack_file = Some(f);
            }
            Err(e) => {
                tracing::warn!(component = "file_storage", error = %e, "cannot record a delivery; the batch may be sent again after a restart")
            }
        }
    }

    /// No more pushes; `pop` returns `None` once everything written was handed out.
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        let _ = st.writer.sync_data();
        drop(st);
        self.notify.notify_waiters();
    }
}

fn read_acks(path: &Path) -> io::Result<HashSet<u64>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

struct Scan {
    offsets: Vec<u64>,
    end: u64,
    corrupted: u64,
}

/// Finds the records of a segment. A torn record at the end of the last segment is cut off.
fn scan_segment(path: &Path, last: bool) -> io::Result<Scan> {
    let data = std::fs::read(path)?;
    let mut offsets = Vec::new();
    let mut corrupted = 0;
    let mut at = 0usize;
    while at + HEADER as usize <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[at + 4..at + 8].try_into().expect("4 bytes"));
        let end = at + HEADER as usize + len;
        if end > data.len() {
            break;
        }
        if checksum(&data[at + HEADER as usize..end]) != crc {
            corrupted += 1;
        }
        offsets.push(at as u64);
        at = end;
    }
    if at < data.len() {
        if last {
            tracing::warn!(component = "file_storage", file = %path.display(), bytes = data.len() - at, "cutting off a record torn by a crash (it was never acknowledged)");
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(at as u64)?;
        } else {
            corrupted += 1;
        }
    }
    Ok(Scan {
        offsets,
        end: at as u64,
        corrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> FileQueue {
        FileQueue::open(dir, false, 1 << 30, 1000).unwrap()
    }

    #[tokio::test]
    async fn records_come_back_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path());
        for i in 0..5u8 {
            q.push(&[i; 10]).unwrap();
        }
        let (t0, p0) = q.pop().await.unwrap();
        assert_eq!(p0, vec![0u8; 10]);
        q.done(t0);
        let (_t1, p1) = q.pop().await.unwrap();
        assert_eq!(p1, vec![1u8; 10]);
        // Crash: record 1 was handed out but not acknowledged; 2..4 never handed out.
        drop(q);
        let q = open(dir.path());
        assert_eq!(q.len(), 4);
        let mut got = Vec::new();
        while let Some(Ok(Some((t, p)))) = Some(q.try_pop()) {
            got.push(p[0]);
            q.done(t);
        }
        assert_eq!(
            got,
            [1, 2, 3, 4],
            "at least once: the unacknowledged record comes again"
        );
        drop(q);
        let q = open(dir.path());
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_a_corrupt_record_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path());
        q.push(b"first").unwrap();
        q.push(b"second").unwrap();
        q.push(b"third").unwrap();
        drop(q);
        let path = segment_path(dir.path(), 1, "log");
        let mut bytes = std::fs::read(&path).unwrap();
        // Flip a byte of "second", and tear a fourth record half-written.
        let second = bytes.windows(6).position(|w| w == b"second").unwrap();
        bytes[second] ^= 0xff;
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        let q = open(dir.path());
        assert_eq!(q.corrupted, 1);
        let mut got = Vec::new();
        while let Ok(Some((t, p))) = q.try_pop() {
            got.push(String::from_utf8(p).unwrap());
            q.done(t);
        }
        assert_eq!(got, ["first", "third"]);
    }

    #[tokio::test]
    async fn bounds_refuse_and_delivered_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let q = FileQueue::open(dir.path(), true, 1 << 30, 2).unwrap();
        q.push(b"a").unwrap();
        q.push(b"b").unwrap();
        assert!(matches!(q.push(b"c"), Err(PushError::Full(_))));
        let (t, _) = q.pop().await.unwrap();
        q.done(t);
        q.push(b"c").unwrap();
        // A segment rotates past SEGMENT_BYTES; once all its records are done it goes.
        let big = vec![7u8; SEGMENT_BYTES as usize];
        let q2dir = tempfile::tempdir().unwrap();
        let q2 = FileQueue::open(q2dir.path(), false, 1 << 30, 100).unwrap();
        q2.push(&big).unwrap();
        q2.push(b"next segment").unwrap();
        let (t1, _) = q2.pop().await.unwrap();
        q2.done(t1);
        assert!(
            !segment_path(q2dir.path(), 1, "log").exists(),
            "delivered segment deleted"
        );
        let (_, p) = q2.pop().await.unwrap();
        assert_eq!(p, b"next segment");
        q2.close();
        assert!(q2.pop().await.is_none());
        drop(q);
    }
}
