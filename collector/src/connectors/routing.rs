//! The `routing` connector, as the Collector's routingconnector: sends each record (log
//! record, span) to the pipelines of the first route of its `table` whose OTTL condition
//! holds, the rest to `default_pipelines`.
//!
//! ```yaml
//! connectors:
//!   routing:
//!     default_pipelines: [logs/infrastructure]
//!     table:
//!       - condition: IsMatch(attributes["service.name"], "^(order|payment|user)-")   # resource context
//!         pipelines: [logs/business]
//!       - context: log
//!         condition: attributes["weft.schema.errors"] != nil
//!         pipelines: [logs/dead-letter]
//! ```
//!
//! # Contract
//!
//! - **Per record, grouped per pipeline.** Routes are tried in order for every record: a
//!   `resource` route (the default context) once per resource, a `log` / `span` route on the
//!   record. With `match_once: true` (the default, and the only behaviour of the Collector
//!   since v0.120) the first route that holds wins; with `match_once: false` (the older
//!   Collector behaviour) every route that holds gets it. A record no route takes goes to
//!   `default_pipelines`. Each target pipeline then gets one batch with its records, their
//!   resources and scopes copied as needed; a batch whose records all go to one pipeline is
//!   handed on as it came (still encoded).
//! - **A batch is taken only once every pipeline it feeds took its part**; a refusal from any
//!   goes back to the sender (a retryable one wins over a permanent one), as [`Fanout`]
//!   does — the pipelines that took their part may see it again on a retry.
//! - **Nothing vanishes unseen.** A record no route takes and with no `default_pipelines`
//!   is dropped, as in the Collector, and counted in
//!   `weft_connector_routing_unrouted_<items>`; `weft validate` warns about such a table.
//! - **Errors follow `error_mode`**: `propagate` (the default) refuses the batch as invalid
//!   (INVALID_ARGUMENT / 400 to the client); `ignore` sends the record whose condition failed
//!   to `default_pipelines` and logs a warning once per batch; `silent` the same without the
//!   log. Every error is counted in `weft_connector_routing_errors`.
//! - A route feeds only the pipelines of its instance's signal: a connector listed in logs and
//!   traces pipelines is built once per signal, and a route naming only logs pipelines is
//!   skipped for spans. The service checks every named pipeline exists, lists the connector
//!   as a receiver, and is of a signal the route can feed
//!   ([`ComponentConfig::pipeline_references`]).
//!
//! [`Fanout`]: crate::pipeline::Fanout

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics, PipelineReference, SignalKind};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

use crate::component::{
    BuildContext, Component, ConnectorFactory, ConnectorTargets, Processor, Stability,
};
use crate::ottl::contexts::{Log, Resource, Span};
use crate::ottl::items::{ItemData, OttlSignal};
use crate::ottl::{Condition, Context, ErrorMode, EvalError};
use crate::pipeline::{Batch, ConsumeError, Consumer, Payload};

/// `connectors::routing`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The routes, tried in order.
    pub table: Vec<Route>,
    /// Where records no route takes go (none: they are dropped and counted).
    pub default_pipelines: Vec<String>,
    /// What an evaluation error does: `propagate` (default), `ignore`, `silent`.
    pub error_mode: ErrorMode,
    /// `true` (default): the first route that holds takes the record. `false`: every route
    /// that holds gets it (the Collector before v0.116).
    pub match_once: Option<bool>,
}

/// One entry of `table`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// `resource` (default), `log` or `span`.
    pub context: Option<String>,
    /// An OTTL condition.
    pub condition: Option<String>,
    /// The same as a statement: `route() where <condition>`.
    pub statement: Option<String>,
    /// The pipelines the records it takes go to.
    pub pipelines: Vec<String>,
}

/// Where a route's condition is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RouteContext {
    Resource,
    Log,
    Span,
}

impl RouteContext {
    fn parse(name: Option<&str>) -> Result<Self, String> {
        match name {
            None | Some("resource") => Ok(Self::Resource),
            Some("log") => Ok(Self::Log),
            Some("span") => Ok(Self::Span),
            Some("request") => Err(
                "the request context (routing by request headers) is not supported by Weft: route by resource attributes, or by record attributes in the log or span context"
                    .to_string(),
            ),
            Some(c @ ("metric" | "datapoint")) => Err(format!(
                "the {c} context routes metrics, which Weft's routing connector does not take yet: it routes log records and spans (route metrics with separate pipelines per receiver)"
            )),
            Some(other) => Err(format!(
                "unknown context {other:?}: expected resource, log or span"
            )),
        }
    }

