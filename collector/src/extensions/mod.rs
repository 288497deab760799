//! Extensions: capabilities beside the pipelines.
pub mod auth;
pub mod bearertokenauth;
pub mod file_storage;
pub mod health_check;
pub mod weft_status;
