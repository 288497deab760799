use super::*;
use serde::Deserialize;

fn no_env(_: &str) -> Option<String> {
    None
}

fn messages(text: &str) -> Vec<String> {
    let mut d = Diagnostics::new();
    parse_document(text, &no_env, &mut d);
    d.iter().map(|d| d.to_string()).collect()
}

#[test]
fn a_valid_layout_has_no_diagnostics() {
    let msgs = messages(
        "receivers: {otlp: }\nprocessors: {batch: }\nexporters: {debug: }\nextensions: {health_check: }\n\
         service:\n  extensions: [health_check]\n  pipelines:\n    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}\n    logs/x: {receivers: [otlp], exporters: [debug]}\n  telemetry: {logs: {level: debug, encoding: json}, metrics: {address: 'localhost:9999'}}",
    );
    assert!(msgs.is_empty(), "{msgs:?}");
}

#[test]
fn every_layout_problem_is_reported_at_once() {
    let msgs = messages(
        "receivers: {otlp: }\nexporters: {debug: , otlp/unused: }\nrecievers: {}\n\
         service:\n  pipelines:\n    traces: {receivers: [otlp, zipkin], exporters: [debug]}\n    logs: {receivers: [otlp], exporters: []}\n    profiles: {receivers: [otlp], exporters: [debug]}\n    traces/a: {receivers: [otlp], exporter: [debug]}\n  telemetry: {logs: {level: loud}}",
    );
    let expect = [
        "error: <root>: unknown field \"recievers\"",
        "error: service::pipelines::traces::receivers[1]: references receiver \"zipkin\" which is not defined under receivers",
        "error: service::pipelines::logs: pipeline has no exporters",
        "error: service::pipelines::profiles: pipeline \"profiles\": Weft carries traces, logs and metrics; profiles pipelines are not supported",
        "error: service::pipelines::traces/a: unknown field \"exporter\", expected one of \"receivers\", \"processors\", \"exporters\"",
        "error: service::telemetry::logs::level: unknown variant \"loud\", expected one of \"debug\", \"info\", \"warn\", \"error\"",
        "warning: exporters::otlp/unused: exporter \"otlp/unused\" is defined but not used in any pipeline",
    ];
    for e in expect {
        assert!(
            msgs.iter().any(|m| m.starts_with(e)),
            "missing {e:?} in {msgs:#?}"
        );
    }
    assert_eq!(msgs.len(), expect.len(), "{msgs:#?}");
}

#[test]
fn component_ids_are_checked() {
    let msgs = messages("receivers: {'otlp/': , '9x': }\nservice: {pipelines: {}}");
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(msgs[0].contains("receivers::otlp/: invalid component id"));
    assert!(msgs[1].contains("receivers::9x: invalid component id"));
    assert!(msgs[2].contains("no pipelines"));
}

#[test]
fn yaml_syntax_errors_carry_the_location() {
    let msgs = messages("receivers:\n  otlp: [\n");
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].contains("not valid YAML") && msgs[0].contains("line"),
        "{msgs:?}"
    );
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Sample {
    #[serde(deserialize_with = "present")]
    grpc: Option<Inner>,
    timeout: Duration,
    list: Vec<Inner>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Inner {
    endpoint: Option<Endpoint>,
}

impl ComponentConfig for Sample {}

fn decode(yaml: &str) -> (Option<Sample>, Vec<String>) {
    let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let mut d = Diagnostics::new();
    let path = ConfigPath::root().key("receivers").key("sample");
    let s = decode_component::<Sample>(&v, &path, &mut d);
    (s, d.iter().map(|d| d.to_string()).collect())
}

#[test]
fn component_errors_name_the_mapping_that_holds_the_bad_key() {
    let (_, msgs) = decode("grpc: {endpont: 'x:1'}");
    assert_eq!(
        msgs,
        ["error: receivers::sample::grpc: unknown field \"endpont\", expected \"endpoint\""]
    );
    let (_, msgs) = decode("list: [{}, {endpoint: 'nope'}]");
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0]
            .starts_with("error: receivers::sample::list[1]::endpoint: invalid address \"nope\""),
        "{msgs:?}"
    );
    let (_, msgs) = decode("timeout: 5");
    assert!(
        msgs[0].starts_with("error: receivers::sample::timeout: invalid duration 5"),
        "{msgs:?}"
    );
}

#[test]
fn present_sections_default_and_absent_ones_stay_off() {
    let (s, msgs) = decode("grpc:");
    assert!(msgs.is_empty());
    assert!(s.unwrap().grpc.is_some());
    let (s, _) = decode("timeout: 1s");
    assert!(s.unwrap().grpc.is_none());
    let (s, _) = decode("~");
    assert!(s.unwrap().grpc.is_none());
}
