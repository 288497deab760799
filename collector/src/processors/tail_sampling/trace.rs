//! What the window holds for one trace, what policies look at, and what they may read.
//!
//! Held spans and logs stay protobuf-encoded until their trace is decided. Deciding decodes
//! only what the configured policies declared they read ([`Reads`], the union of every
//! policy's `reads()`): a policy on status codes gets spans with only their status, one on
//! attributes gets their attributes. [`TraceData::decode`] builds that view; what a policy
//! did not declare is absent from it (empty fields, an empty resource), so a policy that
//! reads more than it declares fails its conformance test (`policy/tests.rs`) instead of
//! silently deciding on empty fields in production.

use std::fmt;
use std::ops::BitOr;
use std::sync::{Arc, OnceLock};

use prost::Message;
use weft_proto::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use weft_proto::logs::v1::LogRecord;
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::span::{Event, Link};
use weft_proto::trace::v1::{Span, Status};
use weft_proto::wire::{self, Fields, Value as WireValue};

/// The resource and scope a batch of spans or logs arrived under, shared by every item of
/// that batch (one allocation per batch, not per item).
#[derive(Debug, Default)]
pub struct Origin {
    pub resource: Resource,
    pub resource_schema_url: String,
    pub scope: InstrumentationScope,
    pub scope_schema_url: String,
    /// The four fields in one encoding ([`Origin::wire`]): set at ingest from the bytes they
    /// were decoded from when the decisions ring will copy it, else encoded on first use.
    pub wire: OnceLock<Box<[u8]>>,
}

/// Origins are equal when their fields are; whether the wire form was made yet is not one.
impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        self.resource == other.resource
            && self.resource_schema_url == other.resource_schema_url
            && self.scope == other.scope
            && self.scope_schema_url == other.scope_schema_url
    }
}

impl Origin {
    /// Sets the wire form ([`Origin::wire`]) from `resource` and `scope`, the encodings the
    /// parts were decoded from (a copy, no encoding): at ingest, while they are at hand.
    pub fn set_wire_from(&mut self, resource: &[u8], scope: &[u8]) {
        self.wire = OnceLock::from(wire_form(
            resource,
            self.resource_schema_url.as_bytes(),
            scope,
            self.scope_schema_url.as_bytes(),
        ));
    }

    /// The origin in one encoding — field 1 the resource, 2 its schema URL, 3 the scope, 4
    /// its schema URL — which [`Origin::from_wire`] reads back. What the decisions ring keeps
    /// of a kept trace's origins: a copy of these bytes, rather than a reference that would
    /// keep the decoded origin alive (and free it, long after its request, when the ring
    /// forgets the trace).
    pub fn wire(&self) -> &[u8] {
        self.wire.get_or_init(|| {
            wire_form(
                &self.resource.encode_to_vec(),
                self.resource_schema_url.as_bytes(),
                &self.scope.encode_to_vec(),
                self.scope_schema_url.as_bytes(),
            )
        })
    }

    /// The origin [`Origin::wire`] encoded (parts that do not decode are left empty, as at
    /// ingest).
    pub fn from_wire(bytes: &[u8]) -> Self {
        let mut origin = Origin::default();
        for (n, v) in Fields::new(bytes).flatten() {
            let WireValue::Len(v) = v else { continue };
            match n {
                1 => origin.resource = Resource::decode(v).unwrap_or_default(),
                2 => origin.resource_schema_url = String::from_utf8_lossy(v).into_owned(),
                3 => origin.scope = InstrumentationScope::decode(v).unwrap_or_default(),
                4 => origin.scope_schema_url = String::from_utf8_lossy(v).into_owned(),
                _ => {}
            }
        }
        origin.wire = OnceLock::from(Box::from(bytes));
        origin
    }
}

