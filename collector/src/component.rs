//! What every component is, and how the registry makes one from its config.
//!
//! A component type is registered once, in [`crate::registry`], as a factory: its YAML type
//! name, its stability, the signals it handles, its config type (decoded strictly by
//! [`weft_config::decode_component`]) and how to build it. Adding a component means writing
//! its module and adding one line to the registry.
//!
//! Factories hide their types from the service: a config is an [`AnyConfig`], and what a
//! built component consumes or feeds is a [`Consumers`] (one typed consumer per signal). The
//! typed code — `Arc<dyn Consumer<Traces>>` and the like — lives in the closures a factory
//! makes when it is registered, where the signal is a type parameter, so the service never
//! names a signal or a component type. It asks the factory what a configured component is
//! ([`FactoryInfo::extension_references`], [`FactoryInfo::holds_data`],
//! [`FactoryInfo::pipeline_references`], [`FactoryInfo::expects_connector_after`]) instead.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use serde_yaml::Value;
use weft_config::{
    decode_component, ComponentConfig, ComponentId, ConfigPath, DataHolding, Diagnostics,
    ExtensionReference, Kind, PipelineId, PipelineReference, SignalKind,
};

use crate::health::Health;
use crate::pipeline::{
    all_signals, for_each_signal, Batch, Consumer, Consumers, Payload, Signal, SignalMap,
    SignalVisitor,
};
use crate::telemetry::Telemetry;

/// How far along a component is, shown by `weft components` (the Collector's levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stability {
    Development,
    Alpha,
    Beta,
    Stable,
}

impl fmt::Display for Stability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stability::Development => "development",
            Stability::Alpha => "alpha",
            Stability::Beta => "beta",
            Stability::Stable => "stable",
        })
    }
}

/// The lifecycle of a running component.
///
/// `start` runs once, in the order extensions → exporters → connectors and processors (each
/// pipeline downstream first) → receivers, so data only flows once everything downstream is
/// ready. `shutdown` runs in the reverse order: receivers stop accepting, processors flush
/// what they hold, exporters drain their queues. Each must return by `deadline`; what an
/// exporter cannot deliver by then it logs and counts.
#[async_trait]
pub trait Component: Send + Sync {
    async fn start(&self) -> anyhow::Result<()> {
        Ok(())
    }

    async fn shutdown(&self, deadline: Instant) -> anyhow::Result<()> {
        let _ = deadline;
        Ok(())
    }
}

/// A processor is a consumer (for what comes in) that is also a component (to flush).
pub trait Processor<T: Payload>: Consumer<T> + Component {}
impl<T: Payload, P: Consumer<T> + Component> Processor<T> for P {}

/// What a component gets when it is built: who it is and where its telemetry goes.
#[derive(Clone)]
pub struct BuildContext {
    pub id: ComponentId,
    pub kind: Kind,
    pub telemetry: Telemetry,
    /// The health of the running service, shared with the `health_check` extension.
    pub health: Health,
    /// Instances shared by every pipeline that lists the same component id.
    pub shared: SharedInstances,
}

impl BuildContext {
    /// A context for a component built on its own (tests, benches): fresh telemetry, health
    /// and shared instances.
    pub fn standalone(id: &str, kind: Kind) -> Self {
        Self {
            id: id.parse().expect("a valid component id"),
            kind,
            telemetry: Telemetry::new(),
            health: Health::default(),
            shared: SharedInstances::default(),
        }
    }

    /// With `telemetry` (a test that reads the component's metrics passes its own).
    pub fn with_telemetry(mut self, telemetry: &Telemetry) -> Self {
        self.telemetry = telemetry.clone();
        self
    }

    /// The id as it appears in metric labels and logs, e.g. `otlp/backend`.
    pub fn id_str(&self) -> String {
        self.id.to_string()
    }

    /// The `tracing` span of this component: every log line it writes while inside carries
    /// `component` (its id, e.g. `otlp/in`) and `kind`.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!("component", component = %self.id, kind = self.kind.singular())
    }
}

