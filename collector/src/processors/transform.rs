//! The `transform` processor, as the Collector's transformprocessor: OTTL statements that
//! change logs, spans and their resources, parsed and checked when the configuration is
//! (a bad statement is a `weft validate` error with its path and column).
//!
//! ```yaml
//! transform:
//!   error_mode: ignore
//!   log_statements:
//!     - context: log
//!       conditions: ['IsString(body)']
//!       statements:
//!         - set(body, ParseJSON(body))
//!         - set(trace_id.string, body["trace_id"])
//! ```
//!
//! # Contract
//!
//! - Groups run in the order configured, each over the whole batch: a `resource` group once
//!   per resource, a `scope` group once per scope, a `log` / `span` group once per item. A
//!   group's `conditions` (any of) choose the items its statements run on. Each item gets a
//!   fresh `cache`.
//! - A list entry that is a plain string is a group of one statement in the item context
//!   (`log` or `span`; resource and scope paths reach the item's resource and scope).
//! - An evaluation error follows `error_mode` (the group's, else the processor's):
//!   `propagate` (the Collector's default) refuses the whole batch as permanently invalid
//!   (the client gets INVALID_ARGUMENT / 400, and nothing of it goes on), counted in
//!   `otelcol_processor_refused_<items>`; `ignore` skips the failing statement, logs a warning
//!   (one per batch) and goes on; `silent` goes on without logging. Every error is counted in
//!   `weft_processor_transform_errors`.
//! - A batch the processor has no statements for passes on as it came, still encoded.
//!   Otherwise it is decoded once, changed in place, and passed on decoded.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Deserializer};
use weft_config::{ComponentConfig, ConfigPath, Diagnostics};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

use crate::component::{BuildContext, Component, Processor, ProcessorFactory, Stability};
use crate::ottl::contexts::{Resource, Scope};
use crate::ottl::items::OttlSignal;
use crate::ottl::{Condition, ErrorMode, EvalError, Statement, Writable};
use crate::pipeline::{Batch, ConsumeError, Consumer, Payload};

/// `processors::transform`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// What an evaluation error does, for groups that do not say: `propagate` (default),
    /// `ignore` or `silent`.
    pub error_mode: ErrorMode,
    pub trace_statements: Vec<Group>,
    pub log_statements: Vec<Group>,
}

/// One entry of `log_statements` / `trace_statements`: a group, or one statement.
#[derive(Debug, Default)]
pub struct Group {
    /// `resource`, `scope` (`instrumentation_scope`), or the item context (`log`, `span`,
    /// the default).
    pub context: Option<String>,
    /// Any of these must hold for the statements to run on an item.
    pub conditions: Vec<String>,
    pub statements: Vec<String>,
    pub error_mode: Option<ErrorMode>,
    /// Written as a plain string (errors are reported at the entry itself).
    pub plain: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFields {
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    conditions: Vec<String>,
    statements: Vec<String>,
    #[serde(default)]
    error_mode: Option<ErrorMode>,
}

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        if let serde_yaml::Value::String(statement) = value {
            return Ok(Group {
                statements: vec![statement],
                plain: true,
                ..Group::default()
            });
        }
        if !value.is_mapping() {
            return Err(serde::de::Error::custom(
                "expected a statement (a string) or a group {context, conditions, statements, error_mode}",
            ));
        }
        let f: GroupFields = serde_yaml::from_value(value).map_err(serde::de::Error::custom)?;
        Ok(Group {
            context: f.context,
            conditions: f.conditions,
            statements: f.statements,
            error_mode: f.error_mode,
            plain: false,
        })
    }
}

/// The contexts a group may name for a signal whose item context is `item`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupContext {
    Resource,
    Scope,
    Item,
}

fn group_context(name: Option<&str>, item: &str) -> Result<GroupContext, String> {
    match name {
        None => Ok(GroupContext::Item),
        Some("resource") => Ok(GroupContext::Resource),
        Some("scope" | "instrumentation_scope") => Ok(GroupContext::Scope),
        Some(n) if n == item => Ok(GroupContext::Item),
        Some("spanevent") => {
            Err("the spanevent context is not supported by Weft's transform: use span".to_string())
        }
        Some(other) => Err(format!(
            "unknown context {other:?}: expected resource, scope or {item}"
        )),
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        check_groups::<ExportLogsServiceRequest>(
            &self.log_statements,
            &path.key("log_statements"),
            diags,
        );
        check_groups::<ExportTraceServiceRequest>(
            &self.trace_statements,
            &path.key("trace_statements"),
            diags,
        );
    }
}

