//! `tls` of an exporter: the Collector's `configtls.ClientConfig` keys, and the client
//! configurations built from them (reqwest for HTTP; tonic builds its own from [`LoadedTls`]).

use std::path::PathBuf;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

/// `tls`: the Collector's `configtls.ClientConfig` keys Weft supports.
///
/// As in the Collector, TLS is on unless `insecure: true` (and no `ca_file` is given); an
/// `https://` endpoint always uses TLS. Files are read when the exporter is built, so
/// `weft validate` does not need them to exist.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientSettings {
    /// Plaintext connection (gRPC only; an `otlphttp` endpoint's scheme decides there).
    pub insecure: bool,
    /// Accept any server certificate. For testing only: it defeats the point of TLS.
    pub insecure_skip_verify: bool,
    /// PEM file of the CA(s) that signed the server's certificate, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for mutual TLS; both or neither.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name to verify the server's certificate against, instead of the endpoint's host.
    pub server_name_override: Option<String>,
}

impl TlsClientSettings {
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.cert_file.is_some() != self.key_file.is_some() {
            let missing = if self.cert_file.is_some() {
                "key_file"
            } else {
                "cert_file"
            };
            diags.error(
                &path.key(missing),
                "for client authentication via TLS, provide both cert_file and key_file, or neither",
            );
        }
    }

    /// The PEM contents of the configured files, read now. Errors name the key and the file.
    pub fn load(&self) -> anyhow::Result<LoadedTls> {
        let read = |key: &str, file: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
            file.as_ref()
                .map(|p| {
                    std::fs::read(p).map_err(|e| {
                        anyhow::anyhow!("tls::{key}: cannot read \"{}\": {e}", p.display())
                    })
                })
                .transpose()
        };
        let ca = read("ca_file", &self.ca_file)?;
        let cert = read("cert_file", &self.cert_file)?;
        let key = read("key_file", &self.key_file)?;
        Ok(LoadedTls {
            ca,
            identity: cert.zip(key),
        })
    }

    /// An HTTP client (for `otlphttp` and `elasticsearch`) trusting `ca_file` (instead of the
    /// system roots, as the Collector does), presenting `cert_file`/`key_file`, and skipping
    /// verification only with `insecure_skip_verify`. Files are read now.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10));
        let loaded = self.load()?;
        if let Some(ca) = loaded.ca {
            let cert = reqwest::Certificate::from_pem(&ca)
                .map_err(|e| anyhow::anyhow!("tls::ca_file: not a PEM certificate: {e}"))?;
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(cert);
        }
        if let Some((cert, key)) = loaded.identity {
            let mut pem = cert;
            pem.push(b'\n');
            pem.extend_from_slice(&key);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                anyhow::anyhow!("tls::cert_file/key_file: not a PEM certificate and key: {e}")
            })?;
            builder = builder.identity(identity);
        }
        if self.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        Ok(builder.build()?)
    }
}

/// PEM material read from [`TlsClientSettings`]' files.
pub struct LoadedTls {
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// `tls::insecure_skip_verify`: accepts any certificate chain and host name (as Go's
/// `InsecureSkipVerify`), but still checks that the server holds the certificate's key.
#[derive(Debug)]
pub struct SkipVerify {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl Default for SkipVerify {
    fn default() -> Self {
        Self {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
