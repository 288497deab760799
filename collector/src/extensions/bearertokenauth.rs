//! The `bearertokenauth` extension, as the Collector contrib's bearertokenauthextension on the
//! server side: receivers that name it (`auth: { authenticator: bearertokenauth }`) accept a
//! request only when it carries `<header>: <scheme> <token>` with one of the configured
//! tokens.
//!
//! ```yaml
//! extensions:
//!   bearertokenauth:
//!     token: ${env:OTLP_TOKEN}   # or `tokens: [...]`, or `filename: /run/secrets/otlp-token`
//!     scheme: Bearer             # default; "" compares the bare token
//!     header: Authorization      # default
//! service:
//!   extensions: [bearertokenauth]
//! ```
//!
//! Tokens are [`Secret`]s: never logged, never in diagnostics. `filename` is read when the
//! extension starts (one token per line, blank lines ignored); a missing or empty file fails
//! the start naming the file. Unlike the Collector, the file is not watched: restart Weft to
//! rotate the token. Comparisons take the same time whatever the sent value is, so the
//! token cannot be guessed byte by byte from response times.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName};
use parking_lot::RwLock;
use serde::Deserialize;
use weft_config::{ComponentConfig, ConfigPath, Diagnostics};

use super::auth::{self, ServerAuthenticator};
use crate::component::{BuildContext, Component, ExtensionFactory, Stability};
use crate::secret::Secret;

/// `extensions::bearertokenauth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The token clients must send. `${env:…}` references are expanded.
    pub token: Secret,
    /// Several accepted tokens (e.g. while rotating); any one of them is accepted.
    pub tokens: Vec<Secret>,
    /// A file holding the token(s), one per line, read when the extension starts. It takes
    /// precedence over `token`/`tokens`, as in the Collector.
    pub filename: Option<PathBuf>,
    /// The auth scheme in front of the token; default `Bearer`. Empty: the bare token.
    pub scheme: String,
    /// The header carrying the credentials; default `Authorization`.
    pub header: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            token: Secret::default(),
            tokens: Vec::new(),
            filename: None,
            scheme: "Bearer".to_string(),
            header: "Authorization".to_string(),
        }
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        let has_inline = !self.token.is_empty() || !self.tokens.is_empty();
        match (&self.filename, has_inline) {
            (None, false) => diags.error(
                path,
                "no bearer token provided: set token (e.g. token: ${env:OTLP_TOKEN}), tokens or filename",
            ),
            (Some(_), true) => diags.warning(
                &path.key("filename"),
                "filename is set: the configured token(s) are ignored",
            ),
            _ => {}
        }
        if let Some(f) = &self.filename {
            if f.as_os_str().is_empty() {
                diags.error(&path.key("filename"), "must not be empty");
            }
        }
        for (i, t) in self.tokens.iter().enumerate() {
            if t.is_empty() {
                diags.error(
                    &path.key("tokens").index(i),
                    "an empty token would let anyone in: remove it",
                );
            }
        }
        if HeaderName::from_bytes(self.header.as_bytes()).is_err() {
            diags.error(
                &path.key("header"),
                format!("{:?} is not a valid HTTP header name", self.header),
            );
        }
        if self
            .scheme
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            diags.error(
                &path.key("scheme"),
                format!(
                    "{:?} is not an auth scheme: expected one word like \"Bearer\"",
                    self.scheme
                ),
            );
        }
    }
}

pub fn factory() -> ExtensionFactory {
    ExtensionFactory::new::<Config>(
        "bearertokenauth",
        Stability::Beta,
        "authenticates receiver requests by a bearer token (auth: { authenticator: bearertokenauth })",
        build,
    )
}

fn build(ctx: BuildContext, cfg: &Config) -> anyhow::Result<Arc<dyn Component>> {
    let header = HeaderName::from_bytes(cfg.header.as_bytes()).map_err(|_| {
        anyhow::anyhow!(
            "extensions::{}::header: {:?} is not a valid HTTP header name",
            ctx.id,
            cfg.header
        )
    })?;
    let inline: Vec<Secret> = std::iter::once(cfg.token.clone())
        .chain(cfg.tokens.iter().cloned())
        .filter(|t| !t.is_empty())
        .collect();
    let verifier = Arc::new(BearerTokenAuth {
        id: ctx.id_str(),
        header,
        scheme: cfg.scheme.clone(),
        filename: cfg.filename.clone(),
        expected: RwLock::new(Vec::new()),
    });
    if cfg.filename.is_none() {
        verifier.set_tokens(&inline);
    }
    auth::register(&ctx.shared, &ctx.id, verifier.clone())?;
    Ok(verifier)
}

/// The running extension: the accepted `Authorization` values, ready to compare.
pub struct BearerTokenAuth {
    id: String,
    header: HeaderName,
    scheme: String,
    filename: Option<PathBuf>,
    /// Each accepted header value in full (`Bearer <token>`). Empty until the extension has
    /// its tokens: nothing is accepted then.
    expected: RwLock<Vec<Secret>>,
}

