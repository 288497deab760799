//! The `memory_limiter` processor, as the Collector's memorylimiterprocessor: it watches the
//! process's memory and, above a soft limit, refuses data with a retryable answer so clients
//! back off before Weft runs out of memory.
//!
//! Limits: the hard limit is `limit_mib` (or `limit_percentage` of the memory available to
//! the process: the cgroup limit when there is one, else the machine's total). The soft limit
//! is the hard limit minus `spike_limit_mib` (default 20% of the hard limit), the headroom for
//! what may arrive between two checks.
//!
//! What is measured differs from the Collector: Go measures its heap, Weft measures the
//! process's resident set size (VmRSS), which also counts what the allocator holds. The
//! `weft` binary runs on jemalloc, which returns freed memory to the system, so RSS falls
//! back once data is delivered (with glibc's malloc it stayed above the soft limit after a
//! burst and the limiter refused everything: integration-tests/tests/overload.rs). Leave
//! headroom in `limit_mib` below the container limit all the same, as the Collector's docs
//! advise, and keep `check_interval` short (100 ms–1 s) where bursts are sharp.
//!
//! Every `check_interval` a background task reads the memory once and sets a flag; `consume`
//! only reads the flag, so the data path never does I/O. While the flag is set every batch is
//! refused with [`ConsumeError::exhausted`] (gRPC RESOURCE_EXHAUSTED / HTTP 429 at the
//! receiver) and nothing is forwarded. Memory that cannot be read (no `/proc`) leaves the
//! limiter open: it logs once and lets data through rather than refusing everything.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration};

use crate::component::{
    BuildContext, Component, GenericProcessor, Processor, ProcessorFactory, Stability,
};
use crate::pipeline::{ConsumeError, Consumer, Payload};
use crate::telemetry::Telemetry;

const MIB: u64 = 1024 * 1024;

/// The shortest delay a refused client is asked to wait: memory rarely falls faster.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// `processors::memory_limiter`: the keys of the Collector's memorylimiterprocessor. As in
/// the Collector, the defaults are all zero and a limit and `check_interval` must be set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How often memory is measured, like "1s". Required.
    pub check_interval: CfgDuration,
    /// The hard limit in MiB. Required unless `limit_percentage` is set; wins over it.
    pub limit_mib: u64,
    /// Headroom below `limit_mib` kept for spikes between checks; default 20% of `limit_mib`.
    pub spike_limit_mib: u64,
    /// The hard limit as a percentage of the memory available (cgroup limit or total memory).
    pub limit_percentage: u64,
    /// The spike headroom as a percentage of the memory available; default 20% of the limit.
    pub spike_limit_percentage: u64,
    /// Go garbage-collector pacing in the Collector; accepted so Collector configs load
    /// unchanged, without effect (Rust has no garbage collector to trigger).
    pub min_gc_interval_when_soft_limited: CfgDuration,
    /// As `min_gc_interval_when_soft_limited`.
    pub min_gc_interval_when_hard_limited: CfgDuration,
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.check_interval.is_zero() {
            diags.error(
                &path.key("check_interval"),
                "must be greater than 0, like \"1s\"",
            );
        }
        if self.limit_mib == 0 && self.limit_percentage == 0 {
            diags.error(
                &path.key("limit_mib"),
                "a memory limit is required: set limit_mib (or limit_percentage) greater than 0",
            );
        }
        for (key, value) in [
            ("limit_percentage", self.limit_percentage),
            ("spike_limit_percentage", self.spike_limit_percentage),
        ] {
            if value > 100 {
                diags.error(
                    &path.key(key),
                    format!("must be a percentage between 0 and 100, got {value}"),
                );
            }
        }
        if self.limit_mib > 0 && self.spike_limit_mib >= self.limit_mib {
            diags.error(
                &path.key("spike_limit_mib"),
                format!(
                    "must be less than limit_mib ({}); the soft limit is limit_mib - spike_limit_mib",
                    self.limit_mib
                ),
            );
        }
        if self.limit_mib == 0
            && self.limit_percentage > 0
            && self.spike_limit_percentage >= self.limit_percentage
        {
            diags.error(
                &path.key("spike_limit_percentage"),
                format!(
                    "must be less than limit_percentage ({})",
                    self.limit_percentage
                ),
            );
        }
        if self.limit_mib == 0 && self.spike_limit_mib > 0 {
            diags.warning(
                &path.key("spike_limit_mib"),
                "has no effect without limit_mib; use spike_limit_percentage with limit_percentage",
            );
        }
        if self.limit_mib > 0 && self.limit_percentage > 0 {
            diags.warning(
                &path.key("limit_percentage"),
                "ignored: limit_mib is set and takes precedence",
            );
        }
    }
}

