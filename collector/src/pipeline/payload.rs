//! What travels through a pipeline: OTLP export requests, one type per signal.

use std::fmt::Debug;

use weft_config::Signal;
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

pub type Traces = ExportTraceServiceRequest;
pub type Logs = ExportLogsServiceRequest;

/// The operations generic components (batching, queues, fan-out, memory accounting) need
/// from a batch of either signal. Items are spans or log records.
pub trait Payload:
    prost::Message + Clone + Default + Debug + PartialEq + Send + Sync + 'static
{
    const SIGNAL: Signal;
    /// The metric word for one item: "spans" or "log_records".
    const ITEM: &'static str;

    /// Number of spans or log records.
    fn item_count(&self) -> usize;

    /// Appends `other`'s resources to this batch.
    fn merge(&mut self, other: Self);

    /// Removes and returns the first `n` items (whole resources and scopes where they fit,
    /// split where they do not); `self` keeps the rest.
    fn take_items(&mut self, n: usize) -> Self;
}

impl Payload for Traces {
    const SIGNAL: Signal = Signal::Traces;
    const ITEM: &'static str = "spans";

    fn item_count(&self) -> usize {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }

    fn merge(&mut self, other: Self) {
        self.resource_spans.extend(other.resource_spans);
    }

    fn take_items(&mut self, n: usize) -> Self {
        let mut out = Self::default();
        let mut remaining = n;
        while remaining > 0 && !self.resource_spans.is_empty() {
            let rs = &mut self.resource_spans[0];
            let count: usize = rs.scope_spans.iter().map(|s| s.spans.len()).sum();
            if count <= remaining {
                remaining -= count;
                out.resource_spans.push(self.resource_spans.remove(0));
                continue;
            }
            let mut taken = rs.clone();
            taken.scope_spans.clear();
            while remaining > 0 {
                let ss = &mut rs.scope_spans[0];
                if ss.spans.len() <= remaining {
                    remaining -= ss.spans.len();
                    taken.scope_spans.push(rs.scope_spans.remove(0));
                } else {
                    let mut part = ss.clone();
                    part.spans = ss.spans.drain(..remaining).collect();
                    remaining = 0;
                    taken.scope_spans.push(part);
                }
            }
            out.resource_spans.push(taken);
        }
        out
    }
}

impl Payload for Logs {
    const SIGNAL: Signal = Signal::Logs;
    const ITEM: &'static str = "log_records";

    fn item_count(&self) -> usize {
        self.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum()
    }

    fn merge(&mut self, other: Self) {
        self.resource_logs.extend(other.resource_logs);
    }

    fn take_items(&mut self, n: usize) -> Self {
        let mut out = Self::default();
        let mut remaining = n;
        while remaining > 0 && !self.resource_logs.is_empty() {
            let rl = &mut self.resource_logs[0];
            let count: usize = rl.scope_logs.iter().map(|s| s.log_records.len()).sum();
            if count <= remaining {
                remaining -= count;
                out.resource_logs.push(self.resource_logs.remove(0));
                continue;
            }
            let mut taken = rl.clone();
            taken.scope_logs.clear();
            while remaining > 0 {
                let sl = &mut rl.scope_logs[0];
                if sl.log_records.len() <= remaining {
                    remaining -= sl.log_records.len();
                    taken.scope_logs.push(rl.scope_logs.remove(0));
                } else {
                    let mut part = sl.clone();
                    part.log_records = sl.log_records.drain(..remaining).collect();
                    remaining = 0;
                    taken.scope_logs.push(part);
                }
            }
            out.resource_logs.push(taken);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn traces(shape: &[&[usize]]) -> Traces {
        let mut id = 0u8;
        Traces {
            resource_spans: shape
                .iter()
                .map(|scopes| ResourceSpans {
                    scope_spans: scopes
                        .iter()
                        .map(|&n| ScopeSpans {
                            spans: (0..n)
                                .map(|_| {
                                    id += 1;
                                    Span {
                                        span_id: vec![id; 8],
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn ids(t: &Traces) -> Vec<u8> {
        t.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.span_id[0])
            .collect()
    }

    #[test]
    fn take_items_splits_scopes_and_keeps_order() {
        let mut t = traces(&[&[2, 3], &[4]]);
        assert_eq!(t.item_count(), 9);
        let head = t.take_items(4);
        assert_eq!(ids(&head), [1, 2, 3, 4]);
        assert_eq!(ids(&t), [5, 6, 7, 8, 9]);
        assert_eq!(head.resource_spans.len(), 1);
        let rest = t.take_items(100);
        assert_eq!(ids(&rest), [5, 6, 7, 8, 9]);
        assert_eq!(t.item_count(), 0);
        assert!(t.resource_spans.is_empty());
    }
}
