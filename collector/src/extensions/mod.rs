//! Extensions: capabilities beside the pipelines.
pub mod health_check;