/// One instance per component id across pipelines, for components whose state must be
/// shared: the `tail_sampling` processor listed in a traces and a logs pipeline is one
/// window. Processors are otherwise built once per pipeline, as in the Collector.
///
/// It also carries what the service tells every component about itself: the configured
/// [`ServiceGraph`].
#[derive(Clone, Default)]
pub struct SharedInstances {
    inner: Arc<parking_lot::Mutex<HashMap<ComponentId, Arc<dyn Any + Send + Sync>>>>,
    graph: Arc<OnceLock<Arc<ServiceGraph>>>,
}

/// The configured pipelines, as the service runs them: component ids only, no settings
/// (a view of the graph shows nothing a configuration may hide, such as credentials).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceGraph {
    pub pipelines: Vec<PipelineGraph>,
    /// `service::extensions`, in order.
    pub extensions: Vec<ComponentId>,
    /// Ids in pipelines' `receivers` / `exporters` lists that are connectors.
    pub connectors: Vec<ComponentId>,
}

/// One pipeline of a [`ServiceGraph`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineGraph {
    pub id: PipelineId,
    pub receivers: Vec<ComponentId>,
    pub processors: Vec<ComponentId>,
    pub exporters: Vec<ComponentId>,
}

impl SharedInstances {
    /// Every instance of type `T`, with its id, in no particular order: how a component
    /// finds the instances it serves without knowing their ids (the status page finds every
    /// `tail_sampling` window).
    pub fn all<T: Any + Send + Sync>(&self) -> Vec<(ComponentId, Arc<T>)> {
        self.inner
            .lock()
            .iter()
            .filter_map(|(id, any)| Some((id.clone(), any.clone().downcast::<T>().ok()?)))
            .collect()
    }

    /// Set once by the service before it builds anything.
    pub fn set_service_graph(&self, graph: ServiceGraph) {
        let _ = self.graph.set(Arc::new(graph));
    }

    /// The configured pipelines (`None` for a component built outside a service).
    pub fn service_graph(&self) -> Option<Arc<ServiceGraph>> {
        self.graph.get().cloned()
    }

    /// The instance for `id`, if one was made (and is a `T`).
    pub fn get<T: Any + Send + Sync>(&self, id: &ComponentId) -> Option<Arc<T>> {
        self.inner.lock().get(id).cloned()?.downcast::<T>().ok()
    }

    /// The instance for `id`, created by `make` on first use.
    pub fn get_or_try_insert<T: Any + Send + Sync>(
        &self,
        id: &ComponentId,
        make: impl FnOnce() -> anyhow::Result<Arc<T>>,
    ) -> anyhow::Result<Arc<T>> {
        let mut map = self.inner.lock();
        if let Some(existing) = map.get(id) {
            return existing
                .clone()
                .downcast::<T>()
                .map_err(|_| anyhow::anyhow!("shared instance {id} has another type"));
        }
        let made = make()?;
        map.insert(id.clone(), made.clone());
        Ok(made)
    }
}

/// An exporter as built: its consumers for the signals it was asked for, and its lifecycle.
pub struct BuiltExporter {
    pub consumers: Consumers,
    pub component: Arc<dyn Component>,
}

/// A processor or connector as built for one pipeline: the consumer data enters by (for the
/// pipeline's signal), and its lifecycle.
pub struct BuiltStage {
    pub entry: Consumers,
    pub component: Arc<dyn Component>,
}

pub type AnyConfig = Arc<dyn Any + Send + Sync>;

fn typed<C: ComponentConfig>(config: &AnyConfig) -> &C {
    config
        .downcast_ref::<C>()
        .expect("a config is only ever built by the factory that decoded it")
}

/// What all factories share: names, and how the config type decodes and describes itself.
pub struct FactoryInfo {
    pub type_name: &'static str,
    pub stability: Stability,
    pub description: &'static str,
    /// The signals of the pipelines it may be listed in. For a connector: the signals of
    /// the pipelines it may export from (see [`ConnectorFactory::connects`]).
    pub signals: Vec<SignalKind>,
    config: ConfigVTable,
}

