//! OTTL over OTLP batches: the walks `transform`, `filter` and `routing` share, once per
//! signal. A signal names its item context (`log` for logs, `span` for traces) and how to
//! reach each resource, scope and item of an export request, mutably (statements) or to
//! keep or split items (conditions).

use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::KeyValue;
use weft_proto::logs::v1::{ResourceLogs, ScopeLogs};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans};

use super::contexts::common::{resource_or_empty, scope_or_empty};
use super::contexts::{
    Log, LogData, LogTarget, Origin, OriginMut, ResourceData, ResourceTarget, ScopeTarget, Span,
    SpanData, SpanTarget,
};
use super::Writable;
use crate::pipeline::Signal;

/// What one item of signal `S` is for a statement: its writable target.
pub type ItemTarget<'a, S> = <<S as OttlSignal>::Item as Writable>::Target<'a>;
/// What one item of signal `S` is for a condition: its read-only data.
pub type ItemData<'a, S> = <<S as OttlSignal>::Item as super::Context>::Data<'a>;

/// A signal whose items OTTL reads and changes.
pub trait OttlSignal: Signal {
    /// The item context: `log` for logs, `span` for traces.
    type Item: Writable;
    /// Its name in configuration (`log_statements: [{context: log}]`).
    const ITEM_CONTEXT: &'static str;

