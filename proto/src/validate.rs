//! Semantic validation of decoded OTLP requests.
//!
//! Protobuf (and lenient JSON) decoding accepts ids of any length and any number of
//! attributes; these checks reject requests whose ids cannot be valid W3C trace context and
//! requests over the [`Limits`] (attribute counts, key and value lengths, `AnyValue` depth).
//! Every error names the offending field by its protobuf path and, for a limit, the limit.
//! Metrics also have data model rules for their points, answered with a partial success
//! instead of a refusal ([`drop_malformed_metrics`]).

mod metrics;

pub use metrics::{
    drop_malformed_metrics, validate_metrics, validate_metrics_with, Malformed, MAX_SCALE,
    MIN_SCALE,
};

use crate::collector::logs::v1::ExportLogsServiceRequest;
use crate::collector::trace::v1::ExportTraceServiceRequest;
use crate::common::v1::{InstrumentationScope, KeyValue};
use crate::limits::{check_attributes, check_body, Limits, Violation};
use crate::logs::v1::LogRecord;
use crate::resource::v1::Resource;
use crate::trace::v1::{span::Link, Span};

const TRACE_ID_LEN: usize = 16;
const SPAN_ID_LEN: usize = 8;

/// A request contained data that violates the OTLP data model or a [`Limits`] limit.
///
/// `path` uses the protobuf field names, e.g.
/// `resource_spans[0].scope_spans[0].spans[2]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InvalidData {
    pub path: String,
    pub message: String,
}

/// A problem inside one item: the path relative to it (`""`, `.links[1]`,
/// `.attributes[2].value`, ...) and what is wrong. Built only on failure.
type Problem = (String, String);

/// [`validate_traces_with`] the default [`Limits`].
pub fn validate_traces(req: &ExportTraceServiceRequest) -> Result<(), InvalidData> {
    validate_traces_with(req, &Limits::default())
}

/// [`validate_logs_with`] the default [`Limits`].
pub fn validate_logs(req: &ExportLogsServiceRequest) -> Result<(), InvalidData> {
    validate_logs_with(req, &Limits::default())
}

