//! `weft validate` on the fixtures under testdata/config: one fixture per kind of mistake,
//! each checked for the path and message it reports, and the exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/config")
        .join(name)
}

fn validate(name: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["validate", "--config"])
        .arg(fixture(name))
        // The fixtures' variables are set or unset here, for the child only.
        .env_remove("WEFT_FIXTURE_UNSET_ENDPOINT")
        .env_remove("BACKEND_ENDPOINT")
        .output()
        .expect("weft runs")
}

/// Runs validate on an invalid fixture and returns its stderr lines.
fn errors_of(name: &str) -> Vec<String> {
    let out = validate(name);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name} must be rejected with exit 1:\n{stderr}"
    );
    stderr.lines().map(str::to_string).collect()
}

fn assert_reported(lines: &[String], expected: &str) {
    assert!(
        lines.iter().any(|l| l.contains(expected)),
        "expected a line containing {expected:?}, got:\n{}",
        lines.join("\n")
    );
}

#[test]
fn a_collector_config_is_valid_and_unused_components_are_warnings() {
    let out = validate("valid.yaml");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
    assert!(
        stderr.contains(
            "warning: exporters::debug/unused: exporter \"debug/unused\" is defined but not used"
        ),
        "{stderr}"
    );
}

#[test]
fn a_typo_names_the_mapping_and_the_expected_key() {
    let lines = errors_of("typo_key.yaml");
    assert_reported(
        &lines,
        "error: receivers::otlp: unknown field \"protocls\", expected",
    );
    assert_reported(&lines, "\"protocols\"");
}

#[test]
fn a_bad_enum_lists_the_allowed_values() {
    let lines = errors_of("bad_enum.yaml");
    assert_reported(
        &lines,
        "error: exporters::debug::verbosity: unknown variant \"loud\", expected one of \"basic\", \"normal\", \"detailed\"",
    );
}

#[test]
fn a_bad_duration_shows_the_expected_form() {
    let lines = errors_of("bad_duration.yaml");
    assert_reported(
        &lines,
        "error: processors::batch::timeout: invalid duration \"5 parsecs\"",
    );
    assert_reported(&lines, "like \"5s\"");
}

#[test]
fn an_undefined_reference_is_reported_where_it_is_used() {
    let lines = errors_of("undefined_reference.yaml");
    assert_reported(
        &lines,
        "error: service::pipelines::traces::processors[0]: references processor \"batch\" which is not defined under processors",
    );
    assert_reported(
        &lines,
        "error: service::pipelines::traces::exporters[1]: references exporter \"otlp/missing\" which is not defined under exporters",
    );
}

#[test]
fn a_missing_env_var_without_default_is_an_error() {
    let lines = errors_of("missing_env.yaml");
    assert_reported(
        &lines,
        "error: receivers::otlp::protocols::grpc::endpoint: environment variable \"WEFT_FIXTURE_UNSET_ENDPOINT\" is not set",
    );
}

#[test]
fn an_env_var_set_for_the_process_is_expanded() {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["validate", "--config"])
        .arg(fixture("missing_env.yaml"))
        .env("WEFT_FIXTURE_UNSET_ENDPOINT", "127.0.0.1:14317")
        .output()
        .expect("weft runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_address_is_reported() {
    let lines = errors_of("bad_address.yaml");
    assert_reported(
        &lines,
        "error: receivers::otlp::protocols::grpc::endpoint: invalid address \"localhost:99999\"",
    );
}

#[test]
fn several_errors_are_reported_at_once() {
    let lines = errors_of("several_errors.yaml");
    assert_reported(
        &lines,
        "error: receivers::otlp::protocols::grpc: unknown field \"endpont\"",
    );
    assert_reported(
        &lines,
        "error: processors::batch::timeout: invalid duration \"soon\"",
    );
    assert_reported(&lines, "error: processors::memory_limiter");
    assert_reported(
        &lines,
        "error: exporters::debug::verbosity: unknown variant \"chatty\"",
    );
    assert_reported(
        &lines,
        "error: service::pipelines::traces::receivers[1]: references receiver \"zipkin\"",
    );
    assert_reported(&lines, "configuration is invalid: 5 error(s)");
}

