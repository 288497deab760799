//! Tests of the policy list as a whole: decoding and validation with paths, building, and the
//! Collector's combination of per-policy decisions. Each policy family has its own tests next
//! to its code.

use std::time::Duration;

use weft_config::{decode_with_path, ConfigPath, Diagnostics};
use weft_proto::trace::v1::status::StatusCode;
use weft_proto::trace::v1::Span;

use super::testutil::*;
use super::*;

fn base_path() -> ConfigPath {
    ConfigPath::root()
        .key("processors")
        .key("tail_sampling")
        .key("policies")
}

/// Decodes and validates a `policies:` list the way the processor's config does.
fn check(yaml: &str) -> (Option<Vec<PolicyConfig>>, Diagnostics) {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test YAML parses");
    let mut diags = Diagnostics::new();
    let decoded = decode_with_path::<Vec<PolicyConfig>>(&value, &base_path(), &mut diags);
    if let Some(list) = &decoded {
        validate_policies(list, &base_path(), &mut diags);
    }
    (decoded, diags)
}

fn errors(diags: &Diagnostics) -> Vec<String> {
    diags
        .errors()
        .map(|d| format!("{}: {}", d.path, d.message))
        .collect()
}

fn warnings(diags: &Diagnostics) -> Vec<String> {
    diags
        .warnings()
        .map(|d| format!("{}: {}", d.path, d.message))
        .collect()
}

fn assert_error(diags: &Diagnostics, path: &str, fragment: &str) {
    let all = errors(diags);
    assert!(
        all.iter()
            .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(fragment)),
        "no error at {path} containing {fragment:?}; errors: {all:#?}"
    );
}

fn policies(yaml: &str) -> Policies {
    let (decoded, diags) = check(yaml);
    assert!(!diags.has_errors(), "{}", diags);
    Policies::new(&decoded.unwrap()).expect("valid policies build")
}

/// The Collector README's example policies, unchanged (minus the types Weft does not have:
/// bytes_limiting and ottl_condition).
const COLLECTOR_EXAMPLE: &str = r#"
[
  { name: test-policy-1, type: always_sample },
  { name: test-policy-2, type: latency, latency: {threshold_ms: 5000, upper_threshold_ms: 10000} },
  { name: test-policy-3, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100} },
  { name: test-policy-4, type: probabilistic, probabilistic: {sampling_percentage: 10} },
  { name: test-policy-5, type: status_code, status_code: {status_codes: [ERROR, UNSET]} },
  { name: test-policy-6, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]} },
  { name: test-policy-7, type: string_attribute, string_attribute: {key: key2, values: [value1, val*], enabled_regex_matching: true, cache_max_size: 10} },
  { name: test-policy-8, type: rate_limiting, rate_limiting: {spans_per_second: 35} },
  { name: test-policy-10, type: span_count, span_count: {min_spans: 2, max_spans: 20} },
  { name: test-policy-11, type: trace_state, trace_state: { key: key3, values: [value1, value2] } },
  { name: test-policy-12, type: boolean_attribute, boolean_attribute: {key: key4, value: true} },
  {
    name: and-policy-1, type: and,
    and: { and_sub_policy: [
      { name: test-and-policy-1, type: numeric_attribute, numeric_attribute: { key: key1, min_value: 50, max_value: 100 } },
      { name: test-and-policy-2, type: string_attribute, string_attribute: { key: key2, values: [ value1, value2 ] } },
    ] }
  },
  {
    name: drop-policy-1, type: drop,
    drop: { drop_sub_policy: [
      { name: test-drop-policy-1, type: string_attribute, string_attribute: {key: url.path, values: [\/health, \/metrics], enabled_regex_matching: true} }
    ] }
  },
  {
    name: composite-policy-1, type: composite,
    composite: {
      max_total_spans_per_second: 1000,
      policy_order: [test-composite-policy-1, test-composite-policy-2, test-composite-policy-3],
      composite_sub_policy: [
        { name: test-composite-policy-1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50} },
        { name: test-composite-policy-2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]} },
        { name: test-composite-policy-3, type: always_sample }
      ],
      rate_allocation: [
        { policy: test-composite-policy-1, percent: 50 },
        { policy: test-composite-policy-2, percent: 25 }
      ]
    }
  },
]
"#;

