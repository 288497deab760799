//! Log operators: the Collector's stanza `operators:` list, which turns a raw line into a
//! structured log record (parse JSON, read the time, the severity and the trace context,
//! move fields around).
//!
//! One module per operator type, each with its own config type (strict keys), and one line
//! per type in [`registry`]. A receiver that reads raw lines (`filelog`) lists operators under
//! `operators:`; each is `{type: <name>, id: <optional>, <its keys>}` and they run in list
//! order. `output` (stanza's routing between operators) and `if` (expressions) are not
//! supported: a config that uses them is refused with its path instead of running another
//! pipeline than the one written.
//!
//! Errors: an operator that cannot do its work on an entry (a line that is not JSON, a bad
//! timestamp, an invalid trace id) handles it by its `on_error` (the Collector's values):
//! `send` (the default) keeps the entry as it is, with the attribute
//! [`ERROR_ATTRIBUTE`] saying which operator failed and why, and logs it (at most once a
//! second per operator); `send_quiet` does the same without the log line; `drop` and
//! `drop_quiet` drop the entry (with and without the log line). Every error is counted in
//! `weft_receiver_operator_errors{receiver,operator}`, so nothing is dropped unseen.
//!
//! Holding: an operator may keep an entry back (the `container` operator joins a long line
//! the runtime split into partial lines). A receiver must not commit a file offset past what
//! an operator holds: [`Operator::held_from`] says where the held bytes begin.

pub mod entry;

pub mod add;
pub mod container;
pub mod copy;
pub mod flatten;
pub mod json_parser;
pub mod move_field;
pub mod parser;
pub mod regex_parser;
pub mod remove;
pub mod severity_parser;
pub mod time_parser;
pub mod trace_parser;

use std::fmt::Debug;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml::Value as Yaml;
use weft_config::{decode_with_path, ConfigPath, Diagnostics};

pub use entry::{Entry, Field, Map, Source, Value};

use crate::telemetry::Telemetry;

/// The attribute a failed operator leaves on an entry it kept (`on_error: send`).
pub const ERROR_ATTRIBUTE: &str = "weft.parse_error";

/// Every operator type, by its YAML name. **One line per operator type.**
pub fn registry() -> Vec<OperatorType> {
    vec![
        OperatorType::of::<container::Config>("container"),
        OperatorType::of::<json_parser::Config>("json_parser"),
        OperatorType::of::<regex_parser::Config>("regex_parser"),
        OperatorType::of::<trace_parser::Config>("trace_parser"),
        OperatorType::of::<severity_parser::Config>("severity_parser"),
        OperatorType::of::<time_parser::Config>("time_parser"),
        OperatorType::of::<move_field::Config>("move"),
        OperatorType::of::<add::Config>("add"),
        OperatorType::of::<remove::Config>("remove"),
        OperatorType::of::<copy::Config>("copy"),
        OperatorType::of::<flatten::Config>("flatten"),
    ]
}

/// What an operator did with one entry.
pub enum Outcome {
    /// One entry goes on (the usual case).
    Emit(Entry),
    /// Several entries go on, in order.
    Many(Vec<Entry>),
    /// The operator keeps the entry for now (see [`Operator::held_from`]).
    Held,
    /// The entry is dropped (counted by whoever dropped it).
    Drop,
}

/// A running operator.
pub trait Operator: Send {
    fn process(&mut self, entry: Entry) -> Outcome;

    /// The offset in `file` where the bytes of the entries it holds begin; `None` when it
    /// holds nothing of that file.
    fn held_from(&self, file: u64) -> Option<u64> {
        let _ = file;
        None
    }

    /// Gives out whatever it holds of `file` (the file is finished, or nothing new came for
    /// a while).
    fn flush(&mut self, file: u64) -> Vec<Entry> {
        let _ = file;
        Vec::new()
    }
}

/// An operator's configuration: decoded strictly from its list item (without the common
/// keys `type` and `id`), validated, then built.
pub trait OperatorConfig: DeserializeOwned + Debug + Send + Sync + 'static {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        let _ = (path, diags);
    }

    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>>;

    /// Whether it reads `attributes["log.file.path"]`, which the receiver adds only when
    /// asked (`include_file_path: true`).
    fn needs_file_path(&self) -> bool {
        false
    }
}

/// What an operator is built with.
#[derive(Clone)]
pub struct OperatorContext {
    /// The receiver's id, for metric labels and logs.
    pub receiver: String,
    /// The operator's id (its `id`, or its type).
    pub id: String,
    pub telemetry: Telemetry,
    /// The receiver's bound on one record, for operators that join lines.
    pub max_log_size: usize,
}

impl OperatorContext {
    /// How this operator reports entries it failed on.
    pub fn errors(&self, on_error: OnError) -> ErrorHandler {
        ErrorHandler {
            mode: on_error,
            id: self.id.clone(),
            receiver: self.receiver.clone(),
            counter: self.telemetry.counter(
                "weft_receiver_operator_errors",
                "Log entries an operator could not process (kept with weft.parse_error, or dropped, per on_error)",
                &[("receiver", &self.receiver), ("operator", &self.id)],
            ),
            last_log: None,
        }
    }
}