#[test]
fn a_missing_file_is_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["validate", "--config", "/nonexistent/weft.yaml"])
        .output()
        .expect("weft runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read config file /nonexistent/weft.yaml"));
}

#[test]
fn the_default_config_is_valid_and_components_are_listed() {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("validate")
        .output()
        .expect("weft runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("components")
        .output()
        .expect("weft runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    for name in [
        "otlp",
        "batch",
        "memory_limiter",
        "otlphttp",
        "debug",
        "file",
        "health_check",
    ] {
        assert!(listing.contains(name), "{name} missing from:\n{listing}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("--version")
        .output()
        .expect("weft runs");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("weft "));
}

#[test]
fn every_shipped_example_config_is_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("config/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            // governance.yaml reads its JSON Schema from where WEFT_LOG_SCHEMA says (its
            // README section sets it the same way): the schema file shipped beside it.
            let out = Command::new(env!("CARGO_BIN_EXE_weft"))
                .args(["validate", "--config"])
                .arg(&path)
                .env("WEFT_LOG_SCHEMA", dir.join("log-record.schema.json"))
                .output()
                .expect("weft runs");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}:\n{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 1,
        "no example configs found in {}",
        dir.display()
    );
}

#[test]
fn a_sending_queue_storage_must_name_a_running_extension() {
    let lines = errors_of("undefined_storage.yaml");
    assert_reported(&lines, "error: exporters::otlp::sending_queue::storage:");
    assert_reported(&lines, "file_storage/missing");
}

#[test]
fn receiver_limits_are_checked() {
    let lines = errors_of("bad_limits.yaml");
    assert_reported(
        &lines,
        "error: receivers::otlp::limits::max_attributes: must be at least 1",
    );
    assert_reported(
        &lines,
        "error: receivers::otlp::limits::max_any_value_depth: must be from 1 to 28",
    );
}

#[test]
fn filelog_operators_are_checked_with_their_paths() {
    let lines = errors_of("bad_operators.yaml");
    assert_reported(
        &lines,
        "error: receivers::filelog::operators[0]: container reads attributes[\"log.file.path\"]: set include_file_path: true",
    );
    assert_reported(
        &lines,
        "error: receivers::filelog::operators[1]::type: unknown operator type \"json_parsr\", expected one of \"container\", \"json_parser\"",
    );
    assert_reported(
        &lines,
        "error: receivers::filelog::operators[2]: unknown field \"parse_form\"",
    );
    assert_reported(
        &lines,
        "error: receivers::filelog::operators[3]::from: invalid field \"msg\"",
    );
    assert_reported(&lines, "receivers::filelog::storage");
}

#[test]
fn components_that_take_no_metrics_say_so_at_their_place() {
    let lines = errors_of("metrics_unsupported.yaml");
    assert_reported(
        &lines,
        "error: service::pipelines::metrics::processors[0]: processor \"tail_sampling\" does not support metrics pipelines (it takes traces and logs)",
    );
    assert_reported(
        &lines,
        "error: service::pipelines::metrics::exporters[1]: exporter \"elasticsearch\" does not support metrics pipelines (it takes",
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error:")).count(),
        2,
        "{lines:#?}"
    );
}

#[test]
fn a_routing_key_a_signal_cannot_take_is_named_at_its_key() {
    let lines = errors_of("routing_key_signal.yaml");
    assert_reported(
        &lines,
        "error: exporters::loadbalancing::routing_key: \"traceID\" cannot route metrics, and a metrics pipeline lists this exporter; metrics take \"service\" (the default), \"resource\", \"metric\" or \"streamID\"",
    );
    assert_reported(
        &lines,
        "error: exporters::loadbalancing/metrics::routing_key: \"streamID\" cannot route traces, and a traces pipeline lists this exporter; traces take \"traceID\" (the default) or \"service\"",
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error:")).count(),
        2,
        "{lines:#?}"
    );
}
