//! The polling loop of one `filelog` receiver, on its own thread.
//!
//! Every `poll_interval` (sooner when the file watcher reports a change) it lists the paths
//! the globs match, recognises each file by its fingerprint, reads what was appended, turns
//! each record into an entry, runs the operators, and hands batches to the pipeline. All
//! file I/O and the offset commits happen on this thread, so thousands of files or a slow
//! disk never block the async runtime; the pipeline's `consume` is awaited from here with
//! the runtime's handle.
//!
//! The delivery contract: a batch's offsets are committed only after `consume` returned
//! `Ok` (for a durable tail-sampling window: after the batch is in its write-ahead log).
//! A retryable refusal pauses reading and retries the same batch after the refusal's delay,
//! so backpressure slows the reading and never drops lines; at shutdown a batch still
//! refused is not committed, and the next start reads it again (at-least-once).
//!
//! Files: a file whose fingerprint is known goes on from its offset (a rename keeps it; a
//! copy with the same first bytes is the same file). A known file that the globs no longer
//! match (renamed away by rotation, or deleted) is read to its end through the handle still
//! open, its last unfinished line sent, then closed. A file smaller than the offset reached
//! was truncated in place (copytruncate) and is read again from its start. Files found at
//! the first poll start at `start_at`; later ones from their beginning.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prost::Message;
use tokio::runtime::Handle;

use super::checkpoint::{Checkpoint, Committed};
use super::config::{Encoding, StartAt};
use super::finder::Finder;
use super::reader::{self, Reader, Record, Splitting};
use crate::operators::{self, Chain, Entry, Source, Value};
use crate::pipeline::{ConsumeError, Consumer, Logs, Payload};
use crate::telemetry::Telemetry;

/// A batch is handed on at this many records...
const MAX_BATCH_RECORDS: usize = 1024;
/// ...or this many bytes of lines, or at the end of a poll.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// A file not matched for this many polls (and closed) is forgotten.
const FORGET_AFTER_POLLS: u32 = 3;
/// The least time between two polls woken by file events (a busy file must not make the
/// loop spin).
const MIN_EVENT_GAP: Duration = Duration::from_millis(20);
/// Bounds on the wait after a retryable refusal.
const MIN_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// Paths remembered as skipped (so each is logged once); past it the memory is cleared.
const MAX_WARNED: usize = 10_000;

/// What the loop needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub id: String,
    pub start_at: StartAt,
    pub poll_interval: Duration,
    pub fingerprint_size: usize,
    pub split: Splitting,
    pub max_concurrent_files: usize,
    pub encoding: Encoding,
    pub include_file_name: bool,
    pub include_file_path: bool,
    pub force_flush_period: Duration,
}

/// The receiver's metrics (label `receiver`).
pub struct Metrics {
    telemetry: Telemetry,
    receiver: String,
    accepted: Counter,
    refused: Counter,
    truncated_records: Counter,
    invalid_utf8: Counter,
    truncated_files: Counter,
    checkpoint_errors: Counter,
    open_files: Gauge,
    known_files: Gauge,
}

impl Metrics {
    pub fn new(t: &Telemetry, receiver: &str) -> Self {
        let labels = [("receiver", receiver)];
        let transport = [("receiver", receiver), ("transport", "file")];
        Self {
            telemetry: t.clone(),
            receiver: receiver.to_string(),
            accepted: t.counter(
                "otelcol_receiver_accepted_log_records",
                "Number of log_records successfully pushed into the pipeline",
                &transport,
            ),
            refused: t.counter(
                "otelcol_receiver_refused_log_records",
                "Number of log_records that could not be pushed into the pipeline",
                &transport,
            ),
            truncated_records: t.counter(
                "weft_receiver_filelog_records_truncated",
                "Log records cut at max_log_size (the rest of the line is dropped)",
                &labels,
            ),
            invalid_utf8: t.counter(
                "weft_receiver_filelog_invalid_utf8_records",
                "Records with bytes that are not UTF-8 (replaced by U+FFFD)",
                &labels,
            ),
            truncated_files: t.counter(
                "weft_receiver_filelog_files_truncated",
                "Files found shorter than the offset reached (truncated in place): read again from the start",
                &labels,
            ),
            checkpoint_errors: t.counter(
                "weft_receiver_filelog_checkpoint_errors",
                "Failed writes of the committed offsets to storage",
                &labels,
            ),
            open_files: t.gauge(
                "weft_receiver_filelog_open_files",
                "Files the receiver holds open",
                &labels,
            ),
            known_files: t.gauge(
                "weft_receiver_filelog_known_files",
                "Files the receiver tracks (open or not)",
                &labels,
            ),
        }
    }

