//! The `_bulk` API: documents → NDJSON requests, the answer item by item, the item retries,
//! and the dead-letter file.
//!
//! One [`BulkSender::send`] is one attempt of the shared retry layer at one batch:
//!
//! 1. the batch becomes documents, each with its deterministic `_id`;
//! 2. they go out as `_bulk` requests of at most `flush::bytes` each (uncompressed);
//! 3. every item of every answer is read. Indexed, or `409` on `create` (already there): done.
//!    A status in `retry::retry_on_status` (default 429, 500, 502, 503, 504) or an
//!    `es_rejected_execution_exception`: retried — those items only, in a new bulk — after
//!    `retry::initial_interval`, doubling up to `retry::max_interval`, at most
//!    `retry::max_retries` times. Anything else (a mapping conflict, a 400): refused for good;
//! 4. when items are still being rejected after the last retry, the attempt fails as
//!    retryable and `retry_on_failure` sends the whole batch again later. That is safe
//!    because the ids are deterministic: what was indexed is overwritten by itself (`index`)
//!    or answered 409 (`create`), never stored twice;
//! 5. only when an attempt ends with everything else delivered are its refused documents
//!    written to the dead-letter file (or logged and counted as failed), so a batch sent
//!    again does not dead-letter the same document twice.
//!
//! A whole request answered 429, 5xx on every endpoint, or reaching no endpoint fails the
//! attempt as retryable (429 honours `Retry-After`); any other 4xx for the whole request
//! (bad credentials, a body too large) fails it permanently.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::Method;
use prometheus_client::metrics::counter::Counter;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::config::BulkRetrySettings;
use super::index::{record_time, IndexPattern};
use super::mapping::{document_id, timestamp, Mapper, Origin};
use super::template::TemplateInstaller;
use super::transport::{Answer, Transport, Unreachable};
use crate::exporters::helper::{ExportError, Sender};
use crate::net::parse_retry_after;
use crate::pipeline::{Logs, Payload, Traces};
use crate::telemetry::{ExporterMetrics, Telemetry};

/// Asked of `_bulk` so the answer carries only what is read: a few bytes per item instead of
/// the index, id, version and shard counts of each.
const FILTER_PATH: &str = "filter_path=errors,error,status,items.*.status,items.*.error";

/// The bulk action: `index` (create or overwrite) for plain indices, `create` for data
/// streams (which accept nothing else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkOp {
    Index,
    Create,
}

impl BulkOp {
    fn name(self) -> &'static str {
        match self {
            BulkOp::Index => "index",
            BulkOp::Create => "create",
        }
    }
}

/// Where documents of one signal go.
#[derive(Clone, Debug)]
pub enum Target {
    /// A (dated) index name pattern, rendered per record.
    Pattern(IndexPattern),
    /// A data stream name.
    DataStream(String),
}

impl Target {
    fn index(&self, at: DateTime<Utc>) -> String {
        match self {
            Target::Pattern(p) => p.render(at),
            Target::DataStream(name) => name.clone(),
        }
    }

    pub fn op(&self) -> BulkOp {
        match self {
            Target::Pattern(_) => BulkOp::Index,
            Target::DataStream(_) => BulkOp::Create,
        }
    }
}

/// One document, ready for a bulk body.
#[derive(Clone, Debug)]
pub struct Doc {
    pub index: String,
    pub id: String,
    /// The action line, without its newline.
    pub action: Vec<u8>,
    /// The document, serialized, without its newline.
    pub source: Vec<u8>,
}

impl Doc {
    fn new(op: BulkOp, index: String, id: String, source: &Value) -> Self {
        let action = json!({ op.name(): { "_index": index, "_id": id } });
        Self {
            action: action.to_string().into_bytes(),
            source: source.to_string().into_bytes(),
            index,
            id,
        }
    }

    /// The bytes this document adds to a bulk body.
    fn len(&self) -> usize {
        self.action.len() + self.source.len() + 2
    }
}

/// Turns batches into documents: the mapping mode and the target.
#[derive(Clone, Debug)]
pub struct DocBuilder {
    pub mapper: Mapper,
    pub target: Target,
}

