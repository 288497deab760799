//! The decisions ring: the last traces a window decided, kept *and* dropped, each with its
//! verdict, why every policy decided as it did, and (bounded by bytes) the spans and logs it
//! held — what the status page (the `weft_status` extension) shows.
//!
//! Off by default, and then free: the window checks one `OnceLock` per decision. An extension
//! turns it on before data flows ([`super::TailSampling::decisions_ring`]); from then on each
//! decision also
//! - asks why of the policies whose reason cannot be written later: the stateful ones (rate
//!   limits, budgets: their state decided, and only now is it what it was) and those whose
//!   words need the trace's items ([`super::policy::Explain::Later`]),
//! - appends one record here under a short mutex, with a copy of the kept trace's held
//!   items when detail is kept (and, with `keep_dropped_detail`, of a dropped trace's),
//!   packed into one buffer ([`Packed`]).
//!
//! Most decided traces are dropped ones nobody looks at, so a record writes little at the
//! decision, and most records are kept inline in the ring ([`Slot::Compact`]: no allocation
//! of their own, so that forgetting one touches no memory left cold since its decision). A
//! dropped trace's record holds its summary (the root's service and name, copied off the
//! root span's bytes; the duration and error flag from the decision's view, or one walk over
//! the spans' bytes when the policies did not read times and statuses) and each policy's
//! decision by the policy's index; it is rebuilt as a [`DecisionRecord`] when the page reads
//! it. The others (kept traces', with their items; dropped ones' with `keep_dropped_detail`,
//! reasons written at the decision, errors, long names) are shared records. A kept trace's
//! summary (root span, duration, error flag) is known: its export needs it. Why each
//! deterministic policy decided as it did is written when the page first asks
//! ([`DecisionRecord::policies`]): by evaluating it again on the held items at the decision's
//! `now` (the same decision, in words that can name the spans), or, for a dropped trace, from
//! its summary (docs/BENCHMARKS.md).
//!
//! Bounds: `size` records (the oldest is forgotten first) and `detail_max_bytes` of held
//! items over all records, those held only for reasons not yet written included (past it,
//! the oldest records lose their items: a kept trace's reasons are written first, a dropped
//! trace's words are lost — its summary and each policy's decision stay). Readers (the HTTP
//! handlers) take the lock only to copy the records (a compact one by value, a shared one's
//! `Arc`); they rebuild and decode outside it, so a page load never holds up a decision for
//! longer than that.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use super::enrich::Summary;
use super::policy::{Decision, Policies, PolicyError, Verdict};
use super::trace::{Origin, Reads, TraceData};
use super::window::{first_span_name, scan_summary, service_of, DecideReason, Held, SUMMARY_READS};

type TraceKey = [u8; 16];

/// How big the ring is, set by whoever turns it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingSettings {
    /// Records kept; the oldest is forgotten first. At least 1.
    pub size: usize,
    /// Keep the held spans and logs of dropped traces too (kept traces always keep theirs).
    pub keep_dropped_detail: bool,
    /// Encoded bytes of held spans and logs over all records; past it, the oldest records
    /// lose their detail first. 0 keeps no detail at all.
    pub detail_max_bytes: usize,
}

/// One policy's say on one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyOutcome {
    pub name: Arc<str>,
    /// Its `type` (`latency`, `status_code`, …).
    pub type_name: &'static str,
    pub decision: Decision,
    /// Why, in words ("lasted 2.3 s ≥ 1 s").
    pub reason: String,
}

/// One decided trace.
#[derive(Debug)]
pub struct DecisionRecord {
    pub trace_id: TraceKey,
    /// Wall-clock time of the decision.
    pub decided_at: SystemTime,
    pub sampled: bool,
    /// The final decision (`Sampled`, `NotSampled` or `Dropped`).
    pub decision: Decision,
    /// The policy that decided ([`DecisionRecord::decided_by`]).
    decided_by: Option<Arc<str>>,
    /// Why it was decided then (its `decision_wait` ran out, the window was full, …).
    pub when: DecideReason,
    /// From its first span or log to its decision.
    pub waited: Duration,
    /// Logs held with the trace at its decision.
    pub log_count: usize,
    /// Encoded bytes held for the trace at its decision.
    pub bytes: usize,
    /// Policies that failed on the trace, or let evaluation errors through.
    pub errors: Vec<PolicyError>,
    /// A problem that decided the trace without the policies (a held item that does not
    /// decode).
    pub failure: Option<String>,
    /// Root service and operation, duration, error flag, span count; read when first asked
    /// for a dropped trace ([`DecisionRecord::summary`]).
    summary: OnceLock<Arc<Summary>>,
    unread: Mutex<Option<UnreadSummary>>,
    /// Every policy evaluated with its reason, once all are written
    /// ([`DecisionRecord::policies`]).
    policies: OnceLock<Vec<PolicyOutcome>>,
    /// Until then: the decision's own list of the policies and their decisions, the reasons
    /// written at the decision, and how to write the others.
    unexplained: Mutex<Option<Unexplained>>,
    detail: Mutex<Option<Packed>>,
    /// Whether `detail` is shown ([`DecisionRecord::detail`]): kept traces', and dropped
    /// traces' with `keep_dropped_detail` (set by [`DecisionRing::push`]).
    shows_detail: bool,
}

/// A record's summary: read already (a kept trace's, which its export needed), or left to
/// be read when first asked.
#[derive(Debug)]
pub(super) enum RecordSummary {
    Read(Arc<Summary>),
    Unread(UnreadSummary),
}

impl From<Arc<Summary>> for RecordSummary {
    fn from(summary: Arc<Summary>) -> Self {
        Self::Read(summary)
    }
}

impl From<UnreadSummary> for RecordSummary {
    fn from(unread: UnreadSummary) -> Self {
        Self::Unread(unread)
    }
}

/// A dropped trace's summary, not read yet: its root span (shared with nothing else now: the
/// rest of the trace is freed) and what the decision's view already knew. Most decided traces
/// are never looked at, so the root's name and service are read from its bytes only when the
/// page asks; the duration and error flag come from the view when the policies read the
/// spans' times and statuses, else from one walk over the spans' bytes at the decision.
#[derive(Debug)]
pub(super) struct UnreadSummary {
    root: Option<Held>,
    span_count: usize,
    duration_ms: i64,
    error: bool,
}

