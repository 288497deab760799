//! The aggregation: spans in (read on the wire, nothing decoded but each resource), series
//! of calls, durations and events out, bounded in series and resources.
//!
//! A series is identified by its resource and the values of its dimensions; its key is the
//! dimension values as they sit on the wire (an attribute's encoded `AnyValue`), so spans
//! only pay for a key built in a reused buffer and one hash lookup. A series is decoded into
//! attributes once, when it is created.
//!
//! Bounds, and what happens past them:
//! - `cardinality_limit` series in all: a span of a new series beyond it is counted in its
//!   resource's overflow series (`otel.metric.overflow: true`, as the Collector does), and in
//!   `weft_connector_spanmetrics_overflow_spans`; nothing is lost from the totals.
//! - `resource_metrics_cache_size` resources: a new resource beyond it evicts the least
//!   recently seen one with its series (counted in
//!   `weft_connector_spanmetrics_series_dropped{reason="resource_evicted"}`).
//! - pending exemplars (with `exemplars.tail_sampling`): [`MAX_PENDING`] candidates wait for
//!   their trace's verdict; the oldest is forgotten beyond it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prost::Message;
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weft_proto::metrics::v1::{
    exemplar, metric::Data, number_data_point, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use weft_proto::resource::v1::Resource;
use weft_proto::wire::{Fields, Value};

use super::config::{
    Config, Dimension, Temporality, SERVICE_NAME, SPAN_KIND, SPAN_NAME, STATUS_CODE,
};
use super::histogram::{Explicit, Exponential};
use crate::telemetry::Telemetry;
use crate::verdicts::Verdict;

/// Exemplar candidates waiting for their trace's verdict, at most.
pub const MAX_PENDING: usize = 50_000;
/// A candidate whose verdict has not come after this long is forgotten (a window decides a
/// trace within its `decision_wait`; this is ten times the Collector's default of 30 s).
pub const PENDING_MAX_AGE: Duration = Duration::from_secs(300);

const OVERFLOW_KEY: &str = "otel.metric.overflow";
const SCOPE_NAME_KEY: &str = "span.instrumentation.scope.name";
const SCOPE_VERSION_KEY: &str = "span.instrumentation.scope.version";

/// A configured dimension, its default encoded once.
struct Dim {
    name: String,
    default: Option<Vec<u8>>,
}

impl Dim {
    fn new(d: &Dimension) -> Self {
        Self {
            name: d.name.clone(),
            default: d.default.as_ref().map(|v| string_value(v).encode_to_vec()),
        }
    }
}

fn string_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

fn attribute(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

/// `AsString` of the Collector's pcommon.Value: strings as they are, other values in their
/// usual text form.
fn value_string(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => weft_proto::base64::encode(b),
        _ => String::new(),
    }
}

/// What the settings say, prepared once.
pub struct Settings {
    dims: Vec<Dim>,
    event_dims: Vec<Dim>,
    keep_service: bool,
    keep_name: bool,
    keep_kind: bool,
    keep_status: bool,
    scopes: Vec<String>,
    key_attributes: Vec<String>,
    limit: usize,
    resource_limit: usize,
    temporality: Temporality,
    histogram: HistogramKind,
    unit_nanos: f64,
    events: bool,
    pub exemplars: bool,
    /// Exemplars wait for a window's verdict instead of being kept at once.
    pub via_window: bool,
    max_exemplars: usize,
    expiration: Option<Duration>,
    calls_name: String,
    duration_name: String,
    events_name: String,
    unit: &'static str,
}

#[derive(Clone)]
enum HistogramKind {
    Disabled,
    Explicit(Arc<[f64]>),
    Exponential(usize),
}

impl Settings {
    pub fn new(cfg: &Config) -> Self {
        let excluded = |name: &str| cfg.exclude_dimensions.iter().any(|d| d == name);
        let histogram = if cfg.histogram.disable {
            HistogramKind::Disabled
        } else if let Some(e) = &cfg.histogram.exponential {
            HistogramKind::Exponential(e.max_size)
        } else {
            HistogramKind::Explicit(Arc::from(cfg.bounds()))
        };
        Self {
            dims: cfg.dimensions.iter().map(Dim::new).collect(),
            event_dims: if cfg.events.enabled {
                cfg.events.dimensions.iter().map(Dim::new).collect()
            } else {
                Vec::new()
            },
            keep_service: !excluded(SERVICE_NAME),
            keep_name: !excluded(SPAN_NAME),
            keep_kind: !excluded(SPAN_KIND),
            keep_status: !excluded(STATUS_CODE),
            scopes: cfg.include_instrumentation_scope.clone(),
            key_attributes: cfg.resource_metrics_key_attributes.clone(),
            limit: cfg.cardinality_limit(),
            resource_limit: cfg.resource_metrics_cache_size.max(1),
            temporality: cfg.aggregation_temporality,
            histogram,
            unit_nanos: cfg.histogram.unit.nanos(),
            events: cfg.events.enabled,
            exemplars: cfg.exemplars.enabled,
            via_window: cfg.exemplars.enabled && cfg.exemplars.tail_sampling.is_some(),
            max_exemplars: cfg.exemplars.max_per_data_point.max(1),
            expiration: (!cfg.metrics_expiration.is_zero()).then(|| cfg.metrics_expiration.get()),
            calls_name: cfg.metric_name("calls"),
            duration_name: cfg.metric_name("duration"),
            events_name: cfg.metric_name("events"),
            unit: cfg.histogram.unit.as_str(),
        }
    }

    /// Pending candidates one series may have: with a window keeping a tenth of the traces,
    /// about one in ten becomes an exemplar, and a slot frees once its trace is decided.
    fn pending_per_series(&self) -> u32 {
        (self.max_exemplars * 4).max(16) as u32
    }
}

/// Weft's own series about the connector (label `connector`).
#[derive(Clone)]
pub struct ConnectorMetrics {
    pub series: Gauge,
    pub overflow_spans: Counter,
    pub expired: Counter,
    pub evicted: Counter,
    pub exemplars_kept: Counter,
    pub exemplars_dropped: Counter,
    pub exemplars_expired: Counter,
    pub flush_failures: Counter,
}

impl ConnectorMetrics {
    pub fn new(t: &Telemetry, id: &str) -> Self {
        let c = [("connector", id)];
        let dropped = |reason| {
            t.counter(
                "weft_connector_spanmetrics_series_dropped",
                "Series spanmetrics forgot: expired (metrics_expiration) or with their resource (resource_metrics_cache_size)",
                &[("connector", id), ("reason", reason)],
            )
        };
        let exemplars = |outcome| {
            t.counter(
                "weft_connector_spanmetrics_exemplars",
                "Exemplar candidates by their trace's verdict: kept (attached), dropped, expired (no verdict came)",
                &[("connector", id), ("outcome", outcome)],
            )
        };
        Self {
            series: t.gauge(
                "weft_connector_spanmetrics_series",
                "Series spanmetrics holds (calls and durations; events counted apart)",
                &c,
            ),
            overflow_spans: t.counter(
                "weft_connector_spanmetrics_overflow_spans",
                "Spans counted in an overflow series because aggregation_cardinality_limit was reached",
                &c,
            ),
            expired: dropped("expired"),
            evicted: dropped("resource_evicted"),
            exemplars_kept: exemplars("kept"),
            exemplars_dropped: exemplars("dropped"),
            exemplars_expired: exemplars("expired"),
            flush_failures: t.counter(
                "weft_connector_spanmetrics_flush_failures",
                "Flushes the metrics pipelines refused (cumulative series carry the totals to the next flush; delta data is merged back)",
                &c,
            ),
        }
    }
}

enum Hist {
    None,
    Explicit(Explicit),
    Exponential(Exponential),
}

impl Hist {
    fn new(kind: &HistogramKind) -> Self {
        match kind {
            HistogramKind::Disabled => Hist::None,
            HistogramKind::Explicit(bounds) => Hist::Explicit(Explicit::new(bounds.clone())),
            HistogramKind::Exponential(max) => Hist::Exponential(Exponential::new(*max)),
        }
    }

    fn record(&mut self, v: f64) {
        match self {
            Hist::None => {}
            Hist::Explicit(h) => h.record(v),
            Hist::Exponential(h) => h.record(v),
        }
    }

    fn merge(&mut self, other: &Hist) {
        match (self, other) {
            (Hist::Explicit(a), Hist::Explicit(b)) => a.merge(b),
            (Hist::Exponential(a), Hist::Exponential(b)) => a.merge(b),
            _ => {}
        }
    }
}

/// One series: calls, durations (none for event series), exemplars since the last flush.
struct Series {
    attributes: Vec<KeyValue>,
    start: u64,
    calls: u64,
    duration: Hist,
    exemplars: Vec<Exemplar>,
    /// Candidates of this series waiting for a verdict.
    pending: u32,
    last_seen: Instant,
}

impl Series {
    fn new(attributes: Vec<KeyValue>, hist: &HistogramKind, start: u64, now: Instant) -> Self {
        Self {
            attributes,
            start,
            calls: 0,
            duration: Hist::new(hist),
            exemplars: Vec::new(),
            pending: 0,
            last_seen: now,
        }
    }

    fn merge(&mut self, other: Series, max_exemplars: usize) {
        self.calls += other.calls;
        self.duration.merge(&other.duration);
        self.start = self.start.min(other.start);
        for e in other.exemplars {
            if self.exemplars.len() < max_exemplars {
                self.exemplars.push(e);
            }
        }
    }
}

#[derive(Default)]
struct ResourceState {
    key: Arc<[u8]>,
    /// Tells a reused slot's resources apart (exemplar candidates name a slot).
    generation: u64,
    attributes: Vec<KeyValue>,
    series: HashMap<Box<[u8]>, Series>,
    overflow: Option<Series>,
    events: HashMap<Box<[u8]>, Series>,
    events_overflow: Option<Series>,
    last_seen: Option<Instant>,
}

impl ResourceState {
    fn series_count(&self) -> usize {
        self.series.len() + self.events.len()
    }
}

/// An exemplar waiting for its trace's verdict.
struct Candidate {
    slot: usize,
    generation: u64,
    series: Box<[u8]>,
    exemplar: Exemplar,
}

#[derive(Default)]
struct Pending {
    by_trace: HashMap<[u8; 16], Vec<Candidate>>,
    order: VecDeque<([u8; 16], Instant)>,
    total: usize,
}

/// The resources, in slots found by key once per `ResourceSpans` (spans then reach their
/// resource by index, without hashing its attributes again).
#[derive(Default)]
struct Resources {
    index: HashMap<Arc<[u8]>, usize>,
    slots: Vec<Option<ResourceState>>,
    free: Vec<usize>,
    generations: u64,
}

impl Resources {
    fn get_mut(&mut self, slot: usize, generation: u64) -> Option<&mut ResourceState> {
        self.slots
            .get_mut(slot)?
            .as_mut()
            .filter(|r| r.generation == generation)
    }

    fn series_mut(&mut self, c: &Candidate) -> Option<&mut Series> {
        self.get_mut(c.slot, c.generation)?
            .series
            .get_mut(&c.series)
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn insert(&mut self, mut r: ResourceState) -> usize {
        self.generations += 1;
        r.generation = self.generations;
        let key = r.key.clone();
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(r);
                slot
            }
            None => {
                self.slots.push(Some(r));
                self.slots.len() - 1
            }
        };
        self.index.insert(key, slot);
        slot
    }

    fn remove(&mut self, key: &[u8]) -> Option<ResourceState> {
        let slot = self.index.remove(key)?;
        self.free.push(slot);
        self.slots[slot].take()
    }

    fn values(&self) -> impl Iterator<Item = &ResourceState> {
        self.slots.iter().flatten()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut ResourceState> {
        self.slots.iter_mut().flatten()
    }

    fn into_values(self) -> impl Iterator<Item = ResourceState> {
        self.slots.into_iter().flatten()
    }
}

/// Everything the connector holds, under one lock.
#[derive(Default)]
pub struct State {
    resources: Resources,
    series: usize,
    /// When the last flush sent delta points: the start of the next ones.
    last_flush: u64,
    pending: Pending,
}

/// The data a delta flush took, to put back when the pipeline refused it.
pub struct Taken(Resources);

pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// One span as read on the wire.
#[derive(Default)]
struct SpanView<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    name: &'a [u8],
    kind: u64,
    start: u64,
    end: u64,
    status: u64,
    /// The encoded `AnyValue` of each dimension found in the span's attributes.
    dims: Vec<Option<&'a [u8]>>,
    events: Vec<&'a [u8]>,
}