/// `on_error`, as in the Collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    #[default]
    Send,
    SendQuiet,
    Drop,
    DropQuiet,
}

/// Applies `on_error` to entries an operator failed on: counts, logs (at most once a second),
/// and keeps (with [`ERROR_ATTRIBUTE`]) or drops the entry.
pub struct ErrorHandler {
    mode: OnError,
    id: String,
    receiver: String,
    counter: Counter,
    last_log: Option<Instant>,
}

impl ErrorHandler {
    pub fn fail(&mut self, mut entry: Entry, message: &str) -> Outcome {
        self.counter.inc();
        let loud = matches!(self.mode, OnError::Send | OnError::Drop);
        if loud
            && self
                .last_log
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_log = Some(Instant::now());
            tracing::warn!(
                component = %self.receiver, operator = %self.id, error = %message,
                "a log line could not be processed (kept as it is, with weft.parse_error, unless on_error drops it; counted in weft_receiver_operator_errors; further errors of this operator are logged at most once a second)"
            );
        }
        match self.mode {
            OnError::Send | OnError::SendQuiet => {
                entry.set_attribute(
                    ERROR_ATTRIBUTE,
                    Value::Str(format!("{}: {message}", self.id)),
                );
                Outcome::Emit(entry)
            }
            OnError::Drop | OnError::DropQuiet => Outcome::Drop,
        }
    }
}

/// One operator type: its name and how its config decodes.
pub struct OperatorType {
    pub name: &'static str,
    decode: fn(&Yaml, &ConfigPath, &mut Diagnostics) -> Option<Box<dyn AnyOperatorConfig>>,
}

/// An operator config with its type erased.
pub trait AnyOperatorConfig: Debug + Send + Sync {
    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>>;
    fn needs_file_path(&self) -> bool;
}

impl<C: OperatorConfig> AnyOperatorConfig for C {
    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        OperatorConfig::build(self, ctx)
    }
    fn needs_file_path(&self) -> bool {
        OperatorConfig::needs_file_path(self)
    }
}

impl OperatorType {
    fn of<C: OperatorConfig>(name: &'static str) -> Self {
        Self {
            name,
            decode: |value, path, diags| {
                let config = decode_with_path::<C>(value, path, diags)?;
                let before = diags.errors().count();
                config.validate(path, diags);
                (diags.errors().count() == before)
                    .then(|| Box::new(config) as Box<dyn AnyOperatorConfig>)
            },
        }
    }
}

/// One decoded `operators:` item.
#[derive(Debug)]
pub struct DecodedOperator {
    /// Its position in the list.
    pub index: usize,
    pub id: String,
    pub type_name: &'static str,
    pub config: Box<dyn AnyOperatorConfig>,
}

/// Decodes an `operators:` list (`path` is the list's key), reporting every problem with
/// its path, e.g. `receivers::filelog::operators[2]::parse_from: ...`.
pub fn decode_list(
    items: &[Yaml],
    path: &ConfigPath,
    diags: &mut Diagnostics,
) -> Vec<DecodedOperator> {
    let types = registry();
    let mut out = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = path.index(i);
        let Yaml::Mapping(map) = item else {
            diags.error(
                &at,
                "an operator is a mapping with a type, e.g. {type: json_parser}",
            );
            continue;
        };
        let mut rest = map.clone();
        let type_name = match rest.remove("type") {
            Some(Yaml::String(t)) => t,
            Some(_) => {
                diags.error(&at.key("type"), "must be a string, e.g. json_parser");
                continue;
            }
            None => {
                diags.error(&at, "missing key \"type\" (e.g. type: json_parser)");
                continue;
            }
        };
        let id = match rest.remove("id") {
            Some(Yaml::String(id)) if !id.is_empty() => {
                if ids.contains(&id) {
                    diags.error(
                        &at.key("id"),
                        format!("operator id {id:?} is used twice; give one of them another id"),
                    );
                }
                id
            }
            Some(_) => {
                diags.error(&at.key("id"), "must be a non-empty string");
                type_name.clone()
            }
            // As the Collector: a default id already taken gets a number (move, move1, ...).
            None => (0..)
                .map(|n| match n {
                    0 => type_name.clone(),
                    n => format!("{type_name}{n}"),
                })
                .find(|candidate| !ids.contains(candidate))
                .expect("an unused id"),
        };
        ids.push(id.clone());
        for key in ["output", "if"] {
            if rest.remove(key).is_some() {
                let why = if key == "output" {
                    "not supported: Weft runs operators in list order (routing between operators is not implemented)"
                } else {
                    "not supported yet: Weft's operators have no expressions; use one pipeline per kind of file"
                };
                diags.error(&at.key(key), why);
            }
        }
        let Some(kind) = types.iter().find(|t| t.name == type_name) else {
            let known: Vec<String> = types.iter().map(|t| format!("\"{}\"", t.name)).collect();
            diags.error(
                &at.key("type"),
                format!(
                    "unknown operator type \"{type_name}\", expected one of {}",
                    known.join(", ")
                ),
            );
            continue;
        };
        if let Some(config) = (kind.decode)(&Yaml::Mapping(rest), &at, diags) {
            out.push(DecodedOperator {
                index: i,
                id,
                type_name: kind.name,
                config,
            });
        }
    }
    out
}

