//! The segment log on real files in a temporary folder: what is written comes back, and
//! every case of the reading rule (torn, damaged payload, damaged header, a torn or unsealed
//! end that is not the last, a reused file's old records, a first-format file) does what the
//! module docs say. No test depends on timing.

use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;

use super::log::segment_path;
use super::record::{first_format_header, header, seal, HEADER, MAGIC};
use super::*;

/// The bytes of segment `n` without its seal at the end, as a crash between two writes
/// leaves it.
fn unsealed(dir: &Path, n: u64) -> Vec<u8> {
    let mut bytes = std::fs::read(segment_path(dir, n)).unwrap();
    assert!(bytes.ends_with(&seal(n)), "closed with its seal");
    bytes.truncate(bytes.len() - HEADER);
    bytes
}

fn options(dir: &Path) -> LogOptions {
    LogOptions::new(dir.to_path_buf(), false, 1 << 30, "test")
}

/// Opens the log in `dir`; returns it with every sound record found, as (segment, payload).
fn open(opts: LogOptions) -> (SegmentLog, Opened, Vec<(u64, Vec<u8>)>) {
    let mut found = Vec::new();
    let (log, opened) = SegmentLog::open(opts, |segment, _, payload| {
        found.push((segment, payload.to_vec()));
        None
    })
    .expect("open");
    (log, opened, found)
}

