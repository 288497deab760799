//! Paths every telemetry context shares: the resource and the instrumentation scope its
//! item arrived under (`resource.attributes["service.name"]`, `instrumentation_scope.name`).

use std::borrow::Cow;
use std::sync::LazyLock;

use weft_proto::common::v1::InstrumentationScope;
use weft_proto::resource::v1::Resource;

use super::super::ast::Segment;
use super::super::functions::decode_hex;
use super::super::value::{Map, Value};
use super::super::write::Place;
use super::super::EvalError;

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

/// The resource and scope of an item, mutably: what a statement in the log or span context
/// (or the scope context) may change besides the item. OTLP's `resource` and `scope` are
/// optional; a write creates them.
pub struct OriginMut<'a> {
    pub resource: &'a mut Option<Resource>,
    pub resource_schema_url: &'a mut String,
    pub scope: &'a mut Option<InstrumentationScope>,
    pub scope_schema_url: &'a mut String,
}

static EMPTY_RESOURCE: LazyLock<Resource> = LazyLock::new(Resource::default);
static EMPTY_SCOPE: LazyLock<InstrumentationScope> = LazyLock::new(InstrumentationScope::default);

/// `resource`, or an empty one when the item has none.
pub fn resource_or_empty(resource: &Option<Resource>) -> &Resource {
    resource.as_ref().unwrap_or(&EMPTY_RESOURCE)
}

/// An empty scope, for contexts that have none (the resource context).
pub fn empty_scope() -> &'static InstrumentationScope {
    &EMPTY_SCOPE
}

/// `scope`, or an empty one when the item has none.
pub fn scope_or_empty(scope: &Option<InstrumentationScope>) -> &InstrumentationScope {
    scope.as_ref().unwrap_or(&EMPTY_SCOPE)
}

impl OriginMut<'_> {
    /// A read-only view.
    pub fn view(&self) -> Origin<'_> {
        Origin {
            resource: resource_or_empty(self.resource),
            resource_schema_url: self.resource_schema_url,
            scope: scope_or_empty(self.scope),
            scope_schema_url: self.scope_schema_url,
        }
    }
}

/// Where a resource path leads for writing.
pub(super) fn resource_place<'t>(
    resource: &'t mut Option<Resource>,
    path: &ResourcePath,
) -> Place<'t> {
    match path {
        ResourcePath::Attributes => {
            Place::Attributes(&mut resource.get_or_insert_with(Resource::default).attributes)
        }
        ResourcePath::DroppedAttributesCount | ResourcePath::SchemaUrl => Place::Field,
    }
}

/// Where a scope path leads for writing.
pub(super) fn scope_place<'t>(
    scope: &'t mut Option<InstrumentationScope>,
    path: &ScopePath,
) -> Place<'t> {
    match path {
        ScopePath::Attributes => Place::Attributes(
            &mut scope
                .get_or_insert_with(InstrumentationScope::default)
                .attributes,
        ),
        _ => Place::Field,
    }
}

pub(super) fn set_resource_field(
    resource: &mut Option<Resource>,
    schema_url: &mut String,
    path: &ResourcePath,
    value: &Value<'_>,
) -> Result<(), EvalError> {
    match path {
        ResourcePath::Attributes => Err(EvalError::new("attributes are set as a map")),
        ResourcePath::DroppedAttributesCount => {
            resource
                .get_or_insert_with(Resource::default)
                .dropped_attributes_count = want_u32("resource.dropped_attributes_count", value)?;
            Ok(())
        }
        ResourcePath::SchemaUrl => {
            *schema_url = want_str("resource.schema_url", value)?;
            Ok(())
        }
    }
}

pub(super) fn set_scope_field(
    scope: &mut Option<InstrumentationScope>,
    schema_url: &mut String,
    path: &ScopePath,
    value: &Value<'_>,
) -> Result<(), EvalError> {
    if let ScopePath::SchemaUrl = path {
        *schema_url = want_str("instrumentation_scope.schema_url", value)?;
        return Ok(());
    }
    let scope = scope.get_or_insert_with(InstrumentationScope::default);
    match path {
        ScopePath::Name => scope.name = want_str("instrumentation_scope.name", value)?,
        ScopePath::Version => scope.version = want_str("instrumentation_scope.version", value)?,
        ScopePath::DroppedAttributesCount => {
            scope.dropped_attributes_count =
                want_u32("instrumentation_scope.dropped_attributes_count", value)?
        }
        ScopePath::Attributes | ScopePath::SchemaUrl => {
            return Err(EvalError::new("attributes are set as a map"))
        }
    }
    Ok(())
}

fn wrong_type(field: &str, wanted: &str, value: &Value<'_>) -> EvalError {
    EvalError::new(format!("{field} takes {wanted}, not {}", value.type_name()))
}

/// A string to store in `field`.
pub(super) fn want_str(field: &str, value: &Value<'_>) -> Result<String, EvalError> {
    match value {
        Value::Str(s) => Ok(s.to_string()),
        other => Err(wrong_type(field, "a string", other)),
    }
}

/// An int to store in `field`.
pub(super) fn want_int(field: &str, value: &Value<'_>) -> Result<i64, EvalError> {
    match value {
        Value::Int(i) => Ok(*i),
        other => Err(wrong_type(field, "an int", other)),
    }
}

pub(super) fn want_u32(field: &str, value: &Value<'_>) -> Result<u32, EvalError> {
    let i = want_int(field, value)?;
    u32::try_from(i).map_err(|_| EvalError::new(format!("{field}: {i} is out of range")))
}

/// Nanoseconds since the epoch to store in `field`: an int (`*_unix_nano`) or a time.
pub(super) fn want_nanos(field: &str, value: &Value<'_>) -> Result<u64, EvalError> {
    let nanos = match value {
        Value::Int(i) | Value::Time(i) => *i,
        other => return Err(wrong_type(field, "an int or a time", other)),
    };
    u64::try_from(nanos)
        .map_err(|_| EvalError::new(format!("{field}: {nanos} is before the Unix epoch")))
}

/// An id of `len` bytes to store in `field`: bytes (`trace_id`) or hex (`trace_id.string`);
/// empty clears it.
pub(super) fn want_id(
    field: &str,
    value: &Value<'_>,
    len: usize,
    hex_form: bool,
) -> Result<Vec<u8>, EvalError> {
    let bytes = match (value, hex_form) {
        (Value::Bytes(b), false) => b.to_vec(),
        (Value::Str(s), true) => {
            decode_hex(s).ok_or_else(|| EvalError::new(format!("{field}: {s:?} is not hex")))?
        }
        (other, false) => return Err(wrong_type(field, "bytes", other)),
        (other, true) => return Err(wrong_type(field, "a hex string", other)),
    };
    if !bytes.is_empty() && bytes.len() != len {
        return Err(EvalError::new(format!(
            "{field}: an id is {len} bytes ({} hex digits), got {} bytes",
            2 * len,
            bytes.len()
        )));
    }
    Ok(bytes)
}
