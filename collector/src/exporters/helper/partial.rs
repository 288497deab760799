//! OTLP partial success: a backend accepted a request but rejected some of its items.

use prometheus_client::metrics::counter::Counter;

use crate::telemetry::Telemetry;

/// Logs and counts the items a backend accepted the request for but rejected anyway.
///
/// A partial success is not retried: the OTLP spec says the server has already decided, and
/// sending the same items again would get the same answer.
#[derive(Clone)]
pub struct PartialSuccess {
    exporter: String,
    item: &'static str,
    rejected: Counter,
}

impl PartialSuccess {
    pub fn new(telemetry: &Telemetry, exporter: &str, item: &'static str) -> Self {
        Self {
            exporter: exporter.to_string(),
            item,
            rejected: telemetry.counter(
                &format!("otelcol_exporter_partial_success_rejected_{item}"),
                &format!("Number of {item} the destination accepted the request for but rejected."),
                &[("exporter", exporter)],
            ),
        }
    }

    pub fn report(&self, rejected: i64, message: &str) {
        if rejected <= 0 && message.is_empty() {
            return;
        }
        if rejected > 0 {
            self.rejected.inc_by(rejected as u64);
        }
        tracing::warn!(
            component = %self.exporter,
            rejected,
            error = message,
            "the destination rejected {rejected} {} of an accepted request (partial success); they are not retried",
            self.item
        );
    }
}