    fn skipped(&self, reason: &str) -> Counter {
        self.telemetry.counter(
            "weft_receiver_filelog_files_skipped",
            "Paths matched by the globs that are not read, by reason",
            &[("receiver", &self.receiver), ("reason", reason)],
        )
    }
}

/// The loop's state.
pub struct Tailer {
    s: Settings,
    finder: Finder,
    readers: Vec<Reader>,
    next_id: u64,
    chain: Chain,
    batch: Vec<Entry>,
    batch_bytes: usize,
    scratch: Vec<Entry>,
    consumer: Arc<dyn Consumer<Logs>>,
    rt: Handle,
    stop: Arc<AtomicBool>,
    checkpoint: Option<Checkpoint>,
    m: Metrics,
    poll: u64,
    /// Paths skipped, and why (each logged once).
    warned: HashMap<PathBuf, &'static str>,
    /// A batch was given up at shutdown: nothing may be committed any more (its lines must
    /// be read again at the next start).
    abandoned: bool,
}

impl Tailer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        s: Settings,
        finder: Finder,
        chain: Chain,
        consumer: Arc<dyn Consumer<Logs>>,
        rt: Handle,
        stop: Arc<AtomicBool>,
        checkpoint: Option<(Checkpoint, Vec<Committed>)>,
        m: Metrics,
    ) -> Self {
        let mut readers = Vec::new();
        let mut next_id = 1;
        let checkpoint = checkpoint.map(|(c, committed)| {
            for f in committed {
                if let Ok(fp) = hex::decode(&f.fingerprint) {
                    readers.push(Reader::new(next_id, PathBuf::from(f.path), fp, f.offset));
                    next_id += 1;
                }
            }
            c
        });
        Self {
            s,
            finder,
            readers,
            next_id,
            chain,
            batch: Vec::new(),
            batch_bytes: 0,
            scratch: Vec::new(),
            consumer,
            rt,
            stop,
            checkpoint,
            m,
            poll: 0,
            warned: HashMap::new(),
            abandoned: false,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Polls until asked to stop. `wake` carries file-change events (it is closed when no
    /// watcher runs: polling alone then).
    pub fn run(mut self, wake: Receiver<()>) {
        let mut watching = true;
        while !self.stopped() {
            let started = Instant::now();
            self.poll_once();
            let deadline = started + self.s.poll_interval;
            while !self.stopped() {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                // Wake at least every 100 ms to notice a stop.
                let slice = (deadline - now).min(Duration::from_millis(100));
                if !watching {
                    std::thread::sleep(slice);
                    continue;
                }
                match wake.recv_timeout(slice) {
                    Ok(()) => {
                        let since = started.elapsed();
                        if since < MIN_EVENT_GAP {
                            std::thread::sleep(MIN_EVENT_GAP - since);
                        }
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => watching = false,
                }
            }
        }
        // What was read but not taken is not committed: the next start reads it again.
        self.flush_batch();
    }

    fn poll_once(&mut self) {
        self.poll += 1;
        let mut problems = Vec::new();
        let paths = self.finder.find(&mut problems);
        for (path, e) in problems {
            self.skip(&path, "unreadable", &format!("cannot list it: {e}"));
        }
        let first = self.poll == 1;
        let mut inodes = HashSet::new();
        let chunk = (self.s.max_concurrent_files / 2).max(1);
        for group in paths.chunks(chunk) {
            for path in group {
                if self.stopped() {
                    return;
                }
                if let Some(i) = self.visit(path, first, &mut inodes) {
                    self.drain(i, false);
                }
            }
            self.limit_open_files();
        }
        // Files no longer matched: renamed away or deleted. Read what is left through the
        // open handle, then let them go. A handle on a file another reader now reads (the
        // same inode truncated and written anew, so known by new first bytes) is only closed:
        // its old offset means nothing in the new content.
        let current: HashSet<(u64, u64)> = self
            .readers
            .iter()
            .filter(|r| r.seen_in_poll == self.poll)
            .filter_map(|r| r.inode)
            .collect();
        for i in 0..self.readers.len() {
            if self.stopped() {
                return;
            }
            if self.readers[i].seen_in_poll == self.poll {
                continue;
            }
            self.readers[i].unseen_polls += 1;
            if self.readers[i].file.is_some() {
                let reused = self.readers[i].inode.is_some_and(|i| current.contains(&i));
                if !self.readers[i].binary && !reused {
                    self.drain(i, true);
                }
                self.readers[i].close();
            }
        }
        // Multi-line records whose next line is not coming.
        for i in 0..self.readers.len() {
            if self.readers[i].last_data.elapsed() >= self.s.force_flush_period {
                if let Some(rec) = self.readers[i].flush_gathering() {
                    self.push_record(i, rec);
                }
            }
        }
        self.flush_batch();
        let chain = &self.chain;
        self.readers.retain(|r| {
            let forget = r.unseen_polls > FORGET_AFTER_POLLS
                && r.file.is_none()
                && chain.held_from(r.id).is_none();
            !forget
        });
        self.m
            .open_files
            .set(self.readers.iter().filter(|r| r.file.is_some()).count() as i64);
        self.m.known_files.set(self.readers.len() as i64);
        self.commit();
    }

    /// Reader `i`'s file was found `size` bytes long, shorter than what was read of it: cut
    /// in place. It is read again from its start; a record it was still gathering goes out
    /// as it is.
    fn truncated_in_place(&mut self, i: usize, path: &Path, size: u64) {
        let r = &mut self.readers[i];
        tracing::info!(
            component = %self.s.id, path = %path.display(), size, offset = r.consumed(),
            "file truncated in place (copytruncate?): reading it again from its start"
        );
        self.m.truncated_files.inc();
        let id = r.id;
        r.reset(0);
        let mut stale = Vec::new();
        self.chain.flush(id, &mut stale);
        for e in stale {
            self.push_entry(e);
        }
    }

    /// The reader, not seen yet in this poll, that had read some of the file at `inode`.
    fn read_before(&self, inode: (u64, u64)) -> Option<usize> {
        self.readers
            .iter()
            .position(|r| r.inode == Some(inode) && r.seen_in_poll != self.poll && r.consumed() > 0)
    }

    /// Opens and recognises one matched path; returns the reader to read from.
    fn visit(
        &mut self,
        path: &Path,
        first: bool,
        inodes: &mut HashSet<(u64, u64)>,
    ) -> Option<usize> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling link, or a file deleted since it was listed.
                return None;
            }
            Err(e) if e.raw_os_error() == Some(40) => {
                // ELOOP
                self.skip(path, "symlink_loop", "it is a loop of symbolic links");
                return None;
            }
            Err(e) => {
                self.skip(path, "unreadable", &e.to_string());
                return None;
            }
        };
        if meta.is_dir() {
            self.skip(
                path,
                "directory",
                "a directory matched the include glob; only files are read",
            );
            return None;
        }
        if !meta.is_file() {
            self.skip(
                path,
                "not_a_file",
                "not a regular file (a device, socket or pipe)",
            );
            return None;
        }
        if !inodes.insert((meta.dev(), meta.ino())) {
            // The same file through another path (a link): read once.
            return None;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.skip(path, "unreadable", &e.to_string());
                return None;
            }
        };
        let fp = match reader::fingerprint(&file, self.s.fingerprint_size) {
            Ok(fp) => fp,
            Err(e) => {
                self.skip(path, "unreadable", &e.to_string());
                return None;
            }
        };
        let poll = self.poll;
        if fp.is_empty() {
            // Empty: known once it has a first line. But a file already read that is empty
            // now was truncated in place, seen before its next line (copytruncate, or a
            // rewrite, between the cut and the first write): its reader starts over here,
            // or it would be let go as a file no longer there and the cut never counted.
            let inode = (meta.dev(), meta.ino());
            if let Some(i) = self.read_before(inode) {
                self.readers[i].seen_in_poll = poll;
                self.readers[i].unseen_polls = 0;
                self.truncated_in_place(i, path, 0);
            }
            return None;
        }
        self.warned.remove(path);
        let known = self
            .readers
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.seen_in_poll != poll
                    && !r.fingerprint.is_empty()
                    && fp.starts_with(&r.fingerprint)
            })
            .max_by_key(|(_, r)| r.fingerprint.len())
            .map(|(i, _)| i);
        let i = match known {
            Some(i) => {
                let r = &mut self.readers[i];
                r.set_path(path.to_path_buf());
                r.seen_in_poll = poll;
                r.unseen_polls = 0;
                if fp.len() > r.fingerprint.len() {
                    r.fingerprint = fp;
                }
                if r.inode != Some((meta.dev(), meta.ino())) {
                    r.attach(file);
                }
                if meta.len() < r.consumed() {
                    self.truncated_in_place(i, path, meta.len());
                }
                i
            }
            None => {
                let inode = (meta.dev(), meta.ino());
                if let Some(old) = self.read_before(inode).map(|i| &self.readers[i]) {
                    // The same file with other first bytes: cut and written anew in place.
                    tracing::info!(
                        component = %self.s.id, path = %path.display(), size = meta.len(), offset = old.consumed(),
                        "file truncated in place (copytruncate?): reading it again from its start"
                    );
                    self.m.truncated_files.inc();
                }
                let offset = if first && self.s.start_at == StartAt::End {
                    meta.len()
                } else {
                    0
                };
                let binary = fp.contains(&0);
                let mut r = Reader::new(self.next_id, path.to_path_buf(), fp, offset);
                self.next_id += 1;
                r.attach(file);
                r.seen_in_poll = poll;
                r.binary = binary;
                self.readers.push(r);
                if binary {
                    self.skip(
                        path,
                        "binary",
                        "it holds NUL bytes: it looks like a binary file, not a log",
                    );
                }
                self.readers.len() - 1
            }
        };
        (!self.readers[i].binary).then_some(i)
    }

    /// Logs (once per path) and counts a path that is not read.
    fn skip(&mut self, path: &Path, reason: &'static str, why: &str) {
        if self.warned.get(path) == Some(&reason) {
            return;
        }
        if self.warned.len() >= MAX_WARNED {
            self.warned.clear();
        }
        self.warned.insert(path.to_path_buf(), reason);
        self.m.skipped(reason).inc();
        tracing::warn!(
            component = %self.s.id, path = %path.display(), reason, error = %why,
            "a path matched by include is not read (the other files are; counted in weft_receiver_filelog_files_skipped)"
        );
    }

    /// Reads everything new in reader `i`; `finished`: the file will not grow any more, so
    /// what is held for it (an unfinished line, a multi-line record) goes out too.
    fn drain(&mut self, i: usize, finished: bool) {
        loop {
            if self.stopped() {
                return;
            }
            let mut cut = 0;
            let next = self.readers[i].next(&self.s.split, &mut cut);
            self.m.truncated_records.inc_by(cut);
            match next {
                Ok(Some(rec)) => self.push_record(i, rec),
                Ok(None) => break,
                Err(e) => {
                    let path = self.readers[i].path.clone();
                    self.skip(&path, "unreadable", &format!("read failed: {e}"));
                    self.readers[i].close();
                    return;
                }
            }
        }
        if finished {
            let r = &mut self.readers[i];
            let records: Vec<Record> = [r.flush_gathering(), r.flush_partial()]
                .into_iter()
                .flatten()
                .collect();
            let id = r.id;
            for rec in records {
                self.push_record(i, rec);
            }
            let mut held = Vec::new();
            self.chain.flush(id, &mut held);
            for e in held {
                self.push_entry(e);
            }
        }
    }

    /// One record of reader `i` through the operators into the batch.
    fn push_record(&mut self, i: usize, rec: Record) {
        let r = &mut self.readers[i];
        let size = rec.bytes.len();
        let body = match self.s.encoding {
            Encoding::Nop => Value::Bytes(rec.bytes),
            Encoding::Utf8 => match String::from_utf8(rec.bytes) {
                Ok(s) => Value::Str(s),
                Err(e) => {
                    self.m.invalid_utf8.inc();
                    if !r.warned_utf8 {
                        r.warned_utf8 = true;
                        tracing::warn!(
                            component = %self.s.id, path = %r.path.display(),
                            "a line is not valid UTF-8: its invalid bytes are replaced by U+FFFD (counted in weft_receiver_filelog_invalid_utf8_records; logged once per file; encoding: nop keeps the bytes)"
                        );
                    }
                    Value::Str(String::from_utf8_lossy(e.as_bytes()).into_owned())
                }
            },
        };
        let mut entry = Entry::new(
            body,
            operators::now_nanos(),
            Source {
                file: r.id,
                start: rec.start,
                end: rec.end,
            },
        );
        if self.s.include_file_name {
            entry.set_attribute("log.file.name", Value::Str(r.name_text.clone()));
        }
        if self.s.include_file_path {
            entry.set_attribute("log.file.path", Value::Str(r.path_text.clone()));
        }
        self.batch_bytes += size + 64;
        let mut out = std::mem::take(&mut self.scratch);
        self.chain.run(entry, &mut out);
        for e in out.drain(..) {
            self.push_entry(e);
        }
        self.scratch = out;
    }

    fn push_entry(&mut self, e: Entry) {
        self.batch.push(e);
        if self.batch.len() >= MAX_BATCH_RECORDS || self.batch_bytes >= MAX_BATCH_BYTES {
            self.flush_batch();
        }
    }

    /// Hands the batch to the pipeline, retrying while it is refused (backpressure), then
    /// commits the offsets it covered.
    fn flush_batch(&mut self) {
        self.batch_bytes = 0;
        if self.batch.is_empty() {
            self.commit();
            return;
        }
        let n = self.batch.len();
        let request = operators::entry::into_request(std::mem::take(&mut self.batch));
        let logs = Logs::from_encoded(request.encode_to_vec().into(), n);
        let mut warned = false;
        loop {
            match self.rt.block_on(self.consumer.consume(logs.clone())) {
                Ok(()) => {
                    self.m.accepted.inc_by(n as u64);
                    break;
                }
                Err(ConsumeError::Refused {
                    message,
                    retry_after,
                    ..
                }) => {
                    if self.stopped() {
                        self.abandoned = true;
                        self.m.refused.inc_by(n as u64);
                        tracing::warn!(
                            component = %self.s.id, records = n, error = %message,
                            "stopping while the pipeline refuses: these records were not committed and are read again at the next start"
                        );
                        return;
                    }
                    if !warned {
                        warned = true;
                        tracing::warn!(
                            component = %self.s.id, records = n, error = %message,
                            "the pipeline refused a batch (backpressure): reading pauses and the batch is retried"
                        );
                    }
                    let wait = retry_after.clamp(MIN_RETRY, MAX_RETRY);
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !self.stopped() {
                        std::thread::sleep(Duration::from_millis(20).min(wait));
                    }
                }
                Err(ConsumeError::Permanent(message)) => {
                    self.m.refused.inc_by(n as u64);
                    tracing::error!(
                        component = %self.s.id, records = n, error = %message,
                        "the pipeline refused a batch as invalid: it cannot be taken and is dropped (counted in otelcol_receiver_refused_log_records)"
                    );
                    break;
                }
            }
        }
        if warned {
            tracing::info!(component = %self.s.id, "the pipeline takes data again: reading resumes");
        }
        self.commit();
    }

    /// Commits, for every file, the offset up to which everything was taken.
    fn commit(&mut self) {
        if self.abandoned {
            return;
        }
        for r in &mut self.readers {
            let held = self.chain.held_from(r.id).unwrap_or(u64::MAX);
            r.committed = r.held_from().min(held);
        }
        let Some(checkpoint) = &mut self.checkpoint else {
            return;
        };
        let files = self
            .readers
            .iter()
            .filter(|r| !r.fingerprint.is_empty())
            .map(|r| Committed {
                fingerprint: hex::encode(&r.fingerprint),
                offset: r.committed,
                path: r.path_text.clone(),
            })
            .collect();
        if let Err(e) = checkpoint.write(files) {
            self.m.checkpoint_errors.inc();
            tracing::warn!(
                component = %self.s.id, error = %e,
                "cannot write the committed offsets to storage: after a restart more may be read again"
            );
        }
    }

    /// Keeps at most `max_concurrent_files` handles: beyond it, files read to their end are
    /// closed (they are opened again at the next poll).
    fn limit_open_files(&mut self) {
        let mut open = self.readers.iter().filter(|r| r.file.is_some()).count();
        if open <= self.s.max_concurrent_files {
            return;
        }
        for r in &mut self.readers {
            if open <= self.s.max_concurrent_files / 2 {
                break;
            }
            if r.file.is_some() && r.seen_in_poll == self.poll {
                r.close();
                open -= 1;
            }
        }
    }
}
