//! Receivers: where data enters Weft.
pub mod filelog;
pub mod otlp;
