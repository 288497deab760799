//! What every component is, and how the registry makes one from its config.
//!
//! A component type is registered once, in [`crate::registry`], as a factory: its YAML type
//! name, its stability, the signals it handles, its config type (decoded strictly by
//! [`weft_config::decode_component`]) and a build function. Adding a component means writing
//! its module and adding one line to the registry.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_yaml::Value;
use weft_config::{
    decode_component, ComponentConfig, ComponentId, ConfigPath, Diagnostics, Kind, Signal,
};

use crate::pipeline::{Consumer, Logs, Traces};
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
/// `start` runs once, in the order extensions → exporters → processors → receivers, so data
/// only flows once everything downstream is ready. `shutdown` runs in the reverse order:
/// receivers stop accepting, processors flush what they hold, exporters drain their queues.
/// Each must return by `deadline`; what an exporter cannot deliver by then it logs and counts.
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
pub trait Processor<T: crate::pipeline::Payload>: Consumer<T> + Component {}
impl<T: crate::pipeline::Payload, P: Consumer<T> + Component> Processor<T> for P {}

/// What a component gets when it is built: who it is and where its telemetry goes.
#[derive(Clone)]
pub struct BuildContext {
    pub id: ComponentId,
    pub kind: Kind,
    pub telemetry: Telemetry,
    /// The health of the running service, shared with the `health_check` extension.
    pub health: crate::service::Health,
    /// Instances shared by every pipeline that lists the same component id.
    pub shared: SharedInstances,
}

/// One instance per component id across pipelines, for components whose state must be
/// shared: the `tail_sampling` processor listed in a traces and a logs pipeline is one
/// window. Processors are otherwise built once per pipeline, as in the Collector.
#[derive(Clone, Default)]
pub struct SharedInstances {
    inner:
        Arc<parking_lot::Mutex<std::collections::HashMap<ComponentId, Arc<dyn Any + Send + Sync>>>>,
}

impl SharedInstances {
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

impl BuildContext {
    /// The id as it appears in metric labels and logs, e.g. `otlp/backend`.
    pub fn id_str(&self) -> String {
        self.id.to_string()
    }
}

/// Where a receiver sends what it receives: one consumer per signal it feeds.
#[derive(Clone, Default)]
pub struct ReceiverConsumers {
    pub traces: Option<Arc<dyn Consumer<Traces>>>,
    pub logs: Option<Arc<dyn Consumer<Logs>>>,
}

/// An exporter as built: its consumers for the signals it was asked for, and its lifecycle.
pub struct BuiltExporter {
    pub traces: Option<Arc<dyn Consumer<Traces>>>,
    pub logs: Option<Arc<dyn Consumer<Logs>>>,
    pub component: Arc<dyn Component>,
}

pub type AnyConfig = Arc<dyn Any + Send + Sync>;
type DecodeFn =
    Box<dyn Fn(&Value, &ConfigPath, &mut Diagnostics) -> Option<AnyConfig> + Send + Sync>;

fn decoder<C: ComponentConfig>() -> DecodeFn {
    Box::new(|value, path, diags| {
        decode_component::<C>(value, path, diags).map(|c| Arc::new(c) as AnyConfig)
    })
}

fn typed<C: ComponentConfig>(config: &AnyConfig) -> &C {
    config
        .downcast_ref::<C>()
        .expect("a config is only ever built by the factory that decoded it")
}

/// What all factories share.
pub struct FactoryInfo {
    pub type_name: &'static str,
    pub stability: Stability,
    pub signals: &'static [Signal],
    pub description: &'static str,
    decode: DecodeFn,
}

impl FactoryInfo {
    pub fn decode(
        &self,
        value: &Value,
        path: &ConfigPath,
        diags: &mut Diagnostics,
    ) -> Option<AnyConfig> {
        (self.decode)(value, path, diags)
    }
}

type ReceiverBuildFn = Box<
    dyn Fn(BuildContext, &AnyConfig, ReceiverConsumers) -> anyhow::Result<Arc<dyn Component>>
        + Send
        + Sync,
>;

pub struct ReceiverFactory {
    pub info: FactoryInfo,
    build: ReceiverBuildFn,
}

impl ReceiverFactory {
    pub fn new<C: ComponentConfig>(
        type_name: &'static str,
        stability: Stability,
        signals: &'static [Signal],
        description: &'static str,
        build: fn(BuildContext, &C, ReceiverConsumers) -> anyhow::Result<Arc<dyn Component>>,
    ) -> Self {
        Self {
            info: FactoryInfo {
                type_name,
                stability,
                signals,
                description,
                decode: decoder::<C>(),
            },
            build: Box::new(move |ctx, cfg, next| build(ctx, typed::<C>(cfg), next)),
        }
    }

