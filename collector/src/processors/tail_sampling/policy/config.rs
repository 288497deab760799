//! The `policies:` list: one [`PolicyConfig`] per entry, `{name, type, <type>: {...}}`,
//! decoded, validated and built through the registry ([`super::KINDS`]). Nothing here
//! names a policy type: each type's settings, checks and evaluator live in its module.
//!
//! Decoding is strict: a `type` that is not registered and a key that is neither `name`,
//! `type` nor a registered settings section are errors. A settings section is decoded by
//! its type's own config type; if that fails, validation reports why with the full path
//! (`processors::tail_sampling::policies[0]::latency: unknown field "threshold"…`), beside
//! every other problem found, e.g.
//! `processors::tail_sampling::policies[2]::latency: required for a policy of type "latency"`.
//!
//! Nesting follows the Collector: `and_sub_policy` and `drop_sub_policy` take the plain
//! policy types; `composite_sub_policy` takes those and `and` (see [`Nesting`]).

use std::fmt;
use std::sync::LazyLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::Reads;
use super::kind::{DynKind, Nesting, Section, Settings};
use super::{Evaluate, KINDS};

/// One entry of `policies` (or of `and_sub_policy`, `drop_sub_policy`,
/// `composite_sub_policy`): `{name, type, <type>: {...}}`.
pub struct PolicyConfig {
    /// Required, unique among its siblings: it labels metrics and the enrichment of kept logs.
    pub name: String,
    /// The `type`; `None` when absent (an unknown one does not decode).
    kind: Option<&'static dyn DynKind>,
    settings: SettingsState,
    /// Settings sections of other types found in the entry (each an error).
    foreign: Vec<&'static str>,
}

enum SettingsState {
    Decoded(Box<dyn Settings>),
    /// The type's section is absent (or the type is).
    Missing,
    /// The section as written, which its type's config does not decode.
    Invalid(serde_yaml::Value),
}

impl Clone for PolicyConfig {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            kind: self.kind,
            settings: match &self.settings {
                SettingsState::Decoded(s) => SettingsState::Decoded(s.clone_box()),
                SettingsState::Missing => SettingsState::Missing,
                SettingsState::Invalid(v) => SettingsState::Invalid(v.clone()),
            },
            foreign: self.foreign.clone(),
        }
    }
}

impl fmt::Debug for PolicyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PolicyConfig");
        d.field("name", &self.name)
            .field("type", &self.kind.map(|k| k.name()));
        match &self.settings {
            SettingsState::Decoded(s) => d.field("settings", s),
            SettingsState::Missing => d.field("settings", &"missing"),
            SettingsState::Invalid(v) => d.field("invalid_settings", v),
        };
        if !self.foreign.is_empty() {
            d.field("foreign_sections", &self.foreign);
        }
        d.finish()
    }
}

fn kind_named(name: &str) -> Option<&'static dyn DynKind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

/// Every type name, in registry order (for "unknown variant" and "required: one of").
static TYPE_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| KINDS.iter().map(|k| k.name()).collect());

/// Every key an entry may have.
static FIELD_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut names = vec!["name", "type"];
    names.extend(
        KINDS
            .iter()
            .filter(|k| k.section() == Section::Required)
            .map(|k| k.name()),
    );
    names
});

/// A `type` value: the registered type it names.
struct TypeName(&'static dyn DynKind);

impl<'de> Deserialize<'de> for TypeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        kind_named(&name)
            .map(TypeName)
            .ok_or_else(|| de::Error::unknown_variant(&name, TYPE_NAMES.as_slice()))
    }
}

impl<'de> Deserialize<'de> for PolicyConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = PolicyConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a policy: {name, type, <type>: {...}}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PolicyConfig, A::Error> {
        let mut name = String::new();
        let mut kind = None;
        let mut sections: Vec<(&'static dyn DynKind, serde_yaml::Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => name = map.next_value()?,
                "type" => kind = Some(map.next_value::<TypeName>()?.0),
                other => match kind_named(other).filter(|k| k.section() == Section::Required) {
                    Some(section) => sections.push((section, map.next_value()?)),
                    None => return Err(de::Error::unknown_field(other, FIELD_NAMES.as_slice())),
                },
            }
        }
        let settings = match kind {
            None => SettingsState::Missing,
            Some(k) => match sections.iter().position(|(s, _)| s.name() == k.name()) {
                Some(index) => {
                    let (_, value) = sections.remove(index);
                    match k.decode(&value) {
                        Some(settings) => SettingsState::Decoded(settings),
                        None => SettingsState::Invalid(value),
                    }
                }
                None if k.section() == Section::None => {
                    SettingsState::Decoded(k.default_settings())
                }
                None => SettingsState::Missing,
            },
        };
        Ok(PolicyConfig {
            name,
            kind,
            settings,
            foreign: sections.into_iter().map(|(s, _)| s.name()).collect(),
        })
    }
}

/// Where a policy sits, which decides the types allowed there (the Collector's nesting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Level {
    Top,
    AndSub,
    DropSub,
    CompositeSub,
}