/// The typed config's functions, reached through an [`AnyConfig`].
struct ConfigVTable {
    type_id: TypeId,
    decode: fn(&Value, &ConfigPath, &mut Diagnostics) -> Option<AnyConfig>,
    extension_references: fn(&AnyConfig, &ConfigPath) -> Vec<ExtensionReference>,
    holds_data: fn(&AnyConfig) -> DataHolding,
    validate_signal: fn(&AnyConfig, SignalKind, &ConfigPath, &mut Diagnostics),
    pipeline_references: fn(&AnyConfig, &ConfigPath) -> Option<Vec<PipelineReference>>,
    expects_connector_after: fn(&AnyConfig) -> Option<String>,
}

impl ConfigVTable {
    fn of<C: ComponentConfig>() -> Self {
        Self {
            type_id: TypeId::of::<C>(),
            decode: |value, path, diags| {
                decode_component::<C>(value, path, diags).map(|c| Arc::new(c) as AnyConfig)
            },
            extension_references: |cfg, path| typed::<C>(cfg).extension_references(path),
            holds_data: |cfg| typed::<C>(cfg).holds_data(),
            validate_signal: |cfg, signal, path, diags| {
                typed::<C>(cfg).validate_signal(signal, path, diags)
            },
            pipeline_references: |cfg, path| typed::<C>(cfg).pipeline_references(path),
            expects_connector_after: |cfg| typed::<C>(cfg).expects_connector_after(),
        }
    }
}

impl FactoryInfo {
    fn new<C: ComponentConfig>(
        type_name: &'static str,
        stability: Stability,
        description: &'static str,
        signals: Vec<SignalKind>,
    ) -> Self {
        Self {
            type_name,
            stability,
            description,
            signals,
            config: ConfigVTable::of::<C>(),
        }
    }

    pub fn decode(
        &self,
        value: &Value,
        path: &ConfigPath,
        diags: &mut Diagnostics,
    ) -> Option<AnyConfig> {
        (self.config.decode)(value, path, diags)
    }

    /// The extensions a decoded config names, each with the path of its key (`path` is the
    /// component's section).
    pub fn extension_references(
        &self,
        cfg: &AnyConfig,
        path: &ConfigPath,
    ) -> Vec<ExtensionReference> {
        (self.config.extension_references)(cfg, path)
    }

    /// Whether the configured component can lose acknowledged data in a crash.
    pub fn holds_data(&self, cfg: &AnyConfig) -> DataHolding {
        (self.config.holds_data)(cfg)
    }

    /// The problems of the configured component in a pipeline of `signal` (see
    /// [`ComponentConfig::validate_signal`]; `path` is the component's section).
    pub fn validate_signal(
        &self,
        cfg: &AnyConfig,
        signal: SignalKind,
        path: &ConfigPath,
        diags: &mut Diagnostics,
    ) {
        (self.config.validate_signal)(cfg, signal, path, diags)
    }

    /// The pipelines a decoded connector config sends to (see
    /// [`ComponentConfig::pipeline_references`]); `None` when it feeds every pipeline that
    /// lists it.
    pub fn pipeline_references(
        &self,
        cfg: &AnyConfig,
        path: &ConfigPath,
    ) -> Option<Vec<PipelineReference>> {
        (self.config.pipeline_references)(cfg, path)
    }

    /// Why the configured processor's output is meant for a connector, if it is.
    pub fn expects_connector_after(&self, cfg: &AnyConfig) -> Option<String> {
        (self.config.expects_connector_after)(cfg)
    }

    /// Panics when a build function is registered for another config type than the one
    /// decoded: a programming error, caught by the registry's tests.
    fn check_config<C: ComponentConfig>(&self) {
        assert_eq!(
            self.config.type_id,
            TypeId::of::<C>(),
            "component {}: a build function takes another config type than the factory decodes",
            self.type_name
        );
    }
}

type ReceiverBuildFn = Box<
    dyn Fn(BuildContext, &AnyConfig, Consumers) -> anyhow::Result<Arc<dyn Component>> + Send + Sync,
>;

/// A receiver type. A receiver id is built once and feeds every pipeline that lists it:
/// `Consumers` holds one entry point per signal.
pub struct ReceiverFactory {
    pub info: FactoryInfo,
    build: ReceiverBuildFn,
}

