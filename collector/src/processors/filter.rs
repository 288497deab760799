//! The `filter` processor, as the Collector's filterprocessor with OTTL conditions: an item
//! for which any condition holds is dropped.
//!
//! ```yaml
//! filter:
//!   error_mode: ignore
//!   logs:
//!     log_record: ['severity_number < SEVERITY_NUMBER_INFO', 'IsMatch(body, "healthz")']
//!   traces:
//!     span: ['attributes["http.route"] == "/healthz"']
//! ```
//!
//! # Contract
//!
//! - Dropping is the configured policy, not a loss: dropped items are counted in
//!   `otelcol_processor_filter_logs_filtered` / `otelcol_processor_filter_spans_filtered`
//!   (label `processor`). Scopes and resources left empty go too; a batch left empty is
//!   answered `Ok` and nothing is sent on.
//! - An evaluation error follows `error_mode`: `propagate` (the Collector's default) refuses
//!   the batch as permanently invalid; `ignore` counts the condition as false (the item is
//!   kept), logs a warning once per batch; `silent` the same without logging. Errors are
//!   counted in `weft_processor_filter_errors`.
//! - A batch of a signal the processor has no conditions for passes still encoded.
//! - The Collector's older `include`/`exclude` match properties are not supported: each is
//!   an unknown key; write OTTL conditions.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

use crate::component::{BuildContext, Component, Processor, ProcessorFactory, Stability};
use crate::ottl::contexts::{Log, Span};
use crate::ottl::items::OttlSignal;
use crate::ottl::{Condition, ErrorMode, EvalError};
use crate::pipeline::{Batch, ConsumeError, Consumer, Payload};

/// `processors::filter`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub error_mode: ErrorMode,
    pub logs: LogConditions,
    pub traces: TraceConditions,
}

/// `logs:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConditions {
    /// Conditions in the log context: a record for which any holds is dropped.
    pub log_record: Vec<String>,
}

/// `traces:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConditions {
    /// Conditions in the span context: a span for which any holds is dropped.
    pub span: Vec<String>,
    /// Span events are not filtered by Weft: an error if set.
    pub spanevent: Vec<String>,
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        for (i, c) in self.logs.log_record.iter().enumerate() {
            if let Err(e) = Condition::<Log>::new(c) {
                diags.error(&path.key("logs").key("log_record").index(i), e.to_string());
            }
        }
        for (i, c) in self.traces.span.iter().enumerate() {
            if let Err(e) = Condition::<Span>::new(c) {
                diags.error(&path.key("traces").key("span").index(i), e.to_string());
            }
        }
        if !self.traces.spanevent.is_empty() {
            diags.error(
                &path.key("traces").key("spanevent"),
                "filtering span events is not supported by Weft: filter whole spans with traces::span",
            );
        }
    }
}

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "filter",
        Stability::Alpha,
        "drops log records and spans for which an OTTL condition holds",
    )
    .signal::<ExportTraceServiceRequest, Config>(build::<ExportTraceServiceRequest>)
    .signal::<ExportLogsServiceRequest, Config>(build::<ExportLogsServiceRequest>)
}