impl UnreadSummary {
    /// For a dropped trace of `spans` (its first root at `root`), decided on `view` (decoded
    /// with `reads`).
    pub(super) fn of_dropped(
        spans: &[Held],
        root: Option<u32>,
        view: &TraceData,
        reads: Reads,
    ) -> Self {
        let root = root.and_then(|i| spans.get(i as usize)).cloned();
        if !reads.contains(Reads::SPAN_TIMES.union(Reads::SPAN_STATUS)) {
            let s = scan_summary(spans, None);
            return Self {
                root,
                span_count: spans.len(),
                duration_ms: s.duration_ms,
                error: s.error,
            };
        }
        let (mut start, mut end, mut error) = (u64::MAX, 0u64, false);
        for e in &view.spans {
            start = start.min(e.span.start_time_unix_nano);
            end = end.max(e.span.end_time_unix_nano);
            error |=
                e.span.status.as_ref().is_some_and(|s| {
                    s.code == weft_proto::trace::v1::status::StatusCode::Error as i32
                });
        }
        Self {
            root,
            span_count: spans.len(),
            duration_ms: if view.spans.is_empty() || end <= start {
                0
            } else {
                ((end - start) / 1_000_000) as i64
            },
            error,
        }
    }

    /// The summary: the root's service and name read off its bytes.
    fn read(self) -> Summary {
        let root = self
            .root
            .map(|r| scan_summary(std::slice::from_ref(&r), None))
            .unwrap_or_default();
        Summary {
            policy: None,
            root_service: root.root_service,
            root_operation: root.root_operation,
            duration_ms: self.duration_ms,
            error: self.error,
            span_count: self.span_count as i64,
        }
    }
}

/// How to explain a decision's deterministic policies later: the same policies, reading
/// what they read then, at the decision's `now`.
#[derive(Debug)]
pub(super) struct ExplainLater {
    pub policies: Arc<Policies>,
    pub reads: Reads,
    pub now: Instant,
}

/// A record's policies before their reasons are all written: the verdict's own vectors,
/// moved in (a record copies nothing of the decision).
#[derive(Debug)]
struct Unexplained {
    per_policy: Vec<(Arc<str>, Decision)>,
    /// By the index of `per_policy`; an empty or missing one is written when asked.
    reasons: Vec<String>,
    later: Option<ExplainLater>,
}

/// What a record says of a decision besides its verdict.
#[derive(Debug)]
pub(super) struct RecordParts {
    pub trace_id: TraceKey,
    pub decided_at: SystemTime,
    pub when: DecideReason,
    pub waited: Duration,
    pub summary: RecordSummary,
    pub log_count: usize,
    pub bytes: usize,
}

/// The held items of a decided trace, as they arrived (encoded), and the logs that joined
/// it after its decision.
#[derive(Clone, Debug, Default)]
pub struct Detail {
    pub spans: Vec<Held>,
    pub logs: Vec<Held>,
    /// How many of `logs` (the last ones) arrived after the decision.
    pub late_logs: usize,
}

/// The held items of a decided trace, to be packed for the ring ([`Packed::new`]).
#[derive(Clone, Copy)]
pub(super) struct Items<'a> {
    pub spans: &'a [Held],
    pub logs: &'a [Held],
}

impl Items<'_> {
    /// What packing them takes: the items' bytes, and their origins' wire forms counted
    /// once per run of items from the same origin (an upper bound of what [`Packed`]
    /// copies, so that its buffer is allocated once).
    fn bytes(&self) -> usize {
        let mut previous: Option<&Arc<Origin>> = None;
        let mut total = 0;
        for held in self.spans.iter().chain(self.logs) {
            if !previous.is_some_and(|p| Arc::ptr_eq(p, &held.origin)) {
                total += held.origin.wire().len();
                previous = Some(&held.origin);
            }
            total += held.encoded.len();
        }
        total
    }
}

/// A record's held items as the ring keeps them: every encoding in one buffer, each origin
/// once, as bytes too.
///
/// The window holds each item in an allocation of its own. Sharing those with the ring (as
/// it once did) kept them alive until the ring forgot the record, and forgetting it then
/// released each of them: a reference count and a free per span, about 1.5% of the
/// sampler's CPU in a profile of scenario a, the largest part of what the ring's own code
/// cost (docs/BENCHMARKS.md). Packing copies a kept trace's bytes once at the decision (a
/// few KiB) and frees them in one go when the record goes. The origins are copied as their
/// wire form ([`Origin::wire`], made at ingest) for the same reason: a shared origin kept
/// the request's decoded resource alive, and the ring then freed it two seconds later,
/// long out of the cache (1.1% of the samples).
#[derive(Debug, Default)]
pub(super) struct Packed {
    /// The items' encodings and their origins' wire forms, in the order they were added.
    bytes: Vec<u8>,
    /// Per origin: where its wire form is in `bytes`.
    origins: Vec<(usize, usize)>,
    /// Per item, spans first: its origin (an index in `origins`) and where its encoding is
    /// in `bytes`.
    items: Vec<(usize, usize, usize)>,
    spans: usize,
    /// How many of the logs (the last ones) arrived after the decision.
    late_logs: usize,
}

/// How many of the newest origins an item's origin is looked for among before it is
/// added again: a trace's items mostly come in a few requests, each of which gave its
/// items one origin per resource and scope; the look stays short for one that came in
/// thousands.
const ORIGINS_LOOKED_AT: usize = 8;

/// An item's origin, in the newest [`ORIGINS_LOOKED_AT`] of a packing (an index in
/// `Packed::origins`) or not.
type LookedAt = [(*const Origin, usize); ORIGINS_LOOKED_AT];

