//! Parsed OTTL → something a context can evaluate: every path resolved by the [`Context`],
//! every enum symbol replaced by its value, every function call checked against the
//! registry ([`super::functions`]). What remains to evaluation are the errors only data can
//! cause (a value of the wrong type, an index out of range, a division by zero).

use std::borrow::Cow;
use std::fmt;

use regex::Regex;

use super::ast::{self, CompareOp, MathOp};
use super::functions::{self, Args, Function, FunctionKind, Implementation, ParamType};
use super::value::{arithmetic, compare, List, Map, Value};
use super::write::{map_at, set_at, Place};
use super::{Context, EvalError, ParseError, Writable};

/// A condition compiled for context `C`.
pub struct Condition<C: Context> {
    expr: Bool<C>,
}

impl<C: Context> fmt::Debug for Condition<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("context", &C::NAME)
            .finish_non_exhaustive()
    }
}

impl<C: Context> Condition<C> {
    pub(super) fn compile(expr: &ast::BoolExpr) -> Result<Self, ParseError> {
        Ok(Self {
            expr: compile_bool(expr)?,
        })
    }

    /// Evaluates the condition on `data`. An `Err` is a runtime error (see the module
    /// documentation); the caller decides what it means ([`super::ErrorMode`]).
    pub fn eval<'a>(&'a self, data: &C::Data<'a>) -> Result<bool, EvalError> {
        self.expr.eval(data)
    }

    /// As [`Condition::eval`], for data of any lifetime (a closure's argument).
    pub fn matches(&self, data: &C::Data<'_>) -> Result<bool, EvalError> {
        let short = C::reborrow(data);
        self.eval(&short)
    }

    /// Every path the condition reads, in the order written.
    pub fn paths(&self) -> Vec<&C::Path> {
        let mut out = Vec::new();
        self.expr.paths(&mut out);
        out
    }
}

enum Bool<C: Context> {
    Or(Vec<Bool<C>>),
    And(Vec<Bool<C>>),
    Not(Box<Bool<C>>),
    Compare(Expr<C>, CompareOp, Expr<C>),
    Literal(bool),
    Converter(Box<Call<C>>),
}

enum Expr<C: Context> {
    Literal(Value<'static>),
    Path { path: C::Path, keys: Vec<Key<C>> },
    Call(Box<Call<C>>),
    List(Vec<Expr<C>>),
    Map(Vec<(String, Expr<C>)>),
    Math(Box<Expr<C>>, MathOp, Box<Expr<C>>),
    Negate(Box<Expr<C>>),
}

enum Key<C: Context> {
    Literal(Value<'static>),
    Expr(Expr<C>),
}

struct Call<C: Context> {
    function: &'static Function,
    args: Vec<Bound<C>>,
    keys: Vec<Key<C>>,
}

enum Bound<C: Context> {
    Expr(Expr<C>),
    Regex(Regex),
    Function(&'static Function),
    Absent,
}

fn compile_bool<C: Context>(expr: &ast::BoolExpr) -> Result<Bool<C>, ParseError> {
    Ok(match expr {
        ast::BoolExpr::Or(items) => {
            Bool::Or(items.iter().map(compile_bool).collect::<Result<_, _>>()?)
        }
        ast::BoolExpr::And(items) => {
            Bool::And(items.iter().map(compile_bool).collect::<Result<_, _>>()?)
        }
        ast::BoolExpr::Not(inner) => Bool::Not(Box::new(compile_bool(inner)?)),
        ast::BoolExpr::Compare { left, op, right } => {
            Bool::Compare(compile_value(left)?, *op, compile_value(right)?)
        }
        ast::BoolExpr::Literal(b) => Bool::Literal(*b),
        ast::BoolExpr::Converter(call) => {
            Bool::Converter(Box::new(compile_call(call, FunctionKind::Converter)?))
        }
    })
}

fn compile_value<C: Context>(value: &ast::Value) -> Result<Expr<C>, ParseError> {
    Ok(match value {
        ast::Value::Nil => Expr::Literal(Value::Nil),
        ast::Value::Bool(b) => Expr::Literal(Value::Bool(*b)),
        ast::Value::Int(i) => Expr::Literal(Value::Int(*i)),
        ast::Value::Float(f) => Expr::Literal(Value::Float(*f)),
        ast::Value::String(s) => Expr::Literal(Value::Str(Cow::Owned(s.clone()))),
        ast::Value::Bytes(b) => Expr::Literal(Value::Bytes(Cow::Owned(b.clone()))),
        ast::Value::Enum { name, pos } => match C::ENUMS.iter().find(|(n, _)| n == name) {
            Some((_, v)) => Expr::Literal(Value::Int(*v)),
            None => {
                let known: Vec<&str> = C::ENUMS.iter().map(|(n, _)| *n).collect();
                return Err(ParseError::new(
                    *pos,
                    format!(
                        "unknown enum symbol {name} in the {} context (known: {})",
                        C::NAME,
                        known.join(", ")
                    ),
                ));
            }
        },
        ast::Value::Path(path) => compile_path::<C>(path)?,
        ast::Value::Converter(call) => {
            Expr::Call(Box::new(compile_call(call, FunctionKind::Converter)?))
        }
        ast::Value::List(items) => {
            Expr::List(items.iter().map(compile_value).collect::<Result<_, _>>()?)
        }
        ast::Value::Map(entries) => Expr::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), compile_value(v)?)))
                .collect::<Result<_, ParseError>>()?,
        ),
        ast::Value::Math {
            left, op, right, ..
        } => Expr::Math(
            Box::new(compile_value(left)?),
            *op,
            Box::new(compile_value(right)?),
        ),
        ast::Value::Negate { value, .. } => Expr::Negate(Box::new(compile_value(value)?)),
    })
}

