//! Processors: what happens to data between receivers and exporters.
pub mod batch;
pub mod memory_limiter;
