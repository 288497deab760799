//! The `schema` processor (Weft's own; the seed's chapter 2.1): checks each log record — its
//! body, or its attributes — against a JSON Schema, and drops, tags or routes the ones that
//! break it.
//!
//! ```yaml
//! schema:
//!   target: body                 # or attributes
//!   schema_file: /etc/weft/log-record.schema.json    # or `schema:` inline (YAML or a JSON string)
//!   action: route                # drop | tag | route
//! ```
//!
//! # Contract
//!
//! - **The schema is configuration.** It is read (`schema_file`) and compiled when the
//!   configuration is validated, so `weft validate` reports a missing file, a file that is
//!   not JSON, or a schema that breaks its meta-schema, with the key's path; the compiled
//!   schema is what the running processor uses. Drafts 4 to 2020-12, from `$schema` (2020-12
//!   when absent, as the seed's). `format` is checked (`date-time`, `email`, …) unless
//!   `validate_formats: false`. A `$ref` to another file or a URL is an error: a schema
//!   must be self-contained (`$defs`). `pattern` and `patternProperties` use the `regex`
//!   crate: no look-around or back-references, and no catastrophic backtracking.
//! - **What is checked**: `target: body` checks the body as JSON (a map body as an object, a
//!   string body as a string — parse JSON lines first with `transform`'s `ParseJSON`);
//!   `target: attributes` checks the record's attributes as an object. Bytes are checked as
//!   base64 text, as OTLP/JSON writes them. A value nested deeper than 128 levels is invalid
//!   (reason `depth`) rather than walked.
//! - **An invalid record**: `drop` drops it (a configured policy, counted);
//!   `tag` sets the attribute `weft.schema.errors` — a list of strings
//!   `"<JSON pointer>: <rule>: <message>"`, e.g. `"/level: enum: value is not one of …"`, at most
//!   `max_errors` — and passes it on; `route` tags it the same way for a `routing` connector
//!   after this processor to send to a dead-letter pipeline (`weft validate` warns when the
//!   pipeline exports to no connector). Messages never quote the record's values (they
//!   could be personal data, or 10 MB long): the pointer says where, the rule says what.
//! - Counted per reason: `weft_processor_schema_log_records{processor,outcome}`
//!   (`valid`/`invalid`), `weft_processor_schema_errors{processor,reason}` (the rule: `type`,
//!   `required`, `enum`, `format`, `maxLength`, …), and
//!   `weft_processor_schema_dropped_log_records{processor}`.

use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{PatternOptions, Validator};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use serde_json::{Map, Number, Value as Json};
use weft_config::{ComponentConfig, ConfigPath, Diagnostics};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};

use crate::component::{BuildContext, Component, Processor, ProcessorFactory, Stability};
use crate::pipeline::{Batch, ConsumeError, Consumer, Payload};
use crate::telemetry::CounterFamily;

/// The attribute an invalid record is tagged with.
pub const ERRORS_ATTRIBUTE: &str = "weft.schema.errors";

/// Values nested deeper than this are not walked: the record is invalid (reason `depth`).
/// As deep as `ParseJSON` goes, far deeper than any log line needs.
const MAX_DEPTH: usize = 128;

/// Longest message kept per error (an `enum` of many values makes long ones).
const MAX_MESSAGE_CHARS: usize = 200;

