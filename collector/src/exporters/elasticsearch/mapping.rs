//! OTLP records → Elasticsearch documents, in the two `mapping::mode`s, and their ids.
//!
//! **flat** (the default) is the shape the seed's zap/zerolog JSON logs had, so its Kibana
//! queries (`trace_id:"…"`, `level:"error"`) work on OTLP logs unchanged:
//!
//! ```json
//! {"@timestamp": "2026-11-27T10:15:30.123456789Z", "trace_id": "4d1e…", "span_id": "0102…",
//!  "severity_text": "ERROR", "severity_number": 17, "level": "error",
//!  "message": "payment declined", "service.name": "payment-api",
//!  "resource.host.name": "node-1", "scope.name": "payments",
//!  "biz_order_no": "A-1001", "weft.sampled": true}
//! ```
//!
//! Log attributes sit at the top level as they are (business `biz_*` keys, the tail
//! sampler's `weft.*` enrichment); one that would collide with a field above (`message`,
//! `level`, `service`, `resource.*`, …) moves under `attributes.` instead, so a record
//! cannot turn `service` from an object into a string and be refused by the mapping.
//!
//! **ecs** uses Elastic Common Schema names for Kibana's Logs/APM correlation: `trace.id`,
//! `span.id`, `log.level`, `event.severity`, `service.*`, `host.*`, … for the semantic
//! conventions it knows; any other attribute goes under `labels.<key>` (strings and
//! booleans, dots replaced by `_`) or `numeric_labels.<key>` (numbers).
//!
//! Each document's `_id` hashes the record's protobuf encoding with its resource and scope,
//! so the same record sent twice (a retried bulk, a re-sent batch) is one document.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use prost::Message;
use serde_json::{Map, Number, Value};
use weft_proto::base64::encode as base64;
use weft_proto::common::v1::any_value::Value as Any;
use weft_proto::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use weft_proto::logs::v1::LogRecord;
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{span, status, Span};

use super::config::{LevelWords, MappingMode, MappingSettings};

/// `@timestamp` as RFC 3339 with nanoseconds, in UTC.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// An OTLP value as JSON: strings, booleans and numbers as themselves, arrays and key/value
/// lists as arrays and objects, bytes as base64. A double JSON cannot hold (NaN, ±inf)
/// becomes its name as a string.
pub fn any_value(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(Any::StringValue(s)) => Value::String(s.clone()),
        Some(Any::BoolValue(b)) => Value::Bool(*b),
        Some(Any::IntValue(i)) => Value::Number((*i).into()),
        Some(Any::DoubleValue(d)) => match Number::from_f64(*d) {
            Some(n) => Value::Number(n),
            None => Value::String(d.to_string()),
        },
        Some(Any::ArrayValue(a)) => Value::Array(a.values.iter().map(any_value).collect()),
        Some(Any::KvlistValue(kv)) => Value::Object(kv_object(&kv.values)),
        Some(Any::BytesValue(b)) => Value::String(base64(b)),
        // An index into a dictionary this record does not carry (profiles' string table):
        // shown as the index, as the debug exporter does.
        Some(Any::StringValueStrindex(i)) => Value::String(format!("#{i}")),
    }
}

/// Key/value pairs as a JSON object (a later duplicate key wins, as in most SDKs' maps).
fn kv_object(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, any_value),
            )
        })
        .collect()
}

/// Lowercase hex of an id; `None` for an absent or all-zero (invalid) id.
fn id_hex(id: &[u8]) -> Option<String> {
    (!id.is_empty() && id.iter().any(|b| *b != 0)).then(|| hex::encode(id))
}

/// The lower-case level word: the record's severity text, else the name of its severity
/// number's range (the OTLP data model's ranges: 1–4 trace … 21–24 fatal).
pub fn level(severity_text: &str, severity_number: i32) -> Option<String> {
    if !severity_text.is_empty() {
        return Some(severity_text.to_lowercase());
    }
    severity_range(severity_number).map(str::to_string)
}

/// The name of a severity number's range (the OTLP data model's: 1–4 trace … 21–24 fatal).
fn severity_range(severity_number: i32) -> Option<&'static str> {
    Some(match severity_number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

/// The level as zap writes it (and the seed's schema allows): from the severity number's
/// range when it has one, else the severity text lowercased, with the other loggers' words
/// for the same levels mapped to zap's (`warning` → `warn`, `critical` → `fatal`).
pub fn zap_level(severity_text: &str, severity_number: i32) -> Option<String> {
    if let Some(name) = severity_range(severity_number) {
        return Some(name.to_string());
    }
    if severity_text.is_empty() {
        return None;
    }
    let text = severity_text.to_lowercase();
    let word = match text.as_str() {
        "warning" => "warn",
        "err" => "error",
        "critical" | "crit" | "emergency" | "emerg" | "alert" => "fatal",
        "information" | "informational" | "notice" => "info",
        _ => return Some(text),
    };
    Some(word.to_string())
}

/// Where a record came from: its resource and scope, shared by the records of one scope.
#[derive(Clone, Copy, Default)]
pub struct Origin<'a> {
    pub resource: Option<&'a Resource>,
    pub scope: Option<&'a InstrumentationScope>,
}

