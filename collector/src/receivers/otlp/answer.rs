//! The answers a client gets, as the OTLP specification defines them.
//!
//! | rejection                  | gRPC                            | HTTP                       |
//! |----------------------------|---------------------------------|----------------------------|
//! | invalid data               | INVALID_ARGUMENT                | 400                        |
//! | too large                  | RESOURCE_EXHAUSTED              | 413                        |
//! | pipeline: unavailable      | UNAVAILABLE + RetryInfo         | 503 + Retry-After          |
//! | pipeline: exhausted        | RESOURCE_EXHAUSTED + RetryInfo  | 429 + Retry-After          |
//! | pipeline: permanent        | INVALID_ARGUMENT                | 400                        |
//! | internal                   | INTERNAL                        | 500                        |
//!
//! SDKs retry UNAVAILABLE always and RESOURCE_EXHAUSTED only when RetryInfo is present, so
//! the retry delay is what turns a full queue into backpressure instead of data loss.

use std::time::Duration;

use http::StatusCode;
use prost::Message;
use weft_proto::status::{code, Any, Status as RpcStatus};

use super::receive::Rejection;
use crate::pipeline::{ConsumeError, Refusal};

/// The type URL of `google.rpc.RetryInfo` inside a `google.rpc.Status`'s details.
pub(crate) const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.RetryInfo`: how long the client should wait before sending again.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl From<Duration> for ProtoDuration {
    fn from(d: Duration) -> Self {
        Self {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos() as i32,
        }
    }
}

/// What one rejection means on the wire, independent of the transport.
pub(crate) struct Answer {
    pub(crate) grpc: tonic::Code,
    pub(crate) http: StatusCode,
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
}

impl Answer {
    pub(crate) fn of(rejection: &Rejection) -> Self {
        let message = rejection.message();
        let (grpc, http, retry_after) = match rejection {
            Rejection::Invalid { .. } => {
                (tonic::Code::InvalidArgument, StatusCode::BAD_REQUEST, None)
            }
            Rejection::TooLarge(_) => (
                tonic::Code::ResourceExhausted,
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
            ),
            Rejection::Internal(_) => (
                tonic::Code::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
            ),
            Rejection::Pipeline(ConsumeError::Permanent(_)) => {
                (tonic::Code::InvalidArgument, StatusCode::BAD_REQUEST, None)
            }
            Rejection::Pipeline(ConsumeError::Refused {
                refusal,
                retry_after,
                ..
            }) => match refusal {
                Refusal::Unavailable => (
                    tonic::Code::Unavailable,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(*retry_after),
                ),
                Refusal::Exhausted => (
                    tonic::Code::ResourceExhausted,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(*retry_after),
                ),
            },
        };
        Self {
            grpc,
            http,
            message,
            retry_after,
        }
    }

    /// The `google.rpc.Status` of this answer, with RetryInfo when there is a delay.
    pub(crate) fn rpc_status(&self) -> RpcStatus {
        RpcStatus {
            code: self.grpc as i32,
            message: self.message.clone(),
            details: self.retry_after.map(retry_info_any).into_iter().collect(),
        }
    }

    /// The gRPC status; a retry delay travels in `grpc-status-details-bin`.
    pub(crate) fn grpc_status(&self) -> tonic::Status {
        match self.retry_after {
            None => tonic::Status::new(self.grpc, self.message.clone()),
            Some(_) => tonic::Status::with_details(
                self.grpc,
                self.message.clone(),
                self.rpc_status().encode_to_vec().into(),
            ),
        }
    }

    /// `Retry-After` in whole seconds: rounded up, at least 1 (0 would mean "retry now").
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(retry_after_secs)
    }
}

pub(crate) fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

fn retry_info_any(delay: Duration) -> Any {
    Any {
        type_url: RETRY_INFO_TYPE_URL.to_string(),
        value: RetryInfo {
            retry_delay: Some(delay.into()),
        }
        .encode_to_vec(),
    }
}

/// The `google.rpc.Code` an HTTP error answer's body carries when no [`Rejection`] made it
/// (routing and content negotiation).
pub(crate) fn code_for_http(status: StatusCode) -> i32 {
    match status {
        StatusCode::NOT_FOUND => code::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => code::UNIMPLEMENTED,
        StatusCode::PAYLOAD_TOO_LARGE => code::RESOURCE_EXHAUSTED,
        _ => code::INVALID_ARGUMENT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(refusal: Refusal, ms: u64) -> Rejection {
        Rejection::Pipeline(ConsumeError::Refused {
            refusal,
            message: "queue is full".into(),
            retry_after: Duration::from_millis(ms),
        })
    }

    /// Reads the RetryInfo delay out of a gRPC status, as an SDK does.
    fn grpc_retry_delay(status: &tonic::Status) -> Option<ProtoDuration> {
        let rpc = RpcStatus::decode(status.details()).ok()?;
        assert_eq!(rpc.code, status.code() as i32);
        assert_eq!(rpc.message, status.message());
        let any = rpc
            .details
            .iter()
            .find(|a| a.type_url == RETRY_INFO_TYPE_URL)?;
        RetryInfo::decode(&any.value[..]).ok()?.retry_delay
    }

    #[test]
    fn the_answer_table() {
        let rows = [
            (
                Rejection::invalid("bad"),
                tonic::Code::InvalidArgument,
                400,
                None,
            ),
            (
                Rejection::TooLarge("big".into()),
                tonic::Code::ResourceExhausted,
                413,
                None,
            ),
            (
                Rejection::Internal("oops".into()),
                tonic::Code::Internal,
                500,
                None,
            ),
            (
                Rejection::Pipeline(ConsumeError::Permanent("never".into())),
                tonic::Code::InvalidArgument,
                400,
                None,
            ),
            (
                refused(Refusal::Unavailable, 1500),
                tonic::Code::Unavailable,
                503,
                Some(2),
            ),
            (
                refused(Refusal::Exhausted, 0),
                tonic::Code::ResourceExhausted,
                429,
                Some(1),
            ),
        ];
        for (rejection, grpc, http, retry_after) in rows {
            let a = Answer::of(&rejection);
            assert_eq!(a.grpc, grpc, "{rejection:?}");
            assert_eq!(a.http.as_u16(), http, "{rejection:?}");
            assert_eq!(a.retry_after_secs(), retry_after, "{rejection:?}");
            assert_eq!(a.message, rejection.message());
        }
    }

    #[test]
    fn refusals_carry_retry_info_in_grpc_details() {
        let status = Answer::of(&refused(Refusal::Unavailable, 1500)).grpc_status();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "queue is full");
        assert_eq!(
            grpc_retry_delay(&status),
            Some(ProtoDuration {
                seconds: 1,
                nanos: 500_000_000
            })
        );
        let status = Answer::of(&refused(Refusal::Exhausted, 3000)).grpc_status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            grpc_retry_delay(&status),
            Some(ProtoDuration {
                seconds: 3,
                nanos: 0
            })
        );
        // Non-retryable answers carry no details.
        let status = Answer::of(&Rejection::invalid("bad")).grpc_status();
        assert!(status.details().is_empty());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(5)), 5);
        assert_eq!(retry_after_secs(Duration::from_millis(5001)), 6);
    }
}
