//! Arbitrary text as a configuration file: YAML parsing, `${env:…}` expansion, every
//! component's decoding and validation, and the pipeline checks of `weft validate`.
//!
//! Must hold for every input: `load_config` never panics; whatever is wrong ends up in its
//! diagnostics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft::registry::Registry;
use weft::service::load_config;

thread_local! {
    static REGISTRY: Registry = Registry::builtin();
}

/// A fixed environment: variables whose name starts with `SET` exist (so both expansion
/// outcomes are reachable), every other lookup fails.
fn env(name: &str) -> Option<String> {
    name.starts_with("SET").then(|| format!("value-of-{name}"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    REGISTRY.with(|registry| {
        let loaded = load_config(text, &env, registry);
        // Reading the outcome must not panic either.
        let _ = loaded.is_valid();
        let _ = loaded.diagnostics.to_string();
    });
});