fn compile_path<C: Context>(path: &ast::Path) -> Result<Expr<C>, ParseError> {
    let (resolved, consumed) = C::compile_path(path).map_err(|why| {
        ParseError::new(
            path.pos,
            format!(
                "unsupported path \"{}\" in the {} context: {why} (supported: {})",
                path.dotted(),
                C::NAME,
                C::PATHS
            ),
        )
    })?;
    let last = path.segments.last().map_or(&[][..], |s| &s.keys[..]);
    let keys = last
        .iter()
        .skip(consumed)
        .map(compile_key)
        .collect::<Result<_, _>>()?;
    Ok(Expr::Path {
        path: resolved,
        keys,
    })
}

fn compile_key<C: Context>(key: &ast::Key) -> Result<Key<C>, ParseError> {
    Ok(match key {
        ast::Key::String(s) => Key::Literal(Value::Str(Cow::Owned(s.clone()))),
        ast::Key::Int(i) => Key::Literal(Value::Int(*i)),
        ast::Key::Expr(value) => Key::Expr(compile_value(value)?),
    })
}

fn compile_call<C: Context>(call: &ast::Call, kind: FunctionKind) -> Result<Call<C>, ParseError> {
    let function = functions::lookup(&call.name)
        .filter(|f| f.kind() == kind)
        .ok_or_else(|| {
            let what = match kind {
                FunctionKind::Converter => "function",
                FunctionKind::Editor => "editor",
            };
            ParseError::new(
                call.pos,
                format!(
                    "unsupported OTTL {what} \"{}\" (supported: {})",
                    call.name,
                    functions::supported(kind)
                ),
            )
        })?;
    let mut bound: Vec<Option<&ast::Arg>> = vec![None; function.params.len()];
    let mut seen_named = false;
    for (index, arg) in call.args.iter().enumerate() {
        let slot = match &arg.name {
            None if seen_named => {
                return Err(ParseError::new(
                    arg.pos,
                    format!(
                        "{}: positional arguments must come before named ones",
                        function.name
                    ),
                ))
            }
            None => index,
            Some(name) => {
                seen_named = true;
                function
                    .params
                    .iter()
                    .position(|p| p.name == name)
                    .ok_or_else(|| {
                        ParseError::new(
                            arg.pos,
                            format!(
                                "{} has no parameter \"{name}\": it is {}",
                                function.name,
                                function.signature()
                            ),
                        )
                    })?
            }
        };
        match bound.get_mut(slot) {
            None => {
                return Err(ParseError::new(
                    arg.pos,
                    format!(
                        "{} takes {} argument(s), got {}: it is {}",
                        function.name,
                        function.params.len(),
                        call.args.len(),
                        function.signature()
                    ),
                ))
            }
            Some(Some(_)) => {
                return Err(ParseError::new(
                    arg.pos,
                    format!(
                        "{}: argument \"{}\" is given twice",
                        function.name, function.params[slot].name
                    ),
                ))
            }
            Some(empty) => *empty = Some(arg),
        }
    }
    let mut args = Vec::with_capacity(function.params.len());
    for (param, arg) in function.params.iter().zip(&bound) {
        let Some(arg) = arg else {
            if param.optional {
                args.push(Bound::Absent);
                continue;
            }
            return Err(ParseError::new(
                call.pos,
                format!(
                    "{}: missing argument \"{}\": it is {}",
                    function.name,
                    param.name,
                    function.signature()
                ),
            ));
        };
        let wrong = |what: &str| {
            ParseError::new(
                arg.pos,
                format!(
                    "{}: argument \"{}\" must be {what}",
                    function.name, param.name
                ),
            )
        };
        if param.ty == ParamType::Function {
            let name = match &arg.value {
                ast::ArgValue::FunctionName(name) => name,
                ast::ArgValue::Value(ast::Value::Enum { name, .. }) => name,
                _ => return Err(wrong("the name of a converter, such as SHA256")),
            };
            let converter = functions::lookup(name)
                .filter(|f| f.kind() == FunctionKind::Converter && f.params.len() == 1)
                .ok_or_else(|| {
                    wrong(&format!(
                        "the name of a converter taking one string, such as SHA256, not {name}"
                    ))
                })?;
            args.push(Bound::Function(converter));
            continue;
        }
        let value = match &arg.value {
            ast::ArgValue::Value(v) => v,
            ast::ArgValue::FunctionName(name) => {
                return Err(wrong(&format!("a value, not the function name {name}")))
            }
        };
        let literal_type = match value {
            ast::Value::Nil => Some("nil"),
            ast::Value::Bool(_) => Some("a bool"),
            ast::Value::Int(_) => Some("an int"),
            ast::Value::Float(_) => Some("a double"),
            ast::Value::String(_) => Some("a string"),
            ast::Value::Bytes(_) => Some("bytes"),
            ast::Value::Enum { .. } => Some("an enum"),
            ast::Value::List(_) => Some("a list"),
            ast::Value::Map(_) => Some("a map"),
            _ => None,
        };
        let compiled = match param.ty {
            ParamType::Regex | ParamType::NamedRegex => {
                let ast::Value::String(pattern) = value else {
                    return Err(wrong("a string literal (a regular expression)"));
                };
                let regex = Regex::new(pattern).map_err(|e| {
                    // The regex crate's message spans lines; a diagnostic is one line.
                    let why = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    wrong(&format!(
                        "a valid regular expression: {pattern:?} is not ({why})"
                    ))
                })?;
                if param.ty == ParamType::NamedRegex && regex.capture_names().flatten().count() == 0
                {
                    return Err(wrong(&format!(
                        "a regular expression with at least one named group such as (?P<name>\\w+): {pattern:?} has none"
                    )));
                }
                Bound::Regex(regex)
            }
            ParamType::Choice(words) => match value {
                ast::Value::String(w) if words.contains(&w.as_str()) => {
                    Bound::Expr(compile_value(value)?)
                }
                _ => return Err(wrong(&format!("one of {}", words.join(", ")))),
            },
            ParamType::TimeFormat => match value {
                ast::Value::String(f) => {
                    super::time::check_format(f)
                        .map_err(|e| wrong(&format!("a time format: {e}")))?;
                    Bound::Expr(compile_value(value)?)
                }
                _ => match literal_type {
                    None => Bound::Expr(compile_value(value)?),
                    Some(other) => return Err(wrong(&format!("a string, not {other}"))),
                },
            },
            ParamType::Function => unreachable!("handled above"),
            ParamType::String => match literal_type {
                Some("a string") | None => Bound::Expr(compile_value(value)?),
                Some(other) => return Err(wrong(&format!("a string, not {other}"))),
            },
            ParamType::StringLikeList => match literal_type {
                Some("a list") | None => Bound::Expr(compile_value(value)?),
                Some(other) => return Err(wrong(&format!("a list, not {other}"))),
            },
            ParamType::Target => match value {
                ast::Value::Path(_) => Bound::Expr(compile_value(value)?),
                _ => return Err(wrong("a path")),
            },
            ParamType::Any | ParamType::StringLike | ParamType::IntLike | ParamType::FloatLike => {
                Bound::Expr(compile_value(value)?)
            }
        };
        args.push(compiled);
    }
    let keys = call
        .keys
        .iter()
        .map(compile_key)
        .collect::<Result<_, _>>()?;
    Ok(Call {
        function,
        args,
        keys,
    })
}