impl Packed {
    pub(super) fn new(items: Items<'_>) -> Self {
        let mut packed = Packed {
            bytes: Vec::with_capacity(items.bytes()),
            origins: Vec::new(),
            items: Vec::with_capacity(items.spans.len() + items.logs.len()),
            spans: items.spans.len(),
            late_logs: 0,
        };
        // While `items` is borrowed its origins are alive, so equal addresses are the same
        // origin; the look ends with this call.
        let mut looked_at: LookedAt = [(std::ptr::null(), 0); ORIGINS_LOOKED_AT];
        for held in items.spans.iter().chain(items.logs) {
            let ptr = Arc::as_ptr(&held.origin);
            let origin = match looked_at.iter().find(|(p, _)| *p == ptr) {
                Some(&(_, index)) => index,
                None => {
                    let index = packed.add_origin(&held.origin);
                    looked_at[index % ORIGINS_LOOKED_AT] = (ptr, index);
                    index
                }
            };
            packed.add_item(origin, &held.encoded);
        }
        packed
    }

    fn add_origin(&mut self, origin: &Origin) -> usize {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(origin.wire());
        self.origins.push((start, self.bytes.len()));
        self.origins.len() - 1
    }

    fn add_item(&mut self, origin: usize, encoded: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(encoded);
        self.items.push((origin, start, self.bytes.len()));
    }

    /// Adds a log after the packing (a late one): its origin is one of the newest when
    /// their wire forms are equal.
    fn push(&mut self, held: &Held) {
        let wire = held.origin.wire();
        let newest = self.origins.len().saturating_sub(ORIGINS_LOOKED_AT);
        let origin = match self.origins[newest..]
            .iter()
            .rposition(|&(start, end)| self.bytes[start..end] == *wire)
        {
            Some(i) => newest + i,
            None => self.add_origin(&held.origin),
        };
        self.add_item(origin, &held.encoded);
    }

    /// The bytes held: the items' and their origins'.
    fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Every origin, decoded (for the items' `origins` arguments below).
    fn origins(&self) -> Vec<Arc<Origin>> {
        self.origins
            .iter()
            .map(|&(start, end)| Arc::new(Origin::from_wire(&self.bytes[start..end])))
            .collect()
    }

    /// The items at `range` (indices: spans first, then logs), with their origins among
    /// `origins` (from [`Packed::origins`]).
    fn items<'a>(
        &'a self,
        origins: &'a [Arc<Origin>],
        range: std::ops::Range<usize>,
    ) -> impl ExactSizeIterator<Item = (&'a Arc<Origin>, &'a [u8])> {
        range.map(move |i| {
            let (origin, start, end) = self.items[i];
            (&origins[origin], &self.bytes[start..end])
        })
    }

    fn spans<'a>(
        &'a self,
        origins: &'a [Arc<Origin>],
    ) -> impl ExactSizeIterator<Item = (&'a Arc<Origin>, &'a [u8])> {
        self.items(origins, 0..self.spans)
    }

    /// The logs, or only those that arrived before the decision.
    fn logs<'a>(
        &'a self,
        origins: &'a [Arc<Origin>],
        late_too: bool,
    ) -> impl ExactSizeIterator<Item = (&'a Arc<Origin>, &'a [u8])> {
        let end = if late_too {
            self.items.len()
        } else {
            self.items.len() - self.late_logs
        };
        self.items(origins, self.spans..end)
    }

    fn unpack(&self) -> Detail {
        let origins = self.origins();
        let held = |(origin, encoded): (&Arc<Origin>, &[u8])| Held {
            origin: origin.clone(),
            encoded: Arc::from(encoded),
        };
        Detail {
            spans: self.spans(&origins).map(held).collect(),
            logs: self.logs(&origins, true).map(held).collect(),
            late_logs: self.late_logs,
        }
    }
}

impl DecisionRecord {
    /// Everything but the detail, which [`DecisionRing::push`] takes separately. The
    /// verdict's vectors move into the record; reasons left empty in it are written when
    /// asked, by `later`.
    pub(super) fn new(parts: RecordParts, verdict: Verdict, later: Option<ExplainLater>) -> Self {
        let RecordParts {
            trace_id,
            decided_at,
            when,
            waited,
            summary,
            log_count,
            bytes,
        } = parts;
        let decided_by = decided_by(&verdict.per_policy, verdict.policy.as_ref());
        Self {
            trace_id,
            decided_at,
            sampled: verdict.sampled,
            decision: verdict.decision,
            decided_by,
            when,
            waited,
            log_count,
            bytes,
            errors: verdict.errors,
            failure: None,
            summary: match &summary {
                RecordSummary::Read(s) => OnceLock::from(s.clone()),
                RecordSummary::Unread(_) => OnceLock::new(),
            },
            unread: Mutex::new(match summary {
                RecordSummary::Read(_) => None,
                RecordSummary::Unread(u) => Some(u),
            }),
            policies: OnceLock::new(),
            unexplained: Mutex::new(Some(Unexplained {
                per_policy: verdict.per_policy,
                reasons: verdict.reasons,
                later,
            })),
            detail: Mutex::new(None),
            shows_detail: verdict.sampled,
        }
    }

    /// The policy that decided: the one that kept the trace, or the `drop` / `invert_match`
    /// policy that dropped it; `None` for a trace dropped because no policy asked for it.
    pub fn decided_by(&self) -> Option<&str> {
        self.decided_by.as_deref()
    }

    pub(super) fn with_failure(mut self, failure: String) -> Self {
        self.failure = Some(failure);
        self
    }

    /// Root service and operation, duration, error flag, span count.
    pub fn summary(&self) -> Arc<Summary> {
        self.summary
            .get_or_init(|| {
                Arc::new(
                    self.unread
                        .lock()
                        .take()
                        .map(UnreadSummary::read)
                        .unwrap_or_default(),
                )
            })
            .clone()
    }