fn wire_form(
    resource: &[u8],
    resource_schema_url: &[u8],
    scope: &[u8],
    scope_schema_url: &[u8],
) -> Box<[u8]> {
    let mut out = Vec::with_capacity(
        resource.len() + resource_schema_url.len() + scope.len() + scope_schema_url.len() + 24,
    );
    for (n, field) in [
        (1, resource),
        (2, resource_schema_url),
        (3, scope),
        (4, scope_schema_url),
    ] {
        if !field.is_empty() {
            wire::put_len_field(&mut out, n, field);
        }
    }
    out.into_boxed_slice()
}

/// One buffered span with where it came from.
#[derive(Clone, Debug)]
pub struct SpanEntry {
    pub origin: Arc<Origin>,
    pub span: Span,
    /// The span's encoded size, when [`Reads::BYTE_SIZES`] is read (0 otherwise).
    pub encoded_len: usize,
}

/// One buffered log record with where it came from.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub origin: Arc<Origin>,
    pub record: LogRecord,
}

/// Everything known about one trace when its decision is made: one [`SpanEntry`] per held
/// span and one [`LogEntry`] per held log, in arrival order, whatever was decoded.
#[derive(Clone, Debug, Default)]
pub struct TraceData {
    pub trace_id: [u8; 16],
    pub spans: Vec<SpanEntry>,
    pub logs: Vec<LogEntry>,
}

impl TraceData {
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    /// Earliest span start to latest span end, in nanoseconds (0 without spans).
    pub fn duration_nanos(&self) -> u64 {
        let start = self.spans.iter().map(|s| s.span.start_time_unix_nano).min();
        let end = self.spans.iter().map(|s| s.span.end_time_unix_nano).max();
        match (start, end) {
            (Some(s), Some(e)) if e > s => e - s,
            _ => 0,
        }
    }

    /// The size of the trace's spans as one OTLP export request holds them: per batch they
    /// arrived in, its resource and scope once, then its spans — what the Collector's
    /// `ProtoMarshaler.TracesSize` gives for a trace's received batches. Needs
    /// [`Reads::BYTE_SIZES`] and [`Reads::RESOURCE`].
    pub fn spans_request_size(&self) -> u64 {
        let mut total = 0usize;
        let mut i = 0;
        while i < self.spans.len() {
            let origin = &self.spans[i].origin;
            let mut spans = 0;
            while i < self.spans.len() && Arc::ptr_eq(&self.spans[i].origin, origin) {
                let len = self.spans[i].encoded_len;
                spans += wire::len_header_len(2, len) + len;
                i += 1;
            }
            let scope = origin.scope.encoded_len();
            let mut scoped = wire::len_header_len(1, scope) + scope + spans;
            if !origin.scope_schema_url.is_empty() {
                let n = origin.scope_schema_url.len();
                scoped += wire::len_header_len(3, n) + n;
            }
            let resource = origin.resource.encoded_len();
            let mut group = wire::len_header_len(1, resource)
                + resource
                + wire::len_header_len(2, scoped)
                + scoped;
            if !origin.resource_schema_url.is_empty() {
                let n = origin.resource_schema_url.len();
                group += wire::len_header_len(3, n) + n;
            }
            total += wire::len_header_len(1, group) + group;
        }
        total as u64
    }

    /// The trace as a policy reading `reads` sees it, decoded from held items: `spans` and
    /// `logs` are (origin, encoded item) in arrival order. Fails on the first item that does
    /// not decode.
    pub fn decode<'h>(
        trace_id: [u8; 16],
        spans: impl ExactSizeIterator<Item = (&'h Arc<Origin>, &'h [u8])>,
        logs: impl ExactSizeIterator<Item = (&'h Arc<Origin>, &'h [u8])>,
        reads: Reads,
    ) -> Result<TraceData, DecodeError> {
        let origin = |o: &Arc<Origin>| {
            if reads.contains(Reads::RESOURCE) {
                o.clone()
            } else {
                hidden_origin()
            }
        };
        let mut out = TraceData {
            trace_id,
            spans: Vec::with_capacity(spans.len()),
            logs: Vec::with_capacity(logs.len()),
        };
        for (index, (o, bytes)) in spans.enumerate() {
            let span = decode_span(bytes, reads).map_err(|error| DecodeError {
                item: "span",
                index,
                error,
            })?;
            out.spans.push(SpanEntry {
                origin: origin(o),
                span,
                encoded_len: if reads.contains(Reads::BYTE_SIZES) {
                    bytes.len()
                } else {
                    0
                },
            });
        }
        for (index, (o, bytes)) in logs.enumerate() {
            let record = decode_log(bytes, reads).map_err(|error| DecodeError {
                item: "log record",
                index,
                error,
            })?;
            out.logs.push(LogEntry {
                origin: origin(o),
                record,
            });
        }
        Ok(out)
    }
}

