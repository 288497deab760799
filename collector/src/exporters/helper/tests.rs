//! The queue → retry → timeout layers, against a scripted [`Sender`] and tokio's paused clock:
//! every delay asserted here is the virtual time the layers asked for, not wall time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;
use weft_config::{ComponentId, Duration as CfgDuration};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::component::Component;
use crate::pipeline::{ConsumeError, Consumer, Logs, Refusal, Traces};

/// A backend that answers each attempt with the next scripted result (then `Ok` once the
/// script runs out, or `always` when set) and records when each attempt happened.
#[derive(Clone, Default)]
struct Scripted {
    inner: Arc<ScriptState>,
}

#[derive(Default)]
struct ScriptState {
    results: Mutex<VecDeque<Result<(), ExportError>>>,
    always: Mutex<Option<ExportError>>,
    attempts: Mutex<Vec<Instant>>,
    delivered: Mutex<Vec<Traces>>,
}

impl Scripted {
    fn new(results: Vec<Result<(), ExportError>>) -> Self {
        let s = Self::default();
        *s.inner.results.lock() = results.into();
        s
    }

    fn failing_forever(error: ExportError) -> Self {
        let s = Self::default();
        *s.inner.always.lock() = Some(error);
        s
    }

    fn attempts(&self) -> Vec<Instant> {
        self.inner.attempts.lock().clone()
    }

    fn delivered(&self) -> usize {
        self.inner.delivered.lock().len()
    }
}

#[async_trait]
impl Sender<Traces> for Scripted {
    async fn send(&self, data: &Traces) -> Result<(), ExportError> {
        self.inner.attempts.lock().push(Instant::now());
        if let Some(e) = self.inner.always.lock().clone() {
            return Err(e);
        }
        let next = self.inner.results.lock().pop_front().unwrap_or(Ok(()));
        if next.is_ok() {
            self.inner.delivered.lock().push(data.clone());
        }
        next
    }
}

/// Never answers: stands for a backend that hangs.
struct Hanging;

#[async_trait]
impl Sender<Traces> for Hanging {
    async fn send(&self, _data: &Traces) -> Result<(), ExportError> {
        futures::future::pending().await
    }
}

fn spans(n: usize) -> Traces {
    Traces::from(
        weft_proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )
}

fn id() -> ComponentId {
    ComponentId::new("otlp", Some("test"))
}

/// Deterministic backoff: 1 s, then ×2, capped at 8 s, giving up after 60 s.
fn retry_settings() -> RetrySettings {
    RetrySettings {
        enabled: true,
        initial_interval: CfgDuration::from_secs(1),
        randomization_factor: 0.0,
        multiplier: 2.0,
        max_interval: CfgDuration::from_secs(8),
        max_elapsed_time: CfgDuration::from_secs(60),
    }
}

fn no_queue() -> QueueSettings {
    QueueSettings {
        enabled: false,
        ..QueueSettings::default()
    }
}

fn counter(t: &Telemetry, name: &str) -> u64 {
    t.counter_value(name, &[("exporter", "otlp/test")])
}

fn far_deadline() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(3600)
}

