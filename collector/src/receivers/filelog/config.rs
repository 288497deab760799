//! The `filelog` receiver's configuration: the Collector's `filelogreceiver` keys.
//!
//! ```yaml
//! receivers:
//!   filelog:
//!     include: [/var/log/pods/*/*/*.log]
//!     exclude: [/var/log/pods/kube-system_*/*/*.log]
//!     start_at: end                # beginning | end: where files found at the first poll start
//!     poll_interval: 200ms
//!     fingerprint_size: 1kb        # a file is known by its first bytes
//!     max_log_size: 1MiB           # longer lines are cut
//!     max_concurrent_files: 1024
//!     encoding: utf-8              # utf-8 | ascii | nop (bytes bodies)
//!     include_file_name: true      # attributes["log.file.name"]
//!     include_file_path: false     # attributes["log.file.path"]
//!     multiline: {line_start_pattern: '^\d{4}-'}   # or line_end_pattern
//!     force_flush_period: 500ms    # a multi-line record is ended after this much quiet
//!     storage: file_storage        # committed offsets survive restarts
//!     operators: [...]             # see crate::operators
//! ```

use regex::Regex;
use serde::Deserialize;
use weft_config::{
    ByteSize, ComponentConfig, ComponentId, ConfigPath, Diagnostics, Duration, ExtensionReference,
};

use crate::operators::{self, DecodedOperator};

/// Where files found at the first poll start to be read (later files are read from their
/// beginning, and files with a committed offset from it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    Beginning,
    #[default]
    End,
}

/// `multiline`: how lines group into one record.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Multiline {
    /// A record starts at each line matching this.
    pub line_start_pattern: Option<String>,
    /// A record ends with each line matching this.
    pub line_end_pattern: Option<String>,
}

/// The text encoding of the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 (also for `ascii`): invalid bytes become U+FFFD, counted.
    Utf8,
    /// No decoding: bodies are bytes.
    Nop,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub start_at: StartAt,
    pub poll_interval: Duration,
    pub fingerprint_size: ByteSize,
    pub max_log_size: ByteSize,
    pub max_concurrent_files: usize,
    pub encoding: String,
    pub include_file_name: bool,
    pub include_file_path: bool,
    pub multiline: Option<Multiline>,
    pub force_flush_period: Duration,
    /// A `file_storage` extension id: committed offsets are kept there.
    pub storage: Option<String>,
    pub operators: Vec<serde_yaml::Value>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            include: Vec::new(),
            exclude: Vec::new(),
            start_at: StartAt::End,
            poll_interval: Duration::from_millis(200),
            fingerprint_size: ByteSize(1000),
            max_log_size: ByteSize::mib(1),
            max_concurrent_files: 1024,
            encoding: "utf-8".to_string(),
            include_file_name: true,
            include_file_path: false,
            multiline: None,
            force_flush_period: Duration::from_millis(500),
            storage: None,
            operators: Vec::new(),
        }
    }
}

/// The smallest fingerprint the Collector accepts: fewer bytes tell files apart too poorly.
pub const MIN_FINGERPRINT_SIZE: u64 = 16;

