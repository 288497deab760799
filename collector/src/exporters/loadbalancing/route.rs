//! Splitting a batch between backends, record by record, on the protobuf wire.
//!
//! A batch from a sidecar mixes many traces. Each span and each log record goes to the
//! backend that owns its routing key; a batch is therefore cut into one request per backend,
//! without decoding it: the envelopes around the records (resource group, scope group, and
//! for data points the metric and its data message) are copied as they are (field by field),
//! and the records' own bytes are copied unchanged. A batch whose records all go to one
//! backend is passed on as it is, without a copy.
//!
//! Spans and log records sit at the same place in both requests (field 1 resource group →
//! field 2 scope group → field 2 record); only the field holding the trace id differs.
//! Metrics sit there too (field 1 → 2 → 2 metric), and a metric's data points one level
//! further (the data oneof: gauge 5, sum 7, histogram 9, exponential histogram 10, summary 11
//! → field 1 data point). What a record is depends on the key ([`Layout`]): a span, a log
//! record, a metric (routing metrics by service, resource or name), or a data point (by
//! stream: the point's series is its resource, scope, metric and attributes).

use std::ops::Range;

use weft_config::SignalKind;
use weft_proto::wire::{self, Fields, Value};

use crate::pipeline::Payload;

/// What records are routed by: the Collector's `routing_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingKey {
    /// The record's trace id (16 bytes). Spans and logs of one trace meet at one backend.
    TraceId,
    /// The resource's `service.name`: every record of a service goes to one backend.
    Service,
    /// Metrics: every attribute of the resource (in key order, so the order a client wrote
    /// them in does not matter): every metric of one resource goes to one backend.
    Resource,
    /// Metrics: the metric's name.
    Metric,
    /// Metrics, per data point: the point's stream identity (resource attributes, scope name,
    /// version and attributes, metric name, unit, type, temporality and monotonicity, the
    /// point's attributes), so every point of one series goes to one backend.
    StreamId,
}

impl RoutingKey {
    /// The Collector's word for the key in `routing_key`.
    pub fn name(self) -> &'static str {
        match self {
            RoutingKey::TraceId => "traceID",
            RoutingKey::Service => "service",
            RoutingKey::Resource => "resource",
            RoutingKey::Metric => "metric",
            RoutingKey::StreamId => "streamID",
        }
    }
}

/// Where a signal keeps its records on the wire.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// Spans and log records: `trace_id` is the trace id's field number in a record (1 in a
    /// `Span`, 9 in a `LogRecord`).
    Records { trace_id: u32 },
    /// Metrics: a record is a metric, or a data point when routing by stream.
    Metrics,
}

impl Layout {
    /// The keys this signal can be routed by: [`split`] with another key routes every record
    /// as [`RecordKey::None`] (the configuration rules that out).
    pub fn keys(self) -> &'static [RoutingKey] {
        match self {
            Layout::Records { .. } => &[RoutingKey::TraceId, RoutingKey::Service],
            Layout::Metrics => &[
                RoutingKey::Service,
                RoutingKey::Resource,
                RoutingKey::Metric,
                RoutingKey::StreamId,
            ],
        }
    }

    /// How many levels below the request the records sit.
    fn record_depth(self, key: RoutingKey) -> usize {
        match (self, key) {
            (Layout::Metrics, RoutingKey::StreamId) => 5,
            _ => 3,
        }
    }

    /// Whether field `number` of a message `depth` levels below the request holds its
    /// children (the request's resource groups, a group's scopes, a scope's records, a
    /// metric's data, a data message's points).
    fn is_child(self, depth: usize, number: u32) -> bool {
        match depth {
            0 => number == 1,
            1 | 2 => number == 2,
            3 => matches!(number, 5 | 7 | 9 | 10 | 11),
            _ => number == 1,
        }
    }

    /// The items (as [`crate::pipeline::Payload`] counts them) one record holds: a span, a
    /// log record or a data point is one; a metric holds its data points.
    fn items(self, depth: usize, record: &[u8]) -> Result<usize, ()> {
        if !matches!(self, Layout::Metrics) || depth != 3 {
            return Ok(1);
        }
        let mut count = 0;
        for field in Fields::new(record) {
            if let (5 | 7 | 9 | 10 | 11, Value::Len(data)) = field? {
                for point in len_fields(data, 1) {
                    point?;
                    count += 1;
                }
            }
        }
        Ok(count)
    }
}

/// The layout of `kind`'s records.
pub fn layout(kind: SignalKind) -> Option<Layout> {
    match kind {
        SignalKind::Traces => Some(Layout::Records { trace_id: 1 }),
        SignalKind::Logs => Some(Layout::Records { trace_id: 9 }),
        SignalKind::Metrics => Some(Layout::Metrics),
    }
}

/// What one record is routed by, handed to the chooser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKey<'a> {
    /// A trace id, a service name (the resource's `service.name`, empty when absent), a
    /// metric name, or the canonical bytes of a resource's or a stream's identity.
    Key(&'a [u8]),
    /// A log record without a trace id (routing by trace id): spread round-robin.
    None,
}

