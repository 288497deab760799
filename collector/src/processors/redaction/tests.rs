//! The redaction processor: the Collector's order of checks, Weft's additions (log bodies,
//! replacements, Luhn-checked cards, allowed key patterns), the summary, and every config
//! mistake with its path.

use serde_json::json;
use weft_config::Kind;
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource as ResourceProto;
use weft_proto::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::pipeline::{Logs, Traces};
use crate::processors::testutil::{attr, config, kv, records, string, Recorder};
use crate::telemetry::Telemetry;

/// The seed's rules (chapter 2.5), as the README gives them.
const SEED: &str = r#"
allowed_keys: [service.name, timestamp, level, service, event, trace_id, span_id, caller, context, path, note]
allowed_key_patterns: ['^biz_']
blocked_key_patterns: ['(?i)token|password|secret']
redact_all_types: true
blocked_values:
  - {pattern: '(?-u:\b)(\d{6})\d{8}(\d{3}[\dXx])(?-u:\b)', replacement: '$1********$2'}
  - {pattern: '(?-u:\b)(1[3-9]\d)\d{4}(\d{4})(?-u:\b)', replacement: '$1****$2'}
  - {pattern: '(?-u:\b)\d(?:[ -]?\d){11,18}(?-u:\b)', luhn: true}
  - {pattern: '[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.[A-Za-z0-9.-]+)', replacement: '****@$1'}
  - {pattern: '(?i)(bearer\s+)[A-Za-z0-9._~+/-]+=*', replacement: '$1****'}
"#;

fn any(v: serde_json::Value) -> AnyValue {
    crate::ottl::Value::from_json(v).to_any().unwrap()
}

fn int(i: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(i)),
    }
}

fn redactor(yaml: &str) -> Redactor {
    let (cfg, diags) = config::<Config>("processors::redaction", yaml);
    assert!(diags.is_empty(), "{diags:#?}");
    Redactor::new(&cfg.unwrap()).unwrap()
}

fn text(v: &AnyValue) -> String {
    crate::ottl::Value::from_any(Some(v))
        .to_string_like()
        .unwrap()
        .unwrap()
        .into_owned()
}

#[test]
fn attributes_are_removed_masked_and_kept_in_the_collectors_order() {
    let r = redactor(SEED);
    let mut attrs = vec![
        kv("biz_phone", string("13812345678")),
        kv("biz_order_no", string("A-1001")),
        kv("user_id", string("u-1")),
        kv("access_token", string("abc")),
        kv(
            "note",
            string("call 13912345678, card 4111 1111 1111 1111, order 1234567890123"),
        ),
        kv("biz_id_card", string("11010519491231002X")),
        kv("biz_mail", string("li.lei@example.com")),
        kv("biz_auth", string("Bearer eyJhbGciOi.x-y_z")),
        kv("biz_mobile_number", int(15912345678)),
        kv("weft.schema.errors", string("/phone: type: 13812345678")),
    ];
    let mut stats = Stats::default();
    r.attributes(&mut attrs, &mut stats);
    let get = |k: &str| {
        attrs
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| text(kv.value.as_ref().unwrap()))
    };
    assert_eq!(get("biz_phone").unwrap(), "138****5678");
    assert_eq!(get("biz_order_no").unwrap(), "A-1001");
    assert_eq!(get("user_id"), None, "not allowed: removed");
    assert_eq!(
        get("access_token"),
        None,
        "not allowed comes before blocked keys: removed, not masked"
    );
    assert_eq!(
        get("note").unwrap(),
        "call 139****5678, card ****, order 1234567890123",
        "only the Luhn-valid number is a card"
    );
    assert_eq!(get("biz_id_card").unwrap(), "110105********002X");
    assert_eq!(get("biz_mail").unwrap(), "****@example.com");
    assert_eq!(get("biz_auth").unwrap(), "Bearer ****");
    assert_eq!(
        get("biz_mobile_number").unwrap(),
        "159****5678",
        "redact_all_types checks numbers by their text"
    );
    assert_eq!(
        get("weft.schema.errors").unwrap(),
        "/phone: type: 138****5678",
        "weft.* is always allowed, and still checked"
    );
    assert_eq!((stats.removed, stats.masked), (2, 7));
}

