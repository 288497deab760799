//! [`SegmentLog`]: segments on disk, the append buffer, and the group-commit writer thread.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::oneshot;

use super::record::{self, Checksum, HEADER, MAGIC, MAX_PAYLOAD};

/// A segment is closed once it holds this many bytes (at most; see [`segment_bytes_for`]).
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// The segment size for a log bounded to `max_bytes`: an eighth of the bound (between 64 KiB
/// and [`SEGMENT_BYTES`]), so that a segment whose records are all done but which is still
/// being written (it cannot be deleted yet) never holds more than a small part of the bound.
pub fn segment_bytes_for(max_bytes: u64) -> u64 {
    (max_bytes / 8).clamp(64 * 1024, SEGMENT_BYTES)
}

/// A writer thread idle this long checks whether its segment is due to be closed.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Append buffers the writer gives back for reuse are kept up to this capacity.
const SPARE_CAPACITY: usize = 4 * 1024 * 1024;

/// Deleted segment files kept (renamed) for the next segments to reuse: overwriting a file
/// whose pages and blocks exist costs the kernel a third of what a new file does (no page
/// allocation, no block allocation, no freeing at unlink; see the module docs).
const SPARE_FILES: usize = 2;

/// Where and how a log is kept.
#[derive(Clone)]
pub struct LogOptions {
    pub dir: PathBuf,
    /// Sync written records to the disk before completing those that ask to be durable.
    pub fsync: bool,
    /// Bytes of segment files (and appended records not yet written) past which records that
    /// count as data are refused.
    pub max_bytes: u64,
    pub segment_bytes: u64,
    /// Close a segment once its first record is this old, even if it is not full.
    pub rotate_after: Option<Duration>,
    /// The component the log belongs to, for its log lines (`component` field).
    pub owner: String,
    pub metrics: LogMetrics,
}

impl LogOptions {
    pub fn new(dir: PathBuf, fsync: bool, max_bytes: u64, owner: impl Into<String>) -> Self {
        Self {
            dir,
            fsync,
            max_bytes,
            segment_bytes: segment_bytes_for(max_bytes),
            rotate_after: None,
            owner: owner.into(),
            metrics: LogMetrics::default(),
        }
    }
}

/// The log's metrics, registered by its user under the user's names (the default is a set
/// registered nowhere).
#[derive(Clone)]
pub struct LogMetrics {
    /// Bytes of segment files on disk.
    pub bytes: Gauge,
    /// Segment files, the one being written included.
    pub segments: Gauge,
    /// Records written by one group commit.
    pub records_per_write: Histogram,
    /// Writes (or syncs) that failed; their records were refused.
    pub write_errors: Counter,
    /// Damaged records (or stretches) skipped when reading the log back.
    pub corrupt_records: Counter,
    /// Records torn by a crash mid-write and cut off when opening the log.
    pub torn_tails: Counter,
}

impl LogMetrics {
    /// Buckets for [`LogMetrics::records_per_write`].
    pub fn records_per_write_buckets() -> Histogram {
        Histogram::new(exponential_buckets(1.0, 2.0, 12))
    }
}

impl Default for LogMetrics {
    fn default() -> Self {
        Self {
            bytes: Gauge::default(),
            segments: Gauge::default(),
            records_per_write: Self::records_per_write_buckets(),
            write_errors: Counter::default(),
            corrupt_records: Counter::default(),
            torn_tails: Counter::default(),
        }
    }
}

/// Where a record was written: its segment and the offset of its header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// How a record's write ended: where it is, or why it is not (the message of the I/O error).
pub type Written = Result<Position, String>;

/// What to do once a record (or a [`SegmentLog::flush`]) is written — called on the writer
/// thread, after the write (and sync) and outside the log's lock. A `Call` must be quick: the
/// next group commit waits for it.
pub enum Done {
    Nothing,
    Channel(oneshot::Sender<Written>),
    Call(Box<dyn FnOnce(Written) + Send>),
}

impl Done {
    fn complete(self, result: Written) {
        match self {
            Done::Nothing => {}
            Done::Channel(tx) => {
                // The waiter may be gone (its request was cancelled): nothing to tell.
                let _ = tx.send(result);
            }
            Done::Call(f) => f(result),
        }
    }
}