/// The origin a view shows when [`Reads::RESOURCE`] is not read: empty.
fn hidden_origin() -> Arc<Origin> {
    static EMPTY: OnceLock<Arc<Origin>> = OnceLock::new();
    EMPTY.get_or_init(|| Arc::new(Origin::default())).clone()
}

/// A held item that did not decode when its trace was decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// `span` or `log record`.
    pub item: &'static str,
    /// Its position among the trace's held spans (or logs).
    pub index: usize,
    pub error: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "held {} {}: {}", self.item, self.index, self.error)
    }
}

/// What a policy reads of a trace, as a small set. The window decodes the union of the
/// configured policies' sets before deciding, nothing more.
///
/// Always present whatever is read: the trace id, the number of spans and logs, and their
/// order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reads(u32);

impl Reads {
    pub const NOTHING: Reads = Reads(0);
    /// A span's `trace_id` and `span_id` fields.
    pub const SPAN_IDS: Reads = Reads(1 << 0);
    /// `parent_span_id` (which span is the root).
    pub const SPAN_PARENT: Reads = Reads(1 << 1);
    pub const SPAN_NAME: Reads = Reads(1 << 2);
    pub const SPAN_KIND: Reads = Reads(1 << 3);
    /// `start_time_unix_nano` and `end_time_unix_nano`.
    pub const SPAN_TIMES: Reads = Reads(1 << 4);
    pub const SPAN_STATUS: Reads = Reads(1 << 5);
    pub const SPAN_TRACE_STATE: Reads = Reads(1 << 6);
    /// `flags` (W3C trace flags in the low byte).
    pub const SPAN_FLAGS: Reads = Reads(1 << 7);
    pub const SPAN_ATTRIBUTES: Reads = Reads(1 << 8);
    pub const SPAN_EVENTS: Reads = Reads(1 << 9);
    pub const SPAN_LINKS: Reads = Reads(1 << 10);
    /// The dropped attributes, events and links counts.
    pub const SPAN_DROPPED_COUNTS: Reads = Reads(1 << 11);
    /// The resource and scope each span and log arrived under (else an empty [`Origin`]).
    pub const RESOURCE: Reads = Reads(1 << 12);
    /// A log's `severity_number` and `severity_text`.
    pub const LOG_SEVERITY: Reads = Reads(1 << 13);
    pub const LOG_BODY: Reads = Reads(1 << 14);
    pub const LOG_ATTRIBUTES: Reads = Reads(1 << 15);
    /// A log's times, flags, ids, event name and dropped attributes count.
    pub const LOG_OTHER: Reads = Reads(1 << 16);
    /// Each span's encoded size ([`SpanEntry::encoded_len`]).
    pub const BYTE_SIZES: Reads = Reads(1 << 17);

    /// Every field of a span.
    pub const ALL_SPAN: Reads = Reads((1 << 12) - 1);
    /// Every field of a log record.
    pub const ALL_LOG: Reads = Reads(0b1111 << 13);
    pub const ALL: Reads = Reads((1 << 18) - 1);

    const NAMES: [&'static str; 18] = [
        "span_ids",
        "span_parent",
        "span_name",
        "span_kind",
        "span_times",
        "span_status",
        "span_trace_state",
        "span_flags",
        "span_attributes",
        "span_events",
        "span_links",
        "span_dropped_counts",
        "resource",
        "log_severity",
        "log_body",
        "log_attributes",
        "log_other",
        "byte_sizes",
    ];

