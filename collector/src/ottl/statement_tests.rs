//! Statements against their contract: editors change exactly what they name, converters
//! compute what the Collector's do, and every way data can be wrong is an error, never a
//! panic.

use weft_proto::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use weft_proto::logs::v1::LogRecord;
use weft_proto::resource::v1::Resource as ResourceProto;
use weft_proto::trace::v1::Span as SpanProto;

use super::contexts::{
    Log, LogTarget, OriginMut, Resource, ResourceTarget, Scope, ScopeTarget, Span, SpanTarget,
};
use super::*;

fn string(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    }
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

/// One log record with a resource and a scope, run through statements in the log context.
#[derive(Default)]
struct Item {
    record: LogRecord,
    resource: Option<ResourceProto>,
    resource_url: String,
    scope: Option<InstrumentationScope>,
    scope_url: String,
    cache: Vec<KeyValue>,
}

impl Item {
    fn with_body(body: &str) -> Self {
        Self {
            record: LogRecord {
                body: Some(string(body)),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn run(&mut self, statement: &str) -> Result<bool, EvalError> {
        let st = Statement::<Log>::new(statement).unwrap_or_else(|e| panic!("{statement}: {e}"));
        let mut target = LogTarget {
            record: &mut self.record,
            origin: OriginMut {
                resource: &mut self.resource,
                resource_schema_url: &mut self.resource_url,
                scope: &mut self.scope,
                scope_schema_url: &mut self.scope_url,
            },
            cache: &mut self.cache,
        };
        st.execute(&mut target)
    }

    fn ok(&mut self, statement: &str) {
        self.run(statement)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    fn attr(&self, key: &str) -> Option<Value<'_>> {
        self.record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| Value::from_any(kv.value.as_ref()))
    }

    fn attr_text(&self, key: &str) -> String {
        self.attr(key)
            .and_then(|v| v.to_string_like().ok().flatten().map(|s| s.into_owned()))
            .unwrap_or_else(|| "<absent>".to_string())
    }

    fn keys(&self) -> Vec<&str> {
        self.record
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect()
    }
}

const SEED_LINE: &str = r#"{"timestamp":"2024-05-20T08:30:45.123Z","level":"error","service":"user-api","trace_id":"4d1e4f8a2b3c4d5e6f7a8b9c0d1e2f3a","span_id":"0102030405060708","event":"login failed for 13812345678","duration_ms":812,"caller":"auth.go:42","context":{"user_id":1001,"path":"/api/v1/users"}}"#;

#[test]
fn parse_json_and_three_sets_turn_a_json_line_into_a_correlated_record() {
    let mut item = Item::with_body(SEED_LINE);
    item.ok("set(body, ParseJSON(body)) where IsString(body)");
    item.ok(r#"set(trace_id.string, body["trace_id"])"#);
    item.ok(r#"set(span_id.string, body["span_id"])"#);
    item.ok(r#"set(time, Time(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%LZ"))"#);
    item.ok(r#"set(severity_text, body["level"])"#);
    item.ok(r#"set(resource.attributes["service.name"], body["service"])"#);
    item.ok(r#"merge_maps(attributes, body["context"], "upsert")"#);
    item.ok(r#"set(attributes["duration_ms"], body["duration_ms"])"#);
    assert_eq!(
        hex::encode(&item.record.trace_id),
        "4d1e4f8a2b3c4d5e6f7a8b9c0d1e2f3a"
    );
    assert_eq!(item.record.span_id, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(item.record.time_unix_nano, 1_716_193_845_123_000_000);
    assert_eq!(item.record.severity_text, "error");
    let resource = item.resource.as_ref().unwrap();
    assert_eq!(resource.attributes[0].key, "service.name");
    // JSON numbers are doubles, as in the Collector.
    assert!(matches!(item.attr("duration_ms"), Some(Value::Float(f)) if f == 812.0));
    assert_eq!(item.attr_text("path"), "/api/v1/users");
    assert!(matches!(item.attr("user_id"), Some(Value::Float(_))));
    // The body is a map now: body["k"] reads into it.
    assert!(item
        .run(r#"set(attributes["event"], body["event"]) where body["level"] == "error""#)
        .unwrap());
    assert_eq!(item.attr_text("event"), "login failed for 13812345678");
    // Re-running the first statement on a map body does nothing (its condition is false).
    assert!(!item
        .run("set(body, ParseJSON(body)) where IsString(body)")
        .unwrap());
}

#[test]
fn set_creates_nested_maps_and_lists_and_ignores_nil() {
    let mut item = Item::default();
    item.ok(r#"set(attributes["a"]["b"]["c"], 1)"#);
    assert_eq!(item.attr_text("a"), r#"{"b":{"c":1}}"#);
    item.ok(r#"set(attributes["list"][2], "x")"#);
    assert_eq!(item.attr_text("list"), r#"[null,null,"x"]"#);
    item.ok(r#"set(attributes["list"][0], true)"#);
    assert_eq!(item.attr_text("list"), r#"[true,null,"x"]"#);
    // nil: nothing happens.
    item.ok(r#"set(attributes["missing_copy"], attributes["missing"])"#);
    assert_eq!(item.attr_text("missing_copy"), "<absent>");
    // Indexing a string is an error, as is a list index out of bounds.
    item.ok(r#"set(attributes["s"], "text")"#);
    assert!(item
        .run(r#"set(attributes["s"]["k"], 1)"#)
        .unwrap_err()
        .to_string()
        .contains("cannot be indexed"));
    assert!(item
        .run(r#"set(attributes["list"][7], 1)"#)
        .unwrap_err()
        .to_string()
        .contains("out of bounds"));
    // A huge index does not allocate a huge list.
    assert!(item
        .run(r#"set(attributes["big"][100000000], 1)"#)
        .unwrap_err()
        .to_string()
        .contains("cannot create a list"));
    // The whole attribute map, and the cache.
    item.ok(r#"set(cache["k"], "v")"#);
    item.ok(r#"set(attributes, {"only": cache["k"]})"#);
    assert_eq!(item.keys(), ["only"]);
    assert_eq!(item.attr_text("only"), "v");
    assert!(item
        .run(r#"set(attributes, "x")"#)
        .unwrap_err()
        .to_string()
        .contains("can only be set to a map"));
}

#[test]
fn fields_take_their_types_and_say_so_otherwise() {
    let mut item = Item::default();
    item.ok("set(severity_number, SEVERITY_NUMBER_WARN)");
    assert_eq!(item.record.severity_number, 13);
    assert_eq!(
        item.run(r#"set(severity_number, "WARN")"#)
            .unwrap_err()
            .to_string(),
        "severity_number takes an int, not string"
    );
    assert!(item
        .run(r#"set(trace_id.string, "xyz")"#)
        .unwrap_err()
        .to_string()
        .contains("not hex"));
    assert!(item
        .run(r#"set(trace_id.string, "0102")"#)
        .unwrap_err()
        .to_string()
        .contains("an id is 16 bytes"));
    item.ok(r#"set(span_id, SpanID("0102030405060708"))"#);
    assert_eq!(item.record.span_id, [1, 2, 3, 4, 5, 6, 7, 8]);
    item.ok(r#"set(trace_id, TraceID(0x0102030405060708090a0b0c0d0e0f10))"#);
    assert_eq!(item.record.trace_id[15], 0x10);
    item.ok(r#"set(attributes["ms"], UnixMilli(Time("2024-05-20 08:30:45", "%F %T")))"#);
    assert!(matches!(
        item.attr("ms"),
        Some(Value::Int(1_716_193_845_000))
    ));
    assert!(item
        .run(r#"set(attributes["t"], Time("2024-05-20", "%F"))"#)
        .unwrap_err()
        .to_string()
        .contains("a time cannot be stored"));
    item.ok(r#"set(body.string, "plain")"#);
    assert!(matches!(Value::from_any(item.record.body.as_ref()), Value::Str(s) if s == "plain"));
    item.ok(r#"set(instrumentation_scope.name, "lib")"#);
    assert_eq!(item.scope.as_ref().unwrap().name, "lib");
    item.ok(r#"set(resource.schema_url, "https://s")"#);
    assert_eq!(item.resource_url, "https://s");
}

#[test]
fn map_editors_change_the_map_they_name() {
    let mut item = Item::default();
    for (k, v) in [
        ("a", "1"),
        ("b", "2"),
        ("password", "x"),
        ("biz_order", "o-1"),
        ("c", "3"),
    ] {
        item.record.attributes.push(kv(k, string(v)));
    }
    item.ok(r#"delete_key(attributes, "a")"#);
    assert_eq!(item.keys(), ["b", "password", "biz_order", "c"]);
    item.ok(r#"delete_matching_keys(attributes, "(?i)pass")"#);
    assert_eq!(item.keys(), ["b", "biz_order", "c"]);
    item.ok(r#"keep_matching_keys(attributes, "^(biz_|b|c)")"#);
    assert_eq!(item.keys(), ["b", "biz_order", "c"]);
    item.ok(r#"keep_keys(attributes, ["biz_order", "c"])"#);
    assert_eq!(item.keys(), ["biz_order", "c"]);
    item.ok(r#"merge_maps(attributes, {"c": "new", "d": "4"}, "insert")"#);
    assert_eq!(
        (item.attr_text("c"), item.attr_text("d")),
        ("3".into(), "4".into())
    );
    item.ok(r#"merge_maps(attributes, {"c": "new", "e": "5"}, "update")"#);
    assert_eq!(
        (item.attr_text("c"), item.attr_text("e")),
        ("new".into(), "<absent>".into())
    );
    item.ok(r#"merge_maps(attributes, {"c": "up", "e": "5"}, "upsert")"#);
    assert_eq!(
        (item.attr_text("c"), item.attr_text("e")),
        ("up".into(), "5".into())
    );
    assert!(item
        .run(r#"merge_maps(attributes, "x", "upsert")"#)
        .unwrap_err()
        .to_string()
        .contains("the source must be a map"));
    item.ok(r#"limit(attributes, 2, ["e"])"#);
    assert_eq!(item.keys(), ["biz_order", "e"]);
    item.ok(r#"set(attributes["long"], "abcdefgh")"#);
    item.ok(r#"set(attributes["wide"], "一二三")"#);
    item.ok(r#"truncate_all(attributes, 4)"#);
    assert_eq!(item.attr_text("long"), "abcd");
    // Never inside a character: 4 bytes hold one 3-byte character.
    assert_eq!(item.attr_text("wide"), "一");
    item.ok(r#"truncate_all(attributes, 3, truncation_marker = "…")"#);
    assert_eq!(item.attr_text("long"), "…");
    // A map editor's target must be a map.
    assert!(item
        .run(r#"delete_key(attributes["long"], "x")"#)
        .unwrap_err()
        .to_string()
        .contains("not a map but a string"));
    assert!(item
        .run(r#"delete_key(attributes["absent"], "x")"#)
        .unwrap_err()
        .to_string()
        .contains("has no key"));
    assert!(item
        .run(r#"delete_key(body, "x")"#)
        .unwrap_err()
        .to_string()
        .contains("not a map but nil"));
}

#[test]
fn flatten_follows_depth_prefix_and_conflicts() {
    let mut item = Item::default();
    item.ok(r#"set(body, ParseJSON("{\"name\":\"t\",\"address\":{\"street\":\"first\",\"house\":1},\"occupants\":[\"u1\",\"u2\"]}"))"#);
    item.ok("flatten(body)");
    let body = Value::from_any(item.record.body.as_ref())
        .to_string_like()
        .unwrap()
        .unwrap()
        .into_owned();
    assert_eq!(
        body,
        r#"{"address.house":1.0,"address.street":"first","name":"t","occupants.0":"u1","occupants.1":"u2"}"#
    );
    item.ok(r#"set(attributes["x"], ParseJSON("{\"0\":{\"1\":{\"2\":{\"3\":\"v\"}}}}"))"#);
    item.ok(r#"flatten(attributes["x"], "app", 2)"#);
    assert_eq!(item.attr_text("x"), r#"{"app.0.1.2":{"3":"v"}}"#);
    item.ok(r#"set(attributes["y"], ParseJSON("{\"a\":{\"b\":1},\"a.b\":2,\"l\":[3,4]}"))"#);
    item.ok(r#"flatten(attributes["y"], resolveConflicts = true)"#);
    assert_eq!(
        item.attr_text("y"),
        r#"{"a.b":1.0,"a.b.0":2.0,"l":3.0,"l.0":4.0}"#
    );
}

#[test]
fn replace_pattern_expands_groups_and_hashes_with_a_function() {
    let mut item = Item::with_body("call 13812345678 or 13912345678 now");
    item.ok(r#"replace_pattern(body, "(1[3-9]\\d)\\d{4}(\\d{4})", "${1}****${2}")"#);
    assert_eq!(
        Value::from_any(item.record.body.as_ref())
            .to_string_like()
            .unwrap()
            .unwrap(),
        "call 138****5678 or 139****5678 now"
    );
    item.ok(r#"set(attributes["card"], "card 4111111111111111 end")"#);
    item.ok(r#"replace_pattern(attributes["card"], "\\d{16}", "$0", SHA256, "sha256:%s")"#);
    let expected = format!(
        "card sha256:{} end",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"4111111111111111"))
    );
    assert_eq!(item.attr_text("card"), expected);
    // Not a string: left alone.
    item.ok(r#"set(attributes["n"], 5)"#);
    item.ok(r#"replace_pattern(attributes["n"], "5", "6")"#);
    assert_eq!(item.attr_text("n"), "5");
    item.ok(r#"set(attributes["url"], "/account/1234/x")"#);
    item.ok(r#"set(attributes["kube_pod"], "p")"#);
    item.ok(
        r#"replace_all_patterns(attributes, "value", "/account/\\d{4}", "/account/{accountId}")"#,
    );
    assert_eq!(item.attr_text("url"), "/account/{accountId}/x");
    item.ok(r#"replace_all_patterns(attributes, "key", "^kube_", "k8s.")"#);
    assert_eq!(item.attr_text("k8s.pod"), "p");
    assert!(item
        .run(r#"replace_pattern(attributes["url"], "x", "y", SHA256, "no-placeholder")"#)
        .unwrap_err()
        .to_string()
        .contains("exactly one %s"));
}

#[test]
fn converters_compute_what_the_collector_does() {
    let mut item = Item::default();
    item.ok(r#"set(attributes["snake"], ConvertCase("myMetricName", "snake"))"#);
    item.ok(r#"set(attributes["camel"], ConvertCase("my_metric", "camel"))"#);
    item.ok(r#"set(attributes["upper"], ConvertCase("warn", "upper"))"#);
    assert_eq!(item.attr_text("snake"), "my_metric_name");
    assert_eq!(item.attr_text("camel"), "MyMetric");
    assert_eq!(item.attr_text("upper"), "WARN");
    item.ok(r#"set(attributes["sha"], SHA256("name"))"#);
    assert_eq!(
        item.attr_text("sha"),
        "82a3537ff0dbce7eec35d69edc3a189ee6f17d82f353a553f9aa96cb0be3ce89"
    );
    item.ok(r#"merge_maps(attributes, ExtractPatterns("GIT_SHA=abc123 rest", "GIT_SHA=(?P<git_sha>\\w+)"), "upsert")"#);
    assert_eq!(item.attr_text("git_sha"), "abc123");
    item.ok(r#"set(attributes["none"], ExtractPatterns("nothing", "x=(?P<x>\\d+)"))"#);
    assert_eq!(item.attr_text("none"), "{}");
}

#[test]
fn bad_data_is_an_error_never_a_panic() {
    let mut item = Item::with_body("not json {");
    let e = item
        .run("set(body, ParseJSON(body))")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("ParseJSON: the target is not JSON"), "{e}");
    // 1 000 nested maps: JSON parsing stops at its depth limit, as an error.
    let deep = format!(
        "{}{}",
        "{\"a\":".repeat(1000),
        "1".to_string() + &"}".repeat(1000)
    );
    let mut item = Item::with_body(&deep);
    let e = item
        .run("set(body, ParseJSON(body))")
        .unwrap_err()
        .to_string();
    assert!(e.contains("recursion limit"), "{e}");
    // A 10 MB body parses, and a regex runs over it in linear time.
    let big = format!("{{\"event\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let mut item = Item::with_body(&big);
    item.ok("set(body, ParseJSON(body))");
    item.ok(r#"replace_pattern(body["event"], "x+", "y")"#);
    assert!(item.run(r#"set(attributes["e"], body["event"])"#).unwrap());
    assert_eq!(item.attr_text("e"), "y");
    // Division by zero, a missing key, a string where a number is needed.
    let mut item = Item::default();
    assert_eq!(
        item.run(r#"set(attributes["x"], 1 / 0)"#)
            .unwrap_err()
            .to_string(),
        "attempted to divide by 0"
    );
    assert!(item
        .run(r#"set(attributes["x"], attributes["missing"] * 2)"#)
        .unwrap_err()
        .to_string()
        .contains("arithmetic needs ints or doubles"));
    assert!(item
        .run(r#"set(attributes["x"], Time("yesterday", "%F"))"#)
        .is_err());
    assert!(
        item.attr("x").is_none(),
        "a failed statement writes nothing"
    );
}

#[test]
fn statements_are_checked_when_compiled() {
    let err = |s: &str| Statement::<Log>::new(s).unwrap_err().to_string();
    assert_eq!(
        err(r#"set(attributes["x"], ConvertCase(body, "title"))"#),
        "column 40: ConvertCase: argument \"toCase\" must be one of lower, upper, snake, camel"
    );
    assert!(
        err(r#"set(attributes["x"], ExtractPatterns(body, "\\d+"))"#)
            .contains("at least one named group")
    );
    assert!(err(r#"set(time, Time(body, "%Y-%Q"))"#).contains("unsupported directive %Q"));
    assert!(err(r#"replace_pattern(body, "a", "b", Sha256)"#)
        .contains("the name of a converter taking one string"));
    assert!(
        err(r#"merge_maps(attributes, body, "replace")"#).contains("one of insert, update, upsert")
    );
    assert!(Statement::<Span>::new(r#"set(kind.string, "Server")"#)
        .unwrap_err()
        .to_string()
        .contains("the target cannot be written: kind.string is derived from kind"));
    assert!(err(r#"set(severity, 1)"#).contains("unsupported path \"severity\" in the log context"));
}

#[test]
fn resource_scope_and_span_contexts_write_their_own_fields() {
    let mut resource = None;
    let mut url = String::new();
    let mut cache = Vec::new();
    let st = Statement::<Resource>::new(
        r#"set(attributes["k8s.namespace"], "shop") where attributes["k8s.namespace"] == nil"#,
    )
    .unwrap();
    let mut target = ResourceTarget {
        resource: &mut resource,
        schema_url: &mut url,
        cache: &mut cache,
    };
    assert!(st.execute(&mut target).unwrap());
    assert!(!st.execute(&mut target).unwrap());
    assert_eq!(resource.as_ref().unwrap().attributes.len(), 1);

    let mut scope = Some(InstrumentationScope {
        name: "old".into(),
        ..Default::default()
    });
    let mut scope_url = String::new();
    let st = Statement::<Scope>::new(
        r#"set(name, Concat([name, resource.attributes["k8s.namespace"]], "-"))"#,
    )
    .unwrap();
    let mut target = ScopeTarget {
        origin: OriginMut {
            resource: &mut resource,
            resource_schema_url: &mut url,
            scope: &mut scope,
            scope_schema_url: &mut scope_url,
        },
        cache: &mut cache,
    };
    st.execute(&mut target).unwrap();
    assert_eq!(scope.as_ref().unwrap().name, "old-shop");

    let mut span = SpanProto {
        name: "GET".into(),
        ..Default::default()
    };
    let st = Statement::<Span>::new(r#"set(status.code, STATUS_CODE_ERROR) where name == "GET""#)
        .unwrap();
    let st2 =
        Statement::<Span>::new(r#"set(attributes["route"], Concat([name, "/x"], " "))"#).unwrap();
    let mut target = SpanTarget {
        span: &mut span,
        origin: OriginMut {
            resource: &mut resource,
            resource_schema_url: &mut url,
            scope: &mut scope,
            scope_schema_url: &mut scope_url,
        },
        cache: &mut cache,
    };
    st.execute(&mut target).unwrap();
    st2.execute(&mut target).unwrap();
    assert_eq!(span.status.as_ref().unwrap().code, 2);
    assert_eq!(span.attributes[0].value, Some(string("GET /x")));
    let _ = (ArrayValue::default(), KeyValueList::default());
}