    /// Every policy evaluated, in evaluation order, with its reason; the deterministic
    /// policies' reasons are written the first time they are asked for.
    pub fn policies(&self) -> &[PolicyOutcome] {
        self.policies.get_or_init(|| {
            let Some(Unexplained {
                per_policy,
                mut reasons,
                later,
            }) = self.unexplained.lock().take()
            else {
                return Vec::new();
            };
            reasons.resize(per_policy.len(), String::new());
            // What deciding read, and the summary's parts, as an explanation at the
            // decision would have read: the same words. Decoded once, if any is unwritten.
            let mut view = None;
            per_policy
                .into_iter()
                .zip(reasons)
                .map(|((name, decision), reason)| {
                    let type_name = later
                        .as_ref()
                        .and_then(|l| l.policies.type_of(&name))
                        .unwrap_or("unknown");
                    let reason = match &later {
                        Some(later) if reason.is_empty() => {
                            let view = view.get_or_insert_with(|| {
                                self.decode_detail(later.reads.union(SUMMARY_READS))
                            });
                            self.explain_later(later, &name, decision, view.as_ref())
                        }
                        _ => reason,
                    };
                    PolicyOutcome {
                        name,
                        type_name,
                        decision,
                        reason,
                    }
                })
                .collect()
        })
    }

    /// Why policy `name` decided as it did, written after the decision: from the trace's
    /// items when the ring holds them (`view`), else from the summary for a policy that did
    /// not ask for the trace.
    fn explain_later(
        &self,
        later: &ExplainLater,
        name: &str,
        decision: Decision,
        view: Option<&TraceData>,
    ) -> String {
        match view {
            Some(v) => later.policies.explain(name, v, later.now),
            // Without the items (a dropped trace's are not kept), a policy that did not ask
            // for the trace says why from the summary.
            None if decision == Decision::NotSampled && !self.holds_detail() => {
                Some(later.policies.explain_not_sampled(name, &self.summary()))
            }
            None => None,
        }
        .unwrap_or_else(|| {
            if self.holds_detail() {
                "(not explained: its spans and logs do not decode)".to_string()
            } else {
                "(not written: the ring gave this trace's spans up for \
                 decisions.detail_max_bytes before the page asked)"
                    .to_string()
            }
        })
    }

    /// The names of the policies evaluated, without writing any reason.
    pub fn policy_names(&self, mut each: impl FnMut(&str)) {
        match self.policies.get() {
            Some(policies) => policies.iter().for_each(|p| each(&p.name)),
            None => {
                if let Some(u) = self.unexplained.lock().as_ref() {
                    u.per_policy.iter().for_each(|(name, _)| each(name));
                } else {
                    // Written meanwhile.
                    self.policies().iter().for_each(|p| each(&p.name));
                }
            }
        }
    }

    /// The held items as they were at the decision (without the logs that came after),
    /// decoded as `reads` says; `None` when none are held or they do not decode.
    fn decode_detail(&self, reads: Reads) -> Option<TraceData> {
        let detail = self.detail.lock();
        let d = detail.as_ref()?;
        let origins = d.origins();
        TraceData::decode(
            self.trace_id,
            d.spans(&origins),
            d.logs(&origins, false),
            reads,
        )
        .ok()
    }

    /// The held spans and logs, if the ring still keeps them and shows them (a copy:
    /// decode it at leisure).
    pub fn detail(&self) -> Option<Detail> {
        if !self.shows_detail {
            return None;
        }
        self.detail.lock().as_ref().map(Packed::unpack)
    }

    /// Whether the ring still keeps this record's spans and logs to show.
    pub fn has_detail(&self) -> bool {
        self.shows_detail && self.holds_detail()
    }

    /// Whether the ring still holds any of this record's items (shown or not).
    fn holds_detail(&self) -> bool {
        self.detail.lock().is_some()
    }

    /// Removes the detail for the byte bound; returns the bytes freed. A kept trace's
    /// reasons are written first (they outlive the detail: which policy kept a trace, and
    /// why, is what the page is for); a dropped trace's are given up with its items — its
    /// summary and every policy's decision stay, only the words are lost. Writing them here
    /// would decode every dropped trace once the ring is full of them, at every decision.
    fn take_detail(&self) -> usize {
        if self.sampled && self.holds_detail() {
            self.policies();
        }
        self.detail.lock().take().map_or(0, |d| d.bytes())
    }

    /// Removes the detail without writing anything: the record itself is forgotten.
    fn forget_detail(&self) -> usize {
        self.detail.lock().take().map_or(0, |d| d.bytes())
    }
}

/// What a reader sees of the ring's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingStats {
    pub records: usize,
    pub capacity: usize,
    pub detail_bytes: usize,
    pub detail_max_bytes: usize,
    /// Records pushed since the ring was turned on.
    pub recorded: u64,
}

/// The ring of one window. See the module documentation.
#[derive(Debug)]
pub struct DecisionRing {
    settings: RingSettings,
    /// The wall clock when the ring was made, and the monotonic clock then: decisions are
    /// timed on the monotonic clock, and shown on the wall clock from this pair (one clock
    /// read per decision less; a wall-clock step after start does not move them).
    started: (Instant, SystemTime),
    /// The window's policies: a compact record names its policies by their index here.
    policies: Option<Arc<Policies>>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first; the record at index `i` was the `first + i`-th pushed.
    records: VecDeque<Slot>,
    /// The trace id of each record, at its index in `records`: what finding a compact
    /// record scans, 16 bytes a record.
    ids: VecDeque<TraceKey>,
    first: u64,
    /// Where the newest record of a trace id is (its push number) when that record is a
    /// shared one: a kept trace's, which the trace's late logs join. A trace re-opened by a
    /// late span after its decision was forgotten is decided, and recorded, again; a compact
    /// record pushed after a shared one of its trace removes the shared one's entry. Compact
    /// records (most) are found by a scan of `ids` when the page asks: indexing every record
    /// cost an insertion and a removal per decision in a map of `size` entries, too large to
    /// stay in cache (about 1% of the sampler's CPU in a profile). Keyed by a per-process
    /// random seed: trace ids are the senders' to choose.
    shared: HashMap<TraceKey, u64, foldhash::quality::RandomState>,
    /// Records holding detail, oldest first: the order detail is given up in.
    with_detail: VecDeque<Arc<DecisionRecord>>,
    detail_bytes: usize,
    recorded: u64,
}