#[test]
fn collector_example_decodes_validates_and_builds() {
    let (decoded, diags) = check(COLLECTOR_EXAMPLE);
    assert!(!diags.has_errors(), "{diags}");
    // The only remark: the composite sub-policy without an allocation never samples.
    assert_eq!(
        warnings(&diags),
        vec![
            "processors::tail_sampling::policies[13]::composite::composite_sub_policy[2]: \"test-composite-policy-3\" has no rate_allocation entry, so (as in the Collector) it has no budget and never keeps a trace: add `{policy: test-composite-policy-3, percent: N}`"
        ]
    );
    let built = Policies::new(&decoded.unwrap()).unwrap();
    assert_eq!(built.len(), 14);
    // Drop policies are evaluated first.
    assert_eq!(built.names().next(), Some("drop-policy-1"));
}

#[test]
fn log_policies_decode() {
    let built = policies(
        r#"
        - name: errors-in-logs
          type: log_severity
          log_severity: {min_severity: error}
        - name: numeric-severity
          type: log_severity
          log_severity: {min_severity: 13}
        - name: declined
          type: log_body
          log_body: {values: ["payment .* declined"], enabled_regex_matching: true}
        - name: gold
          type: log_attribute
          log_attribute: {key: user.tier, values: [gold], invert_match: false}
        "#,
    );
    assert_eq!(
        built.names().collect::<Vec<_>>(),
        vec!["errors-in-logs", "numeric-severity", "declined", "gold"]
    );
}

#[test]
fn unknown_keys_and_types_are_errors_with_their_path() {
    let (_, diags) = check("[{name: a, type: latency, latency: {threshold: 5}}]");
    assert_error(
        &diags,
        "processors::tail_sampling::policies[0]::latency",
        "unknown field \"threshold\"",
    );

    let (_, diags) = check("[{name: a, type: always_sample}, {name: b, type: slow}]");
    assert_error(
        &diags,
        "processors::tail_sampling::policies[1]::type",
        "unknown variant \"slow\"",
    );

    let (_, diags) = check("[{name: a, type: always_sample, sampling_percentage: 5}]");
    assert_error(
        &diags,
        "processors::tail_sampling::policies[0]",
        "unknown field \"sampling_percentage\"",
    );
}

#[test]
fn missing_or_foreign_settings_sections_are_errors() {
    let (_, diags) = check(
        r#"
        - {name: ok, type: always_sample}
        - {name: b, type: status_code, status_code: {status_codes: [ERROR]}}
        - {name: slow, type: latency}
        - {name: mixed, type: latency, latency: {threshold_ms: 10}, status_code: {status_codes: [OK]}}
        "#,
    );
    assert_error(
        &diags,
        "processors::tail_sampling::policies[2]::latency",
        "required for a policy of type \"latency\"",
    );
    assert_error(
        &diags,
        "processors::tail_sampling::policies[3]::status_code",
        "settings for type \"status_code\", but this policy's type is \"latency\"",
    );
    assert_eq!(errors(&diags).len(), 2, "{diags}");

    // A present but empty section counts as present (and is then validated).
    let (_, diags) = check("[{name: r, type: rate_limiting, rate_limiting: }]");
    assert_error(
        &diags,
        "processors::tail_sampling::policies[0]::rate_limiting::spans_per_second",
        "must be greater than 0",
    );
}