fn span_kind(kind: u64) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

fn status_code(code: u64) -> &'static str {
    match code {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}

/// The length-delimited fields `number` of `msg` (well formed: the receiver checked it).
fn len_fields(msg: &[u8], number: u32) -> impl Iterator<Item = &[u8]> {
    Fields::new(msg)
        .map_while(Result::ok)
        .filter_map(move |(n, v)| match v {
            Value::Len(b) if n == number => Some(b),
            _ => None,
        })
}

/// A KeyValue's key and encoded value.
fn key_value(kv: &[u8]) -> (&[u8], &[u8]) {
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    for (n, v) in Fields::new(kv).map_while(Result::ok) {
        match (n, v) {
            (1, Value::Len(b)) => key = b,
            (2, Value::Len(b)) => value = b,
            _ => {}
        }
    }
    (key, value)
}

/// Finds the dimensions `dims` among the attributes of a message (`field` holds them).
fn find_dims<'a>(msg: &'a [u8], field: u32, dims: &[Dim], out: &mut [Option<&'a [u8]>]) {
    if dims.is_empty() {
        return;
    }
    for kv in len_fields(msg, field) {
        let (key, value) = key_value(kv);
        for (i, d) in dims.iter().enumerate() {
            if out[i].is_none() && key == d.name.as_bytes() {
                out[i] = Some(value);
            }
        }
    }
}

