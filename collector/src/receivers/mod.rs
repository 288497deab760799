//! Receivers: where data enters Weft.
pub mod kafka;
pub mod otlp;
