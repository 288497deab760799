//! The OTTL module against its contract: the grammar parses into the expected trees,
//! errors name their column and what was expected, compile checks reject unknown
//! functions, paths and symbols, and evaluation follows OTTL's value rules.

use weft_proto::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{span, Span as SpanProto, Status};

use super::ast::{Arg, ArgValue, BoolExpr, Call, CompareOp, Key, MathOp, Path, Segment, Value};
use super::contexts::{Origin, Span, SpanData, SpanEvent, SpanEventData};
use super::*;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.to_string())
}

fn path(segments: &[(&str, &[Key])], pos: usize) -> Path {
    Path {
        pos,
        segments: segments
            .iter()
            .map(|(name, keys)| Segment {
                name: name.to_string(),
                keys: keys.to_vec(),
            })
            .collect(),
    }
}

fn string_key(k: &str) -> Key {
    Key::String(k.to_string())
}

// ---- Parsing ----

#[test]
fn comparison_with_a_keyed_path_and_a_string() {
    assert_eq!(
        parse_condition(r#"attributes["http.route"] == "/checkout""#).unwrap(),
        BoolExpr::Compare {
            left: Value::Path(path(&[("attributes", &[string_key("http.route")])], 0)),
            op: CompareOp::Eq,
            right: Value::String("/checkout".into()),
        }
    );
}

#[test]
fn and_binds_tighter_than_or_and_not_applies_to_one_value() {
    let parsed = parse_condition("a == 1 or not b == 2 and c == 3").unwrap();
    let cmp = |name: &str, pos: usize, v: i64| BoolExpr::Compare {
        left: Value::Path(path(&[(name, &[])], pos)),
        op: CompareOp::Eq,
        right: Value::Int(v),
    };
    assert_eq!(
        parsed,
        BoolExpr::Or(vec![
            cmp("a", 0, 1),
            BoolExpr::And(vec![
                BoolExpr::Not(Box::new(cmp("b", 14, 2))),
                cmp("c", 25, 3)
            ]),
        ])
    );
    // Parentheses regroup.
    let grouped = parse_condition("(a == 1 or b == 2) and c == 3").unwrap();
    assert!(matches!(&grouped, BoolExpr::And(v) if matches!(v[0], BoolExpr::Or(_))));
}

#[test]
fn every_comparison_operator() {
    for (text, op) in [
        ("==", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        ("<", CompareOp::Lt),
        ("<=", CompareOp::Le),
        (">", CompareOp::Gt),
        (">=", CompareOp::Ge),
    ] {
        let parsed = parse_condition(&format!("x {text} 1")).unwrap();
        assert!(
            matches!(parsed, BoolExpr::Compare { op: o, .. } if o == op),
            "{text}"
        );
    }
}

#[test]
fn literals_of_every_kind() {
    let right = |text: &str| match parse_condition(&format!("x == {text}")).unwrap() {
        BoolExpr::Compare { right, .. } => right,
        other => panic!("{other:?}"),
    };
    assert_eq!(right("nil"), Value::Nil);
    assert_eq!(right("true"), Value::Bool(true));
    assert_eq!(right("false"), Value::Bool(false));
    assert_eq!(right("42"), Value::Int(42));
    assert_eq!(right("-42"), Value::Int(-42));
    assert_eq!(right("+7"), Value::Int(7));
    assert_eq!(right("1.5"), Value::Float(1.5));
    assert_eq!(right("-.5"), Value::Float(-0.5));
    assert_eq!(right("2.5e3"), Value::Float(2500.0));
    assert_eq!(right("0x0aFF"), Value::Bytes(vec![0x0a, 0xff]));
    assert_eq!(
        right(r#""tab\there \"quoted\" \u00e9\x41""#),
        Value::String("tab\there \"quoted\" éA".into())
    );
    assert_eq!(
        right(r#"["a", 1, [true]]"#),
        Value::List(vec![
            Value::String("a".into()),
            Value::Int(1),
            Value::List(vec![Value::Bool(true)])
        ])
    );
    assert_eq!(right("[]"), Value::List(vec![]));
    assert_eq!(
        right(r#"{"a": 1, "b": {"c": nil} "d": "x"}"#),
        Value::Map(vec![
            ("a".into(), Value::Int(1)),
            ("b".into(), Value::Map(vec![("c".into(), Value::Nil)])),
            ("d".into(), Value::String("x".into())),
        ])
    );
    assert_eq!(
        right("SPAN_KIND_SERVER"),
        Value::Enum {
            name: "SPAN_KIND_SERVER".into(),
            pos: 5
        }
    );
    assert_eq!(
        right("SEVERITY_NUMBER_ERROR"),
        Value::Enum {
            name: "SEVERITY_NUMBER_ERROR".into(),
            pos: 5
        }
    );
}

#[test]
fn paths_with_contexts_and_nested_keys() {
    let left = |text: &str| match parse_condition(&format!("{text} == nil")).unwrap() {
        BoolExpr::Compare { left, .. } => left,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        left(r#"resource.attributes["service.name"]"#),
        Value::Path(path(
            &[
                ("resource", &[]),
                ("attributes", &[string_key("service.name")])
            ],
            0
        ))
    );
    assert_eq!(
        left(r#"body["a"]["b"][0]"#),
        Value::Path(path(
            &[("body", &[string_key("a"), string_key("b"), Key::Int(0)])],
            0
        ))
    );
    // A key may be a path or a converter.
    match left(r#"attributes[attributes["which"]]"#) {
        Value::Path(p) => {
            assert!(matches!(&p.segments[0].keys[0], Key::Expr(v) if matches!(**v, Value::Path(_))))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn converters_nest_take_named_arguments_and_keys() {
    let parsed =
        parse_condition(r#"IsMatch(Concat([name, String(kind)], delimiter="-"), "^a")"#).unwrap();
    let BoolExpr::Converter(call) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(call.name, "IsMatch");
    assert_eq!(call.args.len(), 2);
    let ArgValue::Value(Value::Converter(concat)) = &call.args[0].value else {
        panic!("{:?}", call.args[0])
    };
    assert_eq!(concat.name, "Concat");
    assert_eq!(concat.args[1].name.as_deref(), Some("delimiter"));
    // Keys on a converter's result, and a function name as an argument.
    let parsed = parse_condition(r#"Split(name, ",")[0] == "a""#).unwrap();
    assert!(
        matches!(parsed, BoolExpr::Compare { left: Value::Converter(Call { ref keys, .. }), .. } if keys == &[Key::Int(0)])
    );
    // An all-capitals word is an enum symbol; a mixed-case one without "(" a function name.
    let parsed = parse_condition("Hash(name, Sha256) == nil").unwrap();
    let BoolExpr::Compare {
        left: Value::Converter(call),
        ..
    } = parsed
    else {
        panic!()
    };
    assert_eq!(
        call.args[1],
        Arg {
            name: None,
            value: ArgValue::FunctionName("Sha256".into()),
            pos: 11
        }
    );
}

#[test]
fn arithmetic_precedence_parentheses_and_unary_minus() {
    let parsed = parse_condition("a + 2 * (b - 1) > -c").unwrap();
    let BoolExpr::Compare { left, right, .. } = parsed else {
        panic!()
    };
    let Value::Math {
        op, right: product, ..
    } = left
    else {
        panic!("{left:?}")
    };
    assert_eq!(op, MathOp::Add);
    assert!(matches!(
        *product,
        Value::Math {
            op: MathOp::Mul,
            ..
        }
    ));
    assert!(matches!(right, Value::Negate { .. }));
}

#[test]
fn statements_with_and_without_where() {
    let st = parse_statement(r#"set(attributes["k"], "v") where name == "x""#).unwrap();
    assert_eq!(st.editor.name, "set");
    assert_eq!(st.editor.args.len(), 2);
    assert!(st.condition.is_some());
    let st = parse_statement(r#"delete_key(attributes, "k")"#).unwrap();
    assert!(st.condition.is_none());
}

// ---- Errors: column and what was expected ----

fn parse_err(text: &str) -> String {
    parse_condition(text).unwrap_err().to_string()
}

#[test]
fn parse_errors_name_the_column_and_what_was_expected() {
    assert_eq!(
        parse_err("name =="),
        "column 8: expected a value (a path, a literal, a converter call, a list or a map), found the end of the text"
    );
    assert_eq!(
        parse_err(r#"name = "x""#),
        "column 6: expected a comparison operator (==, !=, <, <=, >, >=), found \"=\""
    );
    assert_eq!(
        parse_err(r#"IsMatch(name, "x""#),
        "column 18: expected \",\" or \")\" after an argument of IsMatch, found the end of the text"
    );
    assert_eq!(
        parse_err(r#"attributes["k" == 1"#),
        "column 16: expected \"]\", found \"==\""
    );
    assert_eq!(
        parse_err(r#"name == "open"#),
        "column 9: unterminated string: expected a closing \""
    );
    assert_eq!(
        parse_err("name == 1 and"),
        "column 14: expected a value (a path, a literal, a converter call, a list or a map), found the end of the text"
    );
    assert_eq!(
        parse_err("name == 1 xor b"),
        "column 11: expected \"and\", \"or\" or the end of the condition, found \"xor\""
    );
    assert!(parse_err("x -1 == 0").contains("write \"- 1\" to subtract"));
    assert_eq!(
        parse_err("name == 0xabc"),
        "column 9: bytes literal 0xabc has an odd number of hex digits"
    );
    assert_eq!(
        parse_err("name == 99999999999999999999"),
        "column 9: the integer 99999999999999999999 does not fit in 64 bits"
    );
    assert_eq!(parse_err("name == é"), "column 9: unexpected character 'é'");
    assert_eq!(
        parse_err("spanName == 1"),
        "column 1: path segment \"spanName\" must be lower case (a-z, 0-9 and _)"
    );
    assert_eq!(
        parse_err(r#"lower(name) == "x""#),
        "column 1: converter names must start with an uppercase letter but got \"lower\""
    );
    assert_eq!(
        parse_statement(r#"Set(name, "x")"#)
            .unwrap_err()
            .to_string(),
        "column 1: editor names must start with a lowercase letter but got \"Set\""
    );
    assert!(parse_statement(r#"set(name, "x")[0]"#)
        .unwrap_err()
        .message
        .contains("only paths and converters may be indexed"));
}

#[test]
fn columns_count_characters_not_bytes() {
    // "é" is two bytes; the column of the error after it still counts one.
    assert_eq!(
        parse_err(r#"name == "é" =="#),
        "column 13: expected \"and\", \"or\" or the end of the condition, found \"==\""
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}a == 1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_err(&deep).contains("nested too deeply"));
    let deep_list = format!("a == {}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_err(&deep_list).contains("nested too deeply"));
    let deep_not = format!("{}a == 1{}", "not (".repeat(10_000), ")".repeat(10_000));
    assert!(parse_err(&deep_not).contains("nested too deeply"));
    // OTTL allows one "not" per boolean value.
    assert!(parse_err("not not a == 1").contains("found \"not\""));
    let deep_minus = format!("a == {}1", "- ".repeat(10_000));
    assert!(parse_err(&deep_minus).contains("nested too deeply"));
    // A long operator chain builds a deep tree too.
    let long_sum = format!("a == 1{}", " + 1".repeat(100_000));
    assert!(parse_err(&long_sum).contains("nested too deeply"));
    let long_product = format!("a == 1{}", " * 1".repeat(100_000));
    assert!(parse_err(&long_product).contains("nested too deeply"));
    // Flat repetition is no nesting.
    let many_ors = vec!["a == 1"; 10_000].join(" or ");
    assert!(parse_condition(&many_ors).is_ok());
    let many_keys = format!("a{} == 1", "[\"k\"]".repeat(10_000));
    assert!(parse_condition(&many_keys).is_ok());
    // 60 levels are fine.
    let ok = format!("{}a == 1{}", "(".repeat(60), ")".repeat(60));
    assert!(parse_condition(&ok).is_ok());
}

fn compile_err(text: &str) -> String {
    Condition::<Span>::new(text).unwrap_err().to_string()
}

#[test]
fn compile_errors_name_unsupported_functions_paths_and_symbols() {
    assert_eq!(
        compile_err(r#"name == "a" and Foo(name) == 1"#),
        "column 17: unsupported OTTL function \"Foo\" (supported: Concat, ConvertCase, Double, ExtractPatterns, Int, IsMap, IsMatch, IsString, Len, MD5, ParseJSON, SHA1, SHA256, SHA512, SpanID, String, Time, TraceID, UnixMilli)"
    );
    assert!(compile_err("IsRootSpan()")
        .starts_with("column 1: unsupported OTTL function \"IsRootSpan\""));
    let path = compile_err(r#"attributes["a"] == 1 or spanz.name == "x""#);
    assert!(
        path.starts_with("column 25: unsupported path \"spanz.name\" in the span context: "),
        "{path}"
    );
    assert!(
        path.contains("(supported: name, kind, status.code"),
        "{path}"
    );
    assert!(compile_err("start_time.nanos > 0").contains("not a field of a span"));
    assert!(compile_err("name[\"x\"] == 1").contains("\"name\" cannot be indexed"));
    assert_eq!(
        compile_err("kind == SPAN_KIND_SERVERS"),
        "column 9: unknown enum symbol SPAN_KIND_SERVERS in the span context (known: SPAN_KIND_UNSPECIFIED, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER, STATUS_CODE_UNSET, STATUS_CODE_OK, STATUS_CODE_ERROR)"
    );
    assert!(compile_err("severity_number >= SEVERITY_NUMBER_ERROR")
        .starts_with("column 1: unsupported path \"severity_number\""));
}

#[test]
fn compile_errors_check_arity_names_and_literal_types() {
    assert_eq!(
        compile_err("Len() == 0"),
        "column 1: Len: missing argument \"target\": it is Len(target)"
    );
    assert_eq!(
        compile_err("Len(name, name) == 0"),
        "column 11: Len takes 1 argument(s), got 2: it is Len(target)"
    );
    assert_eq!(
        compile_err("IsMatch(name, 1)"),
        "column 15: IsMatch: argument \"pattern\" must be a string literal (a regular expression)"
    );
    assert!(compile_err(r#"IsMatch(name, "(")"#).starts_with(
        "column 15: IsMatch: argument \"pattern\" must be a valid regular expression: \"(\" is not"
    ));
    assert_eq!(
        compile_err(r#"IsMatch(target = name, patern = "x")"#),
        "column 24: IsMatch has no parameter \"patern\": it is IsMatch(target, pattern)"
    );
    assert_eq!(
        compile_err(r#"IsMatch(pattern = "x", name)"#),
        "column 24: IsMatch: positional arguments must come before named ones"
    );
    assert_eq!(
        compile_err(r#"IsMatch(name, target = name)"#),
        "column 15: IsMatch: argument \"target\" is given twice"
    );
    assert_eq!(
        compile_err(r#"Concat("a", "-") == "a""#),
        "column 8: Concat: argument \"vals\" must be a list, not a string"
    );
    assert_eq!(
        compile_err(r#"Concat(["a"], 1) == "a""#),
        "column 15: Concat: argument \"delimiter\" must be a string, not an int"
    );
    assert_eq!(
        compile_err("Len(Sha256) == 1"),
        "column 5: Len: argument \"target\" must be a value, not the function name Sha256"
    );
}

#[test]
fn statements_are_checked_against_the_editors() {
    let st = Statement::<Span>::new(r#"set(attributes["k"], "v") where kind == SPAN_KIND_SERVER"#)
        .unwrap();
    assert_eq!(st.editor(), "set");
    assert_eq!(
        Statement::<Span>::new(r#"sett(attributes["k"], "v")"#)
            .unwrap_err()
            .to_string(),
        "column 1: unsupported OTTL editor \"sett\" (supported: delete_key, delete_matching_keys, flatten, keep_keys, keep_matching_keys, limit, merge_maps, replace_all_patterns, replace_pattern, set, truncate_all)"
    );
    assert_eq!(
        Statement::<Span>::new(r#"set("k", "v")"#)
            .unwrap_err()
            .to_string(),
        "column 5: set: argument \"target\" must be a path"
    );
    assert!(Statement::<Span>::new(r#"set(attributes["k"], Foo())"#)
        .unwrap_err()
        .message
        .contains("unsupported OTTL function \"Foo\""));
}

// ---- Evaluation in the span and span event contexts ----

struct Fixture {
    span: SpanProto,
    resource: Resource,
    scope: InstrumentationScope,
}

fn fixture() -> Fixture {
    Fixture {
        span: SpanProto {
            trace_id: vec![0xab; 16],
            span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            trace_state: "vendor=gold, other=x".into(),
            name: "GET /checkout".into(),
            kind: 2,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 3_500,
            flags: 0x101,
            attributes: vec![
                kv("http.route", s("/checkout")),
                kv("http.status_code", any_value::Value::IntValue(503)),
                kv("ratio", any_value::Value::DoubleValue(0.5)),
                kv("retry", any_value::Value::BoolValue(true)),
                kv("count", s("12")),
                kv("raw", any_value::Value::BytesValue(vec![0xca, 0xfe])),
                kv(
                    "tags",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue {
                                value: Some(s("a")),
                            },
                            AnyValue {
                                value: Some(any_value::Value::IntValue(2)),
                            },
                        ],
                    }),
                ),
                kv(
                    "user",
                    any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("id", s("u-1")), kv("tier", s("gold"))],
                    }),
                ),
            ],
            status: Some(Status {
                code: 2,
                message: "gateway".into(),
            }),
            events: vec![span::Event {
                name: "exception".into(),
                time_unix_nano: 2_000,
                attributes: vec![kv("exception.type", s("TimeoutError"))],
                ..Default::default()
            }],
            ..Default::default()
        },
        resource: Resource {
            attributes: vec![kv("service.name", s("payments"))],
            ..Default::default()
        },
        scope: InstrumentationScope {
            name: "http".into(),
            version: "1.2".into(),
            ..Default::default()
        },
    }
}

impl Fixture {
    fn data(&self) -> SpanData<'_> {
        SpanData::new(
            &self.span,
            Origin {
                resource: &self.resource,
                resource_schema_url: "https://schema/1",
                scope: &self.scope,
                scope_schema_url: "",
            },
        )
    }
}

fn eval(text: &str) -> Result<bool, EvalError> {
    let f = fixture();
    let condition = Condition::<Span>::new(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let result = condition.eval(&f.data());
    result
}

fn holds(text: &str) -> bool {
    eval(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn span_paths_read_the_span_and_its_origin() {
    for text in [
        r#"name == "GET /checkout""#,
        r#"span.name == "GET /checkout""#,
        "kind == SPAN_KIND_SERVER",
        "kind == 2",
        r#"kind.string == "Server""#,
        r#"kind.deprecated_string == "SPAN_KIND_SERVER""#,
        "status.code == STATUS_CODE_ERROR",
        r#"status.message == "gateway""#,
        r#"attributes["http.route"] == "/checkout""#,
        r#"attributes["user"]["tier"] == "gold""#,
        r#"attributes["tags"][1] == 2"#,
        r#"resource.attributes["service.name"] == "payments""#,
        r#"span.resource.attributes["service.name"] == "payments""#,
        r#"instrumentation_scope.name == "http""#,
        r#"scope.version == "1.2""#,
        r#"resource.schema_url == "https://schema/1""#,
        r#"trace_id.string == "abababababababababababababababab""#,
        "span_id == 0x0102030405060708",
        r#"parent_span_id.string == """#,
        r#"trace_state["vendor"] == "gold""#,
        r#"trace_state["absent"] == nil"#,
        "end_time_unix_nano - start_time_unix_nano == 2500",
        "flags == 257",
        "dropped_attributes_count == 0",
    ] {
        assert!(holds(text), "{text}");
    }
}

#[test]
fn comparison_rules_follow_ottl() {
    // A missing attribute is nil: == anything false, != true, orderings false.
    assert!(holds(r#"attributes["absent"] == nil"#));
    assert!(holds(r#"attributes["absent"] != "x""#));
    assert!(!holds(r#"attributes["absent"] == "x""#));
    assert!(!holds(r#"attributes["absent"] < 1"#));
    assert!(holds("nil <= nil"));
    assert!(!holds("nil < nil"));
    // Numbers compare across int and double.
    assert!(holds(r#"attributes["http.status_code"] >= 500.0"#));
    assert!(holds(r#"attributes["ratio"] < 1"#));
    // Mismatched types: unequal, unordered.
    assert!(!holds(r#"attributes["count"] == 12"#));
    assert!(holds(r#"attributes["count"] != 12"#));
    assert!(!holds(r#"attributes["count"] > 1"#));
    // Strings and bytes order bytewise; false orders before true.
    assert!(holds(r#""abc" < "abd""#));
    assert!(holds("0x01 < 0x0100"));
    assert!(holds(r#"attributes["retry"] > false"#));
    // Maps and lists compare deeply, for equality only.
    assert!(holds(
        r#"attributes["user"] == {"tier": "gold", "id": "u-1"}"#
    ));
    assert!(!holds(r#"attributes["user"] == {"tier": "gold"}"#));
    assert!(holds(r#"attributes["tags"] == ["a", 2]"#));
    assert!(!holds(r#"attributes["tags"] == ["a", 2.0]"#));
    assert!(!holds(r#"attributes["tags"] < ["b"]"#));
}

#[test]
fn boolean_operators_and_constants() {
    assert!(holds("true"));
    assert!(!holds("false"));
    assert!(holds(r#"not name == "x""#));
    assert!(holds(r#"name == "x" or kind == 2"#));
    assert!(!holds(r#"name == "x" and kind == 2"#));
    assert!(holds(
        r#"(name == "x" or kind == 2) and not (status.code == 0)"#
    ));
}

#[test]
fn converters_evaluate_as_the_collector_does() {
    assert!(holds(r#"IsMatch(name, "^GET /")"#));
    assert!(
        holds(r#"IsMatch(attributes["http.status_code"], "^5")"#),
        "ints are string-like"
    );
    assert!(
        !holds(r#"IsMatch(attributes["absent"], ".*")"#),
        "nil never matches"
    );
    assert!(holds(
        r#"not IsMatch(resource.attributes["service.name"], "^check")"#
    ));
    assert!(holds(
        r#"Concat([name, kind, nil], "|") == "GET /checkout|2|<nil>""#
    ));
    assert!(holds(r#"Concat(attributes["tags"], "") == "a2""#));
    assert!(holds(r#"Len(name) == 13"#));
    assert!(holds(
        r#"Len(attributes["tags"]) == 2 and Len(attributes["user"]) == 2"#
    ));
    assert!(holds(r#"Int(attributes["count"]) == 12"#));
    assert!(holds(r#"Int(attributes["ratio"]) == 0"#));
    assert!(holds(r#"Int("12x") == nil"#), "not an integer: nil");
    assert!(holds(r#"Double(attributes["count"]) == 12.0"#));
    assert!(holds(r#"String(attributes["raw"]) == "cafe""#));
    assert!(holds(
        r#"String(attributes["user"]) == "{\"id\":\"u-1\",\"tier\":\"gold\"}""#
    ));
    assert!(holds(
        r#"String(0.000001) == "0.000001" and String(1.0e21) == "1e+21""#
    ));
    assert!(holds(r#"IsString(name) and not IsString(kind)"#));
    assert!(holds(
        r#"IsMap(attributes["user"]) and not IsMap(attributes["tags"])"#
    ));
    assert!(holds(
        r#"IsMatch(Concat([resource.attributes["service.name"], name], ":"), "^payments:GET")"#
    ));
}

#[test]
fn arithmetic_follows_go() {
    assert!(holds("1 + 2 * 3 == 7"));
    assert!(holds("(1 + 2) * 3 == 9"));
    assert!(holds("7 / 2 == 3"), "int division truncates");
    assert!(holds("7 / 2.0 == 3.5"));
    assert!(holds("-(2 - 5) == 3"));
    assert!(
        holds("9223372036854775807 + 1 == -9223372036854775808"),
        "wraps like int64"
    );
}

#[test]
fn runtime_errors_are_errors_not_panics() {
    for (text, fragment) in [
        ("1 / 0 == 0", "divide by 0"),
        ("1.0 / 0 == 0", "divide by 0"),
        (r#"name + 1 == 0"#, "arithmetic needs ints or doubles"),
        (r#"attributes["tags"][5] == "a""#, "index 5 out of bounds"),
        (r#"attributes["tags"][-1] == "a""#, "index -1 out of bounds"),
        (
            r#"attributes["http.route"]["x"] == 1"#,
            "a string value cannot be indexed",
        ),
        (
            r#"attributes["tags"]["x"] == 1"#,
            "a list is indexed by an int",
        ),
        (r#"attributes[0] == 1"#, "a map is indexed by a string"),
        (
            r#"Len(kind) == 1"#,
            "Len: the target must be a string, a list or a map",
        ),
        (r#"Len(attributes["absent"]) == 0"#, "got nil"),
        (
            r#"Double("abc") == 1"#,
            "cannot convert the string \"abc\" to a double",
        ),
        (
            r#"Int(attributes["user"]) == 1"#,
            "cannot be converted to an int",
        ),
        (r#"Concat(name, "-") == "x""#, "vals must be a list"),
        (
            r#"Concat(["a"], kind) == "x""#,
            "expected a string but got int",
        ),
        (
            r#"String(name)"#,
            "a condition needs a bool, but String returned string",
        ),
        (r#"-name == 1"#, "cannot negate a string value"),
        (
            r#"attributes[kind] == 1"#,
            "a map is indexed by a string, not by int",
        ),
        (
            r#"attributes[attributes["user"]] == 1"#,
            "a key must be a string or an int, got map",
        ),
    ] {
        let err = eval(text).expect_err(text);
        assert!(err.to_string().contains(fragment), "{text}: {err}");
    }
    // A missing entry ends the lookup without an error.
    assert!(holds(r#"attributes["absent"]["x"][3] == nil"#));
}

#[test]
fn malformed_trace_state_is_an_error() {
    let mut f = fixture();
    f.span.trace_state = "a=1,broken".into();
    let c = Condition::<Span>::new(r#"trace_state["a"] == "1""#).unwrap();
    assert!(c
        .eval(&f.data())
        .unwrap_err()
        .to_string()
        .contains("invalid tracestate"));
}

#[test]
fn span_event_context_reads_the_event_its_span_and_origin() {
    let f = fixture();
    let data = SpanEventData {
        event: &f.span.events[0],
        index: 0,
        span: f.data(),
    };
    for text in [
        r#"name == "exception""#,
        r#"spanevent.name == "exception""#,
        r#"attributes["exception.type"] == "TimeoutError""#,
        "time_unix_nano == 2000",
        "event_index == 0",
        r#"span.name == "GET /checkout""#,
        r#"span.attributes["http.route"] == "/checkout""#,
        "span.kind == SPAN_KIND_SERVER",
        r#"resource.attributes["service.name"] == "payments""#,
    ] {
        let c = Condition::<SpanEvent>::new(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(c.eval(&data).unwrap(), "{text}");
    }
    let err = Condition::<SpanEvent>::new("span.events == 1").unwrap_err();
    assert!(
        err.to_string().contains("in the spanevent context"),
        "{err}"
    );
    assert!(Condition::<SpanEvent>::new(r#"span.resource.attributes["x"] == 1"#).is_err());
}

#[test]
fn paths_are_listed_for_what_a_condition_reads() {
    use contexts::SpanPath;
    let c = Condition::<Span>::new(
        r#"IsMatch(attributes["a"], "x") or resource.attributes[name] == 1 and kind == 2"#,
    )
    .unwrap();
    let paths: Vec<&SpanPath> = c.paths();
    assert_eq!(
        paths,
        vec![
            &SpanPath::Attributes,
            &SpanPath::Resource(contexts::ResourcePath::Attributes),
            &SpanPath::Name,
            &SpanPath::Kind
        ]
    );
}

#[test]
fn condition_sequences_follow_the_error_mode() {
    let f = fixture();
    let conditions = vec![
        "1 / 0 == 0".to_string(),
        r#"name == "GET /checkout""#.to_string(),
    ];
    let mut ignored = Vec::new();
    let propagate = ConditionSequence::<Span>::new(&conditions, ErrorMode::Propagate).unwrap();
    let (index, err) = propagate
        .eval(&f.data(), &mut |_, e| ignored.push(e.clone()))
        .unwrap_err();
    assert_eq!(index, 0);
    assert!(err.to_string().contains("divide by 0"));
    assert!(ignored.is_empty());

    let ignore = ConditionSequence::<Span>::new(&conditions, ErrorMode::Ignore).unwrap();
    assert_eq!(
        ignore.eval(&f.data(), &mut |_, e| ignored.push(e.clone())),
        Ok(true)
    );
    assert_eq!(ignored.len(), 1);

    ignored.clear();
    let silent = ConditionSequence::<Span>::new(&conditions[..1], ErrorMode::Silent).unwrap();
    assert_eq!(
        silent.eval(&f.data(), &mut |_, e| ignored.push(e.clone())),
        Ok(false)
    );
    assert!(ignored.is_empty(), "silent reports nothing");

    let (index, err) =
        ConditionSequence::<Span>::new(&["true".into(), "Foo()".into()], ErrorMode::Ignore)
            .unwrap_err();
    assert_eq!(index, 1);
    assert!(err
        .to_string()
        .starts_with("column 1: unsupported OTTL function \"Foo\""));
}

#[test]
fn error_mode_decodes_the_collector_names() {
    for (text, mode) in [
        ("ignore", ErrorMode::Ignore),
        ("silent", ErrorMode::Silent),
        ("propagate", ErrorMode::Propagate),
    ] {
        assert_eq!(serde_yaml::from_str::<ErrorMode>(text).unwrap(), mode);
    }
    assert!(serde_yaml::from_str::<ErrorMode>("loud").is_err());
    assert_eq!(ErrorMode::default(), ErrorMode::Propagate);
}

#[test]
fn arbitrary_text_never_panics() {
    // A cheap in-test fuzz: every prefix and every single-byte mutation of a rich condition.
    let rich = r#"not (IsMatch(Concat([name, attributes["a"]["b"][0]], delimiter = "-"), "^x") or kind >= SPAN_KIND_SERVER) and -1.5e3 * (2 + Len(resource.attributes)) != 0x0aff or {"k": [nil, true]} == nil"#;
    let bytes = rich.as_bytes();
    for end in 0..=bytes.len() {
        if let Ok(text) = std::str::from_utf8(&bytes[..end]) {
            let _ = Condition::<Span>::new(text);
            let _ = parse_statement(text);
        }
    }
    let f = fixture();
    for i in 0..bytes.len() {
        for replacement in [
            b'(', b')', b'"', b'[', b']', b' ', b'-', b'0', b'a', b'Z', b',', b'=',
        ] {
            let mut mutated = bytes.to_vec();
            mutated[i] = replacement;
            if let Ok(text) = std::str::from_utf8(&mutated) {
                if let Ok(c) = Condition::<Span>::new(text) {
                    let _ = c.eval(&f.data());
                }
            }
        }
    }
}
