//! The durable window (see [`super::wal`]) on an injected clock and wall clock: a "crash" is
//! dropping the processor without its shutdown, and a restart opens a new one on the same
//! folder. No test sleeps for timing.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use weft_config::{ComponentId, ConfigPath, Diagnostics, Kind};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};

use super::config::TailSamplingConfig;
use super::tests::Sink;
use super::wal::{WalOptions, SEGMENT_BYTES};
use super::window::REPLAY_HOLD_MAX;
use super::*;
use crate::component::BuildContext;
use crate::telemetry::Telemetry;

const WAIT: Duration = Duration::from_secs(10);
const SECOND: u64 = 1_000_000_000;

const POLICIES: &str = "
decision_wait: 10s
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
";

fn config(yaml: &str) -> TailSamplingConfig {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
    let mut diags = Diagnostics::new();
    let cfg = weft_config::decode_component::<TailSamplingConfig>(
        &value,
        &ConfigPath::root().key("processors").key("tail_sampling"),
        &mut diags,
    );
    assert!(!diags.has_errors(), "{diags}");
    cfg.expect("decoded")
}

fn tid(n: u8) -> Vec<u8> {
    let mut id = vec![0u8; 16];
    id[0] = 0xcd;
    id[15] = n;
    id
}

/// A span of trace `t`, span `s` (root when `parent` is 0); ERROR when `error`.
fn span(t: u8, s: u8, parent: u8, error: bool) -> Span {
    let code = if error {
        status::StatusCode::Error
    } else {
        status::StatusCode::Ok
    };
    Span {
        trace_id: tid(t),
        span_id: vec![s; 8],
        parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
        name: format!("op-{s}"),
        start_time_unix_nano: SECOND,
        end_time_unix_nano: SECOND + 1_000_000,
        status: Some(Status {
            code: code as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> Traces {
    Traces::from(
        weft_proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )
}

fn logs(records: Vec<(Option<u8>, &str)>) -> Logs {
    Logs::from(weft_proto::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records
                    .into_iter()
                    .map(|(t, body)| LogRecord {
                        trace_id: t.map(tid).unwrap_or_default(),
                        body: Some(weft_proto::common::v1::AnyValue {
                            value: Some(weft_proto::common::v1::any_value::Value::StringValue(
                                body.to_string(),
                            )),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

impl Sink<Traces> {
    /// (trace, span) of every span received, with repeats.
    fn spans(&self) -> Vec<(u8, u8)> {
        self.got
            .lock()
            .iter()
            .flat_map(|t| t.request().into_owned().resource_spans)
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .map(|s| (s.trace_id[15], s.span_id[0]))
            .collect()
    }
}

impl Sink<Logs> {
    fn bodies(&self) -> Vec<String> {
        self.got
            .lock()
            .iter()
            .flat_map(|l| l.request().into_owned().resource_logs)
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
            .filter_map(|r| match r.body.as_ref()?.value.as_ref()? {
                weft_proto::common::v1::any_value::Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

/// One run of a durable processor on `dir`.
struct Run {
    core: Arc<TailSampling>,
    traces: Side<Traces>,
    logs: Side<Logs>,
    span_sink: Arc<Sink<Traces>>,
    log_sink: Arc<Sink<Logs>>,
    clock: Arc<Mutex<Instant>>,
    telemetry: Telemetry,
}

impl Run {
    /// Opens the processor (and its log) at `now` / wall clock `wall`, and replays.
    async fn start(dir: &Path, now: Instant, wall: u64) -> Run {
        Self::start_with(dir, now, wall, SEGMENT_BYTES, u64::MAX).await
    }

    async fn start_with(
        dir: &Path,
        now: Instant,
        wall: u64,
        segment_bytes: u64,
        max_bytes: u64,
    ) -> Run {
        Self::open(dir, now, wall, segment_bytes, max_bytes, POLICIES).await
    }

    async fn open(
        dir: &Path,
        now: Instant,
        wall: u64,
        segment_bytes: u64,
        max_bytes: u64,
        yaml: &str,
    ) -> Run {
        let telemetry = Telemetry::new();
        let ctx = BuildContext {
            id: ComponentId::new("tail_sampling", None),
            kind: Kind::Processor,
            telemetry: telemetry.clone(),
            health: Default::default(),
            shared: Default::default(),
        };
        let clock = Arc::new(Mutex::new(now));
        let mut opts = WalOptions::new(dir.to_path_buf(), false, max_bytes, WAIT);
        opts.segment_bytes = segment_bytes;
        opts.rotate_after = Duration::from_secs(3600);
        // The wall clock moves with the injected clock.
        let c = clock.clone();
        opts.wall =
            Arc::new(move || wall + c.lock().saturating_duration_since(now).as_nanos() as u64);
        let c = clock.clone();
        let core = Arc::new(
            TailSampling::with_wal(&ctx, config(yaml), Arc::new(move || *c.lock()), Some(opts))
                .expect("core"),
        );
        let span_sink = Arc::new(Sink::<Traces>::default());
        let log_sink = Arc::new(Sink::<Logs>::default());
        assert!(core.traces.next.set(span_sink.clone()).is_ok());
        assert!(core.logs.next.set(log_sink.clone()).is_ok());
        core.users.store(2, Ordering::SeqCst);
        core.replay().await;
        Run {
            traces: Side(core.clone(), PhantomData),
            logs: Side(core.clone(), PhantomData),
            core,
            span_sink,
            log_sink,
            clock,
            telemetry,
        }
    }

    async fn spans(&self, spans: Vec<Span>) {
        Consumer::<Traces>::consume(&self.traces, traces(spans))
            .await
            .expect("accepted");
    }

    async fn logs(&self, records: Vec<(Option<u8>, &str)>) {
        Consumer::<Logs>::consume(&self.logs, logs(records))
            .await
            .expect("accepted");
    }

    /// Moves the clock to `at` and ticks; then waits until what the tick recorded (its
    /// decisions) is written, so the next tick sees the segments as a later one would.
    async fn tick_at(&self, at: Instant) {
        *self.clock.lock() = at;
        self.core.tick().await;
        if let Some(d) = &self.core.durable {
            d.wal.flush().await;
        }
    }

    fn metric(&self, name: &str) -> u64 {
        self.telemetry
            .counter_value(name, &[("processor", "tail_sampling")])
    }

    /// A crash: no shutdown, no flush; the log stays as it is on disk.
    fn crash(self) {
        drop(self);
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn an_acknowledged_batch_is_on_disk_and_is_decided_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start(dir.path(), t0, 1000 * SECOND).await;
    run.spans(vec![span(1, 1, 0, true), span(2, 1, 0, false)])
        .await;
    run.logs(vec![(Some(1), "boom"), (Some(2), "fine")]).await;
    let on_disk: u64 = segments(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        on_disk > 0,
        "acknowledged means written: the log holds the batches"
    );
    assert!(run.span_sink.spans().is_empty(), "still waiting");
    run.crash();

    // Restart 2 s later: the traces have waited 2 of their 10 s.
    let t1 = t0 + Duration::from_secs(100);
    let run = Run::start(dir.path(), t1, 1002 * SECOND).await;
    assert_eq!(run.core.window().trace_count(), 2, "both traces are back");
    assert_eq!(
        run.metric("weft_processor_tail_sampling_wal_replayed_records"),
        2
    );
    run.tick_at(t1 + WAIT - Duration::from_secs(2)).await;
    assert!(
        run.span_sink.spans().is_empty(),
        "held back: nothing has arrived since the restart"
    );
    // Nothing comes: they are decided at the latest `decision_wait` + the hold after it.
    run.tick_at(t1 + WAIT + REPLAY_HOLD_MAX - Duration::from_millis(1))
        .await;
    assert!(run.span_sink.spans().is_empty());
    run.tick_at(t1 + WAIT + REPLAY_HOLD_MAX).await;
    assert_eq!(
        run.span_sink.spans(),
        [(1, 1)],
        "the error trace is kept, the other dropped"
    );
    assert_eq!(run.log_sink.bodies(), ["boom"]);
}

#[tokio::test]
async fn replayed_traces_wait_for_data_to_flow_again() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start(dir.path(), t0, 1000 * SECOND).await;
    run.spans(vec![span(1, 1, 0, false)]).await;
    *run.clock.lock() = t0 + Duration::from_secs(6);
    run.spans(vec![span(2, 1, 0, true)]).await;
    run.crash();

    // Down for 8 s (wall clock): trace 1 waited 14 s (overdue), trace 2 waited 8 s.
    let t1 = t0 + Duration::from_secs(500);
    let run = Run::start(dir.path(), t1, 1014 * SECOND).await;
    run.tick_at(t1).await;
    run.tick_at(t1 + Duration::from_secs(2)).await;
    assert!(
        run.span_sink.spans().is_empty(),
        "overdue or not, replayed traces wait for what the crash held back"
    );
    // 3 s after the restart the senders' retries come in: trace 1's error span, and a new
    // trace 3.
    let flows = t1 + Duration::from_secs(3);
    *run.clock.lock() = flows;
    run.spans(vec![span(1, 2, 1, true), span(3, 1, 0, false)])
        .await;
    run.tick_at(flows + WAIT - Duration::from_millis(1)).await;
    assert!(run.span_sink.spans().is_empty(), "decision_wait after it");
    run.tick_at(flows + WAIT).await;
    assert_eq!(
        run.span_sink.spans(),
        [(1, 1), (1, 2), (2, 1)],
        "trace 1 kept whole for the error that came after the restart; 3 dropped"
    );
}

#[tokio::test]
async fn after_a_restart_a_root_is_waited_for_as_before_and_one_replayed_does_not_cut_the_hold() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let yaml = format!("{POLICIES}decision_wait_after_root_received: 1s\n");
    let open = |at: Instant, wall: u64| {
        let (dir, yaml) = (dir.path().to_path_buf(), yaml.clone());
        async move { Run::open(&dir, at, wall, SEGMENT_BYTES, u64::MAX, &yaml).await }
    };
    let run = open(t0, 1000 * SECOND).await;
    // Trace 1: a child only. Trace 2: its root, and a child with the error still to come.
    run.spans(vec![span(1, 2, 1, false), span(2, 1, 0, false)])
        .await;
    run.crash();

    let t1 = t0 + Duration::from_secs(100);
    let run = open(t1, 1003 * SECOND).await;
    // Data flows again at t1 + 1 s: trace 1's root (an error), trace 2's error span.
    *run.clock.lock() = t1 + Duration::from_secs(1);
    run.spans(vec![span(1, 1, 0, true), span(2, 2, 1, true)])
        .await;
    run.tick_at(t1 + Duration::from_secs(2) - Duration::from_millis(1))
        .await;
    assert!(run.span_sink.spans().is_empty());
    run.tick_at(t1 + Duration::from_secs(2)).await;
    assert_eq!(
        run.span_sink.spans(),
        [(1, 2), (1, 1)],
        "trace 1: decided 1 s after its root, which arrived after the restart"
    );
    run.tick_at(t1 + Duration::from_secs(1) + WAIT - Duration::from_millis(1))
        .await;
    assert_eq!(
        run.span_sink.spans().len(),
        2,
        "trace 2's root arrived before the restart: it waits for the hold"
    );
    run.tick_at(t1 + Duration::from_secs(1) + WAIT).await;
    assert_eq!(
        run.span_sink.spans(),
        [(1, 2), (1, 1), (2, 1), (2, 2)],
        "trace 2 whole, with its error that came after the restart"
    );
}

#[tokio::test]
async fn replay_skips_what_was_decided_and_late_items_follow_the_old_decision() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start(dir.path(), t0, 1000 * SECOND).await;
    run.spans(vec![span(1, 1, 0, true), span(2, 1, 0, false)])
        .await;
    run.logs(vec![(None, "no trace")]).await;
    run.tick_at(t0 + WAIT).await;
    assert_eq!(run.span_sink.spans(), [(1, 1)]);
    assert_eq!(run.log_sink.bodies(), ["no trace"]);
    // Trace 3 arrives after the decisions; a second tick writes them to the log.
    run.spans(vec![span(3, 1, 0, true)]).await;
    run.tick_at(t0 + WAIT + Duration::from_millis(100)).await;
    run.crash();

    let t1 = t0 + Duration::from_secs(100);
    let run = Run::start(dir.path(), t1, 1011 * SECOND).await;
    assert!(
        run.span_sink.spans().is_empty(),
        "decided traces are not sent again: {:?}",
        run.span_sink.spans()
    );
    assert!(
        run.log_sink.bodies().is_empty(),
        "a log without a trace, passed before the checkpoint, is not sent again"
    );
    assert_eq!(run.core.window().trace_count(), 1, "only trace 3 waits");
    // Late items of the traces decided before the crash follow their decision.
    run.spans(vec![span(1, 2, 1, false), span(2, 2, 1, true)])
        .await;
    run.logs(vec![
        (Some(1), "late for kept"),
        (Some(2), "late for dropped"),
    ])
    .await;
    assert_eq!(run.span_sink.spans(), [(1, 2)]);
    assert_eq!(run.log_sink.bodies(), ["late for kept"]);
    run.tick_at(t1 + WAIT).await;
    assert_eq!(run.span_sink.spans(), [(1, 2), (3, 1)]);
}

#[tokio::test]
async fn the_late_log_of_a_kept_trace_gets_its_verdict_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start(dir.path(), t0, 1000 * SECOND).await;
    run.spans(vec![span(1, 1, 0, true)]).await;
    run.tick_at(t0 + WAIT).await;
    run.tick_at(t0 + WAIT + Duration::from_millis(100)).await;
    run.crash();

    let run = Run::start(dir.path(), t0 + Duration::from_secs(60), 1020 * SECOND).await;
    run.logs(vec![(Some(1), "late")]).await;
    let got = run.log_sink.got.lock();
    let first = got[0].request();
    let record = &first.resource_logs[0].scope_logs[0].log_records[0];
    let policy = record
        .attributes
        .iter()
        .find(|kv| kv.key == "weft.policy")
        .and_then(|kv| kv.value.clone());
    assert_eq!(
        policy.and_then(|v| v.value),
        Some(weft_proto::common::v1::any_value::Value::StringValue(
            "errors".into()
        )),
        "enriched with the decision made before the crash"
    );
}

#[tokio::test]
async fn a_kept_trace_refused_downstream_is_delivered_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start(dir.path(), t0, 1000 * SECOND).await;
    run.spans(vec![span(1, 1, 0, true)]).await;
    *run.span_sink.refuse.lock() = true;
    run.tick_at(t0 + WAIT).await;
    run.tick_at(t0 + WAIT + Duration::from_millis(100)).await;
    assert!(run.span_sink.spans().is_empty(), "waiting in the outbox");
    run.crash();

    let t1 = t0 + Duration::from_secs(60);
    let run = Run::start(dir.path(), t1, 1020 * SECOND).await;
    run.tick_at(t1 + WAIT + REPLAY_HOLD_MAX).await;
    assert_eq!(
        run.span_sink.spans(),
        [(1, 1)],
        "its decision was not recorded: decided again and delivered"
    );
}

#[tokio::test]
async fn a_late_span_parked_in_the_outbox_is_delivered_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    // Tiny segments: every write starts a new one.
    let run = Run::start_with(dir.path(), t0, 1000 * SECOND, 1, u64::MAX).await;
    run.spans(vec![span(1, 1, 0, true)]).await;
    run.tick_at(t0 + WAIT).await;
    assert_eq!(run.span_sink.spans(), [(1, 1)]);
    let trace_1 = segments(dir.path());
    assert_eq!(trace_1.len(), 2, "its data, then its decision");
    // Another trace closes the segment holding trace 1's decision; then trace 1's data and
    // its decision are deleted.
    run.spans(vec![span(5, 1, 0, false)]).await;
    for ms in [100, 200] {
        run.tick_at(t0 + WAIT + Duration::from_millis(ms)).await;
    }
    let left = segments(dir.path());
    assert!(trace_1.iter().all(|p| !left.contains(p)), "{left:?}");

    // A late span of trace 1 is acknowledged although the next stage refuses it: it waits
    // in the outbox, and in the log.
    *run.span_sink.refuse.lock() = true;
    run.spans(vec![span(1, 2, 1, false)]).await;
    assert_eq!(run.span_sink.spans(), [(1, 1)]);
    run.crash();

    // Without its decision the late span alone would be dropped (it is not an error span);
    // the outbox record delivers it.
    let run = Run::start(dir.path(), t0 + Duration::from_secs(60), 1020 * SECOND).await;
    assert_eq!(run.span_sink.spans(), [(1, 2)]);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_a_corrupt_record_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start(dir.path(), t0, 1000 * SECOND).await;
    run.spans(vec![span(1, 1, 0, true)]).await;
    run.spans(vec![span(2, 1, 0, true)]).await;
    run.spans(vec![span(3, 1, 0, true)]).await;
    run.crash();

    let path = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // The log's writer sealed the segment when the processor was dropped; a crash leaves no
    // seal.
    let n: u64 = path.file_stem().unwrap().to_str().unwrap()["segment-".len()..]
        .parse()
        .unwrap();
    let seal = crate::storage::seal(n);
    assert!(bytes.ends_with(&seal));
    bytes.truncate(bytes.len() - seal.len());
    // Flip a byte inside the second record's payload, and tear a fourth record half-written.
    // The file starts with 8 bytes of magic; a record with a 12-byte header.
    let first_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    bytes[8 + 12 + first_len + 12 + 20] ^= 0xff;
    let torn_at = bytes.len();
    bytes.extend_from_slice(&500u32.to_le_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    std::fs::write(&path, &bytes).unwrap();

    let t1 = t0 + Duration::from_secs(100);
    let run = Run::start(dir.path(), t1, 1000 * SECOND).await;
    assert_eq!(
        run.metric("weft_processor_tail_sampling_wal_corrupt_records"),
        1
    );
    assert_eq!(run.metric("weft_processor_tail_sampling_wal_torn_tails"), 1);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        (torn_at + seal.len()) as u64,
        "the torn record is cut off: the segment is sealed where its records end"
    );
    run.tick_at(t1 + WAIT).await;
    assert_eq!(run.span_sink.spans(), [(1, 1), (3, 1)]);
    run.crash();
    // The cut file reads cleanly the next time.
    let run = Run::start(dir.path(), t1, 1000 * SECOND).await;
    assert_eq!(run.metric("weft_processor_tail_sampling_wal_torn_tails"), 0);
}

#[tokio::test]
async fn a_segment_is_deleted_once_every_trace_with_data_in_it_is_decided() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    // Tiny segments: every write starts a new one.
    let run = Run::start_with(dir.path(), t0, 1000 * SECOND, 1, u64::MAX).await;
    run.spans(vec![span(1, 1, 0, true)]).await;
    *run.clock.lock() = t0 + Duration::from_secs(5);
    run.spans(vec![span(2, 1, 0, true)]).await;
    *run.clock.lock() = t0 + Duration::from_secs(6);
    // Trace 2 again, in a third segment.
    run.spans(vec![span(2, 2, 1, false)]).await;
    let first = segments(dir.path());
    assert_eq!(first.len(), 3, "{first:?}");

    // Trace 1 is decided; trace 2 still waits.
    run.tick_at(t0 + WAIT).await;
    run.tick_at(t0 + WAIT + Duration::from_millis(100)).await;
    run.tick_at(t0 + WAIT + Duration::from_millis(200)).await;
    let now = segments(dir.path());
    assert!(!now.contains(&first[0]), "trace 1's segment is deleted");
    assert!(
        now.contains(&first[1]) && now.contains(&first[2]),
        "trace 2's are kept while it waits"
    );
    assert_eq!(run.span_sink.spans(), [(1, 1)]);

    // Trace 2 is decided, but the next stage refuses it: nothing more is deleted.
    *run.span_sink.refuse.lock() = true;
    for ms in [0, 100, 200, 300] {
        run.tick_at(t0 + Duration::from_secs(15) + Duration::from_millis(ms))
            .await;
    }
    let now = segments(dir.path());
    assert!(
        now.contains(&first[1]) && now.contains(&first[2]),
        "kept data not yet accepted downstream keeps its segments"
    );
    *run.span_sink.refuse.lock() = false;
    for ms in [400, 500, 600] {
        run.tick_at(t0 + Duration::from_secs(15) + Duration::from_millis(ms))
            .await;
    }
    let now = segments(dir.path());
    assert!(
        !now.contains(&first[1]) && !now.contains(&first[2]),
        "accepted: deleted ({now:?})"
    );
    let bytes = run.core.durable.as_ref().unwrap().wal.bytes();
    assert_eq!(
        bytes,
        now.iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum::<u64>(),
        "the byte count follows the files"
    );
}

#[tokio::test]
async fn a_full_log_refuses_retryably_and_a_clean_shutdown_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start_with(dir.path(), t0, 1000 * SECOND, SEGMENT_BYTES, 600).await;
    run.spans(vec![span(1, 1, 0, true)]).await;
    let big: Vec<Span> = (2..40).map(|n| span(n, 1, 0, true)).collect();
    let err = Consumer::<Traces>::consume(&run.traces, traces(big))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("full"), "{err}");

    // Decided when due (a durable window's shutdown keeps what is still waiting: see the
    // tests below), then shut down.
    run.tick_at(t0 + WAIT).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    run.traces.shutdown(deadline).await.unwrap();
    run.logs.shutdown(deadline).await.unwrap();
    assert_eq!(run.span_sink.spans(), [(1, 1)], "decided when due");
    assert!(
        segments(dir.path()).is_empty(),
        "everything was delivered: nothing left to replay"
    );
}

impl Run {
    /// A clean shutdown, as the service does it (both pipelines).
    async fn shutdown(self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        self.traces.shutdown(deadline).await.expect("traces side");
        self.logs.shutdown(deadline).await.expect("logs side");
    }
}

#[tokio::test]
async fn a_shutdown_keeps_waiting_traces_and_the_next_start_decides_them_with_what_came_after() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start(dir.path(), t0, 1000 * SECOND).await;
    run.spans(vec![span(1, 1, 0, false)]).await;
    run.logs(vec![(Some(1), "before the restart")]).await;
    let sinks = (run.span_sink.clone(), run.log_sink.clone());
    run.shutdown().await;
    assert!(
        sinks.0.spans().is_empty() && sinks.1.bodies().is_empty(),
        "not decided at shutdown (it would have been dropped: no error yet)"
    );
    assert!(!segments(dir.path()).is_empty(), "kept in the log");

    // Back 3 s later (wall clock). Trace 1's error span arrives now.
    let t1 = t0 + Duration::from_secs(100);
    let run = Run::start(dir.path(), t1, 1003 * SECOND).await;
    assert_eq!(run.core.window().trace_count(), 1, "replayed");
    run.spans(vec![span(1, 2, 1, true)]).await;
    run.tick_at(t1 + WAIT - Duration::from_millis(1)).await;
    assert!(
        run.span_sink.spans().is_empty(),
        "not due yet: decision_wait after data flowed again"
    );
    run.tick_at(t1 + WAIT).await;
    assert_eq!(
        run.span_sink.spans(),
        [(1, 1), (1, 2)],
        "decided once, on all its spans: kept for the error that came after the restart"
    );
    assert_eq!(run.log_sink.bodies(), ["before the restart"]);

    // Nothing is waiting any more: this shutdown empties the log, and a start after it
    // sends nothing again.
    let sinks = (run.span_sink.clone(), run.log_sink.clone());
    run.shutdown().await;
    assert_eq!(sinks.0.spans().len(), 2);
    assert!(
        segments(dir.path()).is_empty(),
        "{:?}",
        segments(dir.path())
    );
    let run = Run::start(dir.path(), t1 + Duration::from_secs(60), 1100 * SECOND).await;
    run.tick_at(t1 + Duration::from_secs(90)).await;
    assert!(run.span_sink.spans().is_empty() && run.log_sink.bodies().is_empty());
}

#[tokio::test]
async fn after_a_shutdown_nothing_decided_is_sent_again_late_items_included() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let run = Run::start(dir.path(), t0, 1000 * SECOND).await;
    run.spans(vec![span(1, 1, 0, true), span(2, 1, 0, false)])
        .await;
    run.tick_at(t0 + WAIT).await;
    assert_eq!(run.span_sink.spans(), [(1, 1)]);
    // Late items of decided traces follow their decision at once; a log without a trace
    // passes; trace 3 arrives and waits.
    *run.clock.lock() = t0 + WAIT + Duration::from_secs(1);
    run.spans(vec![
        span(1, 2, 1, false),
        span(2, 2, 1, true),
        span(3, 1, 0, true),
    ])
    .await;
    run.logs(vec![(Some(1), "late, kept"), (None, "no trace")])
        .await;
    assert_eq!(run.span_sink.spans(), [(1, 1), (1, 2)]);
    let mut bodies = run.log_sink.bodies();
    bodies.sort();
    assert_eq!(bodies, ["late, kept", "no trace"]);
    run.shutdown().await;

    let t1 = t0 + Duration::from_secs(200);
    let run = Run::start(dir.path(), t1, 1012 * SECOND).await;
    assert!(
        run.span_sink.spans().is_empty() && run.log_sink.bodies().is_empty(),
        "nothing decided is sent again: {:?} {:?}",
        run.span_sink.spans(),
        run.log_sink.bodies()
    );
    assert_eq!(run.core.window().trace_count(), 1, "only trace 3 waits");
    let replayed_spans = run.telemetry.counter_value(
        "weft_processor_tail_sampling_wal_replayed_items",
        &[("processor", "tail_sampling"), ("item", "spans")],
    );
    assert_eq!(replayed_spans, 1, "trace 3's span, nothing else");
    run.tick_at(t1 + WAIT + REPLAY_HOLD_MAX).await;
    assert_eq!(
        run.span_sink.spans(),
        [(3, 1)],
        "decided once the hold is over"
    );
}

#[tokio::test]
async fn drop_pending_traces_on_shutdown_still_drops_them_from_a_durable_window() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let yaml = format!("{POLICIES}drop_pending_traces_on_shutdown: true\n");
    let run = Run::open(
        dir.path(),
        t0,
        1000 * SECOND,
        SEGMENT_BYTES,
        u64::MAX,
        &yaml,
    )
    .await;
    run.spans(vec![span(1, 1, 0, true)]).await;
    let sink = run.span_sink.clone();
    run.shutdown().await;
    assert!(sink.spans().is_empty(), "dropped, as configured");
    assert!(
        segments(dir.path()).is_empty(),
        "and not kept for the next start"
    );
}

#[test]
fn storage_must_be_an_extension_id_and_held_data_around_a_durable_window_is_warned_about() {
    let value: serde_yaml::Value = serde_yaml::from_str("storage: \"not an id!\"").unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("processors").key("tail_sampling");
    weft_config::decode_component::<TailSamplingConfig>(&value, &path, &mut diags);
    assert!(
        diags
            .to_string()
            .contains("processors::tail_sampling::storage"),
        "{diags}"
    );

    let text = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  batch:
  tail_sampling:
    storage: file_storage
    policies:
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
exporters:
  otlp:
    endpoint: 127.0.0.1:4319
  otlp/disk:
    endpoint: 127.0.0.1:4319
    sending_queue: {storage: file_storage}
extensions:
  file_storage:
    directory: /tmp/weft-durable-window-test
service:
  extensions: [file_storage]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch, tail_sampling]
      exporters: [otlp, otlp/disk]
"#;
    let registry = crate::registry::Registry::builtin();
    let loaded = crate::service::load_config(text, &|_: &str| None::<String>, &registry);
    assert!(loaded.is_valid(), "{}", loaded.diagnostics);
    let warnings: Vec<String> = loaded
        .diagnostics
        .warnings()
        .map(|w| w.to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("service::pipelines::traces::processors[0]")
                && w.contains("comes before the durable")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("service::pipelines::traces::exporters[0]")
                && w.contains("queues in memory")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("exporters[1]")),
        "a persistent queue is fine: {warnings:?}"
    );

    // The service builds it with the extension's folder.
    let dir = tempfile::tempdir().unwrap();
    let built = text.replace(
        "/tmp/weft-durable-window-test",
        dir.path().to_str().unwrap(),
    );
    let loaded = crate::service::load_config(&built, &|_: &str| None::<String>, &registry);
    let service = crate::service::Service::build(&loaded, &registry).expect("builds");
    drop(service);
    assert!(dir.path().join("tail_sampling-window").is_dir());

    // The reference is checked like an exporter's.
    let undefined = text.replace(
        "storage: file_storage\n    policies",
        "storage: file_storage/other\n    policies",
    );
    let loaded = crate::service::load_config(&undefined, &|_: &str| None::<String>, &registry);
    assert!(
        loaded.diagnostics.to_string().contains(
            "processors::tail_sampling::storage: references extension \"file_storage/other\""
        ),
        "{}",
        loaded.diagnostics
    );
}
