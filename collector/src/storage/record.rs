//! The record framing of a segment file, and the one rule for reading a segment back (see the
//! [module docs](super) for the rule and why).

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// `[len: u32 LE][payload CRC-32: u32 LE][header CRC-32: u32 LE]`.
pub const HEADER: usize = 12;

/// The first bytes of a segment file in the current format. A file without them is in the
/// first format (no seal, header checksums not tied to the segment).
pub const MAGIC: [u8; 8] = *b"WEFTLOG\x02";

/// The length field of a seal: the header that closes a segment.
const SEAL: u32 = u32::MAX;

/// The largest payload a record may have (a longer length is the seal's).
pub const MAX_PAYLOAD: usize = SEAL as usize - 1;

/// The CRC-32 state of a payload (or of its body, computed before a lock is taken and
/// combined with a short head under it).
pub type Checksum = crc32fast::Hasher;

/// The checksum of `bytes`.
pub fn checksum(bytes: &[u8]) -> Checksum {
    let mut h = Checksum::new();
    h.update(bytes);
    h
}

/// The checksum of a header's first 8 bytes: in the current format it covers the segment's
/// number too, so the records a reused file held before are not taken for its own.
fn header_check(segment: Option<u64>, first: &[u8]) -> u32 {
    let mut h = Checksum::new();
    if let Some(n) = segment {
        h.update(&n.to_le_bytes());
    }
    h.update(first);
    h.finalize()
}

fn framed(segment: Option<u64>, len: u32, crc: u32) -> [u8; HEADER] {
    let mut out = [0u8; HEADER];
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    let check = header_check(segment, &out[..8]);
    out[8..].copy_from_slice(&check.to_le_bytes());
    out
}

/// The header of a record of segment `segment` whose payload is `len` bytes with CRC-32
/// `crc`.
pub fn header(segment: u64, len: u32, crc: u32) -> [u8; HEADER] {
    debug_assert!(len != SEAL);
    framed(Some(segment), len, crc)
}

/// The seal of segment `segment`: written after its last record when the writer leaves it.
pub fn seal(segment: u64) -> [u8; HEADER] {
    framed(Some(segment), SEAL, 0)
}

/// A header of the first format (tests write such files by hand).
#[cfg(test)]
pub fn first_format_header(len: u32, crc: u32) -> [u8; HEADER] {
    framed(None, len, crc)
}

/// `(length field, payload CRC)` of the header at the start of `bytes`, or `None` when its
/// own checksum does not match (the length cannot be trusted).
fn parse_header(bytes: &[u8], segment: Option<u64>) -> Option<(u32, u32)> {
    let h: &[u8; HEADER] = bytes.get(..HEADER)?.try_into().ok()?;
    let check = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if header_check(segment, &h[..8]) != check {
        return None;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    Some((len, crc))
}

/// What reading a segment found.
#[derive(Debug, Default)]
pub struct Scan {
    /// `(offset of the record, payload range)` of every sound record, in file order.
    pub records: Vec<(u64, Range<usize>)>,
    /// `(offset, bytes)` of every damaged stretch: a record whose payload checksum does not
    /// match, or the bytes from a damaged header to the next sound record.
    pub damaged: Vec<(u64, u64)>,
    /// Where the records stop although bytes follow that are neither a record nor the seal:
    /// a record torn mid-write (fewer bytes than a header, a sound header whose payload runs
    /// past the end or, in the current format, does not match with no sound record after
    /// it), zero bytes the file system extended the file with, or — in the current format —
    /// what a reused file held before (nothing of this segment follows).
    pub torn_at: Option<u64>,
    /// Where the records end (the seal's offset, `torn_at`, or the end of the data).
    pub end: u64,
    /// The segment was closed by its writer (current format).
    pub sealed: bool,
    /// The file is in the current format ([`MAGIC`]).
    pub current_format: bool,
}

/// Frames `data` (the whole file of segment `segment`) by the rule in the module docs.
pub fn scan(data: &[u8], segment: u64) -> Scan {
    let current = data.starts_with(&MAGIC);
    let seed = current.then_some(segment);
    let mut out = Scan {
        current_format: current,
        ..Scan::default()
    };
    let mut at = if current { MAGIC.len() } else { 0 };
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < HEADER {
            out.torn_at = Some(at as u64);
            break;
        }
        let Some((len, crc)) = parse_header(rest, seed) else {
            if !current && rest.iter().all(|b| *b == 0) {
                // Space the file system extended the file with, and the write never filled.
                out.torn_at = Some(at as u64);
                break;
            }
            // The length is not to be trusted: resume at the next sound record, if any.
            match find_record(data, at + 1, seed) {
                Some(next) => {
                    out.damaged.push((at as u64, (next - at) as u64));
                    at = next;
                    continue;
                }
                // In the current format nothing of this segment follows: its end (torn,
                // zeros, or the file's earlier use). In the first format, damage to the end.
                None if current => {
                    out.torn_at = Some(at as u64);
                    break;
                }
                None => {
                    out.damaged.push((at as u64, (data.len() - at) as u64));
                    at = data.len();
                    break;
                }
            }
        };
        if current && len == SEAL {
            out.sealed = true;
            break;
        }
        let end = at + HEADER + len as usize;
        if end > data.len() {
            out.torn_at = Some(at as u64);
            break;
        }
        let payload = at + HEADER..end;
        if crc32fast::hash(&data[payload.clone()]) == crc {
            out.records.push((at as u64, payload));
            at = end;
            continue;
        }
        if current {
            // A record written over older bytes and torn mid-write has a sound header and a
            // payload that does not match; it is the last one of the segment. A damaged
            // payload has sound records after it, from where its header says it ends.
            match find_record(data, end, seed) {
                Some(next) => {
                    out.damaged.push((at as u64, (next - at) as u64));
                    at = next;
                }
                None => {
                    out.torn_at = Some(at as u64);
                    break;
                }
            }
        } else {
            out.damaged.push((at as u64, (end - at) as u64));
            at = end;
        }
    }
    out.end = out.torn_at.unwrap_or(at as u64);
    out
}

/// The first offset at or after `from` where a whole sound record (or the seal) starts:
/// header and payload checksums both match, a false match in damaged bytes being a 1 in 2^64
/// event.
fn find_record(data: &[u8], from: usize, segment: Option<u64>) -> Option<usize> {
    (from..data.len().saturating_sub(HEADER - 1)).find(|&at| {
        parse_header(&data[at..], segment).is_some_and(|(len, crc)| {
            if segment.is_some() && len == SEAL {
                return crc == 0;
            }
            let end = at + HEADER + len as usize;
            end <= data.len() && crc32fast::hash(&data[at + HEADER..end]) == crc
        })
    })
}

/// Reads the record at `offset` of the file of segment `segment` at `path`. A record that
/// does not frame or whose checksum does not match is an [`io::ErrorKind::InvalidData`]
/// error.
pub fn read_at(path: &Path, segment: u64, offset: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut head = [0u8; HEADER];
    file.read_exact_at(&mut head, offset)?;
    // A record's offset says nothing of its file's format; a header that passes the check of
    // the wrong one is a 1 in 2^32 event, and its payload's checksum is checked still.
    let (len, crc) = parse_header(&head, Some(segment))
        .filter(|(len, _)| *len != SEAL)
        .or_else(|| parse_header(&head, None))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("damaged record header at offset {offset}"),
            )
        })?;
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, offset + HEADER as u64)?;
    if crc32fast::hash(&payload) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("record at offset {offset}: checksum mismatch"),
        ));
    }
    Ok(payload)
}