/// The hard and soft limits in bytes, as computed from a [`Config`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Above this, memory is critically high (logged at every check).
    pub hard: u64,
    /// At or above this, data is refused.
    pub soft: u64,
}

impl Limits {
    /// The limits a validated config asks for; `available` (bytes of memory the process may
    /// use) is only consulted for the percentage settings.
    pub fn from_config(
        cfg: &Config,
        available: impl FnOnce() -> std::io::Result<u64>,
    ) -> anyhow::Result<Self> {
        let (hard, spike) = if cfg.limit_mib > 0 {
            (cfg.limit_mib * MIB, cfg.spike_limit_mib * MIB)
        } else {
            let total = available().context(
                "limit_percentage needs the memory available to the process, which could not be read from the cgroup or /proc/meminfo; set limit_mib instead",
            )?;
            (
                total / 100 * cfg.limit_percentage,
                total / 100 * cfg.spike_limit_percentage,
            )
        };
        anyhow::ensure!(hard > 0, "the memory limit computes to 0 bytes");
        // The Collector's default headroom: a fifth of the hard limit.
        let spike = if spike == 0 { hard / 5 } else { spike };
        anyhow::ensure!(
            spike < hard,
            "the spike limit ({} MiB) must be below the memory limit ({} MiB)",
            spike / MIB,
            hard / MIB
        );
        Ok(Self {
            hard,
            soft: hard - spike,
        })
    }
}

/// Where memory readings come from: the process's RSS in production, a scripted value in
/// tests. Any `Fn() -> io::Result<u64>` is a reader.
pub trait MemoryReader: Send + Sync + 'static {
    /// The process's resident memory in bytes.
    fn rss_bytes(&self) -> std::io::Result<u64>;
}

impl<F> MemoryReader for F
where
    F: Fn() -> std::io::Result<u64> + Send + Sync + 'static,
{
    fn rss_bytes(&self) -> std::io::Result<u64> {
        self()
    }
}

/// Reads `VmRSS` from `/proc/self/status` (kB), which is right whatever the page size.
pub fn process_rss() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    meminfo_field(&status, "VmRSS:").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no VmRSS line in /proc/self/status",
        )
    })
}

/// The memory this process may use: the cgroup limit (v2 `memory.max`, v1
/// `memory.limit_in_bytes`) when it is below the machine's total, else `MemTotal`.
pub fn available_memory() -> std::io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let total = meminfo_field(&meminfo, "MemTotal:").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no MemTotal line in /proc/meminfo",
        )
    })?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    Ok(cgroup_limit(&cgroup).map_or(total, |limit| limit.min(total)))
}

/// A `Name:   123 kB` line of a /proc file, in bytes.
fn meminfo_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// The memory limit of this process's cgroup, if any is set.
fn cgroup_limit(proc_self_cgroup: &str) -> Option<u64> {
    let read =
        |file: String| -> Option<u64> { std::fs::read_to_string(file).ok()?.trim().parse().ok() };
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_end_matches('/');
        if controllers.is_empty() {
            // cgroup v2: "max" (no limit) does not parse and falls through.
            if let Some(v) = read(format!("/sys/fs/cgroup{path}/memory.max"))
                .or_else(|| read("/sys/fs/cgroup/memory.max".to_string()))
            {
                return Some(v);
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            // cgroup v1: "no limit" is a huge number, which the min() with MemTotal absorbs.
            if let Some(v) = read(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"))
                .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string()))
            {
                return Some(v);
            }
        }
    }
    None
}

/// The measuring half: one reading per [`Limiter::check`], and the flag `consume` reads.
pub struct Limiter {
    id: String,
    reader: Box<dyn MemoryReader>,
    limits: Limits,
    refusing: AtomicBool,
    last_rss: AtomicU64,
    read_error_logged: AtomicBool,
    rss_gauge: Gauge,
}