/// `processors::schema`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The schema inline: a YAML map, or a JSON document as a string.
    pub schema: Option<serde_yaml::Value>,
    /// A file holding the schema as JSON.
    pub schema_file: Option<String>,
    /// What is checked: `body` (default) or `attributes`.
    pub target: Target,
    /// What happens to an invalid record: `tag` (default), `drop` or `route`.
    pub action: Action,
    /// Check `format` keywords (`date-time`, `email`, …). Default true.
    pub validate_formats: bool,
    /// Errors recorded per record in `weft.schema.errors` (all are counted). Default 10.
    pub max_errors: usize,
    /// The schema compiled by validation, used by build.
    #[serde(skip)]
    compiled: OnceLock<Arc<Validator>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            schema: None,
            schema_file: None,
            target: Target::Body,
            action: Action::Tag,
            validate_formats: true,
            max_errors: 10,
            compiled: OnceLock::new(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("schema", &self.schema.as_ref().map(|_| "(inline)"))
            .field("schema_file", &self.schema_file)
            .field("target", &self.target)
            .field("action", &self.action)
            .field("validate_formats", &self.validate_formats)
            .field("max_errors", &self.max_errors)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    #[default]
    Body,
    Attributes,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Drop,
    #[default]
    Tag,
    Route,
}

impl Config {
    /// Reads and compiles the schema: `Err` is the key at fault (relative to the section) and
    /// why.
    fn compile(&self) -> Result<Validator, (&'static str, String)> {
        let (key, document) = match (&self.schema, &self.schema_file) {
            (Some(_), Some(_)) => {
                return Err((
                    "schema",
                    "schema and schema_file are two schemas: keep one".to_string(),
                ))
            }
            (None, None) => {
                return Err((
                    "schema",
                    "a schema is required: schema (inline) or schema_file".to_string(),
                ))
            }
            (Some(serde_yaml::Value::String(text)), None) => (
                "schema",
                serde_json::from_str::<Json>(text)
                    .map_err(|e| ("schema", format!("not a JSON document: {e}")))?,
            ),
            (Some(inline), None) => (
                "schema",
                serde_json::to_value(inline)
                    .map_err(|e| ("schema", format!("not a JSON document: {e}")))?,
            ),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| ("schema_file", format!("cannot read {file:?}: {e}")))?;
                (
                    "schema_file",
                    serde_json::from_str::<Json>(&text)
                        .map_err(|e| ("schema_file", format!("{file:?} is not JSON: {e}")))?,
                )
            }
        };
        jsonschema::options()
            .should_validate_formats(self.validate_formats)
            .with_pattern_options(PatternOptions::regex())
            .build(&document)
            .map_err(|e| {
                let at = e.instance_path().as_str();
                let at = if at.is_empty() { "/" } else { at };
                (key, format!("not a valid JSON Schema: at {at}: {e}"))
            })
    }

    /// The compiled schema (compiled once, by validation or on first use).
    fn validator(&self) -> Result<Arc<Validator>, (&'static str, String)> {
        if let Some(v) = self.compiled.get() {
            return Ok(v.clone());
        }
        let compiled = Arc::new(self.compile()?);
        Ok(self.compiled.get_or_init(|| compiled).clone())
    }
}

impl ComponentConfig for Config {
    fn validate(&self, path: &ConfigPath, diags: &mut Diagnostics) {
        if let Err((key, message)) = self.validator() {
            diags.error(&path.key(key), message);
        }
        if self.max_errors == 0 {
            diags.error(
                &path.key("max_errors"),
                "must be at least 1: an invalid record says why",
            );
        }
    }

    fn expects_connector_after(&self) -> Option<String> {
        (self.action == Action::Route).then(|| {
            format!("action: route tags invalid records with {ERRORS_ATTRIBUTE} for a routing connector after it to send to a dead-letter pipeline")
        })
    }
}

pub fn factory() -> ProcessorFactory {
    ProcessorFactory::new::<Config>(
        "schema",
        Stability::Alpha,
        "checks log records against a JSON Schema; drops, tags or routes the invalid ones",
    )
    .signal::<ExportLogsServiceRequest, Config>(build)
}