fn payloads(found: &[(u64, Vec<u8>)]) -> Vec<String> {
    found
        .iter()
        .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// Appends `body` as data and waits until it is written.
async fn write(log: &SegmentLog, body: &[u8]) -> Position {
    let (tx, rx) = oneshot::channel();
    log.append(Record::new(b"", body), Append::data(Done::Channel(tx)))
        .expect("appended");
    rx.await.expect("completed").expect("written")
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn records_come_back_in_order_from_where_the_writer_says_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let (log, opened, found) = open(options(dir.path()));
    assert!(opened.segments.is_empty() && found.is_empty());
    // Many appends before the writer gets to them: one group commit, each completed with
    // its own position.
    let mut waiting = Vec::new();
    for i in 0..50u32 {
        let (tx, rx) = oneshot::channel();
        let head = i.to_le_bytes();
        log.append(
            Record::new(&head, b"-body").with_body_checksum(checksum(b"-body")),
            Append::data(Done::Channel(tx)),
        )
        .unwrap();
        waiting.push(rx);
    }
    let mut positions = Vec::new();
    for rx in waiting {
        positions.push(rx.await.unwrap().unwrap());
    }
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let third = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        let at = positions[3];
        move || read_record(&dir, at)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(third, [3u8, 0, 0, 0, b'-', b'b', b'o', b'd', b'y']);
    assert_eq!(log.bytes(), (MAGIC.len() + 50 * (HEADER + 9)) as u64);
    log.close().await;

    let (_log, opened, found) = open(options(dir.path()));
    assert_eq!(opened.segments, [1]);
    assert_eq!((opened.corrupt, opened.torn), (0, 0));
    assert_eq!(found.len(), 50);
    assert_eq!(found[49].1[0], 49);
}

#[tokio::test]
async fn a_torn_record_at_the_end_of_the_last_segment_is_cut_off() {
    let stale = b"from an earlier use";
    for tear in [
        // Fewer bytes than a header.
        vec![5u8, 0, 0],
        // A sound header whose payload runs past the end of the file.
        header(1, 100, 7)[..].to_vec(),
        // A sound header whose payload was not all written over what the file held.
        [&header(1, 5, crc32fast::hash(b"fifth"))[..], b"fif\x00\x00"].concat(),
        // Zeros: space allocated for a write that never reached the disk.
        vec![0u8; 40],
        // A whole record of another segment: the file held it before it was reused.
        [
            &header(7, stale.len() as u32, crc32fast::hash(stale))[..],
            stale,
        ]
        .concat(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _, _) = open(options(dir.path()));
        write(&log, b"first").await;
        write(&log, b"second").await;
        log.close().await;
        let path = segment_path(dir.path(), 1);
        let mut bytes = unsealed(dir.path(), 1);
        let sound = bytes.len();
        bytes.extend_from_slice(&tear);
        std::fs::write(&path, &bytes).unwrap();

        let mut opts = options(dir.path());
        let torn = opts.metrics.torn_tails.clone();
        opts.metrics = LogMetrics {
            torn_tails: torn.clone(),
            ..LogMetrics::default()
        };
        let (log, opened, found) = open(opts);
        assert_eq!(payloads(&found), ["first", "second"], "tear {tear:?}");
        assert_eq!((opened.torn, opened.corrupt), (1, 0), "tear {tear:?}");
        assert_eq!(torn.get(), 1);
        let now = std::fs::read(&path).unwrap();
        assert_eq!(
            now[sound..sound + HEADER],
            seal(1),
            "sealed where the records end"
        );
        // The log goes on in a new segment; the cut one reads cleanly.
        write(&log, b"third").await;
        log.close().await;
        let (_, opened, found) = open(options(dir.path()));
        assert_eq!(payloads(&found), ["first", "second", "third"]);
        assert_eq!((opened.torn, opened.corrupt), (0, 0));
    }
}

#[tokio::test]
async fn a_damaged_payload_is_skipped_and_counted_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(options(dir.path()));
    for body in [&b"first"[..], b"second", b"third"] {
        write(&log, body).await;
    }
    log.close().await;
    let path = segment_path(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(6).position(|w| w == b"second").unwrap();
    bytes[at + 2] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let (_log, opened, found) = open(options(dir.path()));
    assert_eq!(payloads(&found), ["first", "third"]);
    assert_eq!((opened.corrupt, opened.torn), (1, 0));
    let unreadable = read_record(
        dir.path(),
        Position {
            segment: 1,
            offset: (MAGIC.len() + HEADER + 5) as u64,
        },
    )
    .unwrap_err();
    assert_eq!(unreadable.kind(), std::io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn a_damaged_length_is_never_taken_for_a_tear_reading_resumes_at_the_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(options(dir.path()));
    for body in [&b"first"[..], b"second", b"third", b"fourth"] {
        write(&log, body).await;
    }
    log.close().await;
    let path = segment_path(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    // The second record's length now points far past the end of the file: without the
    // header's own checksum, this would look like a torn tail and cut "third" and "fourth".
    let second = MAGIC.len() + HEADER + 5;
    bytes[second + 3] = 0x7f;
    std::fs::write(&path, &bytes).unwrap();
    let len = bytes.len() as u64;

    let (_log, opened, found) = open(options(dir.path()));
    assert_eq!(payloads(&found), ["first", "third", "fourth"]);
    assert_eq!((opened.corrupt, opened.torn), (1, 0));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "nothing cut");
}

#[tokio::test]
async fn a_torn_end_of_a_segment_that_is_not_the_last_is_reported_as_damage_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.segment_bytes = 1; // one record per segment
    let (log, _, _) = open(opts.clone());
    for body in [&b"first"[..], b"second", b"third"] {
        write(&log, body).await;
    }
    log.close().await;
    assert_eq!(files(dir.path()).len(), 3);
    let path = segment_path(dir.path(), 2);
    let mut bytes = unsealed(dir.path(), 2);
    bytes.truncate(bytes.len() - 2);
    std::fs::write(&path, &bytes).unwrap();

    let (log, opened, found) = open(opts.clone());
    assert_eq!(payloads(&found), ["first", "third"]);
    assert_eq!((opened.corrupt, opened.torn), (1, 0));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        bytes.len() as u64,
        "not cut"
    );
    drop(log);

    // Only the seal lost: every record is there, but the end cannot be vouched for.
    let path = segment_path(dir.path(), 1);
    std::fs::write(&path, unsealed(dir.path(), 1)).unwrap();
    let (_log, opened, found) = open(opts);
    assert_eq!(payloads(&found), ["first", "third"]);
    assert_eq!((opened.corrupt, opened.torn), (2, 0));
}

