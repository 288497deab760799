//! What travels through a pipeline: OTLP export requests, one type per signal.
//!
//! A batch is held as the protobuf bytes it arrived in for as long as no component needs to
//! look inside: the receiver checks a request on the wire ([`weft_proto::wire`]) instead of
//! decoding it, `batch` joins requests by concatenating them (an export request is one
//! repeated field, so concatenated encodings are the encoding of the joined request), and the
//! OTLP exporters and the persistent queue send and store the bytes as they are. Components
//! that read or change items (`debug`, `file` as JSON, `elasticsearch`, a tail sampler's
//! enrichment) decode on first need with [`Payload::request`] / [`Payload::into_request`].
//! A decoded batch stays decoded; it is encoded once, when an exporter needs bytes. It is
//! shared, not copied, when a batch is cloned (`batch` keeps a copy to retry a refused send,
//! an exporter one per attempt): a component that changes it copies it only if another
//! holder still has it.

use std::borrow::Cow;
use std::fmt::{self, Debug};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use weft_config::SignalKind;
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;

use super::Signal;

/// A batch of spans.
pub type Traces = Batch<ExportTraceServiceRequest>;
/// A batch of log records.
pub type Logs = Batch<ExportLogsServiceRequest>;
/// A batch of metric data points.
pub type Metrics = Batch<ExportMetricsServiceRequest>;

/// One batch of a signal: an export request, encoded or decoded.
#[derive(Clone)]
pub struct Batch<R> {
    repr: Repr<R>,
}

#[derive(Clone)]
enum Repr<R> {
    /// Whole encoded requests that decode without error (checked by the receiver's scanner,
    /// or written by prost), in order; together they are one request holding `items` items.
    Encoded { parts: Vec<Bytes>, items: usize },
    /// Shared by clones; [`Payload::request_mut`] copies it only while it is shared.
    Decoded(Arc<R>),
}

/// The operations generic components (batching, queues, fan-out, memory accounting) need
/// from a batch of any signal. Items are spans, log records or metric data points.
pub trait Payload: Clone + Default + Debug + PartialEq + Send + Sync + 'static {
    const SIGNAL: SignalKind;
    /// The metric word for one item: "spans", "log_records" or "metric_points".
    const ITEM: &'static str;
    /// The export request, which is what describes the signal.
    type Request: Signal;

    /// A batch of valid protobuf bytes holding `items` items. The caller vouches that they
    /// decode (the receiver's scanner accepted them, or prost wrote them).
    fn from_encoded(bytes: Bytes, items: usize) -> Self;

    /// A decoded request.
    fn from_request(request: Self::Request) -> Self;

    /// Stored bytes written by [`Payload::to_bytes`] (a persistent queue record), checked by
    /// decoding them once.
    fn from_stored(bytes: Bytes) -> Result<Self, prost::DecodeError>;

    /// Number of spans, log records or data points.
    fn item_count(&self) -> usize;

    /// Appends `other`'s resources to this batch.
    fn merge(&mut self, other: Self);

    /// Removes and returns the first `n` items; `self` keeps the rest.
    fn take_items(&mut self, n: usize) -> Self;

    /// The request, decoded if it is not yet.
    fn request(&self) -> Cow<'_, Self::Request>;

    /// The request, decoding it if needed.
    fn into_request(self) -> Self::Request;

    /// The decoded request, to change in place.
    fn request_mut(&mut self) -> &mut Self::Request;

    /// The protobuf encoding of the request (the received bytes when still encoded).
    fn to_bytes(&self) -> Bytes;

    /// Length of [`Payload::to_bytes`].
    fn encoded_len(&self) -> usize;

    /// Writes [`Payload::to_bytes`] into `dst` without joining the parts first, after
    /// handing `reserve` its length ([`Payload::encoded_len`], without measuring twice).
    fn write_to<B: BufMut>(&self, dst: &mut B, reserve: impl FnOnce(&mut B, usize));

    /// Whether the batch is still the bytes it arrived in (for tests and metrics).
    fn is_encoded(&self) -> bool;

    /// The whole encoded requests the batch is, one after the other, while it is still the
    /// bytes it arrived in; `None` once decoded.
    fn encoded_parts(&self) -> Option<&[Bytes]>;
}

impl<R: Signal> Batch<R> {
    fn decode_parts(parts: &[Bytes]) -> R {
        let mut request = R::default();
        for part in parts {
            // Encoded parts are valid by construction (see `Repr::Encoded`); merging decodes
            // each into the same request, which appends their resources in order.
            if let Err(e) = request.merge(&part[..]) {
                tracing::error!(error = %e, "an encoded batch failed to decode; its items are lost");
            }
        }
        request
    }
}

impl<R: Signal> From<R> for Batch<R> {
    fn from(request: R) -> Self {
        Self {
            repr: Repr::Decoded(Arc::new(request)),
        }
    }
}

