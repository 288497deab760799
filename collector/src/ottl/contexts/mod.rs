//! The telemetry contexts OTTL paths are resolved in. Each is a [`super::Context`]: its
//! paths, its enum symbols, and how it reads them from the data one evaluation looks at.
//! Contexts whose items statements change are also [`super::Writable`]: span, log,
//! resource and scope.

pub mod common;
pub mod log;
pub mod resource;
pub mod span;
pub mod spanevent;

pub use common::{Origin, OriginMut, ResourcePath, ScopePath};
pub use log::{Log, LogData, LogPath, LogTarget};
pub use resource::{
    Resource, ResourceContextPath, ResourceData, ResourceTarget, Scope, ScopeContextPath,
    ScopeData, ScopeTarget,
};
pub use span::{Span, SpanData, SpanPath, SpanTarget};
pub use spanevent::{SpanEvent, SpanEventData, SpanEventPath};
