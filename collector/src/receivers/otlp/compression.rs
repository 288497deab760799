//! HTTP `Content-Encoding` decoding with a hard cap on the output.
//!
//! A request body is at most `max_request_body_size` bytes as sent, but 1 MB of gzip can hold
//! 1 GiB of zeros. Every decoder here streams into a buffer that stops at the same limit, so
//! the memory one request can take is bounded by about twice the limit whatever the ratio.

use std::io::Read;

use bytes::Bytes;
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Why a body could not be decompressed; the receiver turns it into its answer.
#[derive(Debug)]
pub(crate) enum DecompressError {
    /// The output would pass the limit (RESOURCE_EXHAUSTED / 413).
    TooLarge(String),
    /// The data is not valid for its encoding (INVALID_ARGUMENT / 400).
    Corrupt(String),
    /// The decoder could not be set up (INTERNAL / 500).
    Internal(String),
}

/// The encodings an OTLP/HTTP client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
    /// HTTP's "deflate": zlib-wrapped, though some clients send raw deflate; both are read.
    Deflate,
}

impl Encoding {
    /// Reads a `Content-Encoding` value; `None` and "identity"/"none" mean uncompressed.
    pub(crate) fn from_header(value: Option<&str>) -> Result<Self, String> {
        let Some(raw) = value else {
            return Ok(Self::Identity);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "identity" | "none" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            "deflate" => Ok(Self::Deflate),
            _ => Err(format!(
                "unsupported Content-Encoding {raw:?}: send the body uncompressed or as gzip, zstd or deflate"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
            Encoding::Deflate => "deflate",
        }
    }
}

/// Decodes `body` into at most `limit` bytes. Over the limit is
/// [`DecompressError::TooLarge`]; corrupt data is [`DecompressError::Corrupt`].
pub(crate) fn decompress(
    body: Bytes,
    encoding: Encoding,
    limit: usize,
) -> Result<Bytes, DecompressError> {
    let out = match encoding {
        Encoding::Identity => return Ok(body),
        Encoding::Gzip => read_capped(MultiGzDecoder::new(&body[..]), encoding, limit)?,
        Encoding::Deflate if looks_like_zlib(&body) => {
            read_capped(ZlibDecoder::new(&body[..]), encoding, limit)?
        }
        Encoding::Deflate => read_capped(DeflateDecoder::new(&body[..]), encoding, limit)?,
        Encoding::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(&body[..]).map_err(|e| {
                DecompressError::Internal(format!("cannot start a zstd decoder: {e}"))
            })?;
            // A zstd frame chooses its own window (up to 2 GiB), and the decoder allocates
            // it up front: never allow more window than the output may hold.
            decoder
                .window_log_max(window_log_for(limit))
                .map_err(|e| DecompressError::Internal(format!("cannot configure zstd: {e}")))?;
            read_capped(decoder, encoding, limit)?
        }
    };
    Ok(Bytes::from(out))
}

/// The zstd window log allowed for an output `limit`: enough to cover the limit, at least 23
/// (8 MiB, what zstd's levels up to 19 use, so ordinary clients are never refused) and at
/// most 27 (zstd's own default cap without "long" mode).
fn window_log_for(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(23, 27)
}

/// RFC 1950: compression method 8 and a header checksum divisible by 31.
fn looks_like_zlib(body: &[u8]) -> bool {
    body.len() >= 2
        && body[0] & 0x0f == 8
        && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0
}

fn read_capped(
    reader: impl Read,
    encoding: Encoding,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    match reader.take(cap).read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(DecompressError::TooLarge(format!(
            "the {} body decompresses to more than max_request_body_size ({limit} bytes): send smaller batches",
            encoding.name()
        ))),
        Ok(_) => Ok(out),
        Err(e) => Err(DecompressError::Corrupt(format!(
            "cannot decompress the {} body: {e}",
            encoding.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn header_values() {
        assert_eq!(Encoding::from_header(None), Ok(Encoding::Identity));
        assert_eq!(
            Encoding::from_header(Some("identity")),
            Ok(Encoding::Identity)
        );
        assert_eq!(Encoding::from_header(Some(" GZIP ")), Ok(Encoding::Gzip));
        assert_eq!(Encoding::from_header(Some("zstd")), Ok(Encoding::Zstd));
        assert_eq!(
            Encoding::from_header(Some("deflate")),
            Ok(Encoding::Deflate)
        );
        let err = Encoding::from_header(Some("br")).unwrap_err();
        assert!(err.contains("unsupported Content-Encoding \"br\""), "{err}");
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"hello hello hello hello".repeat(100);
        let zlib = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let raw_deflate = {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let cases = [
            (Encoding::Identity, data.clone()),
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Zstd, zstd::encode_all(&data[..], 3).unwrap()),
            (Encoding::Deflate, zlib),
            (Encoding::Deflate, raw_deflate),
        ];
        for (encoding, body) in cases {
            let out = decompress(Bytes::from(body), encoding, data.len()).unwrap();
            assert_eq!(&out[..], &data[..], "{encoding:?}");
        }
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let mut body = gzip(b"abc");
        body.extend(gzip(b"def"));
        let out = decompress(Bytes::from(body), Encoding::Gzip, 100).unwrap();
        assert_eq!(&out[..], b"abcdef");
    }

    #[test]
    fn output_over_the_limit_is_too_large() {
        let data = vec![0u8; 10_001];
        for (encoding, body) in [
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Zstd, zstd::encode_all(&data[..], 3).unwrap()),
        ] {
            match decompress(Bytes::from(body), encoding, 10_000) {
                Err(DecompressError::TooLarge(m)) => assert!(
                    m.contains("decompresses to more than max_request_body_size (10000 bytes)"),
                    "{m}"
                ),
                other => panic!("{encoding:?}: {other:?}"),
            }
        }
        // Exactly at the limit is fine.
        let out = decompress(Bytes::from(gzip(&data[..10_000])), Encoding::Gzip, 10_000).unwrap();
        assert_eq!(out.len(), 10_000);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // 32 MiB of zeros, streamed into the encoder (about 32 KiB compressed); the
        // integration tests send a 1 GiB one to the real binary.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..32 {
            e.write_all(&chunk).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        let limit = 1 << 20;
        assert!(matches!(
            decompress(Bytes::from(bomb), Encoding::Gzip, limit),
            Err(DecompressError::TooLarge(_))
        ));
    }

    #[test]
    fn corrupt_data_is_invalid() {
        for encoding in [Encoding::Gzip, Encoding::Zstd, Encoding::Deflate] {
            match decompress(
                Bytes::from_static(b"\x01\x02 not compressed"),
                encoding,
                1000,
            ) {
                Err(DecompressError::Corrupt(message)) => {
                    assert!(message.starts_with("cannot decompress the"), "{message}")
                }
                other => panic!("{encoding:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn zstd_window_follows_the_limit() {
        assert_eq!(window_log_for(1), 23);
        assert_eq!(window_log_for(20 << 20), 25);
        assert_eq!(window_log_for(32 << 20), 25);
        assert_eq!(window_log_for((32 << 20) + 1), 26);
        assert_eq!(window_log_for(usize::MAX), 27);
    }
}
