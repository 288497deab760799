//! The `samplingmetrics` connector (Weft's own; no Collector component has it): what a
//! `tail_sampling` window kept and dropped, per policy and per root service and operation —
//! traces, their spans, and their log records by severity — as OTLP metrics into the metrics
//! pipelines that list it as a receiver, and as counters on Weft's `/metrics`. It answers
//! "what did sampling throw away?".
//!
//! It is listed as an exporter of a traces pipeline (connectors are used on both sides); the
//! spans it gets there are ignored: it counts the window's decisions, which it hears through
//! the window's [`VerdictBus`]. It asks the window for each trace's root span, dropped
//! traces included (the window then reads the root span's name of every trace it drops).
//!
//! Series are bounded by `max_series` (policy × root service × root operation); decisions of
//! new combinations beyond it are counted under `root.service` / `root.operation` `_other`,
//! and in `weft_connector_samplingmetrics_overflow_decisions`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_config::{ComponentConfig, ComponentId, ConfigPath, Diagnostics, Duration as CfgDuration};
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::metrics::v1::{
    metric::Data, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use weft_proto::resource::v1::Resource;

use crate::component::{
    BuildContext, Component, ConnectorFactory, ConnectorTargets, Processor, Stability,
};
use crate::pipeline::{ConsumeError, Consumer, Fanout, Metrics, Payload, Traces};
use crate::telemetry::{CounterFamily, Telemetry};
use crate::verdicts::{Verdict, VerdictBus, VerdictListener};

/// Label value for what is past `max_series`.
const OTHER: &str = "_other";

/// `connectors::samplingmetrics`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The id of the `tail_sampling` processor whose decisions are counted.
    pub tail_sampling: String,
    /// How often the metrics are sent to the pipelines the connector feeds.
    pub metrics_flush_interval: CfgDuration,
    /// Prefix of the metric names (`<namespace>.traces`).
    pub namespace: String,
    /// (policy, root service, root operation) combinations held at most.
    pub max_series: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tail_sampling: "tail_sampling".into(),
            metrics_flush_interval: CfgDuration::from_secs(15),
            namespace: "weft.sampling".into(),
            max_series: 10_000,
        }
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.tail_sampling.parse::<ComponentId>().is_err() {
            diags.error(
                &path.key("tail_sampling"),
                format!(
                    "{:?} is not a component id, e.g. \"tail_sampling\"",
                    self.tail_sampling
                ),
            );
        }
        if self.metrics_flush_interval.is_zero() {
            diags.error(
                &path.key("metrics_flush_interval"),
                "must be greater than 0, e.g. \"15s\"",
            );
        }
        if self.max_series == 0 {
            diags.error(&path.key("max_series"), "must be at least 1");
        }
    }
}

pub fn factory() -> ConnectorFactory {
    ConnectorFactory::new::<Config>(
        "samplingmetrics",
        Stability::Development,
        "what a tail_sampling window kept and dropped (traces, spans, logs by severity) per policy and root service/operation, as metrics",
    )
    .connect::<ExportTraceServiceRequest, ExportMetricsServiceRequest, Config>(build)
}

/// The severity words of the OTLP severity numbers (1-4 TRACE … 21-24 FATAL).
fn severity_word(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    policy: String,
    root_service: String,
    root_operation: String,
}

#[derive(Default)]
struct Counts {
    /// [dropped, kept]
    traces: [u64; 2],
    spans: [u64; 2],
    /// (trace kept, severity, exported) → log records.
    logs: HashMap<(bool, &'static str, bool), u64>,
}

/// Weft's own series (on `/metrics`).
struct Telemetered {
    traces: CounterFamily,
    spans: CounterFamily,
    logs: CounterFamily,
    overflow: Counter,
    connector: String,
}

pub struct Aggregate {
    max_series: usize,
    counts: Mutex<HashMap<Key, Counts>>,
    telemetry: Telemetered,
}

impl Aggregate {
    fn new(t: &Telemetry, connector: &str, max_series: usize) -> Self {
        Self {
            max_series,
            counts: Mutex::new(HashMap::new()),
            telemetry: Telemetered {
                traces: t.counter_family(
                    "weft_sampling_traces",
                    "Traces a tail_sampling window decided, by verdict, policy and root service and operation",
                ),
                spans: t.counter_family(
                    "weft_sampling_spans",
                    "Spans of the traces a tail_sampling window decided, by verdict, policy and root service and operation",
                ),
                logs: t.counter_family(
                    "weft_sampling_log_records",
                    "Log records of the traces a tail_sampling window decided, by the trace's verdict, severity and whether they were exported",
                ),
                overflow: t.counter(
                    "weft_connector_samplingmetrics_overflow_decisions",
                    "Decisions counted under root service and operation _other because max_series was reached",
                    &[("connector", connector)],
                ),
                connector: connector.to_string(),
            },
        }
    }