fn read_span<'a>(msg: &'a [u8], s: &Settings) -> SpanView<'a> {
    let mut span = SpanView {
        dims: vec![None; s.dims.len()],
        ..Default::default()
    };
    for (n, v) in Fields::new(msg).map_while(Result::ok) {
        match (n, v) {
            (1, Value::Len(b)) => span.trace_id = b,
            (2, Value::Len(b)) => span.span_id = b,
            (5, Value::Len(b)) => span.name = b,
            (6, Value::Varint(k)) => span.kind = k,
            (7, Value::I64(t)) => span.start = t,
            (8, Value::I64(t)) => span.end = t,
            (9, Value::Len(kv)) if !s.dims.is_empty() => {
                let (key, value) = key_value(kv);
                for (i, d) in s.dims.iter().enumerate() {
                    if key == d.name.as_bytes() {
                        span.dims[i] = Some(value);
                    }
                }
            }
            (11, Value::Len(e)) if s.events => span.events.push(e),
            (15, Value::Len(status)) => {
                for (n, v) in Fields::new(status).map_while(Result::ok) {
                    if let (3, Value::Varint(c)) = (n, v) {
                        span.status = c;
                    }
                }
            }
            _ => {}
        }
    }
    span
}

/// Appends one key part: a tag byte, its length and its bytes (so parts never run together).
fn key_part(key: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    key.push(tag);
    key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    key.extend_from_slice(bytes);
}

