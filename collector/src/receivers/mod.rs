//! Receivers: where data enters Weft.
pub mod filelog;
pub mod kafka;
pub mod otlp;