impl Origin<'_> {
    fn resource_attrs(&self) -> &[KeyValue] {
        self.resource.map_or(&[], |r| r.attributes.as_slice())
    }
}

/// Builds documents in one mapping mode.
#[derive(Clone, Debug)]
pub struct Mapper {
    pub mode: MappingMode,
    /// `flat`: how `level` is written.
    pub level: LevelWords,
    /// `flat`: the attribute `duration_ms` is copied from (`None`: no `duration_ms`).
    pub duration_ms_from: Option<String>,
}

impl Mapper {
    /// A mapper with the default `flat` fields (zap's level words, `duration_ms` from the
    /// tail sampler's `weft.trace_duration_ms`).
    #[cfg(test)]
    pub fn new(mode: MappingMode) -> Self {
        Self::from_settings(&MappingSettings {
            mode,
            ..MappingSettings::default()
        })
    }

    /// The mapper the `mapping` settings describe.
    pub fn from_settings(settings: &MappingSettings) -> Self {
        Self {
            mode: settings.mode,
            level: settings.level,
            duration_ms_from: (!settings.duration_ms_from.is_empty())
                .then(|| settings.duration_ms_from.clone()),
        }
    }

    /// The document for one log record; `at` is its [`record_time`](super::index::record_time).
    pub fn log(&self, origin: Origin<'_>, record: &LogRecord, at: DateTime<Utc>) -> Value {
        Value::Object(match self.mode {
            MappingMode::Flat => self.flat_log(origin, record, at),
            MappingMode::Ecs => ecs_log(origin, record, at),
        })
    }

    /// The document for one span; `at` is its start time.
    pub fn span(&self, origin: Origin<'_>, span: &Span, at: DateTime<Utc>) -> Value {
        Value::Object(match self.mode {
            MappingMode::Flat => flat_span(origin, span, at),
            MappingMode::Ecs => ecs_span(origin, span, at),
        })
    }
}

/// Keys the flat log document writes itself; an attribute with one of these names, or
/// under one of the object roots, goes under `attributes.` instead.
const FLAT_LOG_FIELDS: &[&str] = &[
    "@timestamp",
    "trace_id",
    "span_id",
    "severity_text",
    "severity_number",
    "level",
    "message",
    "body",
    "event_name",
    "attributes",
];
const FLAT_SPAN_FIELDS: &[&str] = &[
    "@timestamp",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "duration_ms",
    "events",
    "attributes",
];
/// Object roots of the flat documents (`service.name`, `scope.name`, `resource.*`,
/// `status.*` for spans).
const FLAT_ROOTS: &[&str] = &["service", "scope", "resource", "status"];

fn collides(key: &str, fields: &[&str]) -> bool {
    fields.contains(&key)
        || FLAT_ROOTS
            .iter()
            .any(|root| key == *root || key.strip_prefix(root).is_some_and(|r| r.starts_with('.')))
}

/// What flat documents of both signals share: service, resource, scope, then attributes.
fn flat_common(
    doc: &mut Map<String, Value>,
    origin: Origin<'_>,
    attrs: &[KeyValue],
    fields: &[&str],
) {
    for kv in origin.resource_attrs() {
        let value = kv.value.as_ref().map_or(Value::Null, any_value);
        if kv.key == "service.name" {
            doc.insert("service.name".to_string(), value);
        } else {
            doc.insert(format!("resource.{}", kv.key), value);
        }
    }
    if let Some(scope) = origin.scope {
        if !scope.name.is_empty() {
            doc.insert("scope.name".to_string(), Value::String(scope.name.clone()));
        }
        if !scope.version.is_empty() {
            doc.insert(
                "scope.version".to_string(),
                Value::String(scope.version.clone()),
            );
        }
    }
    for kv in attrs {
        let value = kv.value.as_ref().map_or(Value::Null, any_value);
        if collides(&kv.key, fields) {
            doc.insert(format!("attributes.{}", kv.key), value);
        } else {
            doc.insert(kv.key.clone(), value);
        }
    }
}

