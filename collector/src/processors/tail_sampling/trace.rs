//! What the window holds for one trace, and what policies look at.

use std::sync::Arc;

use weft_proto::common::v1::InstrumentationScope;
use weft_proto::logs::v1::LogRecord;
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::Span;

/// The resource and scope a batch of spans or logs arrived under, shared by every item of
/// that batch (one allocation per batch, not per item).
#[derive(Debug, Default, PartialEq)]
pub struct Origin {
    pub resource: Resource,
    pub resource_schema_url: String,
    pub scope: InstrumentationScope,
    pub scope_schema_url: String,
}

/// One buffered span with where it came from.
#[derive(Clone, Debug)]
pub struct SpanEntry {
    pub origin: Arc<Origin>,
    pub span: Span,
}

/// One buffered log record with where it came from.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub origin: Arc<Origin>,
    pub record: LogRecord,
}

/// Everything known about one trace when its decision is made.
#[derive(Clone, Debug, Default)]
pub struct TraceData {
    pub trace_id: [u8; 16],
    pub spans: Vec<SpanEntry>,
    pub logs: Vec<LogEntry>,
}

impl TraceData {
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    /// Earliest span start to latest span end, in nanoseconds (0 without spans).
    pub fn duration_nanos(&self) -> u64 {
        let start = self.spans.iter().map(|s| s.span.start_time_unix_nano).min();
        let end = self.spans.iter().map(|s| s.span.end_time_unix_nano).max();
        match (start, end) {
            (Some(s), Some(e)) if e > s => e - s,
            _ => 0,
        }
    }
}
