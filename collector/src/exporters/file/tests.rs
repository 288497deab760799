//! The `file` exporter writing real files in a temporary directory.

use std::path::Path;
use std::time::Duration;

use weft_config::{decode_component, ConfigPath, Diagnostics, Kind};
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::otlp_json;
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::writer::{backups, free_backup_name};
use super::*;
use crate::pipeline::Payload;
use crate::pipeline::{Logs, Traces};
use crate::telemetry::Telemetry;

fn decode(yaml: &str) -> Result<Config, Diagnostics> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("exporters").key("file");
    match decode_component::<Config>(&value, &path, &mut diags) {
        Some(c) if !diags.has_errors() => Ok(c),
        _ => Err(diags),
    }
}

fn config(path: &Path, extra: &str) -> Config {
    decode(&format!("path: '{}'\n{extra}", path.display())).unwrap_or_else(|d| panic!("{d}"))
}

fn ctx(t: &Telemetry) -> BuildContext {
    BuildContext::standalone("file", Kind::Exporter).with_telemetry(t)
}

/// `n` spans, each with an attribute of `pad` bytes to make lines as large as a test needs.
fn traces(n: usize, pad: usize) -> Traces {
    Traces::from(
        weft_proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..n)
                        .map(|i| Span {
                            trace_id: vec![3; 16],
                            span_id: vec![i as u8 + 1; 8],
                            name: format!("span-{i}"),
                            attributes: vec![KeyValue {
                                key: "pad".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::StringValue("x".repeat(pad))),
                                }),
                                ..Default::default()
                            }],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )
}

fn logs(n: usize) -> Logs {
    Logs::from(weft_proto::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("line {i}"))),
                        }),
                        trace_id: vec![3; 16],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn json_lines_decode_back_to_the_same_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dirs/out.json");
    let t = Telemetry::new();
    let built = build(
        ctx(&t),
        &config(&path, ""),
        &[SignalKind::Traces, SignalKind::Logs],
    )
    .unwrap();
    built.component.start().await.unwrap();
    let (t1, l1, t2) = (traces(2, 3), logs(3), traces(1, 0));
    built
        .consumers
        .get::<Traces>()
        .unwrap()
        .consume(t1.clone())
        .await
        .unwrap();
    built
        .consumers
        .get::<Logs>()
        .unwrap()
        .consume(l1.clone())
        .await
        .unwrap();
    built
        .consumers
        .get::<Traces>()
        .unwrap()
        .consume(t2.clone())
        .await
        .unwrap();
    built.component.shutdown(deadline()).await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("{\"resourceSpans\""), "{}", lines[0]);
    assert_eq!(
        otlp_json::decode_traces(lines[0].as_bytes()).unwrap(),
        *t1.request()
    );
    assert_eq!(
        otlp_json::decode_logs(lines[1].as_bytes()).unwrap(),
        *l1.request()
    );
    assert_eq!(
        otlp_json::decode_traces(lines[2].as_bytes()).unwrap(),
        *t2.request()
    );
    let sent = |name| t.counter_value(name, &[("exporter", "file")]);
    assert_eq!(sent("otelcol_exporter_sent_spans"), 3);
    assert_eq!(sent("otelcol_exporter_sent_log_records"), 3);
}

#[tokio::test]
async fn proto_records_are_length_prefixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pb");
    let t = Telemetry::new();
    let built = build(
        ctx(&t),
        &config(&path, "format: proto"),
        &[SignalKind::Traces],
    )
    .unwrap();
    built.component.start().await.unwrap();
    let batches = [traces(1, 10), traces(4, 0)];
    for b in &batches {
        built
            .consumers
            .get::<Traces>()
            .unwrap()
            .consume(b.clone())
            .await
            .unwrap();
    }
    built.component.shutdown(deadline()).await.unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let mut rest = bytes.as_slice();
    let mut decoded = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        decoded
            .push(Traces::from_stored(bytes::Bytes::copy_from_slice(&rest[4..4 + len])).unwrap());
        rest = &rest[4 + len..];
    }
    assert_eq!(decoded, batches);
}

#[tokio::test]
async fn rotation_moves_full_files_to_backups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.json");
    let t = Telemetry::new();
    let cfg = config(&path, "rotation: {max_megabytes: 1, max_backups: 2}");
    let built = build(ctx(&t), &cfg, &[SignalKind::Traces]).unwrap();
    built.component.start().await.unwrap();
    // Each line is about 0.4 MiB: two fit in a 1 MiB file, the third starts a new one.
    let batch = traces(1, 400 * 1024);
    for _ in 0..7 {
        built
            .consumers
            .get::<Traces>()
            .unwrap()
            .consume(batch.clone())
            .await
            .unwrap();
    }
    built.component.shutdown(deadline()).await.unwrap();

    let kept = backups(&path).unwrap();
    // 7 lines → files of 2, 2, 2, 1: three rotations, the oldest backup pruned.
    assert_eq!(kept.len(), 2, "{kept:?}");
    let mut lines = 0;
    for file in kept.iter().map(|(_, p)| p.clone()).chain([path.clone()]) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("spans") && name.ends_with(".json"),
            "{name}"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.len() as u64 <= 1024 * 1024,
            "{name} grew past the limit"
        );
        for line in text.lines() {
            assert_eq!(
                otlp_json::decode_traces(line.as_bytes()).unwrap(),
                *batch.request()
            );
            lines += 1;
        }
    }
    assert_eq!(lines, 5, "2 + 2 in the backups, 1 in the current file");
}

