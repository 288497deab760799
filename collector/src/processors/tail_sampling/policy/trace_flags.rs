//! `trace_flags`: keep a trace when any of its spans carries the W3C `sampled` trace flag.
//!
//! The Collector's policy (no settings): OTLP's span `flags` field holds the W3C trace
//! flags in its low byte; bit 0 is `sampled` (the upper bits say whether the parent was
//! remote, and are ignored here). SDKs set it when their head sampler recorded the span
//! as sampled, so this keeps what an upstream decision already chose to keep. Spans from
//! SDKs older than OTLP 1.1 carry no flags (0) and never match.

use std::time::Instant;

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, NoSettings, PolicyKind, Section};
use super::{Decision, Evaluate};

/// W3C `trace-flags` bit 0.
const SAMPLED: u32 = 0x01;

/// The `trace_flags` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "trace_flags";
    const SECTION: Section = Section::None;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[];
    type Config = NoSettings;

    fn build(_: &NoSettings) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(TraceFlags))
    }

    fn reads(_: &NoSettings) -> Reads {
        Reads::SPAN_FLAGS
    }
}

#[derive(Debug)]
pub(super) struct TraceFlags;

impl Evaluate for TraceFlags {
    fn evaluate(&self, trace: &TraceData, _now: Instant) -> Decision {
        if trace.spans.iter().any(|e| e.span.flags & SAMPLED != 0) {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_proto::trace::v1::Span;

    use super::super::testutil::*;
    use super::*;

    fn span_flags(flags: u32) -> Span {
        Span {
            flags,
            ..span_with(&[])
        }
    }

    #[test]
    fn any_span_with_the_sampled_bit_keeps_the_trace() {
        let one_sampled = trace_of(vec![span_flags(0), span_flags(0x01), span_flags(0)]);
        assert_eq!(TraceFlags.evaluate(&one_sampled, now()), Decision::Sampled);
        // The remote-parent bits (0x100, 0x200) and other trace-flag bits are not "sampled".
        let unsampled = trace_of(vec![
            span_flags(0),
            span_flags(0x100),
            span_flags(0x300),
            span_flags(0x02),
        ]);
        assert_eq!(TraceFlags.evaluate(&unsampled, now()), Decision::NotSampled);
        // Sampled with the remote-parent bits set still counts.
        let remote = trace_of(vec![span_flags(0x301)]);
        assert_eq!(TraceFlags.evaluate(&remote, now()), Decision::Sampled);
    }

    #[test]
    fn a_trace_without_spans_or_flags_is_not_kept() {
        assert_eq!(
            TraceFlags.evaluate(&trace_of(vec![]), now()),
            Decision::NotSampled
        );
        assert_eq!(
            TraceFlags.evaluate(&trace_of_logs(vec![log_with_body("x")]), now()),
            Decision::NotSampled
        );
        assert_eq!(
            TraceFlags.evaluate(&trace_with_spans(50), now()),
            Decision::NotSampled,
            "spans from SDKs that set no flags"
        );
    }
}