fn check_groups<S: OttlSignal>(groups: &[Group], path: &ConfigPath, diags: &mut Diagnostics) {
    for (i, group) in groups.iter().enumerate() {
        let at = path.index(i);
        if let Err(errors) = Program::<S>::compile_group(group, ErrorMode::Propagate) {
            for (where_, message) in errors {
                let p = match where_ {
                    Where::Context => at.key("context"),
                    Where::Statement(_) if group.plain => at.clone(),
                    Where::Statement(j) => at.key("statements").index(j),
                    Where::Condition(j) => at.key("conditions").index(j),
                    Where::Group => at.clone(),
                };
                diags.error(&p, message);
            }
        }
    }
}

/// Where in a group a compile error is.
enum Where {
    Group,
    Context,
    Condition(usize),
    Statement(usize),
}

/// Statements and conditions of one group, compiled for context `C`.
struct Compiled<C: Writable> {
    conditions: Vec<Condition<C>>,
    statements: Vec<Statement<C>>,
}

impl<C: Writable> Compiled<C> {
    fn new(group: &Group) -> Result<Self, Vec<(Where, String)>> {
        let mut errors = Vec::new();
        let mut conditions = Vec::new();
        for (j, c) in group.conditions.iter().enumerate() {
            match Condition::<C>::new(c) {
                Ok(c) => conditions.push(c),
                Err(e) => errors.push((Where::Condition(j), e.to_string())),
            }
        }
        let mut statements = Vec::new();
        for (j, s) in group.statements.iter().enumerate() {
            match Statement::<C>::new(s) {
                Ok(s) => statements.push(s),
                Err(e) => errors.push((Where::Statement(j), e.to_string())),
            }
        }
        if errors.is_empty() {
            Ok(Self {
                conditions,
                statements,
            })
        } else {
            Err(errors)
        }
    }

    /// Runs the group on one item; errors the mode lets through go to `errors`.
    fn run(
        &self,
        target: &mut C::Target<'_>,
        mode: ErrorMode,
        errors: &mut Errors,
    ) -> Result<(), EvalError> {
        if !self.conditions.is_empty() {
            let data = C::view(target);
            let mut any = false;
            for c in &self.conditions {
                match c.eval(&data) {
                    Ok(true) => {
                        any = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(e) if mode == ErrorMode::Propagate => return Err(e),
                    Err(e) => errors.note(e, mode),
                }
            }
            if !any {
                return Ok(());
            }
        }
        for statement in &self.statements {
            if let Err(e) = statement.execute(target) {
                if mode == ErrorMode::Propagate {
                    return Err(e);
                }
                errors.note(e, mode);
            }
        }
        Ok(())
    }
}

/// One group, compiled for its context.
enum CompiledGroup<S: OttlSignal> {
    Resource(Compiled<Resource>, ErrorMode),
    Scope(Compiled<Scope>, ErrorMode),
    Item(Compiled<S::Item>, ErrorMode),
}

/// The groups of one signal.
struct Program<S: OttlSignal> {
    groups: Vec<CompiledGroup<S>>,
}

impl<S: OttlSignal> Program<S> {
    fn compile_group(
        group: &Group,
        default_mode: ErrorMode,
    ) -> Result<CompiledGroup<S>, Vec<(Where, String)>> {
        if group.statements.is_empty() {
            return Err(vec![(
                Where::Group,
                "a group needs at least one statement".to_string(),
            )]);
        }
        let mode = group.error_mode.unwrap_or(default_mode);
        let context = group_context(group.context.as_deref(), S::ITEM_CONTEXT)
            .map_err(|e| vec![(Where::Context, e)])?;
        Ok(match context {
            GroupContext::Resource => CompiledGroup::Resource(Compiled::new(group)?, mode),
            GroupContext::Scope => CompiledGroup::Scope(Compiled::new(group)?, mode),
            GroupContext::Item => CompiledGroup::Item(Compiled::new(group)?, mode),
        })
    }

