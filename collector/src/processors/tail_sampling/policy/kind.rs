//! What a policy type says about itself ([`PolicyKind`]), and the type-erased forms the
//! registry and [`super::PolicyConfig`] hold.

use std::fmt;

use serde::de::DeserializeOwned;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::Reads;
use super::Evaluate;

/// Whether a policy type has a settings section (`latency: {...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// `{name, type, <type>: {...}}`: the section is required (it may be empty: `<type>:`).
    Required,
    /// `{name, type}` only (`always_sample`, `trace_flags`): a section of that name is an
    /// unknown key.
    None,
}

/// Where a policy type may be listed, by the Collector's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nesting {
    /// A plain policy: at the top, and in `and_sub_policy`, `drop_sub_policy` and
    /// `composite_sub_policy`.
    Anywhere,
    /// At the top and in `composite_sub_policy` (the Collector's `and`).
    TopOrComposite,
    /// Only in the top-level `policies` list (`drop`, `composite`).
    TopOnly,
}

/// Everything Weft knows about one policy type. Each type implements it in its own module,
/// on a unit struct named `Kind`, and is listed once in [`super::KINDS`].
pub(crate) trait PolicyKind: Send + Sync + 'static {
    /// The YAML name: the `type` value and the settings key.
    const NAME: &'static str;
    /// Whether a settings section exists.
    const SECTION: Section;
    /// Where the type may be listed.
    const NESTING: Nesting;
    /// Evaluated before the other top-level policies (the Collector runs `drop` first, so
    /// its verdict short-circuits the rest).
    const RUNS_FIRST: bool = false;
    /// Settings sections (YAML, as written under `<type>:`) the conformance test builds
    /// the policy from: together they should make the policy read everything it can read,
    /// with the keys and values of the test corpus (`k`, `n`, `b`, values `a`, `b`, `c`…).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the conformance test only")
    )]
    const EXAMPLES: &'static [&'static str];

    /// The settings section's type. Decoding is strict (`deny_unknown_fields`); an absent
    /// key takes the Collector's default (`#[serde(default)]`), and so does an empty section.
    type Config: DeserializeOwned + Default + Clone + fmt::Debug + Send + Sync + 'static;

    /// Pushes every problem the types cannot express, each with its path (`path` is the
    /// settings section: `...::policies[2]::latency`). Pure: no I/O.
    fn validate(config: &Self::Config, path: &ConfigPath, diags: &mut Diagnostics) {
        let _ = (config, path, diags);
    }

    /// The evaluator. Called on a validated configuration; an invalid one fails here with a
    /// message, never a panic.
    fn build(config: &Self::Config) -> Result<Box<dyn Evaluate>, String>;

    /// What the evaluator looks at in a trace. The window decodes no more than the union of
    /// the configured policies' reads: a policy sees only what it declares.
    fn reads(config: &Self::Config) -> Reads;
}

/// A [`PolicyKind`] as the registry holds it.
pub(crate) trait DynKind: Sync {
    fn name(&self) -> &'static str;
    fn section(&self) -> Section;
    fn nesting(&self) -> Nesting;
    fn runs_first(&self) -> bool;
    #[cfg(test)]
    fn examples(&self) -> &'static [&'static str];
    /// Decodes a settings section (`Null` for an empty one); `None` when it does not decode
    /// (the problem is then reported by [`DynKind::report_invalid`]).
    fn decode(&self, section: &serde_yaml::Value) -> Option<Box<dyn Settings>>;
    /// Reports why `section` does not decode, with the path of the offending key.
    fn report_invalid(
        &self,
        section: &serde_yaml::Value,
        path: &ConfigPath,
        diags: &mut Diagnostics,
    );
    /// The settings of a type without a section.
    fn default_settings(&self) -> Box<dyn Settings>;
}

impl<K: PolicyKind> DynKind for K {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn section(&self) -> Section {
        K::SECTION
    }

    fn nesting(&self) -> Nesting {
        K::NESTING
    }

    fn runs_first(&self) -> bool {
        K::RUNS_FIRST
    }

    #[cfg(test)]
    fn examples(&self) -> &'static [&'static str] {
        K::EXAMPLES
    }

    fn decode(&self, section: &serde_yaml::Value) -> Option<Box<dyn Settings>> {
        let config = if section.is_null() {
            K::Config::default()
        } else {
            serde_yaml::from_value::<K::Config>(section.clone()).ok()?
        };
        Some(Box::new(Typed::<K>(config)))
    }

    fn report_invalid(
        &self,
        section: &serde_yaml::Value,
        path: &ConfigPath,
        diags: &mut Diagnostics,
    ) {
        // The same decoder as the rest of the configuration, for the same messages and paths.
        let _ = weft_config::decode_with_path::<K::Config>(section, path, diags);
    }

    fn default_settings(&self) -> Box<dyn Settings> {
        Box::new(Typed::<K>(K::Config::default()))
    }
}

/// One policy's decoded settings, whatever its type.
pub(crate) trait Settings: fmt::Debug + Send + Sync {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics);
    fn build(&self) -> Result<Box<dyn Evaluate>, String>;
    fn reads(&self) -> Reads;
    fn clone_box(&self) -> Box<dyn Settings>;
}

struct Typed<K: PolicyKind>(K::Config);

impl<K: PolicyKind> fmt::Debug for Typed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<K: PolicyKind> Settings for Typed<K> {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        K::validate(&self.0, path, diags);
    }

    fn build(&self) -> Result<Box<dyn Evaluate>, String> {
        K::build(&self.0)
    }

    fn reads(&self) -> Reads {
        K::reads(&self.0)
    }

    fn clone_box(&self) -> Box<dyn Settings> {
        Box::new(Typed::<K>(self.0.clone()))
    }
}

/// The settings type of policies without a section.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoSettings {}