    fn record(&self, v: &Verdict<'_>) {
        let (service, operation) = v.root.unwrap_or(("", ""));
        let mut key = Key {
            policy: v.policy.unwrap_or("none").to_string(),
            root_service: service.to_string(),
            root_operation: operation.to_string(),
        };
        let mut counts = self.counts.lock();
        if !counts.contains_key(&key) && counts.len() >= self.max_series {
            self.telemetry.overflow.inc();
            key.root_service = OTHER.into();
            key.root_operation = OTHER.into();
        }
        let c = counts.entry(key.clone()).or_default();
        let kept = usize::from(v.sampled);
        c.traces[kept] += 1;
        c.spans[kept] += v.spans as u64;
        // Exported logs: all of a kept trace's; of a dropped trace, those the window rescued
        // by severity (`logs_kept` of them, the most severe first).
        let mut rescued = v.logs_kept;
        let mut by_severity: Vec<(i32, u64)> = v.logs_by_severity.to_vec();
        by_severity.sort_by_key(|(severity, _)| std::cmp::Reverse(*severity));
        let mut logs = Vec::new();
        for (severity, n) in by_severity {
            let word = severity_word(severity);
            let (exported, dropped) = if v.sampled {
                (n, 0)
            } else {
                let e = rescued.min(n);
                rescued -= e;
                (e, n - e)
            };
            for (flag, count) in [(true, exported), (false, dropped)] {
                if count > 0 {
                    *c.logs.entry((v.sampled, word, flag)).or_default() += count;
                    logs.push((word, flag, count));
                }
            }
        }
        drop(counts);
        let t = &self.telemetry;
        let labels = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut l = vec![
                ("connector".to_string(), t.connector.clone()),
                ("policy".to_string(), key.policy.clone()),
                ("root_service".to_string(), key.root_service.clone()),
                ("root_operation".to_string(), key.root_operation.clone()),
            ];
            l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            l
        };
        let sampled = if v.sampled { "true" } else { "false" };
        t.traces
            .get_or_create(&labels(&[("sampled", sampled)]))
            .inc();
        t.spans
            .get_or_create(&labels(&[("sampled", sampled)]))
            .inc_by(v.spans as u64);
        for (word, exported, count) in logs {
            let exported = if exported { "true" } else { "false" };
            t.logs
                .get_or_create(&labels(&[
                    ("trace_sampled", sampled),
                    ("severity", word),
                    ("exported", exported),
                ]))
                .inc_by(count);
        }
    }