#[test]
fn names_are_required_and_unique_among_siblings() {
    let (_, diags) = check(
        r#"
        - {type: always_sample}
        - {name: dup, type: always_sample}
        - {name: dup, type: always_sample}
        - name: and
          type: and
          and:
            and_sub_policy:
              - {name: dup, type: always_sample}
              - {name: x, type: always_sample}
              - {name: x, type: always_sample}
        "#,
    );
    assert_error(
        &diags,
        "processors::tail_sampling::policies[0]::name",
        "required",
    );
    assert_error(
        &diags,
        "processors::tail_sampling::policies[2]::name",
        "duplicate policy name \"dup\"",
    );
    // The same name in a sub-list is fine; a duplicate inside it is not.
    assert_error(
        &diags,
        "processors::tail_sampling::policies[3]::and::and_sub_policy[2]::name",
        "duplicate policy name \"x\"",
    );
    assert_eq!(errors(&diags).len(), 3, "{diags}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let (_, diags) = check(
        r#"
        - {name: a, type: status_code, status_code: {status_codes: [ERROR, error, FAILED]}}
        - {name: b, type: status_code, status_code: {status_codes: []}}
        - {name: c, type: string_attribute, string_attribute: {key: "", values: ["(unclosed", "ok", "[z-a]"], enabled_regex_matching: true}}
        - {name: d, type: numeric_attribute, numeric_attribute: {key: k}}
        - {name: e, type: numeric_attribute, numeric_attribute: {key: k, min_value: 10, max_value: 5}}
        - {name: f, type: latency, latency: {threshold_ms: 2000, upper_threshold_ms: 1000}}
        - {name: g, type: span_count, span_count: {min_spans: 5, max_spans: 2}}
        - {name: h, type: log_severity, log_severity: {min_severity: LOUD}}
        - {name: i, type: log_severity, log_severity: {min_severity: 30}}
        - {name: j, type: log_severity, log_severity: {}}
        - {name: k, type: log_body, log_body: {values: ["a("], enabled_regex_matching: true}}
        - {name: l, type: log_attribute, log_attribute: {values: [x]}}
        - {name: m, type: trace_state, trace_state: {key: k, values: []}}
        - {name: n, type: rate_limiting, rate_limiting: {spans_per_second: 10, burst_capacity: -1}}
        - {name: o, type: probabilistic, probabilistic: {sampling_percentage: .nan}}
        - {name: p, type: boolean_attribute, boolean_attribute: {value: true}}
        "#,
    );
    let p = "processors::tail_sampling::policies";
    for (path, fragment) in [
        (
            format!("{p}[0]::status_code::status_codes[1]"),
            "unknown status code \"error\"",
        ),
        (
            format!("{p}[0]::status_code::status_codes[2]"),
            "unknown status code \"FAILED\"",
        ),
        (
            format!("{p}[1]::status_code::status_codes"),
            "at least one status code",
        ),
        (format!("{p}[2]::string_attribute::key"), "required"),
        (
            format!("{p}[2]::string_attribute::values[0]"),
            "invalid regular expression \"(unclosed\"",
        ),
        (
            format!("{p}[2]::string_attribute::values[2]"),
            "invalid regular expression \"[z-a]\"",
        ),
        (
            format!("{p}[3]::numeric_attribute"),
            "set min_value, max_value or both",
        ),
        (
            format!("{p}[4]::numeric_attribute::max_value"),
            "min_value (10)",
        ),
        (
            format!("{p}[5]::latency::upper_threshold_ms"),
            "greater than threshold_ms (2000)",
        ),
        (format!("{p}[6]::span_count::max_spans"), "min_spans (5)"),
        (
            format!("{p}[7]::log_severity::min_severity"),
            "invalid severity \"LOUD\"",
        ),
        (
            format!("{p}[8]::log_severity::min_severity"),
            "invalid severity 30",
        ),
        (format!("{p}[9]::log_severity::min_severity"), "required"),
        (
            format!("{p}[10]::log_body::values[0]"),
            "invalid regular expression",
        ),
        (format!("{p}[11]::log_attribute::key"), "required"),
        (
            format!("{p}[12]::trace_state::values"),
            "at least one value",
        ),
        (
            format!("{p}[13]::rate_limiting::burst_capacity"),
            "0 (twice spans_per_second) or more",
        ),
        (
            format!("{p}[14]::probabilistic::sampling_percentage"),
            "from 0 to 100",
        ),
        (format!("{p}[15]::boolean_attribute::key"), "required"),
    ] {
        assert_error(&diags, &path, fragment);
    }
    assert_eq!(errors(&diags).len(), 19, "{diags}");
}