    pub const fn union(self, other: Reads) -> Reads {
        Reads(self.0 | other.0)
    }

    /// Whether every item of `other` is read.
    pub const fn contains(self, other: Reads) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any item of `other` is read.
    pub const fn intersects(self, other: Reads) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Reads {
    type Output = Reads;

    fn bitor(self, other: Reads) -> Reads {
        self.union(other)
    }
}

impl fmt::Debug for Reads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
            .collect();
        write!(f, "Reads({})", names.join(" | "))
    }
}

/// A span with only the fields `reads` asks for. Reading every field is prost's own decode;
/// otherwise the fields are walked on the wire and the others skipped without allocating
/// (field numbers from opentelemetry/proto/trace/v1). A field that is read is checked as
/// prost checks it (wire type, UTF-8, nested messages).
pub fn decode_span(bytes: &[u8], reads: Reads) -> Result<Span, String> {
    if reads.contains(Reads::ALL_SPAN) {
        return Span::decode(bytes).map_err(|e| e.to_string());
    }
    let mut span = Span::default();
    if !reads.intersects(Reads::ALL_SPAN) {
        return Ok(span);
    }
    let want = |r: Reads| reads.contains(r);
    let mut fields = Fields::new(bytes);
    while let Some(field) = fields.next() {
        let (number, value) = field.map_err(|()| "malformed protobuf".to_string())?;
        match number {
            1 if want(Reads::SPAN_IDS) => span.trace_id = len(number, value)?.to_vec(),
            2 if want(Reads::SPAN_IDS) => span.span_id = len(number, value)?.to_vec(),
            3 if want(Reads::SPAN_TRACE_STATE) => span.trace_state = string(number, value)?,
            4 if want(Reads::SPAN_PARENT) => span.parent_span_id = len(number, value)?.to_vec(),
            5 if want(Reads::SPAN_NAME) => span.name = string(number, value)?,
            6 if want(Reads::SPAN_KIND) => span.kind = varint(number, value)? as i32,
            7 if want(Reads::SPAN_TIMES) => span.start_time_unix_nano = fixed64(number, value)?,
            8 if want(Reads::SPAN_TIMES) => span.end_time_unix_nano = fixed64(number, value)?,
            9 if want(Reads::SPAN_ATTRIBUTES) => span.attributes.push(message(number, value)?),
            10 if want(Reads::SPAN_DROPPED_COUNTS) => {
                span.dropped_attributes_count = varint(number, value)? as u32;
            }
            11 if want(Reads::SPAN_EVENTS) => span.events.push(message::<Event>(number, value)?),
            12 if want(Reads::SPAN_DROPPED_COUNTS) => {
                span.dropped_events_count = varint(number, value)? as u32;
            }
            13 if want(Reads::SPAN_LINKS) => span.links.push(message::<Link>(number, value)?),
            14 if want(Reads::SPAN_DROPPED_COUNTS) => {
                span.dropped_links_count = varint(number, value)? as u32;
            }
            15 if want(Reads::SPAN_STATUS) => {
                // A repeated message field merges, as prost does.
                let status = span.status.get_or_insert_with(Status::default);
                status
                    .merge(len(number, value)?)
                    .map_err(|e| format!("field 15 (status): {e}"))?;
            }
            16 if want(Reads::SPAN_FLAGS) => span.flags = fixed32(number, value)?,
            // Attributes and events unread: the rest of their run at once.
            9 | 11 => fields.skip_run(number),
            _ => {}
        }
    }
    Ok(span)
}