/// Seconds between consecutive attempts.
fn gaps(attempts: &[Instant]) -> Vec<Duration> {
    attempts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn full_queue_refuses_with_unavailable_and_counts_enqueue_failed() {
    let t = Telemetry::new();
    let backend = Scripted::default();
    let queue = QueueSettings {
        enabled: true,
        num_consumers: 1,
        queue_size: 1,
        storage: None,
    };
    // Not started: nothing takes batches out of the queue.
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry_settings(),
        &queue,
    );
    q.consume(spans(3)).await.expect("the first batch fits");
    let err = q.consume(spans(2)).await.expect_err("the queue is full");
    match err {
        ConsumeError::Refused {
            refusal,
            message,
            retry_after,
        } => {
            assert_eq!(refusal, Refusal::Unavailable);
            assert!(message.contains("full"), "{message}");
            assert!(retry_after > Duration::ZERO);
        }
        other => panic!("expected a retryable refusal, got {other:?}"),
    }
    assert_eq!(counter(&t, "otelcol_exporter_enqueue_failed_spans"), 2);
    assert!(t.encode().contains(
        "otelcol_exporter_queue_capacity{exporter=\"otlp/test\",data_type=\"traces\"} 1"
    ));

    // Once started, the queued batch goes out and shutdown finds the queue empty.
    q.start().await.unwrap();
    q.shutdown(far_deadline()).await.unwrap();
    assert_eq!(backend.delivered(), 1);
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 3);
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_with_exponential_backoff() {
    let t = Telemetry::new();
    let backend = Scripted::new(vec![
        Err(ExportError::retryable("connection refused")),
        Err(ExportError::retryable("connection refused")),
        Ok(()),
    ]);
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry_settings(),
        &no_queue(),
    );
    q.consume(spans(4))
        .await
        .expect("delivered on the third attempt");
    let attempts = backend.attempts();
    assert_eq!(attempts.len(), 3);
    assert_eq!(
        gaps(&attempts),
        [Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 4);
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 0);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    let t = Telemetry::new();
    let backend = Scripted::new(vec![Err(ExportError::permanent("HTTP 400: bad span"))]);
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry_settings(),
        &no_queue(),
    );
    let err = q.consume(spans(2)).await.expect_err("permanent");
    assert!(
        matches!(&err, ConsumeError::Permanent(m) if m.contains("bad span")),
        "{err:?}"
    );
    assert_eq!(backend.attempts().len(), 1);
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 2);
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 0);
}

#[tokio::test(start_paused = true)]
async fn throttle_delay_from_the_backend_is_honoured() {
    let t = Telemetry::new();
    let backend = Scripted::new(vec![
        Err(ExportError::throttled("slow down", Duration::from_secs(10))),
        // A zero delay (`Retry-After: 0`) still waits the backoff instead of spinning.
        Err(ExportError::throttled("slow down", Duration::ZERO)),
        Ok(()),
    ]);
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry_settings(),
        &no_queue(),
    );
    q.consume(spans(1)).await.unwrap();
    let attempts = backend.attempts();
    assert_eq!(attempts.len(), 3);
    let gaps = gaps(&attempts);
    assert!(gaps[0] >= Duration::from_secs(10), "{gaps:?}");
    // The second backoff interval is 2 s (1 s × multiplier 2).
    assert_eq!(gaps[1], Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_time_gives_up_and_counts_send_failed() {
    let t = Telemetry::new();
    let backend = Scripted::failing_forever(ExportError::retryable("unavailable"));
    let retry = RetrySettings {
        initial_interval: CfgDuration::from_secs(1),
        multiplier: 1.0,
        max_interval: CfgDuration::from_secs(1),
        max_elapsed_time: CfgDuration::from_secs(5),
        ..retry_settings()
    };
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry,
        &no_queue(),
    );
    let started = Instant::now();
    let err = q.consume(spans(7)).await.expect_err("gave up");
    assert!(
        err.is_retryable(),
        "a transient failure stays retryable upstream"
    );
    let attempts = backend.attempts();
    // Attempts at 0..=5 s; a sixth retry would end after max_elapsed_time.
    assert_eq!(attempts.len(), 6);
    assert_eq!(*attempts.last().unwrap() - started, Duration::from_secs(5));
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 7);
}

#[tokio::test(start_paused = true)]
async fn retry_disabled_returns_the_first_failure() {
    let t = Telemetry::new();
    let backend = Scripted::failing_forever(ExportError::retryable("unavailable"));
    let retry = RetrySettings {
        enabled: false,
        ..retry_settings()
    };
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry,
        &no_queue(),
    );
    let err = q.consume(spans(1)).await.expect_err("no retries");
    assert!(err.is_retryable());
    assert_eq!(backend.attempts().len(), 1);
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 1);
}

