//! What the clients of every exporter share, whichever protocol they speak: TLS client
//! settings, compression, and reading a server's `Retry-After`. The Collector keeps these in
//! `config/configtls`, `configcompression` and `confighttp`; here they sit below the
//! exporters so that none of them reaches into another for them.

mod compression;
pub mod kafka;
mod retry_after;
mod tls;

pub use compression::{compress, content_encoding, Compression};
pub use retry_after::parse_retry_after;
pub use tls::{LoadedTls, SkipVerify, TlsClientSettings};

/// An error with its causes, e.g. "transport error: no native certs found".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