/// A log record with only the fields `reads` asks for (see [`decode_span`]; field numbers
/// from opentelemetry/proto/logs/v1).
pub fn decode_log(bytes: &[u8], reads: Reads) -> Result<LogRecord, String> {
    if reads.contains(Reads::ALL_LOG) {
        return LogRecord::decode(bytes).map_err(|e| e.to_string());
    }
    let mut record = LogRecord::default();
    if !reads.intersects(Reads::ALL_LOG) {
        return Ok(record);
    }
    let want = |r: Reads| reads.contains(r);
    let mut fields = Fields::new(bytes);
    while let Some(field) = fields.next() {
        let (number, value) = field.map_err(|()| "malformed protobuf".to_string())?;
        match number {
            1 if want(Reads::LOG_OTHER) => record.time_unix_nano = fixed64(number, value)?,
            2 if want(Reads::LOG_SEVERITY) => {
                record.severity_number = varint(number, value)? as i32
            }
            3 if want(Reads::LOG_SEVERITY) => record.severity_text = string(number, value)?,
            5 if want(Reads::LOG_BODY) => {
                let body = record.body.get_or_insert_with(AnyValue::default);
                body.merge(len(number, value)?)
                    .map_err(|e| format!("field 5 (body): {e}"))?;
            }
            6 if want(Reads::LOG_ATTRIBUTES) => {
                record.attributes.push(message::<KeyValue>(number, value)?);
            }
            7 if want(Reads::LOG_OTHER) => {
                record.dropped_attributes_count = varint(number, value)? as u32;
            }
            8 if want(Reads::LOG_OTHER) => record.flags = fixed32(number, value)?,
            9 if want(Reads::LOG_OTHER) => record.trace_id = len(number, value)?.to_vec(),
            10 if want(Reads::LOG_OTHER) => record.span_id = len(number, value)?.to_vec(),
            11 if want(Reads::LOG_OTHER) => {
                record.observed_time_unix_nano = fixed64(number, value)?;
            }
            12 if want(Reads::LOG_OTHER) => record.event_name = string(number, value)?,
            6 => fields.skip_run(number),
            _ => {}
        }
    }
    Ok(record)
}

fn wrong_type(number: u32) -> String {
    format!("field {number}: unexpected wire type")
}

fn len(number: u32, value: WireValue<'_>) -> Result<&[u8], String> {
    match value {
        WireValue::Len(bytes) => Ok(bytes),
        _ => Err(wrong_type(number)),
    }
}

fn string(number: u32, value: WireValue<'_>) -> Result<String, String> {
    let bytes = len(number, value)?;
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| format!("field {number}: invalid UTF-8"))
}

fn varint(number: u32, value: WireValue<'_>) -> Result<u64, String> {
    match value {
        WireValue::Varint(v) => Ok(v),
        _ => Err(wrong_type(number)),
    }
}

fn fixed64(number: u32, value: WireValue<'_>) -> Result<u64, String> {
    match value {
        WireValue::I64(v) => Ok(v),
        _ => Err(wrong_type(number)),
    }
}

fn fixed32(number: u32, value: WireValue<'_>) -> Result<u32, String> {
    match value {
        WireValue::I32(v) => Ok(v),
        _ => Err(wrong_type(number)),
    }
}

fn message<M: Message + Default>(number: u32, value: WireValue<'_>) -> Result<M, String> {
    M::decode(len(number, value)?).map_err(|e| format!("field {number}: {e}"))
}

#[cfg(test)]
mod tests {
    use weft_proto::common::v1::any_value;

    use super::*;

