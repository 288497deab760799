//! The function registry: every OTTL function Weft knows, by name, with its parameters.
//!
//! Converters (upper-case names) compute a value and may appear anywhere a value may;
//! editors (lower-case names) change telemetry and are the head of a statement. Calls are
//! checked when a condition or statement is compiled: an unknown name, a wrong number of
//! arguments, an unknown argument name or a literal of the wrong type is a configuration
//! error naming the function, never a surprise on live data.
//!
//! Adding a converter: one entry in [`FUNCTIONS`] with its parameters and its
//! implementation (a function of the evaluated arguments). Adding an editor: one entry
//! whose implementation is [`Implementation::Set`] (it computes the target's new value,
//! written through the context) or [`Implementation::Map`] (it changes the map its target
//! names); the editors themselves are in [`super::editors`].

use std::borrow::Cow;

use regex::Regex;
use weft_proto::common::v1::{any_value, KeyValue};

use super::editors;
use super::value::{List, Map, Value};
use super::EvalError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionKind {
    Converter,
    Editor,
}

/// What an argument must be. Literal arguments are checked when compiling; values read
/// from telemetry when evaluating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// Any value.
    Any,
    /// A string (a literal must be a string; a value must evaluate to one).
    String,
    /// Any value, converted to a string when evaluated (see [`Value::to_string_like`]).
    StringLike,
    /// Any value, converted to an int when evaluated.
    IntLike,
    /// Any value, converted to a double when evaluated.
    FloatLike,
    /// A list (literal, or a value that is one) of values converted to strings.
    StringLikeList,
    /// A string literal compiled as a regular expression when the call is compiled.
    Regex,
    /// As [`ParamType::Regex`], with at least one named capture group.
    NamedRegex,
    /// A path the editor writes to.
    Target,
    /// A string literal, one of these words (`ConvertCase`'s `toCase`).
    Choice(&'static [&'static str]),
    /// The name of a converter taking one string (`SHA256`), applied by the editor.
    Function,
    /// A string literal that is a time format (`Time`'s `format`), checked when compiled.
    TimeFormat,
}

#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub optional: bool,
}

const fn param(name: &'static str, ty: ParamType) -> Param {
    Param {
        name,
        ty,
        optional: false,
    }
}

const fn optional(name: &'static str, ty: ParamType) -> Param {
    Param {
        name,
        ty,
        optional: true,
    }
}

/// The evaluated arguments of one converter call, in parameter order.
pub struct Args<'a> {
    pub(super) function: &'static str,
    pub(super) values: Vec<Arg<'a>>,
}