/// A signal the exporter can index.
pub trait EsSignal: Payload {
    /// One document per record, in batch order. `now` stands in for missing timestamps.
    fn documents(&self, b: &DocBuilder, now: DateTime<Utc>) -> Vec<Doc>;
}

impl EsSignal for Logs {
    fn documents(&self, b: &DocBuilder, now: DateTime<Utc>) -> Vec<Doc> {
        let op = b.target.op();
        let mut docs = Vec::with_capacity(self.item_count());
        let request = self.request();
        for rl in &request.resource_logs {
            for sl in &rl.scope_logs {
                let origin = Origin {
                    resource: rl.resource.as_ref(),
                    scope: sl.scope.as_ref(),
                };
                for r in &sl.log_records {
                    let at = record_time(r.time_unix_nano, r.observed_time_unix_nano, now);
                    let source = b.mapper.log(origin, r, at);
                    docs.push(Doc::new(
                        op,
                        b.target.index(at),
                        document_id(origin, r),
                        &source,
                    ));
                }
            }
        }
        docs
    }
}

impl EsSignal for Traces {
    fn documents(&self, b: &DocBuilder, now: DateTime<Utc>) -> Vec<Doc> {
        let op = b.target.op();
        let mut docs = Vec::with_capacity(self.item_count());
        let request = self.request();
        for rs in &request.resource_spans {
            for ss in &rs.scope_spans {
                let origin = Origin {
                    resource: rs.resource.as_ref(),
                    scope: ss.scope.as_ref(),
                };
                for s in &ss.spans {
                    let at = record_time(s.start_time_unix_nano, 0, now);
                    let source = b.mapper.span(origin, s, at);
                    docs.push(Doc::new(
                        op,
                        b.target.index(at),
                        document_id(origin, s),
                        &source,
                    ));
                }
            }
        }
        docs
    }
}

/// Groups `pending` (indices into `docs`) into request bodies of at most `max_bytes`; a
/// single document larger than that goes alone.
pub fn split_requests(docs: &[Doc], pending: &[usize], max_bytes: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for &i in pending {
        let len = docs[i].len();
        if !current.is_empty() && size + len > max_bytes {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        current.push(i);
        size += len;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The NDJSON body for `chunk`.
pub fn ndjson(docs: &[Doc], chunk: &[usize]) -> Vec<u8> {
    let mut body = Vec::with_capacity(chunk.iter().map(|&i| docs[i].len()).sum());
    for &i in chunk {
        body.extend_from_slice(&docs[i].action);
        body.push(b'\n');
        body.extend_from_slice(&docs[i].source);
        body.push(b'\n');
    }
    body
}

/// One item of a bulk answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemResult {
    pub status: u16,
    /// `error.type`, empty when there is none.
    pub error_type: String,
    /// `error.reason` (with the `caused_by` reason when there is one).
    pub reason: String,
}

/// Reads a `_bulk` answer: one result per document sent, in order. An answer without
/// errors may omit the items (the cluster or a proxy filtered them): all succeeded.
pub fn parse_response(body: &[u8], expected: usize) -> Result<Vec<ItemResult>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the _bulk answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })?;
    let errors = v.get("errors").and_then(Value::as_bool).unwrap_or(false);
    let items = v.get("items").and_then(Value::as_array);
    let items = match items {
        Some(items) => items,
        None if !errors => {
            return Ok(vec![
                ItemResult {
                    status: 200,
                    error_type: String::new(),
                    reason: String::new(),
                };
                expected
            ])
        }
        None => return Err("the _bulk answer reports errors but has no items".to_string()),
    };
    if items.len() != expected {
        return Err(format!(
            "the _bulk answer has {} items for {expected} documents",
            items.len()
        ));
    }
    items
        .iter()
        .map(|item| {
            // Each item is `{"<op>": {"status": …, "error": {…}}}`.
            let inner = item
                .as_object()
                .and_then(|o| o.values().next())
                .ok_or_else(|| format!("malformed _bulk item: {item}"))?;
            let status = inner
                .get("status")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("_bulk item without a status: {item}"))?;
            let (error_type, reason) = error_parts(inner.get("error"));
            Ok(ItemResult {
                status: status as u16,
                error_type,
                reason,
            })
        })
        .collect()
}