    fn rich_span() -> Span {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        };
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: "k=v".into(),
            parent_span_id: vec![3; 8],
            flags: 0x101,
            name: "op".into(),
            kind: 2,
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            attributes: vec![kv("a", "1"), kv("b", "2")],
            dropped_attributes_count: 1,
            events: vec![Event {
                name: "e".into(),
                attributes: vec![kv("c", "3")],
                ..Default::default()
            }],
            dropped_events_count: 2,
            links: vec![Link {
                trace_id: vec![4; 16],
                span_id: vec![5; 8],
                ..Default::default()
            }],
            dropped_links_count: 3,
            status: Some(Status {
                code: 2,
                message: "bad".into(),
            }),
        }
    }

    #[test]
    fn reading_every_field_one_by_one_is_prost_s_decode() {
        let span = rich_span();
        let bytes = span.encode_to_vec();
        let mut merged = Span::default();
        for bit in 0..12 {
            // Each read fills its own fields only; together they are the whole span.
            let part = decode_span(&bytes, Reads(1 << bit)).unwrap();
            assert_ne!(part, Span::default(), "bit {bit} read nothing");
            merged.merge(&part.encode_to_vec()[..]).unwrap();
        }
        assert_eq!(merged, span);
        assert_eq!(decode_span(&bytes, Reads::ALL_SPAN).unwrap(), span);
        assert_eq!(
            decode_span(&bytes, Reads::NOTHING).unwrap(),
            Span::default()
        );
    }

    #[test]
    fn a_partial_read_leaves_the_other_fields_empty() {
        let bytes = rich_span().encode_to_vec();
        let status_only = decode_span(&bytes, Reads::SPAN_STATUS).unwrap();
        assert_eq!(
            status_only,
            Span {
                status: rich_span().status,
                ..Default::default()
            }
        );
        let times = decode_span(&bytes, Reads::SPAN_TIMES | Reads::SPAN_NAME).unwrap();
        assert_eq!(
            (
                times.name.as_str(),
                times.start_time_unix_nano,
                times.end_time_unix_nano
            ),
            ("op", 10, 20)
        );
        assert!(times.attributes.is_empty() && times.status.is_none());
    }

    #[test]
    fn log_reads_are_prost_s_decode_field_by_field() {
        let record = LogRecord {
            time_unix_nano: 1,
            observed_time_unix_nano: 2,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue("boom".into())),
            }),
            attributes: vec![KeyValue {
                key: "k".into(),
                ..Default::default()
            }],
            dropped_attributes_count: 4,
            flags: 1,
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            event_name: "ev".into(),
        };
        let bytes = record.encode_to_vec();
        let mut merged = LogRecord::default();
        for r in [
            Reads::LOG_SEVERITY,
            Reads::LOG_BODY,
            Reads::LOG_ATTRIBUTES,
            Reads::LOG_OTHER,
        ] {
            merged
                .merge(&decode_log(&bytes, r).unwrap().encode_to_vec()[..])
                .unwrap();
        }
        assert_eq!(merged, record);
        assert_eq!(decode_log(&bytes, Reads::ALL_LOG).unwrap(), record);
        let severity = decode_log(&bytes, Reads::LOG_SEVERITY).unwrap();
        assert_eq!((severity.severity_number, severity.body), (17, None));
    }

    #[test]
    fn a_read_field_is_checked_and_an_unread_one_is_not() {
        // Field 5 (name) as invalid UTF-8.
        let mut bytes = Vec::new();
        wire::put_len_field(&mut bytes, 5, &[0xff, 0xfe]);
        assert!(decode_span(&bytes, Reads::SPAN_STATUS).is_ok());
        assert_eq!(
            decode_span(&bytes, Reads::SPAN_NAME).unwrap_err(),
            "field 5: invalid UTF-8"
        );
        assert!(decode_span(&bytes, Reads::ALL_SPAN).is_err());
        // A truncated message fails any read that walks it.
        assert_eq!(
            decode_span(&[0x2a, 0x05, b'a'], Reads::SPAN_STATUS).unwrap_err(),
            "malformed protobuf"
        );
        assert!(
            decode_span(&[0x2a, 0x05, b'a'], Reads::NOTHING).is_ok(),
            "nothing read, nothing walked"
        );
        // A read field with the wrong wire type.
        assert_eq!(
            decode_span(&[0x38, 0x01], Reads::SPAN_TIMES).unwrap_err(),
            "field 7: unexpected wire type"
        );
    }

    #[test]
    fn an_origin_reads_back_from_its_wire_form() {
        let resource = Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                ..Default::default()
            }],
            dropped_attributes_count: 2,
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "lib".into(),
            version: "1.0".into(),
            ..Default::default()
        };
        let made = Origin {
            resource: resource.clone(),
            resource_schema_url: "https://r".into(),
            scope: scope.clone(),
            scope_schema_url: "https://s".into(),
            ..Default::default()
        };
        assert_eq!(Origin::from_wire(made.wire()), made);
        // At ingest the wire form holds the bytes the parts were decoded from, as they came
        // (here with a field this version does not know), not an encoding of the parts.
        let mut resource_bytes = resource.encode_to_vec();
        resource_bytes.extend_from_slice(&[0xf8, 0x06, 0x01]); // field 111, varint 1
        let scope_bytes = scope.encode_to_vec();
        let mut received = Origin {
            resource,
            resource_schema_url: "https://r".into(),
            scope,
            scope_schema_url: "https://s".into(),
            ..Default::default()
        };
        received.set_wire_from(&resource_bytes, &scope_bytes);
        assert_eq!(received, made);
        assert_eq!(received.wire().len(), made.wire().len() + 3);
        assert_eq!(Origin::from_wire(received.wire()), made);
        assert!(Origin::default().wire().is_empty());
        assert_eq!(Origin::from_wire(&[]), Origin::default());
    }

    #[test]
    fn the_view_hides_the_origin_and_sizes_unless_read() {
        let origin = Arc::new(Origin {
            resource: Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        });
        let bytes = rich_span().encode_to_vec();
        let spans = [(&origin, &bytes[..])];
        let hidden = TraceData::decode(
            [1; 16],
            spans.iter().copied(),
            std::iter::empty(),
            Reads::SPAN_NAME,
        )
        .unwrap();
        assert!(hidden.spans[0].origin.resource.attributes.is_empty());
        assert_eq!(hidden.spans[0].encoded_len, 0);
        let shown = TraceData::decode(
            [1; 16],
            spans.iter().copied(),
            std::iter::empty(),
            Reads::RESOURCE | Reads::BYTE_SIZES,
        )
        .unwrap();
        assert!(Arc::ptr_eq(&shown.spans[0].origin, &origin));
        assert_eq!(shown.spans[0].encoded_len, bytes.len());
    }

    #[test]
    fn the_request_size_is_the_encoded_export_request() {
        use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
        use weft_proto::trace::v1::{ResourceSpans, ScopeSpans};
        let a = Arc::new(Origin {
            resource: Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            resource_schema_url: "https://r".into(),
            scope: InstrumentationScope {
                name: "lib".into(),
                ..Default::default()
            },
            scope_schema_url: "https://s".into(),
            ..Default::default()
        });
        let b = Arc::new(Origin::default());
        let spans = [rich_span(), Span::default(), rich_span()];
        let held: Vec<(Arc<Origin>, Vec<u8>)> = vec![
            (a.clone(), spans[0].encode_to_vec()),
            (a.clone(), spans[1].encode_to_vec()),
            (b.clone(), spans[2].encode_to_vec()),
        ];
        let view = TraceData::decode(
            [1; 16],
            held.iter().map(|(o, s)| (o, &s[..])),
            std::iter::empty(),
            Reads::RESOURCE | Reads::BYTE_SIZES,
        )
        .unwrap();
        let group = |o: &Origin, spans: Vec<Span>| ResourceSpans {
            resource: Some(o.resource.clone()),
            schema_url: o.resource_schema_url.clone(),
            scope_spans: vec![ScopeSpans {
                scope: Some(o.scope.clone()),
                spans,
                schema_url: o.scope_schema_url.clone(),
            }],
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                group(&a, spans[..2].to_vec()),
                group(&b, spans[2..].to_vec()),
            ],
        };
        assert_eq!(view.spans_request_size(), request.encoded_len() as u64);
        assert_eq!(TraceData::default().spans_request_size(), 0);
    }

    #[test]
    fn reads_debug_names_its_items() {
        assert_eq!(
            format!("{:?}", Reads::SPAN_NAME | Reads::RESOURCE),
            "Reads(span_name | resource)"
        );
        assert!(Reads::ALL.contains(Reads::ALL_SPAN | Reads::ALL_LOG | Reads::BYTE_SIZES));
        assert!(!Reads::ALL_SPAN.intersects(Reads::ALL_LOG | Reads::RESOURCE));
    }
}
