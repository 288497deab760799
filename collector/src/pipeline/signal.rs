//! What a signal is: everything Weft needs to know about traces, logs and metrics lives in
//! one trait, [`Signal`], implemented once per signal on its OTLP export request.
//!
//! Components are written once, generic over the signal: the receiver serves
//! `S::GRPC_EXPORT_PATH` and `S::HTTP_PATH` for every signal it feeds, the OTLP exporters send
//! to them, `batch` joins and splits with `S::take`, and the service builds a pipeline of
//! any signal with the same code. Only components whose work is specific to one signal (the
//! tail-sampling window, the Elasticsearch document mapping) name signals, and they register
//! exactly the signals they take, so a pipeline of another signal is a config error.
//!
//! Adding a signal: describe its export request with one `otlp_signal!` invocation (the
//! proto crate's feature gives the types; `weft_proto` needs the signal's wire scanner,
//! validator and JSON codec), add its word to `weft_config::SignalKind`, and list it in
//! [`for_each_signal`]. Nothing else lists signals.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use prost::Message;
use weft_config::SignalKind;
use weft_proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use weft_proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use weft_proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use weft_proto::encode::EncodeRequest;
use weft_proto::limits::{self, Limits};
use weft_proto::logs::v1::{ResourceLogs, ScopeLogs};
use weft_proto::metrics::v1::{ResourceMetrics, ScopeMetrics};
use weft_proto::otlp_json::{self, JsonError};
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans};
use weft_proto::{validate, wire};

use super::{Batch, Consumer, Fanout, Payload};

/// One telemetry signal, described by its OTLP export request message.
pub trait Signal:
    Message + EncodeRequest + Clone + Default + Debug + PartialEq + Send + Sync + 'static
{
    /// The export response message of the signal's service.
    type Response: Message + Default + Send + 'static;

    /// The signal's word in pipeline ids and metric labels.
    const KIND: SignalKind;
    /// The metric word for one item, as the Collector's metrics name it: `spans`,
    /// `log_records`, `metric_points` (a metric's data points are its items).
    const ITEM: &'static str;
    /// The request message's name, for error messages.
    const REQUEST: &'static str;
    /// The fully qualified gRPC service name.
    const GRPC_SERVICE: &'static str;
    /// The gRPC method path of `Export`.
    const GRPC_EXPORT_PATH: &'static str;
    /// The OTLP/HTTP path, relative to a base endpoint: `v1/traces`.
    const HTTP_PATH: &'static str;

    /// Number of items (spans, log records, data points).
    fn items(&self) -> usize;
    /// Appends `other`'s resources.
    fn append(&mut self, other: Self);
    /// Removes and returns the first `n` items (whole resources and scopes where they fit,
    /// split where they do not); `self` keeps the rest.
    fn take(&mut self, n: usize) -> Self;

    /// The fast path: the item count when the protobuf `body` decodes and passes
    /// [`Signal::validate`] under `limits`, found without decoding ([`wire`]); `None` leaves
    /// the answer to decoding and validating.
    fn scan(body: &[u8], limits: &Limits) -> Option<usize>;
    /// The item count of an encoded request known to decode (one the scanner accepted or
    /// prost wrote), without decoding it.
    fn count_encoded(body: &[u8]) -> usize;
    /// Checks what protobuf cannot (id lengths) and the [`Limits`], naming the offending
    /// field.
    fn validate(&self, limits: &Limits) -> Result<(), String>;
    /// Removes the items the signal's data model forbids, after [`Signal::validate`]
    /// passed: how many were removed and why, for the OTLP partial success the receiver
    /// answers with; `None` when nothing was. Only metrics have such rules (a histogram
    /// whose buckets do not match its bounds, a metric without a name).
    fn drop_malformed(&mut self) -> Option<(usize, String)>;
    /// The response of an export that accepted all but `rejected` items, saying why.
    fn partial_response(rejected: usize, message: String) -> Self::Response;

    /// Decodes OTLP/JSON. On error: the message, and whether the document nested too deeply.
    fn decode_json(bytes: &[u8]) -> Result<Self, (String, bool)>;
    fn encode_json(&self) -> Vec<u8>;
    fn encode_response_json(response: &Self::Response) -> Vec<u8>;
    fn decode_response_json(bytes: &[u8]) -> Result<Self::Response, JsonError>;
    /// The rejected item count and message of a partial success, if the response has one.
    fn partial_success(response: &Self::Response) -> Option<(i64, &str)>;
}

/// Something done once per signal type: `visit::<S>()` is called for each signal.
pub trait SignalVisitor {
    fn visit<S: Signal>(&mut self);
}

