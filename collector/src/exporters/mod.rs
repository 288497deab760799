//! Exporters: where data leaves Weft. Each is a [`helper::Sender`] wrapped in the shared
//! queue, retry and timeout layers.
pub mod debug;
pub mod file;
pub mod helper;
pub mod otlp;
pub mod otlphttp;