#[test]
fn out_of_range_percentage_is_a_warning_as_the_collector_runs_it() {
    let (_, diags) = check(
        "[{name: a, type: probabilistic, probabilistic: {sampling_percentage: 150}}, {name: b, type: probabilistic, probabilistic: {sampling_percentage: -5}}]",
    );
    assert!(!diags.has_errors(), "{diags}");
    assert_eq!(warnings(&diags).len(), 2, "{diags}");
}

#[test]
fn nesting_follows_the_collector() {
    let (_, diags) = check(
        r#"
        - name: a
          type: and
          and:
            and_sub_policy:
              - {name: inner, type: and, and: {and_sub_policy: [{name: x, type: always_sample}]}}
        - name: d
          type: drop
          drop:
            drop_sub_policy:
              - {name: inner, type: composite, composite: {max_total_spans_per_second: 1, composite_sub_policy: [{name: y, type: always_sample}]}}
        - name: c
          type: composite
          composite:
            max_total_spans_per_second: 100
            composite_sub_policy:
              - {name: ok, type: and, and: {and_sub_policy: [{name: z, type: always_sample}]}}
              - {name: bad, type: drop, drop: {drop_sub_policy: [{name: z, type: always_sample}]}}
            rate_allocation: [{policy: ok, percent: 50}, {policy: bad, percent: 50}]
        - {name: e, type: and, and: {and_sub_policy: []}}
        "#,
    );
    let p = "processors::tail_sampling::policies";
    assert_error(
        &diags,
        &format!("{p}[0]::and::and_sub_policy[0]::type"),
        "type \"and\" cannot be nested in and_sub_policy",
    );
    assert_error(
        &diags,
        &format!("{p}[1]::drop::drop_sub_policy[0]::type"),
        "type \"composite\" cannot be nested in drop_sub_policy",
    );
    assert_error(
        &diags,
        &format!("{p}[2]::composite::composite_sub_policy[1]::type"),
        "type \"drop\" cannot be nested in composite_sub_policy",
    );
    assert_error(
        &diags,
        &format!("{p}[3]::and::and_sub_policy"),
        "at least one sub-policy",
    );
    assert_eq!(errors(&diags).len(), 4, "{diags}");
}

#[test]
fn composite_references_are_checked() {
    let (_, diags) = check(
        r#"
        - name: c
          type: composite
          composite:
            max_total_spans_per_second: 0
            policy_order: [a, typo, a]
            composite_sub_policy:
              - {name: a, type: always_sample}
              - {name: b, type: always_sample}
            rate_allocation:
              - {policy: a, percent: 80}
              - {policy: a, percent: 10}
              - {policy: bee, percent: 30}
        "#,
    );
    let c = "processors::tail_sampling::policies[0]::composite";
    assert_error(
        &diags,
        &format!("{c}::max_total_spans_per_second"),
        "greater than 0",
    );
    assert_error(
        &diags,
        &format!("{c}::policy_order[1]"),
        "\"typo\" is not the name of a composite_sub_policy",
    );
    assert_error(&diags, &format!("{c}::policy_order[2]"), "listed twice");
    assert_error(
        &diags,
        &format!("{c}::rate_allocation[1]::policy"),
        "two rate allocations",
    );
    assert_error(
        &diags,
        &format!("{c}::rate_allocation[2]::policy"),
        "\"bee\" is not the name",
    );
    assert_eq!(errors(&diags).len(), 5, "{diags}");
    let warned = warnings(&diags);
    assert!(
        warned.iter().any(|w| w.starts_with(&format!(
            "{c}::composite_sub_policy[1]: \"b\" has no rate_allocation"
        ))),
        "{warned:#?}"
    );
    assert!(
        warned.iter().any(|w| w.starts_with(&format!(
            "{c}::composite_sub_policy[1]: \"b\" is not in policy_order"
        ))),
        "{warned:#?}"
    );
    assert!(
        warned
            .iter()
            .any(|w| w.starts_with(&format!("{c}::rate_allocation: percentages add up to 120"))),
        "{warned:#?}"
    );
}

