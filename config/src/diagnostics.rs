//! Problems found while reading a configuration, each with the path where it was found.
//!
//! Validation never stops at the first problem: every stage pushes what it finds into a
//! [`Diagnostics`] and the caller reports them all at once.

use std::fmt;

/// A location in the configuration document, rendered as the Collector does:
/// `exporters::otlphttp/backend::retry_on_failure::max_interval`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigPath(Vec<String>);

impl ConfigPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by one key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut parts = self.0.clone();
        parts.push(key.into());
        Self(parts)
    }

    /// This path extended by a list index, rendered as `name[3]` on the last segment.
    pub fn index(&self, index: usize) -> Self {
        let mut parts = self.0.clone();
        match parts.last_mut() {
            Some(last) => last.push_str(&format!("[{index}]")),
            None => parts.push(format!("[{index}]")),
        }
        Self(parts)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        f.write_str(&self.0.join("::"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem: where, how bad, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: ConfigPath,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.path, self.message)
    }
}

/// The collected problems of one configuration.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, path: &ConfigPath, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Error,
            path: path.clone(),
            message: message.into(),
        });
    }

    pub fn warning(&mut self, path: &ConfigPath, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Warning,
            path: path.clone(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Returned when a configuration has at least one error; carries every problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{0}")]
pub struct InvalidConfig(pub Diagnostics);