    /// The signals a route in this context can feed.
    fn signals(self) -> Option<Vec<SignalKind>> {
        match self {
            Self::Resource => None,
            Self::Log => Some(vec![SignalKind::Logs]),
            Self::Span => Some(vec![SignalKind::Traces]),
        }
    }

    /// The name of the item context this route reads, if any.
    fn item(self) -> Option<&'static str> {
        match self {
            Self::Resource => None,
            Self::Log => Some(<Log as Context>::NAME),
            Self::Span => Some(<Span as Context>::NAME),
        }
    }
}

impl Route {
    /// The route's OTTL text and whether it is a statement; `Err` when it has none or both.
    fn source(&self) -> Result<(&str, bool), &'static str> {
        match (&self.condition, &self.statement) {
            (Some(c), None) => Ok((c, false)),
            (None, Some(s)) => Ok((s, true)),
            (None, None) => Err("a route needs a condition (or a statement)"),
            (Some(_), Some(_)) => Err("a route has either a condition or a statement, not both"),
        }
    }
}

/// Compiles a route's text for context `C`.
fn compile<C: Context>(src: &str, statement: bool) -> Result<Condition<C>, crate::ottl::Error> {
    if statement {
        Condition::from_route_statement(src)
    } else {
        Condition::new(src)
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.table.is_empty() {
            diags.error(
                &path.key("table"),
                "the routing table is empty: add at least one route {condition, pipelines}",
            );
        }
        for (i, route) in self.table.iter().enumerate() {
            let at = path.key("table").index(i);
            if route.pipelines.is_empty() {
                diags.error(&at.key("pipelines"), "a route needs at least one pipeline");
            }
            let context = match RouteContext::parse(route.context.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    diags.error(&at.key("context"), e);
                    continue;
                }
            };
            let (src, statement) = match route.source() {
                Ok(s) => s,
                Err(e) => {
                    diags.error(&at, e);
                    continue;
                }
            };
            let key = if statement { "statement" } else { "condition" };
            let compiled = match context {
                RouteContext::Resource => compile::<Resource>(src, statement).map(|_| ()),
                RouteContext::Log => compile::<Log>(src, statement).map(|_| ()),
                RouteContext::Span => compile::<Span>(src, statement).map(|_| ()),
            };
            if let Err(e) = compiled {
                diags.error(&at.key(key), e.to_string());
            }
        }
        if self.default_pipelines.is_empty() && !self.table.is_empty() {
            diags.warning(
                &path.key("default_pipelines"),
                "no default_pipelines: records no route takes are dropped (counted in weft_connector_routing_unrouted_*)",
            );
        }
    }

    fn pipeline_references(&self, path: &ConfigPath) -> Option<Vec<PipelineReference>> {
        let mut refs = Vec::new();
        for (i, route) in self.table.iter().enumerate() {
            let signals = RouteContext::parse(route.context.as_deref())
                .ok()
                .and_then(RouteContext::signals);
            for (j, id) in route.pipelines.iter().enumerate() {
                refs.push(PipelineReference {
                    path: path.key("table").index(i).key("pipelines").index(j),
                    id: id.clone(),
                    signals: signals.clone(),
                });
            }
        }
        for (j, id) in self.default_pipelines.iter().enumerate() {
            refs.push(PipelineReference {
                path: path.key("default_pipelines").index(j),
                id: id.clone(),
                signals: None,
            });
        }
        Some(refs)
    }
}

pub fn factory() -> ConnectorFactory {
    ConnectorFactory::new::<Config>(
        "routing",
        Stability::Alpha,
        "sends each record to the pipelines of the first route whose OTTL condition holds",
    )
    .connect::<ExportTraceServiceRequest, ExportTraceServiceRequest, Config>(
        build::<ExportTraceServiceRequest>,
    )
    .connect::<ExportLogsServiceRequest, ExportLogsServiceRequest, Config>(
        build::<ExportLogsServiceRequest>,
    )
}

