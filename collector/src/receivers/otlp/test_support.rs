//! Test helpers: a consumer that answers as told, and small valid requests.

use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::pipeline::{ConsumeError, Consumer, Payload};

/// How a [`TestConsumer`] answers.
#[derive(Clone, Debug)]
pub(crate) enum Behaviour {
    Accept,
    Unavailable(Duration),
    Exhausted(Duration),
    Permanent,
}

/// Records what it accepted; refuses as its [`Behaviour`] says.
pub(crate) struct TestConsumer<T> {
    behaviour: Behaviour,
    received: Mutex<Vec<T>>,
}

impl<T: Payload> TestConsumer<T> {
    pub(crate) fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            received: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn received(&self) -> Vec<T> {
        self.received.lock().clone()
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for TestConsumer<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        let message = "refused by the test consumer";
        match self.behaviour {
            Behaviour::Accept => {
                self.received.lock().push(data);
                Ok(())
            }
            Behaviour::Unavailable(after) => Err(ConsumeError::unavailable(message, after)),
            Behaviour::Exhausted(after) => Err(ConsumeError::exhausted(message, after)),
            Behaviour::Permanent => Err(ConsumeError::Permanent(
                "rejected by the test consumer".into(),
            )),
        }
    }
}

/// A valid trace export with `n` spans.
pub(crate) fn spans(n: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![7; 16],
            span_id: vec![i as u8 + 1; 8],
            name: format!("span-{i}"),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A valid logs export with `n` records.
pub(crate) fn logs(n: usize) -> ExportLogsServiceRequest {
    let log_records = (0..n)
        .map(|i| LogRecord {
            trace_id: vec![7; 16],
            span_id: vec![1; 8],
            severity_text: format!("INFO-{i}"),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