    fn new(groups: &[Group], default_mode: ErrorMode) -> anyhow::Result<Self> {
        let groups = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                Self::compile_group(g, default_mode).map_err(|errors| {
                    anyhow::anyhow!(
                        "statement group {i}: {}",
                        errors
                            .into_iter()
                            .map(|(_, m)| m)
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { groups })
    }

    fn run(&self, request: &mut S, errors: &mut Errors) -> Result<(), EvalError> {
        for group in &self.groups {
            match group {
                CompiledGroup::Resource(c, mode) => {
                    request.each_resource(&mut |t| c.run(t, *mode, errors))?
                }
                CompiledGroup::Scope(c, mode) => {
                    request.each_scope(&mut |t| c.run(t, *mode, errors))?
                }
                CompiledGroup::Item(c, mode) => {
                    request.each_item(&mut |t| c.run(t, *mode, errors))?
                }
            }
        }
        Ok(())
    }
}

/// Errors `ignore` and `silent` let through in one batch.
#[derive(Default)]
struct Errors {
    count: u64,
    /// The first error of a group whose mode is `ignore` (`silent` ones are not logged).
    first: Option<EvalError>,
}

impl Errors {
    fn note(&mut self, e: EvalError, mode: ErrorMode) {
        self.count += 1;
        if mode == ErrorMode::Ignore {
            self.first.get_or_insert(e);
        }
    }
}

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "transform",
        Stability::Alpha,
        "changes logs, spans and their resources with OTTL statements",
    )
    .signal::<ExportTraceServiceRequest, Config>(build::<ExportTraceServiceRequest>)
    .signal::<ExportLogsServiceRequest, Config>(build::<ExportLogsServiceRequest>)
}

fn build<S: OttlSignal>(
    ctx: BuildContext,
    cfg: &Config,
    next: Arc<dyn Consumer<Batch<S>>>,
) -> anyhow::Result<Arc<dyn Processor<Batch<S>>>> {
    let groups = match S::ITEM_CONTEXT {
        "log" => &cfg.log_statements,
        _ => &cfg.trace_statements,
    };
    let program = Program::<S>::new(groups, cfg.error_mode)?;
    Ok(Arc::new(Transform::new(&ctx, program, next)))
}

/// The processor for one signal.
pub struct Transform<S: OttlSignal> {
    id: String,
    program: Program<S>,
    errors: Counter,
    refused: Counter,
    next: Arc<dyn Consumer<Batch<S>>>,
    _signal: PhantomData<S>,
}

impl<S: OttlSignal> Transform<S> {
    fn new(ctx: &BuildContext, program: Program<S>, next: Arc<dyn Consumer<Batch<S>>>) -> Self {
        let id = ctx.id_str();
        let t = &ctx.telemetry;
        let data_type = S::KIND.to_string();
        Self {
            errors: t.counter(
                "weft_processor_transform_errors",
                "OTTL evaluation errors in transform statements and conditions (each statement once per item)",
                &[("processor", &id), ("data_type", &data_type)],
            ),
            refused: t.counter(
                &format!("otelcol_processor_refused_{}", S::ITEM),
                &format!("Number of {} that were rejected by the next component in the pipeline", S::ITEM),
                &[("processor", &id)],
            ),
            id,
            program,
            next,
            _signal: PhantomData,
        }
    }
}

#[async_trait]
impl<S: OttlSignal> Consumer<Batch<S>> for Transform<S> {
    async fn consume(&self, mut data: Batch<S>) -> Result<(), ConsumeError> {
        if self.program.groups.is_empty() {
            return self.next.consume(data).await;
        }
        let mut errors = Errors::default();
        let outcome = self.program.run(data.request_mut(), &mut errors);
        if errors.count > 0 {
            self.errors.inc_by(errors.count);
            // Logged when a group in `ignore` mode failed; `silent` groups stay quiet
            // whatever the processor's own mode.
            if let Some(first) = &errors.first {
                tracing::warn!(
                    component = %self.id,
                    error = %first,
                    count = errors.count,
                    "transform statements failed on this batch and were skipped (error_mode: ignore)"
                );
            }
        }
        if let Err(e) = outcome {
            self.errors.inc();
            let items = data.item_count() as u64;
            self.refused.inc_by(items);
            tracing::debug!(component = %self.id, error = %e, "batch refused (error_mode: propagate)");
            return Err(ConsumeError::Permanent(format!(
                "processor {}: an OTTL statement failed: {e}",
                self.id
            )));
        }
        self.next.consume(data).await
    }
}

impl<S: OttlSignal> Component for Transform<S> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::testutil::{attr, config, logs, records, Recorder};
    use crate::telemetry::Telemetry;
    use weft_config::Kind;