/// A route's condition, compiled for one signal.
enum Cond<S: OttlSignal> {
    Resource(Condition<Resource>),
    Item(Condition<S::Item>),
}

/// A route as built for one signal: its condition and the outputs (indexes into the
/// connector's targets) it sends to.
struct Compiled<S: OttlSignal> {
    cond: Cond<S>,
    outputs: Vec<usize>,
}

fn build<S: OttlSignal>(
    ctx: BuildContext,
    cfg: &Config,
    targets: ConnectorTargets<Batch<S>>,
) -> anyhow::Result<Arc<dyn Processor<Batch<S>>>> {
    let index_of = |names: &[String]| -> Vec<usize> {
        let mut out: Vec<usize> = names
            .iter()
            .filter_map(|n| targets.iter().position(|(pid, _)| pid.to_string() == *n))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    };
    let mut routes = Vec::new();
    for (i, route) in cfg.table.iter().enumerate() {
        let context = RouteContext::parse(route.context.as_deref())
            .map_err(|e| anyhow::anyhow!("table[{i}]: {e}"))?;
        let outputs = index_of(&route.pipelines);
        // A route naming no pipeline of this signal is no route for it.
        if outputs.is_empty() {
            continue;
        }
        if context.item().is_some_and(|item| item != S::ITEM_CONTEXT) {
            continue;
        }
        let (src, statement) = route
            .source()
            .map_err(|e| anyhow::anyhow!("table[{i}]: {e}"))?;
        let cond = match context {
            RouteContext::Resource => Cond::Resource(compile::<Resource>(src, statement)?),
            _ => Cond::Item(compile::<S::Item>(src, statement)?),
        };
        routes.push(Compiled { cond, outputs });
    }
    let id = ctx.id_str();
    let t = &ctx.telemetry;
    let routed = targets
        .iter()
        .map(|(pid, _)| {
            t.counter(
                &format!("weft_connector_routing_routed_{}", S::ITEM),
                "Items the routing connector sent to each pipeline",
                &[("connector", &id), ("pipeline", &pid.to_string())],
            )
        })
        .collect();
    Ok(Arc::new(Routing {
        default: index_of(&cfg.default_pipelines),
        routes,
        match_once: cfg.match_once.unwrap_or(true),
        mode: cfg.error_mode,
        errors: t.counter(
            "weft_connector_routing_errors",
            "OTTL evaluation errors in routing conditions",
            &[("connector", &id), ("data_type", &S::KIND.to_string())],
        ),
        unrouted: t.counter(
            &format!("weft_connector_routing_unrouted_{}", S::ITEM),
            "Items no route took and that had no default pipeline: dropped",
            &[("connector", &id)],
        ),
        routed,
        id,
        targets,
    }))
}

/// The connector for one signal.
pub struct Routing<S: OttlSignal> {
    id: String,
    routes: Vec<Compiled<S>>,
    default: Vec<usize>,
    match_once: bool,
    mode: ErrorMode,
    targets: ConnectorTargets<Batch<S>>,
    errors: Counter,
    unrouted: Counter,
    routed: Vec<Counter>,
}

/// Where each item goes: an index into `sets` per item, and the distinct output sets.
struct Assignment {
    per_item: Vec<u32>,
    sets: Vec<Vec<usize>>,
}

/// Errors `ignore` / `silent` let through in one batch.
#[derive(Default)]
struct Ignored {
    count: u64,
    first: Option<EvalError>,
}