/// The body cut into one request per destination: (destination, encoded request, items).
pub type Parts = Vec<(usize, Vec<u8>, usize)>;

/// How [`split`] answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Split {
    /// Every record goes to this destination: send the batch as it is.
    Whole(usize),
    /// The batch's records go to several destinations.
    Parts(Parts),
    /// No records.
    Empty,
}

/// The body is valid protobuf outside the shape the wire walker reads (a group, an over-long
/// varint): re-encode it with prost and split that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the batch is not in the shape the wire walker reads")]
pub struct Unreadable;

/// Cuts the encoded export request `body` by destination: `choose` names the destination
/// of each record from its [`RecordKey`]. [`Unreadable`] when the body is not in the shape
/// the wire walker reads (the caller then re-encodes it with prost and tries again).
pub fn split(
    body: &[u8],
    layout: Layout,
    key: RoutingKey,
    choose: impl FnMut(RecordKey<'_>) -> usize,
) -> Result<Split, Unreadable> {
    split_parts(&[body], layout, key, choose)
}

/// [`split`] of the request that `bodies`, whole encoded requests, make one after the other
/// (a batch of several received requests), without joining them first.
pub fn split_parts<B: AsRef<[u8]>>(
    bodies: &[B],
    layout: Layout,
    key: RoutingKey,
    choose: impl FnMut(RecordKey<'_>) -> usize,
) -> Result<Split, Unreadable> {
    split_walk(bodies, layout, key, choose).map_err(|()| Unreadable)
}

/// [`split`] of a batch: its received requests walked where they are (never joined), a
/// decoded batch encoded first. A batch outside the walker's shape is encoded by prost and
/// cut again; [`Unreadable`] only if that fails too.
pub fn split_batch<T: Payload>(
    batch: &T,
    layout: Layout,
    key: RoutingKey,
    mut choose: impl FnMut(RecordKey<'_>) -> usize,
) -> Result<Split, Unreadable> {
    let walked = match batch.encoded_parts() {
        Some(parts) => split_parts(parts, layout, key, &mut choose),
        None => split(&batch.to_bytes(), layout, key, &mut choose),
    };
    walked.or_else(|Unreadable| {
        // Valid protobuf outside the walker's shape: prost's encoding of it is inside.
        let encoded = T::from_request(batch.request().into_owned()).to_bytes();
        split(&encoded, layout, key, &mut choose)
    })
}

fn split_walk<B: AsRef<[u8]>>(
    bodies: &[B],
    layout: Layout,
    key: RoutingKey,
    mut choose: impl FnMut(RecordKey<'_>) -> usize,
) -> Result<Split, ()> {
    let depth = layout.record_depth(key);
    let mut plan = Plan::new(layout, depth);
    let mut destinations = Vec::new();
    if let (Layout::Records { trace_id: field }, RoutingKey::TraceId) = (layout, key) {
        // A record's key is in the record: one pass finds its destination and measures.
        let mut destination = |record: &[u8]| {
            let key = trace_id(record, field)?.map_or(RecordKey::None, RecordKey::Key);
            let d = choose(key);
            destinations.push(d);
            Ok(d)
        };
        for body in bodies {
            plan.size(body.as_ref(), 0, &mut destination)?;
        }
    } else {
        // Pass 1: every record's destination, in order (keys from the envelopes around it).
        for body in bodies {
            find_destinations(body.as_ref(), layout, key, &mut choose, &mut destinations)?;
        }
        // Pass 2: each envelope's share per destination (by trace id, in the walk above).
        let mut next = destinations.iter().copied();
        let mut destination = |_: &[u8]| next.next().ok_or(());
        for body in bodies {
            plan.size(body.as_ref(), 0, &mut destination)?;
        }
    }
    let Some(&first) = destinations.first() else {
        return Ok(Split::Empty);
    };
    if destinations.iter().all(|&d| d == first) {
        return Ok(Split::Whole(first));
    }
    // Pass 3: the requests, every byte written once into a request of the right size.
    let mut cut = Cut {
        next: destinations.iter().copied(),
        plan: &plan,
        node: 0,
        requests: plan.shares[0]
            .iter()
            .map(|&n| Vec::with_capacity(n))
            .collect(),
    };
    for body in bodies {
        cut.children(body.as_ref(), 0)?;
    }
    let requests = cut.requests;
    debug_assert!(requests
        .iter()
        .zip(&plan.shares[0])
        .all(|(r, &n)| r.len() == n));
    Ok(Split::Parts(
        requests
            .into_iter()
            .zip(plan.items)
            .enumerate()
            // A destination with bytes but no items got metrics without data points.
            .filter(|(_, (bytes, _))| !bytes.is_empty())
            .map(|(d, (bytes, n))| (d, bytes, n))
            .collect(),
    ))
}

/// Pass 1: appends the destination of every record of `body`, in wire order.
fn find_destinations(
    body: &[u8],
    layout: Layout,
    key: RoutingKey,
    choose: &mut impl FnMut(RecordKey<'_>) -> usize,
    destinations: &mut Vec<usize>,
) -> Result<(), ()> {
    if !layout.keys().contains(&key) {
        // Not a key of this signal (the configuration refuses it): spread, lose nothing.
        let depth = layout.record_depth(key);
        return each_record(body, layout, 0, depth, &mut |_| {
            destinations.push(choose(RecordKey::None));
            Ok(())
        });
    }
    let mut stream = Vec::new();
    for group in len_fields(body, 1) {
        let group = group?;
        let mut resource = Vec::new();
        match key {
            RoutingKey::Service => resource.extend_from_slice(service_name(group)?),
            RoutingKey::Resource | RoutingKey::StreamId => resource_identity(group, &mut resource)?,
            RoutingKey::TraceId | RoutingKey::Metric => {}
        }
        for scoped in len_fields(group, 2) {
            let scoped = scoped?;
            let mut scope = Vec::new();
            if key == RoutingKey::StreamId {
                scope_identity(scoped, &mut scope)?;
            }
            for record in len_fields(scoped, 2) {
                let record = record?;
                match (layout, key) {
                    (_, RoutingKey::Service | RoutingKey::Resource) => {
                        destinations.push(choose(RecordKey::Key(&resource)));
                    }
                    (Layout::Records { trace_id: field }, _) => {
                        let record_key = match trace_id(record, field)? {
                            Some(id) => RecordKey::Key(id),
                            None => RecordKey::None,
                        };
                        destinations.push(choose(record_key));
                    }
                    (Layout::Metrics, RoutingKey::Metric) => {
                        destinations.push(choose(RecordKey::Key(metric_name(record)?)));
                    }
                    (Layout::Metrics, _) => {
                        // One key per data point: resource ‖ scope ‖ metric ‖ point attributes.
                        stream.clear();
                        stream.extend_from_slice(&resource);
                        stream.extend_from_slice(&scope);
                        metric_identity(record, &mut stream)?;
                        let metric_end = stream.len();
                        for field in Fields::new(record) {
                            let (number, value) = field?;
                            let (5 | 7 | 9 | 10 | 11, Value::Len(data)) = (number, value) else {
                                continue;
                            };
                            for point in len_fields(data, 1) {
                                stream.truncate(metric_end);
                                canonical_attributes(
                                    point?,
                                    point_attributes(number),
                                    &mut stream,
                                )?;
                                destinations.push(choose(RecordKey::Key(&stream)));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Calls `f` with every record `depth` levels below `msg` (which sits `at` levels down).
fn each_record(
    msg: &[u8],
    layout: Layout,
    at: usize,
    depth: usize,
    f: &mut impl FnMut(&[u8]) -> Result<(), ()>,
) -> Result<(), ()> {
    for field in Fields::new(msg) {
        let (number, value) = field?;
        let Value::Len(child) = value else { continue };
        if !layout.is_child(at, number) {
            continue;
        }
        if at + 1 == depth {
            f(child)?;
        } else {
            each_record(child, layout, at + 1, depth, f)?;
        }
    }
    Ok(())
}

/// Pass 2: how many bytes each destination's share of each envelope takes.
struct Plan {
    layout: Layout,
    record_depth: usize,
    /// `shares[k][d]`: bytes of the children, framed, of the message being measured `k`
    /// levels down that go to destination `d` (each grows to the highest destination seen);
    /// `shares[0]` ends as the requests' sizes.
    shares: Vec<Vec<usize>>,
    /// Every envelope, in wire order.
    envelopes: Vec<Envelope>,
    /// (destination, length of the envelope's copy there), for the destinations that get
    /// some of an envelope's records.
    sizes: Vec<(usize, usize)>,
    /// The envelopes' fields other than their children, one after another.
    heads: Vec<u8>,
    /// Items per destination.
    items: Vec<usize>,
}

impl Plan {
    fn new(layout: Layout, record_depth: usize) -> Self {
        Self {
            layout,
            record_depth,
            shares: vec![Vec::new(); record_depth],
            envelopes: Vec::new(),
            sizes: Vec::new(),
            heads: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Adds the children of `msg` (which sits `at` levels down) to `shares[at]`;
    /// `destination` names each record's.
    fn size(
        &mut self,
        msg: &[u8],
        at: usize,
        destination: &mut impl FnMut(&[u8]) -> Result<usize, ()>,
    ) -> Result<(), ()> {
        let layout = self.layout;
        for field in Fields::new(msg) {
            let (number, value) = field?;
            let Value::Len(child) = value else { continue };
            if !layout.is_child(at, number) {
                continue;
            }
            if at + 1 == self.record_depth {
                let d = destination(child)?;
                let shares = &mut self.shares[at];
                if shares.len() <= d {
                    shares.resize(d + 1, 0);
                }
                shares[d] += wire::len_header_len(number, child.len()) + child.len();
                if self.items.len() <= d {
                    self.items.resize(d + 1, 0);
                }
                self.items[d] += layout.items(at + 1, child)?;
                continue;
            }
            let node = self.envelopes.len();
            let head_start = self.heads.len();
            put_head(&mut self.heads, child, |n| layout.is_child(at + 1, n))?;
            let head = self.heads.len() - head_start;
            self.envelopes.push(Envelope {
                head: head_start..self.heads.len(),
                sizes: 0..0,
            });
            self.size(child, at + 1, destination)?;
            let start = self.sizes.len();
            let (outer, inner) = self.shares.split_at_mut(at + 1);
            let (totals, shares) = (&mut outer[at], &mut inner[0]);
            if totals.len() < shares.len() {
                totals.resize(shares.len(), 0);
            }
            for (d, (total, share)) in totals.iter_mut().zip(shares.iter_mut()).enumerate() {
                if *share == 0 {
                    continue;
                }
                let len = head + *share;
                self.sizes.push((d, len));
                *total += wire::len_header_len(number, len) + len;
                *share = 0;
            }
            self.envelopes[node].sizes = start..self.sizes.len();
        }
        Ok(())
    }
}

/// One envelope (resource group, scope group, metric, data message) as [`Plan`] measured it.
struct Envelope {
    /// Its head in [`Plan::heads`].
    head: Range<usize>,
    /// Its entries in [`Plan::sizes`].
    sizes: Range<usize>,
}

/// Pass 3: copies each record, under copies of its envelopes, into its destination's
/// request, measured by [`Plan`].
struct Cut<'a, I> {
    next: I,
    plan: &'a Plan,
    /// The next envelope's index.
    node: usize,
    requests: Vec<Vec<u8>>,
}

impl<I: Iterator<Item = usize>> Cut<'_, I> {
    /// Appends the children of `msg` (which sits `at` levels down) to the requests, each
    /// destination's share framed under its field number.
    fn children(&mut self, msg: &[u8], at: usize) -> Result<(), ()> {
        for field in Fields::new(msg) {
            let (number, value) = field?;
            let Value::Len(child) = value else { continue };
            let plan = self.plan;
            if !plan.layout.is_child(at, number) {
                continue;
            }
            if at + 1 == plan.record_depth {
                let d = self.next.next().ok_or(())?;
                wire::put_len_field(&mut self.requests[d], number, child);
                continue;
            }
            let envelope = &plan.envelopes[self.node];
            self.node += 1;
            let head = &plan.heads[envelope.head.clone()];
            for &(d, len) in &plan.sizes[envelope.sizes.clone()] {
                let request = &mut self.requests[d];
                wire::put_len_header(request, number, len);
                request.extend_from_slice(head);
            }
            self.children(child, at + 1)?;
        }
        Ok(())
    }
}

/// The length-delimited fields `number` of `msg`; `Err` on a malformed field.
fn len_fields(msg: &[u8], number: u32) -> impl Iterator<Item = Result<&[u8], ()>> {
    Fields::new(msg).filter_map(move |field| match field {
        Ok((n, Value::Len(bytes))) if n == number => Some(Ok(bytes)),
        Ok(_) => None,
        Err(()) => Some(Err(())),
    })
}

/// Appends every field of an envelope except its children, re-encoded as they were: the
/// resource or scope, the schema URL, a metric's name and unit, a sum's temporality, unknown
/// fields.
fn put_head(out: &mut Vec<u8>, msg: &[u8], is_child: impl Fn(u32) -> bool) -> Result<(), ()> {
    for field in Fields::new(msg) {
        let (number, value) = field?;
        if is_child(number) {
            continue;
        }
        put_field(out, number, value);
    }
    Ok(())
}

/// Appends one field as it was on the wire.
fn put_field(out: &mut Vec<u8>, number: u32, value: Value<'_>) {
    let key = |wire_type: u64| (u64::from(number) << 3) | wire_type;
    match value {
        Value::Varint(v) => {
            wire::put_varint(out, key(0));
            wire::put_varint(out, v);
        }
        Value::I64(v) => {
            wire::put_varint(out, key(1));
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Len(bytes) => wire::put_len_field(out, number, bytes),
        Value::I32(v) => {
            wire::put_varint(out, key(5));
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A record's trace id (field `number`), `None` when absent or empty. The receiver checked
/// that a present one is 16 bytes. It is the record's only trace id: the receiver's scanner
/// sends a record with two to prost, whose encoding writes one, so the walk stops at the
/// first (a span's trace id is its first field).
fn trace_id(record: &[u8], number: u32) -> Result<Option<&[u8]>, ()> {
    for field in Fields::new(record) {
        if let (n, Value::Len(bytes)) = field? {
            if n == number {
                return Ok(Some(bytes).filter(|b| !b.is_empty()));
            }
        }
    }
    Ok(None)
}

/// The `service.name` string of a resource group's resource (field 1 → attributes 1 →
/// KeyValue{1 key, 2 AnyValue{1 string}}); empty when there is none.
fn service_name(group: &[u8]) -> Result<&[u8], ()> {
    let mut name: &[u8] = &[];
    for resource in len_fields(group, 1) {
        for kv in len_fields(resource?, 1) {
            let kv = kv?;
            let mut key: &[u8] = &[];
            let mut value = None;
            for field in Fields::new(kv) {
                match field? {
                    (1, Value::Len(k)) => key = k,
                    (2, Value::Len(v)) => value = Some(v),
                    _ => {}
                }
            }
            if key != b"service.name" {
                continue;
            }
            if let Some(v) = value {
                for s in len_fields(v, 1) {
                    name = s?;
                }
            }
        }
    }
    Ok(name)
}

/// A metric's name (field 1); empty when absent.
fn metric_name(metric: &[u8]) -> Result<&[u8], ()> {
    let mut name: &[u8] = &[];
    for n in len_fields(metric, 1) {
        name = n?;
    }
    Ok(name)
}

/// The attributes field of a data point inside the metric's data field `data`: 7 in a
/// `NumberDataPoint` (gauge 5, sum 7) and a `SummaryDataPoint` (11), 9 in a
/// `HistogramDataPoint` (9), 1 in an `ExponentialHistogramDataPoint` (10).
fn point_attributes(data: u32) -> u32 {
    match data {
        9 => 9,
        10 => 1,
        _ => 7,
    }
}

/// Appends `bytes` with its length first, so that concatenated parts of an identity cannot
/// run into each other (`"ab" ‖ "c"` differs from `"a" ‖ "bc"`).
fn put_part(out: &mut Vec<u8>, bytes: &[u8]) {
    wire::put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends the attributes (the `KeyValue`s at field `number` of `msg`) in key order, each
/// as its key and its encoded value: the same set written in another order is the same
/// identity.
fn canonical_attributes(msg: &[u8], number: u32, out: &mut Vec<u8>) -> Result<(), ()> {
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    for kv in len_fields(msg, number) {
        let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
        for field in Fields::new(kv?) {
            match field? {
                (1, Value::Len(k)) => key = k,
                (2, Value::Len(v)) => value = v,
                _ => {}
            }
        }
        pairs.push((key, value));
    }
    pairs.sort_unstable();
    wire::put_varint(out, pairs.len() as u64);
    for (key, value) in pairs {
        put_part(out, key);
        put_part(out, value);
    }
    Ok(())
}

/// Appends a resource group's identity: its resource's attributes (field 1 → 1).
fn resource_identity(group: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    let mut resource: &[u8] = &[];
    for r in len_fields(group, 1) {
        resource = r?;
    }
    canonical_attributes(resource, 1, out)
}

/// Appends a scope group's identity: its scope's name, version and attributes (field 1 →
/// 1, 2, 3), as the Collector's `identity.OfScope` (after the resource's).
fn scope_identity(scoped: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    let mut scope: &[u8] = &[];
    for s in len_fields(scoped, 1) {
        scope = s?;
    }
    let (mut name, mut version): (&[u8], &[u8]) = (&[], &[]);
    for field in Fields::new(scope) {
        match field? {
            (1, Value::Len(n)) => name = n,
            (2, Value::Len(v)) => version = v,
            _ => {}
        }
    }
    put_part(out, name);
    put_part(out, version);
    canonical_attributes(scope, 3, out)
}

/// Appends a metric's identity, as the Collector's `identity.OfMetric`: its name, unit,
/// type (the data field's number), and its data's temporality (field 2) and monotonicity
/// (field 3, sums only).
fn metric_identity(metric: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    let (mut name, mut unit): (&[u8], &[u8]) = (&[], &[]);
    let (mut kind, mut temporality, mut monotonic) = (0u32, 0u64, 0u64);
    for field in Fields::new(metric) {
        match field? {
            (1, Value::Len(n)) => name = n,
            (3, Value::Len(u)) => unit = u,
            (number @ (5 | 7 | 9 | 10 | 11), Value::Len(data)) => {
                kind = number;
                for field in Fields::new(data) {
                    match field? {
                        (2, Value::Varint(t)) => temporality = t,
                        (3, Value::Varint(m)) => monotonic = m,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    put_part(out, name);
    put_part(out, unit);
    wire::put_varint(out, u64::from(kind));
    wire::put_varint(out, temporality);
    wire::put_varint(out, monotonic);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
    use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
    use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
    use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weft_proto::resource::v1::Resource;
    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn service(name: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(name.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("span {id}"),
            ..Default::default()
        }
    }

    /// Two services, two scopes in the first, spans of traces 1, 2 and 3 mixed.
    fn mixed() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: service("frontend"),
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "http".into(),
                                ..Default::default()
                            }),
                            spans: vec![span(1, 1), span(2, 2), span(1, 3)],
                            schema_url: "s".into(),
                        },
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "db".into(),
                                ..Default::default()
                            }),
                            spans: vec![span(3, 4)],
                            ..Default::default()
                        },
                    ],
                },
                ResourceSpans {
                    resource: service("payments"),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span(2, 5), span(3, 6)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    /// Destination = the trace id's first byte, minus one.
    fn by_trace(key: RecordKey<'_>) -> usize {
        match key {
            RecordKey::Key(k) => usize::from(k[0]) - 1,
            RecordKey::None => panic!("every span has a trace id"),
        }
    }

    #[test]
    fn spans_are_routed_one_by_one_under_copies_of_their_envelopes() {
        let body = mixed().encode_to_vec();
        let layout = layout(SignalKind::Traces).unwrap();
        let Ok(Split::Parts(parts)) = split(&body, layout, RoutingKey::TraceId, by_trace) else {
            panic!("three traces make three parts");
        };
        assert_eq!(parts.len(), 3);
        let mut seen = 0;
        for (d, bytes, n) in parts {
            let req = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
            let mut count = 0;
            for rs in &req.resource_spans {
                let original = mixed()
                    .resource_spans
                    .into_iter()
                    .find(|o| o.resource == rs.resource)
                    .expect("the resource is copied whole");
                assert_eq!(rs.schema_url, original.schema_url);
                for ss in &rs.scope_spans {
                    let scope = original
                        .scope_spans
                        .iter()
                        .find(|o| o.scope == ss.scope)
                        .expect("the scope is copied whole");
                    assert_eq!(ss.schema_url, scope.schema_url);
                    for s in &ss.spans {
                        assert_eq!(usize::from(s.trace_id[0]) - 1, d);
                        assert!(scope.spans.contains(s), "spans are copied unchanged");
                        count += 1;
                    }
                }
            }
            assert_eq!(count, n);
            seen += n;
        }
        assert_eq!(seen, 6, "every span goes somewhere, once");
    }

    #[test]
    fn a_batch_of_one_destination_is_not_copied() {
        let body = mixed().encode_to_vec();
        let layout = layout(SignalKind::Traces).unwrap();
        assert_eq!(
            split(&body, layout, RoutingKey::TraceId, |_| 4),
            Ok(Split::Whole(4))
        );
        assert_eq!(
            split(&[], layout, RoutingKey::TraceId, |_| 4),
            Ok(Split::Empty)
        );
    }

    #[test]
    fn a_batch_of_several_requests_is_cut_as_the_request_they_make_together() {
        let layout = layout(SignalKind::Traces).unwrap();
        let first = mixed().encode_to_vec();
        let mut second = mixed();
        second.resource_spans.reverse();
        let second = second.encode_to_vec();
        let joined = [first.clone(), second.clone()].concat();
        let whole = split(&joined, layout, RoutingKey::TraceId, by_trace).unwrap();
        let parts = split_parts(&[first, second], layout, RoutingKey::TraceId, by_trace);
        assert!(
            matches!(&whole, Split::Parts(p) if p.len() == 3),
            "{whole:?}"
        );
        assert_eq!(parts.unwrap(), whole);
    }

    #[test]
    fn a_batch_is_cut_the_same_in_received_parts_or_decoded() {
        use crate::pipeline::Traces;
        let layout = layout(SignalKind::Traces).unwrap();
        let mut received = Traces::from_encoded(mixed().encode_to_vec().into(), 6);
        received.merge(Traces::from_encoded(mixed().encode_to_vec().into(), 6));
        assert_eq!(received.encoded_parts().map(<[_]>::len), Some(2));
        let decoded = Traces::from_request(received.request().into_owned());
        assert!(decoded.encoded_parts().is_none());
        let cut = split_batch(&received, layout, RoutingKey::TraceId, by_trace).unwrap();
        assert!(matches!(&cut, Split::Parts(p) if p.len() == 3), "{cut:?}");
        assert_eq!(
            split_batch(&decoded, layout, RoutingKey::TraceId, by_trace).unwrap(),
            cut
        );
    }

    #[test]
    fn routing_by_service_reads_the_resource() {
        let body = mixed().encode_to_vec();
        let layout = layout(SignalKind::Traces).unwrap();
        let mut keys = Vec::new();
        let Ok(Split::Parts(parts)) = split(&body, layout, RoutingKey::Service, |key| {
            let RecordKey::Key(k) = key else { panic!() };
            keys.push(String::from_utf8(k.to_vec()).unwrap());
            usize::from(k == b"payments")
        }) else {
            panic!("two services make two parts");
        };
        assert_eq!(
            keys,
            ["frontend", "frontend", "frontend", "frontend", "payments", "payments"]
        );
        assert_eq!(parts.iter().map(|p| p.2).collect::<Vec<_>>(), [4, 2]);
    }

    #[test]
    fn logs_are_routed_by_their_trace_id_and_logs_without_one_say_so() {
        let record = |trace: Option<u8>, body: &str| LogRecord {
            trace_id: trace.map(|t| vec![t; 16]).unwrap_or_default(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body.into())),
            }),
            ..Default::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: service("frontend"),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(Some(1), "a"),
                        record(None, "orphan"),
                        record(Some(2), "b"),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = req.encode_to_vec();
        let layout = layout(SignalKind::Logs).unwrap();
        let mut orphans = 0;
        let Ok(Split::Parts(parts)) = split(&body, layout, RoutingKey::TraceId, |key| match key {
            RecordKey::Key(k) => usize::from(k[0]) - 1,
            RecordKey::None => {
                orphans += 1;
                2
            }
        }) else {
            panic!()
        };
        assert_eq!(orphans, 1);
        let bodies: Vec<(usize, Vec<String>)> = parts
            .iter()
            .map(|(d, bytes, _)| {
                let req = ExportLogsServiceRequest::decode(&bytes[..]).unwrap();
                let bodies = req.resource_logs[0].scope_logs[0]
                    .log_records
                    .iter()
                    .map(|r| match &r.body.as_ref().unwrap().value {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        _ => String::new(),
                    })
                    .collect();
                (*d, bodies)
            })
            .collect();
        assert_eq!(
            bodies,
            [
                (0, vec!["a".to_string()]),
                (1, vec!["b".to_string()]),
                (2, vec!["orphan".to_string()])
            ]
        );
    }

    #[test]
    fn a_body_the_walker_cannot_read_is_an_error_not_a_loss() {
        let layout = layout(SignalKind::Traces).unwrap();
        // A group (wire type 3) is outside what the walker reads.
        assert_eq!(
            split(&[0x0b], layout, RoutingKey::TraceId, |_| 0),
            Err(Unreadable)
        );
    }
}

#[cfg(test)]
mod metrics_tests {
    use super::*;
    use prost::Message;
    use std::collections::HashMap;
    use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
    use weft_proto::metrics::v1::{
        metric::Data, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use weft_proto::resource::v1::Resource;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn point(host: &str, v: f64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: vec![kv("host", host)],
            time_unix_nano: 1,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn sum(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.into(),
            unit: "1".into(),
            data: Some(Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        }
    }

    fn histogram(name: &str, hosts: &[&str]) -> Metric {
        Metric {
            name: name.into(),
            unit: "ms".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: hosts
                    .iter()
                    .map(|h| HistogramDataPoint {
                        attributes: vec![kv("host", h)],
                        count: 1,
                        bucket_counts: vec![1, 0],
                        explicit_bounds: vec![10.0],
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 1,
            })),
            ..Default::default()
        }
    }

    fn resource(attrs: &[(&str, &str)], metrics: Vec<Metric>) -> ResourceMetrics {
        ResourceMetrics {
            resource: Some(Resource {
                attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "meter".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: "s".into(),
            }],
            schema_url: "r".into(),
        }
    }

    /// Two resources of service `a` (the same attributes in two orders) and one of `b`.
    fn request() -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![
                resource(
                    &[("service.name", "a"), ("host.name", "h1")],
                    vec![
                        sum("requests", vec![point("x", 1.0), point("y", 2.0)]),
                        histogram("latency", &["x", "y", "z"]),
                    ],
                ),
                resource(
                    &[("service.name", "b")],
                    vec![sum("requests", vec![point("x", 3.0)])],
                ),
                resource(
                    &[("host.name", "h1"), ("service.name", "a")],
                    vec![sum("errors", vec![point("x", 4.0)])],
                ),
            ],
        }
    }

    /// A part of a split: (destination, the request, its points).
    type Part = (usize, ExportMetricsServiceRequest, usize);

    /// Splits `request()` by `key`, each distinct key to a destination of its own: the keys
    /// in first-seen order, and each part decoded.
    fn split_by(key: RoutingKey) -> (Vec<Vec<u8>>, Vec<Part>) {
        let body = request().encode_to_vec();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let split = split(&body, Layout::Metrics, key, |k| {
            let RecordKey::Key(k) = k else {
                panic!("every metric has a key")
            };
            keys.iter().position(|s| s == k).unwrap_or_else(|| {
                keys.push(k.to_vec());
                keys.len() - 1
            })
        })
        .unwrap();
        let Split::Parts(parts) = split else {
            panic!("several keys make several parts: {split:?}")
        };
        let parts = parts
            .into_iter()
            .map(|(d, bytes, n)| {
                let req = ExportMetricsServiceRequest::decode(&bytes[..]).unwrap();
                assert_eq!(
                    weft_proto::points::request_points(&req),
                    n,
                    "the item count is the points'"
                );
                (d, req, n)
            })
            .collect();
        (keys, parts)
    }

    /// (metric name, host) of every point of a request.
    fn points(req: &ExportMetricsServiceRequest) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for rm in &req.resource_metrics {
            assert_eq!(rm.schema_url, "r", "the resource envelope is copied");
            for sm in &rm.scope_metrics {
                assert_eq!(sm.scope.as_ref().unwrap().name, "meter");
                assert_eq!(sm.schema_url, "s");
                for m in &sm.metrics {
                    let hosts: Vec<String> = match m.data.as_ref().unwrap() {
                        Data::Sum(s) => {
                            assert_eq!((s.aggregation_temporality, s.is_monotonic), (2, true));
                            assert_eq!(m.unit, "1");
                            s.data_points.iter().map(|p| host(&p.attributes)).collect()
                        }
                        Data::Histogram(h) => {
                            assert_eq!(h.aggregation_temporality, 1);
                            assert_eq!(m.unit, "ms");
                            h.data_points.iter().map(|p| host(&p.attributes)).collect()
                        }
                        other => panic!("{other:?}"),
                    };
                    out.extend(hosts.into_iter().map(|h| (m.name.clone(), h)));
                }
            }
        }
        out
    }

    fn host(attrs: &[KeyValue]) -> String {
        match &attrs[0].value.as_ref().unwrap().value {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn by_service_every_metric_of_a_service_goes_together() {
        let (keys, parts) = split_by(RoutingKey::Service);
        assert_eq!(keys, [b"a".to_vec(), b"b".to_vec()]);
        let by_dest: HashMap<usize, Vec<(String, String)>> =
            parts.iter().map(|(d, req, _)| (*d, points(req))).collect();
        assert_eq!(by_dest[&0].len(), 6);
        assert_eq!(by_dest[&1], [("requests".to_string(), "x".to_string())]);
    }

    #[test]
    fn by_resource_the_attribute_order_does_not_matter() {
        let (keys, parts) = split_by(RoutingKey::Resource);
        assert_eq!(
            keys.len(),
            2,
            "the two orders of one attribute set are one resource"
        );
        assert_eq!(parts.iter().map(|p| p.2).collect::<Vec<_>>(), [6, 1]);
    }

    #[test]
    fn by_metric_name_points_of_a_name_go_together_whatever_their_resource() {
        let (keys, parts) = split_by(RoutingKey::Metric);
        assert_eq!(
            keys,
            [
                b"requests".to_vec(),
                b"latency".to_vec(),
                b"errors".to_vec()
            ]
        );
        for (d, req, _) in &parts {
            let name = String::from_utf8(keys[*d].clone()).unwrap();
            assert!(points(req).iter().all(|(m, _)| *m == name));
        }
        assert_eq!(parts.iter().map(|p| p.2).collect::<Vec<_>>(), [3, 3, 1]);
    }

    #[test]
    fn by_stream_each_point_of_a_metric_is_routed_on_its_own() {
        let (keys, parts) = split_by(RoutingKey::StreamId);
        // requests{x}, requests{y} and latency{x,y,z} of a; requests{x} of b; errors{x} of a.
        assert_eq!(keys.len(), 7, "one stream per point");
        assert_eq!(parts.len(), 7);
        let mut all: Vec<(String, String)> = parts.iter().flat_map(|(_, r, _)| points(r)).collect();
        all.sort();
        let mut expected = points(&request());
        expected.sort();
        assert_eq!(
            all, expected,
            "every point once, with its metric's name, unit and temporality"
        );
        // A point of the same series in a later batch has the same key.
        let again = {
            let mut keys2 = Vec::new();
            split(
                &request().encode_to_vec(),
                Layout::Metrics,
                RoutingKey::StreamId,
                |k| {
                    let RecordKey::Key(k) = k else { panic!() };
                    keys2.push(k.to_vec());
                    0
                },
            )
            .unwrap();
            keys2
        };
        let mut distinct = again.clone();
        distinct.dedup();
        assert_eq!(distinct, keys);
    }

    #[test]
    fn points_cut_from_several_requests_are_the_points_of_the_joined_request() {
        // Points sit five levels down: each level's envelope is measured, then copied once.
        let by_hash = |k: RecordKey<'_>| match k {
            RecordKey::Key(k) => k.iter().map(|&b| usize::from(b)).sum::<usize>() % 3,
            RecordKey::None => 0,
        };
        let one = request().encode_to_vec();
        let joined = [one.clone(), one.clone()].concat();
        let key = RoutingKey::StreamId;
        let whole = split(&joined, Layout::Metrics, key, by_hash).unwrap();
        let Split::Parts(cut) = &whole else {
            panic!("{whole:?}")
        };
        let mut all = Vec::new();
        for (_, bytes, n) in cut {
            let req = ExportMetricsServiceRequest::decode(&bytes[..]).unwrap();
            assert_eq!(weft_proto::points::request_points(&req), *n);
            all.extend(points(&req));
        }
        all.sort();
        let mut expected = [points(&request()), points(&request())].concat();
        expected.sort();
        assert_eq!(all, expected);
        let parts = split_parts(&[one.clone(), one], Layout::Metrics, key, by_hash);
        assert_eq!(parts.unwrap(), whole);
    }

    #[test]
    fn a_metric_without_points_still_goes_somewhere() {
        let mut req = request();
        req.resource_metrics[1].scope_metrics[0].metrics[0] = Metric {
            name: "empty".into(),
            data: Some(Data::Gauge(Gauge::default())),
            ..Default::default()
        };
        let body = req.encode_to_vec();
        let Ok(Split::Parts(parts)) =
            split(&body, Layout::Metrics, RoutingKey::Metric, |k| match k {
                RecordKey::Key(b"empty") => 1,
                _ => 0,
            })
        else {
            panic!()
        };
        let empty = parts.iter().find(|p| p.0 == 1).expect("its part is kept");
        assert_eq!(empty.2, 0);
    }

    #[test]
    fn a_key_the_signal_does_not_take_spreads_instead_of_losing() {
        let body = request().encode_to_vec();
        let mut none = 0;
        let split = split(&body, Layout::Metrics, RoutingKey::TraceId, |k| {
            assert_eq!(k, RecordKey::None);
            none += 1;
            0
        });
        assert_eq!(split, Ok(Split::Whole(0)));
        assert_eq!(none, 4, "one per metric");
    }
}
