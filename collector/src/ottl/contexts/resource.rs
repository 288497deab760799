//! The `resource` and `instrumentation_scope` contexts: statements that run once per
//! resource (or per scope) of a batch, as the Collector's `ottlresource` and `ottlscope`.
//! In the resource context bare paths (`attributes["k"]`) and `resource.*` are the
//! resource's; in the scope context bare paths and `instrumentation_scope.*` (or `scope.*`)
//! are the scope's and `resource.*` its resource's. Both have a `cache`.

use weft_proto::common::v1::KeyValue;
use weft_proto::resource::v1::Resource as ResourceProto;

use super::super::ast::Path;
use super::super::value::{Map, Value};
use super::super::write::Place;
use super::super::{Context, EvalError, Writable};
use super::common::{
    check_keys, empty_scope, get_resource, get_scope, resource_or_empty, resource_path,
    resource_place, scope_path, scope_place, set_resource_field, set_scope_field, Origin,
    ResourcePath, ScopePath,
};

/// The resource context.
#[derive(Debug)]
pub struct Resource;

/// What one evaluation in the resource context looks at.
#[derive(Clone, Copy, Debug)]
pub struct ResourceData<'a> {
    pub resource: &'a ResourceProto,
    pub schema_url: &'a str,
    pub cache: &'a [KeyValue],
}

/// What one statement in the resource context may change.
pub struct ResourceTarget<'a> {
    pub resource: &'a mut Option<ResourceProto>,
    pub schema_url: &'a mut String,
    pub cache: &'a mut Vec<KeyValue>,
}

/// A resolved path of the resource context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceContextPath {
    Resource(ResourcePath),
    Cache,
}

fn origin<'a>(resource: &'a ResourceProto, schema_url: &'a str) -> Origin<'a> {
    Origin {
        resource,
        resource_schema_url: schema_url,
        scope: empty_scope(),
        scope_schema_url: "",
    }
}

fn cache_or_resource(segments: &[super::super::ast::Segment]) -> Option<Result<usize, String>> {
    match segments {
        [only] if only.name == "cache" => Some(check_keys(segments, true).map(|()| 0)),
        _ => None,
    }
}

impl Context for Resource {
    const NAME: &'static str = "resource";
    const PATHS: &'static str =
        "attributes[\"k\"], dropped_attributes_count, schema_url, cache[\"k\"]; each may be prefixed with resource.";
    const ENUMS: &'static [(&'static str, i64)] = &[];
    type Path = ResourceContextPath;
    type Data<'a> = ResourceData<'a>;

    fn compile_path(path: &Path) -> Result<(ResourceContextPath, usize), String> {
        let segments = match path.segments.as_slice() {
            [first, rest @ ..] if first.name == "resource" && !rest.is_empty() => {
                check_keys(&path.segments[..1], false)?;
                rest
            }
            all => all,
        };
        if let Some(cache) = cache_or_resource(segments) {
            return cache.map(|c| (ResourceContextPath::Cache, c));
        }
        Ok((ResourceContextPath::Resource(resource_path(segments)?), 0))
    }

    fn reborrow<'s, 'l: 's>(data: &'s ResourceData<'l>) -> ResourceData<'s> {
        *data
    }

    fn get<'a>(data: &ResourceData<'a>, path: &ResourceContextPath) -> Result<Value<'a>, EvalError>
    where
        Self: 'a,
    {
        Ok(match path {
            ResourceContextPath::Cache => Value::Map(Map::Attributes(data.cache)),
            ResourceContextPath::Resource(p) => {
                get_resource(&origin(data.resource, data.schema_url), p)
            }
        })
    }
}

impl Writable for Resource {
    type Target<'a> = ResourceTarget<'a>;

    fn view<'t>(target: &'t ResourceTarget<'_>) -> ResourceData<'t> {
        ResourceData {
            resource: resource_or_empty(target.resource),
            schema_url: target.schema_url,
            cache: target.cache,
        }
    }

    fn place<'t>(
        target: &'t mut ResourceTarget<'_>,
        path: &ResourceContextPath,
    ) -> Result<Place<'t>, EvalError> {
        Ok(match path {
            ResourceContextPath::Cache => Place::Attributes(target.cache),
            ResourceContextPath::Resource(p) => resource_place(target.resource, p),
        })
    }

    fn set_field(
        target: &mut ResourceTarget<'_>,
        path: &ResourceContextPath,
        value: &Value<'_>,
    ) -> Result<(), EvalError> {
        match path {
            ResourceContextPath::Cache => Err(EvalError::new("the cache is set as a map")),
            ResourceContextPath::Resource(p) => {
                set_resource_field(target.resource, target.schema_url, p, value)
            }
        }
    }

    fn check_writable(_path: &ResourceContextPath) -> Result<(), String> {
        Ok(())
    }
}