/// A document holding only its `@timestamp`.
fn stamped(at: DateTime<Utc>) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("@timestamp".to_string(), Value::String(timestamp(at)));
    doc
}

/// Adds the trace and span ids, when set, under `keys`.
fn insert_ids(doc: &mut Map<String, Value>, trace_id: &[u8], span_id: &[u8], keys: [&str; 2]) {
    for (key, id) in keys.into_iter().zip([trace_id, span_id]) {
        if let Some(hex) = id_hex(id) {
            doc.insert(key.to_string(), Value::String(hex));
        }
    }
}

impl Mapper {
    /// A flat log document, with the seed's `level` and `duration_ms` as configured.
    fn flat_log(&self, origin: Origin<'_>, r: &LogRecord, at: DateTime<Utc>) -> Map<String, Value> {
        let mut doc = flat_log(origin, r, at);
        let level = match self.level {
            LevelWords::Zap => zap_level(&r.severity_text, r.severity_number),
            LevelWords::SeverityText => level(&r.severity_text, r.severity_number),
        };
        match level {
            Some(l) => doc.insert("level".to_string(), Value::String(l)),
            None => doc.remove("level"),
        };
        if let Some(from) = &self.duration_ms_from {
            let own = r.attributes.iter().any(|kv| kv.key == "duration_ms");
            let enriched = r.attributes.iter().find(|kv| kv.key == *from);
            if let (false, Some(kv)) = (own, enriched) {
                let value = kv.value.as_ref().map_or(Value::Null, any_value);
                if value.is_number() {
                    doc.insert("duration_ms".to_string(), value);
                }
            }
        }
        doc
    }
}

fn flat_log(origin: Origin<'_>, r: &LogRecord, at: DateTime<Utc>) -> Map<String, Value> {
    let mut doc = stamped(at);
    insert_ids(&mut doc, &r.trace_id, &r.span_id, ["trace_id", "span_id"]);
    if !r.severity_text.is_empty() {
        doc.insert(
            "severity_text".to_string(),
            Value::String(r.severity_text.clone()),
        );
    }
    if r.severity_number != 0 {
        doc.insert(
            "severity_number".to_string(),
            Value::Number(r.severity_number.into()),
        );
    }
    if let Some(l) = level(&r.severity_text, r.severity_number) {
        doc.insert("level".to_string(), Value::String(l));
    }
    if !r.event_name.is_empty() {
        doc.insert(
            "event_name".to_string(),
            Value::String(r.event_name.clone()),
        );
    }
    match r.body.as_ref().map(any_value) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            doc.insert("message".to_string(), Value::String(s));
        }
        Some(structured) => {
            doc.insert("message".to_string(), Value::String(structured.to_string()));
            doc.insert("body".to_string(), structured);
        }
    }
    flat_common(&mut doc, origin, &r.attributes, FLAT_LOG_FIELDS);
    doc
}

fn kind_name(kind: i32) -> &'static str {
    match span::SpanKind::try_from(kind).unwrap_or(span::SpanKind::Unspecified) {
        span::SpanKind::Unspecified => "unspecified",
        span::SpanKind::Internal => "internal",
        span::SpanKind::Server => "server",
        span::SpanKind::Client => "client",
        span::SpanKind::Producer => "producer",
        span::SpanKind::Consumer => "consumer",
    }
}

fn status_code(s: &Span) -> status::StatusCode {
    s.status
        .as_ref()
        .and_then(|st| status::StatusCode::try_from(st.code).ok())
        .unwrap_or(status::StatusCode::Unset)
}

fn status_message(s: &Span) -> &str {
    s.status.as_ref().map_or("", |st| st.message.as_str())
}

fn duration_nanos(s: &Span) -> u64 {
    s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano)
}

fn nanos_time(nanos: u64) -> Option<String> {
    DateTime::<Utc>::from_timestamp(
        (nanos / 1_000_000_000) as i64,
        (nanos % 1_000_000_000) as u32,
    )
    .map(timestamp)
}