impl<C: Context> Bool<C> {
    fn eval<'a>(&'a self, data: &C::Data<'a>) -> Result<bool, EvalError> {
        Ok(match self {
            Bool::Or(items) => {
                for item in items {
                    if item.eval(data)? {
                        return Ok(true);
                    }
                }
                false
            }
            Bool::And(items) => {
                for item in items {
                    if !item.eval(data)? {
                        return Ok(false);
                    }
                }
                true
            }
            Bool::Not(inner) => !inner.eval(data)?,
            Bool::Compare(left, op, right) => compare(&left.eval(data)?, &right.eval(data)?, *op),
            Bool::Literal(b) => *b,
            Bool::Converter(call) => match call.eval(data)? {
                Value::Bool(b) => b,
                other => {
                    return Err(EvalError::new(format!(
                        "a condition needs a bool, but {} returned {}",
                        call.function.name,
                        other.type_name()
                    )))
                }
            },
        })
    }

    fn paths<'s>(&'s self, out: &mut Vec<&'s C::Path>) {
        match self {
            Bool::Or(items) | Bool::And(items) => items.iter().for_each(|i| i.paths(out)),
            Bool::Not(inner) => inner.paths(out),
            Bool::Compare(left, _, right) => {
                left.paths(out);
                right.paths(out);
            }
            Bool::Literal(_) => {}
            Bool::Converter(call) => call.paths(out),
        }
    }
}

