//! `ottl_condition`: keep a trace when an OTTL condition holds for one of its spans
//! (`span: [...]`) or span events (`spanevent: [...]`), as the Collector's policy does.
//!
//! Each list is "any of": the trace is kept at the first span whose span conditions hold, or
//! whose event satisfies a span event condition. The conditions are compiled when the
//! configuration is checked ([`crate::ottl`]): an unsupported function, path or enum symbol
//! is a configuration error with its path and column, e.g.
//! `…::ottl_condition::span[1]: column 9: unsupported OTTL function "Foo" (supported: …)`.
//!
//! `error_mode` decides what an evaluation error does (a string where a number is needed,
//! an index out of range): `propagate` (the Collector's default) makes the policy fail on
//! that trace, so its decision does not count (logged and counted in
//! `otelcol_processor_tail_sampling_sampling_policy_evaluation_error`); `ignore` counts the
//! failing condition as false and logs it; `silent` does the same without logging.
//!
//! What the policy reads is what its conditions' paths name: conditions on `name` and
//! `status.code` decode only those fields of each span.

use std::time::Instant;

use serde::Deserialize;
use weft_config::{ConfigPath, Diagnostics};

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, PolicyKind, Section};
use super::{clip, Decision, Evaluate, Why};
use crate::ottl::contexts::{
    Origin, Span, SpanData, SpanEvent, SpanEventData, SpanEventPath, SpanPath,
};
use crate::ottl::{Condition, ConditionSequence, ErrorMode, EvalError};

/// The `ottl_condition` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

/// `ottl_condition:` settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OttlConditionConfig {
    /// `propagate` (default), `ignore` or `silent`.
    pub error_mode: ErrorMode,
    /// Conditions in the span context.
    pub span: Vec<String>,
    /// Conditions in the span event context.
    pub spanevent: Vec<String>,
}

impl PolicyKind for Kind {
    const NAME: &'static str = "ottl_condition";
    const SECTION: Section = Section::Required;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{span: ["attributes[\"k\"] == \"a\" and status.code == STATUS_CODE_ERROR", "IsMatch(resource.attributes[\"k\"], \"^b\")"]}"#,
        r#"{error_mode: ignore, spanevent: ["name == \"a\" or attributes[\"n\"] > 2", "span.kind == SPAN_KIND_CLIENT and IsMatch(span.name, \"^b\")"]}"#,
        r#"{span: ["kind == SPAN_KIND_SERVER and not (name == \"a\")", "flags == 1 or trace_state[\"k\"] == \"b\"", "end_time_unix_nano - start_time_unix_nano >= 3000000", "Len(attributes) > 2 and IsString(attributes[\"k\"])", "trace_id.string != \"\" and Int(span_id.string) == nil and parent_span_id == 0x0101010101010101"]}"#,
        r#"{error_mode: silent, span: ["attributes[\"n\"] / Int(attributes[\"k\"]) > 1"]}"#,
    ];
    type Config = OttlConditionConfig;

    fn validate(c: &OttlConditionConfig, path: &ConfigPath, diags: &mut Diagnostics) {
        if c.span.is_empty() && c.spanevent.is_empty() {
            diags.error(
                path,
                "expected at least one OTTL condition to filter on: list conditions under span or spanevent",
            );
        }
        for (index, condition) in c.span.iter().enumerate() {
            if let Err(e) = Condition::<Span>::new(condition) {
                diags.error(&path.key("span").index(index), e.to_string());
            }
        }
        for (index, condition) in c.spanevent.iter().enumerate() {
            if let Err(e) = Condition::<SpanEvent>::new(condition) {
                diags.error(&path.key("spanevent").index(index), e.to_string());
            }
        }
    }

    fn build(c: &OttlConditionConfig) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(OttlCondition::new(c)?))
    }

    fn reads(c: &OttlConditionConfig) -> Reads {
        // Built once at start; a condition that does not compile is reported by validation
        // and never evaluated, so reading everything is only the safe side.
        OttlCondition::new(c).map_or(Reads::ALL, |p| p.reads())
    }
}

