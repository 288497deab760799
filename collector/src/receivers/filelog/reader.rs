//! One file being tailed: its identity (fingerprint), where reading stands, and the split
//! of its bytes into records.
//!
//! Memory is bounded per file: the read buffer holds at most `max_log_size` bytes of an
//! unfinished line plus one read chunk. A line longer than `max_log_size` is cut there: the
//! first `max_log_size` bytes become a record (counted as truncated) and the rest of the
//! line is skipped up to its newline. A last line without its newline is held (not sent)
//! until the newline arrives, or until the file is finished for good (renamed away or
//! deleted), when it is sent as it is.
//!
//! Offsets: `consumed()` is the offset just past the last record handed out; `held_from()`
//! is where the bytes not yet handed out begin (an unfinished line, a multi-line record in
//! progress). A receiver commits `held_from()` (and what its operators hold) once
//! everything handed out was taken by the pipeline, so a restart re-reads exactly what was
//! not yet accepted.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::time::Instant;

use regex::Regex;

/// Bytes read from a file at once.
const CHUNK: usize = 64 * 1024;

/// How the lines of a file become records.
#[derive(Clone, Debug)]
pub struct Splitting {
    pub max_log_size: usize,
    pub line_start: Option<Regex>,
    pub line_end: Option<Regex>,
}

/// One record's bytes and where they are in the file.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    pub bytes: Vec<u8>,
    pub start: u64,
    pub end: u64,
    /// Cut at `max_log_size`.
    pub truncated: bool,
}

/// A multi-line record being gathered.
#[derive(Debug)]
struct Gathering {
    bytes: Vec<u8>,
    start: u64,
    end: u64,
    truncated: bool,
}

/// A file the receiver knows.
#[derive(Debug)]
pub struct Reader {
    pub id: u64,
    pub path: PathBuf,
    /// `path` and its file name as text, made once (every record carries them).
    pub path_text: String,
    pub name_text: String,
    /// The file's first bytes (up to `fingerprint_size`): how it is recognised after a
    /// rename, a restart or a copy.
    pub fingerprint: Vec<u8>,
    pub file: Option<File>,
    /// (device, inode) of `file`.
    pub inode: Option<(u64, u64)>,
    /// Bytes read from the file, from `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
    /// Position in `buf` of the first byte not yet handed out.
    pos: usize,
    /// Inside a line longer than `max_log_size`: its rest is being skipped.
    skipping: bool,
    gathering: Option<Gathering>,
    /// When data last arrived (for `force_flush_period`).
    pub last_data: Instant,
    /// The offset committed for this file.
    pub committed: u64,
    /// Polls since the file was last matched by the globs.
    pub unseen_polls: u32,
    /// The poll that last matched it.
    pub seen_in_poll: u64,
    /// Looks binary: never read.
    pub binary: bool,
    /// Lines of this file with invalid UTF-8 were reported.
    pub warned_utf8: bool,
}

impl Reader {
    pub fn new(id: u64, path: PathBuf, fingerprint: Vec<u8>, offset: u64) -> Self {
        let mut r = Self {
            id,
            path: PathBuf::new(),
            path_text: String::new(),
            name_text: String::new(),
            fingerprint,
            file: None,
            inode: None,
            buf: Vec::new(),
            buf_start: offset,
            pos: 0,
            skipping: false,
            gathering: None,
            last_data: Instant::now(),
            committed: offset,
            unseen_polls: 0,
            seen_in_poll: 0,
            binary: false,
            warned_utf8: false,
        };
        r.set_path(path);
        r
    }

    /// The path the file is found at now.
    pub fn set_path(&mut self, path: PathBuf) {
        if path == self.path {
            return;
        }
        self.path_text = path.to_string_lossy().into_owned();
        self.name_text = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.path = path;
    }

    /// Uses `file` from now on (reading goes on at the same offset).
    pub fn attach(&mut self, file: File) {
        self.inode = file.metadata().ok().map(|m| (m.dev(), m.ino()));
        self.file = Some(file);
    }