impl<C: Context> Expr<C> {
    fn eval<'a>(&'a self, data: &C::Data<'a>) -> Result<Value<'a>, EvalError> {
        match self {
            Expr::Literal(v) => Ok(v.reborrow()),
            Expr::Path { path, keys } => apply_keys(C::get(data, path)?, keys, data),
            Expr::Call(call) => call.eval(data),
            Expr::List(items) => Ok(Value::List(List::Owned(
                items
                    .iter()
                    .map(|i| i.eval(data))
                    .collect::<Result<_, _>>()?,
            ))),
            Expr::Map(entries) => Ok(Value::Map(Map::Owned(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.eval(data)?)))
                    .collect::<Result<_, EvalError>>()?,
            ))),
            Expr::Math(left, op, right) => arithmetic(left.eval(data)?, *op, right.eval(data)?),
            Expr::Negate(inner) => match inner.eval(data)? {
                Value::Int(i) => Ok(Value::Int(i.wrapping_neg())),
                Value::Float(f) => Ok(Value::Float(-f)),
                other => Err(EvalError::new(format!(
                    "cannot negate a {} value",
                    other.type_name()
                ))),
            },
        }
    }

    fn paths<'s>(&'s self, out: &mut Vec<&'s C::Path>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Path { path, keys } => {
                out.push(path);
                keys.iter().for_each(|k| k.paths(out));
            }
            Expr::Call(call) => call.paths(out),
            Expr::List(items) => items.iter().for_each(|i| i.paths(out)),
            Expr::Map(entries) => entries.iter().for_each(|(_, v)| v.paths(out)),
            Expr::Math(left, _, right) => {
                left.paths(out);
                right.paths(out);
            }
            Expr::Negate(inner) => inner.paths(out),
        }
    }
}

impl<C: Context> Key<C> {
    fn paths<'s>(&'s self, out: &mut Vec<&'s C::Path>) {
        if let Key::Expr(e) = self {
            e.paths(out);
        }
    }
}

fn apply_keys<'a, C: Context>(
    mut value: Value<'a>,
    keys: &'a [Key<C>],
    data: &C::Data<'a>,
) -> Result<Value<'a>, EvalError> {
    for key in keys {
        // A missing map entry ends the lookup: `attributes["absent"]["x"]` is nil.
        if matches!(value, Value::Nil) {
            return Ok(Value::Nil);
        }
        value = match key {
            Key::Literal(k) => value.index(k)?,
            Key::Expr(e) => {
                let k = e.eval(data)?;
                if !matches!(k, Value::Str(_) | Value::Int(_)) {
                    return Err(EvalError::new(format!(
                        "a key must be a string or an int, got {}",
                        k.type_name()
                    )));
                }
                value.index(&k)?
            }
        };
    }
    Ok(value)
}

impl<C: Context> Call<C> {
    fn eval<'a>(&'a self, data: &C::Data<'a>) -> Result<Value<'a>, EvalError> {
        let Implementation::Converter(run) = self.function.implementation else {
            return Err(EvalError::new(format!(
                "{} is an editor: it cannot be evaluated as a value",
                self.function.name
            )));
        };
        let mut values = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            values.push(match arg {
                Bound::Expr(e) => functions::Arg::Value(e.eval(data)?),
                Bound::Regex(r) => functions::Arg::Regex(r),
                Bound::Function(f) => functions::Arg::Function(f),
                Bound::Absent => functions::Arg::Absent,
            });
        }
        let result = run(Args::new(self.function.name, values))?;
        apply_keys(result, &self.keys, data)
    }

    fn paths<'s>(&'s self, out: &mut Vec<&'s C::Path>) {
        for arg in &self.args {
            if let Bound::Expr(e) = arg {
                e.paths(out);
            }
        }
        self.keys.iter().for_each(|k| k.paths(out));
    }
}

