//! Whether the service runs, and which component failed: set by the service and by
//! components that can no longer work (a listener that died), read by the `health_check`
//! extension. Below every component, so any of them can report without importing the
//! service.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Whether the service runs; read by the `health_check` extension.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Default)]
struct HealthInner {
    running: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Health {
    pub fn set_running(&self, running: bool) {
        self.inner.running.store(running, Ordering::SeqCst);
    }

    /// A component that can no longer do its work (a listener that died) says so here.
    pub fn report_failure(&self, component: &str, error: &str) {
        tracing::error!(
            component,
            error,
            "component failed; health check now reports unavailable"
        );
        *self.inner.failure.lock() = Some(format!("{component}: {error}"));
    }

    /// `Ok` while every pipeline runs; otherwise why not.
    pub fn status(&self) -> Result<(), String> {
        if let Some(f) = self.inner.failure.lock().clone() {
            return Err(f);
        }
        if self.inner.running.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("not running (starting or shutting down)".to_string())
        }
    }
}