#[test]
fn empty_policy_list_is_an_error() {
    let (_, diags) = check("[]");
    assert_error(
        &diags,
        "processors::tail_sampling::policies",
        "at least one policy is required",
    );
}

#[test]
fn policies_new_reports_every_error_with_its_path() {
    let configs: Vec<PolicyConfig> = serde_yaml::from_str(
        "[{name: a, type: latency}, {name: a, type: status_code, status_code: {status_codes: [BAD]}}]",
    )
    .unwrap();
    let err = Policies::new(&configs).unwrap_err();
    assert!(err.contains("policies[0]::latency: required"), "{err}");
    assert!(
        err.contains("policies[1]::name: duplicate policy name"),
        "{err}"
    );
    assert!(
        err.contains("policies[1]::status_code::status_codes[0]: unknown status code \"BAD\""),
        "{err}"
    );
}

#[test]
fn build_without_validation_fails_without_panicking() {
    let config = PolicyConfig {
        name: "x".into(),
        policy_type: Some(PolicyType::Latency),
        ..Default::default()
    };
    assert!(config.build().is_err());
}

// ---- Combination of decisions, as in the Collector's processor ----

#[test]
fn any_sampled_keeps_the_trace_and_names_the_first_sampler() {
    let built = policies(
        r#"
        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
        - {name: slow, type: latency, latency: {threshold_ms: 1000}}
        - {name: big, type: span_count, span_count: {min_spans: 2}}
        "#,
    );
    let slow_and_big = trace_of(vec![span_ms(0, 1500), span_ms(10, 20)]);
    let verdict = built.decide(&slow_and_big, now());
    assert!(verdict.sampled);
    assert_eq!(verdict.decision, Decision::Sampled);
    assert_eq!(verdict.policy.as_deref(), Some("slow"));
    assert_eq!(
        verdict.per_policy,
        vec![
            ("errors".to_string(), Decision::NotSampled),
            ("slow".to_string(), Decision::Sampled),
            ("big".to_string(), Decision::Sampled),
        ]
    );

    let fast = trace_of(vec![span_ms(0, 10)]);
    let verdict = built.decide(&fast, now());
    assert!(!verdict.sampled);
    assert_eq!(verdict.decision, Decision::NotSampled);
    assert_eq!(verdict.policy, None);
    assert_eq!(verdict.per_policy.len(), 3);
}

#[test]
fn a_trace_kept_only_because_of_its_logs() {
    let built = policies(
        r#"
        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
        - {name: error-logs, type: log_severity, log_severity: {min_severity: ERROR}}
        "#,
    );
    let origin = std::sync::Arc::new(super::super::trace::Origin::default());
    let ok_spans_error_log = trace_from(
        vec![
            (origin.clone(), span_status(StatusCode::Ok)),
            (origin.clone(), span_status(StatusCode::Ok)),
        ],
        vec![
            (origin.clone(), log_severity(9, "INFO")),
            (origin.clone(), log_severity(17, "ERROR")),
        ],
    );
    let verdict = built.decide(&ok_spans_error_log, now());
    assert!(verdict.sampled);
    assert_eq!(verdict.policy.as_deref(), Some("error-logs"));

    let ok_spans_info_logs = trace_from(
        vec![(origin.clone(), span_status(StatusCode::Ok))],
        vec![(origin, log_severity(9, "INFO"))],
    );
    assert!(!built.decide(&ok_spans_info_logs, now()).sampled);
}