pub(super) enum Arg<'a> {
    Value(Value<'a>),
    Regex(&'a Regex),
    /// A converter passed by name.
    Function(&'static Function),
    /// An optional parameter left out.
    Absent,
}

impl<'a> Args<'a> {
    pub(super) fn new(function: &'static str, values: Vec<Arg<'a>>) -> Self {
        Self { function, values }
    }

    /// Whether optional parameter `i` was given.
    pub(super) fn given(&self, i: usize) -> bool {
        !matches!(self.values.get(i), None | Some(Arg::Absent))
    }

    /// The value of parameter `i`, taken (nil when absent).
    pub(super) fn take(&mut self, i: usize) -> Value<'a> {
        match self
            .values
            .get_mut(i)
            .map(|a| std::mem::replace(a, Arg::Absent))
        {
            Some(Arg::Value(v)) => v,
            _ => Value::Nil,
        }
    }

    pub(super) fn regex(&self, i: usize) -> Result<&'a Regex, EvalError> {
        match self.values.get(i) {
            Some(Arg::Regex(r)) => Ok(r),
            _ => Err(EvalError::new(format!(
                "{}: argument {} is not a compiled pattern",
                self.function,
                i + 1
            ))),
        }
    }

    pub(super) fn string(&mut self, i: usize) -> Result<Cow<'a, str>, EvalError> {
        match self.take(i) {
            Value::Str(s) => Ok(s),
            v => Err(EvalError::new(format!(
                "{}: expected a string but got {}",
                self.function,
                v.type_name()
            ))),
        }
    }

    /// Parameter `i` converted as OTTL's string getters do; an error for nil.
    pub(super) fn string_like(&mut self, i: usize) -> Result<Cow<'a, str>, EvalError> {
        let function = self.function;
        self.take(i)
            .to_string_like()?
            .ok_or_else(|| EvalError::new(format!("{function}: expected a string but got nil")))
    }

    /// Parameter `i` as an int (an int-like value); an error for nil.
    pub(super) fn int(&mut self, i: usize) -> Result<i64, EvalError> {
        let function = self.function;
        let value = self.take(i);
        value.to_int_like()?.ok_or_else(|| {
            EvalError::new(format!(
                "{function}: expected an int but got {}",
                value.type_name()
            ))
        })
    }

    /// Optional parameter `i` as a bool, `default` when left out.
    pub(super) fn bool_or(&mut self, i: usize, default: bool) -> Result<bool, EvalError> {
        if !self.given(i) {
            return Ok(default);
        }
        match self.take(i) {
            Value::Bool(b) => Ok(b),
            v => Err(EvalError::new(format!(
                "{}: expected a bool but got {}",
                self.function,
                v.type_name()
            ))),
        }
    }

    /// Parameter `i`, a list, as strings (each converted as string getters do).
    pub(super) fn string_list(&mut self, i: usize) -> Result<Vec<String>, EvalError> {
        let function = self.function;
        match self.take(i) {
            Value::List(l) => (0..l.len())
                .map(|j| {
                    l.get(j)
                        .unwrap_or(Value::Nil)
                        .to_string_like()?
                        .map(Cow::into_owned)
                        .ok_or_else(|| EvalError::new(format!("{function}: a list item is nil")))
                })
                .collect(),
            v => Err(EvalError::new(format!(
                "{function}: expected a list but got {}",
                v.type_name()
            ))),
        }
    }

    /// The converter passed as parameter `i` applied to `input`, or `input` when absent.
    pub(super) fn apply_function(&self, i: usize, input: String) -> Result<String, EvalError> {
        let Some(Arg::Function(function)) = self.values.get(i) else {
            return Ok(input);
        };
        let Implementation::Converter(run) = function.implementation else {
            return Err(EvalError::new(format!(
                "{}: {} is not a converter",
                self.function, function.name
            )));
        };
        let output = run(Args::new(
            function.name,
            vec![Arg::Value(Value::Str(Cow::Owned(input)))],
        ))?;
        match output {
            Value::Str(s) => Ok(s.into_owned()),
            v => Err(EvalError::new(format!(
                "{}: {} returned {}, not a string",
                self.function,
                function.name,
                v.type_name()
            ))),
        }
    }
}

type ConverterFn = for<'a> fn(Args<'a>) -> Result<Value<'a>, EvalError>;
/// An editor computing its target's new value from its arguments (the first is the
/// target's current value when the editor reads it); `None` leaves the target as it is.
pub(super) type SetFn = for<'a> fn(Args<'a>) -> Result<Option<Value<'a>>, EvalError>;
/// An editor changing the map its target names; the first argument is absent (the target
/// itself is the map).
pub(super) type MapFn = for<'a> fn(&mut Vec<KeyValue>, Args<'a>) -> Result<(), EvalError>;

#[derive(Clone, Copy)]
pub enum Implementation {
    Converter(ConverterFn),
    /// An editor that sets its target (`set`, `replace_pattern`).
    Set {
        run: SetFn,
        /// Whether `run` gets the target's current value as its first argument.
        reads_target: bool,
    },
    /// An editor that changes the map its target names (`delete_key`, `keep_keys`, …).
    Map(MapFn),
}

/// One function of the registry.
#[derive(Clone, Copy)]
pub struct Function {
    pub name: &'static str,
    pub params: &'static [Param],
    pub implementation: Implementation,
}

impl Function {
    pub fn kind(&self) -> FunctionKind {
        match self.implementation {
            Implementation::Converter(_) => FunctionKind::Converter,
            Implementation::Set { .. } | Implementation::Map(_) => FunctionKind::Editor,
        }
    }

    /// `Name(a, b)` for messages.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                if p.optional {
                    format!("{}?", p.name)
                } else {
                    p.name.to_string()
                }
            })
            .collect();
        format!("{}({})", self.name, params.join(", "))
    }
}

