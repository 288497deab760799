//! Limits on what one decoded OTLP request may hold, beyond what its size already bounds.
//!
//! The body size limit of a receiver bounds memory, but not everything that costs: one span
//! with 200 000 attributes makes every attribute lookup downstream slow, one 3 MiB attribute
//! value ends up in every backend document, and an `AnyValue` nested thousands of levels deep
//! makes every recursive walk over it (encoders, processors, our own validation) a stack
//! overflow waiting to happen. [`Limits`] names the three numbers a receiver enforces;
//! [`crate::validate::validate_traces_with`] and [`crate::validate::validate_logs_with`]
//! check them and name the offending field and the limit in the error, e.g.
//! `resource_spans[0].scope_spans[0].spans[3].attributes: 5000 attributes, the limit is 128`.
//!
//! Depth is enforced in three places, from the outside in:
//!
//! 1. protobuf decoding: prost refuses messages nested more than [`PROTOBUF_RECURSION_LIMIT`]
//!    levels, so a 10 000-deep body is an error, never a stack overflow ([`is_recursion_limit`]
//!    recognises it and [`depth_hint`] tells the client what it may send);
//! 2. OTLP/JSON decoding: serde_json's recursion limit of [`JSON_RECURSION_LIMIT`] levels, and
//!    the decoder's own cap of [`crate::otlp_json::MAX_ANY_VALUE_DEPTH`] (64) `AnyValue` levels;
//! 3. validation: the configured [`Limits::max_depth`], clamped to
//!    [`crate::otlp_json::MAX_ANY_VALUE_DEPTH`] so the validator's own recursion is bounded
//!    whatever it is handed.
//!
//! The decoders' limits count messages or JSON levels, not `AnyValue` levels, so how deep an
//! `AnyValue` they let through depends on where it sits and whether it nests arrays or
//! kvlists; [`DECODABLE_ANY_VALUE_DEPTH`] is the depth both accept everywhere. The default
//! [`Limits::max_depth`] is below it, so a too-deep value normally gets the validator's
//! precise answer, and whatever is accepted can be forwarded in either encoding.

use std::fmt;

use crate::common::v1::{any_value::Value, AnyValue, KeyValue};

/// Messages nested deeper than this fail to decode with prost's "recursion limit reached"
/// (prost's fixed limit, the same as the C++ protobuf implementation's default).
pub const PROTOBUF_RECURSION_LIMIT: usize = 100;

/// JSON documents nested deeper than this are invalid JSON to serde_json.
pub const JSON_RECURSION_LIMIT: usize = 128;

/// The deepest `AnyValue` nesting (array_value/kvlist_value levels) that both decoders accept
/// wherever an `AnyValue` sits and whatever mix of arrays and kvlists it nests. The tightest
/// case is kvlists in span event or link attributes: over OTLP/JSON each kvlist level costs
/// four JSON levels (`{"kvlistValue":{"values":[{"key":…,"value":{`), and 28 of them reach
/// serde_json's limit; over protobuf each costs three messages and 31 reach prost's. (Arrays
/// are cheaper: 38 levels over JSON, 47 over protobuf.) The tests pin these numbers.
pub const DECODABLE_ANY_VALUE_DEPTH: usize = 28;

// The validator's clamp (the JSON decoder's cap) must not cut below what the decoders accept.
const _: () = assert!(DECODABLE_ANY_VALUE_DEPTH <= crate::otlp_json::MAX_ANY_VALUE_DEPTH);

/// What one request may hold. A value at a limit is accepted; one over it is refused.
///
/// - `max_attributes`: attributes per resource, scope, span, span event, span link and log
///   record. Default 128, the OpenTelemetry SDKs' default attribute count limit, so nothing an
///   SDK with default settings sends is refused.
/// - `max_value_bytes`: bytes in any attribute key and in any string or bytes attribute value,
///   including those nested in arrays and kvlists. Default 256 KiB: long enough for the
///   longest real stack traces (`exception.stacktrace`) and SQL statements, small enough that
///   one value cannot be a sizable part of a batch. A log record's body is not an attribute
///   and is bounded only by the body size.
/// - `max_depth`: how many array_value/kvlist_value levels an attribute value or a log body
///   may nest (a string is depth 0, an array of strings depth 1). Default 20: ample for real
///   data (Elasticsearch and OpenSearch refuse objects nested deeper than 20 by default), and
///   below [`DECODABLE_ANY_VALUE_DEPTH`]. Values above
///   [`crate::otlp_json::MAX_ANY_VALUE_DEPTH`] act as that; above
///   [`DECODABLE_ANY_VALUE_DEPTH`] the decoders may refuse first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_attributes: usize,
    pub max_value_bytes: usize,
    pub max_depth: usize,
}