#[test]
fn backups_are_pruned_by_age_and_named_uniquely() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let now = chrono::Utc::now().naive_utc();
    // Two backups stamped in the same millisecond get different names.
    let first = free_backup_name(&path, now);
    std::fs::write(&first, "a\n").unwrap();
    let second = free_backup_name(&path, now);
    assert_ne!(first, second);
    let old = free_backup_name(&path, now - chrono::Duration::days(10));
    std::fs::write(&old, "old\n").unwrap();
    std::fs::write(dir.path().join("unrelated-file.json"), "x").unwrap();
    assert_eq!(backups(&path).unwrap().len(), 2);

    let mut file = RotatingFile::open(
        &path,
        Some(Policy {
            max_bytes: 4,
            max_backups: 0,
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            localtime: false,
        }),
        false,
    )
    .unwrap();
    file.write_record(b"one\n").unwrap();
    file.write_record(b"two\n").unwrap(); // rotates, then prunes the 10-day-old backup
    let left: Vec<_> = backups(&path)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&old));
    assert!(dir.path().join("unrelated-file.json").exists());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
}

#[tokio::test]
async fn without_append_an_existing_file_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let t = Telemetry::new();
    for (extra, expected_lines) in [("", 1), ("append: true", 2)] {
        std::fs::write(&path, "previous run\n").unwrap();
        let built = build(ctx(&t), &config(&path, extra), &[SignalKind::Logs]).unwrap();
        built.component.start().await.unwrap();
        built
            .consumers
            .get::<Logs>()
            .unwrap()
            .consume(logs(1))
            .await
            .unwrap();
        built.component.shutdown(deadline()).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), expected_lines, "{extra:?}: {text}");
    }
}

#[tokio::test]
async fn an_acknowledged_batch_is_in_the_file_whatever_flush_interval_says() {
    // A crash right after the answer must not lose the batch: a durable window upstream
    // forgets what the exporter acknowledged.
    for interval in ["0s", "1s"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let t = Telemetry::new();
        let built = build(
            ctx(&t),
            &config(&path, &format!("flush_interval: {interval}")),
            &[SignalKind::Traces],
        )
        .unwrap();
        built.component.start().await.unwrap();
        let traces_in = built.consumers.get::<Traces>().unwrap();
        traces_in.consume(traces(1, 0)).await.unwrap();
        traces_in.consume(traces(2, 0)).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().count(),
            2,
            "flush_interval: {interval}"
        );
        built.component.shutdown(deadline()).await.unwrap();
    }
}

#[tokio::test]
async fn write_errors_are_refused_not_dropped() {
    // /dev/full accepts the open and fails every write with ENOSPC.
    let t = Telemetry::new();
    let built = build(
        ctx(&t),
        &config(Path::new("/dev/full"), "flush_interval: 0s"),
        &[SignalKind::Traces],
    )
    .unwrap();
    built.component.start().await.unwrap();
    let err = built
        .consumers
        .get::<Traces>()
        .unwrap()
        .consume(traces(2, 0))
        .await
        .expect_err("the disk is full");
    match &err {
        ConsumeError::Refused { message, .. } => {
            assert!(message.contains("/dev/full"), "{message}")
        }
        other => panic!("expected a retryable refusal, got {other:?}"),
    }
    assert_eq!(
        t.counter_value(
            "otelcol_exporter_send_failed_spans",
            &[("exporter", "file")]
        ),
        2
    );
    let _ = built.component.shutdown(deadline()).await;
}

#[tokio::test]
async fn not_running_refuses_and_bad_paths_fail_start() {
    let dir = tempfile::tempdir().unwrap();
    let t = Telemetry::new();
    let path = dir.path().join("out.json");
    let built = build(ctx(&t), &config(&path, ""), &[SignalKind::Traces]).unwrap();
    let err = built
        .consumers
        .get::<Traces>()
        .unwrap()
        .consume(traces(1, 0))
        .await
        .expect_err("not started");
    assert!(err.is_retryable());

    // A parent that is a file cannot be created as a directory.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let built = build(
        ctx(&t),
        &config(&blocker.join("out.json"), ""),
        &[SignalKind::Traces],
    )
    .unwrap();
    let err = built.component.start().await.expect_err("cannot open");
    assert!(err.to_string().contains("blocker/out.json"), "{err}");
}

#[test]
fn config_defaults_and_validation() {
    let c = decode("path: out.json").unwrap();
    assert_eq!(c.format, Format::Json);
    assert_eq!(
        c.rotation, None,
        "no rotation unless the section is present"
    );
    assert_eq!(c.flush_interval.get(), Duration::from_secs(1));
    assert!(!c.append);
    let c = decode("{path: out.json, rotation: }").unwrap();
    assert_eq!(
        c.rotation,
        Some(Rotation {
            max_megabytes: 100,
            max_days: 0,
            max_backups: 100,
            localtime: false
        })
    );
    let missing = decode("format: proto").unwrap_err().to_string();
    assert!(
        missing.contains("exporters::file::path: required"),
        "{missing}"
    );
    let bad = decode("{path: x, format: csv}").unwrap_err().to_string();
    assert!(bad.contains("csv"), "{bad}");
    let typo = decode("{path: x, rotation: {max_megabyte: 1}}")
        .unwrap_err()
        .to_string();
    assert!(
        typo.contains("exporters::file::rotation") && typo.contains("max_megabyte"),
        "{typo}"
    );
}