impl ReceiverFactory {
    pub fn new<C: ComponentConfig>(
        type_name: &'static str,
        stability: Stability,
        signals: Vec<SignalKind>,
        description: &'static str,
        build: impl Fn(BuildContext, &C, Consumers) -> anyhow::Result<Arc<dyn Component>>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self {
            info: FactoryInfo::new::<C>(type_name, stability, description, signals),
            build: Box::new(move |ctx, cfg, next| build(ctx, typed::<C>(cfg), next)),
        }
    }

    pub fn build(
        &self,
        ctx: BuildContext,
        cfg: &AnyConfig,
        next: Consumers,
    ) -> anyhow::Result<Arc<dyn Component>> {
        (self.build)(ctx, cfg, next)
    }
}

/// The typed build function a processor module provides for one signal.
pub type BuildProcessor<C, T> =
    fn(BuildContext, &C, Arc<dyn Consumer<T>>) -> anyhow::Result<Arc<dyn Processor<T>>>;

/// A processor that works the same on every signal (`batch`, `memory_limiter`): one build
/// function generic over the batch type.
pub trait GenericProcessor<C> {
    fn build<T: Payload>(
        ctx: BuildContext,
        cfg: &C,
        next: Arc<dyn Consumer<T>>,
    ) -> anyhow::Result<Arc<dyn Processor<T>>>;
}

/// A stage's build function with its signal erased: takes the next stage's consumer, gives
/// the stage's own.
type StageBuildFn =
    Box<dyn Fn(BuildContext, &AnyConfig, Consumers) -> anyhow::Result<BuiltStage> + Send + Sync>;

/// A processor build function for one batch type, its config erased.
type TypedBuildFn<T> = Arc<
    dyn Fn(BuildContext, &AnyConfig, Arc<dyn Consumer<T>>) -> anyhow::Result<Arc<dyn Processor<T>>>
        + Send
        + Sync,
>;

/// A processor type. Processors are built once per pipeline that lists them; the signals
/// a processor takes are those it registered a build function for.
pub struct ProcessorFactory {
    pub info: FactoryInfo,
    builds: HashMap<SignalKind, StageBuildFn>,
    /// The same functions, typed: a [`TypedBuildFn`] per signal.
    typed: SignalMap,
}

impl ProcessorFactory {
    /// A processor type with no signal yet: add them with [`ProcessorFactory::signal`] or
    /// [`ProcessorFactory::every_signal`].
    pub fn new<C: ComponentConfig>(
        type_name: &'static str,
        stability: Stability,
        description: &'static str,
    ) -> Self {
        Self {
            info: FactoryInfo::new::<C>(type_name, stability, description, Vec::new()),
            builds: HashMap::new(),
            typed: SignalMap::default(),
        }
    }

    /// Takes signal `S`, built by `build`.
    pub fn signal<S: Signal, C: ComponentConfig>(
        mut self,
        build: BuildProcessor<C, Batch<S>>,
    ) -> Self {
        self.info.check_config::<C>();
        self.info.signals.push(S::KIND);
        let typed: TypedBuildFn<Batch<S>> =
            Arc::new(move |ctx, cfg, next| build(ctx, self::typed::<C>(cfg), next));
        let erased = typed.clone();
        self.builds.insert(
            S::KIND,
            Box::new(move |ctx, cfg, next| {
                let next = next
                    .get::<Batch<S>>()
                    .ok_or_else(|| anyhow::anyhow!("no {} consumer after {}", S::KIND, ctx.id))?;
                let processor = erased(ctx, cfg, next)?;
                Ok(BuiltStage {
                    entry: Consumers::default().with::<Batch<S>>(processor.clone()),
                    component: processor,
                })
            }),
        );
        self.typed.insert(S::KIND, typed);
        self
    }

    /// Takes every signal, each built by `B::build`.
    pub fn every_signal<C: ComponentConfig, B: GenericProcessor<C>>(self) -> Self {
        struct Add<C, B>(Option<ProcessorFactory>, std::marker::PhantomData<(C, B)>);
        impl<C: ComponentConfig, B: GenericProcessor<C>> SignalVisitor for Add<C, B> {
            fn visit<S: Signal>(&mut self) {
                let factory = self.0.take().expect("put back after each signal");
                self.0 = Some(factory.signal::<S, C>(B::build::<Batch<S>>));
            }
        }
        let mut add = Add::<C, B>(Some(self), std::marker::PhantomData);
        for_each_signal(&mut add);
        add.0.expect("put back after each signal")
    }