impl Limits {
    pub const DEFAULT_MAX_ATTRIBUTES: usize = 128;
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 256 * 1024;
    pub const DEFAULT_MAX_DEPTH: usize = 20;

    /// The depth the validator enforces: `max_depth`, clamped to the JSON decoder's cap.
    pub fn effective_max_depth(&self) -> usize {
        self.max_depth.min(crate::otlp_json::MAX_ANY_VALUE_DEPTH)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attributes: Self::DEFAULT_MAX_ATTRIBUTES,
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}

/// True when prost gave up because the message nests more than
/// [`PROTOBUF_RECURSION_LIMIT`] levels. prost exposes no error kind, so this reads the
/// error's description (its `Display` ends with it, after the field stack).
pub fn is_recursion_limit(err: &prost::DecodeError) -> bool {
    err.to_string().ends_with("recursion limit reached")
}

/// True when an OTLP/JSON document was refused for nesting too deeply: serde_json's
/// recursion limit or the decoder's `AnyValue` cap.
pub fn is_json_depth_error(err: &crate::otlp_json::JsonError) -> bool {
    let message = err.message();
    message.contains("recursion limit exceeded") || message.contains("AnyValue nesting exceeds")
}

/// What to tell a client whose body nests too deeply to decode (prost's own message lists
/// every field of the 100 levels it went down): the nesting it may send.
pub fn depth_hint(limits: &Limits) -> String {
    format!(
        "AnyValue values may nest at most {} array_value/kvlist_value levels",
        limits.effective_max_depth().min(DECODABLE_ANY_VALUE_DEPTH)
    )
}

/// A limit violation inside an attribute list or a value: `suffix` is the path relative to
/// where the check started (e.g. `[3].value.array_value.values[0]`), built only on failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) suffix: String,
    pub(crate) message: String,
}

impl Violation {
    fn new(message: String) -> Self {
        Self {
            suffix: String::new(),
            message,
        }
    }

    /// Puts `segment` in front of the path (the error travels outwards).
    fn within(mut self, segment: impl fmt::Display) -> Self {
        self.suffix = format!("{segment}{}", self.suffix);
        self
    }
}

/// Checks an attribute list: its length, every key's length, and every value's lengths and
/// depth. The suffix of a violation starts at the list (`""` or `[i]...`).
pub(crate) fn check_attributes(attributes: &[KeyValue], limits: &Limits) -> Result<(), Violation> {
    if attributes.len() > limits.max_attributes {
        return Err(Violation::new(format!(
            "{} attributes, the limit is {}",
            attributes.len(),
            limits.max_attributes
        )));
    }
    for (i, kv) in attributes.iter().enumerate() {
        check_key_value(kv, 0, true, limits).map_err(|v| v.within(format_args!("[{i}]")))?;
    }
    Ok(())
}

/// Checks a log body: its depth only (see [`Limits`]).
pub(crate) fn check_body(body: &AnyValue, limits: &Limits) -> Result<(), Violation> {
    check_value(body, 0, false, limits)
}

/// `depth` is how many array/kvlist levels enclose `kv`; `lengths` whether string lengths
/// are limited (attributes) or not (log bodies).
fn check_key_value(
    kv: &KeyValue,
    depth: usize,
    lengths: bool,
    limits: &Limits,
) -> Result<(), Violation> {
    if lengths && kv.key.len() > limits.max_value_bytes {
        return Err(Violation::new(format!(
            "key of {} bytes, the limit is {} bytes",
            kv.key.len(),
            limits.max_value_bytes
        ))
        .within(".key"));
    }
    match &kv.value {
        Some(value) => check_value(value, depth, lengths, limits).map_err(|v| {
            let v = if depth == 0 {
                // Name the attribute: the index alone is hard to find in a big list.
                Violation {
                    message: format!("attribute {}: {}", quoted(&kv.key), v.message),
                    ..v
                }
            } else {
                v
            };
            v.within(".value")
        }),
        None => Ok(()),
    }
}