/// `type` and `reason` of an Elasticsearch error object (or an error given as a string).
fn error_parts(error: Option<&Value>) -> (String, String) {
    match error {
        None | Some(Value::Null) => (String::new(), String::new()),
        Some(Value::String(s)) => (String::new(), s.clone()),
        Some(e) => {
            let kind = e.get("type").and_then(Value::as_str).unwrap_or_default();
            let mut reason = e
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(cause) = e
                .get("caused_by")
                .and_then(|c| c.get("reason"))
                .and_then(Value::as_str)
            {
                reason = format!("{reason}: {cause}");
            }
            (kind.to_string(), reason)
        }
    }
}

/// What becomes of one document after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    Indexed,
    /// `create` answered 409: a previous attempt already stored this id.
    AlreadyThere,
    Retry,
    Refused,
}

pub fn classify_item(op: BulkOp, item: &ItemResult, retry_on_status: &[u16]) -> ItemOutcome {
    match item.status {
        200..=299 => ItemOutcome::Indexed,
        409 if op == BulkOp::Create => ItemOutcome::AlreadyThere,
        s if retry_on_status.contains(&s) => ItemOutcome::Retry,
        _ if item.error_type == "es_rejected_execution_exception" => ItemOutcome::Retry,
        _ => ItemOutcome::Refused,
    }
}

/// The message of an error answer: its `error.type: reason`, else the start of its text.
fn error_detail(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let (kind, reason) = error_parts(v.get("error"));
        if !kind.is_empty() || !reason.is_empty() {
            return format!("{kind}: {reason}");
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    let text = text.trim();
    if text.is_empty() {
        "(no message in the answer)".to_string()
    } else {
        text.to_string()
    }
}

/// Appends refused documents, one JSON line each, to the `dead_letter::path` file.
pub struct DeadLetter {
    path: PathBuf,
    file: tokio::sync::Mutex<tokio::fs::File>,
}

impl DeadLetter {
    /// Opens (creating) the file for appending, now, so a path that cannot be written fails
    /// the build instead of the first refusal.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                anyhow::anyhow!(
                    "dead_letter::path: cannot open \"{}\" for appending: {e}",
                    path.display()
                )
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file: tokio::sync::Mutex::new(tokio::fs::File::from_std(file)),
        })
    }

    async fn append(&self, lines: &[u8]) -> std::io::Result<()> {
        let mut file = self.file.lock().await;
        file.write_all(lines).await?;
        file.flush().await
    }
}

/// The exporter's own series, besides the shared `ExporterMetrics`.
#[derive(Clone)]
pub struct BulkMetrics {
    requests: HashMap<&'static str, Counter>,
    pub retried: Counter,
    pub dead_lettered: Counter,
    /// The shared `otelcol_exporter_send_failed_*` series of this signal, for documents
    /// refused with nowhere to dead-letter them.
    pub send_failed: Counter,
}

/// The `outcome` label values of `otelcol_exporter_elasticsearch_bulk_requests`.
const OUTCOMES: [&str; 5] = [
    "success",
    "too_many",
    "failed_server",
    "failed_client",
    "unreachable",
];

impl BulkMetrics {
    pub fn new<T: Payload>(t: &Telemetry, exporter: &str) -> Self {
        let requests = OUTCOMES
            .iter()
            .map(|o| {
                (
                    *o,
                    t.counter(
                        "otelcol_exporter_elasticsearch_bulk_requests",
                        "Bulk requests sent to Elasticsearch, by outcome",
                        &[("exporter", exporter), ("outcome", o)],
                    ),
                )
            })
            .collect();
        Self {
            requests,
            retried: t.counter(
                "otelcol_exporter_elasticsearch_documents_retried",
                "Documents sent again because Elasticsearch answered their bulk item with a retryable status",
                &[("exporter", exporter)],
            ),
            dead_lettered: t.counter(
                "otelcol_exporter_elasticsearch_dead_letter_documents",
                "Documents Elasticsearch refused for good, written to the dead-letter file",
                &[("exporter", exporter)],
            ),
            send_failed: ExporterMetrics::new(t, exporter, T::ITEM, T::SIGNAL.as_str()).send_failed,
        }
    }

