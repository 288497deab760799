//! The `redaction` processor, as the Collector's redactionprocessor: removes attributes that
//! are not allowed and masks values that look like personal data, on resources, spans, span
//! events, log records **and log bodies** (strings and maps).
//!
//! ```yaml
//! redaction:
//!   allow_all_keys: false
//!   allowed_keys: [timestamp, level, service, event, trace_id, span_id, caller, context]
//!   allowed_key_patterns: ['^biz_']           # Weft: the seed's `biz_` namespace
//!   blocked_key_patterns: ['.*token.*', '.*password.*']
//!   blocked_values:
//!     - {pattern: '\b(1[3-9]\d)\d{4}(\d{4})\b', replacement: '$1****$2'}   # Weft: 138****5678
//!     - {pattern: '\b\d{13,19}\b', luhn: true}                           # Weft: bank cards only
//!     - '[\w.+-]+@[\w-]+\.[\w.-]+'
//!   summary: info
//! ```
//!
//! # Contract
//!
//! For each attribute list (a resource's, a span's, a span event's, a log record's), as the
//! Collector does, key by key:
//! 1. a key in `ignored_keys` (or matching `ignored_key_patterns`) is left as it is;
//! 2. unless `allow_all_keys`, a key not in `allowed_keys` (nor matching Weft's
//!    `allowed_key_patterns`) is removed — keys starting with `weft.` (Weft's own: the
//!    `schema` verdict, the tail sampler's enrichment) and the summary keys `redaction.*`
//!    are always allowed, their values still checked;
//! 3. a value matching `allowed_values` is left as it is;
//! 4. the value of a key matching `blocked_key_patterns` is masked whole;
//! 5. every match of `blocked_values` in the value is masked.
//!
//! Masking writes `****`, or with `hash_function` (`md5`, `sha1`, `sha3` = SHA3-256,
//! `hmac-sha256`, `hmac-sha512` keyed by `hmac_key`) the hex digest of what it replaces. Weft's
//! `blocked_values` entries may also be `{pattern, replacement, luhn}`: `replacement` is
//! written instead (`$1`, `$name` expand the pattern's groups; in a configuration file
//! `${name}` must be written `$${name}`, as `${…}` is an environment reference), and with
//! `luhn: true` only matches whose digits pass the Luhn check are masked (bank cards, not
//! order numbers).
//!
//! Values checked: strings; with `redact_all_types`, numbers and booleans too (by their text;
//! a masked one becomes a string). Lists and maps nested in attributes are walked and their
//! strings masked in place. A log body is walked as the Collector does: a string (or other
//! scalar) body is checked as a value; in a map body each key goes through 1–4 by its own
//! name at every level and the leaves through 3–5; lists are walked.
//!
//! `summary: debug` adds `redaction.{redacted,masked,allowed}.keys` (sorted, comma-joined)
//! and `.count` (and `redaction.ignored.count`) to each changed list's owner, with
//! `redaction.body.*` for bodies; `info` the counts only; `silent` (default) nothing.
//! Counted: `weft_processor_redaction_removed_keys`, `weft_processor_redaction_masked_values`.
//!
//! Regexes are compiled once, with the configuration, by the `regex` crate: matching is
//! linear in the input whatever the pattern — a pattern cannot backtrack catastrophically
//! (look-around and back-references are not available, and are config errors).
//! The Collector's `url_sanitizer` and `db_sanitizer` are not supported (a config error).

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use prometheus_client::metrics::counter::Counter;
use regex::{Captures, Regex, RegexSet};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256, Sha512};
use weft_config::{ComponentConfig, ConfigPath, Diagnostics};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};

use crate::component::{BuildContext, Component, Processor, ProcessorFactory, Stability};
use crate::ottl::Value;
use crate::pipeline::{Batch, ConsumeError, Consumer, Payload, Signal};
use crate::secret::Secret;