fn build<S: OttlSignal>(
    ctx: BuildContext,
    cfg: &Config,
    next: Arc<dyn Consumer<Batch<S>>>,
) -> anyhow::Result<Arc<dyn Processor<Batch<S>>>> {
    let sources = match S::ITEM_CONTEXT {
        "log" => &cfg.logs.log_record,
        _ => &cfg.traces.span,
    };
    let conditions = sources
        .iter()
        .map(|c| Condition::<S::Item>::new(c).map_err(|e| anyhow::anyhow!("{c:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let id = ctx.id_str();
    let t = &ctx.telemetry;
    let filtered_name = match S::ITEM_CONTEXT {
        "log" => "otelcol_processor_filter_logs_filtered",
        _ => "otelcol_processor_filter_spans_filtered",
    };
    Ok(Arc::new(Filter {
        filtered: t.counter(
            filtered_name,
            "Items dropped by the filter processor's conditions",
            &[("processor", &id)],
        ),
        errors: t.counter(
            "weft_processor_filter_errors",
            "OTTL evaluation errors in filter conditions",
            &[("processor", &id), ("data_type", &S::KIND.to_string())],
        ),
        id,
        conditions,
        mode: cfg.error_mode,
        next,
    }))
}

/// The processor for one signal.
pub struct Filter<S: OttlSignal> {
    id: String,
    conditions: Vec<Condition<S::Item>>,
    mode: ErrorMode,
    filtered: Counter,
    errors: Counter,
    next: Arc<dyn Consumer<Batch<S>>>,
}

#[async_trait]
impl<S: OttlSignal> Consumer<Batch<S>> for Filter<S> {
    async fn consume(&self, mut data: Batch<S>) -> Result<(), ConsumeError> {
        if self.conditions.is_empty() {
            return self.next.consume(data).await;
        }
        let before = data.item_count();
        let mut ignored: (u64, Option<EvalError>) = (0, None);
        let mode = self.mode;
        let conditions = &self.conditions;
        let outcome = data.request_mut().retain_items(&mut |item| {
            for c in conditions {
                match c.matches(item) {
                    Ok(true) => return Ok(false),
                    Ok(false) => {}
                    Err(e) if mode == ErrorMode::Propagate => return Err(e),
                    Err(e) => {
                        ignored.0 += 1;
                        ignored.1.get_or_insert(e);
                    }
                }
            }
            Ok(true)
        });
        if ignored.0 > 0 {
            self.errors.inc_by(ignored.0);
            if mode == ErrorMode::Ignore {
                if let Some(e) = &ignored.1 {
                    tracing::warn!(component = %self.id, error = %e, count = ignored.0,
                        "filter conditions failed on this batch; those items were kept (error_mode: ignore)");
                }
            }
        }
        if let Err(e) = outcome {
            self.errors.inc();
            return Err(ConsumeError::Permanent(format!(
                "processor {}: an OTTL condition failed: {e}",
                self.id
            )));
        }
        let after = data.item_count();
        self.filtered.inc_by((before - after) as u64);
        if after == 0 {
            return Ok(());
        }
        self.next.consume(data).await
    }
}

impl<S: OttlSignal> Component for Filter<S> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Logs;
    use crate::processors::testutil::{config, logs, records, Recorder};
    use crate::telemetry::Telemetry;
    use weft_config::Kind;

    fn processor(yaml: &str, t: &Telemetry) -> (Arc<dyn Processor<Logs>>, Arc<Recorder<Logs>>) {
        let (cfg, diags) = config::<Config>("processors::filter", yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let sink = Recorder::new();
        let ctx = BuildContext::standalone("filter", Kind::Processor).with_telemetry(t);
        (
            build::<ExportLogsServiceRequest>(ctx, &cfg.unwrap(), sink.clone()).unwrap(),
            sink,
        )
    }

    #[tokio::test]
    async fn matching_records_are_dropped_and_counted() {
        let t = Telemetry::new();
        let (p, sink) = processor(
            r#"logs: {log_record: ['IsMatch(body, "healthz")', 'body == "noise"']}"#,
            &t,
        );
        p.consume(logs("s", &["GET /healthz", "order placed", "noise"]))
            .await
            .unwrap();
        let got = records(&sink.batches.lock());
        assert_eq!(got.len(), 1);
        assert_eq!(
            t.counter_value(
                "otelcol_processor_filter_logs_filtered",
                &[("processor", "filter")]
            ),
            2
        );
        // Everything dropped: nothing is sent on, and the answer is Ok.
        p.consume(logs("s", &["noise"])).await.unwrap();
        assert_eq!(sink.batches.lock().len(), 1);
    }

    #[tokio::test]
    async fn errors_follow_the_error_mode() {
        let t = Telemetry::new();
        let cond = r#"logs: {log_record: ['ParseJSON(body)["level"] == "debug"']}"#;
        let (p, sink) = processor(cond, &t);
        assert!(matches!(
            p.consume(logs("s", &["not json"])).await,
            Err(ConsumeError::Permanent(_))
        ));
        assert!(sink.batches.lock().is_empty());
        let (p, sink) = processor(&format!("error_mode: ignore\n{cond}"), &t);
        p.consume(logs("s", &["not json", r#"{"level":"debug"}"#]))
            .await
            .unwrap();
        assert_eq!(
            records(&sink.batches.lock()).len(),
            1,
            "the failing record is kept"
        );
    }

    #[test]
    fn conditions_are_checked_with_their_path() {
        let (_, diags) = config::<Config>(
            "processors::filter",
            "logs: {log_record: ['severity_number < SEVERITY_NUMBER_INFOO']}\ntraces: {spanevent: ['name == \"x\"']}",
        );
        assert!(diags[0].starts_with("error: processors::filter::logs::log_record[0]: column 19: unknown enum symbol SEVERITY_NUMBER_INFOO"), "{diags:?}");
        assert!(
            diags[1].contains("traces::spanevent: filtering span events is not supported"),
            "{diags:?}"
        );
    }
}