    fn build(&self, names: &Names, start: u64, now: u64) -> Option<ExportMetricsServiceRequest> {
        let counts = self.counts.lock();
        if counts.is_empty() {
            return None;
        }
        let mut keys: Vec<&Key> = counts.keys().collect();
        keys.sort();
        let text = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        };
        let flag = |k: &str, v: bool| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::BoolValue(v)),
            }),
            ..Default::default()
        };
        let point = |attributes: Vec<KeyValue>, n: u64| NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsInt(n as i64)),
            ..Default::default()
        };
        let base = |k: &Key| {
            vec![
                text("policy", &k.policy),
                text("root.service", &k.root_service),
                text("root.operation", &k.root_operation),
            ]
        };
        let (mut traces, mut spans, mut logs) = (Vec::new(), Vec::new(), Vec::new());
        for k in keys {
            let c = &counts[k];
            for kept in [false, true] {
                let i = usize::from(kept);
                if c.traces[i] > 0 {
                    let mut a = base(k);
                    a.push(flag("sampled", kept));
                    traces.push(point(a.clone(), c.traces[i]));
                    spans.push(point(a, c.spans[i]));
                }
            }
            let mut entries: Vec<_> = c.logs.iter().collect();
            entries.sort();
            for ((kept, severity, exported), n) in entries {
                let mut a = base(k);
                a.push(flag("trace.sampled", *kept));
                a.push(text("severity", severity));
                a.push(flag("exported", *exported));
                logs.push(point(a, *n));
            }
        }
        let sum = |name: &str, unit: &str, description: &str, points| Metric {
            name: name.to_string(),
            unit: unit.to_string(),
            description: description.to_string(),
            data: Some(Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let mut metrics = vec![
            sum(
                &names.traces,
                "{trace}",
                "Traces decided by the tail_sampling window",
                traces,
            ),
            sum(&names.spans, "{span}", "Spans of the decided traces", spans),
        ];
        if !logs.is_empty() {
            metrics.push(sum(
                &names.logs,
                "{log_record}",
                "Log records of the decided traces, by severity and whether they were exported",
                logs,
            ));
        }
        Some(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![text("service.name", "weft")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "samplingmetricsconnector".into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }
}

struct Names {
    traces: String,
    spans: String,
    logs: String,
}

fn build(
    ctx: BuildContext,
    cfg: &Config,
    targets: ConnectorTargets<Metrics>,
) -> anyhow::Result<Arc<dyn Processor<Traces>>> {
    let id = ctx.id_str();
    let window: ComponentId = cfg
        .tail_sampling
        .parse()
        .map_err(|e| anyhow::anyhow!("tail_sampling: {e}"))?;
    let aggregate = Arc::new(Aggregate::new(&ctx.telemetry, &id, cfg.max_series));
    let bus = VerdictBus::of(&ctx.shared, &window)?;
    bus.subscribe(Arc::new(Listener(aggregate.clone())), true);
    let name = |n: &str| {
        if cfg.namespace.is_empty() {
            n.to_string()
        } else {
            format!("{}.{n}", cfg.namespace)
        }
    };
    Ok(Arc::new(SamplingMetrics {
        id,
        window,
        bus,
        aggregate,
        names: Arc::new(Names {
            traces: name("traces"),
            spans: name("spans"),
            logs: name("log_records"),
        }),
        next: Fanout::of(targets.into_iter().map(|(_, c)| c).collect()),
        interval: cfg.metrics_flush_interval.get(),
        start: unix_nanos(SystemTime::now()),
        stop: CancellationToken::new(),
        task: Mutex::new(None),
        span: ctx.span(),
    }))
}

struct Listener(Arc<Aggregate>);

impl VerdictListener for Listener {
    fn decided(&self, verdict: &Verdict<'_>) {
        self.0.record(verdict);
    }
}

pub struct SamplingMetrics {
    id: String,
    window: ComponentId,
    bus: Arc<VerdictBus>,
    aggregate: Arc<Aggregate>,
    names: Arc<Names>,
    next: Arc<dyn Consumer<Metrics>>,
    interval: std::time::Duration,
    start: u64,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    span: tracing::Span,
}

/// Its input is only what makes it a connector: the spans are not looked at.
#[async_trait]
impl Consumer<Traces> for SamplingMetrics {
    async fn consume(&self, _data: Traces) -> Result<(), ConsumeError> {
        Ok(())
    }
}

async fn flush(
    id: &str,
    aggregate: &Aggregate,
    names: &Names,
    start: u64,
    next: &Arc<dyn Consumer<Metrics>>,
) {
    let now = unix_nanos(SystemTime::now());
    let Some(request) = aggregate.build(names, start, now) else {
        return;
    };
    if let Err(e) = next.consume(Metrics::from_request(request)).await {
        // Cumulative: the next flush carries the totals.
        tracing::warn!(component = %id, error = %e, "the metrics pipeline refused the sampling metrics; the next flush carries the totals");
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[async_trait]
impl Component for SamplingMetrics {
    async fn start(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.bus.has_publisher(),
            "tail_sampling names \"{}\", but no tail_sampling processor with that id is in a pipeline: list it in one, or name the one that is",
            self.window
        );
        let (aggregate, names, next, stop, id) = (
            self.aggregate.clone(),
            self.names.clone(),
            self.next.clone(),
            self.stop.clone(),
            self.id.clone(),
        );
        let (interval, start) = (self.interval, self.start);
        let task = tokio::spawn(
            async move {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => flush(&id, &aggregate, &names, start, &next).await,
                    }
                }
            }
            .instrument(self.span.clone()),
        );
        *self.task.lock() = Some(task);
        Ok(())
    }

    async fn shutdown(&self, deadline: std::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        let last = flush(
            &self.id,
            &self.aggregate,
            &self.names,
            self.start,
            &self.next,
        );
        let _ = tokio::time::timeout(remaining, last).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict<'a>(
        trace: &'a [u8; 16],
        sampled: bool,
        policy: Option<&'a str>,
        root: (&'a str, &'a str),
        logs: &'a [(i32, u64)],
        logs_kept: u64,
    ) -> Verdict<'a> {
        Verdict {
            trace_id: trace,
            sampled,
            policy,
            reason: "decision_wait",
            root: Some(root),
            spans: 3,
            logs_by_severity: logs,
            logs_kept,
        }
    }

    fn names() -> Names {
        Names {
            traces: "weft.sampling.traces".into(),
            spans: "weft.sampling.spans".into(),
            logs: "weft.sampling.log_records".into(),
        }
    }

    fn points(req: &ExportMetricsServiceRequest, name: &str) -> Vec<(Vec<String>, i64)> {
        let metric = req.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap();
        let Some(Data::Sum(s)) = &metric.data else {
            panic!()
        };
        s.data_points
            .iter()
            .map(|p| {
                let attrs = p
                    .attributes
                    .iter()
                    .map(
                        |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(any_value::Value::StringValue(s)) => format!("{}={s}", kv.key),
                            Some(any_value::Value::BoolValue(b)) => format!("{}={b}", kv.key),
                            _ => kv.key.clone(),
                        },
                    )
                    .collect();
                let Some(number_data_point::Value::AsInt(n)) = p.value else {
                    panic!()
                };
                (attrs, n)
            })
            .collect()
    }

    #[test]
    fn kept_and_dropped_traces_and_their_logs_are_counted_per_policy_and_root() {
        let t = Telemetry::new();
        let a = Aggregate::new(&t, "samplingmetrics", 100);
        // Kept by "errors": its 2 INFO and 1 ERROR logs are exported.
        a.record(&verdict(
            &[1; 16],
            true,
            Some("errors"),
            ("shop", "GET /cart"),
            &[(9, 2), (17, 1)],
            3,
        ));
        // Dropped: 4 INFO dropped, 1 WARN rescued by keep_logs_at_or_above.
        a.record(&verdict(
            &[2; 16],
            false,
            None,
            ("shop", "GET /cart"),
            &[(9, 4), (13, 1)],
            1,
        ));
        a.record(&verdict(
            &[3; 16],
            false,
            None,
            ("shop", "GET /cart"),
            &[],
            0,
        ));
        let req = a.build(&names(), 1, 2).unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            points(&req, "weft.sampling.traces"),
            [
                (
                    s(&[
                        "policy=errors",
                        "root.service=shop",
                        "root.operation=GET /cart",
                        "sampled=true"
                    ]),
                    1
                ),
                (
                    s(&[
                        "policy=none",
                        "root.service=shop",
                        "root.operation=GET /cart",
                        "sampled=false"
                    ]),
                    2
                ),
            ]
        );
        assert_eq!(points(&req, "weft.sampling.spans")[1].1, 6);
        let logs = points(&req, "weft.sampling.log_records");
        let find = |kept: bool, sev: &str, exported: bool| {
            logs.iter()
                .find(|(a, _)| {
                    a.contains(&format!("trace.sampled={kept}"))
                        && a.contains(&format!("severity={sev}"))
                        && a.contains(&format!("exported={exported}"))
                })
                .map(|(_, n)| *n)
        };
        assert_eq!(find(true, "INFO", true), Some(2));
        assert_eq!(find(true, "ERROR", true), Some(1));
        assert_eq!(find(false, "INFO", false), Some(4));
        assert_eq!(find(false, "WARN", true), Some(1));
        assert_eq!(find(false, "WARN", false), None);
        // And on /metrics.
        assert_eq!(
            t.counter_value(
                "weft_sampling_traces",
                &[
                    ("connector", "samplingmetrics"),
                    ("policy", "none"),
                    ("root_service", "shop"),
                    ("root_operation", "GET /cart"),
                    ("sampled", "false"),
                ]
            ),
            2
        );
    }

    #[test]
    fn root_operations_beyond_max_series_are_counted_as_other() {
        let t = Telemetry::new();
        let a = Aggregate::new(&t, "samplingmetrics", 2);
        let ops: Vec<String> = (0..1000).map(|i| format!("GET /user/{i}")).collect();
        for op in &ops {
            a.record(&verdict(&[1; 16], false, None, ("shop", op), &[], 0));
        }
        let req = a.build(&names(), 1, 2).unwrap();
        let traces = points(&req, "weft.sampling.traces");
        assert_eq!(traces.len(), 3);
        assert_eq!(traces.iter().map(|(_, n)| n).sum::<i64>(), 1000);
        assert!(traces
            .iter()
            .any(|(a, n)| a.contains(&"root.operation=_other".to_string()) && *n == 998));
        assert_eq!(
            t.counter_value(
                "weft_connector_samplingmetrics_overflow_decisions",
                &[("connector", "samplingmetrics")]
            ),
            998
        );
    }
}
