//! `google.rpc.Status`, the error body of OTLP/HTTP and gRPC.
//!
//! Defined here with prost derives (rather than pulling in `prost-types` /
//! `tonic-types`) so it can be encoded as protobuf with [`prost::Message`]
//! and as JSON with [`crate::otlp_json::encode_status`].

/// `google.protobuf.Any`: a type URL and the serialized message.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Status {
    /// A `google.rpc.Code` value (see [`code`]).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing error message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Optional error details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

impl Status {
    /// A status with the given code and message and no details.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }
}

/// `google.rpc.Code` values.
pub mod code {
    pub const OK: i32 = 0;
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const ABORTED: i32 = 10;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const DATA_LOSS: i32 = 15;
    pub const UNAUTHENTICATED: i32 = 16;
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn protobuf_round_trip() {
        let status = Status {
            code: code::INVALID_ARGUMENT,
            message: "bad".into(),
            details: vec![Any {
                type_url: "type.googleapis.com/x.Y".into(),
                value: vec![1, 2, 3],
            }],
        };
        let bytes = status.encode_to_vec();
        assert_eq!(Status::decode(bytes.as_slice()).unwrap(), status);
    }

    #[test]
    fn protobuf_wire_format() {
        // code = 3 (field 1, varint), message = "hi" (field 2, length-delimited)
        let bytes = Status::new(3, "hi").encode_to_vec();
        assert_eq!(bytes, [0x08, 0x03, 0x12, 0x02, b'h', b'i']);
    }
}