    /// Builds the processor for batches of type `T`, in front of `next`: for callers that
    /// know the signal (tests, benches).
    pub fn build_typed<T: Payload>(
        &self,
        ctx: BuildContext,
        cfg: &AnyConfig,
        next: Arc<dyn Consumer<T>>,
    ) -> anyhow::Result<Arc<dyn Processor<T>>> {
        let build = self
            .typed
            .get::<TypedBuildFn<T>>(T::SIGNAL)
            .ok_or_else(|| anyhow::anyhow!("processor {} does not take {}", ctx.id, T::SIGNAL))?;
        build(ctx, cfg, next)
    }

    /// Builds the processor for a pipeline of `signal`, in front of `next`.
    pub fn build(
        &self,
        signal: SignalKind,
        ctx: BuildContext,
        cfg: &AnyConfig,
        next: Consumers,
    ) -> anyhow::Result<BuiltStage> {
        let build = self.builds.get(&signal).ok_or_else(|| {
            anyhow::anyhow!(
                "processor {} does not take {signal} (config validation should have said so)",
                ctx.id
            )
        })?;
        build(ctx, cfg, next)
    }
}

type ExporterBuildFn = Box<
    dyn Fn(BuildContext, &AnyConfig, &[SignalKind]) -> anyhow::Result<BuiltExporter> + Send + Sync,
>;

/// An exporter type. An exporter id is built once, however many pipelines list it; `signals`
/// says which consumers the pipelines need from it.
pub struct ExporterFactory {
    pub info: FactoryInfo,
    build: ExporterBuildFn,
}

impl ExporterFactory {
    pub fn new<C: ComponentConfig>(
        type_name: &'static str,
        stability: Stability,
        signals: Vec<SignalKind>,
        description: &'static str,
        build: impl Fn(BuildContext, &C, &[SignalKind]) -> anyhow::Result<BuiltExporter>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self {
            info: FactoryInfo::new::<C>(type_name, stability, description, signals),
            build: Box::new(move |ctx, cfg, signals| build(ctx, typed::<C>(cfg), signals)),
        }
    }

    pub fn build(
        &self,
        ctx: BuildContext,
        cfg: &AnyConfig,
        signals: &[SignalKind],
    ) -> anyhow::Result<BuiltExporter> {
        (self.build)(ctx, cfg, signals)
    }
}

/// The pipelines a connector feeds, each with its entry point (of the connector's output
/// signal), in configuration order.
pub type ConnectorTargets<T> = Vec<(PipelineId, Arc<dyn Consumer<T>>)>;

/// The typed build function a connector module provides for one pair of signals: data of
/// `From` comes in (the connector is an exporter of those pipelines) and goes out as `To`
/// to `targets` (the pipelines that list the connector as a receiver).
pub type BuildConnector<C, From, To> =
    fn(BuildContext, &C, ConnectorTargets<To>) -> anyhow::Result<Arc<dyn Processor<From>>>;

/// A connector that links pipelines of the same signal, whatever it is (`forward`).
pub trait GenericConnector<C> {
    fn build<T: Payload>(
        ctx: BuildContext,
        cfg: &C,
        targets: ConnectorTargets<T>,
    ) -> anyhow::Result<Arc<dyn Processor<T>>>;
}

/// A connector's build function with its signals erased: takes the target pipelines'
/// consumers (of the output signal), gives its own (of the input signal).
type ConnectorBuildFn = Box<
    dyn Fn(BuildContext, &AnyConfig, Vec<(PipelineId, Consumers)>) -> anyhow::Result<BuiltStage>
        + Send
        + Sync,
>;

/// A connector type (the Collector's `connectors:`): listed under one pipeline's exporters
/// and another's receivers. One instance is built per (input signal, output signal) pair the
/// configuration uses, shared by every pipeline that exports to it.
pub struct ConnectorFactory {
    pub info: FactoryInfo,
    builds: HashMap<(SignalKind, SignalKind), ConnectorBuildFn>,
}

impl ConnectorFactory {
    pub fn new<C: ComponentConfig>(
        type_name: &'static str,
        stability: Stability,
        description: &'static str,
    ) -> Self {
        Self {
            info: FactoryInfo::new::<C>(type_name, stability, description, Vec::new()),
            builds: HashMap::new(),
        }
    }

