//! `tls` on the receiver's servers: the Collector's `configtls.ServerConfig` keys, served with
//! rustls (ring provider).
//!
//! ```yaml
//! tls:
//!   cert_file: /etc/weft/server.crt   # PEM chain, leaf first (or cert_pem: inline)
//!   key_file: /etc/weft/server.key    # PEM key: PKCS#8, PKCS#1 or SEC1 (or key_pem: inline)
//!   client_ca_file: /etc/weft/ca.crt  # mTLS: clients must present a certificate it signed
//!   min_version: "1.2"                # default "1.2"; "1.3" refuses TLS 1.2 clients
//!   max_version: ""                   # default: the highest, 1.3
//! ```
//!
//! Files are read when the receiver starts, not when the configuration is validated, so
//! `weft validate` runs where the certificates are not. A file that cannot be read or holds no
//! certificate/key fails the start with a message naming the key and the file, never
//! showing the file's contents. Certificates are read once: `reload_interval` is accepted
//! with a warning (restart Weft to pick up renewed certificates).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use serde::Deserialize;
use serde_yaml::Value;
use weft_config::{ConfigPath, Diagnostics, Duration as CfgDuration};

use crate::secret::Secret;

/// `tls` of `protocols::grpc` and `protocols::http`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerSettings {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: Option<PathBuf>,
    /// The chain inline, instead of `cert_file`.
    pub cert_pem: Option<String>,
    /// The certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// The key inline, instead of `key_file`; never shown in logs or diagnostics.
    pub key_pem: Option<Secret>,
    /// CA certificate(s) (PEM) that client certificates must chain to. Set: every client must
    /// present a valid certificate (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
    /// The lowest TLS version accepted: "1.2" (default) or "1.3".
    pub min_version: String,
    /// The highest TLS version offered; empty means the highest supported (1.3).
    pub max_version: String,
    /// Accepted for compatibility; certificates are read once, at start.
    pub reload_interval: Option<CfgDuration>,
    // Collector keys that mean nothing on a server or are not supported.
    pub(crate) ca_file: Option<Value>,
    pub(crate) ca_pem: Option<Value>,
    pub(crate) include_system_ca_certs_pool: Option<Value>,
    pub(crate) reload_client_ca_file: Option<Value>,
    pub(crate) cipher_suites: Option<Value>,
    pub(crate) curve_preferences: Option<Value>,
    pub(crate) tpm_config: Option<Value>,
}

impl Default for TlsServerSettings {
    fn default() -> Self {
        Self {
            cert_file: None,
            cert_pem: None,
            key_file: None,
            key_pem: None,
            client_ca_file: None,
            // The Collector's configtls default.
            min_version: "1.2".to_string(),
            max_version: String::new(),
            reload_interval: None,
            ca_file: None,
            ca_pem: None,
            include_system_ca_certs_pool: None,
            reload_client_ca_file: None,
            cipher_suites: None,
            curve_preferences: None,
            tpm_config: None,
        }
    }
}

/// A TLS version as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    /// "1.0" or "1.1": known to the Collector, not spoken by rustls.
    Legacy,
    V12,
    V13,
}

fn parse_version(text: &str) -> Option<Version> {
    match text {
        "1.0" | "1.1" => Some(Version::Legacy),
        "1.2" => Some(Version::V12),
        "1.3" => Some(Version::V13),
        _ => None,
    }
}

fn is_set(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Sequence(s)) => !s.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Bool(b)) => *b,
        Some(_) => true,
    }
}

