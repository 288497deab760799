//! The receiver on real files in a temporary folder, feeding a test consumer: rotation,
//! truncation, deletion, partial lines, over-long lines, backpressure, restarts.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use weft_config::{ConfigPath, Diagnostics, Kind};
use weft_proto::common::v1::any_value::Value as Any;

use super::*;
use crate::component::SharedInstances;
use crate::pipeline::{ConsumeError, Consumers, Payload};

/// Collects every body it takes; refuses while `refusing` is above 0 (counting down).
#[derive(Default)]
struct Sink {
    bodies: Mutex<Vec<String>>,
    refusing: Mutex<u32>,
}

#[async_trait]
impl Consumer<Logs> for Sink {
    async fn consume(&self, data: Logs) -> Result<(), ConsumeError> {
        {
            let mut r = self.refusing.lock();
            if *r > 0 {
                *r -= 1;
                return Err(ConsumeError::unavailable("full", Duration::from_millis(10)));
            }
        }
        let request = data.into_request();
        let mut bodies = self.bodies.lock();
        for r in request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
        {
            let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                Some(Any::StringValue(s)) => s.clone(),
                Some(Any::BytesValue(b)) => format!("bytes:{}", b.len()),
                other => format!("{other:?}"),
            };
            bodies.push(body);
        }
        Ok(())
    }
}

impl Sink {
    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().clone()
    }
}

fn config(yaml: &str) -> Config {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let c =
        weft_config::decode_component::<Config>(&value, &ConfigPath::root(), &mut diags).unwrap();
    assert!(!diags.has_errors(), "{diags}");
    c
}

/// A running receiver over `dir` with `extra` config lines.
async fn start(
    dir: &Path,
    extra: &str,
    sink: Arc<Sink>,
    shared: SharedInstances,
) -> FileLogReceiver {
    let mut ctx = BuildContext::standalone("filelog", Kind::Receiver);
    ctx.shared = shared;
    start_in(ctx, dir, extra, sink).await
}

/// [`start`] with the receiver's own context (whose telemetry a test reads).
async fn start_in(ctx: BuildContext, dir: &Path, extra: &str, sink: Arc<Sink>) -> FileLogReceiver {
    let cfg = config(&format!(
        "include: ['{}/*.log']\nstart_at: beginning\npoll_interval: 20ms\n{extra}",
        dir.display()
    ));
    let r = FileLogReceiver::new(ctx, &cfg, Consumers::default().with::<Logs>(sink)).unwrap();
    r.start().await.unwrap();
    r
}

async fn wait_for(sink: &Sink, n: usize) -> Vec<String> {
    for _ in 0..500 {
        if sink.bodies().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sink.bodies()
}

/// Lets a few polls pass (for checks that nothing more arrives).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

async fn stop(r: &FileLogReceiver) {
    r.shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_are_read_and_a_partial_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "one\ntwo\nthr");
    let sink = Arc::new(Sink::default());
    let r = start(dir.path(), "", sink.clone(), SharedInstances::default()).await;
    assert_eq!(wait_for(&sink, 2).await, ["one", "two"]);
    settle().await;
    assert_eq!(sink.bodies().len(), 2, "the unfinished line is held");
    append(&log, "ee\nfour\n");
    assert_eq!(wait_for(&sink, 4).await, ["one", "two", "three", "four"]);
    stop(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_rename_and_create_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "a1\n");
    let sink = Arc::new(Sink::default());
    let r = start(dir.path(), "", sink.clone(), SharedInstances::default()).await;
    wait_for(&sink, 1).await;
    // The writer adds to the old file, which is then renamed out of the glob; the new file
    // starts at once. The old file's tail is read through the handle still open.
    append(&log, "a2\na3\n");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "b1\nb2\n");
    let mut got = wait_for(&sink, 5).await;
    settle().await;
    got.sort();
    assert_eq!(got, ["a1", "a2", "a3", "b1", "b2"]);
    assert_eq!(sink.bodies().len(), 5);
    stop(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_and_deletion_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let gone = dir.path().join("gone.log");
    append(&log, "old line one\nold line two\n");
    append(&gone, "last words\n");
    let sink = Arc::new(Sink::default());
    let ctx = BuildContext::standalone("filelog", Kind::Receiver);
    let telemetry = ctx.telemetry.clone();
    let r = start_in(ctx, dir.path(), "", sink.clone()).await;
    wait_for(&sink, 3).await;
    // copytruncate: the content is copied elsewhere and the file cut to zero, then written anew.
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    settle().await;
    append(&log, "new line after the truncation\n");
    // A file deleted while open is finished: what it held was already read.
    std::fs::remove_file(&gone).unwrap();
    let got = wait_for(&sink, 4).await;
    settle().await;
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(
        got_sorted,
        [
            "last words",
            "new line after the truncation",
            "old line one",
            "old line two"
        ],
        "{got:?}"
    );
    // Polls saw the file empty before its next line: still the same file, cut in place,
    // counted once (not let go as a file no longer there and found anew).
    assert_eq!(
        telemetry.counter_value(
            "weft_receiver_filelog_files_truncated",
            &[("receiver", "filelog")]
        ),
        1
    );
    stop(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_lines_are_cut_and_invalid_utf8_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let long = "x".repeat(5000);
    append(&log, &format!("{long}\nshort\n"));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"bad \xff byte\n").unwrap();
    let sink = Arc::new(Sink::default());
    let shared = SharedInstances::default();
    let cfg_extra = "max_log_size: 1000";
    let r = start(dir.path(), cfg_extra, sink.clone(), shared).await;
    let got = wait_for(&sink, 3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], "x".repeat(1000));
    assert_eq!(got[1], "short");
    assert_eq!(got[2], "bad \u{fffd} byte");
    stop(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_pauses_reading_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines: Vec<String> = (0..3000).map(|i| format!("line {i}")).collect();
    append(&log, &(lines.join("\n") + "\n"));
    let sink = Arc::new(Sink::default());
    *sink.refusing.lock() = 20;
    let r = start(dir.path(), "", sink.clone(), SharedInstances::default()).await;
    let got = wait_for(&sink, 3000).await;
    assert_eq!(got, lines, "every line once, in order, after the refusals");
    assert_eq!(*sink.refusing.lock(), 0);
    stop(&r).await;
}

