//! `always_sample`: every trace. No settings.

use std::time::Instant;

use super::super::trace::{Reads, TraceData};
use super::kind::{Nesting, NoSettings, PolicyKind, Section};
use super::{Decision, Evaluate};

/// The `always_sample` policy type, registered in [`super::KINDS`].
pub(crate) struct Kind;

impl PolicyKind for Kind {
    const NAME: &'static str = "always_sample";
    const SECTION: Section = Section::None;
    const NESTING: Nesting = Nesting::Anywhere;
    const EXAMPLES: &'static [&'static str] = &[];
    type Config = NoSettings;

    fn build(_: &NoSettings) -> Result<Box<dyn Evaluate>, String> {
        Ok(Box::new(AlwaysSample))
    }

    fn reads(_: &NoSettings) -> Reads {
        Reads::NOTHING
    }
}

/// `always_sample`: every trace.
#[derive(Debug)]
pub(super) struct AlwaysSample;

impl Evaluate for AlwaysSample {
    fn evaluate(&self, _trace: &TraceData, _now: Instant) -> Decision {
        Decision::Sampled
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn always_sample_samples_even_an_empty_trace() {
        assert_eq!(
            AlwaysSample.evaluate(&trace_of(vec![]), now()),
            Decision::Sampled
        );
    }
}
