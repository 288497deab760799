//! The decisions of a `tail_sampling` window, for components that act on them: the
//! `spanmetrics` connector attaches an exemplar only once its trace was kept, and the
//! sampling outcome metrics count what each policy kept and dropped.
//!
//! A window publishes each decision on the [`VerdictBus`] of its component id; listeners
//! subscribe to the bus of the window they name in their config. Either side may be built
//! first (pipelines are built downstream first, in whatever order the configuration gives):
//! both get the bus from [`crate::component::SharedInstances`] with [`VerdictBus::of`], and
//! a listener checks at start that some window publishes on it.
//!
//! [`VerdictListener::decided`] runs on the window's decision path, with one of its shard
//! locks held: listeners do a few map operations and return, never call back into the
//! window, and never block.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use weft_config::ComponentId;

use crate::component::SharedInstances;

/// One trace's decision.
#[derive(Clone, Copy, Debug)]
pub struct Verdict<'a> {
    pub trace_id: &'a [u8; 16],
    pub sampled: bool,
    /// The policy that kept the trace; for a dropped trace, the policy that dropped it when
    /// one did (a `drop` policy), else `None`.
    pub policy: Option<&'a str>,
    /// Why it was decided then: `decision_wait`, `num_traces`, `shutdown`, …
    pub reason: &'a str,
    /// `service.name` and name of the root span, when the window read them (see
    /// [`VerdictBus::wants_roots`]) and the trace has a root span.
    pub root: Option<(&'a str, &'a str)>,
    /// Spans held at the decision.
    pub spans: usize,
    /// Log records held at the decision, by severity number (0 = unspecified).
    pub logs_by_severity: &'a [(i32, u64)],
    /// Of those, how many leave with the decision (all when kept; those
    /// `keep_logs_at_or_above` rescues when dropped).
    pub logs_kept: u64,
}

/// Something told about every decision of a window.
pub trait VerdictListener: Send + Sync {
    fn decided(&self, verdict: &Verdict<'_>);
}

/// The decisions of one window, and who listens.
#[derive(Default)]
pub struct VerdictBus {
    listeners: RwLock<Vec<Arc<dyn VerdictListener>>>,
    /// Windows publishing here: one, once its pipeline is built.
    publishers: AtomicUsize,
    /// A listener needs [`Verdict::root`]: the window then reads the root span of every
    /// trace it decides, dropped ones included (which it otherwise never decodes).
    wants_roots: AtomicBool,
}

impl VerdictBus {
    /// The bus of window `window` (created on first use, by either side).
    pub fn of(shared: &SharedInstances, window: &ComponentId) -> anyhow::Result<Arc<Self>> {
        // Keyed apart from the window itself, which is registered under its own id.
        let key = ComponentId::new(
            format!("verdicts_{}", window.type_name),
            window.name.as_deref(),
        );
        shared.get_or_try_insert(&key, || Ok(Arc::new(Self::default())))
    }

    pub fn subscribe(&self, listener: Arc<dyn VerdictListener>, wants_roots: bool) {
        if wants_roots {
            self.wants_roots.store(true, Ordering::Relaxed);
        }
        self.listeners.write().push(listener);
    }

    /// Called by a window when it is built.
    pub fn register_publisher(&self) {
        self.publishers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn has_publisher(&self) -> bool {
        self.publishers.load(Ordering::Relaxed) > 0
    }

    pub fn has_listeners(&self) -> bool {
        !self.listeners.read().is_empty()
    }

    pub fn wants_roots(&self) -> bool {
        self.wants_roots.load(Ordering::Relaxed)
    }

    pub fn publish(&self, verdict: &Verdict<'_>) {
        for listener in self.listeners.read().iter() {
            listener.decided(verdict);
        }
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;

    struct Record(Mutex<Vec<([u8; 16], bool)>>);
    impl VerdictListener for Record {
        fn decided(&self, v: &Verdict<'_>) {
            self.0.lock().push((*v.trace_id, v.sampled));
        }
    }

    #[test]
    fn listener_and_window_find_the_same_bus_in_either_order() {
        let shared = SharedInstances::default();
        let id: ComponentId = "tail_sampling/a".parse().unwrap();
        let listener = Arc::new(Record(Mutex::new(Vec::new())));
        VerdictBus::of(&shared, &id)
            .unwrap()
            .subscribe(listener.clone(), true);
        let bus = VerdictBus::of(&shared, &id).unwrap();
        assert!(!bus.has_publisher());
        bus.register_publisher();
        assert!(bus.wants_roots() && bus.has_listeners());
        bus.publish(&Verdict {
            trace_id: &[7; 16],
            sampled: true,
            policy: Some("errors"),
            reason: "decision_wait",
            root: None,
            spans: 3,
            logs_by_severity: &[],
            logs_kept: 0,
        });
        assert_eq!(*listener.0.lock(), [([7; 16], true)]);
        // Another window's bus is another bus.
        let other = VerdictBus::of(&shared, &"tail_sampling".parse().unwrap()).unwrap();
        assert!(!other.has_publisher() && !other.has_listeners());
    }
}