/// `processors::redaction`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub allow_all_keys: bool,
    pub allowed_keys: Vec<String>,
    /// Weft: keys matching any of these regexes are allowed too.
    pub allowed_key_patterns: Vec<String>,
    pub ignored_keys: Vec<String>,
    pub ignored_key_patterns: Vec<String>,
    pub blocked_key_patterns: Vec<String>,
    pub blocked_values: Vec<BlockedValue>,
    pub allowed_values: Vec<String>,
    pub redact_all_types: bool,
    pub hash_function: Option<HashFunction>,
    pub hmac_key: Option<Secret>,
    pub summary: Summary,
    /// The Collector's: not supported (a config error).
    pub url_sanitizer: Option<serde_yaml::Value>,
    /// The Collector's: not supported (a config error).
    pub db_sanitizer: Option<serde_yaml::Value>,
}

/// One `blocked_values` entry: a regex, or (Weft) `{pattern, replacement, luhn}`.
#[derive(Clone, Debug, Default)]
pub struct BlockedValue {
    pub pattern: String,
    pub replacement: Option<String>,
    pub luhn: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockedFields {
    pattern: String,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    luhn: bool,
}

impl<'de> Deserialize<'de> for BlockedValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(pattern) => Ok(Self {
                pattern,
                ..Self::default()
            }),
            map @ serde_yaml::Value::Mapping(_) => {
                let f: BlockedFields =
                    serde_yaml::from_value(map).map_err(serde::de::Error::custom)?;
                Ok(Self {
                    pattern: f.pattern,
                    replacement: f.replacement,
                    luhn: f.luhn,
                })
            }
            _ => Err(serde::de::Error::custom(
                "expected a regular expression (a string) or {pattern, replacement, luhn}",
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum HashFunction {
    #[serde(rename = "md5")]
    Md5,
    #[serde(rename = "sha1")]
    Sha1,
    #[serde(rename = "sha3")]
    Sha3,
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Summary {
    Debug,
    Info,
    #[default]
    Silent,
}

/// Compiles every regex of a list; errors are (index, message).
fn regexes(patterns: &[String]) -> (Vec<Regex>, Vec<(usize, String)>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        match Regex::new(p) {
            Ok(r) => out.push(r),
            Err(e) => errors.push((i, format!("invalid regular expression: {e}"))),
        }
    }
    (out, errors)
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        for (key, list) in [
            ("allowed_key_patterns", &self.allowed_key_patterns),
            ("ignored_key_patterns", &self.ignored_key_patterns),
            ("blocked_key_patterns", &self.blocked_key_patterns),
            ("allowed_values", &self.allowed_values),
        ] {
            for (i, message) in regexes(list).1 {
                diags.error(&path.key(key).index(i), message);
            }
        }
        for (i, b) in self.blocked_values.iter().enumerate() {
            let at = path.key("blocked_values").index(i);
            match Regex::new(&b.pattern) {
                Ok(r) => {
                    if let Some(replacement) = &b.replacement {
                        if let Some(group) = unknown_group(&r, replacement) {
                            diags.error(
                                &at.key("replacement"),
                                format!(
                                    "refers to group {group:?}, which the pattern does not have"
                                ),
                            );
                        }
                    }
                }
                Err(e) => {
                    let at = if b.replacement.is_some() || b.luhn {
                        at.key("pattern")
                    } else {
                        at
                    };
                    diags.error(&at, format!("invalid regular expression: {e}"));
                }
            }
        }
        match (self.hash_function, &self.hmac_key) {
            (Some(f @ (HashFunction::HmacSha256 | HashFunction::HmacSha512)), key) => {
                let min = if f == HashFunction::HmacSha256 {
                    32
                } else {
                    64
                };
                let len = key.as_ref().map_or(0, |k| k.expose().len());
                if len < min {
                    diags.error(
                        &path.key("hmac_key"),
                        format!("{} needs an hmac_key of at least {min} bytes (it is a secret: pass it with ${{env:…}})", hash_name(f)),
                    );
                }
            }
            (_, Some(_)) => diags.error(
                &path.key("hmac_key"),
                "hmac_key is only used with hash_function: hmac-sha256 or hmac-sha512",
            ),
            _ => {}
        }
        for (key, set) in [
            ("url_sanitizer", &self.url_sanitizer),
            ("db_sanitizer", &self.db_sanitizer),
        ] {
            if set.is_some() {
                diags.error(&path.key(key), format!("{key} is not supported by Weft"));
            }
        }
    }
}

fn hash_name(f: HashFunction) -> &'static str {
    match f {
        HashFunction::Md5 => "md5",
        HashFunction::Sha1 => "sha1",
        HashFunction::Sha3 => "sha3",
        HashFunction::HmacSha256 => "hmac-sha256",
        HashFunction::HmacSha512 => "hmac-sha512",
    }
}

/// A `$name` / `${name}` / `$1` in `replacement` that `regex` has no group for.
fn unknown_group(regex: &Regex, replacement: &str) -> Option<String> {
    let names: HashSet<&str> = regex.capture_names().flatten().collect();
    let groups = regex.captures_len();
    let bytes = replacement.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        let (name, next) = if bytes.get(i + 1) == Some(&b'{') {
            match replacement[i + 2..].find('}') {
                Some(end) => (&replacement[i + 2..i + 2 + end], i + 3 + end),
                None => return Some(replacement[i..].to_string()),
            }
        } else {
            let end = replacement[i + 1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(replacement.len(), |e| i + 1 + e);
            (&replacement[i + 1..end], end)
        };
        let known = match name.parse::<usize>() {
            Ok(n) => n < groups,
            Err(_) => names.contains(name),
        };
        if !name.is_empty() && !known {
            return Some(name.to_string());
        }
        i = next.max(i + 1);
    }
    None
}

/// A blocked value, compiled.
#[derive(Clone, Debug)]
struct Blocked {
    regex: Regex,
    replacement: Option<String>,
    luhn: bool,
}

/// How a masked match is written.
#[derive(Clone)]
enum Masker {
    Stars,
    Digest(fn(&[u8]) -> String),
    Hmac256(Hmac<Sha256>),
    Hmac512(Hmac<Sha512>),
}

impl Masker {
    fn mask(&self, text: &str) -> String {
        match self {
            Masker::Stars => "****".to_string(),
            Masker::Digest(f) => f(text.as_bytes()),
            Masker::Hmac256(mac) => {
                let mut m = mac.clone();
                m.update(text.as_bytes());
                hex::encode(m.finalize().into_bytes())
            }
            Masker::Hmac512(mac) => {
                let mut m = mac.clone();
                m.update(text.as_bytes());
                hex::encode(m.finalize().into_bytes())
            }
        }
    }
}

fn digest<D: Digest>(bytes: &[u8]) -> String {
    hex::encode(D::digest(bytes))
}

/// Whether the digits of `text` (other characters ignored) pass the Luhn check, with 12
/// to 19 of them as card numbers have.
fn luhn(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(12..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The compiled configuration.
struct Redactor {
    allow_all: bool,
    allowed: KeySet,
    allowed_patterns: Option<RegexSet>,
    ignored: KeySet,
    ignored_patterns: Option<RegexSet>,
    blocked_keys: Option<RegexSet>,
    blocked: Vec<Blocked>,
    /// Any blocked value matches: the quick test before finding which.
    blocked_set: Option<RegexSet>,
    allowed_values: Option<RegexSet>,
    all_types: bool,
    masker: Masker,
    summary: Summary,
}

/// Configured key names (`allowed_keys`, `ignored_keys`). Every key of every record and
/// body map is looked up, and these lists are short: comparing lengths and then bytes of a
/// few names costs less than hashing the key (SipHash was 2% of a log pipeline's CPU).
/// Long lists are hashed.
enum KeySet {
    Few(Vec<Box<str>>),
    Many(HashSet<String, foldhash::fast::RandomState>),
}

impl KeySet {
    /// Up to this many names are compared one by one.
    const FEW: usize = 16;

    fn new(keys: &[String]) -> Self {
        if keys.len() <= Self::FEW {
            KeySet::Few(keys.iter().map(|k| k.as_str().into()).collect())
        } else {
            KeySet::Many(keys.iter().cloned().collect())
        }
    }

    fn contains(&self, key: &str) -> bool {
        match self {
            KeySet::Few(keys) => keys.iter().any(|k| k.len() == key.len() && **k == *key),
            KeySet::Many(keys) => keys.contains(key),
        }
    }
}

fn set(patterns: &[String]) -> anyhow::Result<Option<RegexSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    Ok(Some(RegexSet::new(patterns)?))
}

impl Redactor {
    fn new(cfg: &Config) -> anyhow::Result<Self> {
        let blocked = cfg
            .blocked_values
            .iter()
            .map(|b| {
                Ok(Blocked {
                    regex: Regex::new(&b.pattern)?,
                    replacement: b.replacement.clone(),
                    luhn: b.luhn,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let key = || {
            cfg.hmac_key
                .as_ref()
                .map_or(&[][..], |k| k.expose().as_bytes())
        };
        let masker = match cfg.hash_function {
            None => Masker::Stars,
            Some(HashFunction::Md5) => Masker::Digest(digest::<md5::Md5>),
            Some(HashFunction::Sha1) => Masker::Digest(digest::<sha1::Sha1>),
            Some(HashFunction::Sha3) => Masker::Digest(digest::<sha3::Sha3_256>),
            Some(HashFunction::HmacSha256) => Masker::Hmac256(
                Hmac::<Sha256>::new_from_slice(key())
                    .map_err(|_| anyhow::anyhow!("hmac_key: not a usable key"))?,
            ),
            Some(HashFunction::HmacSha512) => Masker::Hmac512(
                Hmac::<Sha512>::new_from_slice(key())
                    .map_err(|_| anyhow::anyhow!("hmac_key: not a usable key"))?,
            ),
        };
        Ok(Self {
            allow_all: cfg.allow_all_keys,
            allowed: KeySet::new(&cfg.allowed_keys),
            allowed_patterns: set(&cfg.allowed_key_patterns)?,
            ignored: KeySet::new(&cfg.ignored_keys),
            ignored_patterns: set(&cfg.ignored_key_patterns)?,
            blocked_keys: set(&cfg.blocked_key_patterns)?,
            blocked_set: set(&cfg
                .blocked_values
                .iter()
                .map(|b| b.pattern.clone())
                .collect::<Vec<_>>())?,
            blocked,
            allowed_values: set(&cfg.allowed_values)?,
            all_types: cfg.redact_all_types,
            masker,
            summary: cfg.summary,
        })
    }

    fn ignored(&self, key: &str) -> bool {
        self.ignored.contains(key)
            || self
                .ignored_patterns
                .as_ref()
                .is_some_and(|s| s.is_match(key))
    }

    /// Whether a key is removed (not allowed).
    fn removed(&self, key: &str) -> bool {
        !(self.allow_all
            || self.allowed.contains(key)
            || key.starts_with("weft.")
            || key.starts_with("redaction.")
            || self
                .allowed_patterns
                .as_ref()
                .is_some_and(|s| s.is_match(key)))
    }

    fn key_blocked(&self, key: &str) -> bool {
        self.blocked_keys.as_ref().is_some_and(|s| s.is_match(key))
    }

    fn value_allowed(&self, text: &str) -> bool {
        self.allowed_values
            .as_ref()
            .is_some_and(|s| s.is_match(text))
    }

    /// `text` with every blocked value masked; `None` when nothing matched.
    fn mask_values(&self, text: &str) -> Option<String> {
        let set = self.blocked_set.as_ref()?;
        // Most values match nothing: `is_match` stops at the first hit and needs no
        // overlapping search, so it answers them at a fraction of `matches`' cost.
        if !set.is_match(text) {
            return None;
        }
        let hits = set.matches(text);
        let mut out = text.to_string();
        let mut changed = false;
        for i in hits.iter() {
            let b = &self.blocked[i];
            let replaced = b.regex.replace_all(&out, |caps: &Captures<'_>| {
                let whole = &caps[0];
                if b.luhn && !luhn(whole) {
                    return whole.to_string();
                }
                match &b.replacement {
                    Some(r) => {
                        let mut dst = String::new();
                        caps.expand(r, &mut dst);
                        dst
                    }
                    None => self.masker.mask(whole),
                }
            });
            if replaced != out {
                out = replaced.into_owned();
                changed = true;
            }
        }
        changed.then_some(out)
    }

    /// The text of a scalar value to check, if it is checked: strings always, other scalars
    /// with `redact_all_types`.
    fn text_of<'v>(&self, value: &'v any_value::Value) -> Option<std::borrow::Cow<'v, str>> {
        match value {
            any_value::Value::StringValue(s) => Some(std::borrow::Cow::Borrowed(s)),
            any_value::Value::IntValue(_)
            | any_value::Value::DoubleValue(_)
            | any_value::Value::BoolValue(_)
                if self.all_types =>
            {
                Value::from_any(Some(&AnyValue {
                    value: Some(value.clone()),
                }))
                .to_string_like()
                .ok()
                .flatten()
                .map(|s| std::borrow::Cow::Owned(s.into_owned()))
            }
            _ => None,
        }
    }

    /// Checks one value (steps 3 and 5): `Some(true)` when it was masked, `Some(false)` when
    /// an allowed value kept it, `None` when nothing applied. Lists and maps are walked.
    fn check_value(&self, value: &mut AnyValue, masked: &mut u64) -> Option<bool> {
        let inner = value.value.as_mut()?;
        match inner {
            any_value::Value::ArrayValue(list) => {
                let mut any = None;
                for v in &mut list.values {
                    if self.check_value(v, masked) == Some(true) {
                        any = Some(true);
                    }
                }
                any
            }
            any_value::Value::KvlistValue(map) => {
                let mut any = None;
                for kv in &mut map.values {
                    if let Some(v) = kv.value.as_mut() {
                        if self.check_value(v, masked) == Some(true) {
                            any = Some(true);
                        }
                    }
                }
                any
            }
            other => {
                let text = self.text_of(other)?;
                if self.value_allowed(&text) {
                    return Some(false);
                }
                let changed = self.mask_values(&text)?;
                *other = any_value::Value::StringValue(changed);
                *masked += 1;
                Some(true)
            }
        }
    }

    /// Masks a whole value (a blocked key's): its text, or its JSON for lists and maps.
    fn mask_whole(&self, value: &mut Option<AnyValue>) {
        let text = Value::from_any(value.as_ref())
            .to_string_like()
            .ok()
            .flatten()
            .map(|s| s.into_owned())
            .unwrap_or_default();
        *value = Some(AnyValue {
            value: Some(any_value::Value::StringValue(self.masker.mask(&text))),
        });
    }

    /// Steps 1–5 on one attribute list, then its summary.
    fn attributes(&self, attrs: &mut Vec<KeyValue>, stats: &mut Stats) {
        let mut report = Report::default();
        let mut remove = Vec::new();
        for (i, kv) in attrs.iter_mut().enumerate() {
            if self.ignored(&kv.key) {
                report.ignored.push(kv.key.clone());
                continue;
            }
            if self.removed(&kv.key) {
                report.redacted.push(kv.key.clone());
                remove.push(i);
                continue;
            }
            if self.key_blocked(&kv.key) {
                let allowed = kv
                    .value
                    .as_ref()
                    .and_then(|v| v.value.as_ref())
                    .and_then(|v| self.text_of(v))
                    .is_some_and(|t| self.value_allowed(&t));
                if allowed {
                    report.allowed.push(kv.key.clone());
                } else {
                    self.mask_whole(&mut kv.value);
                    stats.masked += 1;
                    report.masked.push(kv.key.clone());
                }
                continue;
            }
            if let Some(v) = kv.value.as_mut() {
                match self.check_value(v, &mut stats.masked) {
                    Some(true) => report.masked.push(kv.key.clone()),
                    Some(false) => report.allowed.push(kv.key.clone()),
                    None => {}
                }
            }
        }
        for i in remove.into_iter().rev() {
            attrs.remove(i);
        }
        stats.removed += report.redacted.len() as u64;
        self.summarize(attrs, &report, false);
    }

    /// A log body (map bodies have their keys checked at every level); the summary goes to
    /// the record's attributes.
    fn body(&self, body: &mut Option<AnyValue>, attrs: &mut Vec<KeyValue>, stats: &mut Stats) {
        let Some(value) = body.as_mut() else { return };
        let mut report = Report::default();
        let mut path = String::new();
        self.body_value(value, &mut path, &mut report, stats);
        stats.removed += report.redacted.len() as u64;
        self.summarize(attrs, &report, true);
    }

    /// One value of a body at `path` (`a.b.[0]`, empty at the top). `path` is one buffer
    /// for the whole walk, grown and cut back around each key: a name is only allocated
    /// when it goes into the report, not for every key of every record.
    fn body_value(
        &self,
        value: &mut AnyValue,
        path: &mut String,
        report: &mut Report,
        stats: &mut Stats,
    ) {
        /// Appends `.key` (or `key` at the top) and returns the length to cut back to.
        fn enter(path: &mut String, key: fmt::Arguments<'_>) -> usize {
            let len = path.len();
            if len > 0 {
                path.push('.');
            }
            // Writing into a String cannot fail.
            let _ = path.write_fmt(key);
            len
        }
        match value.value.as_mut() {
            Some(any_value::Value::KvlistValue(map)) => {
                map.values.retain_mut(|kv| {
                    if self.ignored(&kv.key) {
                        // Only the summary reads ignored keys: none is kept when it is silent.
                        if self.summary != Summary::Silent {
                            let len = enter(path, format_args!("{}", kv.key));
                            report.ignored.push(path.clone());
                            path.truncate(len);
                        }
                        return true;
                    }
                    let len = enter(path, format_args!("{}", kv.key));
                    let keep = if self.removed(&kv.key) {
                        report.redacted.push(path.clone());
                        false
                    } else if self.key_blocked(&kv.key) {
                        self.mask_whole(&mut kv.value);
                        stats.masked += 1;
                        report.masked.push(path.clone());
                        true
                    } else {
                        if let Some(v) = kv.value.as_mut() {
                            self.body_value(v, path, report, stats);
                        }
                        true
                    };
                    path.truncate(len);
                    keep
                });
            }
            Some(any_value::Value::ArrayValue(list)) => {
                for (i, v) in list.values.iter_mut().enumerate() {
                    let len = enter(path, format_args!("[{i}]"));
                    self.body_value(v, path, report, stats);
                    path.truncate(len);
                }
            }
            Some(_) => {
                let key = if path.is_empty() {
                    "body"
                } else {
                    path.as_str()
                };
                match self.check_value(value, &mut stats.masked) {
                    Some(true) => report.masked.push(key.to_string()),
                    Some(false) => report.allowed.push(key.to_string()),
                    None => {}
                }
            }
            None => {}
        }
    }

    /// Adds the summary attributes (`summary: debug | info`).
    fn summarize(&self, attrs: &mut Vec<KeyValue>, report: &Report, body: bool) {
        if self.summary == Summary::Silent {
            return;
        }
        let prefix = if body { "redaction.body" } else { "redaction" };
        for (what, keys, listed) in [
            ("redacted", &report.redacted, true),
            ("masked", &report.masked, true),
            ("allowed", &report.allowed, true),
            ("ignored", &report.ignored, false),
        ] {
            if keys.is_empty() {
                continue;
            }
            if self.summary == Summary::Debug && listed {
                let name = format!("{prefix}.{what}.keys");
                let mut all: Vec<String> = keys.clone();
                if let Some(existing) = get_str(attrs, &name) {
                    all.extend(
                        existing
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    );
                }
                all.sort();
                put(attrs, &name, any_value::Value::StringValue(all.join(",")));
            }
            let name = format!("{prefix}.{what}.count");
            let before = match attrs
                .iter()
                .find(|kv| kv.key == name)
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| v.value.as_ref())
            {
                Some(any_value::Value::IntValue(n)) => *n,
                _ => 0,
            };
            put(
                attrs,
                &name,
                any_value::Value::IntValue(before + keys.len() as i64),
            );
        }
    }
}

fn get_str(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

fn put(attrs: &mut Vec<KeyValue>, key: &str, value: any_value::Value) {
    let value = Some(AnyValue { value: Some(value) });
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = value,
        None => attrs.push(KeyValue {
            key: key.to_string(),
            value,
            ..Default::default()
        }),
    }
}

/// What happened to one attribute list or body.
#[derive(Default)]
struct Report {
    redacted: Vec<String>,
    masked: Vec<String>,
    allowed: Vec<String>,
    ignored: Vec<String>,
}

/// What happened to one batch.
#[derive(Default)]
struct Stats {
    removed: u64,
    masked: u64,
}

/// A signal the redaction processor walks: every attribute list and log body of a request.
trait Redactable: Signal {
    fn redact(&mut self, r: &Redactor, stats: &mut Stats);
}

impl Redactable for ExportTraceServiceRequest {
    fn redact(&mut self, r: &Redactor, stats: &mut Stats) {
        for rs in &mut self.resource_spans {
            if let Some(res) = rs.resource.as_mut() {
                r.attributes(&mut res.attributes, stats);
            }
            for ss in &mut rs.scope_spans {
                for span in &mut ss.spans {
                    r.attributes(&mut span.attributes, stats);
                    for event in &mut span.events {
                        r.attributes(&mut event.attributes, stats);
                    }
                }
            }
        }
    }
}

impl Redactable for ExportLogsServiceRequest {
    fn redact(&mut self, r: &Redactor, stats: &mut Stats) {
        for rl in &mut self.resource_logs {
            if let Some(res) = rl.resource.as_mut() {
                r.attributes(&mut res.attributes, stats);
            }
            for sl in &mut rl.scope_logs {
                for record in &mut sl.log_records {
                    r.attributes(&mut record.attributes, stats);
                    r.body(&mut record.body, &mut record.attributes, stats);
                }
            }
        }
    }
}

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "redaction",
        Stability::Alpha,
        "removes attributes that are not allowed and masks sensitive values, log bodies included",
    )
    .signal::<ExportTraceServiceRequest, Config>(build::<ExportTraceServiceRequest>)
    .signal::<ExportLogsServiceRequest, Config>(build::<ExportLogsServiceRequest>)
}

