//! Exporters: where data leaves Weft. The network exporters (`otlp`, `otlphttp`) are a
//! [`helper::Sender`] wrapped in the shared queue, retry and timeout layers; `debug` and
//! `file` write synchronously, so an acknowledged batch is already printed or buffered.
pub mod debug;
pub mod elasticsearch;
pub mod file;
pub mod helper;
pub mod kafka;
pub mod loadbalancing;
pub mod otlp;
pub mod otlphttp;