#[test]
fn drop_overrides_everything_and_stops_evaluation() {
    let built = policies(
        r#"
        - {name: all, type: always_sample}
        - {name: limit, type: rate_limiting, rate_limiting: {spans_per_second: 1, burst_capacity: 1}}
        - name: no-health
          type: drop
          drop:
            drop_sub_policy:
              - {name: health, type: string_attribute, string_attribute: {key: http.route, values: [/health]}}
        "#,
    );
    let health = trace_of(vec![span_with(&[("http.route", s("/health"))])]);
    let verdict = built.decide(&health, now());
    assert!(!verdict.sampled);
    assert_eq!(verdict.decision, Decision::Dropped);
    assert_eq!(verdict.policy, None);
    // The drop policy ran first and stopped evaluation: the rate limiter was not charged.
    assert_eq!(
        verdict.per_policy,
        vec![("no-health".to_string(), Decision::Dropped)]
    );
    let checkout = trace_of(vec![span_with(&[("http.route", s("/checkout"))])]);
    let verdict = built.decide(&checkout, now());
    assert!(verdict.sampled);
    assert_eq!(verdict.policy.as_deref(), Some("all"));
    assert_eq!(
        verdict.per_policy,
        vec![
            ("no-health".to_string(), Decision::NotSampled),
            ("all".to_string(), Decision::Sampled),
            ("limit".to_string(), Decision::Sampled),
        ]
    );
}

#[test]
fn invert_not_sampled_overrides_sampled() {
    let built = policies(
        r#"
        - {name: all, type: always_sample}
        - {name: not-internal, type: string_attribute, string_attribute: {key: team, values: [internal], invert_match: true}}
        "#,
    );
    let internal = trace_of(vec![span_with(&[("team", s("internal"))])]);
    let verdict = built.decide(&internal, now());
    assert!(!verdict.sampled);
    assert_eq!(verdict.decision, Decision::NotSampled);
    assert_eq!(
        verdict.per_policy[1],
        ("not-internal".to_string(), Decision::InvertNotSampled)
    );
}

#[test]
fn invert_sampled_keeps_only_without_a_not_sampled() {
    let inverted_alone = policies(
        "[{name: not-a, type: string_attribute, string_attribute: {key: team, values: [a], invert_match: true}}]",
    );
    let team_b = trace_of(vec![span_with(&[("team", s("b"))])]);
    let verdict = inverted_alone.decide(&team_b, now());
    assert!(verdict.sampled);
    assert_eq!(verdict.decision, Decision::Sampled);
    assert_eq!(verdict.policy.as_deref(), Some("not-a"));

    // Another policy saying NotSampled vetoes an InvertSampled (the Collector's rule)...
    let with_not_sampled = policies(
        r#"
        - {name: not-a, type: string_attribute, string_attribute: {key: team, values: [a], invert_match: true}}
        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
        "#,
    );
    assert!(!with_not_sampled.decide(&team_b, now()).sampled);

    // ...but a plain Sampled wins and is the named policy.
    let error_b = trace_of(vec![Span {
        attributes: attrs(&[("team", s("b"))]),
        ..span_status(StatusCode::Error)
    }]);
    let verdict = with_not_sampled.decide(&error_b, now());
    assert!(verdict.sampled);
    assert_eq!(verdict.policy.as_deref(), Some("errors"));
}

#[test]
fn sample_on_first_match_stops_at_the_first_sampled() {
    let built = policies(
        r#"
        - {name: first, type: always_sample}
        - {name: limit, type: rate_limiting, rate_limiting: {spans_per_second: 1, burst_capacity: 1}}
        "#,
    )
    .with_sample_on_first_match(true);
    let trace = trace_with_spans(1);
    for _ in 0..3 {
        let verdict = built.decide(&trace, now());
        assert!(verdict.sampled);
        assert_eq!(
            verdict.per_policy,
            vec![("first".to_string(), Decision::Sampled)]
        );
    }
}