#[derive(Debug)]
pub(super) struct OttlCondition {
    span: Option<ConditionSequence<Span>>,
    spanevent: Option<ConditionSequence<SpanEvent>>,
    /// The conditions as written, for reasons.
    span_sources: Vec<String>,
    spanevent_sources: Vec<String>,
}

impl OttlCondition {
    pub(super) fn new(c: &OttlConditionConfig) -> Result<Self, String> {
        if c.span.is_empty() && c.spanevent.is_empty() {
            return Err("expected at least one OTTL condition to filter on".to_string());
        }
        let span = (!c.span.is_empty())
            .then(|| ConditionSequence::<Span>::new(&c.span, c.error_mode))
            .transpose()
            .map_err(|(i, e)| format!("span[{i}]: {e}"))?;
        let spanevent = (!c.spanevent.is_empty())
            .then(|| ConditionSequence::<SpanEvent>::new(&c.spanevent, c.error_mode))
            .transpose()
            .map_err(|(i, e)| format!("spanevent[{i}]: {e}"))?;
        Ok(Self {
            span,
            spanevent,
            span_sources: c.span.clone(),
            spanevent_sources: c.spanevent.clone(),
        })
    }

    /// What the conditions' paths name.
    fn reads(&self) -> Reads {
        let mut reads = Reads::NOTHING;
        if let Some(span) = &self.span {
            for path in span.paths() {
                reads = reads | span_path_reads(path);
            }
        }
        if let Some(spanevent) = &self.spanevent {
            reads = reads | Reads::SPAN_EVENTS;
            for path in spanevent.paths() {
                if let SpanEventPath::Span(p) = path {
                    reads = reads | span_path_reads(p);
                }
            }
        }
        reads
    }
}

/// The span fields a span-context path reads. Exhaustive: a new path must say what it reads.
fn span_path_reads(path: &SpanPath) -> Reads {
    match path {
        SpanPath::Resource(_) | SpanPath::Scope(_) => Reads::RESOURCE,
        // A condition's cache is always empty: nothing to decode.
        SpanPath::Cache => Reads::NOTHING,
        SpanPath::TraceId | SpanPath::TraceIdString | SpanPath::SpanId | SpanPath::SpanIdString => {
            Reads::SPAN_IDS
        }
        SpanPath::ParentSpanId | SpanPath::ParentSpanIdString => Reads::SPAN_PARENT,
        SpanPath::TraceState | SpanPath::TraceStateKey(_) => Reads::SPAN_TRACE_STATE,
        SpanPath::Name => Reads::SPAN_NAME,
        SpanPath::Kind | SpanPath::KindString | SpanPath::KindDeprecatedString => Reads::SPAN_KIND,
        SpanPath::StartTimeUnixNano
        | SpanPath::EndTimeUnixNano
        | SpanPath::StartTime
        | SpanPath::EndTime => Reads::SPAN_TIMES,
        SpanPath::Attributes => Reads::SPAN_ATTRIBUTES,
        SpanPath::DroppedAttributesCount
        | SpanPath::DroppedEventsCount
        | SpanPath::DroppedLinksCount => Reads::SPAN_DROPPED_COUNTS,
        SpanPath::StatusCode | SpanPath::StatusMessage => Reads::SPAN_STATUS,
        SpanPath::Flags => Reads::SPAN_FLAGS,
    }
}

/// Errors `error_mode: ignore` let through on one trace: how many, and the first.
#[derive(Default)]
struct Ignored {
    count: usize,
    first: Option<String>,
}

impl Ignored {
    fn note(&mut self, list: &str, index: usize, error: &EvalError) {
        self.count += 1;
        self.first
            .get_or_insert_with(|| format!("{list}[{index}]: {error}"));
    }

    fn report(self, out: &mut Vec<String>) {
        if let Some(first) = self.first {
            out.push(format!(
                "{} OTTL evaluation error(s) ignored (error_mode: ignore), the first: {first}",
                self.count
            ));
        }
    }
}