/// The value of dimension `i`: the span's, else the resource's, else the default.
fn dim_value<'a>(
    i: usize,
    from_span: Option<&'a [u8]>,
    resource: &'a [Option<Vec<u8>>],
    dim: &'a Dim,
) -> Option<&'a [u8]> {
    from_span
        .or(resource[i].as_deref())
        .or(dim.default.as_deref())
}

/// What is common to one resource's spans.
struct ResourceView<'a> {
    service: String,
    dims: Vec<Option<Vec<u8>>>,
    event_dims: Vec<Option<Vec<u8>>>,
    scope: Option<(&'a [u8], &'a [u8])>,
}

pub struct Aggregator {
    pub settings: Settings,
    pub metrics: ConnectorMetrics,
    state: parking_lot::Mutex<State>,
}

impl Aggregator {
    pub fn new(settings: Settings, metrics: ConnectorMetrics) -> Self {
        Self {
            settings,
            metrics,
            state: parking_lot::Mutex::new(State {
                last_flush: unix_nanos(SystemTime::now()),
                ..Default::default()
            }),
        }
    }

    /// Counts every span of an encoded `ExportTraceServiceRequest`.
    pub fn record(&self, body: &[u8], now: Instant, wall: u64) {
        let s = &self.settings;
        let mut key = Vec::with_capacity(256);
        let mut state = self.state.lock();
        for rs in len_fields(body, 1) {
            let resource_bytes = len_fields(rs, 1).next().unwrap_or_default();
            let resource = Resource::decode(resource_bytes).unwrap_or_default();
            let Some(service) = resource.attributes.iter().find(|kv| kv.key == SERVICE_NAME) else {
                // The Collector skips resources without a service name too.
                continue;
            };
            let service = service.value.as_ref().map(value_string).unwrap_or_default();
            let resource_key = self.resource_key(resource_bytes, &resource);
            let lookup = |dims: &[Dim]| -> Vec<Option<Vec<u8>>> {
                dims.iter()
                    .map(|d| {
                        resource
                            .attributes
                            .iter()
                            .find(|kv| kv.key == d.name)
                            .and_then(|kv| kv.value.as_ref())
                            .map(Message::encode_to_vec)
                    })
                    .collect()
            };
            let mut view = ResourceView {
                service,
                dims: lookup(&s.dims),
                event_dims: lookup(&s.event_dims),
                scope: None,
            };
            let slot = self.ensure_resource(&mut state, resource_key, resource, now);
            for ss in len_fields(rs, 2) {
                view.scope = None;
                if !s.scopes.is_empty() {
                    if let Some(scope) = len_fields(ss, 1).next() {
                        let decoded = InstrumentationScope::decode(scope).unwrap_or_default();
                        if s.scopes.contains(&decoded.name) && !decoded.name.is_empty() {
                            // Keep the bytes of name and version for the key.
                            let name = len_fields(scope, 1).next().unwrap_or_default();
                            let version = len_fields(scope, 2).next().unwrap_or_default();
                            view.scope = Some((name, version));
                        }
                    }
                }
                for span in len_fields(ss, 2) {
                    let span = read_span(span, s);
                    self.record_span(&mut state, slot, &view, &span, &mut key, now, wall);
                }
            }
        }
        self.metrics.series.set(state.series as i64);
    }

