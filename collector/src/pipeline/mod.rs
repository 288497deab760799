//! The data path between components.
//!
//! A pipeline is a chain of [`Consumer`]s: a receiver hands a batch to the first processor,
//! each processor hands its output to the next, and the last one hands it to a [`Fanout`] over
//! the pipeline's exporters. A consumer answers only once it has taken responsibility for the
//! data (queued it, forwarded it, or deliberately dropped it by policy); an error travels back
//! to the receiver, which turns it into the OTLP answer the client sees.

mod counted;
mod fanout;
mod payload;
mod signal;

use std::time::Duration;

use async_trait::async_trait;

pub use counted::{counted_consumers, Counted};
pub use fanout::Fanout;
pub use payload::{Batch, Logs, Metrics, Payload, Traces};
pub use signal::{
    all_signals, fanout_consumers, for_each_signal, take_items, visit_signal, Consumers,
    MakeConsumer, Signal, SignalMap, SignalVisitor,
};

/// Takes a batch of one signal.
#[async_trait]
pub trait Consumer<T: Payload>: Send + Sync {
    /// `Ok` means the data is now this consumer's responsibility: it will be delivered or
    /// dropped only by a documented policy, never silently. An error means the data was not
    /// taken and the caller still owns it.
    async fn consume(&self, data: T) -> Result<(), ConsumeError>;
}

/// Why a consumer did not take a batch.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Weft cannot take the data now (a full queue, the memory limit); the client should
    /// send it again after `retry_after`. Receivers answer with the OTLP spec's retryable
    /// codes: [`Refusal::Unavailable`] → gRPC UNAVAILABLE / HTTP 503,
    /// [`Refusal::Exhausted`] → gRPC RESOURCE_EXHAUSTED / HTTP 429, both with a retry delay.
    #[error("{message}")]
    Refused {
        refusal: Refusal,
        message: String,
        retry_after: Duration,
    },
    /// The data can never be taken (it is invalid); retrying would not help.
    /// Receivers answer gRPC INVALID_ARGUMENT / HTTP 400.
    #[error("{0}")]
    Permanent(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A downstream stage is full or not running.
    Unavailable,
    /// A resource limit (memory) was reached.
    Exhausted,
}

impl ConsumeError {
    pub fn unavailable(message: impl Into<String>, retry_after: Duration) -> Self {
        Self::Refused {
            refusal: Refusal::Unavailable,
            message: message.into(),
            retry_after,
        }
    }

    pub fn exhausted(message: impl Into<String>, retry_after: Duration) -> Self {
        Self::Refused {
            refusal: Refusal::Exhausted,
            message: message.into(),
            retry_after,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }
}