/// Every function Weft knows, converters sorted by name, then editors.
pub static FUNCTIONS: &[Function] = &[
    Function {
        name: "Concat",
        params: &[
            param("vals", ParamType::StringLikeList),
            param("delimiter", ParamType::String),
        ],
        implementation: Implementation::Converter(concat),
    },
    Function {
        name: "ConvertCase",
        params: &[
            param("target", ParamType::Any),
            param(
                "toCase",
                ParamType::Choice(&["lower", "upper", "snake", "camel"]),
            ),
        ],
        implementation: Implementation::Converter(convert_case),
    },
    Function {
        name: "Double",
        params: &[param("value", ParamType::FloatLike)],
        implementation: Implementation::Converter(double),
    },
    Function {
        name: "ExtractPatterns",
        params: &[
            param("target", ParamType::Any),
            param("pattern", ParamType::NamedRegex),
        ],
        implementation: Implementation::Converter(extract_patterns),
    },
    Function {
        name: "Int",
        params: &[param("value", ParamType::IntLike)],
        implementation: Implementation::Converter(int),
    },
    Function {
        name: "IsMap",
        params: &[param("value", ParamType::Any)],
        implementation: Implementation::Converter(is_map),
    },
    Function {
        name: "IsMatch",
        params: &[
            param("target", ParamType::StringLike),
            param("pattern", ParamType::Regex),
        ],
        implementation: Implementation::Converter(is_match),
    },
    Function {
        name: "IsString",
        params: &[param("value", ParamType::Any)],
        implementation: Implementation::Converter(is_string),
    },
    Function {
        name: "Len",
        params: &[param("target", ParamType::Any)],
        implementation: Implementation::Converter(len),
    },
    Function {
        name: "MD5",
        params: &[param("value", ParamType::Any)],
        implementation: Implementation::Converter(md5_hex),
    },
    Function {
        name: "ParseJSON",
        params: &[param("target", ParamType::Any)],
        implementation: Implementation::Converter(parse_json),
    },
    Function {
        name: "SHA1",
        params: &[param("value", ParamType::Any)],
        implementation: Implementation::Converter(sha1_hex),
    },
    Function {
        name: "SHA256",
        params: &[param("value", ParamType::Any)],
        implementation: Implementation::Converter(sha256_hex),
    },
    Function {
        name: "SHA512",
        params: &[param("value", ParamType::Any)],
        implementation: Implementation::Converter(sha512_hex),
    },
    Function {
        name: "SpanID",
        params: &[param("bytes", ParamType::Any)],
        implementation: Implementation::Converter(span_id),
    },
    Function {
        name: "String",
        params: &[param("value", ParamType::StringLike)],
        implementation: Implementation::Converter(string),
    },
    Function {
        name: "Time",
        params: &[
            param("target", ParamType::Any),
            param("format", ParamType::TimeFormat),
            optional("location", ParamType::String),
            optional("locale", ParamType::String),
        ],
        implementation: Implementation::Converter(time),
    },
    Function {
        name: "TraceID",
        params: &[param("bytes", ParamType::Any)],
        implementation: Implementation::Converter(trace_id),
    },
    Function {
        name: "UnixMilli",
        params: &[param("time", ParamType::Any)],
        implementation: Implementation::Converter(unix_milli),
    },
    Function {
        name: "delete_key",
        params: &[
            param("target", ParamType::Target),
            param("key", ParamType::String),
        ],
        implementation: Implementation::Map(editors::delete_key),
    },
    Function {
        name: "delete_matching_keys",
        params: &[
            param("target", ParamType::Target),
            param("pattern", ParamType::Regex),
        ],
        implementation: Implementation::Map(editors::delete_matching_keys),
    },
    Function {
        name: "flatten",
        params: &[
            param("target", ParamType::Target),
            optional("prefix", ParamType::String),
            optional("depth", ParamType::IntLike),
            optional("resolveConflicts", ParamType::Any),
        ],
        implementation: Implementation::Map(editors::flatten),
    },
    Function {
        name: "keep_keys",
        params: &[
            param("target", ParamType::Target),
            param("keys", ParamType::StringLikeList),
        ],
        implementation: Implementation::Map(editors::keep_keys),
    },
    Function {
        name: "keep_matching_keys",
        params: &[
            param("target", ParamType::Target),
            param("pattern", ParamType::Regex),
        ],
        implementation: Implementation::Map(editors::keep_matching_keys),
    },
    Function {
        name: "limit",
        params: &[
            param("target", ParamType::Target),
            param("limit", ParamType::IntLike),
            param("priority_keys", ParamType::StringLikeList),
        ],
        implementation: Implementation::Map(editors::limit),
    },
    Function {
        name: "merge_maps",
        params: &[
            param("target", ParamType::Target),
            param("source", ParamType::Any),
            param(
                "strategy",
                ParamType::Choice(&["insert", "update", "upsert"]),
            ),
        ],
        implementation: Implementation::Map(editors::merge_maps),
    },
    Function {
        name: "replace_all_patterns",
        params: &[
            param("target", ParamType::Target),
            param("mode", ParamType::Choice(&["key", "value"])),
            param("regex", ParamType::Regex),
            param("replacement", ParamType::StringLike),
            optional("function", ParamType::Function),
            optional("replacementFormat", ParamType::String),
        ],
        implementation: Implementation::Map(editors::replace_all_patterns),
    },
    Function {
        name: "replace_pattern",
        params: &[
            param("target", ParamType::Target),
            param("regex", ParamType::Regex),
            param("replacement", ParamType::StringLike),
            optional("function", ParamType::Function),
            optional("replacementFormat", ParamType::String),
        ],
        implementation: Implementation::Set {
            run: editors::replace_pattern,
            reads_target: true,
        },
    },
    Function {
        name: "set",
        params: &[
            param("target", ParamType::Target),
            param("value", ParamType::Any),
        ],
        implementation: Implementation::Set {
            run: editors::set,
            reads_target: false,
        },
    },
    Function {
        name: "truncate_all",
        params: &[
            param("target", ParamType::Target),
            param("limit", ParamType::IntLike),
            optional("utf8_safe", ParamType::Any),
            optional("truncation_marker", ParamType::String),
        ],
        implementation: Implementation::Map(editors::truncate_all),
    },
];