impl Limiter {
    pub fn new(id: &str, telemetry: &Telemetry, limits: Limits, reader: impl MemoryReader) -> Self {
        Self {
            id: id.to_string(),
            reader: Box::new(reader),
            limits,
            refusing: AtomicBool::new(false),
            last_rss: AtomicU64::new(0),
            read_error_logged: AtomicBool::new(false),
            rss_gauge: telemetry.gauge(
                "otelcol_process_memory_rss",
                "Total physical memory (resident set size) of the process, in bytes, as last read by the memory limiter",
                &[],
            ),
        }
    }

    /// Reads memory once and updates the refusal flag; returns whether data is now refused.
    /// The background task calls this every `check_interval`; tests call it directly.
    pub fn check(&self) -> bool {
        let rss = match self.reader.rss_bytes() {
            Ok(rss) => rss,
            Err(e) => {
                if !self.read_error_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        component = %self.id,
                        error = %e,
                        "cannot read the process's memory usage; the memory limiter lets all data through until it can"
                    );
                }
                self.refusing.store(false, Ordering::Relaxed);
                return false;
            }
        };
        self.last_rss.store(rss, Ordering::Relaxed);
        self.rss_gauge.set(i64::try_from(rss).unwrap_or(i64::MAX));
        let refuse = rss >= self.limits.soft;
        let was = self.refusing.swap(refuse, Ordering::Relaxed);
        if rss >= self.limits.hard {
            tracing::warn!(
                component = %self.id,
                rss_mib = rss / MIB,
                hard_limit_mib = self.limits.hard / MIB,
                "memory usage is above the hard limit; refusing data. Raise limit_mib or lower the load if this persists"
            );
        } else if refuse && !was {
            tracing::warn!(
                component = %self.id,
                rss_mib = rss / MIB,
                soft_limit_mib = self.limits.soft / MIB,
                "memory usage is above the soft limit; refusing data until it falls below"
            );
        } else if !refuse && was {
            tracing::info!(
                component = %self.id,
                rss_mib = rss / MIB,
                soft_limit_mib = self.limits.soft / MIB,
                "memory usage is below the soft limit again; accepting data"
            );
        }
        refuse
    }

    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }
}

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "memory_limiter",
        Stability::Beta,
        "refuses data with a retryable answer while memory is above a limit",
    )
    .every_signal::<Config, Build>()
}

/// Builds a memory limiter for each signal.
struct Build;

impl GenericProcessor<Config> for Build {
    fn build<T: Payload>(
        ctx: BuildContext,
        cfg: &Config,
        next: Arc<dyn Consumer<T>>,
    ) -> anyhow::Result<Arc<dyn Processor<T>>> {
        build(ctx, cfg, next)
    }
}

fn build<T: Payload>(
    ctx: BuildContext,
    cfg: &Config,
    next: Arc<dyn Consumer<T>>,
) -> anyhow::Result<Arc<dyn Processor<T>>> {
    let limits = Limits::from_config(cfg, available_memory)?;
    let id = ctx.id_str();
    tracing::debug!(
        component = %id,
        hard_limit_mib = limits.hard / MIB,
        soft_limit_mib = limits.soft / MIB,
        "memory limiter configured"
    );
    let limiter = Limiter::new(&id, &ctx.telemetry, limits, process_rss);
    Ok(Arc::new(MemoryLimiter::new(
        &ctx.telemetry,
        limiter,
        cfg.check_interval.get(),
        next,
    )))
}

/// The `memory_limiter` processor for one signal: a [`Limiter`] checked periodically, in
/// front of the next stage.
pub struct MemoryLimiter<T: Payload> {
    limiter: Arc<Limiter>,
    next: Arc<dyn Consumer<T>>,
    check_interval: Duration,
    refused: Counter,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Payload> MemoryLimiter<T> {
    pub fn new(
        telemetry: &Telemetry,
        limiter: Limiter,
        check_interval: Duration,
        next: Arc<dyn Consumer<T>>,
    ) -> Self {
        let refused = telemetry.counter(
            &format!("otelcol_processor_refused_{}", T::ITEM),
            &format!(
                "Number of {} that were rejected by the next component in the pipeline",
                T::ITEM
            ),
            &[("processor", limiter.id.as_str())],
        );
        Self {
            limiter: Arc::new(limiter),
            next,
            check_interval,
            refused,
            stop: CancellationToken::new(),
            task: Mutex::new(None),
        }
    }

    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for MemoryLimiter<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        if self.limiter.is_refusing() {
            let items = data.item_count();
            self.refused.inc_by(items as u64);
            let l = &self.limiter;
            return Err(ConsumeError::exhausted(
                format!(
                    "data refused due to high memory usage: {} MiB is above the soft limit of {} MiB; send again later",
                    l.last_rss.load(Ordering::Relaxed) / MIB,
                    l.limits.soft / MIB
                ),
                self.check_interval.max(MIN_RETRY_AFTER),
            ));
        }
        self.next.consume(data).await
    }
}