/// Calls `visitor` with every signal Weft carries. **The one list of signals.**
pub fn for_each_signal(visitor: &mut impl SignalVisitor) {
    visitor.visit::<ExportTraceServiceRequest>();
    visitor.visit::<ExportLogsServiceRequest>();
    visitor.visit::<ExportMetricsServiceRequest>();
}

/// Calls `visitor` with the signal whose word is `kind` (with none when Weft has no such
/// signal type, which config validation rules out).
pub fn visit_signal(kind: SignalKind, visitor: &mut impl SignalVisitor) {
    struct Only<'a, V> {
        kind: SignalKind,
        inner: &'a mut V,
    }
    impl<V: SignalVisitor> SignalVisitor for Only<'_, V> {
        fn visit<S: Signal>(&mut self) {
            if S::KIND == self.kind {
                self.inner.visit::<S>();
            }
        }
    }
    for_each_signal(&mut Only {
        kind,
        inner: visitor,
    });
}

/// Every signal kind Weft has a [`Signal`] type for, in [`for_each_signal`]'s order.
pub fn all_signals() -> Vec<SignalKind> {
    struct Kinds(Vec<SignalKind>);
    impl SignalVisitor for Kinds {
        fn visit<S: Signal>(&mut self) {
            self.0.push(S::KIND);
        }
    }
    let mut kinds = Kinds(Vec::new());
    for_each_signal(&mut kinds);
    kinds.0
}

/// One value per signal, each of a type that depends on its signal (a consumer of that
/// signal's batches, a build function for it): type-erased here, typed again by whoever put
/// it in, with [`SignalMap::get`].
#[derive(Clone, Default)]
pub struct SignalMap {
    values: HashMap<SignalKind, Arc<dyn Any + Send + Sync>>,
}

impl SignalMap {
    pub fn insert<V: Any + Send + Sync>(&mut self, kind: SignalKind, value: V) {
        self.values.insert(kind, Arc::new(value));
    }

    /// The value for `kind`, if one of type `V` was inserted.
    pub fn get<V: Any>(&self, kind: SignalKind) -> Option<&V> {
        self.values.get(&kind)?.downcast_ref::<V>()
    }

    pub fn contains(&self, kind: SignalKind) -> bool {
        self.values.contains_key(&kind)
    }

    /// The signals present, in [`for_each_signal`]'s order.
    pub fn signals(&self) -> Vec<SignalKind> {
        all_signals()
            .into_iter()
            .filter(|k| self.values.contains_key(k))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The consumers a receiver or connector feeds, or an exporter offers: one per signal.
#[derive(Clone, Default)]
pub struct Consumers(SignalMap);

impl Consumers {
    pub fn insert<T: Payload>(&mut self, consumer: Arc<dyn Consumer<T>>) {
        self.0.insert(T::SIGNAL, consumer);
    }

    /// With `consumer` for `T`'s signal.
    pub fn with<T: Payload>(mut self, consumer: Arc<dyn Consumer<T>>) -> Self {
        self.insert::<T>(consumer);
        self
    }

    pub fn get<T: Payload>(&self) -> Option<Arc<dyn Consumer<T>>> {
        self.0.get::<Arc<dyn Consumer<T>>>(T::SIGNAL).cloned()
    }

    pub fn contains(&self, kind: SignalKind) -> bool {
        self.0.contains(kind)
    }

    /// A consumer for each of `signals`, each made by `make`.
    pub fn build(signals: &[SignalKind], make: &impl MakeConsumer) -> anyhow::Result<Self> {
        struct Each<'a, M> {
            signals: &'a [SignalKind],
            make: &'a M,
            out: anyhow::Result<Consumers>,
        }
        impl<M: MakeConsumer> SignalVisitor for Each<'_, M> {
            fn visit<S: Signal>(&mut self) {
                if !self.signals.contains(&S::KIND) {
                    return;
                }
                if let Ok(out) = &mut self.out {
                    match self.make.consumer::<Batch<S>>() {
                        Ok(consumer) => out.insert(consumer),
                        Err(e) => self.out = Err(e),
                    }
                }
            }
        }
        let mut each = Each {
            signals,
            make,
            out: Ok(Consumers::default()),
        };
        for_each_signal(&mut each);
        each.out
    }

    /// Adds `other`'s consumers (replacing this one's for the same signals).
    pub fn extend(&mut self, other: Consumers) {
        self.0.values.extend(other.0.values);
    }

