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

/// The Collector README's example policies, unchanged, with its `bytes_limiting` and
/// `ottl_condition` entries.
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
  { name: test-policy-9, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1024, burst_capacity: 2048} },
  { name: test-policy-10, type: span_count, span_count: {min_spans: 2, max_spans: 20} },
  { name: test-policy-11, type: trace_state, trace_state: { key: key3, values: [value1, value2] } },
  { name: test-policy-12, type: boolean_attribute, boolean_attribute: {key: key4, value: true} },
  {
    name: test-policy-13, type: ottl_condition,
    ottl_condition: {
      error_mode: ignore,
      span: [
        "attributes[\"test_attr_key_1\"] == \"test_attr_val_1\"",
        "attributes[\"test_attr_key_2\"] != \"test_attr_val_1\"",
      ],
      spanevent: [
        "name != \"test_span_event_name\"",
        "attributes[\"test_event_attr_key_2\"] != \"test_event_attr_val_1\"",
      ]
    }
  },
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
            "processors::tail_sampling::policies[15]::composite::composite_sub_policy[2]: \"test-composite-policy-3\" has no rate_allocation entry, so (as in the Collector) it has no budget and never keeps a trace: add `{policy: test-composite-policy-3, percent: N}`"
        ]
    );
    let built = Policies::new(&decoded.unwrap()).unwrap();
    assert_eq!(built.len(), 16);
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
    let config: PolicyConfig = serde_yaml::from_str("{name: x, type: latency}").unwrap();
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
            ("errors".into(), Decision::NotSampled),
            ("slow".into(), Decision::Sampled),
            ("big".into(), Decision::Sampled),
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
fn an_explained_verdict_says_why_each_policy_decided() {
    let built = policies(
        r#"
        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
        - {name: slow, type: latency, latency: {threshold_ms: 1000}}
        - {name: error-logs, type: log_severity, log_severity: {min_severity: ERROR}}
        - name: both
          type: and
          and: {and_sub_policy: [
            {name: big, type: span_count, span_count: {min_spans: 2}},
            {name: tenant, type: string_attribute, string_attribute: {key: tenant, values: [acme]}}]}
        "#,
    );
    let charge = Span {
        name: "Charge".into(),
        status: span_status(StatusCode::Error).status,
        ..span_ms(100, 200)
    };
    let trace = trace_from(
        vec![
            (origin_with(&[]), span_ms(0, 2300)),
            (origin_with(&[("tenant", s("acme"))]), charge),
        ],
        vec![(origin_with(&[]), log_severity(13, "WARN"))],
    );
    let verdict = built.decide_explained(&trace, now(), Explain::Everything);
    assert_eq!(verdict.reasons.len(), verdict.per_policy.len());
    let said: Vec<(&str, &str)> = verdict
        .per_policy
        .iter()
        .zip(&verdict.reasons)
        .map(|((name, _), reason)| (&**name, reason.as_str()))
        .collect();
    assert_eq!(
        said,
        vec![
            ("errors", r#"span #2 "Charge" has status ERROR"#),
            ("slow", "lasted 2.3 s ≥ 1 s"),
            (
                "error-logs",
                "no log at or above ERROR (of 1; highest: WARN)"
            ),
            (
                "both",
                r#"every sub-policy matches: big: 2 span(s), within [2, ∞]; tenant: the resource of span #2 has tenant = "acme""#
            ),
        ]
    );
    assert_eq!(built.type_of("slow"), Some("latency"));
    // Not explaining gives the same verdict, without reasons.
    let plain = built.decide(&trace, now());
    assert!(plain.reasons.is_empty());
    assert_eq!(
        (plain.sampled, plain.policy, plain.per_policy),
        (verdict.sampled, verdict.policy, verdict.per_policy)
    );
}

#[test]
fn stateful_policies_are_explained_at_the_decision_the_others_when_asked() {
    let build = || {
        policies(
            r#"
        - {name: slow, type: latency, latency: {threshold_ms: 1000}}
        - {name: budget, type: rate_limiting, rate_limiting: {spans_per_second: 1}}
        - {name: both, type: and, and: {and_sub_policy: [
            {name: long, type: latency, latency: {threshold_ms: 1}},
            {name: rate, type: rate_limiting, rate_limiting: {spans_per_second: 100}}]}}
        "#,
        )
    };
    let trace = trace_from(vec![(origin_with(&[]), span_ms(0, 2300))], vec![]);
    let (now_all, later) = (build(), build());
    let everything = now_all.decide_explained(&trace, now(), Explain::Everything);
    let stateful = later.decide_explained(&trace, now(), Explain::Later);
    assert_eq!(stateful.per_policy, everything.per_policy);
    // `slow` is left for later; the rate limit and the `and` holding one say why now.
    assert_eq!(stateful.reasons[0], "");
    assert_eq!(stateful.reasons[1], everything.reasons[1]);
    assert_eq!(stateful.reasons[2], everything.reasons[2]);
    assert!(!stateful.reasons[1].is_empty() && !stateful.reasons[2].is_empty());
    // Later, on the same trace and clock: the words explaining at the decision would have
    // written; a stateful policy is not evaluated again (its budget is not charged twice).
    assert_eq!(
        later.explain("slow", &trace, now()).as_deref(),
        Some(everything.reasons[0].as_str())
    );
    assert_eq!(later.explain("budget", &trace, now()), None);
    assert_eq!(later.explain("both", &trace, now()), None);
    assert_eq!(later.explain("nonesuch", &trace, now()), None);
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
        vec![("no-health".into(), Decision::Dropped)]
    );
    let checkout = trace_of(vec![span_with(&[("http.route", s("/checkout"))])]);
    let verdict = built.decide(&checkout, now());
    assert!(verdict.sampled);
    assert_eq!(verdict.policy.as_deref(), Some("all"));
    assert_eq!(
        verdict.per_policy,
        vec![
            ("no-health".into(), Decision::NotSampled),
            ("all".into(), Decision::Sampled),
            ("limit".into(), Decision::Sampled),
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
        ("not-internal".into(), Decision::InvertNotSampled)
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
            vec![("first".into(), Decision::Sampled)]
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

// ---- The policies added by registering a module: bytes_limiting, trace_flags, ottl_condition ----

#[test]
fn new_policy_types_decode_and_nest_as_plain_policies() {
    let built = policies(
        r#"
        - {name: bytes, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1000}}
        - {name: sampled-upstream, type: trace_flags}
        - name: ottl
          type: ottl_condition
          ottl_condition:
            error_mode: ignore
            span: ['attributes["http.route"] == "/checkout" and status.code == STATUS_CODE_ERROR']
            spanevent: ['name == "exception"']
        - name: and
          type: and
          and:
            and_sub_policy:
              - {name: flags, type: trace_flags}
              - {name: budget, type: bytes_limiting, bytes_limiting: {bytes_per_second: 10, burst_capacity: 20}}
              - {name: cond, type: ottl_condition, ottl_condition: {span: ['kind == SPAN_KIND_SERVER']}}
        "#,
    );
    assert_eq!(built.len(), 4);
}

#[test]
fn new_policy_types_report_bad_settings_with_their_paths() {
    let (_, diags) = check(
        r#"
        - {name: a, type: bytes_limiting, bytes_limiting: {bytes_per_second: 0, burst_capacity: -1}}
        - {name: b, type: bytes_limiting}
        - {name: c, type: bytes_limiting, bytes_limiting: {bytes_per_second: -5}}
        - {name: d, type: ottl_condition, ottl_condition: {}}
        - name: e
          type: ottl_condition
          ottl_condition:
            span: ['name == "x"', 'IsMatch(name, "a") or Foo(name)']
            spanevent: ['attributes["k"] ==', 'spn.name == "x"', 'span.kind == SPAN_KIND_SRVER']
        - {name: f, type: ottl_condition, ottl_condition: {error_mode: loud, span: ['true']}}
        - {name: g, type: ottl_condition, ottl_condition: {span: ['IsMatch(name, "(")']}}
        "#,
    );
    let p = "processors::tail_sampling::policies";
    for (path, fragment) in [
        (format!("{p}[0]::bytes_limiting::bytes_per_second"), "must be greater than 0"),
        (format!("{p}[0]::bytes_limiting::burst_capacity"), "0 (twice bytes_per_second) or more"),
        (format!("{p}[1]::bytes_limiting"), "required for a policy of type \"bytes_limiting\""),
        (format!("{p}[2]::bytes_limiting::bytes_per_second"), "must be greater than 0"),
        (format!("{p}[3]::ottl_condition"), "expected at least one OTTL condition to filter on"),
        (
            format!("{p}[4]::ottl_condition::span[1]"),
            "column 23: unsupported OTTL function \"Foo\" (supported: Concat, ConvertCase, Double, ExtractPatterns, Int, IsMap, IsMatch, IsString, Len, MD5, ParseJSON, SHA1, SHA256, SHA512, SpanID, String, Time, TraceID, UnixMilli)",
        ),
        (
            format!("{p}[4]::ottl_condition::spanevent[0]"),
            "column 19: expected a value",
        ),
        (
            format!("{p}[4]::ottl_condition::spanevent[1]"),
            "column 1: unsupported path \"spn.name\" in the spanevent context",
        ),
        (
            format!("{p}[4]::ottl_condition::spanevent[2]"),
            "column 14: unknown enum symbol SPAN_KIND_SRVER",
        ),
        (format!("{p}[5]::ottl_condition::error_mode"), "unknown variant \"loud\""),
        (
            format!("{p}[6]::ottl_condition::span[0]"),
            "column 15: IsMatch: argument \"pattern\" must be a valid regular expression",
        ),
    ] {
        assert_error(&diags, &path, fragment);
    }
    assert_eq!(errors(&diags).len(), 11, "{diags}");
}

#[test]
fn trace_flags_takes_no_settings() {
    let (_, diags) = check("[{name: a, type: trace_flags, trace_flags: {}}]");
    assert_error(
        &diags,
        "processors::tail_sampling::policies[0]",
        "unknown field \"trace_flags\"",
    );
}

#[test]
fn the_type_list_comes_from_the_registry() {
    let (_, diags) = check("[{name: a}]");
    assert_error(
        &diags,
        "processors::tail_sampling::policies[0]::type",
        "required: one of always_sample, latency, status_code, string_attribute, numeric_attribute, boolean_attribute, probabilistic, rate_limiting, bytes_limiting, span_count, trace_state, trace_flags, ottl_condition, and, drop, composite, log_severity, log_body, log_attribute",
    );
    let (_, diags) = check("[{name: a, type: ottl}]");
    assert_error(
        &diags,
        "processors::tail_sampling::policies[0]::type",
        "unknown variant \"ottl\", expected one of \"always_sample\"",
    );
}

#[test]
fn a_nested_settings_error_keeps_its_full_path() {
    let (_, diags) = check(
        r#"
        - name: c
          type: composite
          composite:
            max_total_spans_per_second: 10
            composite_sub_policy:
              - name: a
                type: and
                and:
                  and_sub_policy:
                    - {name: x, type: latency, latency: {treshold_ms: 1}}
                    - {name: y, type: always_sample}
            rate_allocation: [{policy: a, percent: 100}]
        - name: d
          type: drop
          drop:
            drop_sub_policy:
              - {name: z, type: nope}
        "#,
    );
    assert_error(
        &diags,
        "processors::tail_sampling::policies[0]::composite::composite_sub_policy[0]::and::and_sub_policy[0]::latency",
        "unknown field \"treshold_ms\"",
    );
    // A type that does not exist stops the decoding of the section holding it (serde stops
    // at its first error), and is reported at its own path.
    assert_error(
        &diags,
        "processors::tail_sampling::policies[1]::drop::drop_sub_policy[0]::type",
        "unknown variant \"nope\"",
    );
    assert_eq!(errors(&diags).len(), 2, "{diags}");
}

#[test]
fn policies_report_what_they_read() {
    let reads = |yaml: &str| policies(yaml).reads();
    assert_eq!(
        reads("[{name: e, type: status_code, status_code: {status_codes: [ERROR]}}, {name: s, type: latency, latency: {threshold_ms: 1}}]"),
        Reads::SPAN_STATUS | Reads::SPAN_TIMES
    );
    assert_eq!(
        reads("[{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 1}}, {name: p, type: probabilistic, probabilistic: {sampling_percentage: 1}}]"),
        Reads::NOTHING,
        "decided without decoding anything"
    );
    assert_eq!(
        reads("[{name: a, type: and, and: {and_sub_policy: [{name: f, type: trace_flags}, {name: l, type: log_body, log_body: {values: [x]}}]}}]"),
        Reads::SPAN_FLAGS | Reads::LOG_BODY
    );
    assert_eq!(
        reads(r#"[{name: o, type: ottl_condition, ottl_condition: {span: ['name == "a"']}}]"#),
        Reads::SPAN_NAME
    );
}

#[test]
fn a_failing_policy_is_left_out_of_the_verdict_and_reported() {
    let built = policies(
        r#"
        - {name: all, type: always_sample}
        - {name: broken, type: ottl_condition, ottl_condition: {span: ['attributes["n"] * 2 > 1']}}
        - {name: lenient, type: ottl_condition, ottl_condition: {error_mode: ignore, span: ['attributes["n"] * 2 > 1']}}
        "#,
    );
    let trace = trace_of(vec![span_with(&[("n", s("x"))])]);
    let verdict = built.decide(&trace, now());
    assert!(verdict.sampled);
    assert_eq!(
        verdict.per_policy,
        vec![
            ("all".into(), Decision::Sampled),
            ("lenient".into(), Decision::NotSampled),
        ]
    );
    assert_eq!(verdict.errors.len(), 2);
    assert_eq!(verdict.errors[0].policy, "broken");
    assert!(verdict.errors[0].failed);
    assert!(verdict.errors[0]
        .message
        .starts_with("span[0]: cannot compute string * int"));
    assert_eq!(verdict.errors[1].policy, "lenient");
    assert!(!verdict.errors[1].failed);

    // A failed policy does not veto an inverted decision, as a NotSampled would.
    let inverted = policies(
        r#"
        - {name: not-a, type: string_attribute, string_attribute: {key: team, values: [a], invert_match: true}}
        - {name: broken, type: ottl_condition, ottl_condition: {span: ['attributes["n"] * 2 > 1']}}
        "#,
    );
    let verdict = inverted.decide(&trace, now());
    assert!(verdict.sampled);
    assert_eq!(verdict.policy.as_deref(), Some("not-a"));
}

// ---- Conformance: every registered type sees only what it declares ----

mod conformance {
    use std::sync::Arc;
    use std::time::Duration;

    use prost::Message;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
    use weft_proto::logs::v1::LogRecord;
    use weft_proto::resource::v1::Resource;
    use weft_proto::trace::v1::span::{Event, Link};
    use weft_proto::trace::v1::{Span, Status};

    use super::super::super::trace::Origin;
    use super::super::kind::Section;
    use super::*;

    /// One trace as the window holds it: (origin, encoded item) per span and log.
    struct Held {
        trace_id: [u8; 16],
        spans: Vec<(Arc<Origin>, Vec<u8>)>,
        logs: Vec<(Arc<Origin>, Vec<u8>)>,
    }

    impl Held {
        fn view(&self, reads: Reads) -> TraceData {
            TraceData::decode(
                self.trace_id,
                self.spans.iter().map(|(o, b)| (o, &b[..])),
                self.logs.iter().map(|(o, b)| (o, &b[..])),
                reads,
            )
            .expect("the corpus decodes")
        }
    }

    fn pick<'a>(rng: &mut StdRng, values: &[&'a str]) -> &'a str {
        values[rng.random_range(0..values.len())]
    }

    fn value(rng: &mut StdRng, key: &str) -> any_value::Value {
        use any_value::Value as V;
        match (key, rng.random_range(0..10)) {
            ("k", 0) => V::IntValue(1),
            ("k", _) => V::StringValue(pick(rng, &["a", "b", "c", "1"]).into()),
            ("n", 0) => V::DoubleValue(2.5),
            ("n", 1) => V::StringValue("3".into()),
            ("n", _) => V::IntValue(rng.random_range(0..6)),
            (_, 0) => V::StringValue("true".into()),
            (_, _) => V::BoolValue(rng.random()),
        }
    }

    fn attributes(rng: &mut StdRng) -> Vec<KeyValue> {
        let mut out = Vec::new();
        for key in ["k", "n", "b"] {
            if rng.random_bool(0.6) {
                out.push(KeyValue {
                    key: key.to_string(),
                    value: Some(AnyValue {
                        value: Some(value(rng, key)),
                    }),
                    ..Default::default()
                });
            }
        }
        out
    }

    /// Seeded traces over a small vocabulary (keys `k`, `n`, `b`; values `a`, `b`, `c`;
    /// durations of 0 to 4 ms) so that the examples' policies decide both ways.
    fn corpus() -> Vec<Held> {
        let mut rng = StdRng::seed_from_u64(7);
        (0..300u16)
            .map(|t| {
                let mut trace_id = [0u8; 16];
                trace_id[..2].copy_from_slice(&t.to_be_bytes());
                trace_id[2..].fill(rng.random_range(1..=255));
                let origins: Vec<Arc<Origin>> = (0..rng.random_range(1..=2))
                    .map(|_| {
                        Arc::new(Origin {
                            resource: Resource {
                                attributes: attributes(&mut rng),
                                ..Default::default()
                            },
                            resource_schema_url: if rng.random_bool(0.3) {
                                "https://r".into()
                            } else {
                                String::new()
                            },
                            scope: InstrumentationScope {
                                name: pick(&mut rng, &["a", "lib"]).into(),
                                ..Default::default()
                            },
                            scope_schema_url: String::new(),
                            ..Default::default()
                        })
                    })
                    .collect();
                let spans = (0..rng.random_range(0..=4))
                    .map(|_| {
                        let start = 1_000_000_000 + rng.random_range(0..3u64) * 1_000_000;
                        let span = Span {
                            trace_id: trace_id.to_vec(),
                            span_id: if rng.random_bool(0.2) {
                                vec![1; 8]
                            } else {
                                vec![rng.random(); 8]
                            },
                            parent_span_id: if rng.random_bool(0.5) {
                                vec![]
                            } else {
                                vec![1; 8]
                            },
                            trace_state: pick(&mut rng, &["", "k=a", "k=b", "x=y,k=a", "broken"])
                                .into(),
                            name: pick(&mut rng, &["a", "b", "c", "bb"]).into(),
                            kind: rng.random_range(0..6),
                            start_time_unix_nano: start,
                            end_time_unix_nano: start + rng.random_range(0..5u64) * 1_000_000,
                            flags: [0, 1, 0x100, 0x101][rng.random_range(0..4)],
                            attributes: attributes(&mut rng),
                            dropped_attributes_count: rng.random_range(0..2),
                            events: (0..rng.random_range(0..=2))
                                .map(|_| Event {
                                    name: pick(&mut rng, &["a", "b", "exception"]).into(),
                                    time_unix_nano: start,
                                    attributes: attributes(&mut rng),
                                    ..Default::default()
                                })
                                .collect(),
                            links: (0..rng.random_range(0..=1))
                                .map(|_| Link {
                                    trace_id: vec![9; 16],
                                    span_id: vec![9; 8],
                                    ..Default::default()
                                })
                                .collect(),
                            status: match rng.random_range(0..4) {
                                0 => None,
                                code => Some(Status {
                                    code: code - 1,
                                    message: String::new(),
                                }),
                            },
                            ..Default::default()
                        };
                        let origin = origins[rng.random_range(0..origins.len())].clone();
                        (origin, span.encode_to_vec())
                    })
                    .collect();
                let logs = (0..rng.random_range(0..=3))
                    .map(|_| {
                        let (number, text) = [
                            (0, ""),
                            (0, "error"),
                            (9, "INFO"),
                            (13, "WARN"),
                            (17, "ERROR"),
                        ][rng.random_range(0..5)];
                        let record = LogRecord {
                            trace_id: trace_id.to_vec(),
                            severity_number: number,
                            severity_text: text.into(),
                            body: Some(AnyValue {
                                value: Some(if rng.random_bool(0.2) {
                                    any_value::Value::IntValue(3)
                                } else {
                                    any_value::Value::StringValue(
                                        pick(&mut rng, &["a", "b", "c", "bb"]).into(),
                                    )
                                }),
                            }),
                            attributes: attributes(&mut rng),
                            ..Default::default()
                        };
                        let origin = origins[rng.random_range(0..origins.len())].clone();
                        (origin, record.encode_to_vec())
                    })
                    .collect();
                Held {
                    trace_id,
                    spans,
                    logs,
                }
            })
            .collect()
    }

    /// Runs three evaluators of one policy over the corpus, one on fully decoded traces, one
    /// on the decode `reads` allows, and one on that decode explaining itself, on the same
    /// simulated clock; returns how many distinct outcomes there were, or the first trace
    /// where they disagree or the explanation is empty.
    fn conforms(
        build: &dyn Fn() -> Box<dyn Evaluate>,
        reads: Reads,
        corpus: &[Held],
    ) -> Result<usize, String> {
        let (full, partial, explained) = (build(), build(), build());
        let mut outcomes = Vec::new();
        for (i, held) in corpus.iter().enumerate() {
            let at = now() + Duration::from_millis(i as u64 * 40);
            let expected = full.try_evaluate(&held.view(Reads::ALL), at, &mut Vec::new());
            let got = partial.try_evaluate(&held.view(reads), at, &mut Vec::new());
            if expected != got {
                return Err(format!(
                    "trace {i}: {expected:?} on the full trace, {got:?} on what {reads:?} decodes"
                ));
            }
            let mut why = Why::on();
            let said = explained.try_decide(&held.view(reads), at, &mut Vec::new(), &mut why);
            if said != got {
                return Err(format!(
                    "trace {i}: explaining changed the outcome: {said:?}, not {got:?}"
                ));
            }
            if said.is_ok() && why.text().trim().is_empty() {
                return Err(format!("trace {i}: decided {said:?} without saying why"));
            }
            // The decisions ring explains a deterministic policy when the page asks, by
            // evaluating it again on the same trace at the same `now`: that must say the
            // same, whatever it evaluated meanwhile.
            if explained.deterministic() {
                let mut again = Why::on();
                let resaid =
                    explained.try_decide(&held.view(reads), at, &mut Vec::new(), &mut again);
                if resaid != said || again.text() != why.text() {
                    return Err(format!(
                        "trace {i}: deterministic, yet asked again it says {resaid:?} \"{}\", not {said:?} \"{}\"",
                        again.text(),
                        why.text()
                    ));
                }
            }
            if !outcomes.contains(&got) {
                outcomes.push(got);
            }
        }
        Ok(outcomes.len())
    }

    #[test]
    fn every_registered_type_decides_the_same_on_what_it_declares() {
        let corpus = corpus();
        let mut checked = 0;
        for kind in KINDS {
            let sections: Vec<Option<&str>> = match kind.section() {
                Section::None => vec![None],
                Section::Required => kind.examples().iter().map(|e| Some(*e)).collect(),
            };
            assert!(!sections.is_empty(), "{}: no EXAMPLES", kind.name());
            for section in sections {
                let yaml = match section {
                    None => format!("{{name: x, type: {}}}", kind.name()),
                    Some(s) => format!("{{name: x, type: {0}, {0}: {s}}}", kind.name()),
                };
                let value: serde_yaml::Value = serde_yaml::from_str(&yaml).expect(&yaml);
                let mut diags = Diagnostics::new();
                let config = decode_with_path::<PolicyConfig>(&value, &base_path(), &mut diags)
                    .unwrap_or_else(|| panic!("{yaml}: {diags}"));
                config.validate(&base_path(), &mut diags);
                assert!(!diags.has_errors(), "{yaml}: {diags}");
                let reads = config.reads();
                let outcomes = conforms(&|| config.build().expect("builds"), reads, &corpus)
                    .unwrap_or_else(|e| {
                        panic!("{yaml} reads more than it declares ({reads:?}): {e}")
                    });
                if !reads.is_empty() {
                    assert!(
                        outcomes > 1,
                        "{yaml}: every trace of the corpus got the same outcome, so the example does not exercise what the policy reads"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= KINDS.len());
    }

    #[test]
    fn the_check_catches_a_policy_reading_more_than_it_declares() {
        // string_attribute's evaluator, declared as reading nothing.
        let (decoded, _) =
            check("[{name: x, type: string_attribute, string_attribute: {key: k, values: [a]}}]");
        let config = &decoded.unwrap()[0];
        let err = conforms(&|| config.build().unwrap(), Reads::NOTHING, &corpus()).unwrap_err();
        assert!(err.contains("on what Reads() decodes"), "{err}");
        // The resource alone is not enough either: span attributes count too.
        assert!(conforms(&|| config.build().unwrap(), Reads::RESOURCE, &corpus()).is_err());
        assert!(conforms(&|| config.build().unwrap(), config.reads(), &corpus()).is_ok());
    }
}

// ---- The README's reference for the new policies stays true ----

/// The YAML block under the README heading `heading`.
fn readme_block(heading: &str) -> &'static str {
    const README: &str = include_str!("../../../../../README.md");
    let section = README
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    section
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a yaml block follows")
        .0
}

#[test]
fn the_readme_example_of_the_new_policies_is_valid() {
    let yaml = readme_block("#### `bytes_limiting`, `trace_flags` and `ottl_condition`");
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let list = &value["processors"]["tail_sampling"]["policies"];
    let text = serde_yaml::to_string(list).unwrap();
    let built = policies(&text);
    assert_eq!(
        built.names().collect::<Vec<_>>(),
        vec!["sampled-upstream", "checkout-errors", "budget"]
    );
}

#[test]
fn the_readme_ottl_error_example_is_what_weft_says() {
    let (_, diags) = check(
        r#"
        - {name: all, type: always_sample}
        - {name: c, type: ottl_condition, ottl_condition: {span: ['name == "GET" and IsRootSpan()']}}
        "#,
    );
    let expected = "processors::tail_sampling::policies[1]::ottl_condition::span[0]: column 19: unsupported OTTL function \"IsRootSpan\" (supported: Concat, ConvertCase, Double, ExtractPatterns, Int, IsMap, IsMatch, IsString, Len, MD5, ParseJSON, SHA1, SHA256, SHA512, SpanID, String, Time, TraceID, UnixMilli)";
    assert_eq!(errors(&diags), vec![expected.to_string()]);
    assert!(
        include_str!("../../../../../README.md").contains(&format!("`{expected}`")),
        "the README quotes the message"
    );
}