/// The instrumentation scope context.
#[derive(Debug)]
pub struct Scope;

/// What one evaluation in the scope context looks at.
#[derive(Clone, Copy, Debug)]
pub struct ScopeData<'a> {
    pub origin: Origin<'a>,
    pub cache: &'a [KeyValue],
}

/// What one statement in the scope context may change.
pub struct ScopeTarget<'a> {
    pub origin: super::common::OriginMut<'a>,
    pub cache: &'a mut Vec<KeyValue>,
}

/// A resolved path of the scope context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeContextPath {
    Resource(ResourcePath),
    Scope(ScopePath),
    Cache,
}

impl Context for Scope {
    const NAME: &'static str = "instrumentation_scope";
    const PATHS: &'static str = "name, version, attributes[\"k\"], dropped_attributes_count, schema_url, cache[\"k\"] (each may be prefixed with instrumentation_scope. or scope.), resource.attributes[\"k\"], resource.dropped_attributes_count, resource.schema_url";
    const ENUMS: &'static [(&'static str, i64)] = &[];
    type Path = ScopeContextPath;
    type Data<'a> = ScopeData<'a>;

    fn compile_path(path: &Path) -> Result<(ScopeContextPath, usize), String> {
        let segments = path.segments.as_slice();
        match segments {
            [first, rest @ ..] if first.name == "resource" && !rest.is_empty() => {
                check_keys(&segments[..1], false)?;
                Ok((ScopeContextPath::Resource(resource_path(rest)?), 0))
            }
            [first, rest @ ..]
                if (first.name == "instrumentation_scope" || first.name == "scope")
                    && !rest.is_empty() =>
            {
                check_keys(&segments[..1], false)?;
                if let Some(cache) = cache_or_resource(rest) {
                    return cache.map(|c| (ScopeContextPath::Cache, c));
                }
                Ok((ScopeContextPath::Scope(scope_path(rest)?), 0))
            }
            all => {
                if let Some(cache) = cache_or_resource(all) {
                    return cache.map(|c| (ScopeContextPath::Cache, c));
                }
                Ok((ScopeContextPath::Scope(scope_path(all)?), 0))
            }
        }
    }

    fn reborrow<'s, 'l: 's>(data: &'s ScopeData<'l>) -> ScopeData<'s> {
        *data
    }

    fn get<'a>(data: &ScopeData<'a>, path: &ScopeContextPath) -> Result<Value<'a>, EvalError>
    where
        Self: 'a,
    {
        Ok(match path {
            ScopeContextPath::Cache => Value::Map(Map::Attributes(data.cache)),
            ScopeContextPath::Resource(p) => get_resource(&data.origin, p),
            ScopeContextPath::Scope(p) => get_scope(&data.origin, p),
        })
    }
}

impl Writable for Scope {
    type Target<'a> = ScopeTarget<'a>;

    fn view<'t>(target: &'t ScopeTarget<'_>) -> ScopeData<'t> {
        ScopeData {
            origin: target.origin.view(),
            cache: target.cache,
        }
    }

    fn place<'t>(
        target: &'t mut ScopeTarget<'_>,
        path: &ScopeContextPath,
    ) -> Result<Place<'t>, EvalError> {
        Ok(match path {
            ScopeContextPath::Cache => Place::Attributes(target.cache),
            ScopeContextPath::Resource(p) => resource_place(target.origin.resource, p),
            ScopeContextPath::Scope(p) => scope_place(target.origin.scope, p),
        })
    }

    fn set_field(
        target: &mut ScopeTarget<'_>,
        path: &ScopeContextPath,
        value: &Value<'_>,
    ) -> Result<(), EvalError> {
        match path {
            ScopeContextPath::Cache => Err(EvalError::new("the cache is set as a map")),
            ScopeContextPath::Resource(p) => set_resource_field(
                target.origin.resource,
                target.origin.resource_schema_url,
                p,
                value,
            ),
            ScopeContextPath::Scope(p) => set_scope_field(
                target.origin.scope,
                target.origin.scope_schema_url,
                p,
                value,
            ),
        }
    }

    fn check_writable(_path: &ScopeContextPath) -> Result<(), String> {
        Ok(())
    }
}