impl Inner {
    /// The newest record of `trace_id`.
    fn slot(&self, trace_id: &TraceKey) -> Option<&Slot> {
        if let Some(slot) = self.shared_slot(trace_id) {
            return Some(slot);
        }
        let at = self.ids.iter().rposition(|id| id == trace_id)?;
        self.records.get(at)
    }

    /// The newest record of `trace_id` when it is a shared one.
    fn shared_slot(&self, trace_id: &TraceKey) -> Option<&Slot> {
        let at = self.shared.get(trace_id)?.checked_sub(self.first)?;
        self.records.get(usize::try_from(at).ok()?)
    }
}

/// A record as the ring keeps it. Most decided traces are dropped ones nobody looks at, so
/// theirs are kept [`Compact`]: inline in the ring, nothing of their own on the heap, so that
/// forgetting one touches no memory cold since its decision (with a record of its own per
/// trace, that cost the sampler more CPU than writing it: docs/BENCHMARKS.md). The others
/// (kept traces, with their items and reasons to write) are shared records.
#[derive(Clone, Debug)]
enum Slot {
    Compact(Compact),
    Shared(Arc<DecisionRecord>),
}

/// The policies a compact record lists at most; a decision that evaluated more is kept whole.
const COMPACT_POLICIES: usize = 6;

/// Text kept inline in a compact record, as its bytes (read as UTF-8, lossily, like the
/// summary read off a span's bytes); longer text keeps the record whole.
#[derive(Clone, Copy, Debug)]
struct InlineText<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> InlineText<N> {
    fn new(text: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; N];
        bytes.get_mut(..text.len())?.copy_from_slice(text);
        Some(Self {
            len: u8::try_from(text.len()).ok()?,
            bytes,
        })
    }

    fn to_text(self) -> String {
        String::from_utf8_lossy(&self.bytes[..usize::from(self.len)]).into_owned()
    }
}

/// A dropped trace's record without held items, errors or written reasons (see [`Slot`]):
/// its summary read at the decision (the root's service and name, the rest from the
/// decision's view) and the policies by their evaluation index.
#[derive(Clone, Debug)]
struct Compact {
    trace_id: TraceKey,
    decided_at: SystemTime,
    decision: Decision,
    when: DecideReason,
    waited: Duration,
    log_count: u32,
    bytes: u32,
    span_count: u32,
    duration_ms: i64,
    error: bool,
    /// `None`: no root span; `Some((None, _))`: a root without a service name.
    root: Option<(Option<InlineText<31>>, InlineText<47>)>,
    /// (evaluation index, decision), the first `policy_count`.
    policies: [(u8, Decision); COMPACT_POLICIES],
    policy_count: u8,
    /// Index into `policies`.
    decided_by: Option<u8>,
}

impl Compact {
    /// The record of a decision, compacted when it can be: a dropped trace's whose summary
    /// is still to be read, without held items, errors or a written reason, with few
    /// policies and short names.
    fn of(parts: &RecordParts, verdict: &Verdict, policies: Option<&Policies>) -> Option<Self> {
        let RecordSummary::Unread(unread) = &parts.summary else {
            return None;
        };
        if verdict.sampled
            || !verdict.errors.is_empty()
            || verdict.per_policy.len() > COMPACT_POLICIES
            || verdict.reasons.iter().any(|r| !r.is_empty())
        {
            return None;
        }
        let mut compact_policies = [(0u8, Decision::NotSampled); COMPACT_POLICIES];
        for (slot, (name, decision)) in compact_policies.iter_mut().zip(&verdict.per_policy) {
            *slot = (u8::try_from(policies?.index_of(name)?).ok()?, *decision);
        }
        let root = match &unread.root {
            None => None,
            Some(root) => {
                let service = match service_of(&root.origin) {
                    Some(s) => Some(InlineText::new(s.as_bytes())?),
                    None => None,
                };
                Some((service, InlineText::new(first_span_name(&root.encoded)?)?))
            }
        };
        Some(Self {
            trace_id: parts.trace_id,
            decided_at: parts.decided_at,
            decision: verdict.decision,
            when: parts.when,
            waited: parts.waited,
            log_count: u32::try_from(parts.log_count).ok()?,
            bytes: u32::try_from(parts.bytes).ok()?,
            span_count: u32::try_from(unread.span_count).ok()?,
            duration_ms: unread.duration_ms,
            error: unread.error,
            root,
            policies: compact_policies,
            policy_count: verdict.per_policy.len() as u8,
            // Not kept: the policy that dropped it, if one did (at most COMPACT_POLICIES).
            decided_by: dropped_by(&verdict.per_policy).map(|i| i as u8),
        })
    }

    /// The record again, as the page reads records; `later` explains its policies (by the
    /// summary alone: a compact record holds no items).
    fn record(&self, later: Option<ExplainLater>) -> DecisionRecord {
        let per_policy: Vec<(Arc<str>, Decision)> = self.policies[..usize::from(self.policy_count)]
            .iter()
            .filter_map(|(i, d)| {
                let name = later.as_ref()?.policies.name_at(usize::from(*i))?;
                Some((name.clone(), *d))
            })
            .collect();
        let decided_by = self
            .decided_by
            .and_then(|i| per_policy.get(usize::from(i)))
            .map(|(name, _)| name.clone());
        let summary = Summary {
            policy: None,
            root_service: self
                .root
                .as_ref()
                .and_then(|(service, _)| service.as_ref())
                .map(|s| s.to_text()),
            root_operation: self.root.as_ref().map(|(_, name)| name.to_text()),
            duration_ms: self.duration_ms,
            error: self.error,
            span_count: i64::from(self.span_count),
        };
        DecisionRecord {
            trace_id: self.trace_id,
            decided_at: self.decided_at,
            sampled: false,
            decision: self.decision,
            decided_by,
            when: self.when,
            waited: self.waited,
            log_count: self.log_count as usize,
            bytes: self.bytes as usize,
            errors: Vec::new(),
            failure: None,
            summary: OnceLock::from(Arc::new(summary)),
            unread: Mutex::new(None),
            policies: OnceLock::new(),
            unexplained: Mutex::new(Some(Unexplained {
                per_policy,
                reasons: Vec::new(),
                later,
            })),
            detail: Mutex::new(None),
            shows_detail: false,
        }
    }
}

