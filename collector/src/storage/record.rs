//! The record framing of a segment file, and the one rule for reading a segment back (see the
//! [module docs](super) for the rule and why).

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// `[len: u32 LE][payload CRC-32: u32 LE][header CRC-32: u32 LE]`.
pub const HEADER: usize = 12;

/// The CRC-32 state of a payload (or of its body, computed before a lock is taken and
/// combined with a short head under it).
pub type Checksum = crc32fast::Hasher;

/// The checksum of `bytes`.
pub fn checksum(bytes: &[u8]) -> Checksum {
    let mut h = Checksum::new();
    h.update(bytes);
    h
}

/// The header of a record whose payload is `len` bytes with CRC-32 `crc`.
pub fn header(len: u32, crc: u32) -> [u8; HEADER] {
    let mut out = [0u8; HEADER];
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    let check = crc32fast::hash(&out[..8]);
    out[8..].copy_from_slice(&check.to_le_bytes());
    out
}

/// `(payload length, payload CRC)` of the header at the start of `bytes`, or `None` when its
/// own checksum does not match (the length cannot be trusted).
fn parse_header(bytes: &[u8]) -> Option<(usize, u32)> {
    let h: &[u8; HEADER] = bytes.get(..HEADER)?.try_into().ok()?;
    let check = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if crc32fast::hash(&h[..8]) != check {
        return None;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    Some((len, crc))
}

/// What reading a segment found.
#[derive(Debug, Default)]
pub struct Scan {
    /// `(offset of the record, payload range)` of every sound record, in file order.
    pub records: Vec<(u64, Range<usize>)>,
    /// `(offset, bytes)` of every damaged stretch: a record whose payload checksum does not
    /// match, or the bytes from a damaged header to the next sound record (or the end).
    pub damaged: Vec<(u64, u64)>,
    /// Where an incomplete last record starts: fewer bytes than a header, a sound header
    /// whose payload runs past the end, or nothing but zero bytes to the end.
    pub torn_at: Option<u64>,
}

/// Frames `data` (a whole segment file) by the rule in the module docs.
pub fn scan(data: &[u8]) -> Scan {
    let mut out = Scan::default();
    let mut at = 0usize;
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < HEADER {
            out.torn_at = Some(at as u64);
            break;
        }
        let Some((len, crc)) = parse_header(rest) else {
            if rest.iter().all(|b| *b == 0) {
                // Space the file system extended the file with, and the write never filled.
                out.torn_at = Some(at as u64);
                break;
            }
            // The length is not to be trusted: resume at the next sound record, if any.
            let next = find_record(data, at + 1);
            let end = next.unwrap_or(data.len());
            out.damaged.push((at as u64, (end - at) as u64));
            at = end;
            continue;
        };
        let end = at + HEADER + len;
        if end > data.len() {
            out.torn_at = Some(at as u64);
            break;
        }
        let payload = at + HEADER..end;
        if crc32fast::hash(&data[payload.clone()]) == crc {
            out.records.push((at as u64, payload));
        } else {
            out.damaged.push((at as u64, (end - at) as u64));
        }
        at = end;
    }
    out
}

/// The first offset at or after `from` where a whole sound record starts (header and payload
/// checksums both match: a false match in damaged bytes is a 1 in 2^64 event).
fn find_record(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len().saturating_sub(HEADER - 1)).find(|&at| {
        parse_header(&data[at..]).is_some_and(|(len, crc)| {
            let end = at + HEADER + len;
            end <= data.len() && crc32fast::hash(&data[at + HEADER..end]) == crc
        })
    })
}

/// Reads the record at `offset` of the segment file at `path`. A record that does not frame
/// or whose checksum does not match is an [`io::ErrorKind::InvalidData`] error.
pub fn read_at(path: &Path, offset: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut head = [0u8; HEADER];
    file.read_exact_at(&mut head, offset)?;
    let (len, crc) = parse_header(&head).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("damaged record header at offset {offset}"),
        )
    })?;
    let mut payload = vec![0u8; len];
    file.read_exact_at(&mut payload, offset + HEADER as u64)?;
    if crc32fast::hash(&payload) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("record at offset {offset}: checksum mismatch"),
        ));
    }
    Ok(payload)
}