#[async_trait]
impl<T: Payload> Component for MemoryLimiter<T> {
    /// Takes a first reading at once (so an already-full process refuses from the start),
    /// then one every `check_interval`.
    async fn start(&self) -> anyhow::Result<()> {
        self.limiter.check();
        let limiter = self.limiter.clone();
        let stop = self.stop.clone();
        let period = self.check_interval;
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick completes at once; the reading above covered it.
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticker.tick() => { limiter.check(); }
                }
            }
        });
        *self.task.lock() = Some(handle);
        Ok(())
    }

    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), task).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;
    use crate::pipeline::{Refusal, Traces};

    /// A next stage that counts the spans it takes.
    #[derive(Default)]
    struct Sink {
        spans: AtomicU64,
    }

    #[async_trait]
    impl Consumer<Traces> for Sink {
        async fn consume(&self, data: Traces) -> Result<(), ConsumeError> {
            self.spans
                .fetch_add(data.item_count() as u64, Ordering::SeqCst);
            Ok(())
        }
    }

    fn three_spans() -> Traces {
        Traces::from(
            weft_proto::collector::trace::v1::ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![Span::default(); 3],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            },
        )
    }

    /// A limiter of 100 MiB (soft 80 MiB) whose memory reading the test sets.
    fn limiter_with_reading() -> (MemoryLimiter<Traces>, Arc<Sink>, Arc<AtomicU64>, Telemetry) {
        let telemetry = Telemetry::new();
        let reading = Arc::new(AtomicU64::new(10 * MIB));
        let r = reading.clone();
        let cfg = Config {
            check_interval: CfgDuration::from_secs(2),
            limit_mib: 100,
            ..Config::default()
        };
        let limits = Limits::from_config(&cfg, || unreachable!("limit_mib is set")).unwrap();
        let limiter = Limiter::new("memory_limiter", &telemetry, limits, move || {
            Ok(r.load(Ordering::SeqCst))
        });
        let sink = Arc::new(Sink::default());
        let p = MemoryLimiter::new(&telemetry, limiter, Duration::from_secs(2), sink.clone());
        (p, sink, reading, telemetry)
    }

    #[tokio::test]
    async fn refuses_above_the_soft_limit_and_forwards_again_below_it() {
        let (p, sink, reading, telemetry) = limiter_with_reading();
        assert!(!p.limiter().check());
        p.consume(three_spans()).await.unwrap();
        assert_eq!(sink.spans.load(Ordering::SeqCst), 3);

        reading.store(85 * MIB, Ordering::SeqCst);
        assert!(p.limiter().check());
        match p.consume(three_spans()).await.unwrap_err() {
            ConsumeError::Refused {
                refusal,
                message,
                retry_after,
            } => {
                assert_eq!(refusal, Refusal::Exhausted);
                assert_eq!(retry_after, Duration::from_secs(2));
                assert!(
                    message.contains("85 MiB is above the soft limit of 80 MiB"),
                    "{message}"
                );
            }
            other => panic!("expected a retryable refusal, got {other:?}"),
        }
        assert_eq!(sink.spans.load(Ordering::SeqCst), 3, "nothing forwarded");
        assert_eq!(
            telemetry.counter_value(
                "otelcol_processor_refused_spans",
                &[("processor", "memory_limiter")]
            ),
            3
        );
        let metrics = telemetry.encode();
        assert!(
            metrics.contains(&format!("otelcol_process_memory_rss{{}} {}", 85 * MIB)),
            "{metrics}"
        );

        reading.store(79 * MIB, Ordering::SeqCst);
        assert!(!p.limiter().check());
        p.consume(three_spans()).await.unwrap();
        assert_eq!(sink.spans.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_task_checks_every_interval() {
        let (p, _sink, reading, _) = limiter_with_reading();
        reading.store(90 * MIB, Ordering::SeqCst);
        p.start().await.unwrap();
        assert!(p.limiter().is_refusing(), "start takes a first reading");
        reading.store(MIB, Ordering::SeqCst);
        // The paused clock jumps to the next check.
        tokio::time::sleep(Duration::from_millis(2001)).await;
        assert!(!p.limiter().is_refusing());
        p.shutdown(std::time::Instant::now() + Duration::from_secs(1))
            .await
            .unwrap();
    }

    #[test]
    fn an_unreadable_memory_lets_data_through() {
        let limits = Limits {
            hard: 100,
            soft: 80,
        };
        let l = Limiter::new("memory_limiter", &Telemetry::new(), limits, || {
            Err(std::io::Error::other("no /proc"))
        });
        assert!(!l.check());
    }

    #[test]
    fn limits_follow_the_collector() {
        let mib = |limit_mib, spike_limit_mib| Config {
            limit_mib,
            spike_limit_mib,
            ..Config::default()
        };
        let none = || unreachable!("not a percentage config");
        assert_eq!(
            Limits::from_config(&mib(100, 0), none).unwrap(),
            Limits {
                hard: 100 * MIB,
                soft: 80 * MIB
            }
        );
        assert_eq!(
            Limits::from_config(&mib(512, 128), none).unwrap().soft,
            384 * MIB
        );
        let pct = Config {
            limit_percentage: 50,
            spike_limit_percentage: 10,
            ..Config::default()
        };
        assert_eq!(
            Limits::from_config(&pct, || Ok(1000 * MIB)).unwrap(),
            Limits {
                hard: 500 * MIB,
                soft: 400 * MIB
            }
        );
        let err = Limits::from_config(&pct, || Err(std::io::Error::other("no /proc")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("set limit_mib instead"), "{err}");
    }

    #[test]
    fn reads_proc_files() {
        let status = "Name:\tweft\nVmPeak:\t  2000 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(meminfo_field(status, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(meminfo_field(status, "VmSwap:"), None);
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(process_rss().unwrap() > 0);
            assert!(available_memory().unwrap() > 0);
        }
    }

    fn validate(yaml: &str) -> Diagnostics {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        let mut diags = Diagnostics::new();
        let path = ConfigPath::root().key("processors").key("memory_limiter");
        weft_config::decode_component::<Config>(&value, &path, &mut diags);
        diags
    }

    #[test]
    fn config_errors_name_their_keys() {
        assert!(validate("check_interval: 1s\nlimit_mib: 512\nspike_limit_mib: 128").is_empty());
        assert!(
            validate("check_interval: 1s\nlimit_percentage: 80\nspike_limit_percentage: 20")
                .is_empty()
        );

        let text = validate("limit_mib: 100\nspike_limit_mib: 100").to_string();
        assert!(
            text.contains(
                "error: processors::memory_limiter::check_interval: must be greater than 0"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "error: processors::memory_limiter::spike_limit_mib: must be less than limit_mib (100)"
            ),
            "{text}"
        );

        let missing = validate("check_interval: 1s").to_string();
        assert!(
            missing.contains(
                "error: processors::memory_limiter::limit_mib: a memory limit is required"
            ),
            "{missing}"
        );
        // An empty section is the Collector's all-zero default: both required keys missing.
        let empty = validate("");
        assert_eq!(empty.errors().count(), 2, "{empty}");

        let pct = validate("check_interval: 1s\nlimit_percentage: 150\nspike_limit_percentage: 20")
            .to_string();
        assert!(
            pct.contains("limit_percentage: must be a percentage between 0 and 100, got 150"),
            "{pct}"
        );
        let spike =
            validate("check_interval: 1s\nlimit_percentage: 20\nspike_limit_percentage: 30")
                .to_string();
        assert!(
            spike.contains("spike_limit_percentage: must be less than limit_percentage (20)"),
            "{spike}"
        );
        let gc =
            validate("check_interval: 1s\nlimit_mib: 10\nmin_gc_interval_when_soft_limited: 10s");
        assert!(gc.is_empty(), "{gc}");
    }
}