fn flat_span(origin: Origin<'_>, s: &Span, at: DateTime<Utc>) -> Map<String, Value> {
    let mut doc = stamped(at);
    insert_ids(&mut doc, &s.trace_id, &s.span_id, ["trace_id", "span_id"]);
    if let Some(p) = id_hex(&s.parent_span_id) {
        doc.insert("parent_span_id".to_string(), Value::String(p));
    }
    doc.insert("name".to_string(), Value::String(s.name.clone()));
    doc.insert(
        "kind".to_string(),
        Value::String(kind_name(s.kind).to_string()),
    );
    let code = match status_code(s) {
        status::StatusCode::Unset => "unset",
        status::StatusCode::Ok => "ok",
        status::StatusCode::Error => "error",
    };
    doc.insert("status.code".to_string(), Value::String(code.to_string()));
    if !status_message(s).is_empty() {
        doc.insert(
            "status.message".to_string(),
            Value::String(status_message(s).to_string()),
        );
    }
    doc.insert(
        "duration_ms".to_string(),
        Number::from_f64(duration_nanos(s) as f64 / 1e6).map_or(Value::Null, Value::Number),
    );
    if !s.events.is_empty() {
        let events = s
            .events
            .iter()
            .map(|e| {
                let mut ev = Map::new();
                ev.insert("name".to_string(), Value::String(e.name.clone()));
                if let Some(t) = nanos_time(e.time_unix_nano) {
                    ev.insert("@timestamp".to_string(), Value::String(t));
                }
                if !e.attributes.is_empty() {
                    ev.insert(
                        "attributes".to_string(),
                        Value::Object(kv_object(&e.attributes)),
                    );
                }
                Value::Object(ev)
            })
            .collect();
        doc.insert("events".to_string(), Value::Array(events));
    }
    flat_common(&mut doc, origin, &s.attributes, FLAT_SPAN_FIELDS);
    doc
}

/// Semantic-convention keys with an ECS field of their own.
const ECS_FIELDS: &[(&str, &str)] = &[
    ("service.name", "service.name"),
    ("service.version", "service.version"),
    ("service.instance.id", "service.node.name"),
    ("deployment.environment", "service.environment"),
    ("deployment.environment.name", "service.environment"),
    ("telemetry.sdk.language", "service.language.name"),
    ("telemetry.sdk.name", "agent.name"),
    ("telemetry.sdk.version", "agent.version"),
    ("host.name", "host.name"),
    ("host.id", "host.id"),
    ("host.arch", "host.architecture"),
    ("host.ip", "host.ip"),
    ("os.type", "host.os.platform"),
    ("os.description", "host.os.full"),
    ("os.name", "host.os.name"),
    ("os.version", "host.os.version"),
    ("container.id", "container.id"),
    ("container.name", "container.name"),
    ("container.image.name", "container.image.name"),
    ("container.image.tag", "container.image.tag"),
    ("cloud.provider", "cloud.provider"),
    ("cloud.region", "cloud.region"),
    ("cloud.availability_zone", "cloud.availability_zone"),
    ("cloud.account.id", "cloud.account.id"),
    ("cloud.platform", "cloud.service.name"),
    ("k8s.namespace.name", "kubernetes.namespace"),
    ("k8s.pod.name", "kubernetes.pod.name"),
    ("k8s.pod.uid", "kubernetes.pod.uid"),
    ("k8s.node.name", "kubernetes.node.name"),
    ("k8s.deployment.name", "kubernetes.deployment.name"),
    ("process.pid", "process.pid"),
    ("process.executable.name", "process.name"),
    ("process.command_line", "process.command_line"),
    ("exception.type", "error.type"),
    ("exception.message", "error.message"),
    ("exception.stacktrace", "error.stack_trace"),
    ("http.request.method", "http.request.method"),
    ("http.method", "http.request.method"),
    ("http.response.status_code", "http.response.status_code"),
    ("http.status_code", "http.response.status_code"),
    ("url.full", "url.full"),
    ("http.url", "url.full"),
    ("user_agent.original", "user_agent.original"),
];

/// Puts one attribute into an ECS document: its ECS field when it has one, else a label.
fn ecs_attr(doc: &mut Map<String, Value>, kv: &KeyValue) {
    let value = kv.value.as_ref().map_or(Value::Null, any_value);
    if let Some((_, field)) = ECS_FIELDS.iter().find(|(k, _)| *k == kv.key) {
        doc.insert((*field).to_string(), value);
        return;
    }
    let label = kv.key.replace('.', "_");
    match value {
        Value::Null => {}
        Value::Number(n) => {
            doc.insert(format!("numeric_labels.{label}"), Value::Number(n));
        }
        Value::String(s) => {
            doc.insert(format!("labels.{label}"), Value::String(s));
        }
        Value::Bool(b) => {
            doc.insert(format!("labels.{label}"), Value::String(b.to_string()));
        }
        other => {
            // Arrays and maps have no ECS label form; keep them searchable as JSON text.
            doc.insert(format!("labels.{label}"), Value::String(other.to_string()));
        }
    }
}

