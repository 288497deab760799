//! OTLP types for Weft: the `opentelemetry-proto` messages (re-exported at
//! the crate root), id helpers, request validation and its limits, `google.rpc.Status` and
//! the OTLP/JSON codec.

pub use opentelemetry_proto::tonic::*;

pub mod base64;
pub mod encode;
pub mod ids;
pub mod limits;
pub mod otlp_json;
pub mod points;
pub mod status;
pub mod validate;
pub mod wire;