/// One record's bytes: a short `head` (kind, sequence numbers…) and a `body`, written as one
/// payload. The body's checksum may be computed beforehand, outside any lock.
pub struct Record<'a> {
    head: &'a [u8],
    body: &'a [u8],
    body_crc: Option<Checksum>,
}

impl<'a> Record<'a> {
    pub fn new(head: &'a [u8], body: &'a [u8]) -> Self {
        Self {
            head,
            body,
            body_crc: None,
        }
    }

    /// The body's checksum, as [`super::checksum`] computed it.
    pub fn with_body_checksum(mut self, crc: Checksum) -> Self {
        self.body_crc = Some(crc);
        self
    }

    fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    fn crc(&self) -> u32 {
        let mut h = Checksum::new();
        h.update(self.head);
        match &self.body_crc {
            Some(body) => h.combine(body),
            None => h.update(self.body),
        }
        h.finalize()
    }
}

/// How a record is appended.
pub struct Append {
    /// With `fsync: true`, synced before it completes (one sync per group commit).
    pub sync: bool,
    /// Counts against `max_bytes` (refused when the log is full).
    pub bounded: bool,
    /// A time the user associates with the record; each segment remembers its newest
    /// ([`SegmentInfo::newest`]), for deleting segments by age.
    pub stamp: Option<Instant>,
    pub done: Done,
}

impl Append {
    /// Data a client waits for: bounded, and synced (with `fsync: true`) before `done`.
    pub fn data(done: Done) -> Self {
        Self {
            sync: true,
            bounded: true,
            stamp: None,
            done,
        }
    }

    /// Bookkeeping (a delivery, a decision): never refused for room, and not synced on its
    /// own — written with the next group commit, durable with the next sync.
    pub fn bookkeeping(done: Done) -> Self {
        Self {
            sync: false,
            bounded: false,
            stamp: None,
            done,
        }
    }

    /// As [`Append::data`] but never refused for room: data that was already acknowledged
    /// elsewhere and must not be lost for want of space.
    pub fn unbounded(mut self) -> Self {
        self.bounded = false;
        self
    }

    pub fn stamped(mut self, at: Instant) -> Self {
        self.stamp = Some(at);
        self
    }
}

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the log is full ({0} bytes on disk or being written; max_size_mib)")]
    Full(u64),
    #[error("the log is closed")]
    Closed,
    #[error("a record of {0} bytes is larger than a segment log takes (4 GiB less 2 bytes)")]
    TooLarge(usize),
}

/// A segment as [`SegmentLog::segments`] shows it.
#[derive(Clone, Debug)]
pub struct SegmentInfo {
    pub number: u64,
    /// The length of its file.
    pub bytes: u64,
    /// The newest [`Append::stamp`] of its records.
    pub newest: Option<Instant>,
    /// Whether new records still go to it.
    pub current: bool,
}

/// What [`SegmentLog::open`] found.
#[derive(Debug, Default)]
pub struct Opened {
    /// The segments left by the previous run, oldest first.
    pub segments: Vec<u64>,
    /// Damaged records or stretches skipped (see the rule in the module docs).
    pub corrupt: u64,
    /// Torn records cut off the end of the last segment.
    pub torn: u64,
}

#[derive(Default)]
struct Segment {
    /// The length of its file.
    bytes: u64,
    newest: Option<Instant>,
    /// Its deletion was requested: no longer shown, unlinked by the writer.
    deleting: bool,
}

/// Records appended to one segment, not yet written.
struct Chunk {
    segment: u64,
    buf: Vec<u8>,
    /// (start of the record in `buf`, what to do once written)
    records: Vec<(usize, Done)>,
    /// Some record in it asked to be synced.
    sync: bool,
}

struct State {
    chunks: Vec<Chunk>,
    /// Completed once everything appended before them is written (and synced).
    barriers: Vec<Done>,
    deletes: Vec<u64>,
    /// Records appended since the writer's last take.
    records: u64,
    /// Bytes appended and not yet written.
    pending_bytes: u64,
    segments: BTreeMap<u64, Segment>,
    current: u64,
    /// Bytes appended to the current segment (written or not).
    current_bytes: u64,
    /// When the first record went to the current segment.
    current_since: Option<Instant>,
    /// Bytes of segment files on disk.
    bytes: u64,
    closed: bool,
    spare: Vec<Vec<u8>>,
}