/// Recursion stops at `limits.effective_max_depth() + 1` levels, so its depth is bounded
/// whatever the value holds.
fn check_value(
    value: &AnyValue,
    depth: usize,
    lengths: bool,
    limits: &Limits,
) -> Result<(), Violation> {
    let too_long = |what: &str, len: usize| {
        Err(Violation::new(format!(
            "{what} value of {len} bytes, the limit is {} bytes",
            limits.max_value_bytes
        )))
    };
    let nested = || {
        let max = limits.effective_max_depth();
        if depth + 1 > max {
            Err(Violation::new(format!(
                "array_value/kvlist_value nested more than {max} levels deep, the limit is {max}"
            )))
        } else {
            Ok(())
        }
    };
    match &value.value {
        Some(Value::StringValue(s)) if lengths && s.len() > limits.max_value_bytes => {
            too_long("string", s.len())
        }
        Some(Value::BytesValue(b)) if lengths && b.len() > limits.max_value_bytes => {
            too_long("bytes", b.len())
        }
        Some(Value::ArrayValue(array)) => {
            nested()?;
            for (i, v) in array.values.iter().enumerate() {
                check_value(v, depth + 1, lengths, limits)
                    .map_err(|e| e.within(format_args!(".array_value.values[{i}]")))?;
            }
            Ok(())
        }
        Some(Value::KvlistValue(list)) => {
            nested()?;
            for (i, kv) in list.values.iter().enumerate() {
                check_key_value(kv, depth + 1, lengths, limits)
                    .map_err(|e| e.within(format_args!(".kvlist_value.values[{i}]")))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A key for an error message: quoted, and cut after 40 characters (keys can be huge too).
fn quoted(key: &str) -> String {
    const MAX_CHARS: usize = 40;
    match key.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{:?}…", &key[..end]),
        None => format!("{key:?}"),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::collector::logs::v1::ExportLogsServiceRequest;
    use crate::collector::trace::v1::ExportTraceServiceRequest;
    use crate::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
    use crate::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use crate::resource::v1::Resource;
    use crate::trace::v1::span::{Event, Link};
    use crate::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use crate::validate::{validate_logs_with, validate_traces_with};

    const SPAN: &str = "resource_spans[0].scope_spans[0].spans[0]";
    const RECORD: &str = "resource_logs[0].scope_logs[0].log_records[0]";

    fn small() -> Limits {
        Limits {
            max_attributes: 3,
            max_value_bytes: 10,
            max_depth: 2,
        }
    }

    fn string(s: &str) -> AnyValue {
        AnyValue {
            value: Some(Value::StringValue(s.into())),
        }
    }

    fn kv(key: &str, value: AnyValue) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(value),
            ..Default::default()
        }
    }

    fn attrs(n: usize) -> Vec<KeyValue> {
        (0..n).map(|i| kv(&format!("k{i}"), string("v"))).collect()
    }

    /// `levels` array_value/kvlist_value levels (alternating) around a string.
    fn nested(levels: usize) -> AnyValue {
        let mut v = string("leaf");
        for i in 0..levels {
            v = AnyValue {
                value: Some(if i % 2 == 0 {
                    Value::ArrayValue(ArrayValue { values: vec![v] })
                } else {
                    Value::KvlistValue(KeyValueList {
                        values: vec![kv("k", v)],
                    })
                }),
            };
        }
        v
    }

    fn span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        }
    }

    fn traces(span: Span) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope::default()),
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn logs(record: LogRecord) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource::default()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope::default()),
                    log_records: vec![record],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn span_err(span: Span, limits: &Limits) -> Option<String> {
        validate_traces_with(&traces(span), limits)
            .err()
            .map(|e| e.to_string())
    }

    fn record_err(record: LogRecord, limits: &Limits) -> Option<String> {
        validate_logs_with(&logs(record), limits)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let l = Limits::default();
        assert_eq!(l.max_attributes, 128);
        assert_eq!(l.max_value_bytes, 256 * 1024);
        assert_eq!(l.max_depth, 20);
        assert!(l.max_depth <= DECODABLE_ANY_VALUE_DEPTH);
    }

    #[test]
    fn attribute_count_at_and_over_the_limit_everywhere() {
        let l = small();
        // Every place attributes live: (setter, path of the list).
        type Setter = fn(&mut ExportTraceServiceRequest, Vec<KeyValue>);
        let places: [(Setter, &str); 5] = [
            (
                |r, a| r.resource_spans[0].resource.as_mut().unwrap().attributes = a,
                "resource_spans[0].resource.attributes",
            ),
            (
                |r, a| {
                    r.resource_spans[0].scope_spans[0]
                        .scope
                        .as_mut()
                        .unwrap()
                        .attributes = a
                },
                "resource_spans[0].scope_spans[0].scope.attributes",
            ),
            (
                |r, a| r.resource_spans[0].scope_spans[0].spans[0].attributes = a,
                "resource_spans[0].scope_spans[0].spans[0].attributes",
            ),
            (
                |r, a| {
                    r.resource_spans[0].scope_spans[0].spans[0].events = vec![
                        Event::default(),
                        Event {
                            attributes: a,
                            ..Default::default()
                        },
                    ]
                },
                "resource_spans[0].scope_spans[0].spans[0].events[1].attributes",
            ),
            (
                |r, a| {
                    r.resource_spans[0].scope_spans[0].spans[0].links = vec![Link {
                        trace_id: vec![3; 16],
                        span_id: vec![4; 8],
                        attributes: a,
                        ..Default::default()
                    }]
                },
                "resource_spans[0].scope_spans[0].spans[0].links[0].attributes",
            ),
        ];
        for (set, path) in places {
            let mut req = traces(span());
            set(&mut req, attrs(3));
            assert_eq!(validate_traces_with(&req, &l), Ok(()), "{path}");
            set(&mut req, attrs(4));
            assert_eq!(
                validate_traces_with(&req, &l).unwrap_err().to_string(),
                format!("{path}: 4 attributes, the limit is 3")
            );
        }

        let mut record = LogRecord {
            attributes: attrs(3),
            ..Default::default()
        };
        assert_eq!(record_err(record.clone(), &l), None);
        record.attributes = attrs(4);
        assert_eq!(
            record_err(record, &l).unwrap(),
            format!("{RECORD}.attributes: 4 attributes, the limit is 3")
        );
        let mut req = logs(LogRecord::default());
        req.resource_logs[0].scope_logs[0]
            .scope
            .as_mut()
            .unwrap()
            .attributes = attrs(4);
        assert_eq!(
            validate_logs_with(&req, &l).unwrap_err().to_string(),
            "resource_logs[0].scope_logs[0].scope.attributes: 4 attributes, the limit is 3"
        );
        req.resource_logs[0].resource.as_mut().unwrap().attributes = attrs(5);
        assert_eq!(
            validate_logs_with(&req, &l).unwrap_err().to_string(),
            "resource_logs[0].resource.attributes: 5 attributes, the limit is 3"
        );
    }

    #[test]
    fn the_default_count_limit_is_128() {
        let mut s = span();
        s.attributes = attrs(128);
        assert_eq!(span_err(s.clone(), &Limits::default()), None);
        s.attributes = attrs(5000);
        assert_eq!(
            span_err(s, &Limits::default()).unwrap(),
            format!("{SPAN}.attributes: 5000 attributes, the limit is 128")
        );
    }

    #[test]
    fn value_and_key_lengths_at_and_over_the_limit() {
        let l = small();
        let ten = "0123456789";
        let mut s = span();
        s.attributes = vec![
            kv("a", string(ten)),
            kv(ten, string("v")),
            kv(
                "b",
                AnyValue {
                    value: Some(Value::BytesValue(vec![0; 10])),
                },
            ),
        ];
        assert_eq!(span_err(s.clone(), &l), None);

        s.attributes[0] = kv("a", string("01234567890"));
        assert_eq!(
            span_err(s.clone(), &l).unwrap(),
            format!(
                "{SPAN}.attributes[0].value: attribute \"a\": string value of 11 bytes, \
                 the limit is 10 bytes"
            )
        );

        s.attributes[0] = kv("a", string(ten));
        s.attributes[1] = kv("01234567890", string("v"));
        assert_eq!(
            span_err(s.clone(), &l).unwrap(),
            format!("{SPAN}.attributes[1].key: key of 11 bytes, the limit is 10 bytes")
        );

        s.attributes[1] = kv(ten, string("v"));
        s.attributes[2].value = Some(AnyValue {
            value: Some(Value::BytesValue(vec![0; 11])),
        });
        assert_eq!(
            span_err(s, &l).unwrap(),
            format!(
                "{SPAN}.attributes[2].value: attribute \"b\": bytes value of 11 bytes, \
                 the limit is 10 bytes"
            )
        );
    }

    #[test]
    fn nested_lengths_are_limited_with_their_path() {
        let l = small();
        let inner = AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![kv("x", string("ok")), kv("y", string("much too long"))],
            })),
        };
        let mut s = span();
        s.attributes = vec![kv(
            "outer",
            AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![string("fine"), inner],
                })),
            },
        )];
        assert_eq!(
            span_err(s, &l).unwrap(),
            format!(
                "{SPAN}.attributes[0].value.array_value.values[1].kvlist_value.values[1].value: \
                 attribute \"outer\": string value of 13 bytes, the limit is 10 bytes"
            )
        );
    }

    #[test]
    fn huge_keys_are_cut_in_messages() {
        let mut s = span();
        s.attributes = vec![kv(&"k".repeat(100), string(&"v".repeat(11)))];
        let err = span_err(s, &small()).unwrap();
        // The key itself is over the limit and is reported first.
        assert!(
            err.ends_with("key of 100 bytes, the limit is 10 bytes"),
            "{err}"
        );
        let l = Limits {
            max_value_bytes: 100,
            ..small()
        };
        let mut s = span();
        s.attributes = vec![kv(&"k".repeat(100), string(&"v".repeat(101)))];
        let err = span_err(s, &l).unwrap();
        assert!(
            err.contains(&format!("attribute \"{}\"…:", "k".repeat(40))),
            "{err}"
        );
    }

    #[test]
    fn log_bodies_have_no_length_limit_but_a_depth_limit() {
        let l = small();
        let record = LogRecord {
            body: Some(string(&"x".repeat(1000))),
            ..Default::default()
        };
        assert_eq!(record_err(record, &l), None);
        let record = LogRecord {
            body: Some(nested(2)),
            ..Default::default()
        };
        assert_eq!(record_err(record, &l), None);
        let record = LogRecord {
            body: Some(nested(3)),
            ..Default::default()
        };
        assert_eq!(
            record_err(record, &l).unwrap(),
            format!(
                "{RECORD}.body.array_value.values[0].kvlist_value.values[0].value: \
                 array_value/kvlist_value nested more than 2 levels deep, the limit is 2"
            )
        );
    }

    #[test]
    fn attribute_depth_at_and_over_the_limit() {
        for max in [0, 1, 2, 5, 20, 32] {
            let l = Limits {
                max_depth: max,
                ..Limits::default()
            };
            let mut s = span();
            s.attributes = vec![kv("deep", nested(max))];
            assert_eq!(span_err(s.clone(), &l), None, "depth {max}");
            s.attributes = vec![kv("deep", nested(max + 1))];
            let err = span_err(s, &l).unwrap();
            assert!(
                err.ends_with(&format!(
                    "attribute \"deep\": array_value/kvlist_value nested more than {max} levels \
                     deep, the limit is {max}"
                )),
                "{err}"
            );
        }
        // The default: 20.
        let event = Event {
            attributes: vec![kv("deep", nested(21))],
            ..Default::default()
        };
        let mut s = span();
        s.events = vec![event];
        let err = span_err(s, &Limits::default()).unwrap();
        assert!(
            err.starts_with(&format!("{SPAN}.events[0].attributes[0].value.")),
            "{err}"
        );
        assert!(err.ends_with("the limit is 20"), "{err}");
    }

    #[test]
    fn configured_depth_is_clamped_to_the_json_cap() {
        let l = Limits {
            max_depth: usize::MAX,
            ..Limits::default()
        };
        assert_eq!(l.effective_max_depth(), 64);
        let mut s = span();
        s.attributes = vec![kv("deep", nested(64))];
        assert_eq!(span_err(s.clone(), &l), None);
        s.attributes = vec![kv("deep", nested(65))];
        assert!(span_err(s, &l).unwrap().ends_with("the limit is 64"));
    }

    // -- raw protobuf ------------------------------------------------------------------

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A length-delimited field.
    fn field(tag: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 8);
        varint(((tag << 3) | 2) as usize, &mut out);
        varint(body.len(), &mut out);
        out.extend_from_slice(body);
        out
    }

    /// An encoded `AnyValue` of `levels` nested arrays around a string, built as bytes: prost
    /// itself could not encode (or drop) a value this deep without overflowing the stack.
    fn raw_nested_any_value(levels: usize) -> Vec<u8> {
        let mut v = field(1, b"leaf"); // AnyValue.string_value
        for _ in 0..levels {
            let array = field(1, &v); // ArrayValue.values
            v = field(5, &array); // AnyValue.array_value
        }
        v
    }

    /// An encoded `AnyValue` of `levels` nested kvlists (`{"k": ...}`) around a string.
    fn raw_nested_kvlist(levels: usize) -> Vec<u8> {
        let mut v = field(1, b"leaf");
        for _ in 0..levels {
            let entry = [field(1, b"k"), field(2, &v)].concat(); // KeyValue
            v = field(6, &field(1, &entry)); // AnyValue.kvlist_value.values[0]
        }
        v
    }

    /// A trace request whose one span has the attribute `"k"` = `value` (encoded AnyValue),
    /// in the span itself or (`in_event`) in its first event.
    fn raw_traces(value: &[u8], in_event: bool) -> Vec<u8> {
        let attribute = [field(1, b"k"), field(2, value)].concat(); // KeyValue
        let mut span = [field(1, &[1; 16]), field(2, &[2; 8])].concat();
        if in_event {
            span.extend(field(11, &field(3, &attribute))); // Span.events[0].attributes
        } else {
            span.extend(field(9, &attribute)); // Span.attributes
        }
        let scope_spans = field(2, &span);
        let resource_spans = field(2, &scope_spans);
        field(1, &resource_spans)
    }

    /// A logs request whose one record has `body` (encoded AnyValue).
    fn raw_logs(body: &[u8]) -> Vec<u8> {
        let record = field(5, body); // LogRecord.body
        field(1, &field(2, &field(2, &record)))
    }

    #[test]
    fn raw_bytes_match_prost_encoding() {
        let mut v = string("leaf");
        for _ in 0..3 {
            v = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let mut expected = traces(Span {
            attributes: vec![kv("k", v)],
            ..span()
        });
        expected.resource_spans[0].resource = None;
        expected.resource_spans[0].scope_spans[0].scope = None;
        let raw = raw_traces(&raw_nested_any_value(3), false);
        assert_eq!(raw, expected.encode_to_vec());

        let mut v = string("leaf");
        for _ in 0..2 {
            v = AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![kv("k", v)],
                })),
            };
        }
        let expected = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        body: Some(v),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(raw_logs(&raw_nested_kvlist(2)), expected.encode_to_vec());
    }

    #[test]
    fn protobuf_depth_ceiling_is_where_prost_stops_at_the_deepest_place() {
        let l = Limits {
            max_depth: 64,
            ..Limits::default()
        };
        // (encoder, deepest depth that decodes in every place)
        type Nest = fn(usize) -> Vec<u8>;
        let shapes: [(Nest, usize); 2] = [(raw_nested_kvlist, 31), (raw_nested_any_value, 47)];
        for (nest, ceiling) in shapes {
            for in_event in [false, true] {
                let ok = raw_traces(&nest(ceiling), in_event);
                let req = ExportTraceServiceRequest::decode(&ok[..]).unwrap();
                assert_eq!(validate_traces_with(&req, &l), Ok(()));
                let over = raw_traces(&nest(ceiling + 1), in_event);
                let err = ExportTraceServiceRequest::decode(&over[..]).unwrap_err();
                assert!(is_recursion_limit(&err), "{err}");
            }
            // Log bodies sit shallower: the ceiling holds there too.
            let req = ExportLogsServiceRequest::decode(&raw_logs(&nest(ceiling))[..]).unwrap();
            assert_eq!(validate_logs_with(&req, &l), Ok(()));
        }
    }

    #[test]
    fn ten_thousand_levels_of_protobuf_are_an_error_not_a_stack_overflow() {
        let deep = raw_nested_any_value(10_000);
        for bytes in [raw_traces(&deep, false), raw_traces(&deep, true)] {
            let err = ExportTraceServiceRequest::decode(&bytes[..]).unwrap_err();
            assert!(is_recursion_limit(&err), "{err}");
        }
        let err = ExportLogsServiceRequest::decode(&raw_logs(&deep)[..]).unwrap_err();
        assert!(is_recursion_limit(&err), "{err}");
        // Other decode errors are not mistaken for it.
        let err = ExportTraceServiceRequest::decode(&b"\xff\xff\xff"[..]).unwrap_err();
        assert!(!is_recursion_limit(&err), "{err}");
        assert_eq!(
            depth_hint(&Limits::default()),
            "AnyValue values may nest at most 20 array_value/kvlist_value levels"
        );
        let deepest = Limits {
            max_depth: 64,
            ..Limits::default()
        };
        assert_eq!(
            depth_hint(&deepest),
            "AnyValue values may nest at most 28 array_value/kvlist_value levels"
        );
    }

    #[test]
    fn deep_but_decodable_protobuf_is_refused_by_validation() {
        let bytes = raw_traces(&raw_nested_any_value(40), false);
        let req = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
        let err = validate_traces_with(&req, &Limits::default()).unwrap_err();
        // The path ends at the value that would open the 21st level.
        assert_eq!(err.path.matches("array_value").count(), 20, "{err}");
        assert!(err.message.ends_with("the limit is 20"), "{err}");
    }

    // -- OTLP/JSON ---------------------------------------------------------------------

    /// An OTLP/JSON `AnyValue` of `levels` nested kvlists (or arrays) around a string.
    fn json_nested(levels: usize, kvlist: bool) -> String {
        let mut v = r#"{"stringValue":"x"}"#.to_string();
        for _ in 0..levels {
            v = if kvlist {
                format!(r#"{{"kvlistValue":{{"values":[{{"key":"k","value":{v}}}]}}}}"#)
            } else {
                format!(r#"{{"arrayValue":{{"values":[{v}]}}}}"#)
            };
        }
        v
    }

    /// A trace document whose one span's first event has the attribute `"k"` = `value`.
    fn json_event_attribute(value: &str) -> String {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"events":[{{"attributes":[{{"key":"k","value":{value}}}]}}]}}]}}]}}]}}"#
        )
    }

    #[test]
    fn json_depth_ceiling_is_where_serde_json_stops_at_the_deepest_place() {
        let l = Limits {
            max_depth: 64,
            ..Limits::default()
        };
        for (kvlist, ceiling) in [(true, DECODABLE_ANY_VALUE_DEPTH), (false, 38)] {
            let doc = json_event_attribute(&json_nested(ceiling, kvlist));
            let req = crate::otlp_json::decode_traces(doc.as_bytes()).unwrap();
            let event = &req.resource_spans[0].scope_spans[0].spans[0].events[0];
            assert_eq!(check_attributes(&event.attributes, &l), Ok(()));
            let doc = json_event_attribute(&json_nested(ceiling + 1, kvlist));
            let err = crate::otlp_json::decode_traces(doc.as_bytes()).unwrap_err();
            assert!(is_json_depth_error(&err), "{err}");
        }
        let err = crate::otlp_json::decode_traces(b"{\"resourceSpans\":7}").unwrap_err();
        assert!(!is_json_depth_error(&err), "{err}");
    }
}
