//! A list of conditions evaluated as the Collector's `ottl.ConditionSequence` does: true
//! when any condition is true, with the configured [`ErrorMode`] deciding what an
//! evaluation error does.

use serde::Deserialize;

use super::{Condition, Context, Error, EvalError};

/// What an evaluation error does (the Collector's `error_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// The error is reported to the caller, which stops evaluating (the Collector's default
    /// for `ottl_condition`).
    #[default]
    Propagate,
    /// The failing condition counts as false and is reported to be logged; evaluation goes on.
    Ignore,
    /// As `ignore`, without logging.
    Silent,
}

/// Conditions joined by "or".
#[derive(Debug)]
pub struct ConditionSequence<C: Context> {
    conditions: Vec<Condition<C>>,
    mode: ErrorMode,
}

impl<C: Context> ConditionSequence<C> {
    /// Compiles every condition; on failure, the index of the first failing one and why.
    pub fn new(sources: &[String], mode: ErrorMode) -> Result<Self, (usize, Error)> {
        let conditions = sources
            .iter()
            .enumerate()
            .map(|(i, src)| Condition::new(src).map_err(|e| (i, e)))
            .collect::<Result<_, _>>()?;
        Ok(Self { conditions, mode })
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Whether any condition holds for `data`. With `propagate` the first error is returned
    /// with the index of its condition; with `ignore` each error is passed to `on_ignored`
    /// (with its index) and its condition counts as false; with `silent` errors are dropped.
    pub fn eval<'a>(
        &'a self,
        data: &C::Data<'a>,
        on_ignored: &mut dyn FnMut(usize, &EvalError),
    ) -> Result<bool, (usize, EvalError)> {
        for (index, condition) in self.conditions.iter().enumerate() {
            match condition.eval(data) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => match self.mode {
                    ErrorMode::Propagate => return Err((index, e)),
                    ErrorMode::Ignore => on_ignored(index, &e),
                    ErrorMode::Silent => {}
                },
            }
        }
        Ok(false)
    }

    /// Every path the conditions read.
    pub fn paths(&self) -> Vec<&C::Path> {
        self.conditions.iter().flat_map(Condition::paths).collect()
    }
}
