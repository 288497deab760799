//! [`Secret`]: a configured credential that never shows up in logs, `Debug` output or
//! `weft validate` diagnostics.
//!
//! Used by every config key that holds a credential: the `elasticsearch` exporter's
//! `password`, `api_key`, `bearer_token` and header values, the `bearertokenauth` extension's
//! `token(s)`, and the `otlp` receiver's inline `tls::key_pem`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// A configured credential. `Debug` and `Display` never show it, so a config dumped into a
/// log or an error message does not leak it; [`Secret::expose`] is the one way to read it.
///
/// Deserializing never echoes the value either: a wrong type is reported as "expected a
/// string" without the value (serde's usual message would quote a number it refused). Numbers
/// and booleans are taken as their text, because `${env:TOKEN}` expansion turns a variable
/// holding only digits into a YAML number.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for building a request header or comparing a credential.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("[REDACTED]")
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (the value is a secret and is not shown)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Secret, E> {
        Ok(Secret::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Secret, E> {
        Ok(Secret::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_yaml::Value;
    use weft_config::{decode_with_path, ConfigPath, Diagnostics};

    #[derive(Debug, Deserialize)]
    struct Holder {
        token: Secret,
    }

    fn decode(yaml: &str) -> (Option<Holder>, String) {
        let v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diagnostics::new();
        let h = decode_with_path::<Holder>(&v, &ConfigPath::root().key("x"), &mut d);
        (h, d.to_string())
    }

    #[test]
    fn never_shown() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "[REDACTED]");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn scalars_are_taken_as_text() {
        assert_eq!(decode("token: abc").0.unwrap().token.expose(), "abc");
        assert_eq!(
            decode("token: 12345678").0.unwrap().token.expose(),
            "12345678"
        );
        assert_eq!(decode("token: true").0.unwrap().token.expose(), "true");
        assert!(decode("token: ~").0.unwrap().token.is_empty());
    }

    #[test]
    fn a_wrong_type_is_reported_without_the_value() {
        let (h, msg) = decode("token: {value: s3cr3t-in-a-map}");
        assert!(h.is_none());
        assert!(msg.contains("x::token"), "{msg}");
        assert!(msg.contains("not shown"), "{msg}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
        let (_, msg) = decode("token: [s3cr3t]");
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }
}