/// Checks every span: `trace_id` is 16 bytes and `span_id` is 8 bytes, both not all zeros;
/// `parent_span_id` is empty or 8 bytes; link ids are 16/8 bytes. Checks every attribute list
/// (resource, scope, span, event, link) against `limits`. Returns the first problem found.
pub fn validate_traces_with(
    req: &ExportTraceServiceRequest,
    limits: &Limits,
) -> Result<(), InvalidData> {
    for (r, rs) in req.resource_spans.iter().enumerate() {
        check_resource(rs.resource.as_ref(), limits)
            .map_err(|p| at(format_args!("resource_spans[{r}]"), p))?;
        for (s, ss) in rs.scope_spans.iter().enumerate() {
            check_scope(ss.scope.as_ref(), limits)
                .map_err(|p| at(format_args!("resource_spans[{r}].scope_spans[{s}]"), p))?;
            for (i, span) in ss.spans.iter().enumerate() {
                check_span(span, limits).map_err(|p| {
                    at(
                        format_args!("resource_spans[{r}].scope_spans[{s}].spans[{i}]"),
                        p,
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Checks every log record: `trace_id` is empty or 16 bytes, `span_id` is empty or 8 bytes;
/// every attribute list (resource, scope, record) and every body against `limits`. Returns
/// the first problem found.
pub fn validate_logs_with(
    req: &ExportLogsServiceRequest,
    limits: &Limits,
) -> Result<(), InvalidData> {
    for (r, rl) in req.resource_logs.iter().enumerate() {
        check_resource(rl.resource.as_ref(), limits)
            .map_err(|p| at(format_args!("resource_logs[{r}]"), p))?;
        for (s, sl) in rl.scope_logs.iter().enumerate() {
            check_scope(sl.scope.as_ref(), limits)
                .map_err(|p| at(format_args!("resource_logs[{r}].scope_logs[{s}]"), p))?;
            for (i, record) in sl.log_records.iter().enumerate() {
                check_log_record(record, limits).map_err(|p| {
                    at(
                        format_args!("resource_logs[{r}].scope_logs[{s}].log_records[{i}]"),
                        p,
                    )
                })?;
            }
        }
    }
    Ok(())
}

fn at(prefix: std::fmt::Arguments<'_>, (suffix, message): Problem) -> InvalidData {
    InvalidData {
        path: format!("{prefix}{suffix}"),
        message,
    }
}

/// `field` is the attribute list's path relative to the item, e.g. `.events[2].attributes`.
fn attributes(
    field: std::fmt::Arguments<'_>,
    list: &[KeyValue],
    limits: &Limits,
) -> Result<(), Problem> {
    check_attributes(list, limits)
        .map_err(|Violation { suffix, message }| (format!("{field}{suffix}"), message))
}

fn check_resource(resource: Option<&Resource>, limits: &Limits) -> Result<(), Problem> {
    match resource {
        Some(resource) => attributes(
            format_args!(".resource.attributes"),
            &resource.attributes,
            limits,
        ),
        None => Ok(()),
    }
}

fn check_scope(scope: Option<&InstrumentationScope>, limits: &Limits) -> Result<(), Problem> {
    match scope {
        Some(scope) => attributes(format_args!(".scope.attributes"), &scope.attributes, limits),
        None => Ok(()),
    }
}

fn check_span(span: &Span, limits: &Limits) -> Result<(), Problem> {
    let at_span = |message| (String::new(), message);
    required_id("trace_id", &span.trace_id, TRACE_ID_LEN).map_err(at_span)?;
    required_id("span_id", &span.span_id, SPAN_ID_LEN).map_err(at_span)?;
    optional_id("parent_span_id", &span.parent_span_id, SPAN_ID_LEN).map_err(at_span)?;
    attributes(format_args!(".attributes"), &span.attributes, limits)?;
    for (e, event) in span.events.iter().enumerate() {
        attributes(
            format_args!(".events[{e}].attributes"),
            &event.attributes,
            limits,
        )?;
    }
    for (l, link) in span.links.iter().enumerate() {
        check_link(link).map_err(|message| (format!(".links[{l}]"), message))?;
        attributes(
            format_args!(".links[{l}].attributes"),
            &link.attributes,
            limits,
        )?;
    }
    Ok(())
}

fn check_link(link: &Link) -> Result<(), String> {
    exact_len("trace_id", &link.trace_id, TRACE_ID_LEN)?;
    exact_len("span_id", &link.span_id, SPAN_ID_LEN)
}

fn check_log_record(record: &LogRecord, limits: &Limits) -> Result<(), Problem> {
    let at_record = |message| (String::new(), message);
    optional_id("trace_id", &record.trace_id, TRACE_ID_LEN).map_err(at_record)?;
    optional_id("span_id", &record.span_id, SPAN_ID_LEN).map_err(at_record)?;
    attributes(format_args!(".attributes"), &record.attributes, limits)?;
    match &record.body {
        Some(body) => check_body(body, limits)
            .map_err(|Violation { suffix, message }| (format!(".body{suffix}"), message)),
        None => Ok(()),
    }
}

fn exact_len(field: &str, id: &[u8], len: usize) -> Result<(), String> {
    if id.len() == len {
        Ok(())
    } else {
        Err(format!("{field} must be {len} bytes, got {}", id.len()))
    }
}

fn required_id(field: &str, id: &[u8], len: usize) -> Result<(), String> {
    exact_len(field, id, len)?;
    if id.iter().all(|&b| b == 0) {
        return Err(format!("{field} must not be all zeros"));
    }
    Ok(())
}

fn optional_id(field: &str, id: &[u8], len: usize) -> Result<(), String> {
    if id.is_empty() || id.len() == len {
        Ok(())
    } else {
        Err(format!(
            "{field} must be empty or {len} bytes, got {}",
            id.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::v1::{ResourceLogs, ScopeLogs};
    use crate::trace::v1::{ResourceSpans, ScopeSpans};

    fn good_span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        }
    }

    fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![
                    ScopeSpans::default(),
                    ScopeSpans {
                        spans,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
        }
    }

    fn span_err(span: Span) -> String {
        validate_traces(&traces(vec![good_span(), span]))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn valid_traces() {
        let mut with_parent = good_span();
        with_parent.parent_span_id = vec![3; 8];
        with_parent.links.push(Link {
            trace_id: vec![4; 16],
            span_id: vec![5; 8],
            ..Default::default()
        });
        assert_eq!(
            validate_traces(&traces(vec![good_span(), with_parent])),
            Ok(())
        );
        assert_eq!(
            validate_traces(&ExportTraceServiceRequest::default()),
            Ok(())
        );
    }

    #[test]
    fn invalid_span_ids() {
        let p = "resource_spans[0].scope_spans[1].spans[1]";
        let mut s = good_span();
        s.trace_id = vec![1, 2, 3];
        assert_eq!(
            span_err(s),
            format!("{p}: trace_id must be 16 bytes, got 3")
        );

        let mut s = good_span();
        s.trace_id.clear();
        assert_eq!(
            span_err(s),
            format!("{p}: trace_id must be 16 bytes, got 0")
        );

        let mut s = good_span();
        s.trace_id = vec![0; 16];
        assert_eq!(span_err(s), format!("{p}: trace_id must not be all zeros"));

        let mut s = good_span();
        s.span_id = vec![1; 9];
        assert_eq!(span_err(s), format!("{p}: span_id must be 8 bytes, got 9"));

        let mut s = good_span();
        s.span_id = vec![0; 8];
        assert_eq!(span_err(s), format!("{p}: span_id must not be all zeros"));

        let mut s = good_span();
        s.parent_span_id = vec![1; 4];
        assert_eq!(
            span_err(s),
            format!("{p}: parent_span_id must be empty or 8 bytes, got 4")
        );
    }

    #[test]
    fn invalid_link_ids() {
        let p = "resource_spans[0].scope_spans[1].spans[1].links[1]";
        let good_link = Link {
            trace_id: vec![4; 16],
            span_id: vec![5; 8],
            ..Default::default()
        };
        let mut s = good_span();
        s.links = vec![
            good_link.clone(),
            Link {
                trace_id: vec![4; 15],
                ..good_link.clone()
            },
        ];
        assert_eq!(
            span_err(s),
            format!("{p}: trace_id must be 16 bytes, got 15")
        );

        let mut s = good_span();
        s.links = vec![
            good_link.clone(),
            Link {
                span_id: vec![],
                ..good_link
            },
        ];
        assert_eq!(span_err(s), format!("{p}: span_id must be 8 bytes, got 0"));
    }

    fn logs(record: LogRecord) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs::default(),
                ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord::default(), record],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn log_ids() {
        assert_eq!(validate_logs(&logs(LogRecord::default())), Ok(()));
        let full = LogRecord {
            trace_id: vec![1; 16],
            span_id: vec![1; 8],
            ..Default::default()
        };
        assert_eq!(validate_logs(&logs(full)), Ok(()));

        let err = validate_logs(&logs(LogRecord {
            trace_id: vec![1; 3],
            ..Default::default()
        }))
        .unwrap_err();
        assert_eq!(err.path, "resource_logs[1].scope_logs[0].log_records[1]");
        assert_eq!(err.message, "trace_id must be empty or 16 bytes, got 3");

        let err = validate_logs(&logs(LogRecord {
            span_id: vec![1; 16],
            ..Default::default()
        }))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource_logs[1].scope_logs[0].log_records[1]: span_id must be empty or 8 bytes, got 16"
        );
    }
}
