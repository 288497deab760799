//! Weft: an OpenTelemetry Collector distribution that weaves logs into traces.
//!
//! The crate is laid out as the Collector is: one module per component under
//! [`receivers`], [`processors`], [`exporters`] and [`extensions`], registered once in
//! [`registry`]; the data path between them is [`pipeline`]; [`service`] builds and runs a
//! configuration. Machinery several components share without reaching into each other lives
//! beside them: [`storage`] (the segment log under persistent queues and the durable window).

pub mod component;
pub mod connectors;
pub mod exporters;
pub mod extensions;
pub mod health;
pub mod net;
pub mod operators;
pub mod ottl;
pub mod pipeline;
pub mod processors;
pub mod receivers;
pub mod redaction;
pub mod registry;
pub mod secret;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod verdicts;

/// The configuration Weft runs when started without `--config` (shown in the README).
pub const DEFAULT_CONFIG: &str = include_str!("default_config.yaml");