fn build(
    ctx: BuildContext,
    cfg: &Config,
    next: Arc<dyn Consumer<Batch<ExportLogsServiceRequest>>>,
) -> anyhow::Result<Arc<dyn Processor<Batch<ExportLogsServiceRequest>>>> {
    let validator = cfg
        .validator()
        .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
    let id = ctx.id_str();
    let t = &ctx.telemetry;
    let outcome = |o: &str| {
        t.counter(
            "weft_processor_schema_log_records",
            "Log records checked against the schema, by outcome",
            &[("processor", &id), ("outcome", o)],
        )
    };
    Ok(Arc::new(Schema {
        validator,
        target: cfg.target,
        action: cfg.action,
        max_errors: cfg.max_errors,
        valid: outcome("valid"),
        invalid: outcome("invalid"),
        dropped: t.counter(
            "weft_processor_schema_dropped_log_records",
            "Invalid log records dropped (action: drop)",
            &[("processor", &id)],
        ),
        reasons: t.counter_family(
            "weft_processor_schema_errors",
            "Schema errors found in log records, by the rule broken",
        ),
        id,
        next,
    }))
}

/// The processor.
pub struct Schema {
    id: String,
    validator: Arc<Validator>,
    target: Target,
    action: Action,
    max_errors: usize,
    valid: Counter,
    invalid: Counter,
    dropped: Counter,
    reasons: CounterFamily,
    next: Arc<dyn Consumer<Batch<ExportLogsServiceRequest>>>,
}

/// What checking one record found.
struct Verdict {
    /// `"<pointer>: <rule>: <message>"`, at most `max_errors`.
    errors: Vec<String>,
    /// The rule of every error found (also past `max_errors`).
    reasons: Vec<&'static str>,
}

impl Schema {
    /// Checks one record; `None` when it is valid.
    fn check(&self, record: &weft_proto::logs::v1::LogRecord) -> Option<Verdict> {
        let document = match self.target {
            Target::Body => record
                .body
                .as_ref()
                .map_or(Ok(Json::Null), |b| to_json(b, 0)),
            Target::Attributes => attributes_to_json(&record.attributes, 0),
        };
        let document = match document {
            Ok(d) => d,
            Err(TooDeep) => {
                return Some(Verdict {
                    errors: vec![format!(
                        "/: depth: the value nests deeper than {MAX_DEPTH} levels"
                    )],
                    reasons: vec!["depth"],
                })
            }
        };
        let mut verdict = Verdict {
            errors: Vec::new(),
            reasons: Vec::new(),
        };
        for error in self.validator.iter_errors(&document) {
            let rule = rule_name(error.kind());
            verdict.reasons.push(rule);
            if verdict.errors.len() < self.max_errors {
                let mut pointer = error.instance_path().as_str().to_string();
                // A missing property is reported where it should be, not at its parent.
                if let ValidationErrorKind::Required { property } = error.kind() {
                    if let Some(name) = property.as_str() {
                        pointer.push('/');
                        pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    }
                }
                if pointer.is_empty() {
                    pointer.push('/');
                }
                let message: String = error
                    .masked()
                    .to_string()
                    .chars()
                    .take(MAX_MESSAGE_CHARS)
                    .collect();
                verdict.errors.push(format!("{pointer}: {rule}: {message}"));
            }
        }
        (!verdict.reasons.is_empty()).then_some(verdict)
    }
}

/// The rule a validation error broke, as a `&'static str` for the metric label.
fn rule_name(kind: &ValidationErrorKind) -> &'static str {
    // `keyword()` names the JSON Schema keyword; the labels must outlive the error, and the
    // set of keywords is fixed, so unknown ones share one label.
    const KNOWN: &[&str] = &[
        "additionalItems",
        "additionalProperties",
        "anyOf",
        "const",
        "contains",
        "contentEncoding",
        "contentMediaType",
        "dependentRequired",
        "dependentSchemas",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "false",
        "format",
        "items",
        "maxContains",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minContains",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "not",
        "oneOf",
        "pattern",
        "prefixItems",
        "propertyNames",
        "required",
        "type",
        "unevaluatedItems",
        "unevaluatedProperties",
        "uniqueItems",
        "$ref",
    ];
    let word = kind.keyword();
    KNOWN
        .iter()
        .find(|k| **k == word)
        .copied()
        .unwrap_or("other")
}