#[tokio::test(start_paused = true)]
async fn disabled_queue_is_synchronous_and_maps_errors() {
    let t = Telemetry::new();
    let retry = RetrySettings {
        enabled: false,
        ..retry_settings()
    };
    let backend = Scripted::new(vec![
        Ok(()),
        Err(ExportError::throttled("429", Duration::from_secs(7))),
        Err(ExportError::permanent("400")),
    ]);
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry,
        &no_queue(),
    );
    // Not even started: a disabled queue sends in the caller's task.
    q.consume(spans(1)).await.unwrap();
    assert_eq!(backend.delivered(), 1, "sent before consume returned");
    match q.consume(spans(1)).await {
        Err(ConsumeError::Refused {
            refusal,
            retry_after,
            ..
        }) => {
            assert_eq!(refusal, Refusal::Unavailable);
            assert_eq!(retry_after, Duration::from_secs(7));
        }
        other => panic!("expected a refusal carrying the throttle delay, got {other:?}"),
    }
    assert!(matches!(
        q.consume(spans(1)).await,
        Err(ConsumeError::Permanent(_))
    ));
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 1);
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_the_queue() {
    let t = Telemetry::new();
    // One transient failure on the way: draining includes retrying.
    let backend = Scripted::new(vec![Err(ExportError::retryable("blip"))]);
    let queue = QueueSettings {
        enabled: true,
        num_consumers: 2,
        queue_size: 10,
        storage: None,
    };
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry_settings(),
        &queue,
    );
    for _ in 0..5 {
        q.consume(spans(2)).await.unwrap();
    }
    q.start().await.unwrap();
    q.shutdown(far_deadline()).await.unwrap();
    assert_eq!(backend.delivered(), 5);
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 10);
    assert!(
        q.consume(spans(1)).await.is_err(),
        "a stopped exporter refuses data rather than dropping it"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_deadline_drops_and_counts_what_is_left() {
    let t = Telemetry::new();
    let backend = Scripted::failing_forever(ExportError::retryable("down"));
    let queue = QueueSettings {
        enabled: true,
        num_consumers: 1,
        queue_size: 10,
        storage: None,
    };
    let q = build(
        &id(),
        &t,
        backend.clone(),
        Duration::ZERO,
        &retry_settings(),
        &queue,
    );
    for _ in 0..3 {
        q.consume(spans(2)).await.unwrap();
    }
    q.start().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let err = q.shutdown(deadline).await.expect_err("not drained");
    assert!(err.to_string().contains("shutdown deadline"), "{err}");
    // The batch being retried and the two still queued are all counted as failed.
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 6);
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 0);
}

/// Shuts `q` down as the service does: the service stops waiting at the deadline, so the
/// queue must have given up, counted and logged by then. Returns the queue's own result.
async fn shutdown_as_the_service_does(
    q: &QueueSender<Traces>,
    deadline: std::time::Instant,
) -> anyhow::Result<()> {
    let remaining = deadline.saturating_duration_since(std::time::Instant::now());
    tokio::time::timeout(remaining, q.shutdown(deadline))
        .await
        .expect("the queue's shutdown returns by the deadline, before the service stops waiting")
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_before_the_deadline_so_the_drop_is_counted_in_time() {
    let t = Telemetry::new();
    let backend = Scripted::failing_forever(ExportError::retryable("down"));
    let queue = QueueSettings {
        enabled: true,
        num_consumers: 2,
        queue_size: 10,
        storage: None,
    };
    let q = build(
        &id(),
        &t,
        backend,
        Duration::ZERO,
        &retry_settings(),
        &queue,
    );
    for _ in 0..5 {
        q.consume(spans(3)).await.unwrap();
    }
    q.start().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    let err = shutdown_as_the_service_does(&q, deadline)
        .await
        .expect_err("not drained");
    assert!(err.to_string().contains("shutdown deadline"), "{err}");
    // Two batches in flight (dropped by the retry layer) and three still queued.
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 15);
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_an_attempt_still_running_at_the_deadline() {
    let t = Telemetry::new();
    let queue = QueueSettings {
        enabled: true,
        num_consumers: 1,
        queue_size: 10,
        storage: None,
    };
    // No per-attempt timeout: only the shutdown deadline can end the hanging send.
    let q = build(
        &id(),
        &t,
        Hanging,
        Duration::ZERO,
        &retry_settings(),
        &queue,
    );
    q.consume(spans(2)).await.unwrap();
    q.consume(spans(2)).await.unwrap();
    q.start().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    shutdown_as_the_service_does(&q, deadline)
        .await
        .expect_err("not drained");
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 4);
}