    pub fn build(
        &self,
        ctx: BuildContext,
        cfg: &AnyConfig,
        next: ReceiverConsumers,
    ) -> anyhow::Result<Arc<dyn Component>> {
        (self.build)(ctx, cfg, next)
    }
}

/// The typed build function a processor module provides for one signal.
pub type BuildProcessor<C, T> =
    fn(BuildContext, &C, Arc<dyn Consumer<T>>) -> anyhow::Result<Arc<dyn Processor<T>>>;

type ProcessorBuildFn<T> = Box<
    dyn Fn(BuildContext, &AnyConfig, Arc<dyn Consumer<T>>) -> anyhow::Result<Arc<dyn Processor<T>>>
        + Send
        + Sync,
>;

/// A processor type. Processors are built once per pipeline that lists them.
pub struct ProcessorFactory {
    pub info: FactoryInfo,
    traces: ProcessorBuildFn<Traces>,
    logs: ProcessorBuildFn<Logs>,
}

impl ProcessorFactory {
    pub fn new<C: ComponentConfig>(
        type_name: &'static str,
        stability: Stability,
        description: &'static str,
        traces: BuildProcessor<C, Traces>,
        logs: BuildProcessor<C, Logs>,
    ) -> Self {
        Self {
            info: FactoryInfo {
                type_name,
                stability,
                signals: &[Signal::Traces, Signal::Logs],
                description,
                decode: decoder::<C>(),
            },
            traces: Box::new(move |ctx, cfg, next| traces(ctx, typed::<C>(cfg), next)),
            logs: Box::new(move |ctx, cfg, next| logs(ctx, typed::<C>(cfg), next)),
        }
    }

    pub fn build_traces(
        &self,
        ctx: BuildContext,
        cfg: &AnyConfig,
        next: Arc<dyn Consumer<Traces>>,
    ) -> anyhow::Result<Arc<dyn Processor<Traces>>> {
        (self.traces)(ctx, cfg, next)
    }

    pub fn build_logs(
        &self,
        ctx: BuildContext,
        cfg: &AnyConfig,
        next: Arc<dyn Consumer<Logs>>,
    ) -> anyhow::Result<Arc<dyn Processor<Logs>>> {
        (self.logs)(ctx, cfg, next)
    }
}

type ExporterBuildFn =
    Box<dyn Fn(BuildContext, &AnyConfig, &[Signal]) -> anyhow::Result<BuiltExporter> + Send + Sync>;

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
        description: &'static str,
        build: fn(BuildContext, &C, &[Signal]) -> anyhow::Result<BuiltExporter>,
    ) -> Self {
        Self {
            info: FactoryInfo {
                type_name,
                stability,
                signals: &[Signal::Traces, Signal::Logs],
                description,
                decode: decoder::<C>(),
            },
            build: Box::new(move |ctx, cfg, signals| build(ctx, typed::<C>(cfg), signals)),
        }
    }

    pub fn build(
        &self,
        ctx: BuildContext,
        cfg: &AnyConfig,
        signals: &[Signal],
    ) -> anyhow::Result<BuiltExporter> {
        (self.build)(ctx, cfg, signals)
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
            info: FactoryInfo {
                type_name,
                stability,
                signals: &[],
                description,
                decode: decoder::<C>(),
            },
            build: Box::new(move |ctx, cfg| build(ctx, typed::<C>(cfg))),
        }
    }

    pub fn build(&self, ctx: BuildContext, cfg: &AnyConfig) -> anyhow::Result<Arc<dyn Component>> {
        (self.build)(ctx, cfg)
    }
}