/// A statement compiled for context `C`: its editor's arguments and its condition checked,
/// and its target a path the context can write.
pub struct Statement<C: Context> {
    editor: Call<C>,
    condition: Option<Bool<C>>,
}

impl<C: Context> fmt::Debug for Statement<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statement")
            .field("editor", &self.editor.function.name)
            .field("context", &C::NAME)
            .field("has_condition", &self.condition.is_some())
            .finish()
    }
}

impl<C: Writable> Statement<C> {
    pub(super) fn compile(statement: &ast::Statement) -> Result<Self, ParseError> {
        let editor = compile_call(&statement.editor, FunctionKind::Editor)?;
        if let (Some(Bound::Expr(Expr::Path { path, .. })), Some(arg)) =
            (editor.args.first(), statement.editor.args.first())
        {
            C::check_writable(path).map_err(|why| {
                ParseError::new(
                    arg.pos,
                    format!(
                        "{}: the target cannot be written: {why}",
                        editor.function.name
                    ),
                )
            })?;
        }
        Ok(Self {
            editor,
            condition: statement.condition.as_ref().map(compile_bool).transpose()?,
        })
    }
}

impl<C: Context> Statement<C> {
    /// The editor's name.
    pub fn editor(&self) -> &'static str {
        self.editor.function.name
    }

    /// Whether the statement applies to `data`: its `where` condition (true without one).
    pub fn applies<'a>(&'a self, data: &C::Data<'a>) -> Result<bool, EvalError> {
        self.condition.as_ref().map_or(Ok(true), |c| c.eval(data))
    }

    /// Every path the statement reads or writes.
    pub fn paths(&self) -> Vec<&C::Path> {
        let mut out = Vec::new();
        self.editor.paths(&mut out);
        if let Some(c) = &self.condition {
            c.paths(&mut out);
        }
        out
    }
}

impl<C: Writable> Statement<C> {
    /// Runs the statement on one item: checks its condition, evaluates every argument (so
    /// the editor never reads what it changes), then lets the editor change `target`.
    /// `Ok(false)` when the condition did not hold. An `Err` leaves the item as it was
    /// before this statement, except what a map editor changed before failing (none of
    /// Weft's editors fails half-way).
    pub fn execute(&self, target: &mut C::Target<'_>) -> Result<bool, EvalError> {
        let Some(Bound::Expr(Expr::Path { path, keys })) = self.editor.args.first() else {
            return Err(EvalError::new(format!(
                "{}: the target is not a path",
                self.editor.function.name
            )));
        };
        let reads_target = matches!(
            self.editor.function.implementation,
            Implementation::Set {
                reads_target: true,
                ..
            }
        );
        let (args, keys) = {
            let data = C::view(target);
            if let Some(condition) = &self.condition {
                if !condition.eval(&data)? {
                    return Ok(false);
                }
            }
            let mut args = Vec::with_capacity(self.editor.args.len());
            for (index, bound) in self.editor.args.iter().enumerate() {
                args.push(match bound {
                    Bound::Expr(_) if index == 0 && !reads_target => functions::Arg::Absent,
                    Bound::Expr(e) => functions::Arg::Value(e.eval(&data)?.into_owned()),
                    Bound::Regex(r) => functions::Arg::Regex(r),
                    Bound::Function(f) => functions::Arg::Function(f),
                    Bound::Absent => functions::Arg::Absent,
                });
            }
            let mut evaluated = Vec::with_capacity(keys.len());
            for key in keys {
                evaluated.push(match key {
                    Key::Literal(v) => v.reborrow().into_owned(),
                    Key::Expr(e) => e.eval(&data)?.into_owned(),
                });
            }
            (args, evaluated)
        };
        let args = Args::new(self.editor.function.name, args);
        match self.editor.function.implementation {
            Implementation::Set { run, .. } => {
                let Some(value) = run(args)? else {
                    return Ok(true);
                };
                match C::place(target, path)? {
                    Place::Field => C::set_field(target, path, &value)?,
                    place => set_at(place, &keys, value)?,
                }
            }
            Implementation::Map(run) => {
                let place = C::place(target, path)?;
                run(map_at(place, &keys)?, args)?;
            }
            Implementation::Converter(_) => {
                return Err(EvalError::new(format!(
                    "{} is a converter, not an editor",
                    self.editor.function.name
                )))
            }
        }
        Ok(true)
    }
}
