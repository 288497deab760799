//! The segment log: a crash-safe, append-only record log in a folder of segment files. Both
//! durable parts of Weft are built on it — the persistent sending queue
//! ([`crate::exporters::helper::FileQueue`]) and the durable tail-sampling window's
//! write-ahead log ([`crate::processors::tail_sampling::wal`]) — with the folders and fsync
//! setting the [`file_storage`](crate::extensions::file_storage) extension gives them. It is
//! shared machinery, not part of either: neither reaches into the other.
//!
//! # Files and records
//!
//! A log is a folder of segment files `segment-<n>.log` (`n` zero-padded to 20 digits,
//! increasing). Each starts with the 8 bytes `WEFTLOG\x02` and is a sequence of records,
//! closed by a *seal* when the writer leaves it:
//!
//! ```text
//! [len: u32 LE][payload CRC-32: u32 LE][header CRC-32 of n (u64 LE) and the 8 bytes before: u32 LE][payload: len bytes]
//! seal: the same header with len = 0xFFFF_FFFF and CRC 0, no payload
//! ```
//!
//! The header has its own checksum so that a damaged length is never believed: without it, a
//! flipped bit in a length looks exactly like a record cut short at the end of the file, and
//! the rule below would cut off the sound, acknowledged records after it. That checksum
//! covers the segment's number `n` too, because segment files are reused: the file of a
//! deleted segment is kept (renamed `segment-<n>.spare`, at most two of them) and the next
//! new segment overwrites it, so its old records lie past the new ones until overwritten —
//! and a record of another segment never passes the check. Overwriting a file whose pages
//! and disk blocks exist costs the kernel about a third of the CPU of writing a new one (no
//! page or block allocation, no freeing at unlink): most of what the log costs is there.
//! Spare files are removed when the log closes. What a payload means (its first byte is a
//! kind, by convention) is the user's business.
//!
//! Files without the 8 bytes are of the first format (header checksums without `n`, no
//! seal, never reused) and are read by the same rule, as a first-format file always was.
//!
//! # The rule for reading a segment back (one rule, for every user)
//!
//! - **The seal** ends the segment: whatever follows it is not read.
//! - **Torn**: the records stop before the end of the file and no seal follows — fewer bytes
//!   than a header are left, a sound header's payload runs past the end of the file (or does
//!   not match, with no sound record of the segment after it: a record torn while
//!   overwriting a reused file), or what follows holds no sound record of the segment (zero
//!   bytes the file system allocated for a write that never reached it, or the file's
//!   earlier use). A process killed mid-`write` leaves exactly this, and only ever at the end
//!   of the segment being written, whose records are acknowledged only once the write
//!   returned: the torn record was never acknowledged. **At the end of the last segment it is
//!   cut off** — the segment is sealed where its records end (a first-format file is
//!   truncated there) — and counted as a torn tail. The last segment is sealed at open even
//!   when it ended cleanly, since it is never written again.
//! - **A segment other than the last without its seal (or torn) is damage**: the log moves to
//!   a new segment only after the previous one is sealed, so a later segment existing means
//!   the end of this one was lost (typically a power loss with `fsync: false`, where the
//!   kernel flushed the newer file first). It is logged as an error and counted as a corrupt
//!   record; its sound records are read, the file is left as it is (it is never written
//!   again, and is deleted with its other records).
//! - **Corrupt**: a record whose payload checksum does not match is skipped (its sound
//!   header says where the next one starts; in the current format, with no sound record of
//!   the segment after it, it is a torn one); a header whose own checksum does not match
//!   cannot say where its record ends, so reading resumes at the next offset where a whole
//!   sound record (both checksums) starts, and the bytes in between are skipped. Either is
//!   logged as an error with the file and offset, and counted as one corrupt record — never
//!   handed on, never a panic.
//!
//! Records are counted in the user's metrics (`…_corrupt_records`, `…_torn_tails`).
//!
//! # Writing: one writer thread, group commit
//!
//! [`SegmentLog::append`] frames the record into an in-memory buffer under a short lock and
//! returns; no file I/O happens on the caller's (async) thread. One writer thread per log
//! takes everything appended since its last write and writes it with one `write` per segment
//! (one in all, unless a segment was closed in between), then — with `fsync: true` and a record
//! in it that asked to be durable — one `fdatasync`, and only then completes each record
//! ([`Done`]): a client is answered once its record is on disk. Bookkeeping records (a
//! delivery, a decision) do not ask for a sync of their own: they ride along with the next
//! one, since losing one only means sending something again.
//!
//! fsync cadence, from the `file_storage` extension's `fsync`:
//! - `false` (default): a record is complete once `write` returned: the kernel holds it, so
//!   it survives the process being killed, not the machine losing power.
//! - `true`: once `fdatasync` returned, for every write that holds a record a client waits
//!   for — one sync per group commit, not per record — and the folder is synced when a
//!   segment file is created, so the new name survives too.
//!
//! # Segments: rotation, deletion, bound
//!
//! A segment is closed (new records go to the next) once it holds `segment_bytes`, or, with
//! `rotate_after`, once its first record is that old — also when no record arrives, so a
//! quiet log can shrink. Users delete closed segments whose records they no longer need;
//! the writer thread retires them (keeps the file as a spare, or unlinks it) after writing
//! what was appended before. Records counted as
//! data (`bounded`) are refused with [`AppendError::Full`] once the log's files and buffer
//! would pass `max_bytes` (the first record into an empty log always fits); bookkeeping
//! records are not refused, since they are what lets segments be deleted.
//!
//! Reading happens where it may block: the recovery scan in [`SegmentLog::open`] (at build,
//! outside the async workers), and [`read_segment`] / [`read_record`] from `spawn_blocking`.

mod log;
mod record;

#[cfg(test)]
mod tests;

pub use log::{
    read_record, read_segment, segment_bytes_for, Append, AppendError, Done, LogMetrics,
    LogOptions, Opened, Position, Record, SegmentInfo, SegmentLog, Written, SEGMENT_BYTES,
};
/// The seal of a segment, for tests elsewhere that take it off to make a file look as a
/// crash leaves it.
#[cfg(test)]
pub(crate) use record::seal;
pub use record::{checksum, Checksum};

/// Runs `f`, which blocks on file I/O, without holding up an async worker: on a worker of the
/// multi-threaded runtime (or the thread in its `block_on`) the runtime moves its other tasks
/// away first ([`tokio::task::block_in_place`]); elsewhere (a plain thread, a blocking-pool
/// thread, a single-threaded test runtime) it simply runs.
pub fn run_blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