impl Config {
    pub fn encoding(&self) -> Option<Encoding> {
        match self.encoding.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "ascii" | "us-ascii" | "" => Some(Encoding::Utf8),
            "nop" => Some(Encoding::Nop),
            _ => None,
        }
    }

    pub fn storage_id(&self) -> Option<ComponentId> {
        self.storage.as_ref()?.parse().ok()
    }

    /// The operators, decoded (validation reported any problem already).
    pub fn decoded_operators(&self) -> Vec<DecodedOperator> {
        operators::decode_list(
            &self.operators,
            &ConfigPath::root().key("operators"),
            &mut Diagnostics::new(),
        )
    }

    /// The multi-line expressions, compiled: (start, end).
    pub fn multiline_patterns(&self) -> (Option<Regex>, Option<Regex>) {
        let Some(m) = &self.multiline else {
            return (None, None);
        };
        let compile = |p: &Option<String>| p.as_deref().and_then(|p| Regex::new(p).ok());
        (compile(&m.line_start_pattern), compile(&m.line_end_pattern))
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.include.is_empty() {
            diags.error(
                &path.key("include"),
                "required: the files to read, as globs (e.g. /var/log/pods/*/*/*.log)",
            );
        }
        for (key, list) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (i, pattern) in list.iter().enumerate() {
                if pattern.is_empty() {
                    diags.error(&path.key(key).index(i), "must not be empty");
                } else if let Err(e) = glob::Pattern::new(pattern) {
                    diags.error(
                        &path.key(key).index(i),
                        format!("invalid glob {pattern:?}: {e}"),
                    );
                }
            }
        }
        if self.poll_interval.is_zero() {
            diags.error(
                &path.key("poll_interval"),
                "must be more than 0 (e.g. 200ms)",
            );
        }
        if self.fingerprint_size.0 < MIN_FINGERPRINT_SIZE {
            diags.error(
                &path.key("fingerprint_size"),
                format!("must be at least {MIN_FINGERPRINT_SIZE} bytes: fewer tell files apart too poorly"),
            );
        }
        if self.max_log_size.0 == 0 {
            diags.error(&path.key("max_log_size"), "must be at least 1 byte");
        }
        if self.max_concurrent_files < 2 {
            diags.error(&path.key("max_concurrent_files"), "must be at least 2");
        }
        if self.encoding().is_none() {
            diags.error(
                &path.key("encoding"),
                format!(
                    "{:?} is not supported: Weft reads utf-8 (also for ascii) and nop (bytes)",
                    self.encoding
                ),
            );
        }
        if let Some(m) = &self.multiline {
            let at = path.key("multiline");
            match (&m.line_start_pattern, &m.line_end_pattern) {
                (Some(_), Some(_)) => {
                    diags.error(&at, "set line_start_pattern or line_end_pattern, not both")
                }
                (None, None) => diags.error(&at, "set line_start_pattern or line_end_pattern"),
                _ => {}
            }
            for (key, p) in [
                ("line_start_pattern", &m.line_start_pattern),
                ("line_end_pattern", &m.line_end_pattern),
            ] {
                if let Some(p) = p {
                    if let Err(e) = Regex::new(p) {
                        diags.error(&at.key(key), format!("invalid regular expression: {e}"));
                    }
                }
            }
        }
        if let Some(s) = &self.storage {
            if let Err(e) = s.parse::<ComponentId>() {
                diags.error(&path.key("storage"), e);
            }
        }
        let decoded = operators::decode_list(&self.operators, &path.key("operators"), diags);
        if !self.include_file_path {
            for d in decoded.iter().filter(|d| d.config.needs_file_path()) {
                diags.error(
                    &path.key("operators").index(d.index),
                    format!("{} reads attributes[\"log.file.path\"]: set include_file_path: true on the receiver (or add_metadata_from_filepath: false)", d.type_name),
                );
            }
        }
    }

    fn extension_references(&self, path: &ConfigPath) -> Vec<ExtensionReference> {
        self.storage
            .iter()
            .map(|s| ExtensionReference::new(path.key("storage"), s.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        let mut diags = Diagnostics::new();
        let path = ConfigPath::root().key("receivers").key("filelog");
        weft_config::decode_component::<Config>(&value, &path, &mut diags);
        diags.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_are_the_collectors() {
        let c = Config::default();
        assert_eq!(c.start_at, StartAt::End);
        assert_eq!(c.poll_interval.get(), std::time::Duration::from_millis(200));
        assert_eq!(c.fingerprint_size.0, 1000);
        assert_eq!(c.max_log_size.0, 1 << 20);
        assert_eq!(c.max_concurrent_files, 1024);
        assert!(c.include_file_name && !c.include_file_path);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let p = problems(
            r#"
include: ["/var/log/[x.log"]
poll_interval: 0
fingerprint_size: 8
encoding: utf-16le
multiline: {line_start_pattern: '(', line_end_pattern: x}
storage: "no such/"
operators:
  - type: container
  - type: json_parser
    parse_from: message
"#,
        );
        let joined = p.join("\n");
        for expected in [
            "receivers::filelog::include[0]: invalid glob",
            "receivers::filelog::poll_interval: must be more than 0",
            "receivers::filelog::fingerprint_size: must be at least 16",
            "receivers::filelog::encoding: \"utf-16le\" is not supported",
            "receivers::filelog::multiline: set line_start_pattern or line_end_pattern, not both",
            "receivers::filelog::multiline::line_start_pattern: invalid regular expression",
            "receivers::filelog::storage: invalid component id",
            "receivers::filelog::operators[1]::parse_from: invalid field \"message\"",
            "receivers::filelog::operators[0]: container reads attributes[\"log.file.path\"]: set include_file_path: true",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in\n{joined}");
        }
        let p = problems("include: [a]\ntypo: 1");
        assert!(
            p[0].contains("receivers::filelog: unknown field \"typo\""),
            "{p:?}"
        );
        let p = problems("exclude: [a]");
        assert!(
            p[0].contains("receivers::filelog::include: required"),
            "{p:?}"
        );
    }
}
