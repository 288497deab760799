//! Paths every telemetry context shares: the resource and the instrumentation scope its
//! item arrived under (`resource.attributes["service.name"]`, `instrumentation_scope.name`).

use std::borrow::Cow;

use weft_proto::common::v1::InstrumentationScope;
use weft_proto::resource::v1::Resource;

use super::super::ast::Segment;
use super::super::value::{Map, Value};

/// Where a span (or log record) arrived from.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub resource: &'a Resource,
    pub resource_schema_url: &'a str,
    pub scope: &'a InstrumentationScope,
    pub scope_schema_url: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourcePath {
    Attributes,
    DroppedAttributesCount,
    SchemaUrl,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopePath {
    Name,
    Version,
    Attributes,
    DroppedAttributesCount,
    SchemaUrl,
}

/// The paths below `resource.`.
pub const RESOURCE_PATHS: &str =
    "resource.attributes[\"k\"], resource.dropped_attributes_count, resource.schema_url";
/// The paths below `instrumentation_scope.` (or `scope.`).
pub const SCOPE_PATHS: &str = "instrumentation_scope.name, instrumentation_scope.version, instrumentation_scope.attributes[\"k\"], instrumentation_scope.dropped_attributes_count, instrumentation_scope.schema_url";

/// Keys are only allowed on the last segment, and only where `allowed`.
pub(super) fn check_keys(segments: &[Segment], allowed: bool) -> Result<(), String> {
    if let Some((last, rest)) = segments.split_last() {
        if let Some(s) = rest.iter().find(|s| !s.keys.is_empty()) {
            return Err(format!("\"{}\" cannot be indexed", s.name));
        }
        if !allowed && !last.keys.is_empty() {
            return Err(format!("\"{}\" cannot be indexed", last.name));
        }
    }
    Ok(())
}

/// `rest`: the segments after `resource`.
pub(super) fn resource_path(rest: &[Segment]) -> Result<ResourcePath, String> {
    let path = match rest {
        [s] if s.name == "attributes" => ResourcePath::Attributes,
        [s] if s.name == "dropped_attributes_count" => ResourcePath::DroppedAttributesCount,
        [s] if s.name == "schema_url" => ResourcePath::SchemaUrl,
        _ => return Err("not a field of the resource".to_string()),
    };
    check_keys(rest, path == ResourcePath::Attributes)?;
    Ok(path)
}

/// `rest`: the segments after `instrumentation_scope` (or `scope`).
pub(super) fn scope_path(rest: &[Segment]) -> Result<ScopePath, String> {
    let path = match rest {
        [s] if s.name == "name" => ScopePath::Name,
        [s] if s.name == "version" => ScopePath::Version,
        [s] if s.name == "attributes" => ScopePath::Attributes,
        [s] if s.name == "dropped_attributes_count" => ScopePath::DroppedAttributesCount,
        [s] if s.name == "schema_url" => ScopePath::SchemaUrl,
        _ => return Err("not a field of the instrumentation scope".to_string()),
    };
    check_keys(rest, path == ScopePath::Attributes)?;
    Ok(path)
}

pub(super) fn get_resource<'a>(origin: &Origin<'a>, path: &ResourcePath) -> Value<'a> {
    match path {
        ResourcePath::Attributes => Value::Map(Map::Attributes(&origin.resource.attributes)),
        ResourcePath::DroppedAttributesCount => {
            Value::Int(i64::from(origin.resource.dropped_attributes_count))
        }
        ResourcePath::SchemaUrl => Value::Str(Cow::Borrowed(origin.resource_schema_url)),
    }
}

pub(super) fn get_scope<'a>(origin: &Origin<'a>, path: &ScopePath) -> Value<'a> {
    let scope = origin.scope;
    match path {
        ScopePath::Name => Value::Str(Cow::Borrowed(&scope.name)),
        ScopePath::Version => Value::Str(Cow::Borrowed(&scope.version)),
        ScopePath::Attributes => Value::Map(Map::Attributes(&scope.attributes)),
        ScopePath::DroppedAttributesCount => Value::Int(i64::from(scope.dropped_attributes_count)),
        ScopePath::SchemaUrl => Value::Str(Cow::Borrowed(origin.scope_schema_url)),
    }
}