impl Level {
    fn allows(self, nesting: Nesting) -> bool {
        match self {
            Level::Top => true,
            Level::AndSub | Level::DropSub => nesting == Nesting::Anywhere,
            Level::CompositeSub => nesting != Nesting::TopOnly,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Level::Top => "the policies list",
            Level::AndSub => "and_sub_policy (plain policies only)",
            Level::DropSub => "drop_sub_policy (plain policies only)",
            Level::CompositeSub => "composite_sub_policy (plain policies and \"and\" only)",
        }
    }
}

/// Validates the processor's `policies` list at `path`: at least one policy, unique names,
/// and every entry (see [`PolicyConfig::validate`]).
pub fn validate_policies(policies: &[PolicyConfig], path: &ConfigPath, diags: &mut Diagnostics) {
    if policies.is_empty() {
        diags.error(
            path,
            "at least one policy is required: without one no trace is ever kept (use `{name: all, type: always_sample}` to keep everything)",
        );
    }
    validate_list(policies, path, Level::Top, diags);
}

/// Validates a list of policies at `level`: unique names among siblings, then each entry.
pub(super) fn validate_list(
    list: &[PolicyConfig],
    path: &ConfigPath,
    level: Level,
    diags: &mut Diagnostics,
) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (index, policy) in list.iter().enumerate() {
        let item = path.index(index);
        if !policy.name.is_empty() {
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == policy.name) {
                diags.error(
                    &item.key("name"),
                    format!(
                        "duplicate policy name {:?} (also the name of entry {first}); names must be unique among siblings",
                        policy.name
                    ),
                );
            } else {
                seen.push((&policy.name, index));
            }
        }
        policy.validate_at(&item, level, diags);
    }
}

/// Builds every policy of a list (sub-policies of `and`, `drop`).
pub(super) fn build_all(list: &[PolicyConfig]) -> Result<Vec<Box<dyn Evaluate>>, String> {
    list.iter().map(PolicyConfig::build).collect()
}

/// The union of what every policy of a list reads.
pub(super) fn reads_of(list: &[PolicyConfig]) -> Reads {
    list.iter().fold(Reads::NOTHING, |r, p| r | p.reads())
}

impl PolicyConfig {
    /// Validates this entry as a top-level policy at `path` (e.g.
    /// `processors::tail_sampling::policies[2]`), pushing every problem found. Name uniqueness
    /// is checked by [`validate_policies`], which sees the siblings.
    pub fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        self.validate_at(path, Level::Top, diags);
    }

    fn validate_at(&self, path: &ConfigPath, level: Level, diags: &mut Diagnostics) {
        if self.name.is_empty() {
            diags.error(
                &path.key("name"),
                "required: a name for this policy, unique among its siblings (it labels metrics and kept logs)",
            );
        }
        let Some(kind) = self.kind else {
            diags.error(
                &path.key("type"),
                format!("required: one of {}", TYPE_NAMES.join(", ")),
            );
            return;
        };
        let type_name = kind.name();
        if !level.allows(kind.nesting()) {
            diags.error(
                &path.key("type"),
                format!(
                    "a policy of type \"{type_name}\" cannot be nested in {}",
                    level.describe()
                ),
            );
            return;
        }
        for section in &self.foreign {
            diags.error(
                &path.key(*section),
                format!(
                    "settings for type \"{section}\", but this policy's type is \"{type_name}\": remove them or change the type"
                ),
            );
        }
        let here = path.key(type_name);
        match &self.settings {
            SettingsState::Decoded(settings) => settings.validate(&here, diags),
            SettingsState::Invalid(value) => kind.report_invalid(value, &here, diags),
            SettingsState::Missing => diags.error(
                &here,
                format!("required for a policy of type \"{type_name}\": add its settings under `{type_name}:`"),
            ),
        }
    }

    /// The policy's `type`, if one was given.
    pub fn type_name(&self) -> Option<&'static str> {
        self.kind.map(|k| k.name())
    }

    /// Whether the Collector evaluates this policy before the others (`drop`).
    pub(super) fn runs_first(&self) -> bool {
        self.kind.is_some_and(|k| k.runs_first())
    }

    /// What the policy reads of a trace (nothing when its settings did not decode: it is
    /// then invalid and never built).
    pub fn reads(&self) -> Reads {
        match &self.settings {
            SettingsState::Decoded(settings) => settings.reads(),
            _ => Reads::NOTHING,
        }
    }

    /// Builds the evaluator. Call only on a configuration without validation errors; an
    /// invalid one fails here with a message, it does not panic.
    pub(super) fn build(&self) -> Result<Box<dyn Evaluate>, String> {
        let Some(kind) = self.kind else {
            return Err(format!("policy {:?}: type is missing", self.name));
        };
        match &self.settings {
            SettingsState::Decoded(settings) => settings.build(),
            _ => Err(format!(
                "policy {:?}: settings `{}:` are missing or invalid (validate the configuration first)",
                self.name,
                kind.name()
            )),
        }
    }
}