impl TlsServerSettings {
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        let has_cert = self.cert_file.is_some() || self.cert_pem.is_some();
        let has_key = self.key_file.is_some() || self.key_pem.is_some();
        if self.cert_file.is_some() && self.cert_pem.is_some() {
            diags.error(
                &path.key("cert_pem"),
                "provide either cert_file or cert_pem, not both",
            );
        }
        if self.key_file.is_some() && self.key_pem.is_some() {
            diags.error(
                &path.key("key_pem"),
                "provide either key_file or key_pem, not both",
            );
        }
        match (has_cert, has_key) {
            (true, false) => diags.error(
                &path.key("key_file"),
                "a TLS server needs its private key: set key_file next to cert_file",
            ),
            (false, true) => diags.error(
                &path.key("cert_file"),
                "a TLS server needs its certificate: set cert_file next to key_file",
            ),
            (false, false) => diags.error(
                path,
                "a TLS server needs a certificate and its key: set cert_file and key_file (or remove tls: to serve plaintext)",
            ),
            (true, true) => {}
        }
        let min = self.check_version(path, "min_version", &self.min_version, diags);
        let max = if self.max_version.is_empty() {
            Some(Version::V13)
        } else {
            self.check_version(path, "max_version", &self.max_version, diags)
        };
        if min == Some(Version::Legacy) {
            diags.warning(
                &path.key("min_version"),
                format!(
                    "TLS {} is not spoken by Weft (rustls supports 1.2 and 1.3): the minimum is 1.2",
                    self.min_version
                ),
            );
        }
        if max == Some(Version::Legacy) {
            diags.error(
                &path.key("max_version"),
                format!(
                    "TLS {} is not supported (rustls speaks 1.2 and 1.3): use \"1.2\", \"1.3\" or leave it empty",
                    self.max_version
                ),
            );
        } else if let (Some(min), Some(max)) = (min, max) {
            if min > max {
                diags.error(
                    &path.key("min_version"),
                    format!(
                        "min_version {:?} is above max_version {:?}",
                        self.min_version, self.max_version
                    ),
                );
            }
        }
        if self.reload_interval.is_some_and(|d| !d.is_zero()) {
            diags.warning(
                &path.key("reload_interval"),
                "not supported yet: certificates are read once, at start; restart Weft to use renewed ones",
            );
        }
        for (key, value) in [("ca_file", &self.ca_file), ("ca_pem", &self.ca_pem)] {
            if is_set(value) {
                diags.warning(
                    &path.key(key),
                    "ignored on a server: to verify client certificates, set client_ca_file",
                );
            }
        }
        for (key, value) in [
            (
                "include_system_ca_certs_pool",
                &self.include_system_ca_certs_pool,
            ),
            ("reload_client_ca_file", &self.reload_client_ca_file),
        ] {
            if is_set(value) {
                diags.warning(&path.key(key), "not supported yet: ignored");
            }
        }
        for (key, value) in [
            ("cipher_suites", &self.cipher_suites),
            ("curve_preferences", &self.curve_preferences),
            ("tpm_config", &self.tpm_config),
        ] {
            if is_set(value) {
                diags.error(
                    &path.key(key),
                    format!("\"{key}\" is not supported yet by Weft's otlp receiver: remove it (rustls' defaults are used)"),
                );
            }
        }
    }

    fn check_version(
        &self,
        path: &ConfigPath,
        key: &str,
        value: &str,
        diags: &mut Diagnostics,
    ) -> Option<Version> {
        let v = parse_version(value);
        if v.is_none() {
            diags.error(
                &path.key(key),
                format!("unknown TLS version {value:?}: expected \"1.2\" or \"1.3\""),
            );
        }
        v
    }

    /// Reads the certificate, key and client CA and builds the server's TLS configuration,
    /// offering `alpn` (e.g. `h2`). `section` names this `tls` section in error messages.
    /// Nothing read is ever part of an error message: only key names, file names and the
    /// reason.
    pub fn load(&self, section: &str, alpn: &[&[u8]]) -> anyhow::Result<Arc<ServerConfig>> {
        let certs = match (&self.cert_file, &self.cert_pem) {
            (Some(file), _) => parse_certs(&read(section, "cert_file", file)?)
                .map_err(|e| anyhow::anyhow!("{section}::cert_file: {}: {e}", file.display()))?,
            (None, Some(pem)) => parse_certs(pem.as_bytes())
                .map_err(|e| anyhow::anyhow!("{section}::cert_pem: {e}"))?,
            (None, None) => {
                anyhow::bail!("{section}: no cert_file: a TLS server needs a certificate")
            }
        };
        let key = match (&self.key_file, &self.key_pem) {
            (Some(file), _) => parse_key(&read(section, "key_file", file)?)
                .map_err(|e| anyhow::anyhow!("{section}::key_file: {}: {e}", file.display()))?,
            (None, Some(pem)) => parse_key(pem.expose().as_bytes())
                .map_err(|e| anyhow::anyhow!("{section}::key_pem: {e}"))?,
            (None, None) => {
                anyhow::bail!("{section}: no key_file: a TLS server needs a private key")
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let min = parse_version(&self.min_version).unwrap_or(Version::V12);
        let max = if self.max_version.is_empty() {
            Version::V13
        } else {
            parse_version(&self.max_version).unwrap_or(Version::V13)
        };
        let versions: Vec<&'static SupportedProtocolVersion> = [
            (Version::V12, &rustls::version::TLS12),
            (Version::V13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| *v >= min && *v <= max)
        .map(|(_, p)| p)
        .collect();
        anyhow::ensure!(
            !versions.is_empty(),
            "{section}: min_version {:?} and max_version {:?} leave no TLS version to speak",
            self.min_version,
            self.max_version
        );
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| anyhow::anyhow!("{section}: {e}"))?;
        let builder = match &self.client_ca_file {
            Some(file) => {
                let cas = parse_certs(&read(section, "client_ca_file", file)?).map_err(|e| {
                    anyhow::anyhow!("{section}::client_ca_file: {}: {e}", file.display())
                })?;
                let mut roots = RootCertStore::empty();
                for ca in cas {
                    roots.add(ca).map_err(|e| {
                        anyhow::anyhow!(
                            "{section}::client_ca_file: {}: not a usable CA certificate: {e}",
                            file.display()
                        )
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| anyhow::anyhow!("{section}::client_ca_file: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            anyhow::anyhow!(
                "{section}: the certificate and key cannot be used together ({e}): check that key_file is the key of cert_file"
            )
        })?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn read(section: &str, key: &str, file: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("{section}::{key}: cannot read {}: {e}", file.display()))
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM ({e})"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (BEGIN CERTIFICATE) found".to_string());
    }
    Ok(certs)
}

fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) found"
                .to_string()
        }
        // The error's own text never includes the key material (only positions and kinds).
        other => format!("not a valid PEM private key ({other})"),
    })
}

