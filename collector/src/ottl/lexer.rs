//! OTTL text → tokens, with the Collector's lexical rules (`pkg/ottl/grammar.go`):
//!
//! - bytes `0x` + hex digits (an even number of them);
//! - floats `[-+]?\d*\.\d+([eE][-+]?\d+)?` and ints `[-+]?\d+`: a sign directly before a
//!   digit belongs to the number, so `x -1` is a path and the number `-1` (a parse error,
//!   as in the Collector), while `x - 1` subtracts;
//! - strings in double quotes with Go's escapes (`\n`, `\"`, `\\`, `\x41`, `\u00e9`, …);
//! - words: `not`, `and`, `or`, `true`, `false`, `nil` and `where` are keywords; any other
//!   word starting with a lowercase letter is a path segment or an editor name, one starting
//!   with an uppercase letter a converter name, an enum symbol or a function name;
//! - operators `== != < <= > >=`, `+ - * /`, `=`, and `( ) [ ] { } : , .`.
//!
//! Every token keeps its byte offset, so errors can name the column.

use super::ast::{CompareOp, MathOp};
use super::ParseError;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// A word starting with a lowercase letter that is not a keyword.
    Lower(String),
    /// A word starting with an uppercase letter.
    Upper(String),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    True,
    False,
    Nil,
    Not,
    And,
    Or,
    Where,
    Compare(CompareOp),
    Math(MathOp),
    Equal,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Colon,
    Comma,
    Dot,
    /// The end of the text (always the last token).
    End,
}

impl Tok {
    /// How an error message names this token.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Lower(w) | Tok::Upper(w) => format!("\"{w}\""),
            Tok::Int(i) => format!("the number {i}"),
            Tok::Float(f) => format!("the number {f}"),
            Tok::Str(s) => format!("the string {s:?}"),
            Tok::Bytes(_) => "a bytes literal".to_string(),
            Tok::True => "\"true\"".to_string(),
            Tok::False => "\"false\"".to_string(),
            Tok::Nil => "\"nil\"".to_string(),
            Tok::Not => "\"not\"".to_string(),
            Tok::And => "\"and\"".to_string(),
            Tok::Or => "\"or\"".to_string(),
            Tok::Where => "\"where\"".to_string(),
            Tok::Compare(op) => format!("\"{}\"", op.as_str()),
            Tok::Math(op) => format!("\"{}\"", op.as_str()),
            Tok::Equal => "\"=\"".to_string(),
            Tok::LParen => "\"(\"".to_string(),
            Tok::RParen => "\")\"".to_string(),
            Tok::LBracket => "\"[\"".to_string(),
            Tok::RBracket => "\"]\"".to_string(),
            Tok::LBrace => "\"{\"".to_string(),
            Tok::RBrace => "\"}\"".to_string(),
            Tok::Colon => "\":\"".to_string(),
            Tok::Comma => "\",\"".to_string(),
            Tok::Dot => "\".\"".to_string(),
            Tok::End => "the end of the text".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Byte offset of the token's first character.
    pub(super) pos: usize,
}

/// Splits `src` into tokens; the last one is [`Tok::End`].
pub(super) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let next = bytes.get(i + 1).copied();
        let tok = match c {
            b'0' if matches!(next, Some(b'x'))
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                i += 2;
                let digits_start = i;
                while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                    i += 1;
                }
                Tok::Bytes(hex_bytes(&src[digits_start..i], start)?)
            }
            b'0'..=b'9' => number(src, &mut i)?,
            b'+' | b'-' if starts_number(bytes, i + 1) => number(src, &mut i)?,
            b'.' if next.is_some_and(|n| n.is_ascii_digit()) => number(src, &mut i)?,
            b'"' => Tok::Str(string(src, &mut i)?),
            b'a'..=b'z' | b'A'..=b'Z' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                word(&src[start..i])
            }
            _ => {
                let (tok, len) = match (c, next) {
                    (b'=', Some(b'=')) => (Tok::Compare(CompareOp::Eq), 2),
                    (b'!', Some(b'=')) => (Tok::Compare(CompareOp::Ne), 2),
                    (b'<', Some(b'=')) => (Tok::Compare(CompareOp::Le), 2),
                    (b'>', Some(b'=')) => (Tok::Compare(CompareOp::Ge), 2),
                    (b'<', _) => (Tok::Compare(CompareOp::Lt), 1),
                    (b'>', _) => (Tok::Compare(CompareOp::Gt), 1),
                    (b'=', _) => (Tok::Equal, 1),
                    (b'+', _) => (Tok::Math(MathOp::Add), 1),
                    (b'-', _) => (Tok::Math(MathOp::Sub), 1),
                    (b'*', _) => (Tok::Math(MathOp::Mul), 1),
                    (b'/', _) => (Tok::Math(MathOp::Div), 1),
                    (b'(', _) => (Tok::LParen, 1),
                    (b')', _) => (Tok::RParen, 1),
                    (b'[', _) => (Tok::LBracket, 1),
                    (b']', _) => (Tok::RBracket, 1),
                    (b'{', _) => (Tok::LBrace, 1),
                    (b'}', _) => (Tok::RBrace, 1),
                    (b':', _) => (Tok::Colon, 1),
                    (b',', _) => (Tok::Comma, 1),
                    (b'.', _) => (Tok::Dot, 1),
                    _ => {
                        let ch = src[start..].chars().next().unwrap_or('?');
                        return Err(ParseError::new(
                            start,
                            format!("unexpected character {ch:?}"),
                        ));
                    }
                };
                i += len;
                tok
            }
        };
        out.push(Token { tok, pos: start });
    }
    out.push(Token {
        tok: Tok::End,
        pos: src.len(),
    });
    Ok(out)
}