#[test]
fn blocked_keys_ignored_keys_and_allowed_values() {
    let r = redactor(
        r#"
allow_all_keys: true
ignored_keys: [raw]
blocked_key_patterns: ['(?i)password']
blocked_values: ['\d{4}']
allowed_values: ['^ok-\d+$']
summary: debug
"#,
    );
    let mut attrs = vec![
        kv("db.password", string("hunter2")),
        kv("raw", string("1234")),
        kv("id", string("ok-1234")),
        kv("pin", string("pin 1234")),
        kv("tags", any(json!(["a", "pin 5678", {"deep": "9999"}]))),
    ];
    r.attributes(&mut attrs, &mut Stats::default());
    let rec = LogRecord {
        attributes: attrs,
        ..Default::default()
    };
    assert_eq!(attr(&rec, "db.password"), "****");
    assert_eq!(attr(&rec, "raw"), "1234", "ignored: untouched");
    assert_eq!(
        attr(&rec, "id"),
        "ok-1234",
        "allowed values win over blocked ones"
    );
    assert_eq!(attr(&rec, "pin"), "pin ****");
    assert_eq!(
        attr(&rec, "tags"),
        r#"["a","pin ****",{"deep":"****"}]"#,
        "lists and maps are walked, their structure kept"
    );
    assert_eq!(attr(&rec, "redaction.masked.keys"), "db.password,pin,tags");
    assert_eq!(attr(&rec, "redaction.masked.count"), "3");
    assert_eq!(attr(&rec, "redaction.allowed.keys"), "id");
    assert_eq!(attr(&rec, "redaction.ignored.count"), "1");
    assert_eq!(attr(&rec, "redaction.redacted.count"), "<absent>");
}

#[test]
fn hash_functions_write_the_digest_of_what_they_mask() {
    let r = redactor("allow_all_keys: true\nblocked_values: ['secret-\\d+']\nhash_function: md5");
    let mut attrs = vec![kv("a", string("x secret-42 y"))];
    r.attributes(&mut attrs, &mut Stats::default());
    let expect = format!("x {} y", hex::encode(md5::Md5::digest(b"secret-42")));
    assert_eq!(text(attrs[0].value.as_ref().unwrap()), expect);

    let key = "k".repeat(32);
    let r = redactor(&format!(
        "allow_all_keys: true\nblocked_values: ['secret-\\d+']\nhash_function: hmac-sha256\nhmac_key: {key}"
    ));
    let mut attrs = vec![kv("a", string("secret-42"))];
    r.attributes(&mut attrs, &mut Stats::default());
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(b"secret-42");
    assert_eq!(
        text(attrs[0].value.as_ref().unwrap()),
        hex::encode(mac.finalize().into_bytes())
    );
}

#[test]
fn log_bodies_are_redacted_strings_and_maps_at_every_level() {
    let r = redactor(&format!("{SEED}summary: debug\n"));
    // A string body.
    let mut body = Some(string("user 13812345678 paid with 4111-1111-1111-1111"));
    let mut attrs = Vec::new();
    r.body(&mut body, &mut attrs, &mut Stats::default());
    assert_eq!(
        text(body.as_ref().unwrap()),
        "user 138****5678 paid with ****"
    );
    let rec = LogRecord {
        attributes: attrs,
        ..Default::default()
    };
    assert_eq!(attr(&rec, "redaction.body.masked.keys"), "body");
    // A map body (a JSON line parsed by transform): keys checked at every level.
    let mut body = Some(any(json!({
        "timestamp": "2024-05-20T08:30:45.123Z",
        "level": "info",
        "event": "login from 13812345678",
        "user_id": 1001,
        "context": {"biz_phone": "13912345678", "session_token": "t", "path": "/a", "ip": "10.0.0.1"},
        "biz_cards": ["4111111111111111", "1234"]
    })));
    let mut attrs = Vec::new();
    r.body(&mut body, &mut attrs, &mut Stats::default());
    assert_eq!(
        text(body.as_ref().unwrap()),
        r#"{"biz_cards":["****","1234"],"context":{"biz_phone":"139****5678","path":"/a"},"event":"login from 138****5678","level":"info","timestamp":"2024-05-20T08:30:45.123Z"}"#
    );
    let rec = LogRecord {
        attributes: attrs,
        ..Default::default()
    };
    assert_eq!(
        attr(&rec, "redaction.body.redacted.keys"),
        "context.ip,context.session_token,user_id"
    );
    assert_eq!(
        attr(&rec, "redaction.body.masked.keys"),
        "biz_cards.[0],context.biz_phone,event"
    );
}