impl Slot {
    fn trace_id(&self) -> &TraceKey {
        match self {
            Self::Compact(c) => &c.trace_id,
            Self::Shared(r) => &r.trace_id,
        }
    }

    fn record(self, ring: &DecisionRing) -> Arc<DecisionRecord> {
        match self {
            Self::Shared(r) => r,
            // Only the summary explains a compact record's policies: the clock is not read.
            Self::Compact(c) => Arc::new(c.record(ring.explain_later(Instant::now()))),
        }
    }
}

impl DecisionRing {
    pub fn new(settings: RingSettings) -> Self {
        let settings = RingSettings {
            size: settings.size.max(1),
            ..settings
        };
        Self {
            settings,
            started: (Instant::now(), SystemTime::now()),
            policies: None,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A ring for a window deciding with `policies`.
    pub(super) fn with_policies(mut self, policies: Arc<Policies>) -> Self {
        self.policies = Some(policies);
        self
    }

    /// The wall-clock time of `at` (a decision's `now`).
    pub(super) fn wall_time(&self, at: Instant) -> SystemTime {
        let (mono, wall) = self.started;
        match at.checked_duration_since(mono) {
            Some(after) => wall + after,
            None => wall - mono.duration_since(at),
        }
    }

    pub fn settings(&self) -> &RingSettings {
        &self.settings
    }

    /// Whether a record of a kept (`sampled`) or dropped trace takes the trace's held items
    /// (kept traces' always, dropped ones' with `keep_dropped_detail`; none without room).
    pub(super) fn holds_items(&self, sampled: bool) -> bool {
        self.settings.detail_max_bytes > 0 && (sampled || self.settings.keep_dropped_detail)
    }

    /// Adds a decision, with its held items when given; forgets the oldest record past
    /// `size` and the oldest detail past `detail_max_bytes`. A trace whose detail alone is
    /// larger than the bound keeps none (its summary, if still to be decoded from it, is
    /// decoded now).
    pub(super) fn push(&self, mut record: DecisionRecord, detail: Option<Packed>) {
        record.shows_detail = record.sampled || self.settings.keep_dropped_detail;
        let detail_bytes = detail.as_ref().map(Packed::bytes);
        let keep_detail = detail_bytes.is_some_and(|b| b <= self.settings.detail_max_bytes);
        *record.detail.lock() = detail;
        if !keep_detail {
            record.take_detail();
        }
        let record = Arc::new(record);
        let mut inner = self.inner.lock();
        if keep_detail {
            inner.detail_bytes += detail_bytes.unwrap_or(0);
            inner.with_detail.push_back(record.clone());
        }
        self.append(&mut inner, Slot::Shared(record));
    }

    /// Records a decision made at `now` (the verdict's vectors move in): inline when it can
    /// be ([`Slot`]), else as a shared record holding `detail`.
    pub(super) fn record(
        &self,
        parts: RecordParts,
        verdict: Verdict,
        now: Instant,
        detail: Option<Packed>,
    ) {
        if detail.is_none() {
            if let Some(compact) = Compact::of(&parts, &verdict, self.policies.as_deref()) {
                let mut inner = self.inner.lock();
                self.append(&mut inner, Slot::Compact(compact));
                return;
            }
        }
        self.push(
            DecisionRecord::new(parts, verdict, self.explain_later(now)),
            detail,
        );
    }

    /// How a record explains, when asked, the policies of a decision made at `now` (nothing
    /// for a ring made without the window's policies).
    pub(super) fn explain_later(&self, now: Instant) -> Option<ExplainLater> {
        self.policies.as_ref().map(|policies| ExplainLater {
            policies: policies.clone(),
            reads: policies.reads(),
            now,
        })
    }

    /// Appends a record; forgets the oldest past `size` and the oldest detail past
    /// `detail_max_bytes`.
    fn append(&self, inner: &mut Inner, slot: Slot) {
        let number = inner.first + inner.records.len() as u64;
        let id = *slot.trace_id();
        inner.recorded += 1;
        match slot {
            Slot::Shared(_) => {
                inner.shared.insert(id, number);
            }
            Slot::Compact(_) => {
                if !inner.shared.is_empty() {
                    inner.shared.remove(&id);
                }
            }
        }
        inner.ids.push_back(id);
        inner.records.push_back(slot);
        while inner.records.len() > self.settings.size {
            let Some(old) = inner.records.pop_front() else {
                break;
            };
            inner.ids.pop_front();
            let number = inner.first;
            inner.first += 1;
            if let Slot::Shared(old) = old {
                if let Entry::Occupied(newest) = inner.shared.entry(old.trace_id) {
                    if *newest.get() == number {
                        newest.remove();
                    }
                }
                inner.detail_bytes -= old.forget_detail();
            }
        }
        self.shrink_detail(inner);
    }

    /// A log of a kept trace that arrived after its decision: added to the trace's detail
    /// while the ring keeps it (bounded like the rest).
    pub(super) fn add_late_log(&self, trace_id: &TraceKey, log: &Held) {
        let mut inner = self.inner.lock();
        let Some(Slot::Shared(record)) = inner.shared_slot(trace_id).cloned() else {
            return;
        };
        if !record.shows_detail {
            return;
        }
        let added = {
            let mut detail = record.detail.lock();
            match detail.as_mut() {
                Some(d) => {
                    let before = d.bytes();
                    d.push(log);
                    d.late_logs += 1;
                    d.bytes() - before
                }
                None => 0,
            }
        };
        inner.detail_bytes += added;
        self.shrink_detail(&mut inner);
    }

    /// Gives up the oldest detail until the bytes fit.
    fn shrink_detail(&self, inner: &mut Inner) {
        while inner.detail_bytes > self.settings.detail_max_bytes {
            let Some(old) = inner.with_detail.pop_front() else {
                break;
            };
            inner.detail_bytes -= old.take_detail();
        }
        // Records whose detail went with the record itself leave the queue here too.
        while inner.with_detail.front().is_some_and(|r| !r.holds_detail()) {
            inner.with_detail.pop_front();
        }
    }

    /// The newest record of `trace_id`, if the ring still has it.
    pub fn get(&self, trace_id: &TraceKey) -> Option<Arc<DecisionRecord>> {
        let slot = self.inner.lock().slot(trace_id).cloned();
        slot.map(|s| s.record(self))
    }

    /// Every record, newest first. (The lock is held to copy the ring, not to rebuild the
    /// compact records.)
    pub fn newest_first(&self) -> Vec<Arc<DecisionRecord>> {
        let slots: Vec<Slot> = self.inner.lock().records.iter().rev().cloned().collect();
        slots.into_iter().map(|s| s.record(self)).collect()
    }

    /// Whether the ring keeps `trace_id`'s newest record inline ([`Slot::Compact`]).
    #[cfg(test)]
    pub(super) fn keeps_inline(&self, trace_id: &TraceKey) -> Option<bool> {
        let inner = self.inner.lock();
        inner.slot(trace_id).map(|s| matches!(s, Slot::Compact(_)))
    }

    pub fn stats(&self) -> RingStats {
        let inner = self.inner.lock();
        RingStats {
            records: inner.records.len(),
            capacity: self.settings.size,
            detail_bytes: inner.detail_bytes,
            detail_max_bytes: self.settings.detail_max_bytes,
            recorded: inner.recorded,
        }
    }
}

/// The policy that decided a trace, for [`DecisionRecord::decided_by`]: the keeper when
/// kept; when dropped, the `drop` policy, else the first `invert_match` policy that matched.
fn decided_by(per_policy: &[(Arc<str>, Decision)], keeper: Option<&Arc<str>>) -> Option<Arc<str>> {
    keeper.cloned().or_else(|| {
        let (name, _) = per_policy.get(dropped_by(per_policy)?)?;
        Some(name.clone())
    })
}

/// Where in `per_policy` the policy that dropped a trace is: the `drop` policy, else the
/// first `invert_match` policy that matched.
fn dropped_by(per_policy: &[(Arc<str>, Decision)]) -> Option<usize> {
    let first = |decision| per_policy.iter().position(|(_, d)| *d == decision);
    first(Decision::Dropped).or_else(|| first(Decision::InvertNotSampled))
}

#[cfg(test)]
mod tests {
    use super::super::trace::Origin;
    use super::*;

    fn held(bytes: usize) -> Held {
        Held {
            origin: Arc::new(Origin::default()),
            encoded: vec![0u8; bytes].into(),
        }
    }

    fn record(n: u8, sampled: bool) -> DecisionRecord {
        DecisionRecord::new(
            RecordParts {
                trace_id: [n; 16],
                decided_at: SystemTime::now(),
                when: DecideReason::Wait,
                waited: Duration::from_secs(1),
                summary: Arc::new(Summary::default()).into(),
                log_count: 0,
                bytes: 0,
            },
            Verdict {
                sampled,
                decision: if sampled {
                    Decision::Sampled
                } else {
                    Decision::NotSampled
                },
                policy: None,
                per_policy: Vec::new(),
                errors: Vec::new(),
                reasons: Vec::new(),
            },
            None,
        )
    }

    fn detail(span_bytes: usize) -> Option<Packed> {
        Some(Packed::new(Items {
            spans: &[held(span_bytes)],
            logs: &[],
        }))
    }

    #[test]
    fn packed_items_come_back_as_they_were_with_their_origins() {
        use weft_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
        use weft_proto::resource::v1::Resource;
        let origin = |service: &str| {
            Arc::new(Origin {
                resource: Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(service.into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                resource_schema_url: "https://r".into(),
                scope: InstrumentationScope {
                    name: "lib".into(),
                    ..Default::default()
                },
                ..Default::default()
            })
        };
        let (a, b) = (origin("frontend"), origin("payments"));
        let item = |origin: &Arc<Origin>, bytes: &[u8]| Held {
            origin: origin.clone(),
            encoded: bytes.into(),
        };
        let spans = [item(&a, b"one"), item(&b, b""), item(&a, b"three")];
        let logs = [item(&b, b"log")];
        let mut packed = Packed::new(Items {
            spans: &spans,
            logs: &logs,
        });
        // A late log's origin is found by its wire form: an equal origin made apart.
        packed.push(&item(&origin("frontend"), b"late"));
        packed.late_logs += 1;
        assert_eq!(
            packed.bytes(),
            15 + a.wire().len() + b.wire().len(),
            "each origin once"
        );
        assert_eq!(packed.origins.len(), 2, "each origin once");
        let back = packed.unpack();
        let bytes =
            |items: &[Held]| -> Vec<Vec<u8>> { items.iter().map(|h| h.encoded.to_vec()).collect() };
        assert_eq!(bytes(&back.spans), [&b"one"[..], b"", b"three"]);
        assert_eq!(bytes(&back.logs), [&b"log"[..], b"late"]);
        assert_eq!(back.late_logs, 1);
        let origins: Vec<&Origin> = back
            .spans
            .iter()
            .chain(&back.logs)
            .map(|h| &*h.origin)
            .collect();
        assert_eq!(origins, [&*a, &*b, &*a, &*b, &*a]);
        let decoded = packed.origins();
        assert_eq!(
            packed.logs(&decoded, false).len(),
            1,
            "the late log is not at the decision"
        );
        // An origin among the oldest of many is added again rather than looked for.
        let many: Vec<Held> = (0..ORIGINS_LOOKED_AT + 2)
            .map(|i| item(&origin(&format!("service {i}")), b"x"))
            .collect();
        let mut spans = many.clone();
        spans.push(many[0].clone());
        let packed = Packed::new(Items {
            spans: &spans,
            logs: &[],
        });
        assert_eq!(packed.origins.len(), ORIGINS_LOOKED_AT + 3);
        let back = packed.unpack();
        assert_eq!(back.spans[ORIGINS_LOOKED_AT + 2].origin, many[0].origin);
        assert_eq!(back.spans[1].origin, many[1].origin);
        assert_ne!(back.spans[1].origin, many[0].origin);
    }

    fn ring(size: usize, detail_max_bytes: usize) -> DecisionRing {
        DecisionRing::new(RingSettings {
            size,
            keep_dropped_detail: false,
            detail_max_bytes,
        })
    }

    #[test]
    fn the_oldest_record_goes_first_and_takes_its_detail_with_it() {
        let r = ring(2, 1000);
        r.push(record(1, true), detail(100));
        r.push(record(2, false), None);
        r.push(record(3, true), detail(50));
        let ids: Vec<u8> = r.newest_first().iter().map(|x| x.trace_id[0]).collect();
        assert_eq!(ids, vec![3, 2]);
        assert!(r.get(&[1; 16]).is_none());
        assert_eq!(r.stats().detail_bytes, 50);
        assert_eq!(r.stats().recorded, 3);
    }

    #[test]
    fn past_the_byte_bound_the_oldest_detail_goes_and_the_summary_stays() {
        let r = ring(10, 250);
        r.push(record(1, true), detail(100));
        r.push(record(2, true), detail(100));
        r.push(record(3, true), detail(100));
        assert!(
            !r.get(&[1; 16]).unwrap().has_detail(),
            "oldest detail given up"
        );
        assert!(r.get(&[2; 16]).unwrap().has_detail());
        assert!(r.get(&[3; 16]).unwrap().has_detail());
        assert_eq!(r.stats().detail_bytes, 200);
        // A trace larger than the whole bound keeps no detail, and costs no other its own.
        r.push(record(4, true), detail(300));
        assert!(!r.get(&[4; 16]).unwrap().has_detail());
        assert!(r.get(&[3; 16]).unwrap().has_detail());
    }

    #[test]
    fn late_logs_join_the_detail_within_the_bound() {
        let r = ring(10, 300);
        r.push(record(1, true), detail(100));
        r.push(record(2, true), detail(100));
        r.add_late_log(&[2; 16], &held(20));
        let d = r.get(&[2; 16]).unwrap().detail().unwrap();
        assert_eq!((d.logs.len(), d.late_logs), (1, 1));
        assert_eq!(r.stats().detail_bytes, 220);
        // Over the bound: the oldest detail goes.
        r.add_late_log(&[2; 16], &held(100));
        assert!(!r.get(&[1; 16]).unwrap().has_detail());
        assert_eq!(r.stats().detail_bytes, 220);
        // A log of a trace the ring does not know is ignored.
        r.add_late_log(&[9; 16], &held(10));
        assert_eq!(r.stats().detail_bytes, 220);
    }

    #[test]
    fn a_trace_decided_twice_is_found_by_its_newest_record() {
        let r = ring(3, 0);
        r.push(record(1, false), None);
        r.push(record(1, true), None);
        assert!(r.get(&[1; 16]).unwrap().sampled);
        r.push(record(2, true), None);
        r.push(record(3, true), None);
        // The first record of trace 1 left; its newer record stays findable.
        assert!(r.get(&[1; 16]).unwrap().sampled);
    }

    #[test]
    fn a_compact_record_after_a_shared_one_of_its_trace_is_the_one_found() {
        let value: serde_yaml::Value = serde_yaml::from_str(
            "policies: [{name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]",
        )
        .unwrap();
        let mut diags = weft_config::Diagnostics::new();
        let cfg = weft_config::decode_component::<super::super::TailSamplingConfig>(
            &value,
            &weft_config::ConfigPath::root(),
            &mut diags,
        )
        .unwrap();
        let policies = Arc::new(Policies::new(&cfg.policies).unwrap());
        let r = ring(10, 1000).with_policies(policies);
        let compact = |n: u8| {
            let parts = RecordParts {
                trace_id: [n; 16],
                decided_at: SystemTime::now(),
                when: DecideReason::Wait,
                waited: Duration::from_secs(1),
                summary: RecordSummary::Unread(UnreadSummary {
                    root: None,
                    span_count: 1,
                    duration_ms: 1,
                    error: false,
                }),
                log_count: 0,
                bytes: 0,
            };
            let verdict = Verdict {
                sampled: false,
                decision: Decision::NotSampled,
                policy: None,
                per_policy: vec![(Arc::from("errors"), Decision::NotSampled)],
                errors: Vec::new(),
                reasons: Vec::new(),
            };
            r.record(parts, verdict, Instant::now(), None);
        };
        r.push(record(1, true), detail(10));
        compact(1);
        assert!(r.keeps_inline(&[1; 16]).unwrap());
        assert!(
            !r.get(&[1; 16]).unwrap().sampled,
            "the newer, compact record"
        );
        // A late log joins only a kept trace whose record is the newest.
        r.add_late_log(&[1; 16], &held(5));
        assert_eq!(r.stats().detail_bytes, 10);
        // Found among others by the scan, newest first.
        compact(2);
        r.push(record(3, true), detail(10));
        compact(2);
        assert!(r.keeps_inline(&[2; 16]).unwrap());
        assert!(r.get(&[3; 16]).unwrap().sampled);
        r.add_late_log(&[3; 16], &held(5));
        assert_eq!(r.stats().detail_bytes, 25);
        assert!(r.get(&[4; 16]).is_none());
    }

    #[test]
    fn the_deciding_policy_of_a_dropped_trace() {
        let p = |v: &[(&str, Decision)]| -> Vec<(Arc<str>, Decision)> {
            v.iter().map(|(n, d)| (Arc::from(*n), *d)).collect()
        };
        let keeper: Arc<str> = Arc::from("slow");
        assert_eq!(
            decided_by(&p(&[("slow", Decision::Sampled)]), Some(&keeper)).as_deref(),
            Some("slow")
        );
        assert_eq!(
            decided_by(
                &p(&[
                    ("x", Decision::NotSampled),
                    ("no-health", Decision::Dropped)
                ]),
                None
            )
            .as_deref(),
            Some("no-health")
        );
        assert_eq!(
            decided_by(
                &p(&[("a", Decision::Sampled), ("b", Decision::InvertNotSampled)]),
                None
            )
            .as_deref(),
            Some("b")
        );
        assert_eq!(decided_by(&p(&[("a", Decision::NotSampled)]), None), None);
    }
}