#[tokio::test(start_paused = true)]
async fn persistent_queue_shutdown_keeps_undelivered_batches_on_disk_by_the_deadline() {
    let t = Telemetry::new();
    let dir = tempfile::tempdir().unwrap();
    let queue = QueueSettings {
        enabled: true,
        num_consumers: 2,
        queue_size: 10,
        storage: Some("file_storage".to_string()),
    };
    let metrics = ExporterMetrics::new(&t, "otlp/test", "spans", "traces");
    let open = || Arc::new(FileQueue::open(dir.path(), false, 1 << 30, 100).unwrap());
    let retrying = RetrySender::new(
        "otlp/test".to_string(),
        TimeoutSender::new(
            Scripted::failing_forever(ExportError::retryable("down")),
            Duration::ZERO,
        ),
        retry_settings(),
        metrics.clone(),
    );
    let q = QueueSender::with_storage(
        "otlp/test".to_string(),
        retrying,
        &queue,
        metrics,
        Some(open()),
    );
    for _ in 0..5 {
        q.consume(spans(3)).await.unwrap();
    }
    q.start().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    shutdown_as_the_service_does(&q, deadline)
        .await
        .expect("a persistent queue loses nothing at shutdown");
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 0);
    drop(q);
    // The two batches being sent when the deadline came and the three waiting are all there
    // for the next start.
    assert_eq!(open().len(), 5);
}

/// A persistent queue of `num_consumers` workers in `dir` in front of `backend`, with the
/// deterministic retry settings.
fn persistent_queue<S: Sender<Traces>>(
    t: &Telemetry,
    dir: &std::path::Path,
    num_consumers: usize,
    backend: S,
) -> QueueSender<Traces> {
    let queue = QueueSettings {
        enabled: true,
        num_consumers,
        queue_size: 10,
        storage: Some("file_storage".to_string()),
    };
    let metrics = ExporterMetrics::new(t, "otlp/test", "spans", "traces");
    let retrying = RetrySender::new(
        "otlp/test".to_string(),
        TimeoutSender::new(backend, Duration::ZERO),
        retry_settings(),
        metrics.clone(),
    );
    let file = FileQueue::open(dir, false, 1 << 30, 100).unwrap();
    QueueSender::with_storage(
        "otlp/test".to_string(),
        retrying,
        &queue,
        metrics,
        Some(Arc::new(file)),
    )
}

#[tokio::test(start_paused = true)]
async fn persistent_queue_shutdown_does_not_wait_for_the_backend() {
    let t = Telemetry::new();
    let dir = tempfile::tempdir().unwrap();
    let backend = Scripted::failing_forever(ExportError::retryable("down"));
    let q = persistent_queue(&t, dir.path(), 2, backend.clone());
    for _ in 0..5 {
        q.consume(spans(3)).await.unwrap();
    }
    q.start().await.unwrap();
    // Each worker has tried one batch and waits 1 s to retry it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(backend.attempts().len(), 2);
    let began = Instant::now();
    shutdown_as_the_service_does(&q, std::time::Instant::now() + Duration::from_secs(25))
        .await
        .expect("a persistent queue loses nothing at shutdown");
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "returned without waiting for a retry, let alone the deadline: {:?} (virtual time)",
        began.elapsed()
    );
    assert_eq!(
        backend.attempts().len(),
        2,
        "no attempt after shutdown began"
    );
    assert_eq!(counter(&t, "otelcol_exporter_send_failed_spans"), 0);
    drop(q);
    let left = FileQueue::open(dir.path(), false, 1 << 30, 100).unwrap();
    assert_eq!(left.len(), 5, "all of them wait for the next start");
}