#[tokio::test]
async fn spans_events_resources_and_records_all_go_through() {
    let t = Telemetry::new();
    let (cfg, _) = config::<Config>("processors::redaction", SEED);
    let cfg = cfg.unwrap();
    let sink = Recorder::<Traces>::new();
    let p = build::<ExportTraceServiceRequest>(
        BuildContext::standalone("redaction", Kind::Processor).with_telemetry(&t),
        &cfg,
        sink.clone(),
    )
    .unwrap();
    let resource = Some(ResourceProto {
        attributes: vec![
            kv("service.name", string("checkout")),
            kv("host.ip", string("10.1.1.1")),
        ],
        ..Default::default()
    });
    p.consume(Traces::from(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    attributes: vec![kv("biz_phone", string("13812345678"))],
                    events: vec![Event {
                        attributes: vec![kv("note", string("13712345678"))],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
    .await
    .unwrap();
    let got = sink.batches.lock()[0].request().into_owned();
    let rs = &got.resource_spans[0];
    assert_eq!(
        rs.resource.as_ref().unwrap().attributes.len(),
        1,
        "host.ip removed"
    );
    let span = &rs.scope_spans[0].spans[0];
    assert_eq!(
        text(span.attributes[0].value.as_ref().unwrap()),
        "138****5678"
    );
    assert_eq!(
        text(span.events[0].attributes[0].value.as_ref().unwrap()),
        "137****5678"
    );
    assert_eq!(
        t.counter_value(
            "weft_processor_redaction_masked_values",
            &[("processor", "redaction"), ("data_type", "traces")]
        ),
        2
    );

    let logs_sink = Recorder::<Logs>::new();
    let p = build::<ExportLogsServiceRequest>(
        BuildContext::standalone("redaction", Kind::Processor).with_telemetry(&t),
        &cfg,
        logs_sink.clone(),
    )
    .unwrap();
    p.consume(Logs::from(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource,
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(string("tel 13812345678")),
                    attributes: vec![kv("biz_x", string("13612345678"))],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
    .await
    .unwrap();
    let got = records(&logs_sink.batches.lock());
    assert_eq!(text(got[0].body.as_ref().unwrap()), "tel 138****5678");
    assert_eq!(attr(&got[0], "biz_x"), "136****5678");
}

#[test]
fn every_mistake_is_reported_with_its_path() {
    let (_, diags) = config::<Config>(
        "processors::redaction",
        r#"
allowed_key_patterns: ['(']
blocked_key_patterns: ['(?=lookahead)']
blocked_values:
  - 'a(?<!b)'
  - {pattern: '(\d)', replacement: '$2'}
  - {pattern: '[', luhn: true}
  - {pattern: '(?P<x>\d)', replacement: '${y}'}
allowed_values: ['\1']
hash_function: hmac-sha256
hmac_key: short
url_sanitizer: {enabled: true}
"#,
    );
    let expect = [
        "error: processors::redaction::allowed_key_patterns[0]: invalid regular expression",
        "error: processors::redaction::blocked_key_patterns[0]: invalid regular expression",
        "error: processors::redaction::allowed_values[0]: invalid regular expression",
        "error: processors::redaction::blocked_values[0]: invalid regular expression",
        "error: processors::redaction::blocked_values[1]::replacement: refers to group \"2\"",
        "error: processors::redaction::blocked_values[2]::pattern: invalid regular expression",
        "error: processors::redaction::blocked_values[3]::replacement: refers to group \"y\"",
        "error: processors::redaction::hmac_key: hmac-sha256 needs an hmac_key of at least 32 bytes",
        "error: processors::redaction::url_sanitizer: url_sanitizer is not supported by Weft",
    ];
    for e in expect {
        assert!(
            diags.iter().any(|d| d.starts_with(e)),
            "missing {e:?} in {diags:#?}"
        );
    }
    assert_eq!(diags.len(), expect.len(), "{diags:#?}");
    assert!(
        !diags.iter().any(|d| d.contains("short")),
        "the key is never echoed"
    );
    let (_, diags) = config::<Config>("processors::redaction", "blocked_values: [1]");
    assert!(
        diags[0].contains("expected a regular expression"),
        "{diags:?}"
    );
    let (_, diags) = config::<Config>("processors::redaction", "hash_function: sha256");
    assert!(diags[0].contains("unknown variant"), "{diags:?}");
    let (_, diags) = config::<Config>("processors::redaction", "hmac_key: x");
    assert!(
        diags[0].contains("only used with hash_function"),
        "{diags:?}"
    );
}

#[test]
fn luhn_takes_card_numbers_and_nothing_else() {
    assert!(luhn("4111 1111 1111 1111"));
    assert!(luhn("5500-0000-0000-0004"));
    assert!(!luhn("4111 1111 1111 1112"));
    assert!(!luhn("13812345678"), "too short for a card");
}

#[test]
fn key_lists_short_and_long_answer_the_same() {
    for n in [0, 2, KeySet::FEW, KeySet::FEW + 1, 40] {
        let names: Vec<String> = (0..n).map(|i| format!("biz_{i}")).collect();
        let set = KeySet::new(&names);
        assert_eq!(matches!(set, KeySet::Few(_)), n <= KeySet::FEW, "{n} names");
        for name in &names {
            assert!(set.contains(name), "{name} of {n}");
        }
        for absent in ["", "biz_", "biz_00", "Biz_1", &format!("biz_{n}")] {
            assert!(!set.contains(absent), "{absent:?} of {n}");
        }
    }
}