/// The function named `name`.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The names of every function of `kind`, comma-separated (for messages).
pub fn supported(kind: FunctionKind) -> String {
    FUNCTIONS
        .iter()
        .filter(|f| f.kind() == kind)
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Concat(vals, delimiter)`: the values as strings joined by the delimiter; a nil value
/// reads `<nil>`.
fn concat(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let delimiter = args.string(1)?;
    let list = match args.take(0) {
        Value::List(l) => l,
        v => {
            return Err(EvalError::new(format!(
                "Concat: vals must be a list, got {}",
                v.type_name()
            )))
        }
    };
    let mut out = String::new();
    for i in 0..list.len() {
        if i > 0 {
            out.push_str(&delimiter);
        }
        match list.get(i).unwrap_or(Value::Nil).to_string_like()? {
            Some(s) => out.push_str(&s),
            None => out.push_str("<nil>"),
        }
    }
    Ok(Value::Str(Cow::Owned(out)))
}

/// `Double(value)`: the value as a double, nil for nil.
fn double(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    Ok(args
        .take(0)
        .to_float_like()?
        .map_or(Value::Nil, Value::Float))
}

/// `Int(value)`: the value as an int (doubles truncated), nil for nil or a string that is
/// not an integer.
fn int(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    Ok(args.take(0).to_int_like()?.map_or(Value::Nil, Value::Int))
}

/// `IsMap(value)`: whether the value is a map.
fn is_map(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    Ok(Value::Bool(matches!(args.take(0), Value::Map(_))))
}

/// `IsMatch(target, pattern)`: whether the target, as a string, contains a match of the
/// pattern (unanchored, as Go's `regexp.MatchString`); false for nil.
fn is_match(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let pattern = args.regex(1)?;
    let target = args.take(0).to_string_like()?;
    Ok(Value::Bool(target.is_some_and(|t| pattern.is_match(&t))))
}

/// `IsString(value)`: whether the value is a string.
fn is_string(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    Ok(Value::Bool(matches!(args.take(0), Value::Str(_))))
}

/// `Len(target)`: the length of a string (in bytes, as Go counts), a list or a map.
fn len(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let n = match args.take(0) {
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        v => {
            return Err(EvalError::new(format!(
                "Len: the target must be a string, a list or a map, got {}",
                v.type_name()
            )))
        }
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// `String(value)`: the value as a string, nil for nil.
fn string(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    Ok(args
        .take(0)
        .to_string_like()?
        .map_or(Value::Nil, Value::Str))
}

/// `ConvertCase(target, toCase)`: `lower`, `upper`, `snake` (`myMetric` → `my_metric`) or
/// `camel` (`my_metric` → `MyMetric`); an error when the target is not a string.
fn convert_case(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let to = args.string(1)?;
    let target = match args.take(0) {
        Value::Str(s) => s,
        v => {
            return Err(EvalError::new(format!(
                "ConvertCase: expected a string but got {}",
                v.type_name()
            )))
        }
    };
    let out = match to.as_ref() {
        "lower" => target.to_lowercase(),
        "upper" => target.to_uppercase(),
        "snake" => snake_case(&target),
        "camel" => camel_case(&target),
        other => {
            return Err(EvalError::new(format!(
                "ConvertCase: invalid case {other:?}: expected lower, upper, snake or camel"
            )))
        }
    };
    Ok(Value::Str(Cow::Owned(out)))
}

fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut previous: Option<char> = None;
    for c in s.chars() {
        if c == '-' || c == ' ' || c == '.' || c == '_' {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        } else if c.is_uppercase() {
            if previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out.trim_end_matches('_').to_string()
}

fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper_next = true;
    for c in s.chars() {
        if c == '-' || c == ' ' || c == '.' || c == '_' {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `ExtractPatterns(target, pattern)`: a map of the pattern's named groups at its first
/// match (an empty map without a match); an error when the target is not a string.
fn extract_patterns(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let pattern = args.regex(1)?;
    let target = match args.take(0) {
        Value::Str(s) => s,
        v => {
            return Err(EvalError::new(format!(
                "ExtractPatterns: expected a string but got {}",
                v.type_name()
            )))
        }
    };
    let mut entries = Vec::new();
    if let Some(captures) = pattern.captures(&target) {
        for name in pattern.capture_names().flatten() {
            if let Some(m) = captures.name(name) {
                entries.push((
                    name.to_string(),
                    Value::Str(Cow::Owned(m.as_str().to_string())),
                ));
            }
        }
    }
    Ok(Value::Map(Map::Owned(entries)))
}

/// `ParseJSON(target)`: the target string parsed as JSON into a map or a list (numbers as
/// doubles, as the Collector does). Not a string, not JSON, or nested deeper than JSON
/// parsing allows (128 levels) is an error. The text is parsed straight into OTLP values
/// ([`super::json`]), which `set` moves into the record without copying.
fn parse_json(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let target = match args.take(0) {
        Value::Str(s) => s,
        Value::Bytes(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
        v => {
            return Err(EvalError::new(format!(
                "ParseJSON: expected a string but got {}",
                v.type_name()
            )))
        }
    };
    let parsed = super::json::parse(&target)
        .map_err(|e| EvalError::new(format!("ParseJSON: the target is not JSON: {e}")))?;
    match parsed.value {
        Some(any_value::Value::KvlistValue(kv)) => Ok(Value::Map(Map::OwnedAttributes(kv.values))),
        Some(any_value::Value::ArrayValue(a)) => Ok(Value::List(List::OwnedAny(a.values))),
        other => Err(EvalError::new(format!(
            "ParseJSON: expected a JSON object or array, got {}",
            match other {
                None => "null",
                Some(any_value::Value::BoolValue(_)) => "a boolean",
                Some(any_value::Value::DoubleValue(_)) => "a number",
                _ => "a string",
            }
        ))),
    }
}

/// The bytes a hash converter digests: a string's UTF-8 (the Collector takes strings only).
fn hash_input<'a>(args: &mut Args<'a>) -> Result<Cow<'a, str>, EvalError> {
    let function = args.function;
    match args.take(0) {
        Value::Str(s) => Ok(s),
        v => Err(EvalError::new(format!(
            "{function}: expected a string but got {}",
            v.type_name()
        ))),
    }
}

fn digest_hex<D: sha2::Digest>(input: &str) -> String {
    hex::encode(D::digest(input.as_bytes()))
}

/// `SHA256(value)`: the lowercase hex SHA-256 of a string.
fn sha256_hex(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let input = hash_input(&mut args)?;
    Ok(Value::Str(Cow::Owned(digest_hex::<sha2::Sha256>(&input))))
}

/// `SHA512(value)`.
fn sha512_hex(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let input = hash_input(&mut args)?;
    Ok(Value::Str(Cow::Owned(digest_hex::<sha2::Sha512>(&input))))
}

/// `SHA1(value)`.
fn sha1_hex(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let input = hash_input(&mut args)?;
    Ok(Value::Str(Cow::Owned(digest_hex::<sha1::Sha1>(&input))))
}

/// `MD5(value)`.
fn md5_hex(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let input = hash_input(&mut args)?;
    Ok(Value::Str(Cow::Owned(digest_hex::<md5::Md5>(&input))))
}

/// Hex digits as bytes, decoded into a vector of the final size (`hex::decode` grows its
/// vector digit pair by digit pair); `None` for an odd count or a character that is not a
/// hex digit.
pub(super) fn decode_hex(digits: &str) -> Option<Vec<u8>> {
    let mut bytes = vec![0; digits.len() / 2];
    hex::decode_to_slice(digits, &mut bytes).ok()?;
    Some(bytes)
}

/// An id from bytes of exactly `len` bytes, or a string of exactly `2 * len` hex digits.
fn id_value<'a>(function: &str, value: Value<'a>, len: usize) -> Result<Value<'a>, EvalError> {
    match value {
        Value::Bytes(b) if b.len() == len => Ok(Value::Bytes(b)),
        Value::Str(s) if s.len() == 2 * len => decode_hex(&s)
            .map(|b| Value::Bytes(Cow::Owned(b)))
            .ok_or_else(|| {
                EvalError::new(format!("{function}: {s:?} is not {} hex digits", 2 * len))
            }),
        Value::Bytes(b) => Err(EvalError::new(format!(
            "{function}: expected {len} bytes but got {}",
            b.len()
        ))),
        Value::Str(s) => Err(EvalError::new(format!(
            "{function}: expected {} hex digits but got {:?}",
            2 * len,
            s
        ))),
        v => Err(EvalError::new(format!(
            "{function}: expected bytes or a hex string but got {}",
            v.type_name()
        ))),
    }
}

/// `TraceID(bytes|string)`: a trace id from 16 bytes or 32 hex digits.
fn trace_id(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    id_value("TraceID", args.take(0), 16)
}

/// `SpanID(bytes|string)`: a span id from 8 bytes or 16 hex digits.
fn span_id(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    id_value("SpanID", args.take(0), 8)
}

/// `Time(target, format, location?, locale?)`: the target string read with the format's
/// ctime-like directives ([`super::time`]); `location` is `UTC` or a fixed offset (the
/// default is UTC); `locale` only `en` (month and day names are English).
fn time(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    let offset = if args.given(2) {
        let location = args.string(2)?;
        super::time::parse_location(&location).map_err(|e| EvalError::new(format!("Time: {e}")))?
    } else {
        0
    };
    if args.given(3) {
        let locale = args.string(3)?;
        if !locale.starts_with("en") {
            return Err(EvalError::new(format!(
                "Time: locale {locale:?} is not supported: month and day names are read in English"
            )));
        }
    }
    let format = args.string(1)?;
    let target = match args.take(0) {
        Value::Str(s) => s,
        v => {
            return Err(EvalError::new(format!(
                "Time: expected a string but got {}",
                v.type_name()
            )))
        }
    };
    super::time::parse(&target, &format, offset)
        .map(Value::Time)
        .map_err(|e| EvalError::new(format!("Time: {e}")))
}

/// `UnixMilli(time)`: milliseconds since the Unix epoch.
fn unix_milli(mut args: Args<'_>) -> Result<Value<'_>, EvalError> {
    match args.take(0) {
        Value::Time(nanos) => Ok(Value::Int(nanos.div_euclid(1_000_000))),
        v => Err(EvalError::new(format!(
            "UnixMilli: expected a time but got {}",
            v.type_name()
        ))),
    }
}