    /// Connects pipelines of `From` to pipelines of `To`, built by `build`.
    pub fn connect<From: Signal, To: Signal, C: ComponentConfig>(
        mut self,
        build: BuildConnector<C, Batch<From>, Batch<To>>,
    ) -> Self {
        self.info.check_config::<C>();
        if !self.info.signals.contains(&From::KIND) {
            self.info.signals.push(From::KIND);
        }
        self.builds.insert(
            (From::KIND, To::KIND),
            Box::new(move |ctx, cfg, targets| {
                let targets = targets
                    .into_iter()
                    .map(|(pipeline, consumers)| {
                        let consumer = consumers.get::<Batch<To>>().ok_or_else(|| {
                            anyhow::anyhow!("pipeline {pipeline} has no {} entry", To::KIND)
                        })?;
                        Ok((pipeline, consumer))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let connector = build(ctx, typed::<C>(cfg), targets)?;
                Ok(BuiltStage {
                    entry: Consumers::default().with::<Batch<From>>(connector.clone()),
                    component: connector,
                })
            }),
        );
        self
    }

    /// Connects pipelines of each signal to pipelines of the same signal, with `B::build`.
    pub fn every_signal<C: ComponentConfig, B: GenericConnector<C>>(self) -> Self {
        struct Add<C, B>(Option<ConnectorFactory>, std::marker::PhantomData<(C, B)>);
        impl<C: ComponentConfig, B: GenericConnector<C>> SignalVisitor for Add<C, B> {
            fn visit<S: Signal>(&mut self) {
                let factory = self.0.take().expect("put back after each signal");
                self.0 = Some(factory.connect::<S, S, C>(B::build::<Batch<S>>));
            }
        }
        let mut add = Add::<C, B>(Some(self), std::marker::PhantomData);
        for_each_signal(&mut add);
        add.0.expect("put back after each signal")
    }

    /// Whether it can take `from` data and feed `to` pipelines.
    pub fn connects(&self, from: SignalKind, to: SignalKind) -> bool {
        self.builds.contains_key(&(from, to))
    }

    /// Every (input, output) pair it connects, for error messages.
    pub fn pairs(&self) -> Vec<(SignalKind, SignalKind)> {
        let order = all_signals();
        let mut pairs: Vec<_> = self.builds.keys().copied().collect();
        let rank = |k: &SignalKind| order.iter().position(|o| o == k);
        pairs.sort_by_key(|(a, b)| (rank(a), rank(b)));
        pairs
    }

    /// Builds the instance that takes `from` data and feeds `targets` (pipelines of `to`).
    pub fn build(
        &self,
        (from, to): (SignalKind, SignalKind),
        ctx: BuildContext,
        cfg: &AnyConfig,
        targets: Vec<(PipelineId, Consumers)>,
    ) -> anyhow::Result<BuiltStage> {
        let build = self.builds.get(&(from, to)).ok_or_else(|| {
            anyhow::anyhow!(
                "connector {} does not connect {from} to {to} (config validation should have said so)",
                ctx.id
            )
        })?;
        build(ctx, cfg, targets)
    }
}

type ExtensionBuildFn =
    Box<dyn Fn(BuildContext, &AnyConfig) -> anyhow::Result<Arc<dyn Component>> + Send + Sync>;

pub struct ExtensionFactory {
    pub info: FactoryInfo,
    build: ExtensionBuildFn,
}

impl ExtensionFactory {
    pub fn new<C: ComponentConfig>(
        type_name: &'static str,
        stability: Stability,
        description: &'static str,
        build: fn(BuildContext, &C) -> anyhow::Result<Arc<dyn Component>>,
    ) -> Self {
        Self {
            info: FactoryInfo::new::<C>(type_name, stability, description, Vec::new()),
            build: Box::new(move |ctx, cfg| build(ctx, typed::<C>(cfg))),
        }
    }

    pub fn build(&self, ctx: BuildContext, cfg: &AnyConfig) -> anyhow::Result<Arc<dyn Component>> {
        (self.build)(ctx, cfg)
    }
}
