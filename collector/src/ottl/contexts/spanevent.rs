//! The `spanevent` context: one event of a span, with that span and its origin, as the
//! Collector's `ottlspanevent` sees it. Bare paths (`name`, `attributes["k"]`) and
//! `spanevent.*` are the event's; `span.*` the span's; `resource.*` and
//! `instrumentation_scope.*` the origin's.

use std::borrow::Cow;

use weft_proto::trace::v1::span::Event;

use super::super::ast::Path;
use super::super::value::{Map, Value};
use super::super::{Context, EvalError};
use super::common::check_keys;
use super::span::{compile_span_path, get_span, SpanData, SpanPath, SPAN_ENUMS};

/// The span event context.
#[derive(Debug)]
pub struct SpanEvent;

/// What one evaluation in the span event context looks at.
#[derive(Clone, Copy, Debug)]
pub struct SpanEventData<'a> {
    pub event: &'a Event,
    /// The event's position among its span's events.
    pub index: usize,
    pub span: SpanData<'a>,
}

/// A resolved path of the span event context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanEventPath {
    /// A path of the span (or of its resource or scope).
    Span(SpanPath),
    Name,
    TimeUnixNano,
    Attributes,
    DroppedAttributesCount,
    EventIndex,
}

impl Context for SpanEvent {
    const NAME: &'static str = "spanevent";
    const PATHS: &'static str = "name, time_unix_nano, attributes[\"k\"], dropped_attributes_count, event_index (each may be prefixed with spanevent.), span.<any span path>, resource.attributes[\"k\"], instrumentation_scope.name and the other resource and scope paths";
    const ENUMS: &'static [(&'static str, i64)] = SPAN_ENUMS;
    type Path = SpanEventPath;
    type Data<'a> = SpanEventData<'a>;

    fn compile_path(path: &Path) -> Result<(SpanEventPath, usize), String> {
        let segments = match path.segments.as_slice() {
            [first, rest @ ..] if first.name == "spanevent" && !rest.is_empty() => rest,
            all => all,
        };
        let Some((first, rest)) = segments.split_first() else {
            return Err("empty path".to_string());
        };
        match first.name.as_str() {
            "span" if !rest.is_empty() => {
                check_keys(&segments[..1], false)?;
                if matches!(
                    rest[0].name.as_str(),
                    "resource" | "instrumentation_scope" | "scope"
                ) {
                    return Err("write resource.* and instrumentation_scope.* without span.".into());
                }
                let (p, consumed) = compile_span_path(rest)?;
                return Ok((SpanEventPath::Span(p), consumed));
            }
            "resource" | "instrumentation_scope" | "scope" => {
                let (p, consumed) = compile_span_path(segments)?;
                return Ok((SpanEventPath::Span(p), consumed));
            }
            _ => {}
        }
        let path = match (first.name.as_str(), rest) {
            ("name", []) => SpanEventPath::Name,
            ("time_unix_nano", []) => SpanEventPath::TimeUnixNano,
            ("time", []) => {
                return Err(
                    "time values are not supported by Weft's OTTL: use time_unix_nano".to_string(),
                )
            }
            ("attributes", []) => {
                check_keys(segments, true)?;
                return Ok((SpanEventPath::Attributes, 0));
            }
            ("dropped_attributes_count", []) => SpanEventPath::DroppedAttributesCount,
            ("event_index", []) => SpanEventPath::EventIndex,
            _ => return Err("not a field of a span event".to_string()),
        };
        check_keys(segments, false)?;
        Ok((path, 0))
    }

    fn reborrow<'s, 'l: 's>(data: &'s SpanEventData<'l>) -> SpanEventData<'s> {
        *data
    }

    fn get<'a>(data: &SpanEventData<'a>, path: &SpanEventPath) -> Result<Value<'a>, EvalError>
    where
        Self: 'a,
    {
        let event = data.event;
        Ok(match path {
            SpanEventPath::Span(p) => return get_span(&data.span, p),
            SpanEventPath::Name => Value::Str(Cow::Borrowed(&event.name)),
            SpanEventPath::TimeUnixNano => Value::Int(event.time_unix_nano as i64),
            SpanEventPath::Attributes => Value::Map(Map::Attributes(&event.attributes)),
            SpanEventPath::DroppedAttributesCount => {
                Value::Int(i64::from(event.dropped_attributes_count))
            }
            SpanEventPath::EventIndex => Value::Int(i64::try_from(data.index).unwrap_or(i64::MAX)),
        })
    }
}