#[tokio::test]
async fn a_deleted_segment_file_is_reused_and_its_old_records_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.segment_bytes = 1; // one record per segment
    let (log, _, _) = open(opts.clone());
    let old_payload = b"an old record, longer than what replaces it";
    let old = write(&log, old_payload).await;
    write(&log, b"kept").await;
    assert!(log.delete(old.segment));
    log.flushed().await;
    assert_eq!(
        files(dir.path()),
        [
            "segment-00000000000000000001.spare",
            "segment-00000000000000000002.log"
        ]
    );
    let new = write(&log, b"new").await;
    assert_eq!(new.segment, 3);
    assert_eq!(
        files(dir.path()),
        [
            "segment-00000000000000000002.log",
            "segment-00000000000000000003.log"
        ],
        "segment 3 took the spare file"
    );
    log.close().await;
    let end = (new.offset as usize) + HEADER + 3;
    assert_eq!(
        std::fs::read(segment_path(dir.path(), 3)).unwrap(),
        [
            &MAGIC[..],
            &header(3, 3, crc32fast::hash(b"new")),
            b"new",
            &seal(3)
        ]
        .concat(),
        "sealed, and what the file held past the seal cut off"
    );
    let (log, opened, found) = open(opts.clone());
    assert_eq!(payloads(&found), ["kept", "new"]);
    assert_eq!((opened.corrupt, opened.torn), (0, 0));
    drop(log);

    // A crash before the seal: what the file held as segment 1 follows the last record;
    // it is cut off as a torn tail, never read.
    let old_file = [
        &MAGIC[..],
        &header(1, old_payload.len() as u32, crc32fast::hash(old_payload)),
        old_payload,
    ]
    .concat();
    assert_eq!(old.offset as usize, MAGIC.len());
    let mut bytes = std::fs::read(segment_path(dir.path(), 3)).unwrap();
    bytes.truncate(end);
    bytes.extend_from_slice(&old_file[end..]);
    std::fs::write(segment_path(dir.path(), 3), &bytes).unwrap();
    let (_log, opened, found) = open(opts);
    assert_eq!(payloads(&found), ["kept", "new"]);
    assert_eq!((opened.corrupt, opened.torn), (0, 1));
}

#[tokio::test]
async fn a_first_format_segment_is_read_and_its_torn_tail_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for body in [&b"one"[..], b"two"] {
        bytes.extend_from_slice(&first_format_header(
            body.len() as u32,
            crc32fast::hash(body),
        ));
        bytes.extend_from_slice(body);
    }
    let sound = bytes.len() as u64;
    bytes.extend_from_slice(&[9, 0]);
    let path = segment_path(dir.path(), 4);
    std::fs::write(&path, &bytes).unwrap();

    let (log, opened, found) = open(options(dir.path()));
    assert_eq!(payloads(&found), ["one", "two"]);
    assert_eq!((opened.corrupt, opened.torn), (0, 1));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), sound, "truncated");
    let at = write(&log, b"three").await;
    assert_eq!(at.segment, 5);
    assert!(log.delete(4));
    log.flushed().await;
    assert_eq!(
        files(dir.path()),
        ["segment-00000000000000000005.log"],
        "a first-format file is not kept for reuse"
    );
    log.close().await;
    let (_log, opened, found) = open(options(dir.path()));
    assert_eq!(payloads(&found), ["three"]);
    assert_eq!((opened.corrupt, opened.torn), (0, 0));
}

#[tokio::test]
async fn data_is_refused_past_the_bound_bookkeeping_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_bytes = 100;
    let (log, _, _) = open(opts);
    // The first record into an empty log always fits, even past the bound.
    write(&log, &[1u8; 150]).await;
    let full = log
        .append(Record::new(b"", b"more"), Append::data(Done::Nothing))
        .unwrap_err();
    assert!(matches!(full, AppendError::Full(170)), "{full}");
    log.append(Record::new(b"", b"ack"), Append::bookkeeping(Done::Nothing))
        .expect("bookkeeping always fits");
    log.close().await;
    assert!(matches!(
        log.append(Record::new(b"", b"x"), Append::bookkeeping(Done::Nothing)),
        Err(AppendError::Closed)
    ));
}