/// A value nested deeper than [`MAX_DEPTH`].
struct TooDeep;

fn attributes_to_json(attrs: &[KeyValue], depth: usize) -> Result<Json, TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TooDeep);
    }
    let mut map = Map::with_capacity(attrs.len());
    for kv in attrs {
        let v = kv
            .value
            .as_ref()
            .map_or(Ok(Json::Null), |v| to_json(v, depth + 1))?;
        map.insert(kv.key.clone(), v);
    }
    Ok(Json::Object(map))
}

/// An OTLP value as JSON, as OTLP/JSON would write it (bytes as base64; a double JSON cannot
/// hold as its name).
fn to_json(value: &AnyValue, depth: usize) -> Result<Json, TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TooDeep);
    }
    Ok(match &value.value {
        None | Some(any_value::Value::StringValueStrindex(_)) => Json::Null,
        Some(any_value::Value::StringValue(s)) => Json::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Json::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Json::Number((*i).into()),
        Some(any_value::Value::DoubleValue(d)) => {
            Number::from_f64(*d).map_or_else(|| Json::String(d.to_string()), Json::Number)
        }
        Some(any_value::Value::BytesValue(b)) => Json::String(weft_proto::base64::encode(b)),
        Some(any_value::Value::ArrayValue(ArrayValue { values })) => Json::Array(
            values
                .iter()
                .map(|v| to_json(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Some(any_value::Value::KvlistValue(kv)) => attributes_to_json(&kv.values, depth)?,
    })
}

/// Sets `weft.schema.errors` on a record (replacing an earlier verdict).
fn tag(attrs: &mut Vec<KeyValue>, errors: Vec<String>) {
    let value = AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue {
            values: errors
                .into_iter()
                .map(|e| AnyValue {
                    value: Some(any_value::Value::StringValue(e)),
                })
                .collect(),
        })),
    };
    match attrs.iter_mut().find(|kv| kv.key == ERRORS_ATTRIBUTE) {
        Some(kv) => kv.value = Some(value),
        None => attrs.push(KeyValue {
            key: ERRORS_ATTRIBUTE.to_string(),
            value: Some(value),
            ..Default::default()
        }),
    }
}

#[async_trait]
impl Consumer<Batch<ExportLogsServiceRequest>> for Schema {
    async fn consume(&self, mut data: Batch<ExportLogsServiceRequest>) -> Result<(), ConsumeError> {
        let (mut valid, mut invalid, mut dropped) = (0u64, 0u64, 0u64);
        let request = data.request_mut();
        for r in &mut request.resource_logs {
            for s in &mut r.scope_logs {
                s.log_records.retain_mut(|record| {
                    let Some(verdict) = self.check(record) else {
                        valid += 1;
                        return true;
                    };
                    invalid += 1;
                    for reason in &verdict.reasons {
                        self.reasons
                            .get_or_create(&vec![
                                ("processor".to_string(), self.id.clone()),
                                ("reason".to_string(), (*reason).to_string()),
                            ])
                            .inc();
                    }
                    if self.action == Action::Drop {
                        dropped += 1;
                        return false;
                    }
                    tag(&mut record.attributes, verdict.errors);
                    true
                });
            }
            r.scope_logs.retain(|s| !s.log_records.is_empty());
        }
        request.resource_logs.retain(|r| !r.scope_logs.is_empty());
        self.valid.inc_by(valid);
        self.invalid.inc_by(invalid);
        if dropped > 0 {
            self.dropped.inc_by(dropped);
            tracing::debug!(component = %self.id, dropped, "log records that broke the schema were dropped (action: drop)");
        }
        if data.item_count() == 0 {
            return Ok(());
        }
        self.next.consume(data).await
    }
}

impl Component for Schema {}

#[cfg(test)]
mod tests;
