//! Value types shared by component configs: durations, byte sizes, network addresses.
//! Each parses the way the OpenTelemetry Collector's YAML writes it and fails with a message
//! that shows the expected form.

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as Go writes it: `200ms`, `5s`, `1m30s`, `1h`, `0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub StdDuration);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Self(StdDuration::from_secs(s))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Self(StdDuration::from_millis(ms))
    }
    pub fn get(self) -> StdDuration {
        self.0
    }
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for StdDuration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = || {
            format!("invalid duration {s:?}: expected a number with a unit (ns, us, ms, s, m, h), like \"5s\", \"200ms\" or \"1m30s\"")
        };
        let text = s.trim();
        if text == "0" {
            return Ok(Self::default());
        }
        if text.is_empty() || text.starts_with('-') {
            return Err(expected());
        }
        let mut total = 0f64;
        let mut rest = text;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(expected)?;
            if num_len == 0 {
                return Err(expected());
            }
            let value: f64 = rest[..num_len].parse().map_err(|_| expected())?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let nanos_per_unit = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return Err(expected()),
            };
            total += value * nanos_per_unit;
            rest = &rest[unit_len..];
        }
        if !total.is_finite() || total > u64::MAX as f64 {
            return Err(format!("invalid duration {s:?}: too large"));
        }
        Ok(Self(StdDuration::from_nanos(total as u64)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d.subsec_nanos() == 0 {
            let s = d.as_secs();
            if s.is_multiple_of(3600) {
                return write!(f, "{}h", s / 3600);
            }
            if s.is_multiple_of(60) {
                return write!(f, "{}m", s / 60);
            }
            return write!(f, "{s}s");
        }
        if d.as_nanos().is_multiple_of(1_000_000) {
            return write!(f, "{}ms", d.as_millis());
        }
        write!(f, "{}ns", d.as_nanos())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"5s\", \"200ms\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!(
                        "invalid duration {v}: a duration needs a unit, like \"{v}s\" or \"{v}ms\""
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration {v}: a duration needs a unit, like \"5s\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A size in bytes: a plain integer, or a number with a unit (`512KiB`, `5MB`, `1GiB`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = || {
            format!("invalid size {s:?}: expected bytes as an integer or a number with a unit (B, KB, MB, GB, KiB, MiB, GiB), like \"5MiB\"")
        };
        let text = s.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        if split == 0 {
            return Err(expected());
        }
        let value: f64 = text[..split].parse().map_err(|_| expected())?;
        let multiplier = match text[split..].trim() {
            "" | "B" | "b" => 1u64,
            "KB" | "kB" | "kb" => 1000,
            "MB" | "mb" => 1000 * 1000,
            "GB" | "gb" => 1000 * 1000 * 1000,
            "KiB" | "Ki" | "K" => 1 << 10,
            "MiB" | "Mi" | "M" => 1 << 20,
            "GiB" | "Gi" | "G" => 1 << 30,
            _ => return Err(expected()),
        };
        let total = value * multiplier as f64;
        if !total.is_finite() || total > u64::MAX as f64 {
            return Err(format!("invalid size {s:?}: too large"));
        }
        Ok(Self(total as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes, like 1048576 or \"5MiB\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                Err(E::custom(format!("invalid size {v}: must not be negative")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A listen or connect address `host:port` (`localhost:4317`, `0.0.0.0:4318`, `[::1]:4317`,
/// `:4317` for every interface). Validated when read; resolved only when a component starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The address to hand to a socket API: an empty host means every interface.
    pub fn to_socket_string(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = || {
            format!("invalid address {s:?}: expected host:port, like \"localhost:4317\" or \"0.0.0.0:4318\"")
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, rest) = rest.split_once(']').ok_or_else(expected)?;
            (host, rest.strip_prefix(':').ok_or_else(expected)?)
        } else {
            s.rsplit_once(':').ok_or_else(expected)?
        };
        if host.contains(['/', ' ']) || (host.contains(':') && !s.starts_with('[')) {
            return Err(expected());
        }
        let port: u16 = port.parse().map_err(|_| {
            format!("invalid address {s:?}: port {port:?} is not a number from 0 to 65535")
        })?;
        Ok(Self::new(host, port))
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        let ok = [
            ("5s", 5_000),
            ("200ms", 200),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("0", 0),
            ("1.5s", 1_500),
        ];
        for (text, ms) in ok {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.0.as_millis(), ms, "{text}");
        }
        for bad in ["", "5", "5 s", "-1s", "5sec", "s", "1x"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!("5MiB".parse::<ByteSize>().unwrap().0, 5 << 20);
        assert_eq!("5MB".parse::<ByteSize>().unwrap().0, 5_000_000);
        assert_eq!("1024".parse::<ByteSize>().unwrap().0, 1024);
        assert!("5 lots".parse::<ByteSize>().is_err());
        assert!("MiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            "localhost:4317".parse::<Endpoint>().unwrap(),
            Endpoint::new("localhost", 4317)
        );
        assert_eq!(
            "[::1]:4318".parse::<Endpoint>().unwrap(),
            Endpoint::new("::1", 4318)
        );
        assert_eq!(
            ":4317".parse::<Endpoint>().unwrap().to_socket_string(),
            "0.0.0.0:4317"
        );
        for bad in [
            "localhost",
            "localhost:99999",
            "http://x:1",
            "::1:80",
            "host:port",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad:?} should fail");
        }
    }
}