#[tokio::test]
async fn closed_segments_are_deleted_by_the_writer_after_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.segment_bytes = 20;
    let (log, _, _) = open(opts);
    let a = write(&log, b"0123456789").await; // 22 bytes: the segment is full
    let b = write(&log, b"next").await;
    assert_eq!((a.segment, b.segment), (1, 2));
    assert_eq!(log.current(), 2);
    assert!(!log.delete(2), "the current segment is not deleted");
    assert!(log.delete(1));
    assert!(!log.delete(1), "asked once");
    assert!(
        !log.has_closed_segments(),
        "a segment being deleted is no longer listed"
    );
    log.flushed().await;
    assert_eq!(
        files(dir.path()),
        [
            "segment-00000000000000000001.spare",
            "segment-00000000000000000002.log"
        ]
    );
    assert_eq!(
        log.bytes(),
        (MAGIC.len() + HEADER + 4) as u64,
        "segment 2's file"
    );
    assert_eq!(log.segments().len(), 1);
    log.rotate();
    write(&log, b"third").await;
    assert_eq!(log.current(), 3);
}

#[tokio::test]
async fn a_segment_is_closed_by_age_and_records_remember_the_newest_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.rotate_after = Some(Duration::ZERO);
    let (log, _, _) = open(opts);
    let t = std::time::Instant::now();
    let (tx, rx) = oneshot::channel();
    log.append(
        Record::new(b"", b"a"),
        Append::data(Done::Channel(tx)).stamped(t),
    )
    .unwrap();
    let a = rx.await.unwrap().unwrap();
    let b = write(&log, b"b").await;
    assert_eq!(a.segment, 1);
    assert!(b.segment > 1, "the first segment was closed by age: {b:?}");
    let first = &log.segments()[0];
    assert_eq!(
        (first.number, first.newest, first.current),
        (1, Some(t), false)
    );
}

#[tokio::test]
async fn a_failed_write_refuses_its_records_and_the_log_goes_on_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("log");
    let mut opts = options(&folder);
    let errors = opts.metrics.write_errors.clone();
    opts.metrics = LogMetrics {
        write_errors: errors.clone(),
        ..LogMetrics::default()
    };
    let (log, _, _) = open(opts);
    // The folder disappears before the first segment file is created.
    std::fs::remove_dir(&folder).unwrap();
    let (tx, rx) = oneshot::channel();
    log.append(Record::new(b"", b"lost"), Append::data(Done::Channel(tx)))
        .unwrap();
    assert!(rx.await.unwrap().is_err(), "refused, not acknowledged");
    assert_eq!(errors.get(), 1);
    assert_eq!(log.current(), 2);
    std::fs::create_dir(&folder).unwrap();
    let at = write(&log, b"kept").await;
    assert_eq!(at.segment, 2);
    log.close().await;
    let (_, _, found) = open(options(&folder));
    assert_eq!(payloads(&found), ["kept"]);
}

#[tokio::test]
async fn with_fsync_records_complete_once_synced() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.fsync = true;
    let (log, _, _) = open(opts);
    write(&log, b"durable").await;
    log.append(
        Record::new(b"", b"lazy"),
        Append::bookkeeping(Done::Nothing),
    )
    .unwrap();
    log.flushed().await;
    log.close().await;
    let (_, _, found) = open(options(dir.path()));
    assert_eq!(payloads(&found), ["durable", "lazy"]);
}

#[tokio::test]
async fn files_of_the_previous_format_stop_the_open_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seg-00000000000000000001.log"), b"old").unwrap();
    let err = SegmentLog::open(options(dir.path()), |_, _, _| None)
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("older Weft") && message.contains("seg-00000000000000000001.log"),
        "{message}"
    );
}

#[test]
fn read_segment_returns_the_sound_records_with_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for body in [&b"one"[..], b"two"] {
        bytes.extend_from_slice(&first_format_header(
            body.len() as u32,
            crc32fast::hash(body),
        ));
        bytes.extend_from_slice(body);
    }
    std::fs::write(segment_path(dir.path(), 7), &bytes).unwrap();
    let records = read_segment(dir.path(), 7).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].0, 15);
    assert_eq!(&records[1].1[..], b"two");
}
