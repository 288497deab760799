//! OTTL, the OpenTelemetry Transformation Language, as the Collector defines it
//! (`pkg/ottl`): the conditions of `tail_sampling`'s `ottl_condition` policy, of the `filter`
//! processor and the `routing` connector, and the statements of the `transform` processor.
//!
//! # Contract
//!
//! Text goes through three stages, and only the last one sees telemetry:
//!
//! 1. **Parse** ([`parse_condition`], [`parse_statement`]): the whole grammar — statements
//!    `editor(args) where condition`; conditions with `== != < <= > >=`, `and`, `or`, `not`
//!    and parentheses; `nil`, `true`/`false`, ints, floats, strings, bytes `0x…`, lists,
//!    maps; paths with keys (`attributes["k"]`, `resource.attributes["k"]`,
//!    `body["a"]["b"]`, keys that are paths or converters); enum symbols
//!    (`SPAN_KIND_SERVER`); converters nested in arguments, with named arguments; arithmetic
//!    `+ - * /` with unary minus. The result is an [`ast`], independent of any context.
//! 2. **Compile** ([`Condition::new`], [`Statement::new`], [`ConditionSequence::new`]): the
//!    tree is checked against a [`Context`] — which paths exist, which enum symbols — and
//!    the [`functions`] registry — which functions, how many arguments of which types. An
//!    unsupported function, path or symbol is an error here, e.g.
//!    `column 1: unsupported OTTL function "Foo" (supported: Concat, Double, …)`.
//! 3. **Evaluate** ([`Condition::eval`]) or **execute** ([`Statement::execute`]): never
//!    panics. What only data can get wrong (a value that does not convert, an index out of
//!    range, a division by zero, a body that is not JSON, a non-boolean converter used as a
//!    condition) is an [`EvalError`], which the caller treats per its [`ErrorMode`]
//!    (`propagate`, `ignore`, `silent`, as the Collector's `error_mode`).
//!
//! A statement runs in two steps: its condition and every argument are evaluated against a
//! read-only view of the item ([`Writable::view`]) and copied out, then the editor
//! ([`editors`]) writes through the path of its target ([`Writable::place`], [`write`]). So
//! an editor never reads what it is changing, and the borrow checker proves it.
//!
//! Every parse and compile error names the column (1-based, in characters) and says what
//! was expected. Nesting is bounded (64 levels), so hostile text cannot exhaust the stack.
//!
//! Values follow OTTL's rules ([`value`]): a missing attribute is `nil`; ints and doubles
//! compare as numbers; mismatched types are unequal and unordered; string-like conversions
//! render numbers, bytes (hex) and maps (JSON) as the Collector does.
//!
//! Times are values ([`Value::Time`]: the `time` paths, `Time()`, `UnixMilli()`); durations
//! and converters beyond [`functions::FUNCTIONS`] are not supported, each an error naming it.
//!
//! A context is a trait ([`Context`]; [`Writable`] for those statements change): the span,
//! span event, log, resource and scope contexts live in [`contexts`], and a new one slots in
//! without touching the compiler.

pub mod ast;
mod compile;
pub mod contexts;
mod editors;
pub mod functions;
pub mod items;
pub mod json;
mod lexer;
mod parser;
mod sequence;
pub mod time;
pub mod value;
pub mod write;

#[cfg(test)]
mod tests;

use std::fmt;

pub use compile::{Condition, Statement};
pub use sequence::{ConditionSequence, ErrorMode};
pub use value::Value;
pub use write::Place;

/// A telemetry context: the paths OTTL text may name, and how to read them.
pub trait Context: 'static {
    /// The context's name, as qualified paths (`span.name`) and messages use it.
    const NAME: &'static str;
    /// The paths it knows, listed in "unsupported path" messages.
    const PATHS: &'static str;
    /// The enum symbols it knows (`SPAN_KIND_SERVER`), with their values.
    const ENUMS: &'static [(&'static str, i64)];
    /// A path resolved once, when compiling: what [`Context::get`] reads.
    type Path: fmt::Debug + Send + Sync + 'static;
    /// The telemetry one evaluation looks at.
    type Data<'a>;

    /// Resolves a parsed path, with how many keys of its last segment the context consumed
    /// (the rest index the value it reads: `attributes["a"]["b"]`); `Err` says why the path
    /// is not one of this context's.
    fn compile_path(path: &ast::Path) -> Result<(Self::Path, usize), String>;

    /// Reads a resolved path.
    fn get<'a>(data: &Self::Data<'a>, path: &Self::Path) -> Result<Value<'a>, EvalError>
    where
        Self: 'a;

    /// `data` with a shorter lifetime (data is a struct of references, so this is a copy):
    /// lets a condition evaluate data handed to a closure for any lifetime
    /// ([`Condition::matches`]).
    fn reborrow<'s, 'l: 's>(data: &'s Self::Data<'l>) -> Self::Data<'s>;
}

