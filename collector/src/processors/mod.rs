//! Processors: what happens to data between receivers and exporters.
pub mod attributes;
pub mod batch;
pub mod filter;
pub mod memory_limiter;
pub mod redaction;
pub mod resource;
pub mod schema;
pub mod tail_sampling;
pub mod transform;

#[cfg(test)]
pub(crate) mod testutil;
