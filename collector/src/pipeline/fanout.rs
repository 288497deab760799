//! One batch to several consumers: a receiver feeding several pipelines, a pipeline feeding
//! several exporters.

use std::sync::Arc;

use async_trait::async_trait;

use super::{ConsumeError, Consumer, Payload};

/// Hands every batch to each consumer in turn.
///
/// If any consumer refuses, the whole call is refused so the client sends the batch again:
/// the consumers that did take it may then see it twice. Duplicates are preferred to loss,
/// which is what the OTLP spec's at-least-once delivery asks.
pub struct Fanout<T: Payload> {
    consumers: Vec<Arc<dyn Consumer<T>>>,
}

impl<T: Payload> Fanout<T> {
    /// One consumer is returned as is; several are wrapped.
    pub fn of(mut consumers: Vec<Arc<dyn Consumer<T>>>) -> Arc<dyn Consumer<T>> {
        if consumers.len() == 1 {
            return consumers.remove(0);
        }
        Arc::new(Self { consumers })
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for Fanout<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        let mut first_error = None;
        let last = self.consumers.len().saturating_sub(1);
        let mut data = Some(data);
        for (i, consumer) in self.consumers.iter().enumerate() {
            let batch = if i == last {
                data.take().unwrap_or_default()
            } else {
                data.clone().unwrap_or_default()
            };
            if let Err(e) = consumer.consume(batch).await {
                // A retryable refusal wins over a permanent error: the client must retry.
                match (&first_error, &e) {
                    (None, _) => first_error = Some(e),
                    (Some(ConsumeError::Permanent(_)), ConsumeError::Refused { .. }) => {
                        first_error = Some(e)
                    }
                    _ => {}
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