    const SEED: &str = r#"
log_statements:
  - context: log
    conditions: ['IsString(body) and IsMatch(body, "^\\s*\\{")']
    statements:
      - set(body, ParseJSON(body))
      - set(trace_id.string, body["trace_id"]) where IsString(body["trace_id"])
      - set(time, Time(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%LZ")) where body["timestamp"] != nil
      - set(severity_text, body["level"])
  - context: resource
    statements:
      - set(attributes["k8s.namespace.name"], "shop")
  - 'set(attributes["seen"], true)'
"#;

    fn processor(
        yaml: &str,
        telemetry: &Telemetry,
    ) -> (
        Arc<dyn Processor<crate::pipeline::Logs>>,
        Arc<Recorder<crate::pipeline::Logs>>,
    ) {
        let (cfg, diags) = config::<Config>("processors::transform", yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let sink = Recorder::new();
        let ctx = BuildContext::standalone("transform", Kind::Processor).with_telemetry(telemetry);
        let p = build::<ExportLogsServiceRequest>(ctx, &cfg.unwrap(), sink.clone()).unwrap();
        (p, sink)
    }

    #[tokio::test]
    async fn json_lines_become_correlated_records_and_groups_run_in_their_contexts() {
        let t = Telemetry::new();
        let (p, sink) = processor(SEED, &t);
        let line = r#"{"timestamp":"2024-05-20T08:30:45.123Z","level":"error","trace_id":"4d1e4f8a2b3c4d5e6f7a8b9c0d1e2f3a","event":"x"}"#;
        p.consume(logs("user-api", &[line, "plain text"]))
            .await
            .unwrap();
        let batches = sink.batches.lock();
        let got = records(&batches);
        assert_eq!(
            hex::encode(&got[0].trace_id),
            "4d1e4f8a2b3c4d5e6f7a8b9c0d1e2f3a"
        );
        assert_eq!(got[0].time_unix_nano, 1_716_193_845_123_000_000);
        assert_eq!(got[0].severity_text, "error");
        // The plain line did not match the group's condition: untouched but for `seen`.
        assert!(got[1].trace_id.is_empty());
        assert_eq!(attr(&got[1], "seen"), "true");
        let request = batches[0].request();
        let resource = request.resource_logs[0].resource.as_ref().unwrap();
        assert_eq!(resource.attributes.len(), 2, "the resource group ran once");
    }

    #[tokio::test]
    async fn error_mode_decides_what_a_failing_statement_does() {
        let t = Telemetry::new();
        let yaml = |mode: &str| {
            format!("error_mode: {mode}\nlog_statements:\n  - set(body, ParseJSON(body))\n  - 'set(attributes[\"after\"], 1)'\n")
        };
        // propagate: the batch is refused as invalid, nothing goes on, it is counted.
        let (p, sink) = processor(&yaml("propagate"), &t);
        let err = p.consume(logs("s", &["not json"])).await.unwrap_err();
        assert!(
            matches!(&err, ConsumeError::Permanent(m) if m.contains("ParseJSON: the target is not JSON")),
            "{err:?}"
        );
        assert!(sink.batches.lock().is_empty());
        assert_eq!(
            t.counter_value(
                "otelcol_processor_refused_log_records",
                &[("processor", "transform")]
            ),
            1
        );
        // ignore: the failing statement is skipped, the next one runs, the record goes on.
        let t = Telemetry::new();
        let (p, sink) = processor(&yaml("ignore"), &t);
        p.consume(logs("s", &["not json", "{\"a\":1}"]))
            .await
            .unwrap();
        let got = records(&sink.batches.lock());
        assert_eq!(got.len(), 2);
        assert_eq!(attr(&got[0], "after"), "1");
        assert_eq!(
            t.counter_value(
                "weft_processor_transform_errors",
                &[("processor", "transform"), ("data_type", "logs")]
            ),
            1
        );
    }

    /// The issue's bad inputs, each the first record of a batch followed by a good one, in
    /// each error mode: `ignore` and `silent` count the error and pass both records on
    /// (the bad one unchanged), `propagate` refuses the batch as a whole, counted as refused.
    /// None panics and none loses a record without a count.
    #[tokio::test]
    async fn bad_input_follows_the_error_mode_is_counted_and_never_lost() {
        let not_json = "not json {".to_string();
        let ten_mb = format!("{{\"event\":\"{}\"", "x".repeat(10 * 1024 * 1024));
        let deep = format!("{}1{}", "{\"a\":".repeat(1000), "}".repeat(1000));
        let parse = "set(body, ParseJSON(body))";
        let cases: [(&str, &str, &str); 5] = [
            (&not_json, parse, "ParseJSON: the target is not JSON"),
            (&ten_mb, parse, "ParseJSON: the target is not JSON"),
            (&deep, parse, "recursion limit"),
            (
                "1",
                r#"set(attributes["x"], Int(body) / 0) where body == "1""#,
                "divide by 0",
            ),
            (
                "1",
                r#"set(attributes["x"], attributes["missing"]["key"] * 2) where body == "1""#,
                "arithmetic needs ints or doubles",
            ),
        ];
        for (body, statement, reason) in cases {
            let yaml = |mode: &str| {
                format!(
                    "error_mode: {mode}\nlog_statements:\n  - '{}'\n  - 'set(attributes[\"after\"], 1)'\n",
                    statement.replace('\'', "''")
                )
            };
            for mode in ["ignore", "silent"] {
                let t = Telemetry::new();
                let (p, sink) = processor(&yaml(mode), &t);
                p.consume(logs("s", &[body, "{}"])).await.unwrap();
                let got = records(&sink.batches.lock());
                assert_eq!(got.len(), 2, "{statement} ({mode}): both records go on");
                assert_eq!(
                    attr(&got[0], "x"),
                    "<absent>",
                    "{statement}: nothing written"
                );
                assert_eq!(attr(&got[0], "after"), "1", "{statement}: the next one ran");
                assert_eq!(
                    t.counter_value(
                        "weft_processor_transform_errors",
                        &[("processor", "transform"), ("data_type", "logs")]
                    ),
                    1,
                    "{statement} ({mode}): the error is counted"
                );
            }
            let t = Telemetry::new();
            let (p, sink) = processor(&yaml("propagate"), &t);
            let err = p.consume(logs("s", &[body, "{}"])).await.unwrap_err();
            assert!(
                matches!(&err, ConsumeError::Permanent(m) if m.contains(reason)),
                "{statement}: {err:?}"
            );
            assert!(sink.batches.lock().is_empty());
            assert_eq!(
                t.counter_value(
                    "otelcol_processor_refused_log_records",
                    &[("processor", "transform")]
                ),
                2,
                "{statement}: the refused batch is counted"
            );
        }
    }

    #[tokio::test]
    async fn a_batch_without_statements_for_its_signal_passes_still_encoded() {
        let t = Telemetry::new();
        let (p, sink) = processor("trace_statements: ['set(name, \"x\")']", &t);
        p.consume(logs("s", &["a"])).await.unwrap();
        assert!(sink.batches.lock()[0].is_encoded());
    }

    #[test]
    fn validation_names_the_statement_its_column_and_the_context() {
        let (_, diags) = config::<Config>(
            "processors::transform",
            r#"
log_statements:
  - context: log
    conditions: ['body ==']
    statements: ['set(body, ParseJSON(body))', 'set(severity, 1)']
  - 'sett(body, 1)'
  - context: spanevent
    statements: ['set(name, "x")']
trace_statements:
  - context: span
    statements: ['set(kind.string, "Server")']
"#,
        );
        assert_eq!(diags.len(), 5, "{diags:#?}");
        assert!(diags[0].starts_with("error: processors::transform::log_statements[0]::conditions[0]: column 8: expected a value"), "{}", diags[0]);
        assert!(diags[1].starts_with("error: processors::transform::log_statements[0]::statements[1]: column 5: unsupported path \"severity\" in the log context"), "{}", diags[1]);
        assert!(diags[2].starts_with("error: processors::transform::log_statements[1]: column 1: unsupported OTTL editor \"sett\""), "{}", diags[2]);
        assert_eq!(diags[3], "error: processors::transform::log_statements[2]::context: the spanevent context is not supported by Weft's transform: use span");
        assert!(
            diags[4].contains(
                "trace_statements[0]::statements[0]: column 5: set: the target cannot be written"
            ),
            "{}",
            diags[4]
        );
        let (_, diags) = config::<Config>(
            "processors::transform",
            "log_statements: [{context: log, statments: []}]",
        );
        assert!(diags[0].contains("unknown field"), "{diags:?}");
    }
}
