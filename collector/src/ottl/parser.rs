//! Tokens → [`ast`](super::ast), by recursive descent over the Collector's grammar
//! (`pkg/ottl/grammar.go`):
//!
//! ```text
//! statement    := editor ("where" condition)?
//! condition    := term ("or" term)*
//! term         := boolValue ("and" boolValue)*
//! boolValue    := "not"? (comparison | "true" | "false" | converter | "(" condition ")")
//! comparison   := value ("==" | "!=" | "<" | "<=" | ">" | ">=") value
//! value        := "nil" | string | bytes | "true" | "false" | ENUM | list | map | math
//! math         := product (("+" | "-") product)*
//! product      := factor (("*" | "/") factor)*
//! factor       := ("+" | "-")? (int | float | path | converter | "(" math ")")
//! path         := segment ("." segment)*          segment := lowercase key*
//! key          := "[" (string | int | path | converter) "]"
//! converter    := Uppercase "(" arguments? ")" key*
//! editor       := lowercase "(" arguments? ")"
//! argument     := (lowercase "=")? (value | FunctionName)
//! list         := "[" (value ("," value)*)? "]"
//! map          := "{" (string ":" value ","?)* "}"
//! ```
//!
//! Where the grammar has alternatives (a `boolValue` may be a comparison, a constant or a
//! parenthesized condition) each is tried and the error that got furthest is reported.
//! Nesting is bounded ([`MAX_DEPTH`]) so hostile text cannot exhaust the stack.

use super::ast::{Arg, ArgValue, BoolExpr, Call, Key, MathOp, Path, Segment, Statement, Value};
use super::lexer::{lex, Tok, Token};
use super::ParseError;

/// Parentheses, lists, maps, calls and `not`s nest at most this deep.
pub(super) const MAX_DEPTH: usize = 64;

pub(super) fn parse_condition(src: &str) -> Result<BoolExpr, ParseError> {
    let mut p = Parser::new(src)?;
    let expr = p.condition()?;
    p.expect_end("\"and\", \"or\" or the end of the condition")?;
    Ok(expr)
}