    /// Runs `f` on each resource, with a fresh cache each.
    fn each_resource<E>(
        &mut self,
        f: &mut dyn FnMut(&mut ResourceTarget<'_>) -> Result<(), E>,
    ) -> Result<(), E>;

    /// Runs `f` on each scope, with a fresh cache each.
    fn each_scope<E>(
        &mut self,
        f: &mut dyn FnMut(&mut ScopeTarget<'_>) -> Result<(), E>,
    ) -> Result<(), E>;

    /// Runs `f` on each item, with a fresh cache each.
    fn each_item<E>(
        &mut self,
        f: &mut dyn FnMut(&mut ItemTarget<'_, Self>) -> Result<(), E>,
    ) -> Result<(), E>;

    /// Keeps the items for which `keep` says so; scopes and resources left empty go too.
    fn retain_items<E>(
        &mut self,
        keep: &mut dyn FnMut(&ItemData<'_, Self>) -> Result<bool, E>,
    ) -> Result<(), E>;

    /// Each resource as read-only data, with the number of items under it (for routing by
    /// resource).
    fn resource_data(&self) -> Vec<(ResourceData<'_>, usize)>;

    /// Splits the request into `n` requests: item `i` (in order) goes to every output
    /// `route(i)` names. Resources and scopes are copied into each output that gets one of
    /// their items.
    fn split(self, n: usize, route: &mut dyn FnMut(usize) -> Vec<usize>) -> Vec<Self>;

    /// Each item as read-only data, in order.
    fn item_data(&self) -> Vec<ItemData<'_, Self>>;

    /// Runs `f` on the attributes of each resource (a resource without any gets an empty
    /// list to add to).
    fn resource_attributes_mut(&mut self, f: &mut dyn FnMut(&mut Vec<KeyValue>));

    /// Runs `f` on the attributes of each item.
    fn item_attributes_mut(&mut self, f: &mut dyn FnMut(&mut Vec<KeyValue>));
}

macro_rules! ottl_signal {
    (
        $request:ty, $context:ty, $name:literal, $target:ident, $data:ident, $item_field:ident,
        $resources:ident: $resource_ty:ident / $scopes:ident: $scope_ty:ident / $items:ident
    ) => {
        impl OttlSignal for $request {
            type Item = $context;
            const ITEM_CONTEXT: &'static str = $name;

            fn each_resource<E>(
                &mut self,
                f: &mut dyn FnMut(&mut ResourceTarget<'_>) -> Result<(), E>,
            ) -> Result<(), E> {
                let mut cache: Vec<KeyValue> = Vec::new();
                for r in &mut self.$resources {
                    cache.clear();
                    f(&mut ResourceTarget {
                        resource: &mut r.resource,
                        schema_url: &mut r.schema_url,
                        cache: &mut cache,
                    })?;
                }
                Ok(())
            }

            fn each_scope<E>(
                &mut self,
                f: &mut dyn FnMut(&mut ScopeTarget<'_>) -> Result<(), E>,
            ) -> Result<(), E> {
                let mut cache: Vec<KeyValue> = Vec::new();
                for r in &mut self.$resources {
                    let $resource_ty {
                        resource,
                        schema_url,
                        $scopes,
                    } = r;
                    for s in $scopes.iter_mut() {
                        cache.clear();
                        f(&mut ScopeTarget {
                            origin: OriginMut {
                                resource: &mut *resource,
                                resource_schema_url: &mut *schema_url,
                                scope: &mut s.scope,
                                scope_schema_url: &mut s.schema_url,
                            },
                            cache: &mut cache,
                        })?;
                    }
                }
                Ok(())
            }

            fn each_item<E>(
                &mut self,
                f: &mut dyn FnMut(&mut $target<'_>) -> Result<(), E>,
            ) -> Result<(), E> {
                let mut cache: Vec<KeyValue> = Vec::new();
                for r in &mut self.$resources {
                    let $resource_ty {
                        resource,
                        schema_url,
                        $scopes,
                    } = r;
                    for s in $scopes.iter_mut() {
                        let $scope_ty {
                            scope,
                            $items,
                            schema_url: scope_url,
                        } = s;
                        for item in $items.iter_mut() {
                            cache.clear();
                            f(&mut $target {
                                $item_field: item,
                                origin: OriginMut {
                                    resource: &mut *resource,
                                    resource_schema_url: &mut *schema_url,
                                    scope: &mut *scope,
                                    scope_schema_url: &mut *scope_url,
                                },
                                cache: &mut cache,
                            })?;
                        }
                    }
                }
                Ok(())
            }

            fn retain_items<E>(
                &mut self,
                keep: &mut dyn FnMut(&$data<'_>) -> Result<bool, E>,
            ) -> Result<(), E> {
                let mut failure = None;
                for r in &mut self.$resources {
                    let resource = resource_or_empty(&r.resource);
                    for s in &mut r.$scopes {
                        let scope = scope_or_empty(&s.scope);
                        let origin = Origin {
                            resource,
                            resource_schema_url: &r.schema_url,
                            scope,
                            scope_schema_url: &s.schema_url,
                        };
                        s.$items.retain(|item| {
                            if failure.is_some() {
                                return true;
                            }
                            let data = $data {
                                $item_field: item,
                                origin,
                                cache: &[],
                            };
                            match keep(&data) {
                                Ok(k) => k,
                                Err(e) => {
                                    failure = Some(e);
                                    true
                                }
                            }
                        });
                    }
                    r.$scopes.retain(|s| !s.$items.is_empty());
                }
                self.$resources.retain(|r| !r.$scopes.is_empty());
                failure.map_or(Ok(()), Err)
            }

            fn resource_data(&self) -> Vec<(ResourceData<'_>, usize)> {
                self.$resources
                    .iter()
                    .map(|r| {
                        (
                            ResourceData {
                                resource: resource_or_empty(&r.resource),
                                schema_url: &r.schema_url,
                                cache: &[],
                            },
                            r.$scopes.iter().map(|s| s.$items.len()).sum(),
                        )
                    })
                    .collect()
            }

            fn item_data(&self) -> Vec<$data<'_>> {
                let mut out = Vec::new();
                for r in &self.$resources {
                    for s in &r.$scopes {
                        let origin = Origin {
                            resource: resource_or_empty(&r.resource),
                            resource_schema_url: &r.schema_url,
                            scope: scope_or_empty(&s.scope),
                            scope_schema_url: &s.schema_url,
                        };
                        for item in &s.$items {
                            out.push($data {
                                $item_field: item,
                                origin,
                                cache: &[],
                            });
                        }
                    }
                }
                out
            }

            fn resource_attributes_mut(&mut self, f: &mut dyn FnMut(&mut Vec<KeyValue>)) {
                for r in &mut self.$resources {
                    f(&mut r
                        .resource
                        .get_or_insert_with(weft_proto::resource::v1::Resource::default)
                        .attributes);
                }
            }

            fn item_attributes_mut(&mut self, f: &mut dyn FnMut(&mut Vec<KeyValue>)) {
                for r in &mut self.$resources {
                    for s in &mut r.$scopes {
                        for item in &mut s.$items {
                            f(&mut item.attributes);
                        }
                    }
                }
            }

            fn split(self, n: usize, route: &mut dyn FnMut(usize) -> Vec<usize>) -> Vec<Self> {
                let mut outputs: Vec<Self> = (0..n).map(|_| Self::default()).collect();
                let mut index = 0;
                for r in self.$resources {
                    // Per output: its copy of this resource, once it gets an item.
                    let mut resource_copies: Vec<Option<$resource_ty>> =
                        (0..n).map(|_| None).collect();
                    for s in r.$scopes {
                        let mut scope_copies: Vec<Option<$scope_ty>> =
                            (0..n).map(|_| None).collect();
                        for item in s.$items {
                            let targets = route(index);
                            index += 1;
                            let last = targets.len().saturating_sub(1);
                            let mut item = Some(item);
                            for (k, t) in targets.into_iter().enumerate() {
                                let Some(copy) = scope_copies.get_mut(t) else {
                                    continue;
                                };
                                let scope = copy.get_or_insert_with(|| $scope_ty {
                                    scope: s.scope.clone(),
                                    schema_url: s.schema_url.clone(),
                                    $items: Vec::new(),
                                });
                                // The last target takes the item itself, the others a copy.
                                let taken = if k == last { item.take() } else { item.clone() };
                                if let Some(i) = taken {
                                    scope.$items.push(i);
                                }
                            }
                        }
                        for (t, copy) in scope_copies.into_iter().enumerate() {
                            if let Some(scope) = copy {
                                resource_copies[t]
                                    .get_or_insert_with(|| $resource_ty {
                                        resource: r.resource.clone(),
                                        schema_url: r.schema_url.clone(),
                                        $scopes: Vec::new(),
                                    })
                                    .$scopes
                                    .push(scope);
                            }
                        }
                    }
                    for (t, copy) in resource_copies.into_iter().enumerate() {
                        if let Some(resource) = copy {
                            outputs[t].$resources.push(resource);
                        }
                    }
                }
                outputs
            }
        }
    };
}

ottl_signal!(
    ExportLogsServiceRequest, Log, "log", LogTarget, LogData, record,
    resource_logs: ResourceLogs / scope_logs: ScopeLogs / log_records
);

ottl_signal!(
    ExportTraceServiceRequest, Span, "span", SpanTarget, SpanData, span,
    resource_spans: ResourceSpans / scope_spans: ScopeSpans / spans
);
