pub use opentelemetry_proto::tonic::*;