impl BearerTokenAuth {
    fn set_tokens(&self, tokens: &[Secret]) {
        let values = tokens
            .iter()
            .map(|t| {
                if self.scheme.is_empty() {
                    t.clone()
                } else {
                    Secret::new(format!("{} {}", self.scheme, t.expose()))
                }
            })
            .collect();
        *self.expected.write() = values;
    }

    /// Reads `filename`: one token per line, surrounding blanks trimmed, empty lines skipped.
    fn read_file(&self, path: &std::path::Path) -> anyhow::Result<Vec<Secret>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "extensions::{}::filename: cannot read the token file {}: {e}",
                self.id,
                path.display()
            )
        })?;
        let tokens: Vec<Secret> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(Secret::new)
            .collect();
        anyhow::ensure!(
            !tokens.is_empty(),
            "extensions::{}::filename: the token file {} is empty: write the token into it",
            self.id,
            path.display()
        );
        Ok(tokens)
    }
}

#[async_trait]
impl Component for BearerTokenAuth {
    /// Reads the token file, if any. Extensions start before receivers, so no request is
    /// checked before the tokens are in place.
    async fn start(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.filename {
            let tokens = self.read_file(path)?;
            self.set_tokens(&tokens);
            tracing::info!(component = %self.id, file = %path.display(), tokens = tokens.len(), "bearer token(s) loaded");
        }
        Ok(())
    }
}

impl ServerAuthenticator for BearerTokenAuth {
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(sent) = headers.get(&self.header).filter(|v| !v.is_empty()) else {
            let form = if self.scheme.is_empty() {
                "<token>".to_string()
            } else {
                format!("{} <token>", self.scheme)
            };
            return Err(format!(
                "missing credentials: send the header \"{}: {form}\"",
                self.header
            ));
        };
        let expected = self.expected.read();
        // Every accepted value is compared, whatever matched, so the time taken does not
        // say which one (or how much of one) matched.
        let mut ok = false;
        for value in expected.iter() {
            ok |= constant_time_eq(value.expose().as_bytes(), sent.as_bytes());
        }
        if ok {
            Ok(())
        } else {
            Err(format!(
                "the credentials in the {} header are not valid",
                self.header
            ))
        }
    }

    fn challenge(&self) -> String {
        if self.scheme.is_empty() {
            "Bearer".to_string()
        } else {
            self.scheme.clone()
        }
    }
}

/// Equal contents, in a time that depends only on the lengths (as Go's
/// `subtle.ConstantTimeCompare`): no early exit at the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::SharedInstances;
    use crate::health::Health;
    use crate::telemetry::Telemetry;
    use serde_yaml::Value;
    use weft_config::{decode_component, ComponentId, Kind};

    fn decode(yaml: &str) -> (Option<Config>, Vec<String>) {
        let v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diagnostics::new();
        let path = ConfigPath::root().key("extensions").key("bearertokenauth");
        let c = decode_component::<Config>(&v, &path, &mut d);
        (c, d.iter().map(|d| d.to_string()).collect())
    }

    fn built(yaml: &str) -> (SharedInstances, Arc<dyn Component>) {
        let (cfg, msgs) = decode(yaml);
        assert!(msgs.iter().all(|m| !m.starts_with("error")), "{msgs:?}");
        let shared = SharedInstances::default();
        let ctx = BuildContext {
            id: ComponentId::new("bearertokenauth", None),
            kind: Kind::Extension,
            telemetry: Telemetry::new(),
            health: Health::default(),
            shared: shared.clone(),
        };
        let component = build(ctx, &cfg.unwrap()).unwrap();
        (shared, component)
    }

    fn auth(shared: &SharedInstances) -> Arc<dyn ServerAuthenticator> {
        auth::lookup(shared, &ComponentId::new("bearertokenauth", None)).unwrap()
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn defaults_and_validation() {
        let (c, msgs) = decode("token: abc");
        assert!(msgs.is_empty(), "{msgs:?}");
        let c = c.unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.header, "Authorization");
        let (_, msgs) = decode("~");
        assert_eq!(
            msgs,
            ["error: extensions::bearertokenauth: no bearer token provided: set token (e.g. token: ${env:OTLP_TOKEN}), tokens or filename"]
        );
        let (_, msgs) =
            decode("token: a\nfilename: /x\nheader: 'bad header'\nscheme: 'a b'\ntokens: ['']");
        assert_eq!(
            msgs,
            [
                "warning: extensions::bearertokenauth::filename: filename is set: the configured token(s) are ignored",
                "error: extensions::bearertokenauth::tokens[0]: an empty token would let anyone in: remove it",
                "error: extensions::bearertokenauth::header: \"bad header\" is not a valid HTTP header name",
                "error: extensions::bearertokenauth::scheme: \"a b\" is not an auth scheme: expected one word like \"Bearer\"",
            ]
        );
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let (c, _) = decode("token: the-token-value\ntokens: [second-token-value]");
        let text = format!("{:?}", c.unwrap());
        assert!(!text.contains("token-value"), "{text}");
        assert!(text.contains("[REDACTED]"), "{text}");
    }

    #[tokio::test]
    async fn the_right_token_is_accepted_and_anything_else_refused() {
        let (shared, component) = built("token: s3cret\ntokens: [other]");
        component.start().await.unwrap();
        let a = auth(&shared);
        assert!(a
            .authenticate(&headers("authorization", "Bearer s3cret"))
            .is_ok());
        assert!(a
            .authenticate(&headers("Authorization", "Bearer other"))
            .is_ok());
        let missing = a.authenticate(&HeaderMap::new()).unwrap_err();
        assert_eq!(
            missing,
            "missing credentials: send the header \"authorization: Bearer <token>\""
        );
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cretX",
            "bearer s3cret",
            "s3cret",
            "Basic s3cret",
        ] {
            let e = a
                .authenticate(&headers("authorization", wrong))
                .unwrap_err();
            assert_eq!(
                e,
                "the credentials in the authorization header are not valid"
            );
            assert!(!e.contains("s3cre"), "the sent value is never echoed");
        }
        assert_eq!(a.challenge(), "Bearer");
    }

    #[tokio::test]
    async fn custom_header_and_scheme() {
        let (shared, component) = built("token: k\nheader: X-Api-Key\nscheme: ''");
        component.start().await.unwrap();
        let a = auth(&shared);
        assert!(a.authenticate(&headers("x-api-key", "k")).is_ok());
        assert!(a
            .authenticate(&headers("authorization", "Bearer k"))
            .is_err());
        assert_eq!(a.challenge(), "Bearer");
    }

    #[tokio::test]
    async fn the_token_file_is_read_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  from-file  \n\nsecond\n").unwrap();
        let yaml = format!("filename: {}", path.display());
        let (shared, component) = built(&yaml);
        let a = auth(&shared);
        // Nothing is accepted before the start read the file.
        assert!(a
            .authenticate(&headers("authorization", "Bearer from-file"))
            .is_err());
        component.start().await.unwrap();
        assert!(a
            .authenticate(&headers("authorization", "Bearer from-file"))
            .is_ok());
        assert!(a
            .authenticate(&headers("authorization", "Bearer second"))
            .is_ok());
    }

    #[tokio::test]
    async fn a_missing_or_empty_token_file_fails_the_start_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let (_, component) = built(&format!("filename: {}", missing.display()));
        let e = component.start().await.unwrap_err().to_string();
        assert!(
            e.starts_with("extensions::bearertokenauth::filename: cannot read the token file")
                && e.contains(&missing.display().to_string()),
            "{e}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n  \n").unwrap();
        let (_, component) = built(&format!("filename: {}", empty.display()));
        let e = component.start().await.unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    const CONFIG: &str = r#"