    pub fn signals(&self) -> Vec<SignalKind> {
        self.0.signals()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Moves the first `n` items of a nested list out of `list`: whole elements while they fit
/// (`count` says how many items an element holds), and `split(element, k)` takes the first
/// `k` items out of the element that does not fit. The shared shape of every signal's
/// [`Signal::take`], one level (resources, scopes) at a time.
pub fn take_items<E>(
    list: &mut Vec<E>,
    n: usize,
    count: impl Fn(&E) -> usize,
    mut split: impl FnMut(&mut E, usize) -> E,
) -> Vec<E> {
    let mut out = Vec::new();
    let mut remaining = n;
    let mut whole = 0;
    while remaining > 0 && whole < list.len() {
        let c = count(&list[whole]);
        if c > remaining {
            break;
        }
        remaining -= c;
        whole += 1;
    }
    out.extend(list.drain(..whole));
    if remaining > 0 {
        if let Some(first) = list.first_mut() {
            out.push(split(first, remaining));
        }
    }
    out
}

fn json_error(e: JsonError) -> (String, bool) {
    let too_deep = limits::is_json_depth_error(&e);
    (e.to_string(), too_deep)
}

/// Implements [`Signal`] for one OTLP export request from its facts: names, paths, how its
/// items nest (resources → scopes → items, or a request-specific `items`/`take` pair when
/// they nest deeper, as metrics' data points do), its [`wire`] scanner, its validator and its
/// OTLP/JSON codec. Every signal's description is one invocation below.
macro_rules! otlp_signal {
    (
        $request:ty {
            response: $response:ident,
            kind: $kind:ident,
            item: $item:literal,
            request: $name:literal,
            grpc_service: $service:literal,
            http_path: $http_path:literal,
            nesting: $resources:ident: $resource_ty:ident / $scopes:ident: $scope_ty:ident / $items:ident,
            $($rest:tt)*
        }
    ) => {
        otlp_signal!(@impl $request {
            response: $response, kind: $kind, item: $item, request: $name,
            grpc_service: $service, http_path: $http_path,
            items_and_take: {
                fn items(&self) -> usize {
                    self.$resources
                        .iter()
                        .flat_map(|r| &r.$scopes)
                        .map(|s| s.$items.len())
                        .sum()
                }

                fn append(&mut self, other: Self) {
                    self.$resources.extend(other.$resources);
                }

                fn take(&mut self, n: usize) -> Self {
                    let scope_count = |s: &$scope_ty| s.$items.len();
                    let $resources = take_items(
                        &mut self.$resources,
                        n,
                        |r| r.$scopes.iter().map(scope_count).sum(),
                        |r, k| $resource_ty {
                            resource: r.resource.clone(),
                            schema_url: r.schema_url.clone(),
                            $scopes: take_items(&mut r.$scopes, k, scope_count, |s, k| $scope_ty {
                                scope: s.scope.clone(),
                                schema_url: s.schema_url.clone(),
                                $items: s.$items.drain(..k).collect(),
                            }),
                        },
                    );
                    Self { $resources }
                }
            },
            $($rest)*
        });
    };
    (
        $request:ty {
            response: $response:ident,
            kind: $kind:ident,
            item: $item:literal,
            request: $name:literal,
            grpc_service: $service:literal,
            http_path: $http_path:literal,
            resources: $resources:ident,
            items: $items_fn:path,
            take: $take_fn:path,
            $($rest:tt)*
        }
    ) => {
        otlp_signal!(@impl $request {
            response: $response, kind: $kind, item: $item, request: $name,
            grpc_service: $service, http_path: $http_path,
            items_and_take: {
                fn items(&self) -> usize {
                    $items_fn(self)
                }

                fn append(&mut self, other: Self) {
                    self.$resources.extend(other.$resources);
                }

                fn take(&mut self, n: usize) -> Self {
                    $take_fn(self, n)
                }
            },
            $($rest)*
        });
    };
    (
        @impl $request:ty {
            response: $response:ident,
            kind: $kind:ident,
            item: $item:literal,
            request: $name:literal,
            grpc_service: $service:literal,
            http_path: $http_path:literal,
            items_and_take: { $($items_and_take:tt)* },
            scan: $scan:path,
            count_encoded: $count:path,
            validate: $validate:path,
            drop_malformed: $drop_malformed:expr,
            json: $decode_json:path, $encode_json:path,
            json_response: $encode_response:path, $decode_response:path,
            partial_success: $partial:ident { $rejected:ident } $(,)?
        }
    ) => {
        impl Signal for $request {
            type Response = $response;
            const KIND: SignalKind = SignalKind::$kind;
            const ITEM: &'static str = $item;
            const REQUEST: &'static str = $name;
            const GRPC_SERVICE: &'static str = $service;
            const GRPC_EXPORT_PATH: &'static str = concat!("/", $service, "/Export");
            const HTTP_PATH: &'static str = $http_path;

            $($items_and_take)*

            fn scan(body: &[u8], limits: &Limits) -> Option<usize> {
                $scan(body, limits)
            }
            fn count_encoded(body: &[u8]) -> usize {
                $count(body)
            }
            fn validate(&self, limits: &Limits) -> Result<(), String> {
                $validate(self, limits).map_err(|e| e.to_string())
            }
            fn drop_malformed(&mut self) -> Option<(usize, String)> {
                let drop: fn(&mut Self) -> Option<(usize, String)> = $drop_malformed;
                drop(self)
            }
            fn partial_response(rejected: usize, message: String) -> Self::Response {
                $response {
                    partial_success: Some($partial {
                        $rejected: i64::try_from(rejected).unwrap_or(i64::MAX),
                        error_message: message,
                    }),
                }
            }
            fn decode_json(bytes: &[u8]) -> Result<Self, (String, bool)> {
                $decode_json(bytes).map_err(json_error)
            }
            fn encode_json(&self) -> Vec<u8> {
                $encode_json(self)
            }
            fn encode_response_json(response: &Self::Response) -> Vec<u8> {
                $encode_response(response)
            }
            fn decode_response_json(bytes: &[u8]) -> Result<Self::Response, JsonError> {
                $decode_response(bytes)
            }
            fn partial_success(response: &Self::Response) -> Option<(i64, &str)> {
                let p = response.partial_success.as_ref()?;
                Some((p.$rejected, p.error_message.as_str()))
            }
        }
    };
}

otlp_signal!(ExportTraceServiceRequest {
    response: ExportTraceServiceResponse,
    kind: Traces,
    item: "spans",
    request: "ExportTraceServiceRequest",
    grpc_service: "opentelemetry.proto.collector.trace.v1.TraceService",
    http_path: "v1/traces",
    nesting: resource_spans: ResourceSpans / scope_spans: ScopeSpans / spans,
    scan: wire::scan_traces,
    count_encoded: wire::count_items,
    validate: validate::validate_traces_with,
    drop_malformed: |_| None,
    json: otlp_json::decode_traces, otlp_json::encode_traces,
    json_response: otlp_json::encode_trace_response, otlp_json::decode_trace_response,
    partial_success: ExportTracePartialSuccess { rejected_spans },
});

otlp_signal!(ExportLogsServiceRequest {
    response: ExportLogsServiceResponse,
    kind: Logs,
    item: "log_records",
    request: "ExportLogsServiceRequest",
    grpc_service: "opentelemetry.proto.collector.logs.v1.LogsService",
    http_path: "v1/logs",
    nesting: resource_logs: ResourceLogs / scope_logs: ScopeLogs / log_records,
    scan: wire::scan_logs,
    count_encoded: wire::count_items,
    validate: validate::validate_logs_with,
    drop_malformed: |_| None,
    json: otlp_json::decode_logs, otlp_json::encode_logs,
    json_response: otlp_json::encode_logs_response, otlp_json::decode_logs_response,
    partial_success: ExportLogsPartialSuccess { rejected_log_records },
});

otlp_signal!(ExportMetricsServiceRequest {
    response: ExportMetricsServiceResponse,
    kind: Metrics,
    item: "metric_points",
    request: "ExportMetricsServiceRequest",
    grpc_service: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    http_path: "v1/metrics",
    resources: resource_metrics,
    items: weft_proto::points::request_points,
    take: take_metric_points,
    scan: wire::scan_metrics,
    count_encoded: wire::count_metric_points,
    validate: validate::validate_metrics_with,
    drop_malformed: |request| {
        validate::drop_malformed_metrics(request).map(|m| (m.rejected_points, m.message()))
    },
    json: otlp_json::decode_metrics, otlp_json::encode_metrics,
    json_response: otlp_json::encode_metrics_response, otlp_json::decode_metrics_response,
    partial_success: ExportMetricsPartialSuccess { rejected_data_points },
});

/// [`Signal::take`] for metrics: the first `n` data points, splitting resources, scopes and
/// metrics where they do not fit (a split metric keeps its name, unit and temporality on
/// both sides), as the Collector's batch processor splits metrics.
fn take_metric_points(
    request: &mut ExportMetricsServiceRequest,
    n: usize,
) -> ExportMetricsServiceRequest {
    use weft_proto::points::{metric_points, split_metric};
    let scope_count = |s: &ScopeMetrics| s.metrics.iter().map(metric_points).sum();
    let resource_metrics = take_items(
        &mut request.resource_metrics,
        n,
        |r: &ResourceMetrics| r.scope_metrics.iter().map(scope_count).sum(),
        |r, k| ResourceMetrics {
            resource: r.resource.clone(),
            schema_url: r.schema_url.clone(),
            scope_metrics: take_items(&mut r.scope_metrics, k, scope_count, |s, k| ScopeMetrics {
                scope: s.scope.clone(),
                schema_url: s.schema_url.clone(),
                metrics: take_items(&mut s.metrics, k, metric_points, split_metric),
            }),
        },
    );
    ExportMetricsServiceRequest { resource_metrics }
}

/// Makes a consumer for any signal: what a component written once for every signal
/// implements to give [`Consumers::build`] its per-signal consumers.
pub trait MakeConsumer {
    fn consumer<T: Payload>(&self) -> anyhow::Result<Arc<dyn Consumer<T>>>;
}

/// One consumer of `signal` over the `signal` consumers of `all` (a [`Fanout`] when there
/// are several): a pipeline's exporters, or the pipelines one receiver feeds.
pub fn fanout_consumers(signal: SignalKind, all: Vec<Consumers>) -> Consumers {
    struct Join {
        all: Vec<Consumers>,
        out: Consumers,
    }
    impl SignalVisitor for Join {
        fn visit<S: Signal>(&mut self) {
            let consumers: Vec<_> = self
                .all
                .iter()
                .filter_map(Consumers::get::<Batch<S>>)
                .collect();
            if !consumers.is_empty() {
                self.out.insert(Fanout::of(consumers));
            }
        }
    }
    let mut join = Join {
        all,
        out: Consumers::default(),
    };
    visit_signal(signal, &mut join);
    join.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_word_has_a_signal_type_and_the_spec_paths() {
        assert_eq!(all_signals(), SignalKind::ALL);
        assert_eq!(
            ExportTraceServiceRequest::GRPC_EXPORT_PATH,
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        );
        assert_eq!(
            ExportLogsServiceRequest::GRPC_EXPORT_PATH,
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
        );
        assert_eq!(
            ExportMetricsServiceRequest::GRPC_EXPORT_PATH,
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
        );
        assert_eq!(ExportMetricsServiceRequest::HTTP_PATH, "v1/metrics");
        assert_eq!(ExportMetricsServiceRequest::ITEM, "metric_points");
    }

    #[test]
    fn take_items_moves_whole_elements_then_splits_one() {
        let mut list = vec![vec![1, 2], vec![3, 4, 5], vec![6]];
        let taken = take_items(&mut list, 3, Vec::len, |v, k| v.drain(..k).collect());
        assert_eq!(taken, [vec![1, 2], vec![3]]);
        assert_eq!(list, [vec![4, 5], vec![6]]);
        let rest = take_items(&mut list, 10, Vec::len, |v, k| v.drain(..k).collect());
        assert_eq!(rest, [vec![4, 5], vec![6]]);
        assert!(list.is_empty());
    }

    #[test]
    fn metrics_split_by_data_points_inside_a_metric() {
        use weft_proto::metrics::v1::{metric::Data, Gauge, Metric, NumberDataPoint};
        let metric = |name: &str, n: usize| Metric {
            name: name.into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint::default(); n],
            })),
            ..Default::default()
        };
        let mut request = ExportMetricsServiceRequest {
            resource_metrics: vec![
                ResourceMetrics {
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![metric("a", 2), metric("b", 3)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ResourceMetrics {
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![metric("c", 1)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        assert_eq!(request.items(), 6);
        let head = request.take(3);
        assert_eq!((head.items(), request.items()), (3, 3));
        let names = |r: &ExportMetricsServiceRequest| -> Vec<String> {
            r.resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| m.name.clone())
                .collect()
        };
        // "b" was split: its first point went with the head, its name on both sides.
        assert_eq!(names(&head), ["a", "b"]);
        assert_eq!(names(&request), ["b", "c"]);
        // The encoded count agrees with the decoded one.
        let bytes = prost::Message::encode_to_vec(&request);
        assert_eq!(ExportMetricsServiceRequest::count_encoded(&bytes), 3);
    }

    #[test]
    fn a_signal_map_gives_back_only_what_was_put_in_with_its_type() {
        let mut map = SignalMap::default();
        map.insert(SignalKind::Logs, 7u32);
        assert_eq!(map.get::<u32>(SignalKind::Logs), Some(&7));
        assert_eq!(map.get::<u64>(SignalKind::Logs), None);
        assert_eq!(map.get::<u32>(SignalKind::Traces), None);
        assert_eq!(map.signals(), [SignalKind::Logs]);
    }
}