    /// The resource's identity: all its attributes as received, or the configured key
    /// attributes only.
    fn resource_key(&self, bytes: &[u8], resource: &Resource) -> Arc<[u8]> {
        let s = &self.settings;
        if s.key_attributes.is_empty() {
            let mut key = Vec::new();
            for kv in len_fields(bytes, 1) {
                key_part(&mut key, 0, kv);
            }
            return Arc::from(key);
        }
        let mut key = Vec::new();
        for name in &s.key_attributes {
            match resource.attributes.iter().find(|kv| &kv.key == name) {
                Some(kv) => key_part(&mut key, 1, &kv.encode_to_vec()),
                None => key_part(&mut key, 0, &[]),
            }
        }
        Arc::from(key)
    }

    /// The slot of the resource's state, created (evicting the least recently seen beyond
    /// the bound) when new.
    fn ensure_resource(
        &self,
        state: &mut State,
        key: Arc<[u8]>,
        resource: Resource,
        now: Instant,
    ) -> usize {
        if let Some(&slot) = state.resources.index.get(&key) {
            if let Some(r) = state.resources.slots[slot].as_mut() {
                r.last_seen = Some(now);
            }
            return slot;
        }
        if state.resources.len() >= self.settings.resource_limit {
            let oldest = state
                .resources
                .values()
                .min_by_key(|r| r.last_seen)
                .map(|r| r.key.clone());
            if let Some(oldest) = oldest {
                if let Some(r) = state.resources.remove(&oldest) {
                    let n = r.series_count();
                    state.series -= n;
                    self.metrics.evicted.inc_by(n as u64);
                }
            }
        }
        state.resources.insert(ResourceState {
            key,
            attributes: resource.attributes,
            last_seen: Some(now),
            ..Default::default()
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn record_span(
        &self,
        state: &mut State,
        slot: usize,
        view: &ResourceView<'_>,
        span: &SpanView<'_>,
        key: &mut Vec<u8>,
        now: Instant,
        wall: u64,
    ) {
        let s = &self.settings;
        key.clear();
        if s.keep_service {
            key_part(key, 1, view.service.as_bytes());
        }
        if s.keep_name {
            key_part(key, 2, span.name);
        }
        if s.keep_kind {
            key_part(key, 3, &[span.kind as u8]);
        }
        if s.keep_status {
            key_part(key, 4, &[span.status as u8]);
        }
        for (i, d) in s.dims.iter().enumerate() {
            match dim_value(i, span.dims[i], &view.dims, d) {
                Some(v) => key_part(key, 5, v),
                None => key_part(key, 6, &[]),
            }
        }
        if let Some((name, version)) = view.scope {
            key_part(key, 7, name);
            key_part(key, 7, version);
        }
        let duration = if span.end > span.start {
            (span.end - span.start) as f64 / s.unit_nanos
        } else {
            0.0
        };
        let State {
            resources,
            series: count,
            pending,
            ..
        } = state;
        let Some(resource) = resources.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let generation = resource.generation;
        let series = match resource.series.get_mut(&key[..]) {
            Some(series) => series,
            None if *count < s.limit => {
                *count += 1;
                let attributes = self.attributes(view, span, &[]);
                resource
                    .series
                    .entry(key.clone().into_boxed_slice())
                    .or_insert_with(|| Series::new(attributes, &s.histogram, wall, now))
            }
            None => {
                self.metrics.overflow_spans.inc();
                resource.overflow.get_or_insert_with(|| {
                    Series::new(
                        vec![attribute(
                            OVERFLOW_KEY,
                            AnyValue {
                                value: Some(any_value::Value::BoolValue(true)),
                            },
                        )],
                        &s.histogram,
                        wall,
                        now,
                    )
                })
            }
        };
        series.calls += 1;
        series.duration.record(duration);
        series.last_seen = now;
        if s.exemplars && span.trace_id.len() == 16 {
            // Built only for a series with room left: most spans of a busy series find its
            // exemplars full, and two id copies per span were spent on them for nothing.
            let exemplar = || Exemplar {
                trace_id: span.trace_id.to_vec(),
                span_id: span.span_id.to_vec(),
                time_unix_nano: span.end,
                value: Some(exemplar::Value::AsDouble(duration)),
                ..Default::default()
            };
            if !s.via_window {
                if series.exemplars.len() < s.max_exemplars {
                    series.exemplars.push(exemplar());
                }
            } else if series.exemplars.len() < s.max_exemplars
                && series.pending < s.pending_per_series()
            {
                series.pending += 1;
                let mut trace = [0u8; 16];
                trace.copy_from_slice(span.trace_id);
                pending.add(
                    trace,
                    Candidate {
                        slot,
                        generation,
                        series: key.clone().into_boxed_slice(),
                        exemplar: exemplar(),
                    },
                    now,
                    resources,
                    &self.metrics,
                );
            }
        }
        if s.events {
            self.record_events(state, slot, view, span, key, now, wall);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_events(
        &self,
        state: &mut State,
        slot: usize,
        view: &ResourceView<'_>,
        span: &SpanView<'_>,
        base: &[u8],
        now: Instant,
        wall: u64,
    ) {
        let s = &self.settings;
        let State {
            resources,
            series: count,
            ..
        } = state;
        let Some(resource) = resources.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        for event in &span.events {
            let mut found = vec![None; s.event_dims.len()];
            find_dims(event, 3, &s.event_dims, &mut found);
            let mut key = base.to_vec();
            for (i, d) in s.event_dims.iter().enumerate() {
                match dim_value(i, found[i], &view.event_dims, d) {
                    Some(v) => key_part(&mut key, 8, v),
                    None => key_part(&mut key, 9, &[]),
                }
            }
            let series = match resource.events.get_mut(&key[..]) {
                Some(series) => series,
                None if *count < s.limit => {
                    *count += 1;
                    let extra: Vec<KeyValue> = s
                        .event_dims
                        .iter()
                        .enumerate()
                        .filter_map(|(i, d)| {
                            let v = dim_value(i, found[i], &view.event_dims, d)?;
                            Some(attribute(&d.name, AnyValue::decode(v).unwrap_or_default()))
                        })
                        .collect();
                    let attributes = self.attributes(view, span, &extra);
                    resource
                        .events
                        .entry(key.into_boxed_slice())
                        .or_insert_with(|| {
                            Series::new(attributes, &HistogramKind::Disabled, wall, now)
                        })
                }
                None => {
                    self.metrics.overflow_spans.inc();
                    resource.events_overflow.get_or_insert_with(|| {
                        Series::new(
                            vec![attribute(
                                OVERFLOW_KEY,
                                AnyValue {
                                    value: Some(any_value::Value::BoolValue(true)),
                                },
                            )],
                            &HistogramKind::Disabled,
                            wall,
                            now,
                        )
                    })
                }
            };
            series.calls += 1;
            series.last_seen = now;
        }
    }

    /// A new series' attributes, in the Collector's order.
    fn attributes(
        &self,
        view: &ResourceView<'_>,
        span: &SpanView<'_>,
        extra: &[KeyValue],
    ) -> Vec<KeyValue> {
        let s = &self.settings;
        let mut out = Vec::with_capacity(4 + s.dims.len() + extra.len());
        if s.keep_service {
            out.push(attribute(SERVICE_NAME, string_value(&view.service)));
        }
        if s.keep_name {
            out.push(attribute(
                SPAN_NAME,
                string_value(&String::from_utf8_lossy(span.name)),
            ));
        }
        if s.keep_kind {
            out.push(attribute(SPAN_KIND, string_value(span_kind(span.kind))));
        }
        if s.keep_status {
            out.push(attribute(
                STATUS_CODE,
                string_value(status_code(span.status)),
            ));
        }
        for (i, d) in s.dims.iter().enumerate() {
            if let Some(v) = dim_value(i, span.dims[i], &view.dims, d) {
                out.push(attribute(&d.name, AnyValue::decode(v).unwrap_or_default()));
            }
        }
        out.extend_from_slice(extra);
        if let Some((name, version)) = view.scope {
            out.push(attribute(
                SCOPE_NAME_KEY,
                string_value(&String::from_utf8_lossy(name)),
            ));
            if !version.is_empty() {
                out.push(attribute(
                    SCOPE_VERSION_KEY,
                    string_value(&String::from_utf8_lossy(version)),
                ));
            }
        }
        out
    }

    /// A window decided `verdict.trace_id`: its candidates become exemplars when it was
    /// kept, and are forgotten otherwise.
    pub fn decided(&self, verdict: &Verdict<'_>) {
        let mut state = self.state.lock();
        let State {
            resources, pending, ..
        } = &mut *state;
        let Some(candidates) = pending.by_trace.remove(verdict.trace_id) else {
            return;
        };
        pending.total -= candidates.len();
        for c in candidates {
            let series = resources.series_mut(&c);
            if verdict.sampled {
                self.metrics.exemplars_kept.inc();
            } else {
                self.metrics.exemplars_dropped.inc();
            }
            if let Some(series) = series {
                series.pending = series.pending.saturating_sub(1);
                if verdict.sampled && series.exemplars.len() < self.settings.max_exemplars {
                    series.exemplars.push(c.exemplar);
                }
            }
        }
    }

    /// Builds what to send now (`None` when nothing is held). Cumulative: every live series,
    /// exemplars cleared after; delta: what was recorded since the last flush, taken out
    /// (give it back with [`Aggregator::restore`] if the pipeline refuses it).
    pub fn flush(
        &self,
        now: Instant,
        wall: u64,
    ) -> Option<(ExportMetricsServiceRequest, Option<Taken>)> {
        let s = &self.settings;
        let mut state = self.state.lock();
        self.expire(&mut state, now);
        let start_of_delta = std::mem::replace(&mut state.last_flush, wall);
        let taken = match s.temporality {
            Temporality::Delta => {
                state.series = 0;
                Some(Taken(std::mem::take(&mut state.resources)))
            }
            Temporality::Cumulative => None,
        };
        let resources = match &taken {
            Some(t) => &t.0,
            None => &state.resources,
        };
        let mut out = ExportMetricsServiceRequest::default();
        for r in resources.values() {
            if r.series.is_empty()
                && r.overflow.is_none()
                && r.events.is_empty()
                && r.events_overflow.is_none()
            {
                continue;
            }
            let start = |series: &Series| match s.temporality {
                Temporality::Cumulative => series.start,
                Temporality::Delta => series.start.max(start_of_delta),
            };
            let all: Vec<&Series> = r.series.values().chain(r.overflow.as_ref()).collect();
            let mut metrics = Vec::new();
            let exemplars = |series: &Series| -> Vec<Exemplar> {
                if s.exemplars {
                    series.exemplars.clone()
                } else {
                    Vec::new()
                }
            };
            if !all.is_empty() {
                metrics.push(Metric {
                    name: s.calls_name.clone(),
                    data: Some(Data::Sum(Sum {
                        data_points: all
                            .iter()
                            .map(|series| NumberDataPoint {
                                attributes: series.attributes.clone(),
                                start_time_unix_nano: start(series),
                                time_unix_nano: wall,
                                exemplars: exemplars(series),
                                value: Some(number_data_point::Value::AsInt(series.calls as i64)),
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: s.temporality.otlp(),
                        is_monotonic: true,
                    })),
                    ..Default::default()
                });
                match &s.histogram {
                    HistogramKind::Disabled => {}
                    HistogramKind::Explicit(_) => metrics.push(Metric {
                        name: s.duration_name.clone(),
                        unit: s.unit.to_string(),
                        data: Some(Data::Histogram(Histogram {
                            data_points: all
                                .iter()
                                .filter_map(|series| match &series.duration {
                                    Hist::Explicit(h) => Some(HistogramDataPoint {
                                        attributes: series.attributes.clone(),
                                        start_time_unix_nano: start(series),
                                        time_unix_nano: wall,
                                        count: h.count,
                                        sum: Some(h.sum),
                                        bucket_counts: h.counts.clone(),
                                        explicit_bounds: h.bounds().to_vec(),
                                        exemplars: exemplars(series),
                                        ..Default::default()
                                    }),
                                    _ => None,
                                })
                                .collect(),
                            aggregation_temporality: s.temporality.otlp(),
                        })),
                        ..Default::default()
                    }),
                    HistogramKind::Exponential(_) => metrics.push(Metric {
                        name: s.duration_name.clone(),
                        unit: s.unit.to_string(),
                        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: all
                                .iter()
                                .filter_map(|series| match &series.duration {
                                    Hist::Exponential(h) => Some(ExponentialHistogramDataPoint {
                                        attributes: series.attributes.clone(),
                                        start_time_unix_nano: start(series),
                                        time_unix_nano: wall,
                                        count: h.count,
                                        sum: Some(h.sum),
                                        scale: h.scale,
                                        zero_count: h.zero_count,
                                        positive: Some(h.positive()),
                                        negative: None,
                                        min: (h.count > 0).then_some(h.min),
                                        max: (h.count > 0).then_some(h.max),
                                        exemplars: exemplars(series),
                                        ..Default::default()
                                    }),
                                    _ => None,
                                })
                                .collect(),
                            aggregation_temporality: s.temporality.otlp(),
                        })),
                        ..Default::default()
                    }),
                }
            }
            let events: Vec<&Series> = r
                .events
                .values()
                .chain(r.events_overflow.as_ref())
                .collect();
            if !events.is_empty() {
                metrics.push(Metric {
                    name: s.events_name.clone(),
                    data: Some(Data::Sum(Sum {
                        data_points: events
                            .iter()
                            .map(|series| NumberDataPoint {
                                attributes: series.attributes.clone(),
                                start_time_unix_nano: start(series),
                                time_unix_nano: wall,
                                value: Some(number_data_point::Value::AsInt(series.calls as i64)),
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: s.temporality.otlp(),
                        is_monotonic: true,
                    })),
                    ..Default::default()
                });
            }
            out.resource_metrics.push(ResourceMetrics {
                resource: Some(Resource {
                    attributes: r.attributes.clone(),
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "spanmetricsconnector".into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        if taken.is_none() {
            // Exemplars belong to one flush.
            for r in state.resources.values_mut() {
                for series in r.series.values_mut().chain(r.overflow.as_mut()) {
                    series.exemplars.clear();
                }
            }
        }
        self.metrics.series.set(state.series as i64);
        if out.resource_metrics.is_empty() {
            return None;
        }
        Some((out, taken))
    }

    /// Puts back delta data whose flush the pipeline refused, so the next flush carries it.
    pub fn restore(&self, taken: Taken) {
        let max = self.settings.max_exemplars;
        let mut state = self.state.lock();
        for old in taken.0.into_values() {
            let slot = state.resources.index.get(&old.key).copied();
            let Some(current) = slot.and_then(|s| state.resources.slots[s].as_mut()) else {
                state.series += old.series_count();
                state.resources.insert(old);
                continue;
            };
            let mut added = 0;
            for (k, series) in old.series {
                match current.series.get_mut(&k) {
                    Some(c) => c.merge(series, max),
                    None => {
                        added += 1;
                        current.series.insert(k, series);
                    }
                }
            }
            for (k, series) in old.events {
                match current.events.get_mut(&k) {
                    Some(c) => c.merge(series, max),
                    None => {
                        added += 1;
                        current.events.insert(k, series);
                    }
                }
            }
            for (mine, theirs) in [
                (&mut current.overflow, old.overflow),
                (&mut current.events_overflow, old.events_overflow),
            ] {
                if let Some(o) = theirs {
                    match mine {
                        Some(c) => c.merge(o, max),
                        None => *mine = Some(o),
                    }
                }
            }
            state.series += added;
        }
        // Restored data may briefly exceed the bound; new series overflow until the next
        // delta flush takes it out again.
        self.metrics.series.set(state.series as i64);
    }

    /// Forgets series not seen for `metrics_expiration`, and exemplar candidates whose
    /// verdict did not come.
    fn expire(&self, state: &mut State, now: Instant) {
        while let Some((trace, since)) = state.pending.order.front().copied() {
            if now.saturating_duration_since(since) < PENDING_MAX_AGE {
                break;
            }
            state.pending.order.pop_front();
            state
                .pending
                .forget(&trace, &mut state.resources, &self.metrics);
        }
        let Some(expiration) = self.settings.expiration else {
            return;
        };
        let mut expired = 0;
        for r in state.resources.values_mut() {
            let before = r.series_count();
            r.series
                .retain(|_, s| now.saturating_duration_since(s.last_seen) < expiration);
            r.events
                .retain(|_, s| now.saturating_duration_since(s.last_seen) < expiration);
            for o in [&mut r.overflow, &mut r.events_overflow] {
                if o.as_ref()
                    .is_some_and(|s| now.saturating_duration_since(s.last_seen) >= expiration)
                {
                    *o = None;
                }
            }
            expired += before - r.series_count();
        }
        let empty: Vec<Arc<[u8]>> = state
            .resources
            .values()
            .filter(|r| {
                r.series.is_empty()
                    && r.events.is_empty()
                    && r.overflow.is_none()
                    && r.events_overflow.is_none()
            })
            .map(|r| r.key.clone())
            .collect();
        for key in empty {
            state.resources.remove(&key);
        }
        state.series -= expired;
        self.metrics.expired.inc_by(expired as u64);
    }
}

impl Pending {
    fn add(
        &mut self,
        trace: [u8; 16],
        candidate: Candidate,
        now: Instant,
        resources: &mut Resources,
        metrics: &ConnectorMetrics,
    ) {
        // `order` also holds traces already decided (removing them from the middle would
        // cost a scan): bounding it as well keeps both bounded.
        while self.total >= MAX_PENDING || self.order.len() >= 2 * MAX_PENDING {
            let Some((oldest, _)) = self.order.pop_front() else {
                break;
            };
            self.forget(&oldest, resources, metrics);
        }
        let list = self.by_trace.entry(trace).or_default();
        if list.is_empty() {
            self.order.push_back((trace, now));
        }
        list.push(candidate);
        self.total += 1;
    }

    /// Drops `trace`'s candidates without a verdict.
    fn forget(&mut self, trace: &[u8; 16], resources: &mut Resources, metrics: &ConnectorMetrics) {
        let Some(list) = self.by_trace.remove(trace) else {
            return;
        };
        self.total -= list.len();
        metrics.exemplars_expired.inc_by(list.len() as u64);
        for c in list {
            if let Some(series) = resources.series_mut(&c) {
                series.pending = series.pending.saturating_sub(1);
            }
        }
    }
}
