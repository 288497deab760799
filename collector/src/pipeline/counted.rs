//! Items counted as they pass between two stages: the service's per-processor
//! `otelcol_processor_incoming_items` / `otelcol_processor_outgoing_items`, as the Collector
//! counts them around every processor, whatever its type.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::metrics::counter::Counter;
use weft_config::SignalKind;

use super::{
    visit_signal, Batch, ConsumeError, Consumer, Consumers, Payload, Signal, SignalVisitor,
};

/// Hands every batch on to `inner` and counts its items once `inner` took them (a refused
/// batch is not counted: it did not pass, and its sender will offer it again).
pub struct Counted<T: Payload> {
    inner: Arc<dyn Consumer<T>>,
    items: Counter,
}

#[async_trait]
impl<T: Payload> Consumer<T> for Counted<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        let items = data.item_count() as u64;
        self.inner.consume(data).await?;
        self.items.inc_by(items);
        Ok(())
    }
}

/// `consumers` with the consumer of `signal` counting into `items`.
pub fn counted_consumers(signal: SignalKind, consumers: Consumers, items: Counter) -> Consumers {
    struct Wrap {
        consumers: Consumers,
        items: Counter,
    }
    impl SignalVisitor for Wrap {
        fn visit<S: Signal>(&mut self) {
            if let Some(inner) = self.consumers.get::<Batch<S>>() {
                self.consumers.insert::<Batch<S>>(Arc::new(Counted {
                    inner,
                    items: self.items.clone(),
                }));
            }
        }
    }
    let mut wrap = Wrap { consumers, items };
    visit_signal(signal, &mut wrap);
    wrap.consumers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Traces;
    use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    struct Answer(Result<(), ConsumeError>);

    #[async_trait]
    impl Consumer<Traces> for Answer {
        async fn consume(&self, _: Traces) -> Result<(), ConsumeError> {
            self.0.clone()
        }
    }

    fn three_spans() -> Traces {
        Traces::from(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); 3],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[tokio::test]
    async fn counts_what_the_next_stage_took_and_not_what_it_refused() {
        let counter = Counter::default();
        let ok = counted_consumers(
            SignalKind::Traces,
            Consumers::default().with::<Traces>(Arc::new(Answer(Ok(())))),
            counter.clone(),
        );
        ok.get::<Traces>()
            .unwrap()
            .consume(three_spans())
            .await
            .unwrap();
        assert_eq!(counter.get(), 3);
        let refusing = counted_consumers(
            SignalKind::Traces,
            Consumers::default()
                .with::<Traces>(Arc::new(Answer(Err(ConsumeError::Permanent("no".into()))))),
            counter.clone(),
        );
        assert!(refusing
            .get::<Traces>()
            .unwrap()
            .consume(three_spans())
            .await
            .is_err());
        assert_eq!(counter.get(), 3);
    }
}