impl Evaluate for OttlCondition {
    fn decide(&self, trace: &TraceData, now: Instant, why: &mut Why) -> Decision {
        self.try_decide(trace, now, &mut Vec::new(), why)
            .unwrap_or_else(|e| {
                why.say(format_args!("failed: {e}"));
                Decision::NotSampled
            })
    }

    fn try_decide(
        &self,
        trace: &TraceData,
        _now: Instant,
        ignored: &mut Vec<String>,
        why: &mut Why,
    ) -> Result<Decision, String> {
        let mut noted = Ignored::default();
        let mut decision = Decision::NotSampled;
        why.say(format_args!(
            "no condition holds on any span (of {}) or span event",
            trace.spans.len()
        ));
        'spans: for (span_index, entry) in trace.spans.iter().enumerate() {
            let data = SpanData::new(
                &entry.span,
                Origin {
                    resource: &entry.origin.resource,
                    resource_schema_url: &entry.origin.resource_schema_url,
                    scope: &entry.origin.scope,
                    scope_schema_url: &entry.origin.scope_schema_url,
                },
            );
            if let Some(conditions) = &self.span {
                let holds = conditions
                    .first_holding(&data, &mut |i, e| noted.note("span", i, e))
                    .map_err(|(i, e)| format!("span[{i}]: {e}"))?;
                if let Some(i) = holds {
                    why.say(format_args!(
                        "span #{} {}: span[{i}] holds: {}",
                        span_index + 1,
                        super::status_code::quoted_name(&entry.span.name).trim_end(),
                        clip(&self.span_sources[i], 120)
                    ));
                    decision = Decision::Sampled;
                    break 'spans;
                }
            }
            if let Some(conditions) = &self.spanevent {
                for (index, event) in entry.span.events.iter().enumerate() {
                    let event_data = SpanEventData {
                        event,
                        index,
                        span: data,
                    };
                    let holds = conditions
                        .first_holding(&event_data, &mut |i, e| noted.note("spanevent", i, e))
                        .map_err(|(i, e)| format!("spanevent[{i}]: {e}"))?;
                    if let Some(i) = holds {
                        why.say(format_args!(
                            "event #{} {:?} of span #{}: spanevent[{i}] holds: {}",
                            index + 1,
                            clip(&event.name, 60),
                            span_index + 1,
                            clip(&self.spanevent_sources[i], 120)
                        ));
                        decision = Decision::Sampled;
                        break 'spans;
                    }
                }
            }
        }
        noted.report(ignored);
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use weft_proto::trace::v1::span::Event;
    use weft_proto::trace::v1::status::StatusCode;
    use weft_proto::trace::v1::Span as SpanProto;

    use super::super::testutil::*;
    use super::*;

