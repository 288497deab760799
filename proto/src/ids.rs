//! Trace and span id helpers.
//!
//! OTLP carries ids as raw `bytes`; these helpers give them a fixed-size,
//! hex-printing representation.

use std::fmt;

/// Lowercase hex encoding of a trace id (or any id bytes).
pub fn trace_id_hex(id: &[u8]) -> String {
    hex::encode(id)
}

/// Lowercase hex encoding of a span id (or any id bytes).
pub fn span_id_hex(id: &[u8]) -> String {
    hex::encode(id)
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $len:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length of the id in bytes.
            pub const LEN: usize = $len;
            /// The all-zero (invalid) id.
            pub const INVALID: Self = Self([0; $len]);

            /// Builds an id from a slice; `None` unless it is exactly
            #[doc = concat!(stringify!($len), " bytes long.")]
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            /// Parses a case-insensitive hex string of exactly
            #[doc = concat!(stringify!($len), " bytes.")]
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).ok().map(|()| Self(out))
            }

            /// An id is valid when it is not all zeros.
            pub fn is_valid(&self) -> bool {
                self.0 != [0; $len]
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The raw bytes as a `Vec`, as stored in the OTLP messages.
            pub fn to_vec(&self) -> Vec<u8> {
                self.0.to_vec()
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

id_type!(
    /// A 16-byte W3C trace id.
    TraceId,
    16
);
id_type!(
    /// An 8-byte span id.
    SpanId,
    8
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_helpers() {
        assert_eq!(trace_id_hex(&[0xAB, 0x01]), "ab01");
        assert_eq!(span_id_hex(&[]), "");
    }

    #[test]
    fn trace_id() {
        let bytes: Vec<u8> = (1..=16).collect();
        let id = TraceId::from_slice(&bytes).unwrap();
        assert_eq!(id.to_string(), "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(
            format!("{id:?}"),
            "TraceId(0102030405060708090a0b0c0d0e0f10)"
        );
        assert!(id.is_valid());
        assert_eq!(id.to_vec(), bytes);
        assert_eq!(
            TraceId::from_hex("0102030405060708090A0B0C0D0E0F10"),
            Some(id)
        );
        assert!(TraceId::from_slice(&bytes[..15]).is_none());
        assert!(TraceId::from_slice(&[0; 17]).is_none());
        assert!(!TraceId::INVALID.is_valid());
        assert!(!TraceId::default().is_valid());
        assert!(TraceId::from_hex("zz").is_none());
    }

    #[test]
    fn span_id() {
        let id = SpanId::from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(id.to_string(), "0000000000000001");
        assert!(id.is_valid());
        assert!(!SpanId([0; 8]).is_valid());
        assert!(SpanId::from_slice(&[1; 16]).is_none());
        assert_eq!(SpanId::from_hex("EEE19B7EC3C1B174").unwrap().0[0], 0xee);
        assert!(SpanId::from_hex("EEE19B7EC3C1B1").is_none());
    }
}
