//! Index templates the exporter installs: for a data stream (`data_stream::install_template`,
//! on by default in that mode) and for a dated index pattern (`index_template::install`).
//!
//! A template must exist before the first document: a `create` into `logs-generic-default`
//! without one makes a plain index on OpenSearch, and the ids would be mapped as analysed
//! text. So the template is PUT when the exporter starts (in the background: start does not
//! wait for the cluster) and, until that has succeeded, again before each bulk attempt,
//! which fails as retryable while the cluster cannot be reached. A 4xx answer (no
//! `manage_index_templates` privilege, a cluster that rejects the body) is logged as an
//! error and the exporter goes on without the template rather than holding the data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::Method;
use serde_json::{json, Map, Value};

use super::config::MappingMode;
use super::index::IndexPattern;
use super::transport::Transport;
use crate::exporters::helper::ExportError;

/// Templates Weft installs outrank the built-in ones (Elasticsearch's `logs` template that
/// matches `logs-*-*` has priority 100).
pub const PRIORITY: u64 = 200;

/// The name and body of one index template.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateSpec {
    pub name: String,
    pub body: Value,
}

/// For the data stream `<signal>-<dataset>-<namespace>`: template
/// `weft-<signal>-<dataset>-<namespace>` with `data_stream: {}`.
pub fn data_stream_template(signal: &str, stream: &str, mode: MappingMode) -> TemplateSpec {
    TemplateSpec {
        name: format!("weft-{stream}"),
        body: json!({
            "index_patterns": [format!("{stream}*")],
            "data_stream": {},
            "priority": PRIORITY,
            "template": {"mappings": mappings(signal, mode)},
        }),
    }
}

/// For a dated index pattern: template `weft-<stem>` matching `<prefix>*`.
pub fn pattern_template(signal: &str, pattern: &IndexPattern, mode: MappingMode) -> TemplateSpec {
    let stem = pattern.template_stem();
    let name = if stem.starts_with("weft-") {
        stem
    } else {
        format!("weft-{stem}")
    };
    TemplateSpec {
        name,
        body: json!({
            "index_patterns": pattern.template_patterns(),
            "priority": PRIORITY,
            "template": {"mappings": mappings(signal, mode)},
        }),
    }
}

/// The explicit mappings: `@timestamp` as `date_nanos` (documents carry nanoseconds, and
/// the logs of one request are often within the same millisecond), ids and other exact
/// values as `keyword`, the message as text. Everything else is mapped dynamically.
fn mappings(signal: &str, mode: MappingMode) -> Value {
    let fields: &[(&str, &str)] = match (signal, mode) {
        ("logs", MappingMode::Flat) => &[
            ("@timestamp", "date_nanos"),
            ("trace_id", "keyword"),
            ("span_id", "keyword"),
            ("level", "keyword"),
            ("duration_ms", "double"),
            ("severity_text", "keyword"),
            ("severity_number", "integer"),
            ("message", "text"),
            ("service.name", "keyword"),
            ("scope.name", "keyword"),
        ],
        ("logs", MappingMode::Ecs) => &[
            ("@timestamp", "date_nanos"),
            ("trace.id", "keyword"),
            ("span.id", "keyword"),
            ("log.level", "keyword"),
            ("event.severity", "integer"),
            ("message", "text"),
            ("service.name", "keyword"),
            ("log.logger", "keyword"),
        ],
        (_, MappingMode::Flat) => &[
            ("@timestamp", "date_nanos"),
            ("trace_id", "keyword"),
            ("span_id", "keyword"),
            ("parent_span_id", "keyword"),
            ("name", "keyword"),
            ("kind", "keyword"),
            ("status.code", "keyword"),
            ("duration_ms", "double"),
            ("service.name", "keyword"),
        ],
        (_, MappingMode::Ecs) => &[
            ("@timestamp", "date_nanos"),
            ("trace.id", "keyword"),
            ("span.id", "keyword"),
            ("parent.id", "keyword"),
            ("span.name", "keyword"),
            ("event.outcome", "keyword"),
            ("event.duration", "long"),
            ("service.name", "keyword"),
        ],
    };
    let mut properties = Map::new();
    for (path, kind) in fields {
        put(&mut properties, path, kind);
    }
    json!({ "properties": properties })
}

/// Inserts a dotted field path as nested `properties` objects.
fn put(properties: &mut Map<String, Value>, path: &str, kind: &str) {
    match path.split_once('.') {
        None => {
            properties.insert(path.to_string(), json!({ "type": kind }));
        }
        Some((head, rest)) => {
            let object = properties
                .entry(head.to_string())
                .or_insert_with(|| json!({ "properties": {} }));
            if let Some(Value::Object(inner)) = object.get_mut("properties") {
                put(inner, rest, kind);
            }
        }
    }
}

/// Installs one template once; see the module doc for when and what happens on failure.
pub struct TemplateInstaller {
    exporter: String,
    spec: TemplateSpec,
    transport: Arc<Transport>,
    /// Installed, or given up on after a 4xx: sends no longer wait for it.
    settled: AtomicBool,
    /// One PUT at a time; the others wait for its outcome.
    lock: tokio::sync::Mutex<()>,
}

impl TemplateInstaller {
    pub fn new(exporter: String, spec: TemplateSpec, transport: Arc<Transport>) -> Self {
        Self {
            exporter,
            spec,
            transport,
            settled: AtomicBool::new(false),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Installs the template unless that already happened; an error is retryable.
    pub async fn ensure(&self) -> Result<(), ExportError> {
        if self.settled.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one_at_a_time = self.lock.lock().await;
        if self.settled.load(Ordering::Acquire) {
            return Ok(());
        }
        let name = &self.spec.name;
        let answer = self
            .transport
            .request(
                Method::PUT,
                &format!("/_index_template/{name}"),
                "application/json",
                self.spec.body.to_string().into_bytes(),
            )
            .await;
        match answer {
            Ok(a) if a.status.is_success() => {
                tracing::info!(component = %self.exporter, template = %name, "installed the index template");
                self.settled.store(true, Ordering::Release);
                Ok(())
            }
            Ok(a) if a.status.as_u16() == 429 => Err(ExportError::retryable(format!(
                "cannot install index template {name} yet: {} answered HTTP 429; documents wait for it",
                a.endpoint
            ))),
            Ok(a) => {
                tracing::error!(
                    component = %self.exporter, template = %name, status = a.status.as_u16(),
                    error = %String::from_utf8_lossy(&a.body[..a.body.len().min(512)]),
                    "cannot install the index template; sending without it (ids may be mapped as text). Grant manage_index_templates or install it yourself"
                );
                self.settled.store(true, Ordering::Release);
                Ok(())
            }
            Err(u) => Err(ExportError::retryable(format!(
                "cannot install index template {name} before sending: {}; will retry",
                u.message
            ))),
        }
    }
}