/// Answers every attempt after `delay` (virtual time), and counts what it took.
#[derive(Clone, Default)]
struct Slow {
    delivered: Arc<Mutex<usize>>,
}

#[async_trait]
impl Sender<Traces> for Slow {
    async fn send(&self, _data: &Traces) -> Result<(), ExportError> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        *self.delivered.lock() += 1;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn persistent_queue_shutdown_lets_an_attempt_on_the_wire_finish_and_not_come_again() {
    let t = Telemetry::new();
    let dir = tempfile::tempdir().unwrap();
    let backend = Slow::default();
    let q = persistent_queue(&t, dir.path(), 1, backend.clone());
    for _ in 0..3 {
        q.consume(spans(3)).await.unwrap();
    }
    q.start().await.unwrap();
    // The worker's first attempt is on the wire.
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown_as_the_service_does(&q, std::time::Instant::now() + Duration::from_secs(25))
        .await
        .unwrap();
    assert_eq!(*backend.delivered.lock(), 1, "the answer was waited for");
    assert_eq!(counter(&t, "otelcol_exporter_sent_spans"), 3);
    drop(q);
    let left = FileQueue::open(dir.path(), false, 1 << 30, 100).unwrap();
    assert_eq!(left.len(), 2, "the delivered batch is not sent again");
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_bounded_by_the_timeout() {
    let t = Telemetry::new();
    let retry = RetrySettings {
        enabled: false,
        ..retry_settings()
    };
    let q = build(
        &id(),
        &t,
        Hanging,
        Duration::from_secs(5),
        &retry,
        &no_queue(),
    );
    let started = Instant::now();
    let err = q.consume(spans(1)).await.expect_err("timed out");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

/// A sender for every signal that counts what it delivered.
#[derive(Clone, Default)]
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

#[async_trait::async_trait]
impl<T: Payload> Sender<T> for Counting {
    async fn send(&self, _data: &T) -> Result<(), ExportError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl MakeSender for Counting {
    fn sender<T: Payload>(&self) -> anyhow::Result<impl Sender<T>> {
        Ok(self.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn a_queued_exporter_has_one_queue_per_requested_signal_started_and_stopped_together() {
    let ctx = crate::component::BuildContext::standalone("otlp/test", weft_config::Kind::Exporter);
    let make = Counting::default();
    let only_traces = build_queued_exporter(
        &ctx,
        &[SignalKind::Traces],
        &make,
        Duration::ZERO,
        &retry_settings(),
        &QueueSettings::default(),
    )
    .unwrap();
    assert!(only_traces.consumers.get::<Logs>().is_none());
    let both = build_queued_exporter(
        &ctx,
        &[SignalKind::Traces, SignalKind::Logs],
        &make,
        Duration::ZERO,
        &retry_settings(),
        &QueueSettings::default(),
    )
    .unwrap();
    both.component.start().await.unwrap();
    let traces = both.consumers.get::<Traces>().expect("traces requested");
    let logs = both.consumers.get::<Logs>().expect("logs requested");
    traces.consume(spans(3)).await.unwrap();
    logs.consume(Logs::default()).await.unwrap();
    // Shutdown drains both queues before it returns.
    both.component.shutdown(far_deadline()).await.unwrap();
    assert_eq!(make.0.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn settings_validation_reports_each_problem_with_its_path() {
    let path = weft_config::ConfigPath::root().key("exporters").key("otlp");
    let mut diags = weft_config::Diagnostics::new();
    QueueSettings {
        enabled: true,
        num_consumers: 0,
        queue_size: 0,
        storage: None,
    }
    .validate(&path.key("sending_queue"), &mut diags);
    RetrySettings {
        randomization_factor: 2.0,
        max_interval: CfgDuration::from_millis(1),
        ..RetrySettings::default()
    }
    .validate(&path.key("retry_on_failure"), &mut diags);
    let text = diags.to_string();
    assert_eq!(diags.errors().count(), 4, "{text}");
    for key in [
        "sending_queue::num_consumers",
        "sending_queue::queue_size",
        "retry_on_failure::randomization_factor",
        "retry_on_failure::max_interval",
    ] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
}