    fn request(&self, outcome: &'static str) {
        if let Some(c) = self.requests.get(outcome) {
            c.inc();
        }
    }
}

/// A document refused for good, waiting for the end of the attempt.
struct Refusal {
    doc: usize,
    item: ItemResult,
}

/// The exporter's [`Sender`] for one signal; see the module doc.
pub struct BulkSender<T> {
    pub exporter: String,
    pub transport: Arc<Transport>,
    pub builder: DocBuilder,
    pub max_bytes: usize,
    pub retry: BulkRetrySettings,
    /// `/_bulk?…`, with the ingest pipeline when one is configured.
    pub path: String,
    pub template: Option<Arc<TemplateInstaller>>,
    pub dead_letter: Option<Arc<DeadLetter>>,
    pub metrics: BulkMetrics,
    pub _signal: PhantomData<fn() -> T>,
}

/// `/_bulk` with its query.
pub fn bulk_path(pipeline: &str) -> String {
    if pipeline.is_empty() {
        format!("/_bulk?{FILTER_PATH}")
    } else {
        let mut encoded = String::new();
        for b in pipeline.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                encoded.push(b as char);
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        format!("/_bulk?{FILTER_PATH}&pipeline={encoded}")
    }
}

impl<T: EsSignal> BulkSender<T> {
    /// Sends one bulk request; `Ok` carries one result per document of `chunk`.
    async fn bulk(&self, docs: &[Doc], chunk: &[usize]) -> Result<Vec<ItemResult>, ExportError> {
        let body = ndjson(docs, chunk);
        let size = body.len();
        let answer = self
            .transport
            .request(Method::POST, &self.path, "application/x-ndjson", body)
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(Unreachable {
                message,
                last_answer: None,
            }) => {
                self.metrics.request("unreachable");
                return Err(ExportError::retryable(format!(
                    "cannot reach any Elasticsearch endpoint ({message}); the batch will be retried"
                )));
            }
            Err(Unreachable {
                message,
                last_answer: Some(a),
            }) => {
                self.metrics.request("failed_server");
                let message = format!(
                    "every Elasticsearch endpoint failed ({message}); last answer: {}",
                    error_detail(&a.body)
                );
                return Err(throttled_or_retryable(&a, message));
            }
        };
        let status = answer.status.as_u16();
        if answer.status.is_success() {
            return match parse_response(&answer.body, chunk.len()) {
                Ok(items) => {
                    self.metrics.request("success");
                    Ok(items)
                }
                Err(e) => {
                    self.metrics.request("failed_server");
                    Err(ExportError::retryable(format!(
                        "{} answered _bulk with HTTP {status} but {e}",
                        answer.endpoint
                    )))
                }
            };
        }
        let detail = error_detail(&answer.body);
        if status == 429 {
            self.metrics.request("too_many");
            let message = format!(
                "{} answered _bulk with HTTP 429 (too many requests): {detail}",
                answer.endpoint
            );
            return Err(throttled_or_retryable(&answer, message));
        }
        self.metrics.request("failed_client");
        let hint = match status {
            401 | 403 => "; check user/password, api_key or bearer_token and the role's privileges",
            413 => "; lower flush::bytes below the cluster's http.max_content_length",
            _ => "",
        };
        Err(ExportError::permanent(format!(
            "{} refused a _bulk request of {size} bytes with HTTP {status}: {detail}{hint}",
            answer.endpoint
        )))
    }

    /// Writes (or logs) what was refused for good, at the end of a successful attempt.
    async fn refused(&self, docs: &[Doc], refusals: Vec<Refusal>) {
        if refusals.is_empty() {
            return;
        }
        let first = &refusals[0].item;
        let Some(dead_letter) = &self.dead_letter else {
            self.metrics.send_failed.inc_by(refusals.len() as u64);
            tracing::error!(
                component = %self.exporter,
                documents = refusals.len(),
                index = %docs[refusals[0].doc].index,
                status = first.status,
                error = %format!("{}: {}", first.error_type, first.reason),
                "Elasticsearch refused documents for good; they are dropped. Fix the mapping or set dead_letter::path to keep them"
            );
            return;
        };
        let now = timestamp(Utc::now());
        let mut lines = Vec::new();
        for r in &refusals {
            let doc = &docs[r.doc];
            let document: Value = serde_json::from_slice(&doc.source).unwrap_or(Value::Null);
            let line = json!({
                "@timestamp": now,
                "index": doc.index,
                "_id": doc.id,
                "status": r.item.status,
                "error": {"type": r.item.error_type, "reason": r.item.reason},
                "document": document,
            });
            lines.extend_from_slice(line.to_string().as_bytes());
            lines.push(b'\n');
        }
        match dead_letter.append(&lines).await {
            Ok(()) => {
                self.metrics.dead_lettered.inc_by(refusals.len() as u64);
                tracing::warn!(
                    component = %self.exporter,
                    documents = refusals.len(),
                    path = %dead_letter.path.display(),
                    error = %format!("{}: {}", first.error_type, first.reason),
                    "Elasticsearch refused documents for good; written to the dead-letter file"
                );
            }
            Err(e) => {
                self.metrics.send_failed.inc_by(refusals.len() as u64);
                tracing::error!(
                    component = %self.exporter,
                    documents = refusals.len(),
                    path = %dead_letter.path.display(),
                    error = %e,
                    "cannot write refused documents to the dead-letter file; they are dropped"
                );
            }
        }
    }
}

