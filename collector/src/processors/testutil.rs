//! Shared by the governance processors' tests: a consumer that records what it got, log
//! batches built from bodies, and a config decoded and validated as `weft validate` does.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use weft_config::{decode_component, ComponentConfig, ConfigPath, Diagnostics};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource;

use crate::pipeline::{ConsumeError, Consumer, Logs, Payload};

/// Remembers every batch it takes.
pub struct Recorder<T> {
    pub batches: Mutex<Vec<T>>,
}

impl<T> Recorder<T> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            batches: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl<T: Payload> Consumer<T> for Recorder<T> {
    async fn consume(&self, data: T) -> Result<(), ConsumeError> {
        self.batches.lock().push(data);
        Ok(())
    }
}

pub fn string(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    }
}

pub fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

/// One resource (with `service.name`) holding one record per body, as encoded bytes (as
/// the receiver hands them on).
pub fn logs(service: &str, bodies: &[&str]) -> Logs {
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", string(service))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .map(|b| LogRecord {
                        body: Some(string(b)),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let n = bodies.len();
    Logs::from_encoded(prost::Message::encode_to_vec(&request).into(), n)
}

/// Every record of the recorded batches, in order.
pub fn records(batches: &[Logs]) -> Vec<LogRecord> {
    batches
        .iter()
        .flat_map(|b| b.request().into_owned().resource_logs)
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .collect()
}

/// A component config decoded from YAML at `path` and validated; the diagnostics as text.
pub fn config<C: ComponentConfig>(path: &str, yaml: &str) -> (Option<C>, Vec<String>) {
    let mut at = ConfigPath::root();
    for part in path.split("::") {
        at = at.key(part);
    }
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test YAML parses");
    let mut diags = Diagnostics::new();
    let decoded = decode_component::<C>(&value, &at, &mut diags);
    let messages = diags.iter().map(|d| d.to_string()).collect();
    (decoded, messages)
}

/// A record's attribute as text (`<absent>` when missing).
pub fn attr(record: &LogRecord, key: &str) -> String {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| {
            crate::ottl::Value::from_any(kv.value.as_ref())
                .to_string_like()
                .ok()
                .flatten()
                .map(|s| s.into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "<absent>".to_string())
}
