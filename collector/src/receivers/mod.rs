//! Receivers: where data enters Weft.
pub mod otlp;