/// An ECS document's common part: `@timestamp`, the resource's and the item's attributes
/// mapped to ECS fields, then the trace and span ids (which win over attributes).
fn ecs_head(
    origin: Origin<'_>,
    attributes: &[KeyValue],
    at: DateTime<Utc>,
    trace_id: &[u8],
    span_id: &[u8],
) -> Map<String, Value> {
    let mut doc = stamped(at);
    for kv in origin.resource_attrs().iter().chain(attributes) {
        ecs_attr(&mut doc, kv);
    }
    insert_ids(&mut doc, trace_id, span_id, ["trace.id", "span.id"]);
    doc
}

fn ecs_log(origin: Origin<'_>, r: &LogRecord, at: DateTime<Utc>) -> Map<String, Value> {
    let mut doc = ecs_head(origin, &r.attributes, at, &r.trace_id, &r.span_id);
    if let Some(l) = level(&r.severity_text, r.severity_number) {
        doc.insert("log.level".to_string(), Value::String(l));
    }
    if r.severity_number != 0 {
        doc.insert(
            "event.severity".to_string(),
            Value::Number(r.severity_number.into()),
        );
    }
    if let Some(scope) = origin.scope.filter(|s| !s.name.is_empty()) {
        doc.insert("log.logger".to_string(), Value::String(scope.name.clone()));
    }
    if !r.event_name.is_empty() {
        doc.insert(
            "event.action".to_string(),
            Value::String(r.event_name.clone()),
        );
    }
    match r.body.as_ref().map(any_value) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            doc.insert("message".to_string(), Value::String(s));
        }
        Some(structured) => {
            doc.insert("message".to_string(), Value::String(structured.to_string()));
        }
    }
    doc
}

fn ecs_span(origin: Origin<'_>, s: &Span, at: DateTime<Utc>) -> Map<String, Value> {
    let mut doc = ecs_head(origin, &s.attributes, at, &s.trace_id, &s.span_id);
    if let Some(p) = id_hex(&s.parent_span_id) {
        doc.insert("parent.id".to_string(), Value::String(p));
    }
    doc.insert("span.name".to_string(), Value::String(s.name.clone()));
    doc.insert(
        "span.kind".to_string(),
        Value::String(kind_name(s.kind).to_string()),
    );
    let nanos = duration_nanos(s);
    doc.insert("event.duration".to_string(), Value::Number(nanos.into()));
    doc.insert(
        "span.duration.us".to_string(),
        Value::Number((nanos / 1000).into()),
    );
    let outcome = match status_code(s) {
        status::StatusCode::Unset => "unknown",
        status::StatusCode::Ok => "success",
        status::StatusCode::Error => "failure",
    };
    doc.insert(
        "event.outcome".to_string(),
        Value::String(outcome.to_string()),
    );
    if !status_message(s).is_empty() {
        doc.insert(
            "event.reason".to_string(),
            Value::String(status_message(s).to_string()),
        );
    }
    doc
}

/// The document id of a record: FNV-1a (128-bit) over the protobuf encodings of its
/// resource, scope and the record itself, each length-prefixed, as 32 hex digits.
///
/// Protobuf encoding is deterministic for a given message, so a record re-sent unchanged
/// gets the same id and Elasticsearch overwrites (`index`) or refuses (`create`, 409) the
/// copy instead of storing it twice. Two records identical in every field (time to the
/// nanosecond included) are one document.
pub fn document_id<M: Message>(origin: Origin<'_>, record: &M) -> String {
    let mut h = Fnv128::new();
    h.part(
        &origin
            .resource
            .map(Message::encode_to_vec)
            .unwrap_or_default(),
    );
    h.part(&origin.scope.map(Message::encode_to_vec).unwrap_or_default());
    h.part(&record.encode_to_vec());
    let mut out = String::with_capacity(32);
    let _ = write!(out, "{:032x}", h.0);
    out
}

/// FNV-1a with the 128-bit parameters: not cryptographic, but 128 bits make an accidental
/// collision (which would overwrite a document) negligible, with no extra dependency.
pub(super) struct Fnv128(pub(super) u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    pub(super) fn new() -> Self {
        Self(Self::OFFSET)
    }

    pub(super) fn bytes(&mut self, data: &[u8]) {
        for b in data {
            self.0 ^= u128::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// A length-prefixed part, so ("ab", "c") and ("a", "bc") hash differently.
    fn part(&mut self, data: &[u8]) {
        self.bytes(&(data.len() as u64).to_le_bytes());
        self.bytes(data);
    }
}

/// `base64` for the `Authorization: Basic` header.
pub fn basic_credentials(user: &str, password: &str) -> String {
    base64(format!("{user}:{password}").as_bytes())
}