impl<R: Signal> Default for Batch<R> {
    fn default() -> Self {
        Self {
            repr: Repr::Encoded {
                parts: Vec::new(),
                items: 0,
            },
        }
    }
}

impl<R: Signal> Debug for Batch<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Encoded { parts, items } => f
                .debug_struct("Batch")
                .field("items", items)
                .field("encoded_parts", &parts.len())
                .finish(),
            Repr::Decoded(r) => r.fmt(f),
        }
    }
}

/// Batches are equal when they hold the same request.
impl<R: Signal> PartialEq for Batch<R> {
    fn eq(&self, other: &Self) -> bool {
        self.request() == other.request()
    }
}

/// A batch equals a request when it holds that request.
impl<R: Signal> PartialEq<R> for Batch<R> {
    fn eq(&self, other: &R) -> bool {
        *self.request() == *other
    }
}

impl<R: Signal> Payload for Batch<R> {
    const SIGNAL: SignalKind = R::KIND;
    const ITEM: &'static str = R::ITEM;
    type Request = R;

    fn from_encoded(bytes: Bytes, items: usize) -> Self {
        Self {
            repr: Repr::Encoded {
                parts: vec![bytes],
                items,
            },
        }
    }

    fn from_request(request: R) -> Self {
        Self::from(request)
    }

    fn from_stored(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        let request = R::decode(&bytes[..])?;
        let items = request.items();
        Ok(Self::from_encoded(bytes, items))
    }

    fn item_count(&self) -> usize {
        match &self.repr {
            Repr::Encoded { items, .. } => *items,
            Repr::Decoded(r) => r.items(),
        }
    }

    fn merge(&mut self, other: Self) {
        match (&mut self.repr, other.repr) {
            (
                Repr::Encoded { parts, items },
                Repr::Encoded {
                    parts: more,
                    items: n,
                },
            ) => {
                parts.extend(more);
                *items += n;
            }
            (Repr::Decoded(r), Repr::Decoded(o)) => {
                Arc::make_mut(r).append(Arc::unwrap_or_clone(o));
            }
            (Repr::Decoded(r), Repr::Encoded { parts, .. }) => {
                Arc::make_mut(r).append(Self::decode_parts(&parts));
            }
            (Repr::Encoded { .. }, Repr::Decoded(o)) => {
                self.request_mut().append(Arc::unwrap_or_clone(o));
            }
        }
    }

    fn take_items(&mut self, n: usize) -> Self {
        if let Repr::Encoded { parts, items } = &mut self.repr {
            // Whole parts while they fit; a part that must be split is decoded below.
            let mut taken = Vec::new();
            let mut count = 0;
            while let Some(first) = parts.first() {
                let in_first = R::count_encoded(first);
                if count + in_first > n {
                    break;
                }
                count += in_first;
                taken.push(parts.remove(0));
            }
            *items -= count;
            if count == n || parts.is_empty() {
                return Self {
                    repr: Repr::Encoded {
                        parts: taken,
                        items: count,
                    },
                };
            }
            let mut head = Self {
                repr: Repr::Encoded {
                    parts: taken,
                    items: count,
                },
            };
            let rest = self.request_mut().take(n - count);
            head.merge(Self::from(rest));
            return head;
        }
        Self::from(self.request_mut().take(n))
    }