impl State {
    fn rotate(&mut self) {
        self.current += 1;
        self.current_bytes = 0;
        self.current_since = None;
        self.segments.insert(self.current, Segment::default());
    }

    fn due_to_rotate(&self, opts: &LogOptions) -> bool {
        self.current_bytes > 0
            && (self.current_bytes >= opts.segment_bytes
                || opts
                    .rotate_after
                    .zip(self.current_since)
                    .is_some_and(|(after, since)| since.elapsed() >= after))
    }

    fn has_work(&self) -> bool {
        !self.chunks.is_empty() || !self.barriers.is_empty() || !self.deletes.is_empty()
    }
}

struct Shared {
    opts: LogOptions,
    state: Mutex<State>,
    wake: Condvar,
}

/// A segment log (see the [module docs](super)).
pub struct SegmentLog {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The file of segment `n` in `dir`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("segment-{n:020}.log"))
}

/// The name a deleted segment `n`'s file is kept under until a new segment reuses it.
fn spare_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("segment-{n:020}.spare"))
}

fn is_spare(name: &str) -> bool {
    name.starts_with("segment-") && name.ends_with(".spare")
}

fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix("segment-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Files an older Weft wrote in the format before this one (`seg-*.log` with `.ack` side
/// files for persistent queues, `wal-*.log` for durable windows).
fn is_legacy(name: &str) -> bool {
    (name.starts_with("seg-") || name.starts_with("wal-"))
        && (name.ends_with(".log") || name.ends_with(".ack"))
}

/// The sound records of segment `n` in `dir`, read whole: `(offset, payload)` in file order.
/// Damaged records are skipped without a word: [`SegmentLog::open`] already reported them.
/// Blocks: call it from `spawn_blocking`.
pub fn read_segment(dir: &Path, n: u64) -> io::Result<Vec<(u64, Bytes)>> {
    let data = Bytes::from(std::fs::read(segment_path(dir, n))?);
    let scan = record::scan(&data, n);
    Ok(scan
        .records
        .into_iter()
        .map(|(offset, range): (u64, Range<usize>)| (offset, data.slice(range)))
        .collect())
}

/// The payload of the record at `at`; a damaged record is an
/// [`io::ErrorKind::InvalidData`] error. Blocks: call it from `spawn_blocking`.
pub fn read_record(dir: &Path, at: Position) -> io::Result<Vec<u8>> {
    record::read_at(&segment_path(dir, at.segment), at.segment, at.offset)
}

impl SegmentLog {
    /// Opens (or creates) the log in `opts.dir`: reads every segment a previous run left by
    /// the rule in the module docs (cutting a torn tail, reporting damage), hands each sound
    /// record to `visit` — `(segment, offset, payload)`, returning the record's
    /// [`Append::stamp`] if it has one — and starts the writer on a new segment.
    ///
    /// Reads whole segments: runs through [`super::run_blocking`].
    pub fn open(
        opts: LogOptions,
        mut visit: impl FnMut(u64, u64, &[u8]) -> Option<Instant>,
    ) -> io::Result<(Self, Opened)> {
        super::run_blocking(move || {
            std::fs::create_dir_all(&opts.dir)?;
            let mut numbers = Vec::new();
            let mut legacy = Vec::new();
            for entry in std::fs::read_dir(&opts.dir)? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if let Some(n) = segment_number(&name) {
                    numbers.push(n);
                } else if is_spare(&name) {
                    // Left by a run that ended without closing its log: not needed.
                    std::fs::remove_file(opts.dir.join(&name))?;
                } else if is_legacy(&name) {
                    legacy.push(name);
                }
            }
            if !legacy.is_empty() {
                legacy.sort();
                return Err(io::Error::other(format!(
                    "{} holds {} file(s) written by an older Weft in a format this version does not read ({}…): deliver them with that version first, or move them away to start empty",
                    opts.dir.display(),
                    legacy.len(),
                    legacy[0]
                )));
            }
            numbers.sort_unstable();
            let mut opened = Opened::default();
            let mut segments = BTreeMap::new();
            let mut total = 0;
            for (i, &n) in numbers.iter().enumerate() {
                let last = i + 1 == numbers.len();
                let (bytes, newest) = recover_segment(&opts, n, last, &mut opened, &mut visit)?;
                total += bytes;
                opened.segments.push(n);
                segments.insert(
                    n,
                    Segment {
                        bytes,
                        newest,
                        deleting: false,
                    },
                );
            }
            let current = numbers.last().map_or(1, |n| n + 1);
            segments.insert(current, Segment::default());
            opts.metrics.bytes.set(total as i64);
            opts.metrics.segments.set(segments.len() as i64);
            let shared = Arc::new(Shared {
                state: Mutex::new(State {
                    chunks: Vec::new(),
                    barriers: Vec::new(),
                    deletes: Vec::new(),
                    records: 0,
                    pending_bytes: 0,
                    segments,
                    current,
                    current_bytes: 0,
                    current_since: None,
                    bytes: total,
                    closed: false,
                    spare: Vec::new(),
                }),
                wake: Condvar::new(),
                opts,
            });
            let writer = {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name("weft-segment-log".to_string())
                    .spawn(move || writer(shared))?
            };
            Ok((
                Self {
                    shared,
                    writer: Mutex::new(Some(writer)),
                },
                opened,
            ))
        })
    }

    pub fn options(&self) -> &LogOptions {
        &self.shared.opts
    }

    /// Appends a record; returns the segment it goes to. `append.done` is completed on the
    /// writer thread once it is written (and synced, when it asks to be and `fsync` is on).
    /// Records are written in the order they were appended.
    pub fn append(&self, record: Record<'_>, append: Append) -> Result<u64, AppendError> {
        let len = record.len();
        if len > MAX_PAYLOAD {
            return Err(AppendError::TooLarge(len));
        }
        let crc = record.crc();
        let size = (HEADER + len) as u64;
        let opts = &self.shared.opts;
        let mut st = self.shared.state.lock();
        if st.closed {
            return Err(AppendError::Closed);
        }
        if append.bounded {
            let used = st.bytes + st.pending_bytes;
            if used > 0 && used + size > opts.max_bytes {
                return Err(AppendError::Full(used));
            }
        }
        if st.due_to_rotate(opts) {
            st.rotate();
        }
        let segment = st.current;
        if let Some(at) = append.stamp {
            if let Some(seg) = st.segments.get_mut(&segment) {
                seg.newest = seg.newest.max(Some(at));
            }
        }
        st.pending_bytes += size;
        st.current_bytes += size;
        st.current_since.get_or_insert_with(Instant::now);
        st.records += 1;
        if st.chunks.last().is_none_or(|c| c.segment != segment) {
            let buf = st.spare.pop().unwrap_or_default();
            st.chunks.push(Chunk {
                segment,
                buf,
                records: Vec::new(),
                sync: false,
            });
        }
        let chunk = st.chunks.last_mut().expect("pushed just above");
        let start = chunk.buf.len();
        chunk.buf.reserve(size as usize);
        chunk
            .buf
            .extend_from_slice(&record::header(segment, len as u32, crc));
        chunk.buf.extend_from_slice(record.head);
        chunk.buf.extend_from_slice(record.body);
        chunk.records.push((start, append.done));
        chunk.sync |= append.sync;
        drop(st);
        self.shared.wake.notify_one();
        Ok(segment)
    }

    /// Completes `done` once everything appended before is written (and synced, with
    /// `fsync`). On a closed log it completes at once, with an error.
    pub fn flush(&self, done: Done) {
        let mut st = self.shared.state.lock();
        if st.closed {
            drop(st);
            done.complete(Err("the log is closed".to_string()));
            return;
        }
        st.barriers.push(done);
        drop(st);
        self.shared.wake.notify_one();
    }

    /// Resolves once everything appended so far is written (and synced, with `fsync`).
    pub async fn flushed(&self) {
        let (tx, rx) = oneshot::channel();
        self.flush(Done::Channel(tx));
        let _ = rx.await;
    }

    /// Closes the current segment now: the next record goes to a new one.
    pub fn rotate(&self) {
        let mut st = self.shared.state.lock();
        if st.current_bytes > 0 {
            st.rotate();
        }
    }

    /// Asks for closed segment `n` to be deleted; the writer unlinks it once what was
    /// appended before is written. False (and nothing happens) for the current segment, one
    /// already being deleted, an unknown one, or a closed log.
    pub fn delete(&self, n: u64) -> bool {
        let mut st = self.shared.state.lock();
        if st.closed || n >= st.current {
            return false;
        }
        match st.segments.get_mut(&n) {
            Some(seg) if !seg.deleting => seg.deleting = true,
            _ => return false,
        }
        st.deletes.push(n);
        drop(st);
        self.shared.wake.notify_one();
        true
    }

    /// The segments, oldest first (those being deleted left out).
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let st = self.shared.state.lock();
        st.segments
            .iter()
            .filter(|(_, s)| !s.deleting)
            .map(|(n, s)| SegmentInfo {
                number: *n,
                bytes: s.bytes,
                newest: s.newest,
                current: *n == st.current,
            })
            .collect()
    }

    /// Whether some segment other than the current one exists (and is not being deleted).
    pub fn has_closed_segments(&self) -> bool {
        let st = self.shared.state.lock();
        st.segments
            .iter()
            .any(|(n, s)| *n != st.current && !s.deleting)
    }

    /// The segment new records go to.
    pub fn current(&self) -> u64 {
        self.shared.state.lock().current
    }

    /// Bytes of segment files on disk.
    pub fn bytes(&self) -> u64 {
        self.shared.state.lock().bytes
    }

    /// Segment files (the one being written included).
    pub fn segment_count(&self) -> usize {
        self.shared.state.lock().segments.len()
    }

    /// Stops taking records; the writer writes (and syncs) what was appended, then ends.
    /// Waits for it on a blocking thread.
    pub async fn close(&self) {
        if let Some(h) = self.stop_writer() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }

    /// Closes the log and deletes every segment file: for an owner that finished cleanly
    /// and left nothing to read back.
    pub async fn close_and_clear(&self) {
        self.close().await;
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut st = shared.state.lock();
            let numbers: Vec<u64> = st.segments.keys().copied().collect();
            for n in numbers {
                match std::fs::remove_file(segment_path(&shared.opts.dir, n)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(component = %shared.opts.owner, error = %e, segment = n, "cannot delete a segment file");
                        continue;
                    }
                }
                if let Some(seg) = st.segments.remove(&n) {
                    st.bytes = st.bytes.saturating_sub(seg.bytes);
                }
            }
            shared.opts.metrics.bytes.set(st.bytes as i64);
            shared.opts.metrics.segments.set(st.segments.len() as i64);
        })
        .await;
    }

    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        self.shared.state.lock().closed = true;
        self.shared.wake.notify_all();
        self.writer.lock().take()
    }
}