fn build<S: Redactable>(
    ctx: BuildContext,
    cfg: &Config,
    next: Arc<dyn Consumer<Batch<S>>>,
) -> anyhow::Result<Arc<dyn Processor<Batch<S>>>> {
    let id = ctx.id_str();
    let t = &ctx.telemetry;
    let data_type = S::KIND.to_string();
    let labels = [
        ("processor", id.as_str()),
        ("data_type", data_type.as_str()),
    ];
    Ok(Arc::new(Redaction {
        redactor: Redactor::new(cfg)?,
        removed: t.counter(
            "weft_processor_redaction_removed_keys",
            "Attributes (and body keys) removed because they are not allowed",
            &labels,
        ),
        masked: t.counter(
            "weft_processor_redaction_masked_values",
            "Values masked, whole or in part",
            &labels,
        ),
        next,
    }))
}

/// The processor for one signal.
struct Redaction<S: Redactable> {
    redactor: Redactor,
    removed: Counter,
    masked: Counter,
    next: Arc<dyn Consumer<Batch<S>>>,
}

#[async_trait]
impl<S: Redactable> Consumer<Batch<S>> for Redaction<S> {
    async fn consume(&self, mut data: Batch<S>) -> Result<(), ConsumeError> {
        let mut stats = Stats::default();
        data.request_mut().redact(&self.redactor, &mut stats);
        self.removed.inc_by(stats.removed);
        self.masked.inc_by(stats.masked);
        self.next.consume(data).await
    }
}

impl<S: Redactable> Component for Redaction<S> {}

#[cfg(test)]
mod tests;
