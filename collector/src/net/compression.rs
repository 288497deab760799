//! `compression` of the exporters' requests, as the Collector spells it.

use std::io::Write;

use serde::Deserialize;

/// `compression`, as the Collector spells it (`""` also means none).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    #[serde(alias = "")]
    None,
}

/// The `Content-Encoding` value of `c`, `None` for no compression.
pub fn content_encoding(c: Compression) -> Option<&'static str> {
    match c {
        Compression::Gzip => Some("gzip"),
        Compression::Zstd => Some("zstd"),
        Compression::None => None,
    }
}

/// `raw` compressed with `c` (gzip at the fast level, zstd at its default).
pub fn compress(raw: Vec<u8>, c: Compression) -> std::io::Result<Vec<u8>> {
    match c {
        Compression::None => Ok(raw),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(raw.len() / 4),
                flate2::Compression::fast(),
            );
            enc.write_all(&raw)?;
            enc.finish()
        }
        Compression::Zstd => zstd::encode_all(raw.as_slice(), 0),
    }
}