impl Drop for SegmentLog {
    fn drop(&mut self) {
        if let Some(h) = self.stop_writer() {
            // The last owner may go away in a `Done::Call` run by the writer itself (a
            // completion holding its owner): the writer then ends on its own once it has
            // written what is left, and must not wait for itself.
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

/// Reads segment `n` at open: applies the rule, reports, visits its sound records. Returns
/// its length on disk and the newest stamp of its records.
fn recover_segment(
    opts: &LogOptions,
    n: u64,
    last: bool,
    opened: &mut Opened,
    visit: &mut impl FnMut(u64, u64, &[u8]) -> Option<Instant>,
) -> io::Result<(u64, Option<Instant>)> {
    let path = segment_path(&opts.dir, n);
    let data = std::fs::read(&path)?;
    let scan = record::scan(&data, n);
    let owner = &opts.owner;
    for &(offset, bytes) in &scan.damaged {
        opened.corrupt += 1;
        opts.metrics.corrupt_records.inc();
        tracing::error!(component = %owner, file = %path.display(), offset, bytes, "skipping a damaged record (checksum mismatch): what it held is lost");
    }
    // The file's length once read (and cut or sealed).
    let mut len = data.len() as u64;
    if last {
        if let Some(at) = scan.torn_at {
            opened.torn += 1;
            opts.metrics.torn_tails.inc();
            tracing::warn!(component = %owner, file = %path.display(), offset = at, bytes = len - at, "cutting off the end of the segment a crash interrupted: a torn record, or bytes of the file's earlier use (never acknowledged)");
        }
        if scan.current_format {
            // Sealed where its records end, so that once newer segments exist it reads as
            // closed, not as one that lost its end. Never written again.
            if !scan.sealed {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.write_all_at(&record::seal(n), scan.end)?;
                len = scan.end + HEADER as u64;
                file.set_len(len)?;
                if opts.fsync {
                    file.sync_data()?;
                }
            }
        } else if scan.torn_at.is_some() {
            OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(scan.end)?;
            len = scan.end;
        }
    } else if scan.torn_at.is_some() || (scan.current_format && !scan.sealed) {
        opened.corrupt += 1;
        opts.metrics.corrupt_records.inc();
        tracing::error!(component = %owner, file = %path.display(), offset = scan.end, "a segment that is not the last ends without being closed: acknowledged data is missing (a power loss with fsync off?); skipping what follows");
    }
    let mut newest = None;
    for (offset, range) in scan.records {
        newest = newest.max(visit(n, offset, &data[range]));
    }
    Ok((len, newest))
}

/// Starts the file of segment `n`: a spare file renamed (its old bytes are overwritten as
/// records come; the seal and the checksums tied to `n` keep them from being read), or a new
/// one. Writes the format's magic; returns the file, where its first record goes, and the
/// file's length. With `fsync`, the folder is synced too, so the new name survives a power
/// loss with its records.
fn open_segment(
    dir: &Path,
    n: u64,
    fsync: bool,
    spares: &mut Vec<PathBuf>,
) -> io::Result<(File, u64, u64)> {
    let path = segment_path(dir, n);
    let mut file = None;
    while let Some(spare) = spares.pop() {
        if std::fs::rename(&spare, &path).is_ok() {
            file = Some(OpenOptions::new().write(true).open(&path)?);
            break;
        }
    }
    let file = match file {
        Some(f) => f,
        None => OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?,
    };
    file.write_all_at(&MAGIC, 0)?;
    if fsync {
        File::open(dir)?.sync_all()?;
    }
    let size = file.metadata()?.len();
    Ok((file, MAGIC.len() as u64, size))
}

/// Keeps the file of deleted segment `n` as a spare, if fewer than [`SPARE_FILES`] are kept
/// and it is in the current format (a file of the first format could be read as its new
/// segment's records before it is overwritten); else unlinks it.
fn retire_segment(dir: &Path, n: u64, spares: &mut Vec<PathBuf>) -> io::Result<()> {
    let path = segment_path(dir, n);
    if spares.len() < SPARE_FILES && has_magic(&path) {
        let spare = spare_path(dir, n);
        if std::fs::rename(&path, &spare).is_ok() {
            spares.push(spare);
            return Ok(());
        }
    }
    std::fs::remove_file(path)
}

fn has_magic(path: &Path) -> bool {
    let mut head = [0u8; MAGIC.len()];
    File::open(path).is_ok_and(|f| f.read_exact_at(&mut head, 0).is_ok() && head == MAGIC)
}

/// Writes segment `o`'s seal after its last record, and cuts off what a reused file held
/// past it: the writer is done with the segment.
fn seal_segment(o: &mut Open, opts: &LogOptions) -> io::Result<()> {
    let end = o.len + HEADER as u64;
    o.file.write_all_at(&record::seal(o.segment), o.len)?;
    o.unsynced |= opts.fsync;
    if o.size > end {
        o.file.set_len(end)?;
    }
    o.size = end;
    Ok(())
}

/// The writer is done with segment `o` (it goes on in the next one, or stops): sealed, and
/// what was written to it synced when the log syncs. A seal that fails is logged (the next
/// start reads the segment as cut short); a sync that fails is the error.
fn leave_segment(o: &mut Open, opts: &LogOptions) -> io::Result<()> {
    if let Err(e) = seal_segment(o, opts) {
        tracing::warn!(component = %opts.owner, error = %e, segment = o.segment, "cannot close a segment; the next start reads it as cut short");
    }
    if o.unsynced {
        o.file.sync_data()?;
        o.unsynced = false;
    }
    Ok(())
}

/// What the writer takes from the state at once.
struct Work {
    chunks: Vec<Chunk>,
    barriers: Vec<Done>,
    deletes: Vec<u64>,
    records: u64,
}

/// The segment the writer has open: its number, file, and length.
struct Open {
    segment: u64,
    file: File,
    /// Where its records end (the next one goes there).
    len: u64,
    /// The file's length: a reused file may run past `len` until sealed.
    size: u64,
    /// Written since its last sync (only tracked with `fsync`).
    unsynced: bool,
}

/// The group-commit writer (see the module docs).
fn writer(shared: Arc<Shared>) {
    let opts = &shared.opts;
    let mut open: Option<Open> = None;
    let mut spares: Vec<PathBuf> = Vec::new();
    loop {
        let work = {
            let mut st = shared.state.lock();
            loop {
                if st.has_work() {
                    break Some(Work {
                        chunks: std::mem::take(&mut st.chunks),
                        barriers: std::mem::take(&mut st.barriers),
                        deletes: std::mem::take(&mut st.deletes),
                        records: std::mem::take(&mut st.records),
                    });
                }
                if st.closed {
                    break None;
                }
                let idle = shared.wake.wait_for(&mut st, IDLE_CHECK).timed_out();
                if idle && st.due_to_rotate(opts) {
                    // A quiet segment closes too, so its owner can delete it.
                    st.rotate();
                    opts.metrics.segments.set(st.segments.len() as i64);
                }
            }
        };
        let Some(work) = work else {
            if let Some(o) = open.as_mut() {
                // Nothing waits for this sync: with fsync, every record was synced before it
                // was acknowledged; only the seal is new.
                let _ = leave_segment(o, opts);
            }
            for spare in spares {
                let _ = std::fs::remove_file(spare);
            }
            return;
        };
        write_work(&shared, &mut open, &mut spares, work);
    }
}

fn write_work(shared: &Shared, open: &mut Option<Open>, spares: &mut Vec<PathBuf>, work: Work) {
    let opts = &shared.opts;
    let owner = &opts.owner;
    let mut completions: Vec<(Done, Written)> = Vec::with_capacity(work.records as usize);
    // (segment, its file's length after) for the files written; segments whose write failed.
    let mut written: Vec<(u64, u64)> = Vec::new();
    let mut failed: Vec<u64> = Vec::new();
    let mut sync_error: Option<String> = None;
    let needs_sync =
        opts.fsync && (work.chunks.iter().any(|c| c.sync) || !work.barriers.is_empty());
    let mut buffers = Vec::with_capacity(work.chunks.len());
    for chunk in work.chunks {
        if open.as_ref().is_none_or(|o| o.segment != chunk.segment) {
            // Leaving a segment: it is sealed, and what was written to it is synced before
            // the next begins.
            if let Some(mut o) = open.take() {
                let left = leave_segment(&mut o, opts);
                written.push((o.segment, o.size));
                if let Err(e) = left {
                    sync_error.get_or_insert_with(|| e.to_string());
                }
            }
            match open_segment(&opts.dir, chunk.segment, opts.fsync, spares) {
                Ok((file, len, size)) => {
                    written.push((chunk.segment, size));
                    *open = Some(Open {
                        segment: chunk.segment,
                        file,
                        len,
                        size,
                        unsynced: false,
                    })
                }
                Err(e) => {
                    opts.metrics.write_errors.inc();
                    tracing::error!(component = %owner, error = %e, segment = chunk.segment, "cannot create a segment file; the records for it are refused (retryably)");
                    let message = e.to_string();
                    completions.extend(
                        chunk
                            .records
                            .into_iter()
                            .map(|(_, d)| (d, Err(message.clone()))),
                    );
                    failed.push(chunk.segment);
                    let len = chunk.buf.len();
                    buffers.push((chunk.buf, len));
                    continue;
                }
            }
        }
        let o = open.as_mut().expect("opened just above");
        let offset = o.len;
        match o.file.write_all_at(&chunk.buf, offset) {
            Ok(()) => {
                o.len += chunk.buf.len() as u64;
                o.size = o.size.max(o.len);
                o.unsynced |= opts.fsync;
                written.push((chunk.segment, o.size));
                completions.extend(chunk.records.into_iter().map(|(start, d)| {
                    let at = Position {
                        segment: chunk.segment,
                        offset: offset + start as u64,
                    };
                    (d, Ok(at))
                }));
            }
            Err(e) => {
                opts.metrics.write_errors.inc();
                tracing::error!(component = %owner, error = %e, segment = chunk.segment, "cannot write a segment; its records are refused (retryably)");
                // Whatever part of the write landed must never be read as records: cut off,
                // and the segment sealed (the log goes on in a new one).
                o.size = o.size.max(offset + chunk.buf.len() as u64);
                if let Err(cut) = seal_segment(o, opts) {
                    tracing::error!(component = %owner, error = %cut, segment = chunk.segment, "cannot cut a failed write off a segment; reading it back will report it as damaged");
                }
                written.push((chunk.segment, o.size));
                let message = e.to_string();
                completions.extend(
                    chunk
                        .records
                        .into_iter()
                        .map(|(_, d)| (d, Err(message.clone()))),
                );
                failed.push(chunk.segment);
            }
        }
        let len = chunk.buf.len();
        buffers.push((chunk.buf, len));
    }
    if needs_sync {
        if let Some(o) = open.as_mut().filter(|o| o.unsynced) {
            match o.file.sync_data() {
                Ok(()) => o.unsynced = false,
                Err(e) => {
                    sync_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    if let Some(e) = &sync_error {
        // Not known to be on disk: nobody is told it is. (The bytes may still be read back
        // after a restart: sent again, never lost.)
        opts.metrics.write_errors.inc();
        tracing::error!(component = %owner, error = %e, "cannot sync a segment to the disk; the records of this write are refused (retryably)");
        for (_, result) in &mut completions {
            if result.is_ok() {
                *result = Err(format!("cannot sync the log: {e}"));
            }
        }
    }
    if work.records > 0 {
        opts.metrics.records_per_write.observe(work.records as f64);
    }
    // Deleting, after the writes: a segment is complete on disk before it goes.
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for n in work.deletes {
        if open.as_ref().is_some_and(|o| o.segment == n) {
            *open = None;
        }
        match retire_segment(&opts.dir, n, spares) {
            Ok(()) => deleted.push(n),
            Err(e) if e.kind() == io::ErrorKind::NotFound => deleted.push(n),
            Err(e) => {
                tracing::warn!(component = %owner, error = %e, segment = n, "cannot delete a segment; it is kept until its owner asks again");
                kept.push(n);
            }
        }
    }
    let end = open.as_ref().map_or(Position::default(), |o| Position {
        segment: o.segment,
        offset: o.len,
    });
    {
        let mut st = shared.state.lock();
        for (n, size) in written {
            if let Some(seg) = st.segments.get_mut(&n) {
                let old = std::mem::replace(&mut seg.bytes, size);
                st.bytes = (st.bytes + size).saturating_sub(old);
            }
        }
        for (mut buf, len) in buffers {
            st.pending_bytes = st.pending_bytes.saturating_sub(len as u64);
            if buf.capacity() <= SPARE_CAPACITY {
                buf.clear();
                st.spare.push(buf);
            }
        }
        for n in failed {
            // Go on in a new segment, unless one was already started.
            if st.current == n {
                st.rotate();
            }
        }
        for n in deleted {
            if let Some(seg) = st.segments.remove(&n) {
                st.bytes = st.bytes.saturating_sub(seg.bytes);
            }
        }
        for n in kept {
            if let Some(seg) = st.segments.get_mut(&n) {
                seg.deleting = false;
            }
        }
        opts.metrics.bytes.set(st.bytes as i64);
        opts.metrics.segments.set(st.segments.len() as i64);
    }
    for (done, result) in completions {
        done.complete(result);
    }
    let barrier = match &sync_error {
        Some(e) => Err(format!("cannot sync the log: {e}")),
        None => Ok(end),
    };
    for done in work.barriers {
        done.complete(barrier.clone());
    }
}