#[test]
fn and_policy_end_to_end() {
    let built = policies(
        r#"
        - name: slow-checkout
          type: and
          and:
            and_sub_policy:
              - {name: checkout, type: string_attribute, string_attribute: {key: http.route, values: [/checkout]}}
              - {name: slow, type: latency, latency: {threshold_ms: 500}}
        "#,
    );
    let slow_checkout = trace_of(vec![Span {
        attributes: attrs(&[("http.route", s("/checkout"))]),
        ..span_ms(0, 800)
    }]);
    let fast_checkout = trace_of(vec![Span {
        attributes: attrs(&[("http.route", s("/checkout"))]),
        ..span_ms(0, 100)
    }]);
    let slow_home = trace_of(vec![Span {
        attributes: attrs(&[("http.route", s("/home"))]),
        ..span_ms(0, 800)
    }]);
    assert!(built.decide(&slow_checkout, now()).sampled);
    assert!(!built.decide(&fast_checkout, now()).sampled);
    assert!(!built.decide(&slow_home, now()).sampled);
}

#[test]
fn composite_end_to_end_over_simulated_seconds() {
    // Errors may use 60% of 100 spans/s, everything else 40%; errors are asked first because
    // of policy_order even though they are listed second.
    let built = policies(
        r#"
        - name: budget
          type: composite
          composite:
            max_total_spans_per_second: 100
            policy_order: [errors, rest]
            composite_sub_policy:
              - {name: rest, type: always_sample}
              - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
            rate_allocation:
              - {policy: errors, percent: 60}
              - {policy: rest, percent: 40}
        "#,
    );
    let error_trace = trace_of((0..10).map(|_| span_status(StatusCode::Error)).collect());
    let ok_trace = trace_of((0..10).map(|_| span_status(StatusCode::Ok)).collect());
    let t0 = now();
    for second in 0..3u64 {
        let mut errors_kept = 0;
        let mut ok_kept = 0;
        // 10 error traces and 10 OK traces per second, interleaved, 10 spans each.
        for i in 0..10u64 {
            let t = t0 + Duration::from_secs(second) + Duration::from_millis(i * 90);
            if built.decide(&error_trace, t).sampled {
                errors_kept += 1;
            }
            if built
                .decide(&ok_trace, t + Duration::from_millis(45))
                .sampled
            {
                ok_kept += 1;
            }
        }
        assert_eq!((errors_kept, ok_kept), (6, 4), "second {second}");
    }
}

#[test]
fn composite_sub_policy_without_allocation_never_samples() {
    let built = policies(
        r#"
        - name: budget
          type: composite
          composite:
            max_total_spans_per_second: 100
            composite_sub_policy:
              - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
              - {name: rest, type: always_sample}
            rate_allocation:
              - {policy: errors, percent: 50}
        "#,
    );
    assert!(!built.decide(&trace_with_spans(1), now()).sampled);
    assert!(
        built
            .decide(&trace_of(vec![span_status(StatusCode::Error)]), now())
            .sampled
    );
}

#[test]
fn rate_limiting_end_to_end_uses_the_injected_clock() {
    let built =
        policies("[{name: limit, type: rate_limiting, rate_limiting: {spans_per_second: 10}}]");
    let t0 = now();
    let ten = trace_with_spans(10);
    assert!(built.decide(&ten, t0).sampled);
    assert!(built.decide(&ten, t0).sampled);
    assert!(!built.decide(&ten, t0).sampled);
    assert!(built.decide(&ten, t0 + Duration::from_secs(1)).sampled);
}

#[test]
fn decision_labels_follow_the_collector() {
    assert_eq!(Decision::Sampled.sampled_label(), "true");
    assert_eq!(Decision::InvertSampled.sampled_label(), "true");
    assert_eq!(Decision::NotSampled.sampled_label(), "false");
    assert_eq!(Decision::InvertNotSampled.sampled_label(), "false");
    assert_eq!(Decision::Dropped.sampled_label(), "false");
    assert_eq!(Decision::InvertSampled.decision_label(), "sampled");
    assert_eq!(Decision::InvertNotSampled.decision_label(), "not_sampled");
    assert_eq!(Decision::Dropped.decision_label(), "dropped");
}

#[test]
fn policies_can_be_shared_across_shards() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policies>();
}
