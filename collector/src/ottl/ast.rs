//! The parsed form of OTTL text: what was written, before any context or function registry
//! has given it a meaning (see [`super::compile`]). Nodes that can be wrong for a context
//! (paths, function calls, enum symbols) keep the byte offset they started at.

/// `editor(arguments) [where condition]`: one statement of a `transform`-style processor.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub editor: Call,
    pub condition: Option<BoolExpr>,
}

/// A condition: comparisons and boolean values joined by `and`, `or`, `not` and parentheses.
/// `and` binds tighter than `or`; `not` applies to the boolean value right after it.
#[derive(Clone, Debug, PartialEq)]
pub enum BoolExpr {
    /// Two or more terms, any true.
    Or(Vec<BoolExpr>),
    /// Two or more values, all true.
    And(Vec<BoolExpr>),
    Not(Box<BoolExpr>),
    Compare {
        left: Value,
        op: CompareOp,
        right: Value,
    },
    /// `true` or `false` on its own.
    Literal(bool),
    /// A converter whose result is the boolean, e.g. `IsMatch(name, "^GET")`.
    Converter(Call),
}

/// Something that evaluates to a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
    /// An upper-case symbol such as `SPAN_KIND_SERVER`, resolved by the context.
    Enum {
        name: String,
        pos: usize,
    },
    Path(Path),
    Converter(Call),
    List(Vec<Value>),
    /// `{"key": value, ...}` in the order written.
    Map(Vec<(String, Value)>),
    Math {
        left: Box<Value>,
        op: MathOp,
        right: Box<Value>,
        pos: usize,
    },
    /// Unary minus on a path, converter or parenthesized expression (`-` before a number
    /// literal is part of the literal).
    Negate {
        value: Box<Value>,
        pos: usize,
    },
}

/// `context.field.field["key"][0]`: dot-separated lower-case segments, each with optional
/// keys. Whether the first segment names a context (`span.name`, `resource.attributes`) is
/// for the context to say.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub pos: usize,
    pub segments: Vec<Segment>,
}

impl Path {
    /// The segments joined by dots, without keys (for messages).
    pub fn dotted(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub name: String,
    pub keys: Vec<Key>,
}

/// An index into a map (`["name"]`) or a list (`[0]`), or an expression giving one.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    String(String),
    Int(i64),
    /// A path or converter whose value (a string or an int) is the key.
    Expr(Box<Value>),
}

/// A function call: an editor (lower-case name) or a converter (upper-case name), with
/// optional keys indexing a converter's result (`Split(x, ",")[0]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: String,
    pub pos: usize,
    pub args: Vec<Arg>,
    pub keys: Vec<Key>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `name = value` arguments.
    pub name: Option<String>,
    pub value: ArgValue,
    pub pos: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    Value(Value),
    /// A function passed by name (`SHA256`), for functions taking one.
    FunctionName(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl MathOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MathOp::Add => "+",
            MathOp::Sub => "-",
            MathOp::Mul => "*",
            MathOp::Div => "/",
        }
    }
}