fn throttled_or_retryable(answer: &Answer, message: String) -> ExportError {
    match answer
        .retry_after
        .as_deref()
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
    {
        Some(delay) => ExportError::throttled(message, delay),
        None => ExportError::retryable(message),
    }
}

#[async_trait]
impl<T: EsSignal> Sender<T> for BulkSender<T> {
    async fn send(&self, data: &T) -> Result<(), ExportError> {
        if let Some(template) = &self.template {
            template.ensure().await?;
        }
        let docs = data.documents(&self.builder, Utc::now());
        let op = self.builder.target.op();
        let mut pending: Vec<usize> = (0..docs.len()).collect();
        let mut refusals = Vec::new();
        let mut backoff = self.retry.initial_interval.get();
        let mut retries = 0u32;
        loop {
            let mut again = Vec::new();
            let mut last_retryable = None;
            for chunk in split_requests(&docs, &pending, self.max_bytes) {
                let results = self.bulk(&docs, &chunk).await?;
                for (&doc, item) in chunk.iter().zip(results) {
                    match classify_item(op, &item, &self.retry.retry_on_status) {
                        ItemOutcome::Indexed | ItemOutcome::AlreadyThere => {}
                        ItemOutcome::Retry => {
                            again.push(doc);
                            last_retryable = Some(item);
                        }
                        ItemOutcome::Refused => refusals.push(Refusal { doc, item }),
                    }
                }
            }
            let Some(last) = last_retryable else { break };
            if !self.retry.enabled || retries >= self.retry.max_retries {
                return Err(ExportError::retryable(format!(
                    "{} of {} documents still rejected after {retries} item retries (last: HTTP {} {}: {}); the batch will be sent again (ids are deterministic, so nothing is duplicated)",
                    again.len(),
                    docs.len(),
                    last.status,
                    last.error_type,
                    last.reason
                )));
            }
            retries += 1;
            self.metrics.retried.inc_by(again.len() as u64);
            tracing::debug!(
                component = %self.exporter, documents = again.len(), retry_in = ?backoff,
                status = last.status, "retrying rejected bulk items"
            );
            tokio::time::sleep(backoff).await;
            backoff =
                (backoff * 2).min(self.retry.max_interval.get().max(Duration::from_millis(1)));
            pending = again;
        }
        self.refused(&docs, refusals).await;
        Ok(())
    }
}