/// A context whose items statements change (`transform`): what one statement runs on, how
/// it is read, and where its paths lead for writing.
pub trait Writable: Context {
    /// One item with what it may change: the item, its resource and scope, the cache.
    type Target<'a>;

    /// A read-only view of `target`, for conditions and arguments.
    fn view<'t>(target: &'t Self::Target<'_>) -> Self::Data<'t>;

    /// Where `path` leads for writing. [`Place::Field`] for the item's own fields, which
    /// [`Writable::set_field`] sets.
    fn place<'t>(
        target: &'t mut Self::Target<'_>,
        path: &Self::Path,
    ) -> Result<Place<'t>, EvalError>;

    /// Sets a field (`severity_number`, `trace_id.string`, `name`): an error when the value
    /// has the wrong type (the Collector ignores those silently; Weft says so, and the
    /// statement's `error_mode` decides).
    fn set_field(
        target: &mut Self::Target<'_>,
        path: &Self::Path,
        value: &Value<'_>,
    ) -> Result<(), EvalError>;

    /// Whether `path` can be written at all (checked when a statement is compiled): `Err`
    /// says why not (`event_index` is computed, `kind.string` is derived).
    fn check_writable(path: &Self::Path) -> Result<(), String>;
}

/// A parse or compile error: where in the text, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for Error {}

/// An error found while evaluating, caused by the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError(String);

impl EvalError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

/// An error at a byte offset, before it is turned into a column.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ParseError {
    pos: usize,
    message: String,
}

impl ParseError {
    fn new(pos: usize, message: impl Into<String>) -> Self {
        Self {
            pos,
            message: message.into(),
        }
    }

    fn locate(self, src: &str) -> Error {
        let pos = self.pos.min(src.len());
        // Offsets always fall on character boundaries (tokens start on one); be safe anyway.
        let column = src.char_indices().take_while(|(i, _)| *i < pos).count() + 1;
        Error {
            column,
            message: self.message,
        }
    }
}

/// Parses a condition (`attributes["k"] == "v" and not IsMatch(name, "^GET")`).
pub fn parse_condition(src: &str) -> Result<ast::BoolExpr, Error> {
    parser::parse_condition(src).map_err(|e| e.locate(src))
}

/// Parses a statement (`set(attributes["k"], "v") where name == "x"`).
pub fn parse_statement(src: &str) -> Result<ast::Statement, Error> {
    parser::parse_statement(src).map_err(|e| e.locate(src))
}

impl<C: Context> Condition<C> {
    /// Parses and compiles a condition for context `C`.
    pub fn new(src: &str) -> Result<Self, Error> {
        let parsed = parse_condition(src)?;
        Condition::compile(&parsed).map_err(|e| e.locate(src))
    }
}

impl<C: Context> Condition<C> {
    /// A routing statement, as the Collector's routing connector writes its `statement`
    /// key: `route() where <condition>`, read as its condition (`route()` alone always
    /// holds). Any other editor, or arguments to `route`, is an error at its column.
    pub fn from_route_statement(src: &str) -> Result<Self, Error> {
        let parsed = parse_statement(src)?;
        if parsed.editor.name != "route" {
            return Err(ParseError::new(
                parsed.editor.pos,
                format!(
                    "a routing statement is `route() where <condition>`, not {:?}",
                    parsed.editor.name
                ),
            )
            .locate(src));
        }
        if let Some(arg) = parsed.editor.args.first() {
            return Err(ParseError::new(arg.pos, "route() takes no arguments").locate(src));
        }
        let condition = parsed.condition.unwrap_or(ast::BoolExpr::Literal(true));
        Condition::compile(&condition).map_err(|e| e.locate(src))
    }
}

impl<C: Writable> Statement<C> {
    /// Parses and compiles a statement for context `C`.
    pub fn new(src: &str) -> Result<Self, Error> {
        let parsed = parse_statement(src)?;
        Statement::compile(&parsed).map_err(|e| e.locate(src))
    }
}

#[cfg(test)]
mod statement_tests;