#[cfg(test)]
pub(crate) mod test_certs {
    //! Certificates generated for tests: a CA, a server certificate for `localhost` and
    //! 127.0.0.1, and a client certificate signed by the same CA.

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    pub(crate) struct Pki {
        pub(crate) ca_pem: String,
        pub(crate) server_cert_pem: String,
        pub(crate) server_key_pem: String,
        pub(crate) client_cert_pem: String,
        pub(crate) client_key_pem: String,
    }

    pub(crate) fn pki() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "weft test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(vec!["client".to_string()]).unwrap();
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

        Pki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_config::decode_component;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Holder {
        tls: TlsServerSettings,
    }

    impl weft_config::ComponentConfig for Holder {
        fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
            self.tls.validate(&path.key("tls"), diags);
        }
    }

    fn decode(yaml: &str) -> (Option<Holder>, Vec<String>) {
        let v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diagnostics::new();
        let c = decode_component::<Holder>(&v, &ConfigPath::root().key("r"), &mut d);
        (c, d.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn cert_and_key_go_together() {
        let (_, msgs) = decode("tls: {cert_file: a.crt}");
        assert_eq!(
            msgs,
            ["error: r::tls::key_file: a TLS server needs its private key: set key_file next to cert_file"]
        );
        let (_, msgs) = decode("tls: {key_file: a.key}");
        assert_eq!(
            msgs,
            ["error: r::tls::cert_file: a TLS server needs its certificate: set cert_file next to key_file"]
        );
        let (_, msgs) = decode("tls: {}");
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("error: r::tls: a TLS server needs a certificate and its key"));
        let (_, msgs) = decode("tls: {cert_file: a, cert_pem: b, key_file: c}");
        assert_eq!(
            msgs,
            ["error: r::tls::cert_pem: provide either cert_file or cert_pem, not both"]
        );
    }

    #[test]
    fn versions_and_unsupported_keys() {
        let (c, msgs) = decode("tls: {cert_file: a, key_file: b, min_version: '1.3'}");
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(c.unwrap().tls.min_version, "1.3");
        let (_, msgs) = decode(
            "tls: {cert_file: a, key_file: b, min_version: '1.0', max_version: '1.4', reload_interval: 1h, ca_file: x, cipher_suites: [TLS_AES_128_GCM_SHA256]}",
        );
        assert_eq!(
            msgs,
            [
                "error: r::tls::max_version: unknown TLS version \"1.4\": expected \"1.2\" or \"1.3\"",
                "warning: r::tls::min_version: TLS 1.0 is not spoken by Weft (rustls supports 1.2 and 1.3): the minimum is 1.2",
                "warning: r::tls::reload_interval: not supported yet: certificates are read once, at start; restart Weft to use renewed ones",
                "warning: r::tls::ca_file: ignored on a server: to verify client certificates, set client_ca_file",
                "error: r::tls::cipher_suites: \"cipher_suites\" is not supported yet by Weft's otlp receiver: remove it (rustls' defaults are used)",
            ]
        );
        let (_, msgs) =
            decode("tls: {cert_file: a, key_file: b, min_version: '1.3', max_version: '1.2'}");
        assert_eq!(
            msgs,
            ["error: r::tls::min_version: min_version \"1.3\" is above max_version \"1.2\""]
        );
    }

    #[test]
    fn an_inline_key_is_never_shown() {
        let (c, _) = decode("tls: {cert_pem: c, key_pem: very-secret-key-material}");
        let text = format!("{:?}", c.unwrap());
        assert!(!text.contains("very-secret"), "{text}");
    }

    fn settings(dir: &Path, pki: &test_certs::Pki, mtls: bool) -> TlsServerSettings {
        std::fs::write(dir.join("server.crt"), &pki.server_cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), &pki.server_key_pem).unwrap();
        std::fs::write(dir.join("ca.crt"), &pki.ca_pem).unwrap();
        TlsServerSettings {
            cert_file: Some(dir.join("server.crt")),
            key_file: Some(dir.join("server.key")),
            client_ca_file: mtls.then(|| dir.join("ca.crt")),
            ..TlsServerSettings::default()
        }
    }

    #[test]
    fn loads_generated_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let pki = test_certs::pki();
        let cfg = settings(dir.path(), &pki, true)
            .load("tls", &[b"h2"])
            .unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"h2".to_vec()]);
        let inline = TlsServerSettings {
            cert_pem: Some(pki.server_cert_pem.clone()),
            key_pem: Some(Secret::new(pki.server_key_pem.clone())),
            min_version: "1.3".into(),
            ..TlsServerSettings::default()
        };
        inline.load("tls", &[]).unwrap();
    }

    #[test]
    fn unreadable_or_wrong_files_are_named_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let pki = test_certs::pki();
        let mut s = settings(dir.path(), &pki, false);
        s.cert_file = Some(dir.path().join("missing.crt"));
        let e = s
            .load("receivers::otlp::protocols::http::tls", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("receivers::otlp::protocols::http::tls::cert_file: cannot read ")
                && e.contains("missing.crt"),
            "{e}"
        );
        // The key where the certificate belongs, and the other way round.
        let mut s = settings(dir.path(), &pki, false);
        std::mem::swap(&mut s.cert_file, &mut s.key_file);
        let e = s.load("tls", &[]).unwrap_err().to_string();
        assert!(
            e.contains("tls::cert_file") && e.contains("no PEM certificate"),
            "{e}"
        );
        assert!(!e.contains("PRIVATE KEY-----"), "{e}");
        let mut s = settings(dir.path(), &pki, false);
        s.key_file = Some(dir.path().join("ca.crt"));
        let e = s.load("tls", &[]).unwrap_err().to_string();
        assert!(
            e.contains("tls::key_file") && e.contains("no PEM private key"),
            "{e}"
        );
        // A key that is not the certificate's.
        let other = test_certs::pki();
        std::fs::write(dir.path().join("other.key"), &other.server_key_pem).unwrap();
        let mut s = settings(dir.path(), &pki, false);
        s.key_file = Some(dir.path().join("other.key"));
        let e = s.load("tls", &[]).unwrap_err().to_string();
        assert!(e.contains("cannot be used together"), "{e}");
        assert!(!e.contains(&other.server_key_pem[40..80]), "{e}");
    }
}