/// A `file_storage` extension built into `shared`, keeping its folder in `dir`.
fn storage(dir: &Path, shared: &SharedInstances) {
    let mut ctx = BuildContext::standalone("file_storage", Kind::Extension);
    ctx.shared = shared.clone();
    let factory = crate::extensions::file_storage::factory();
    let value: serde_yaml::Value =
        serde_yaml::from_str(&format!("directory: {}", dir.display())).unwrap();
    let cfg = factory
        .info
        .decode(&value, &ConfigPath::root(), &mut Diagnostics::new())
        .unwrap();
    factory.build(ctx, &cfg).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_at_the_committed_offset() {
    let logs = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = logs.path().join("app.log");
    append(&log, "first\nsecond\n");
    let shared = SharedInstances::default();
    storage(state.path(), &shared);
    let sink = Arc::new(Sink::default());
    let r = start(
        logs.path(),
        "storage: file_storage",
        sink.clone(),
        shared.clone(),
    )
    .await;
    wait_for(&sink, 2).await;
    stop(&r).await;
    append(&log, "third\n");
    // A new instance (the same extension folder) reads only what came after the commit;
    // start_at: beginning does not apply to a file with a committed offset.
    let sink2 = Arc::new(Sink::default());
    let r2 = start(logs.path(), "storage: file_storage", sink2.clone(), shared).await;
    assert_eq!(wait_for(&sink2, 1).await, ["third"]);
    settle().await;
    assert_eq!(sink2.bodies(), ["third"]);
    stop(&r2).await;
    let offsets =
        std::fs::read_to_string(state.path().join("filelog-receiver/offsets.json")).unwrap();
    assert!(offsets.contains("\"offset\":19"), "{offsets}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_lines_are_not_committed_at_shutdown() {
    let logs = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = logs.path().join("app.log");
    append(&log, "kept\n");
    let shared = SharedInstances::default();
    storage(state.path(), &shared);
    let sink = Arc::new(Sink::default());
    let r = start(
        logs.path(),
        "storage: file_storage",
        sink.clone(),
        shared.clone(),
    )
    .await;
    wait_for(&sink, 1).await;
    *sink.refusing.lock() = u32::MAX;
    append(&log, "refused\n");
    settle().await;
    stop(&r).await;
    assert_eq!(sink.bodies(), ["kept"]);
    let sink2 = Arc::new(Sink::default());
    let r2 = start(logs.path(), "storage: file_storage", sink2.clone(), shared).await;
    assert_eq!(
        wait_for(&sink2, 1).await,
        ["refused"],
        "read again after the restart"
    );
    stop(&r2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_are_skipped_and_counted_while_others_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("dir.log")).unwrap();
    std::fs::write(d.join("binary.log"), b"\x7fELF\x02\x01\x01\x00\x00\x00\n").unwrap();
    std::os::unix::fs::symlink(d.join("loop2.log"), d.join("loop1.log")).unwrap();
    std::os::unix::fs::symlink(d.join("loop1.log"), d.join("loop2.log")).unwrap();
    append(&d.join("good.log"), "fine\n");
    let sink = Arc::new(Sink::default());
    let ctx = BuildContext::standalone("filelog", Kind::Receiver);
    let telemetry = ctx.telemetry.clone();
    let r = start_in(ctx, d, "", sink.clone()).await;
    assert_eq!(wait_for(&sink, 1).await, ["fine"]);
    settle().await;
    let skipped = |reason| {
        telemetry.counter_value(
            "weft_receiver_filelog_files_skipped",
            &[("receiver", "filelog"), ("reason", reason)],
        )
    };
    assert_eq!(skipped("directory"), 1, "logged and counted once");
    assert_eq!(skipped("binary"), 1);
    assert_eq!(skipped("symlink_loop"), 2);
    assert_eq!(sink.bodies(), ["fine"]);
    stop(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_join_partials_and_parse_json() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir
        .path()
        .join("shop_goshop-1_0a1b2c3d-0000-4000-8000-000000000001/checkout");
    std::fs::create_dir_all(&pod).unwrap();
    let log = pod.join("0.log");
    append(
        &log,
        concat!(
            "2025-12-03T10:28:50.1Z stdout P {\"level\":\"error\",\"msg\":\"pay",
            "\n2025-12-03T10:28:50.1Z stdout F ment declined\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\"}\n",
            "2025-12-03T10:28:50.2Z stdout F not json at all\n",
        ),
    );
    let cfg = config(&format!(
        r#"
include: ['{}/*/*/*.log']
start_at: beginning
poll_interval: 20ms
include_file_path: true
operators:
  - type: container
  - type: json_parser
    severity: {{parse_from: attributes.level}}
    trace: {{trace_id: {{parse_from: attributes.trace_id}}, span_id: {{parse_from: attributes.span_id}}}}
  - {{type: move, from: attributes.msg, to: body, on_error: send_quiet}}
"#,
        dir.path().display()
    ));
    let collected: Arc<Mutex<Vec<weft_proto::logs::v1::ResourceLogs>>> = Arc::default();
    struct Raw(Arc<Mutex<Vec<weft_proto::logs::v1::ResourceLogs>>>);
    #[async_trait]
    impl Consumer<Logs> for Raw {
        async fn consume(&self, data: Logs) -> Result<(), ConsumeError> {
            self.0.lock().extend(data.into_request().resource_logs);
            Ok(())
        }
    }
    let r = FileLogReceiver::new(
        BuildContext::standalone("filelog", Kind::Receiver),
        &cfg,
        Consumers::default().with::<Logs>(Arc::new(Raw(collected.clone()))),
    )
    .unwrap();
    r.start().await.unwrap();
    for _ in 0..500 {
        if collected
            .lock()
            .iter()
            .map(|r| r.scope_logs[0].log_records.len())
            .sum::<usize>()
            >= 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop(&r).await;
    let got = collected.lock().clone();
    let records: Vec<_> = got
        .iter()
        .flat_map(|r| r.scope_logs[0].log_records.clone())
        .collect();
    assert_eq!(records.len(), 2, "{got:?}");
    let first = &records[0];
    assert_eq!(
        first.body.as_ref().unwrap().value,
        Some(Any::StringValue("payment declined".into()))
    );
    assert_eq!(first.severity_number, 17);
    assert_eq!(
        hex::encode(&first.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(first.time_unix_nano, 1_764_757_730_100_000_000);
    let resource = &got[0].resource.as_ref().unwrap().attributes;
    assert!(resource.iter().any(|kv| kv.key == "k8s.pod.name"
        && kv.value.as_ref().unwrap().value == Some(Any::StringValue("goshop-1".into()))));
    let second = &records[1];
    assert_eq!(
        second.body.as_ref().unwrap().value,
        Some(Any::StringValue("not json at all".into()))
    );
    assert!(second
        .attributes
        .iter()
        .any(|kv| kv.key == "weft.parse_error"));
    assert!(
        second.trace_id.is_empty(),
        "no trace: it passes as an orphan log"
    );
}

/// The README's presets (`<!-- preset:NAME -->` before a YAML block), each run on a real line
/// of its logger as the kubelet stores it.
#[test]
fn the_readme_presets_parse_their_loggers_lines() {
    let readme = include_str!("../../../../README.md");
    let preset = |name: &str| -> Config {
        let marker = format!("<!-- preset:{name} -->");
        let at = readme
            .find(&marker)
            .unwrap_or_else(|| panic!("no {marker} in the README"));
        let block = &readme[at..];
        let start = block
            .find("```yaml\n")
            .expect("a yaml block after the marker")
            + 8;
        let end = start + block[start..].find("```").expect("the block ends");
        let doc: serde_yaml::Value = serde_yaml::from_str(&block[start..end]).unwrap();
        let (_, section) = doc["receivers"]
            .as_mapping()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        let mut diags = Diagnostics::new();
        let path = ConfigPath::root().key(name);
        let c = weft_config::decode_component::<Config>(section, &path, &mut diags).unwrap();
        assert!(!diags.has_errors(), "preset {name}: {diags}");
        c
    };
    let path = "/var/log/pods/shop_checkout-7d4b9_0a1b2c3d-0000-4000-8000-000000000001/app/0.log";
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let cases = [
        (
            "zap",
            format!(
                r#"{{"level":"error","ts":1764757730.123456,"caller":"shop/pay.go:42","msg":"payment declined","trace_id":"{trace}","span_id":"00f067aa0ba902b7"}}"#
            ),
            "payment declined",
            17,
            1_764_757_730_123_456_000u64,
        ),
        (
            "zerolog",
            format!(
                r#"{{"level":"warn","trace_id":"{trace}","span_id":"00f067aa0ba902b7","time":"2025-12-03T10:28:50Z","caller":"pay.go:9","message":"retrying card"}}"#
            ),
            "retrying card",
            13,
            1_764_757_730_000_000_000,
        ),
        (
            "logrus",
            format!(
                r#"{{"level":"warning","msg":"disk almost full","time":"2025-12-03T11:28:50+01:00","trace_id":"{trace}","span_id":"00f067aa0ba902b7"}}"#
            ),
            "disk almost full",
            13,
            1_764_757_730_000_000_000,
        ),
        (
            "seed",
            format!(
                r#"{{"timestamp":"2025-12-03T10:28:50.123Z","level":"error","service":"order-svc","trace_id":"{trace}","span_id":"00f067aa0ba902b7","event":"order payment failed","caller":"order/pay.go:88","context":{{"user_id":1001,"path":"/api/v1/orders"}},"biz_order_no":"A-1001"}}"#
            ),
            "order payment failed",
            17,
            1_764_757_730_123_000_000,
        ),
    ];
    for (name, json, body, severity, time) in cases {
        let cfg = preset(name);
        assert!(cfg.include_file_path, "{name}");
        let mut chain = Chain::build(
            &cfg.decoded_operators(),
            name,
            &crate::telemetry::Telemetry::new(),
            1 << 20,
        )
        .unwrap();
        let mut entry = crate::operators::Entry::new(
            crate::operators::Value::Str(format!("2025-12-03T10:28:50.999Z stdout F {json}")),
            1,
            crate::operators::Source::default(),
        );
        entry.set_attribute("log.file.path", crate::operators::Value::Str(path.into()));
        let mut out = Vec::new();
        chain.run(entry, &mut out);
        assert_eq!(out.len(), 1, "{name}");
        let e = &out[0];
        assert_eq!(
            e.body,
            crate::operators::Value::Str(body.into()),
            "{name}: {e:?}"
        );
        assert_eq!((e.severity, e.timestamp), (severity, time), "{name}");
        assert_eq!(hex::encode(&e.trace_id), trace, "{name}");
        assert!(
            e.get(&"attributes[\"weft.parse_error\"]".parse().unwrap())
                .is_none(),
            "{name}: {e:?}"
        );
        assert_eq!(
            e.get(&"resource[\"k8s.namespace.name\"]".parse().unwrap()),
            Some(&crate::operators::Value::Str("shop".into())),
            "{name}"
        );
        if name == "seed" {
            assert_eq!(
                e.get(&"resource[\"service.name\"]".parse().unwrap()),
                Some(&crate::operators::Value::Str("order-svc".into()))
            );
            assert_eq!(
                e.get(&"attributes.biz_order_no".parse().unwrap()),
                Some(&crate::operators::Value::Str("A-1001".into()))
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_files_than_max_concurrent_files_are_all_read() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..12 {
        append(
            &dir.path().join(format!("f{i:02}.log")),
            &format!("file {i} line 1\n"),
        );
    }
    let sink = Arc::new(Sink::default());
    let r = start(
        dir.path(),
        "max_concurrent_files: 4",
        sink.clone(),
        SharedInstances::default(),
    )
    .await;
    assert_eq!(wait_for(&sink, 12).await.len(), 12);
    for i in 0..12 {
        append(
            &dir.path().join(format!("f{i:02}.log")),
            &format!("file {i} line 2\n"),
        );
    }
    let mut got = wait_for(&sink, 24).await;
    settle().await;
    got.sort();
    let mut expected: Vec<String> = (0..12)
        .flat_map(|i| [format!("file {i} line 1"), format!("file {i} line 2")])
        .collect();
    expected.sort();
    assert_eq!(
        got, expected,
        "each line once, though at most 4 files stay open"
    );
    stop(&r).await;
}
