//! The telemetry contexts OTTL paths are resolved in. Each is a [`super::Context`]: its
//! paths, its enum symbols, and how it reads them from the data one evaluation looks at.
//! The log, resource and scope contexts join them with the processors that need them.

pub mod common;
pub mod span;
pub mod spanevent;

pub use common::{Origin, ResourcePath, ScopePath};
pub use span::{Span, SpanData, SpanPath};
pub use spanevent::{SpanEvent, SpanEventData, SpanEventPath};