    pub fn close(&mut self) {
        self.file = None;
        self.inode = None;
    }

    /// The offset just past what was handed out.
    pub fn consumed(&self) -> u64 {
        self.buf_start + self.pos as u64
    }

    /// Where the bytes not yet handed out begin.
    pub fn held_from(&self) -> u64 {
        match &self.gathering {
            Some(g) => g.start.min(self.consumed()),
            None => self.consumed(),
        }
    }

    /// Starts over at `offset` (a truncated file), forgetting what was buffered.
    pub fn reset(&mut self, offset: u64) {
        self.buf.clear();
        self.buf_start = offset;
        self.pos = 0;
        self.skipping = false;
        self.gathering = None;
        self.committed = self.committed.min(offset);
    }

    /// The next record, reading more of the file when needed; `None` when the file has no
    /// complete record left right now.
    pub fn next(&mut self, split: &Splitting, cut: &mut u64) -> std::io::Result<Option<Record>> {
        loop {
            let Some(line) = self.next_line(split.max_log_size, cut)? else {
                return Ok(None);
            };
            self.last_data = Instant::now();
            match (&split.line_start, &split.line_end) {
                (None, None) => return Ok(Some(line)),
                (Some(start), _) => {
                    let begins = start.is_match(&String::from_utf8_lossy(&line.bytes));
                    if begins {
                        let previous = self.gathering.replace(Gathering {
                            bytes: line.bytes,
                            start: line.start,
                            end: line.end,
                            truncated: line.truncated,
                        });
                        if let Some(g) = previous {
                            return Ok(Some(g.into_record()));
                        }
                    } else {
                        match &mut self.gathering {
                            Some(g) => g.append(&line, split.max_log_size, cut),
                            // Lines before the first start of a record form their own.
                            None => return Ok(Some(line)),
                        }
                    }
                }
                (None, Some(end)) => {
                    let ends = end.is_match(&String::from_utf8_lossy(&line.bytes));
                    match &mut self.gathering {
                        Some(g) => g.append(&line, split.max_log_size, cut),
                        None => {
                            self.gathering = Some(Gathering {
                                bytes: line.bytes,
                                start: line.start,
                                end: line.end,
                                truncated: line.truncated,
                            })
                        }
                    }
                    if ends {
                        return Ok(self.gathering.take().map(Gathering::into_record));
                    }
                }
            }
        }
    }

    /// Gives out a multi-line record in progress (nothing came for a while, or the file is
    /// finished).
    pub fn flush_gathering(&mut self) -> Option<Record> {
        self.gathering.take().map(Gathering::into_record)
    }

    /// Gives out an unfinished last line (the file is finished for good).
    pub fn flush_partial(&mut self) -> Option<Record> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.consumed();
        let bytes = self.buf[self.pos..].to_vec();
        self.pos = self.buf.len();
        let end = self.consumed();
        if self.skipping {
            self.skipping = false;
            return None;
        }
        Some(Record {
            bytes,
            start,
            end,
            truncated: false,
        })
    }

    fn next_line(&mut self, max: usize, cut: &mut u64) -> std::io::Result<Option<Record>> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                let start = self.consumed();
                let line_end = self.pos + nl;
                let mut bytes = &self.buf[self.pos..line_end];
                if bytes.last() == Some(&b'\r') {
                    bytes = &bytes[..bytes.len() - 1];
                }
                let record = (!self.skipping).then(|| Record {
                    bytes: bytes.to_vec(),
                    start,
                    end: start + nl as u64 + 1,
                    truncated: false,
                });
                self.skipping = false;
                self.pos = line_end + 1;
                match record {
                    Some(r) => return Ok(Some(r)),
                    None => continue,
                }
            }
            let pending = self.buf.len() - self.pos;
            if self.skipping && pending > 0 {
                // Still inside the over-long line: drop what was read of it.
                self.pos = self.buf.len();
                continue;
            }
            if pending >= max {
                // A line longer than max_log_size: hand out its first max bytes, skip the rest.
                let start = self.consumed();
                let bytes = self.buf[self.pos..self.pos + max].to_vec();
                self.pos += max;
                self.skipping = true;
                *cut += 1;
                return Ok(Some(Record {
                    bytes,
                    start,
                    end: start + max as u64,
                    truncated: true,
                }));
            }
            if !self.fill(max)? {
                return Ok(None);
            }
        }
    }

    /// Reads more of the file into the buffer; false at the end of the file.
    fn fill(&mut self, max: usize) -> std::io::Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.buf_start += self.pos as u64;
            self.pos = 0;
        }
        let want = CHUNK.min(max.saturating_sub(self.buf.len()).max(1));
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let offset = self.buf_start + old as u64;
        let n = loop {
            match file.read_at(&mut self.buf[old..], offset) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        Ok(n > 0)
    }
}