    fn policy(mode: ErrorMode, span: &[&str], spanevent: &[&str]) -> OttlCondition {
        OttlCondition::new(&OttlConditionConfig {
            error_mode: mode,
            span: span.iter().map(|s| s.to_string()).collect(),
            spanevent: spanevent.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    fn span_named(
        name: &str,
        kind: i32,
        pairs: &[(&str, weft_proto::common::v1::any_value::Value)],
    ) -> SpanProto {
        SpanProto {
            name: name.into(),
            kind,
            ..span_with(pairs)
        }
    }

    #[test]
    fn span_conditions_on_attributes_name_status_and_kind() {
        let p = policy(
            ErrorMode::Propagate,
            &[
                r#"attributes["http.route"] == "/checkout" and status.code == STATUS_CODE_ERROR"#,
                r#"kind == SPAN_KIND_SERVER and IsMatch(name, "^POST ")"#,
            ],
            &[],
        );
        let failing_checkout = trace_of(vec![
            span_named("GET /", 2, &[]),
            SpanProto {
                attributes: attrs(&[("http.route", s("/checkout"))]),
                ..span_status(StatusCode::Error)
            },
        ]);
        let ok_checkout = trace_of(vec![SpanProto {
            attributes: attrs(&[("http.route", s("/checkout"))]),
            ..span_status(StatusCode::Ok)
        }]);
        let post_server = trace_of(vec![span_named("POST /pay", 2, &[])]);
        let post_client = trace_of(vec![span_named("POST /pay", 3, &[])]);
        assert_eq!(p.evaluate(&failing_checkout, now()), Decision::Sampled);
        assert_eq!(p.evaluate(&ok_checkout, now()), Decision::NotSampled);
        assert_eq!(p.evaluate(&post_server, now()), Decision::Sampled);
        assert_eq!(p.evaluate(&post_client, now()), Decision::NotSampled);
    }

    #[test]
    fn resource_attributes_and_not() {
        let p = policy(
            ErrorMode::Propagate,
            &[r#"resource.attributes["service.name"] == "payments" and not (name == "health")"#],
            &[],
        );
        let payments = origin_with(&[("service.name", s("payments"))]);
        let pay = trace_from(
            vec![(payments.clone(), span_named("charge", 0, &[]))],
            vec![],
        );
        let health = trace_from(vec![(payments, span_named("health", 0, &[]))], vec![]);
        let other = trace_of(vec![span_named("charge", 0, &[])]);
        assert_eq!(p.evaluate(&pay, now()), Decision::Sampled);
        assert_eq!(p.evaluate(&health, now()), Decision::NotSampled);
        assert_eq!(p.evaluate(&other, now()), Decision::NotSampled);
    }

    #[test]
    fn span_event_conditions_see_the_event_and_its_span() {
        let p = policy(
            ErrorMode::Propagate,
            &[],
            &[r#"name == "exception" and span.attributes["http.route"] == "/pay""#],
        );
        let with_event = |route: &str, event: &str| {
            trace_of(vec![SpanProto {
                events: vec![Event {
                    name: event.into(),
                    ..Default::default()
                }],
                ..span_with(&[("http.route", s(route))])
            }])
        };
        assert_eq!(
            p.evaluate(&with_event("/pay", "exception"), now()),
            Decision::Sampled
        );
        assert_eq!(
            p.evaluate(&with_event("/pay", "retry"), now()),
            Decision::NotSampled
        );
        assert_eq!(
            p.evaluate(&with_event("/home", "exception"), now()),
            Decision::NotSampled
        );
        assert_eq!(
            p.evaluate(&trace_with_spans(3), now()),
            Decision::NotSampled,
            "no events"
        );
    }

    #[test]
    fn conditions_on_missing_attributes_are_nil_not_errors() {
        let equal = policy(
            ErrorMode::Propagate,
            &[r#"attributes["absent"] == "x""#],
            &[],
        );
        let unequal = policy(
            ErrorMode::Propagate,
            &[r#"attributes["absent"] != "x""#],
            &[],
        );
        let is_nil = policy(
            ErrorMode::Propagate,
            &[r#"resource.attributes["absent"] == nil"#],
            &[],
        );
        let trace = trace_with_spans(2);
        let mut ignored = Vec::new();
        assert_eq!(
            equal.try_evaluate(&trace, now(), &mut ignored),
            Ok(Decision::NotSampled)
        );
        assert_eq!(
            unequal.try_evaluate(&trace, now(), &mut ignored),
            Ok(Decision::Sampled)
        );
        assert_eq!(
            is_nil.try_evaluate(&trace, now(), &mut ignored),
            Ok(Decision::Sampled)
        );
        assert!(ignored.is_empty());
    }

    /// A trace where the first span makes the condition fail at run time (a string where a
    /// number is needed) and the second matches.
    fn erroring_trace() -> TraceData {
        trace_of(vec![
            span_with(&[("retries", s("many"))]),
            span_with(&[("retries", i(5))]),
        ])
    }

    const ERRORING: &str = r#"attributes["retries"] * 2 > 6"#;

    #[test]
    fn propagate_fails_the_policy_on_that_trace() {
        let p = policy(
            ErrorMode::Propagate,
            &[r#"name == "nothing""#, ERRORING],
            &[],
        );
        let mut ignored = Vec::new();
        let err = p
            .try_evaluate(&erroring_trace(), now(), &mut ignored)
            .unwrap_err();
        assert_eq!(
            err,
            "span[1]: cannot compute string * int: arithmetic needs ints or doubles"
        );
        assert!(ignored.is_empty());
        // Plain `evaluate` (inside `and`, `drop` and `composite`) reads a failure as not sampled.
        assert_eq!(p.evaluate(&erroring_trace(), now()), Decision::NotSampled);
    }

    #[test]
    fn ignore_counts_the_failing_condition_false_and_reports_it() {
        let p = policy(ErrorMode::Ignore, &[ERRORING], &[]);
        let mut ignored = Vec::new();
        assert_eq!(
            p.try_evaluate(&erroring_trace(), now(), &mut ignored),
            Ok(Decision::Sampled),
            "the second span still matches"
        );
        assert_eq!(
            ignored,
            vec!["1 OTTL evaluation error(s) ignored (error_mode: ignore), the first: span[0]: cannot compute string * int: arithmetic needs ints or doubles".to_string()]
        );
        // Only failing spans: not sampled, still reported.
        ignored.clear();
        let only_failing = trace_of(vec![
            span_with(&[("retries", s("a"))]),
            span_with(&[("retries", s("b"))]),
        ]);
        assert_eq!(
            p.try_evaluate(&only_failing, now(), &mut ignored),
            Ok(Decision::NotSampled)
        );
        assert!(
            ignored[0].starts_with("2 OTTL evaluation error(s) ignored"),
            "{ignored:?}"
        );
    }

    #[test]
    fn silent_ignores_without_reporting() {
        let p = policy(ErrorMode::Silent, &[ERRORING], &[]);
        let mut ignored = Vec::new();
        assert_eq!(
            p.try_evaluate(&erroring_trace(), now(), &mut ignored),
            Ok(Decision::Sampled)
        );
        assert!(ignored.is_empty());
    }

    #[test]
    fn span_event_errors_name_their_list() {
        let p = policy(ErrorMode::Propagate, &[], &[r#"attributes["n"] / 0 > 1"#]);
        let trace = trace_of(vec![SpanProto {
            events: vec![Event {
                attributes: attrs(&[("n", i(1))]),
                ..Default::default()
            }],
            ..span_with(&[])
        }]);
        assert_eq!(
            p.try_evaluate(&trace, now(), &mut Vec::new()).unwrap_err(),
            "spanevent[0]: attempted to divide by 0"
        );
    }

    #[test]
    fn reads_follow_the_paths_the_conditions_name() {
        let reads = |span: &[&str], spanevent: &[&str]| {
            policy(ErrorMode::Propagate, span, spanevent).reads()
        };
        assert_eq!(reads(&["name == \"a\""], &[]), Reads::SPAN_NAME);
        assert_eq!(
            reads(&["status.code == 2 and kind.string == \"Server\""], &[]),
            Reads::SPAN_STATUS | Reads::SPAN_KIND
        );
        assert_eq!(
            reads(
                &[r#"IsMatch(resource.attributes["a"], "b") or attributes[name] == 1"#],
                &[]
            ),
            Reads::RESOURCE | Reads::SPAN_ATTRIBUTES | Reads::SPAN_NAME
        );
        assert_eq!(
            reads(&[], &[r#"name == "e" and span.flags == 1"#]),
            Reads::SPAN_EVENTS | Reads::SPAN_FLAGS
        );
        assert_eq!(reads(&["true"], &[]), Reads::NOTHING);
    }

    #[test]
    fn the_collector_readme_example_compiles() {
        let p = policy(
            ErrorMode::Ignore,
            &[
                r#"attributes["test_attr_key_1"] == "test_attr_val_1""#,
                r#"attributes["test_attr_key_2"] != "test_attr_val_1""#,
            ],
            &[
                r#"name != "test_span_event_name""#,
                r#"attributes["test_event_attr_key_2"] != "test_event_attr_val_1""#,
            ],
        );
        // The second span condition holds for any span without that attribute value.
        assert_eq!(p.evaluate(&trace_with_spans(1), now()), Decision::Sampled);
    }
}