pub(super) fn parse_statement(src: &str) -> Result<Statement, ParseError> {
    let mut p = Parser::new(src)?;
    let editor = match (p.peek().clone(), p.peek_at(1)) {
        (Tok::Lower(_), Tok::LParen) => p.call()?,
        (Tok::Upper(name), Tok::LParen) => {
            return Err(ParseError::new(
                p.pos(),
                format!("editor names must start with a lowercase letter but got {name:?}"),
            ))
        }
        _ => return Err(p.expected("an editor call, such as set(attributes[\"k\"], \"v\")")),
    };
    if !editor.keys.is_empty() {
        return Err(ParseError::new(
            editor.pos,
            format!(
                "only paths and converters may be indexed, not editors, but got {}",
                editor.name
            ),
        ));
    }
    let condition = if p.eat(&Tok::Where) {
        Some(p.condition()?)
    } else {
        None
    };
    p.expect_end("\"where\" or the end of the statement")?;
    Ok(Statement { editor, condition })
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

fn is_enum_symbol(word: &str) -> bool {
    word.bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

impl Parser {
    fn new(src: &str) -> Result<Self, ParseError> {
        Ok(Self {
            toks: lex(src)?,
            i: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let last = self.toks.len() - 1;
        &self.toks[(self.i + n).min(last)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i].pos
    }

    fn bump(&mut self) -> Tok {
        let tok = self.toks[self.i].tok.clone();
        if tok != Tok::End {
            self.i += 1;
        }
        tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    /// "expected `what`, found …" at the current token.
    fn expected(&self, what: &str) -> ParseError {
        let found = self.peek();
        let hint = match found {
            Tok::Int(i) if *i < 0 => {
                " (a sign right before a digit belongs to the number: write \"- 1\" to subtract)"
            }
            Tok::Float(f) if *f < 0.0 => {
                " (a sign right before a digit belongs to the number: write \"- 1.5\" to subtract)"
            }
            _ => "",
        };
        ParseError::new(
            self.pos(),
            format!("expected {what}, found {}{hint}", found.describe()),
        )
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        if self.eat(&tok) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expect_end(&self, what: &str) -> Result<(), ParseError> {
        match self.peek() {
            Tok::End => Ok(()),
            _ => Err(self.expected(what)),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                self.pos(),
                format!("nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn condition(&mut self) -> Result<BoolExpr, ParseError> {
        let mut terms = vec![self.term()?];
        while self.eat(&Tok::Or) {
            terms.push(self.term()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            BoolExpr::Or(terms)
        })
    }

    fn term(&mut self) -> Result<BoolExpr, ParseError> {
        let mut values = vec![self.bool_value()?];
        while self.eat(&Tok::And) {
            values.push(self.bool_value()?);
        }
        Ok(if values.len() == 1 {
            values.remove(0)
        } else {
            BoolExpr::And(values)
        })
    }

    fn bool_value(&mut self) -> Result<BoolExpr, ParseError> {
        self.enter()?;
        let negated = self.eat(&Tok::Not);
        let result = self.bool_value_inner();
        self.leave();
        let value = result?;
        Ok(if negated {
            BoolExpr::Not(Box::new(value))
        } else {
            value
        })
    }

    fn bool_value_inner(&mut self) -> Result<BoolExpr, ParseError> {
        let start = self.i;
        let comparison_error = match self.comparison() {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        self.i = start;
        let alternative = match (self.peek().clone(), self.peek_at(1)) {
            (Tok::True, _) => {
                self.bump();
                Ok(BoolExpr::Literal(true))
            }
            (Tok::False, _) => {
                self.bump();
                Ok(BoolExpr::Literal(false))
            }
            (Tok::Upper(_), Tok::LParen) => self.call().map(BoolExpr::Converter),
            (Tok::LParen, _) => {
                self.bump();
                self.condition().and_then(|c| {
                    self.expect(Tok::RParen, "\")\"")?;
                    Ok(c)
                })
            }
            _ => return Err(comparison_error),
        };
        alternative.map_err(|e| {
            if e.pos >= comparison_error.pos {
                e
            } else {
                comparison_error
            }
        })
    }

    fn comparison(&mut self) -> Result<BoolExpr, ParseError> {
        let left = self.value()?;
        let Tok::Compare(op) = *self.peek() else {
            return Err(self.expected("a comparison operator (==, !=, <, <=, >, >=)"));
        };
        self.bump();
        let right = self.value()?;
        Ok(BoolExpr::Compare { left, op, right })
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        self.enter()?;
        let result = self.value_inner();
        self.leave();
        result
    }

    fn value_inner(&mut self) -> Result<Value, ParseError> {
        let pos = self.pos();
        match (self.peek().clone(), self.peek_at(1)) {
            (Tok::Nil, _) => {
                self.bump();
                Ok(Value::Nil)
            }
            (Tok::Str(s), _) => {
                self.bump();
                Ok(Value::String(s))
            }
            (Tok::Bytes(b), _) => {
                self.bump();
                Ok(Value::Bytes(b))
            }
            (Tok::True, _) => {
                self.bump();
                Ok(Value::Bool(true))
            }
            (Tok::False, _) => {
                self.bump();
                Ok(Value::Bool(false))
            }
            (Tok::LBracket, _) => self.list(),
            (Tok::LBrace, _) => self.map(),
            (Tok::Upper(name), next) if is_enum_symbol(&name) && *next != Tok::LParen => {
                self.bump();
                Ok(Value::Enum { name, pos })
            }
            _ => self.math(),
        }
    }

    /// A chain of operators builds a left-deep tree, one level per operator: each counts
    /// towards [`MAX_DEPTH`], so compiling and evaluating the tree stays within the stack.
    fn math(&mut self) -> Result<Value, ParseError> {
        let entered = self.depth;
        let result = self.math_chain();
        self.depth = entered;
        result
    }

    fn math_chain(&mut self) -> Result<Value, ParseError> {
        let mut left = self.product()?;
        while let Tok::Math(op @ (MathOp::Add | MathOp::Sub)) = *self.peek() {
            let pos = self.pos();
            self.bump();
            self.enter()?;
            let right = self.product()?;
            left = Value::Math {
                left: Box::new(left),
                op,
                right: Box::new(right),
                pos,
            };
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Value, ParseError> {
        let entered = self.depth;
        let result = self.product_chain();
        self.depth = entered;
        result
    }

    fn product_chain(&mut self) -> Result<Value, ParseError> {
        let mut left = self.factor()?;
        while let Tok::Math(op @ (MathOp::Mul | MathOp::Div)) = *self.peek() {
            let pos = self.pos();
            self.bump();
            self.enter()?;
            let right = self.factor()?;
            left = Value::Math {
                left: Box::new(left),
                op,
                right: Box::new(right),
                pos,
            };
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Value, ParseError> {
        let pos = self.pos();
        match (self.peek().clone(), self.peek_at(1)) {
            (Tok::Math(op @ (MathOp::Add | MathOp::Sub)), _) => {
                self.bump();
                self.enter()?;
                let value = self.factor();
                self.leave();
                let value = value?;
                Ok(match op {
                    MathOp::Sub => Value::Negate {
                        value: Box::new(value),
                        pos,
                    },
                    _ => value,
                })
            }
            (Tok::LParen, _) => {
                self.bump();
                self.enter()?;
                let inner = self.math();
                self.leave();
                let inner = inner?;
                self.expect(Tok::RParen, "\")\" or an arithmetic operator")?;
                Ok(inner)
            }
            (Tok::Int(i), _) => {
                self.bump();
                Ok(Value::Int(i))
            }
            (Tok::Float(f), _) => {
                self.bump();
                Ok(Value::Float(f))
            }
            (Tok::Lower(name), Tok::LParen) => Err(ParseError::new(
                pos,
                format!("converter names must start with an uppercase letter but got {name:?}"),
            )),
            (Tok::Lower(_), _) => self.path().map(Value::Path),
            (Tok::Upper(_), Tok::LParen) => self.call().map(Value::Converter),
            (Tok::Upper(name), _) => Err(ParseError::new(
                pos,
                format!("expected \"(\" after the converter name {name:?}, or an enum symbol in upper case"),
            )),
            _ => Err(self.expected(
                "a value (a path, a literal, a converter call, a list or a map)",
            )),
        }
    }

    fn path(&mut self) -> Result<Path, ParseError> {
        let pos = self.pos();
        let mut segments = Vec::new();
        loop {
            let seg_pos = self.pos();
            let Tok::Lower(name) = self.peek().clone() else {
                return Err(self.expected("a path segment (a lower-case name)"));
            };
            if !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(ParseError::new(
                    seg_pos,
                    format!("path segment {name:?} must be lower case (a-z, 0-9 and _)"),
                ));
            }
            self.bump();
            let keys = self.keys()?;
            segments.push(Segment { name, keys });
            if !self.eat(&Tok::Dot) {
                break;
            }
        }
        Ok(Path { pos, segments })
    }

    fn keys(&mut self) -> Result<Vec<Key>, ParseError> {
        let mut keys = Vec::new();
        while *self.peek() == Tok::LBracket {
            self.bump();
            self.enter()?;
            let key = match self.peek().clone() {
                Tok::Str(s) => {
                    self.bump();
                    Ok(Key::String(s))
                }
                Tok::Int(i) => {
                    self.bump();
                    Ok(Key::Int(i))
                }
                Tok::Lower(_) | Tok::Upper(_) => self.factor().map(|v| Key::Expr(Box::new(v))),
                _ => Err(self.expected("a key: a string, an integer, a path or a converter call")),
            };
            self.leave();
            keys.push(key?);
            self.expect(Tok::RBracket, "\"]\"")?;
        }
        Ok(keys)
    }

    fn call(&mut self) -> Result<Call, ParseError> {
        let pos = self.pos();
        let (Tok::Lower(name) | Tok::Upper(name)) = self.peek().clone() else {
            return Err(self.expected("a function name"));
        };
        self.bump();
        self.expect(Tok::LParen, "\"(\"")?;
        self.enter()?;
        let args = self.arguments(&name);
        self.leave();
        let args = args?;
        let keys = self.keys()?;
        Ok(Call {
            name,
            pos,
            args,
            keys,
        })
    }

    fn arguments(&mut self, function: &str) -> Result<Vec<Arg>, ParseError> {
        let mut args = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(args);
        }
        loop {
            args.push(self.argument()?);
            if self.eat(&Tok::Comma) {
                continue;
            }
            self.expect(
                Tok::RParen,
                &format!("\",\" or \")\" after an argument of {function}"),
            )?;
            return Ok(args);
        }
    }

    fn argument(&mut self) -> Result<Arg, ParseError> {
        let pos = self.pos();
        let name = match (self.peek().clone(), self.peek_at(1)) {
            (Tok::Lower(name), Tok::Equal) => {
                self.bump();
                self.bump();
                Some(name)
            }
            _ => None,
        };
        let value = match (self.peek().clone(), self.peek_at(1)) {
            (Tok::Upper(word), next) if !is_enum_symbol(&word) && *next != Tok::LParen => {
                self.bump();
                ArgValue::FunctionName(word)
            }
            _ => ArgValue::Value(self.value()?),
        };
        Ok(Arg { name, value, pos })
    }

    fn list(&mut self) -> Result<Value, ParseError> {
        self.bump();
        self.enter()?;
        let result = (|| {
            let mut values = Vec::new();
            if self.eat(&Tok::RBracket) {
                return Ok(values);
            }
            loop {
                values.push(self.value()?);
                if self.eat(&Tok::Comma) {
                    continue;
                }
                self.expect(Tok::RBracket, "\",\" or \"]\" in a list")?;
                return Ok(values);
            }
        })();
        self.leave();
        result.map(Value::List)
    }

    fn map(&mut self) -> Result<Value, ParseError> {
        self.bump();
        self.enter()?;
        let result = (|| {
            let mut entries = Vec::new();
            loop {
                match self.peek().clone() {
                    Tok::RBrace => {
                        self.bump();
                        return Ok(entries);
                    }
                    Tok::Str(key) => {
                        self.bump();
                        self.expect(Tok::Colon, "\":\" after a map key")?;
                        entries.push((key, self.value()?));
                        self.eat(&Tok::Comma);
                    }
                    _ => return Err(self.expected("a string key or \"}\" in a map")),
                }
            }
        })();
        self.leave();
        result.map(Value::Map)
    }
}
