//! The `file` exporter's configuration: the Collector's fileexporter keys Weft supports.

use std::path::PathBuf;

use serde::Deserialize;
use weft_config::{present, ComponentConfig, ConfigPath, Diagnostics, Duration as CfgDuration};

/// `exporters::file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The file written to; its parent directories are created.
    pub path: PathBuf,
    pub format: Format,
    /// Rotation is on when this section is present (even empty), as in the Collector.
    #[serde(deserialize_with = "present")]
    pub rotation: Option<Rotation>,
    /// The Collector's buffer flush period, accepted for its configs: Weft writes every
    /// batch through to the file before acknowledging it, so there is nothing to flush.
    pub flush_interval: CfgDuration,
    /// Without rotation: keep what the file holds and append, instead of truncating it at
    /// start. With rotation the file is always appended to.
    pub append: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            format: Format::Json,
            rotation: None,
            flush_interval: CfgDuration::from_secs(1),
            append: false,
        }
    }
}

/// `format`: how each batch is written.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One OTLP/JSON export request per line.
    #[default]
    Json,
    /// Each export request as protobuf, preceded by its length as a 4-byte big-endian integer.
    Proto,
}

/// `rotation`, with lumberjack's semantics (which the Collector uses).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Rotation {
    /// Rotate before the file would grow past this many MiB; 0 means the default, 100.
    pub max_megabytes: u64,
    /// Delete backups older than this many days (by the time in their name); 0 keeps them.
    pub max_days: u64,
    /// Keep at most this many backups, the newest; 0 keeps them all.
    pub max_backups: u64,
    /// Name backups with the local time instead of UTC.
    pub localtime: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_megabytes: 100,
            max_days: 0,
            max_backups: 100,
            localtime: false,
        }
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if self.path.as_os_str().is_empty() {
            diags.error(
                &path.key("path"),
                "required: the file to write to, e.g. \"/var/lib/weft/out.json\"",
            );
        } else if self.path.file_name().is_none() {
            diags.error(
                &path.key("path"),
                format!("\"{}\" names a directory, not a file", self.path.display()),
            );
        }
    }
}