impl Gathering {
    fn append(&mut self, line: &Record, max: usize, cut: &mut u64) {
        self.end = line.end;
        if self.truncated {
            return;
        }
        let room = max.saturating_sub(self.bytes.len() + 1);
        if line.bytes.len() <= room {
            self.bytes.push(b'\n');
            self.bytes.extend_from_slice(&line.bytes);
        } else {
            if room > 0 {
                self.bytes.push(b'\n');
                self.bytes.extend_from_slice(&line.bytes[..room]);
            }
            self.truncated = true;
            *cut += 1;
        }
    }

    fn into_record(self) -> Record {
        Record {
            bytes: self.bytes,
            start: self.start,
            end: self.end,
            truncated: self.truncated,
        }
    }
}

/// The first `size` bytes of `file`.
pub fn fingerprint(file: &File, size: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn split(max: usize) -> Splitting {
        Splitting {
            max_log_size: max,
            line_start: None,
            line_end: None,
        }
    }

    fn all(r: &mut Reader, s: &Splitting) -> Vec<(String, u64, u64, bool)> {
        let mut cut = 0;
        let mut out = Vec::new();
        while let Some(rec) = r.next(s, &mut cut).unwrap() {
            out.push((
                String::from_utf8(rec.bytes).unwrap(),
                rec.start,
                rec.end,
                rec.truncated,
            ));
        }
        out
    }

    #[test]
    fn lines_partial_lines_and_over_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"one\r\ntwo\n0123456789abcdef\nthree\npart")
            .unwrap();
        let mut r = Reader::new(1, path.clone(), Vec::new(), 0);
        r.attach(File::open(&path).unwrap());
        let got = all(&mut r, &split(8));
        assert_eq!(
            got,
            vec![
                ("one".into(), 0, 5, false),
                ("two".into(), 5, 9, false),
                ("01234567".into(), 9, 17, true),
                ("three".into(), 26, 32, false),
            ]
        );
        assert_eq!(r.held_from(), 32, "the partial line is held");
        f.write_all(b"ial\n").unwrap();
        assert_eq!(
            all(&mut r, &split(8)),
            vec![("partial".into(), 32, 40, false)]
        );
        assert_eq!(r.held_from(), 40);
    }

    #[test]
    fn multiline_records_gather_until_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"2025 first\n  at a\n  at b\n2025 second\n").unwrap();
        let mut r = Reader::new(1, path.clone(), Vec::new(), 0);
        r.attach(File::open(&path).unwrap());
        let s = Splitting {
            max_log_size: 1 << 20,
            line_start: Some(Regex::new("^2025").unwrap()),
            line_end: None,
        };
        assert_eq!(
            all(&mut r, &s),
            vec![("2025 first\n  at a\n  at b".into(), 0, 25, false)]
        );
        assert_eq!(
            r.held_from(),
            25,
            "the second record waits for the next start"
        );
        let last = r.flush_gathering().unwrap();
        assert_eq!(
            (last.bytes.as_slice(), last.start, last.end),
            (&b"2025 second"[..], 25, 37)
        );
    }
}
