//! The function registry: every OTTL function Weft knows, by name, with its parameters.
//!
//! Converters (upper-case names) compute a value and may appear anywhere a value may;
//! editors (lower-case names) change telemetry and are the head of a statement. Calls are
//! checked when a condition or statement is compiled: an unknown name, a wrong number of
//! arguments, an unknown argument name or a literal of the wrong type is a configuration
//! error naming the function, never a surprise on live data.
//!
//! Adding a converter: one entry in [`FUNCTIONS`] with its parameters and its
//! implementation (a function of the evaluated arguments). Editors are listed with their
//! parameters so statements are checked now; they run once a processor executes statements.

use std::borrow::Cow;

use regex::Regex;

use super::value::Value;
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
    /// A path the editor writes to.
    Target,
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

/// The evaluated arguments of one converter call, in parameter order.
pub struct Args<'a> {
    pub(super) function: &'static str,
    pub(super) values: Vec<Arg<'a>>,
}

pub(super) enum Arg<'a> {
    Value(Value<'a>),
    Regex(&'a Regex),
    /// An optional parameter left out.
    Absent,
}

impl<'a> Args<'a> {
    /// The value of parameter `i`, taken (nil when absent).
    fn take(&mut self, i: usize) -> Value<'a> {
        match self
            .values
            .get_mut(i)
            .map(|a| std::mem::replace(a, Arg::Absent))
        {
            Some(Arg::Value(v)) => v,
            _ => Value::Nil,
        }
    }

    fn regex(&self, i: usize) -> Result<&'a Regex, EvalError> {
        match self.values.get(i) {
            Some(Arg::Regex(r)) => Ok(r),
            _ => Err(EvalError::new(format!(
                "{}: argument {} is not a compiled pattern",
                self.function,
                i + 1
            ))),
        }
    }

    fn string(&mut self, i: usize) -> Result<Cow<'a, str>, EvalError> {
        match self.take(i) {
            Value::Str(s) => Ok(s),
            v => Err(EvalError::new(format!(
                "{}: expected a string but got {}",
                self.function,
                v.type_name()
            ))),
        }
    }
}

type ConverterFn = for<'a> fn(Args<'a>) -> Result<Value<'a>, EvalError>;

#[derive(Clone, Copy)]
pub enum Implementation {
    Converter(ConverterFn),
    /// Statements are checked; a processor executing them supplies the effect.
    Editor,
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
            Implementation::Editor => FunctionKind::Editor,
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
        name: "Double",
        params: &[param("value", ParamType::FloatLike)],
        implementation: Implementation::Converter(double),
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
        name: "String",
        params: &[param("value", ParamType::StringLike)],
        implementation: Implementation::Converter(string),
    },
    Function {
        name: "delete_key",
        params: &[
            param("target", ParamType::Target),
            param("key", ParamType::String),
        ],
        implementation: Implementation::Editor,
    },
    Function {
        name: "set",
        params: &[
            param("target", ParamType::Target),
            param("value", ParamType::Any),
        ],
        implementation: Implementation::Editor,
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