extensions:
  bearertokenauth:
    token: ${env:OTLP_TOKEN}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
        auth:
          authenticator: bearertokenauth
exporters:
  debug:
service:
  extensions: [EXTENSIONS]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    metrics:
      level: none
"#;

    fn load(extensions: &str, env: &[(&str, &str)]) -> crate::service::LoadedConfig {
        let text = CONFIG.replace("EXTENSIONS", extensions);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        crate::service::load_config(&text, &lookup, &crate::registry::Registry::builtin())
    }

    #[test]
    fn a_referenced_authenticator_must_be_listed_in_service_extensions() {
        let loaded = load("", &[("OTLP_TOKEN", "t")]);
        let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
        assert_eq!(
            errors,
            ["error: receivers::otlp::protocols::http::auth::authenticator: references extension \"bearertokenauth\" which is not listed in service::extensions: add it there so it runs"]
        );
        let text = CONFIG.replace("EXTENSIONS", "").replace(
            "authenticator: bearertokenauth",
            "authenticator: bearertokenauth/other",
        );
        let loaded = crate::service::load_config(
            &text,
            &|_: &str| Some("t".to_string()),
            &crate::registry::Registry::builtin(),
        );
        let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
        assert_eq!(
            errors,
            ["error: receivers::otlp::protocols::http::auth::authenticator: references extension \"bearertokenauth/other\" which is not defined under extensions"]
        );
    }

    #[test]
    fn an_env_token_is_used_and_never_shown_in_diagnostics() {
        let loaded = load("bearertokenauth", &[("OTLP_TOKEN", "s3cr3t-from-env")]);
        assert!(loaded.is_valid(), "{}", loaded.diagnostics);
        // The receiver finds the extension's authenticator when the service is built.
        crate::service::Service::build(&loaded, &crate::registry::Registry::builtin()).unwrap();

        // A token of digits becomes a YAML number through expansion: still a token.
        let loaded = load("bearertokenauth", &[("OTLP_TOKEN", "12345678")]);
        assert!(loaded.is_valid(), "{}", loaded.diagnostics);

        // A wrongly typed token is reported without its value.
        let text = CONFIG
            .replace("EXTENSIONS", "bearertokenauth")
            .replace("${env:OTLP_TOKEN}", "{nested: s3cr3t-in-a-map}");
        let loaded = crate::service::load_config(
            &text,
            &|_: &str| None,
            &crate::registry::Registry::builtin(),
        );
        let shown = loaded.diagnostics.to_string();
        assert!(!loaded.is_valid());
        assert!(
            shown.contains("extensions::bearertokenauth::token"),
            "{shown}"
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
