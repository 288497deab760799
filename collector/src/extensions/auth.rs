//! Server authenticators: what a receiver's `auth: { authenticator: <extension id> }` names.
//!
//! As in the Collector, authentication is an extension that receivers reference by id. An
//! authenticator extension registers itself in [`SharedInstances`] when it is built
//! ([`register`]); extensions are built before receivers, so a receiver's build finds it
//! with [`lookup`] and keeps the `Arc` for the requests it serves. An extension that is
//! defined but not listed in `service::extensions` is never built, so a reference to it fails
//! the receiver's build (and `weft validate` reports it, see `service::load_config`).

use std::sync::Arc;

use http::HeaderMap;
use weft_config::ComponentId;

use crate::component::SharedInstances;

/// Checks the credentials of one incoming request, from its HTTP headers (gRPC metadata is
/// HTTP/2 headers, so both transports use this).
pub trait ServerAuthenticator: Send + Sync {
    /// `Ok` when the request may go on. The error message is sent to the client: it says
    /// what is wrong without echoing the credentials that were sent.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), String>;

    /// The `WWW-Authenticate` value of an HTTP 401 answer, e.g. `Bearer`.
    fn challenge(&self) -> String;
}

/// The registered form: a concrete type, so [`SharedInstances`] can downcast to it.
struct Registered(Arc<dyn ServerAuthenticator>);

/// Shared instances are keyed by component id; the prefix keeps an authenticator apart from
/// any other instance registered under the same id.
fn key(id: &ComponentId) -> ComponentId {
    ComponentId::new(
        format!("authenticator_{}", id.type_name),
        id.name.as_deref(),
    )
}

/// Makes `authenticator` available to receivers as extension `id`.
pub fn register(
    shared: &SharedInstances,
    id: &ComponentId,
    authenticator: Arc<dyn ServerAuthenticator>,
) -> anyhow::Result<()> {
    shared.get_or_try_insert(&key(id), || Ok(Arc::new(Registered(authenticator))))?;
    Ok(())
}

/// The authenticator built for extension `id`, if that extension is running.
pub fn lookup(shared: &SharedInstances, id: &ComponentId) -> Option<Arc<dyn ServerAuthenticator>> {
    shared.get::<Registered>(&key(id)).map(|r| r.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Always;
    impl ServerAuthenticator for Always {
        fn authenticate(&self, _: &HeaderMap) -> Result<(), String> {
            Ok(())
        }
        fn challenge(&self) -> String {
            "Bearer".into()
        }
    }

    #[test]
    fn registered_authenticators_are_found_by_id() {
        let shared = SharedInstances::default();
        let id = ComponentId::new("bearertokenauth", Some("a"));
        assert!(lookup(&shared, &id).is_none());
        register(&shared, &id, Arc::new(Always)).unwrap();
        let found = lookup(&shared, &id).unwrap();
        assert!(found.authenticate(&HeaderMap::new()).is_ok());
        assert!(lookup(&shared, &ComponentId::new("bearertokenauth", None)).is_none());
    }
}