/// The operators of one receiver, in order.
pub struct Chain {
    ops: Vec<Box<dyn Operator>>,
}

impl Chain {
    pub fn build(
        decoded: &[DecodedOperator],
        receiver: &str,
        telemetry: &Telemetry,
        max_log_size: usize,
    ) -> anyhow::Result<Self> {
        let ops = decoded
            .iter()
            .map(|d| {
                d.config.build(&OperatorContext {
                    receiver: receiver.to_string(),
                    id: d.id.clone(),
                    telemetry: telemetry.clone(),
                    max_log_size,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { ops })
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Runs `entry` through every operator; what comes out of the last one is pushed on `out`.
    pub fn run(&mut self, entry: Entry, out: &mut Vec<Entry>) {
        run_from(&mut self.ops, 0, entry, out);
    }

    /// Where the bytes held by any operator for `file` begin.
    pub fn held_from(&self, file: u64) -> Option<u64> {
        self.ops.iter().filter_map(|o| o.held_from(file)).min()
    }

    /// Makes every operator give out what it holds of `file`, through the operators after it.
    pub fn flush(&mut self, file: u64, out: &mut Vec<Entry>) {
        for i in 0..self.ops.len() {
            for e in self.ops[i].flush(file) {
                run_from(&mut self.ops, i + 1, e, out);
            }
        }
    }
}

fn run_from(ops: &mut [Box<dyn Operator>], i: usize, entry: Entry, out: &mut Vec<Entry>) {
    let Some(op) = ops.get_mut(i) else {
        out.push(entry);
        return;
    };
    match op.process(entry) {
        Outcome::Emit(e) => run_from(ops, i + 1, e, out),
        Outcome::Many(v) => {
            for e in v {
                run_from(ops, i + 1, e, out);
            }
        }
        Outcome::Held | Outcome::Drop => {}
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Decodes one operator from YAML and builds it, panicking with the diagnostics.
    pub fn build(yaml: &str) -> Chain {
        let items: Vec<Yaml> = serde_yaml::from_str(yaml).unwrap();
        let mut diags = Diagnostics::new();
        let decoded = decode_list(&items, &ConfigPath::root().key("operators"), &mut diags);
        assert!(!diags.has_errors(), "{diags}");
        Chain::build(&decoded, "filelog", &Telemetry::new(), 1 << 20).unwrap()
    }

    /// The diagnostics of an `operators:` list.
    pub fn problems(yaml: &str) -> Vec<String> {
        let items: Vec<Yaml> = serde_yaml::from_str(yaml).unwrap();
        let mut diags = Diagnostics::new();
        decode_list(
            &items,
            &ConfigPath::root()
                .key("receivers")
                .key("filelog")
                .key("operators"),
            &mut diags,
        );
        diags.iter().map(ToString::to_string).collect()
    }

    pub fn line(text: &str) -> Entry {
        Entry::new(Value::Str(text.to_string()), 1, Source::default())
    }

    /// Runs one line through `chain`, expecting exactly one entry out.
    pub fn one(chain: &mut Chain, entry: Entry) -> Entry {
        let mut out = Vec::new();
        chain.run(entry, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        out.pop().unwrap()
    }

    pub fn field(s: &str) -> Field {
        s.parse().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

    #[test]
    fn unknown_types_and_keys_are_reported_with_their_path() {
        let p = problems(
            r#"
- type: json_parser
- type: jsonparser
- type: move
  from: attributes.a
  to: body
  too: x
- type: regex_parser
  output: next
- {id: x}
"#,
        );
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(
            p[0].contains(
                "receivers::filelog::operators[1]::type: unknown operator type \"jsonparser\""
            ),
            "{p:#?}"
        );
        assert!(
            p[1].contains("receivers::filelog::operators[2]: unknown field \"too\""),
            "{p:#?}"
        );
        assert!(
            p[2].contains("operators[3]::output: not supported"),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("operators[3]: missing field \"regex\"")),
            "{p:#?}"
        );
        assert!(
            p[4].contains("operators[4]: missing key \"type\""),
            "{p:#?}"
        );
    }

    #[test]
    fn operators_run_in_order() {
        let mut chain = build(
            r#"
- {type: json_parser}
- {type: move, from: attributes.msg, to: body}
- {type: add, field: attributes.env, value: prod}
- {type: remove, field: attributes.drop_me}
"#,
        );
        let e = one(&mut chain, line(r#"{"msg":"hello","drop_me":1,"n":2}"#));
        assert_eq!(e.body, super::Value::Str("hello".into()));
        assert_eq!(
            e.get(&field("attributes.env")),
            Some(&super::Value::Str("prod".into()))
        );
        assert_eq!(e.get(&field("attributes.drop_me")), None);
        assert_eq!(e.get(&field("attributes.n")), Some(&super::Value::Int(2)));
    }
}