/// Whether a number starts at `i` (after a sign): a digit, or a dot and a digit.
fn starts_number(bytes: &[u8], i: usize) -> bool {
    match bytes.get(i) {
        Some(b) if b.is_ascii_digit() => true,
        Some(b'.') => bytes.get(i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

fn word(w: &str) -> Tok {
    match w {
        "true" => Tok::True,
        "false" => Tok::False,
        "nil" => Tok::Nil,
        "not" => Tok::Not,
        "and" => Tok::And,
        "or" => Tok::Or,
        "where" => Tok::Where,
        _ if w.as_bytes()[0].is_ascii_uppercase() => Tok::Upper(w.to_string()),
        _ => Tok::Lower(w.to_string()),
    }
}

/// An int or float starting at `*i` (optionally signed); advances `*i` past it.
fn number(src: &str, i: &mut usize) -> Result<Tok, ParseError> {
    let bytes = src.as_bytes();
    let start = *i;
    if matches!(bytes[*i], b'+' | b'-') {
        *i += 1;
    }
    let digits = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(i);
    let is_float =
        bytes.get(*i) == Some(&b'.') && bytes.get(*i + 1).is_some_and(u8::is_ascii_digit);
    if !is_float {
        let text = &src[start..*i];
        return text.parse::<i64>().map(Tok::Int).map_err(|_| {
            ParseError::new(start, format!("the integer {text} does not fit in 64 bits"))
        });
    }
    *i += 1;
    digits(i);
    // An exponent only counts when digits follow it (else `e` starts the next word).
    if matches!(bytes.get(*i), Some(b'e' | b'E')) {
        let mut j = *i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            *i = j;
            digits(i);
        }
    }
    let text = &src[start..*i];
    text.parse::<f64>()
        .map(Tok::Float)
        .map_err(|_| ParseError::new(start, format!("invalid number {text}")))
}

fn hex_bytes(digits: &str, pos: usize) -> Result<Vec<u8>, ParseError> {
    if !digits.len().is_multiple_of(2) {
        return Err(ParseError::new(
            pos,
            format!("bytes literal 0x{digits} has an odd number of hex digits"),
        ));
    }
    hex::decode(digits)
        .map_err(|e| ParseError::new(pos, format!("invalid bytes literal 0x{digits}: {e}")))
}

/// A double-quoted string starting at `*i`, unescaped as Go's `strconv.Unquote` does;
/// advances `*i` past the closing quote.
fn string(src: &str, i: &mut usize) -> Result<String, ParseError> {
    let start = *i;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        let at = start + 1 + offset;
        match c {
            '"' => {
                *i = at + 1;
                return Ok(out);
            }
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let simple = match e {
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\u{b}'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    continue;
                }
                let (len, radix) = match e {
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    '0'..='7' => (2, 8),
                    _ => {
                        return Err(ParseError::new(
                            at,
                            format!("invalid escape sequence \\{e} in string"),
                        ))
                    }
                };
                let mut digits = String::new();
                if radix == 8 {
                    digits.push(e);
                }
                for _ in 0..len {
                    match chars.next() {
                        Some((_, d)) if d.is_digit(radix) => digits.push(d),
                        _ => {
                            return Err(ParseError::new(
                                at,
                                format!("invalid escape sequence \\{e}{digits} in string"),
                            ))
                        }
                    }
                }
                let code = u32::from_str_radix(&digits, radix).unwrap_or(u32::MAX);
                match e {
                    // \x and octal escapes are bytes; Go keeps them raw, which only makes
                    // valid text below 0x80.
                    'x' | '0'..='7' if code < 0x80 => out.push(code as u8 as char),
                    'u' | 'U' => match char::from_u32(code) {
                        Some(ch) => out.push(ch),
                        None => {
                            return Err(ParseError::new(
                                at,
                                format!("invalid code point \\{e}{digits} in string"),
                            ))
                        }
                    },
                    _ => {
                        return Err(ParseError::new(
                            at,
                            format!("escape \\{e}{digits} is not valid UTF-8 text on its own"),
                        ))
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(ParseError::new(
        start,
        "unterminated string: expected a closing \"",
    ))
}