    fn request(&self) -> Cow<'_, R> {
        match &self.repr {
            Repr::Encoded { parts, .. } => Cow::Owned(Self::decode_parts(parts)),
            Repr::Decoded(r) => Cow::Borrowed(&**r),
        }
    }

    fn into_request(self) -> R {
        match self.repr {
            Repr::Encoded { parts, .. } => Self::decode_parts(&parts),
            Repr::Decoded(r) => Arc::unwrap_or_clone(r),
        }
    }

    fn request_mut(&mut self) -> &mut R {
        if let Repr::Encoded { parts, .. } = &self.repr {
            self.repr = Repr::Decoded(Arc::new(Self::decode_parts(parts)));
        }
        match &mut self.repr {
            Repr::Decoded(r) => Arc::make_mut(r),
            Repr::Encoded { .. } => unreachable!("decoded just above"),
        }
    }

    fn to_bytes(&self) -> Bytes {
        match &self.repr {
            Repr::Encoded { parts, .. } if parts.len() == 1 => parts[0].clone(),
            Repr::Encoded { parts, .. } => {
                let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
                for p in parts {
                    out.extend_from_slice(p);
                }
                out.freeze()
            }
            Repr::Decoded(r) => {
                let mut out = Vec::new();
                r.encode_request(&mut out, Vec::reserve_exact);
                out.into()
            }
        }
    }

    fn encoded_len(&self) -> usize {
        match &self.repr {
            Repr::Encoded { parts, .. } => parts.iter().map(Bytes::len).sum(),
            Repr::Decoded(r) => r.encoded_len(),
        }
    }

    fn write_to<B: BufMut>(&self, dst: &mut B, reserve: impl FnOnce(&mut B, usize)) {
        match &self.repr {
            Repr::Encoded { parts, .. } => {
                reserve(dst, parts.iter().map(Bytes::len).sum());
                for p in parts {
                    dst.put_slice(p);
                }
            }
            Repr::Decoded(r) => r.encode_request(dst, reserve),
        }
    }

    fn encoded_parts(&self) -> Option<&[Bytes]> {
        match &self.repr {
            Repr::Encoded { parts, .. } => Some(parts),
            Repr::Decoded(_) => None,
        }
    }

    fn is_encoded(&self) -> bool {
        matches!(self.repr, Repr::Encoded { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn traces(shape: &[&[usize]]) -> Traces {
        let mut id = 0u8;
        Traces::from(ExportTraceServiceRequest {
            resource_spans: shape
                .iter()
                .map(|scopes| ResourceSpans {
                    scope_spans: scopes
                        .iter()
                        .map(|&n| ScopeSpans {
                            spans: (0..n)
                                .map(|_| {
                                    id += 1;
                                    Span {
                                        span_id: vec![id; 8],
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        })
    }

    fn ids(t: &Traces) -> Vec<u8> {
        t.request()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.span_id[0])
            .collect()
    }

    #[test]
    fn take_items_splits_scopes_and_keeps_order() {
        let mut t = traces(&[&[2, 3], &[4]]);
        assert_eq!(t.item_count(), 9);
        let head = t.take_items(4);
        assert_eq!(ids(&head), [1, 2, 3, 4]);
        assert_eq!(ids(&t), [5, 6, 7, 8, 9]);
        assert_eq!(head.request().resource_spans.len(), 1);
        let rest = t.take_items(100);
        assert_eq!(ids(&rest), [5, 6, 7, 8, 9]);
        assert_eq!(t.item_count(), 0);
        assert!(t.request().resource_spans.is_empty());
    }

    fn encoded(t: Traces) -> Traces {
        let n = t.item_count();
        Traces::from_encoded(t.to_bytes(), n)
    }

    #[test]
    fn encoded_batches_merge_and_split_without_decoding_where_they_can() {
        let mut t = encoded(traces(&[&[2, 3]]));
        t.merge(encoded(traces(&[&[4]])));
        assert!(t.is_encoded());
        assert_eq!(t.item_count(), 9);
        // The concatenated bytes are the joined request.
        let joined = ExportTraceServiceRequest::decode(t.to_bytes()).unwrap();
        assert_eq!(joined.resource_spans.len(), 2);
        // A split at a part boundary stays encoded; one inside a part decodes that part.
        let mut copy = t.clone();
        let head = copy.take_items(5);
        assert!(head.is_encoded() && copy.is_encoded());
        assert_eq!((head.item_count(), copy.item_count()), (5, 4));
        let head = t.take_items(7);
        assert_eq!(head.item_count(), 7);
        assert_eq!(t.item_count(), 2);
        assert_eq!(ids(&head), [1, 2, 3, 4, 5, 1, 2]);
        assert_eq!(ids(&t), [3, 4]);
        // Equality looks through the representation.
        assert_eq!(encoded(traces(&[&[1]])), traces(&[&[1]]));
    }

    #[test]
    fn clones_of_a_decoded_batch_share_it_until_one_changes() {
        let original = traces(&[&[2, 3]]);
        let kept = original.clone();
        let Repr::Decoded(a) = &original.repr else {
            panic!("built decoded")
        };
        let Repr::Decoded(b) = &kept.repr else {
            panic!("cloned decoded")
        };
        assert!(Arc::ptr_eq(a, b), "a clone shares the request");

        // Changing one copies it first; the other keeps what it had.
        let mut changed = original;
        changed.request_mut().resource_spans[0].scope_spans[0].spans[0].span_id = vec![9; 8];
        changed.merge(traces(&[&[1]]));
        assert_eq!(ids(&changed), [9, 2, 3, 4, 5, 1]);
        assert_eq!(ids(&kept), [1, 2, 3, 4, 5]);
        let mut split = kept.clone();
        let head = split.take_items(2);
        assert_eq!((ids(&head), ids(&split)), (vec![1, 2], vec![3, 4, 5]));
        assert_eq!(ids(&kept), [1, 2, 3, 4, 5]);

        // Taking the request out of a shared batch copies it; the other holder keeps its own.
        let last = kept.clone().into_request();
        let spans: usize = last.resource_spans[0]
            .scope_spans
            .iter()
            .map(|s| s.spans.len())
            .sum();
        assert_eq!(spans, 5);
        assert_eq!(ids(&kept), [1, 2, 3, 4, 5]);
        // Encoding reads the shared request as it is.
        assert_eq!(
            ExportTraceServiceRequest::decode(kept.to_bytes()).unwrap(),
            *kept.request()
        );
    }
}
