//! `${env:VAR}` and `${env:VAR:-default}` expansion, as the OpenTelemetry Collector does it.
//!
//! Expansion runs on the parsed document, string scalar by string scalar, so an error names
//! the path of the value that referenced the missing variable. When a scalar is exactly one
//! reference (`port: ${env:PORT}`), the expanded text is re-read as a YAML scalar, so it can
//! become a number or a boolean just as if it had been written in the file. `$$` is a literal `$`.

use serde_yaml::Value;

use crate::diagnostics::{ConfigPath, Diagnostics};

/// Where variables come from. Production passes `std::env::var`; tests pass a map, so no test
/// ever touches the process environment.
pub trait EnvLookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> EnvLookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The process environment.
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Expands every reference in the document in place, pushing one error per unresolvable one.
pub fn expand_document(
    value: &mut Value,
    env: &dyn EnvLookup,
    path: &ConfigPath,
    diags: &mut Diagnostics,
) {
    match value {
        Value::String(s) => {
            if !s.contains('$') {
                return;
            }
            match expand_str(s, env) {
                Ok(Expanded::Whole(text)) => *value = reparse_scalar(text),
                Ok(Expanded::Text(text)) => *value = Value::String(text),
                Err(msg) => diags.error(path, msg),
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_document(item, env, &path.index(i), diags);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                expand_document(v, env, &path.key(key), diags);
            }
        }
        Value::Tagged(tagged) => expand_document(&mut tagged.value, env, path, diags),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

enum Expanded {
    /// The scalar was exactly one reference.
    Whole(String),
    /// The scalar mixed text and references (or held only `$$` escapes).
    Text(String),
}

fn reparse_scalar(text: String) -> Value {
    match serde_yaml::from_str::<Value>(&text) {
        Ok(v @ (Value::Bool(_) | Value::Number(_))) => v,
        _ => Value::String(text),
    }
}

fn expand_str(input: &str, env: &dyn EnvLookup) -> Result<Expanded, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    let mut references = 0usize;
    let mut literal_text = false;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        if pos > 0 {
            literal_text = true;
        }
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            literal_text = true;
            rest = stripped;
            continue;
        }
        let Some(body_and_rest) = after.strip_prefix('{') else {
            out.push('$');
            literal_text = true;
            rest = after;
            continue;
        };
        let Some(end) = body_and_rest.find('}') else {
            return Err(format!("unterminated reference in {input:?}: missing '}}'"));
        };
        let body = &body_and_rest[..end];
        out.push_str(&resolve(body, env)?);
        references += 1;
        rest = &body_and_rest[end + 1..];
    }
    if !rest.is_empty() {
        literal_text = true;
    }
    out.push_str(rest);
    if references == 1 && !literal_text {
        Ok(Expanded::Whole(out))
    } else {
        Ok(Expanded::Text(out))
    }
}

fn resolve(body: &str, env: &dyn EnvLookup) -> Result<String, String> {
    let (scheme, spec) = match body.split_once(':') {
        Some((scheme, spec)) if scheme == "env" => (scheme, spec),
        Some((scheme, _)) if is_var_name(scheme) => {
            return Err(format!(
            "unsupported reference \"${{{body}}}\": unknown scheme \"{scheme}\", expected \"env\""
        ))
        }
        // `${VAR}` and `${VAR:-default}` without a scheme: the Collector's older form.
        _ => ("env", body),
    };
    let (name, default) = match spec.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (spec, None),
    };
    if !is_var_name(name) {
        return Err(format!(
            "invalid reference \"${{{body}}}\": \"{name}\" is not an environment variable name"
        ));
    }
    debug_assert_eq!(scheme, "env");
    match (env.get(name), default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(format!(
            "environment variable \"{name}\" is not set and \"${{{body}}}\" has no default (write ${{env:{name}:-default}} to give one)"
        )),
    }
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> impl Fn(&str) -> Option<String> {
        let map: HashMap<&str, &str> = [("HOST", "db"), ("PORT", "4317"), ("FLAG", "true")]
            .into_iter()
            .collect();
        move |k: &str| map.get(k).map(|v| v.to_string())
    }

    fn expand(yaml: &str) -> (Value, Diagnostics) {
        let mut v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diagnostics::new();
        expand_document(&mut v, &env(), &ConfigPath::root(), &mut d);
        (v, d)
    }

    #[test]
    fn whole_reference_becomes_typed_scalar() {
        let (v, d) = expand("a: ${env:PORT}\nb: ${env:FLAG}\nc: ${HOST}");
        assert!(d.is_empty(), "{d}");
        assert_eq!(v["a"], Value::Number(4317.into()));
        assert_eq!(v["b"], Value::Bool(true));
        assert_eq!(v["c"], Value::String("db".into()));
    }

    #[test]
    fn mixed_text_stays_a_string_and_defaults_apply() {
        let (v, d) =
            expand("a: ${env:HOST}:${env:PORT}\nb: ${env:MISSING:-localhost:1}\nc: $$HOME");
        assert!(d.is_empty(), "{d}");
        assert_eq!(v["a"], Value::String("db:4317".into()));
        assert_eq!(v["b"], Value::String("localhost:1".into()));
        assert_eq!(v["c"], Value::String("$HOME".into()));
    }

    #[test]
    fn missing_variable_is_reported_with_its_path() {
        let (_, d) =
            expand("exporters:\n  otlp:\n    endpoint: ${env:NOPE}\n    x: ['${env:ALSO_NOPE}']");
        let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with(
            "error: exporters::otlp::endpoint: environment variable \"NOPE\" is not set"
        ));
        assert!(
            msgs[1].starts_with("error: exporters::otlp::x[0]: environment variable \"ALSO_NOPE\"")
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        let (_, d) = expand("a: ${env:HOST\nb: ${file:/x}\nc: ${env:1BAD}");
        assert_eq!(d.len(), 3, "{d}");
    }
}