impl<S: OttlSignal> Routing<S> {
    /// The outputs of every item of `request`, or the first error with `propagate`.
    fn assign(&self, request: &S, ignored: &mut Ignored) -> Result<Assignment, EvalError> {
        let mut interned: HashMap<Vec<usize>, u32> = HashMap::new();
        let mut sets: Vec<Vec<usize>> = Vec::new();
        let mut intern = |set: Vec<usize>| -> u32 {
            *interned.entry(set.clone()).or_insert_with(|| {
                sets.push(set);
                (sets.len() - 1) as u32
            })
        };
        let items: Vec<ItemData<'_, S>> = request.item_data();
        let mut per_item = Vec::with_capacity(items.len());
        let mut next_item = 0;
        for (resource, count) in request.resource_data() {
            // Resource routes are evaluated once per resource, when first needed.
            let mut resource_results: Vec<Option<Result<bool, EvalError>>> =
                (0..self.routes.len()).map(|_| None).collect();
            for item in &items[next_item..next_item + count] {
                let mut outputs: Vec<usize> = Vec::new();
                let mut matched = false;
                let mut failed = false;
                for (r, route) in self.routes.iter().enumerate() {
                    let result = match &route.cond {
                        Cond::Resource(c) => resource_results[r]
                            .get_or_insert_with(|| c.matches(&resource))
                            .clone(),
                        Cond::Item(c) => c.matches(item),
                    };
                    match result {
                        Ok(true) => {
                            matched = true;
                            outputs.extend_from_slice(&route.outputs);
                            if self.match_once {
                                break;
                            }
                        }
                        Ok(false) => {}
                        Err(e) if self.mode == ErrorMode::Propagate => return Err(e),
                        Err(e) => {
                            ignored.count += 1;
                            ignored.first.get_or_insert(e);
                            failed = true;
                            break;
                        }
                    }
                }
                if failed || !matched {
                    outputs.extend_from_slice(&self.default);
                }
                outputs.sort_unstable();
                outputs.dedup();
                per_item.push(intern(outputs));
            }
            next_item += count;
        }
        Ok(Assignment { per_item, sets })
    }
}

#[async_trait]
impl<S: OttlSignal> Consumer<Batch<S>> for Routing<S> {
    async fn consume(&self, data: Batch<S>) -> Result<(), ConsumeError> {
        let mut ignored = Ignored::default();
        let assigned = {
            let request = data.request();
            self.assign(&request, &mut ignored)
        };
        if ignored.count > 0 {
            self.errors.inc_by(ignored.count);
            if self.mode == ErrorMode::Ignore {
                if let Some(e) = &ignored.first {
                    tracing::warn!(component = %self.id, error = %e, count = ignored.count,
                        "routing conditions failed on this batch; those records went to default_pipelines (error_mode: ignore)");
                }
            }
        }
        let assignment = match assigned {
            Ok(a) => a,
            Err(e) => {
                self.errors.inc();
                return Err(ConsumeError::Permanent(format!(
                    "connector {}: an OTTL routing condition failed: {e}",
                    self.id
                )));
            }
        };
        let Assignment { per_item, sets } = assignment;
        let unrouted = sets.iter().position(Vec::is_empty).map_or(0, |empty| {
            per_item.iter().filter(|s| **s as usize == empty).count()
        });
        if unrouted > 0 {
            self.unrouted.inc_by(unrouted as u64);
        }
        // Everything to one pipeline: hand the batch on as it came.
        if let [only] = sets.as_slice() {
            return match only.as_slice() {
                [] => Ok(()),
                [target] => {
                    self.routed[*target].inc_by(per_item.len() as u64);
                    self.targets[*target].1.consume(data).await
                }
                _ => self.send(data.into_request(), &per_item, &sets).await,
            };
        }
        self.send(data.into_request(), &per_item, &sets).await
    }
}

impl<S: OttlSignal> Routing<S> {
    /// Splits `request` per output and hands each part to its pipeline, in order.
    async fn send(
        &self,
        request: S,
        per_item: &[u32],
        sets: &[Vec<usize>],
    ) -> Result<(), ConsumeError> {
        let parts = request.split(self.targets.len(), &mut |i| {
            per_item
                .get(i)
                .and_then(|s| sets.get(*s as usize))
                .cloned()
                .unwrap_or_default()
        });
        let mut first_error: Option<ConsumeError> = None;
        for (t, part) in parts.into_iter().enumerate() {
            let batch = Batch::from_request(part);
            let n = batch.item_count();
            if n == 0 {
                continue;
            }
            self.routed[t].inc_by(n as u64);
            if let Err(e) = self.targets[t].1.consume(batch).await {
                // A retryable refusal wins over a permanent error: the client must retry.
                match (&first_error, &e) {
                    (None, _) => first_error = Some(e),
                    (Some(ConsumeError::Permanent(_)), ConsumeError::Refused { .. }) => {
                        first_error = Some(e)
                    }
                    _ => {}
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl<S: OttlSignal> Component for Routing<S> {}

#[cfg(test)]
mod tests;
