//! OTLP requests on the protobuf wire, without decoding them into message trees.
//!
//! Decoding an export request into prost structs costs one allocation per string, id,
//! attribute and value: most of a pass-through collector's CPU goes to `malloc` and `free`.
//! This module lets the data path keep requests as the bytes they arrived in:
//!
//! - [`scan_traces`] / [`scan_logs`] / [`scan_metrics`] check a request body the way decoding plus
//!   [`crate::validate`] would, and count its items, in one pass with no allocation;
//! - [`Fields`] walks the fields of an encoded message (for the tail sampler, which slices
//!   spans and logs out of a request);
//! - [`put_len_field`] and friends write envelopes around encoded messages.
//!
//! The scanners accept a *subset* of what the decode-and-validate path accepts: the shape
//! every SDK sends. Anything outside it — a group, an over-long varint, a singular field
//! repeated (protobuf merges those, which changes what validation sees), nesting near prost's
//! recursion limit, a limit exceeded, an invalid id — makes them answer `None`, and the
//! caller takes the slow path, which decides and words the error. So: `Some(n)` guarantees
//! that prost decodes the body and the validator accepts it with the same limits, and that
//! it holds `n` items. The fuzz target `otlp_protobuf` checks exactly that.

mod metrics;

pub use metrics::{count_metric_points, scan_metrics};

use crate::limits::Limits;

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// Messages nest at most this deep before the scanners give up: below prost's recursion
/// limit of 100, so whatever they accept prost can decode.
const MAX_NESTING: usize = 90;

/// One field's value as it sits on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    I64(u64),
    I32(u32),
    Len(&'a [u8]),
}

/// The fields of one encoded message, in wire order. Yields `Err(())` (once, then stops) for
/// anything the scanners do not accept: a group, wire types 6 and 7, field number 0, a
/// truncated field, a varint longer than 10 bytes.
pub struct Fields<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, failed: false }
    }

    /// Skips the length-delimited fields `number` that come next, in a row: for a reader
    /// that does not want a repeated field (a span's attributes), the rest of its run
    /// without a dispatch per field. A malformed one ends the skip; the iterator reports it.
    pub fn skip_run(&mut self, number: u32) {
        if let Some(key) = len_key(number) {
            while let Ok(Some(_)) = next_len(&mut self.buf, key) {}
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), ()>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let item = read_field(&mut self.buf);
        self.failed = item.is_err();
        Some(item)
    }
}

/// Walks the fields of a message for the scanners: like [`Fields`], without its state.
struct Walk<'a>(&'a [u8]);

impl<'a> Walk<'a> {
    #[inline(always)]
    fn next(&mut self) -> Scan<Option<(u32, Value<'a>)>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        read_field(&mut self.0).map(Some)
    }

    /// The next field when it is another length-delimited `number` (a one-byte key): the
    /// rest of a run of one repeated field without [`read_field`]'s dispatch.
    #[inline(always)]
    fn next_in_run(&mut self, number: u32) -> Scan<Option<&'a [u8]>> {
        match len_key(number) {
            Some(key) => next_len(&mut self.0, key),
            None => Ok(None),
        }
    }
}

/// The one-byte key of length-delimited field `number` (fields 1–15), `None` beyond.
#[inline(always)]
const fn len_key(number: u32) -> Option<u8> {
    if number >= 1 && number <= 15 {
        Some((number << 3) as u8 | LEN)
    } else {
        None
    }
}

/// One field: its number and value, `Err` for what the scanners do not accept.
#[inline(always)]
fn read_field<'a>(buf: &mut &'a [u8]) -> Result<(u32, Value<'a>), ()> {
    let key = varint(buf)?;
    if key > u64::from(u32::MAX) {
        return Err(());
    }
    let number = (key >> 3) as u32;
    if number == 0 {
        return Err(());
    }
    let value = match (key & 7) as u8 {
        VARINT => Value::Varint(varint(buf)?),
        I64 => {
            let (head, rest) = buf.split_first_chunk::<8>().ok_or(())?;
            *buf = rest;
            Value::I64(u64::from_le_bytes(*head))
        }
        I32 => {
            let (head, rest) = buf.split_first_chunk::<4>().ok_or(())?;
            *buf = rest;
            Value::I32(u32::from_le_bytes(*head))
        }
        LEN => {
            let len = usize::try_from(varint(buf)?).map_err(|_| ())?;
            if len > buf.len() {
                return Err(());
            }
            let (head, rest) = buf.split_at(len);
            *buf = rest;
            Value::Len(head)
        }
        _ => return Err(()),
    };
    Ok((number, value))
}

/// A protobuf varint: at most 10 bytes, the tenth at most 1 (prost's rule).
#[inline]
fn varint(buf: &mut &[u8]) -> Result<u64, ()> {
    // Keys and short lengths take one byte: the common case first.
    if let Some((&byte, rest)) = buf.split_first() {
        if byte < 0x80 {
            *buf = rest;
            return Ok(u64::from(byte));
        }
    }
    varint_slow(buf)
}

fn varint_slow(buf: &mut &[u8]) -> Result<u64, ()> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first().ok_or(())?;
        *buf = rest;
        if i == 9 && byte > 1 {
            return Err(());
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(())
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a length-delimited field: key, length, bytes.
pub fn put_len_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_len_header(out, number, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends the key and length of a length-delimited field whose `len` bytes follow.
pub fn put_len_header(out: &mut Vec<u8>, number: u32, len: usize) {
    put_varint(out, (u64::from(number) << 3) | u64::from(LEN));
    put_varint(out, len as u64);
}

/// Bytes a varint of `value` takes.
pub fn varint_len(value: u64) -> usize {
    prost::encoding::encoded_len_varint(value)
}

/// Bytes the key and length of a length-delimited field of `len` bytes take.
pub fn len_header_len(number: u32, len: usize) -> usize {
    varint_len(u64::from(number) << 3) + varint_len(len as u64)
}

// ---------------------------------------------------------------------------------------
// The scanners
// ---------------------------------------------------------------------------------------

/// Not in the fast subset: take the slow path.
type Scan<T = ()> = Result<T, ()>;

/// Counts the spans of an `ExportTraceServiceRequest` body if it decodes and passes
/// [`crate::validate::validate_traces_with`] under `limits`; `None` when the slow path must
/// decide (see the module documentation).
pub fn scan_traces(body: &[u8], limits: &Limits) -> Option<usize> {
    let s = Scanner { limits };
    let mut count = 0;
    for_each_len(body, 1, |rs| {
        envelope(&s, rs, 1, Scanner::resource, |ss| {
            envelope(&s, ss, 2, Scanner::scope, |span| {
                count += 1;
                s.span(span, 3)
            })
        })
    })
    .ok()?;
    Some(count)
}

/// Counts the log records of an `ExportLogsServiceRequest` body, as [`scan_traces`] does.
pub fn scan_logs(body: &[u8], limits: &Limits) -> Option<usize> {
    let s = Scanner { limits };
    let mut count = 0;
    for_each_len(body, 1, |rl| {
        envelope(&s, rl, 1, Scanner::resource, |sl| {
            envelope(&s, sl, 2, Scanner::scope, |record| {
                count += 1;
                s.log_record(record, 3)
            })
        })
    })
    .ok()?;
    Some(count)
}

/// Counts the items of a body already known to be valid (one the scanners or prost
/// produced): spans or log records sit at field 1 → 2 → 2 in both signals (metrics count
/// data points, one level further down: [`count_metric_points`]).
pub fn count_items(body: &[u8]) -> usize {
    let mut count = 0;
    let _ = for_each_len(body, 1, |r| {
        for_each_len(r, 2, |s| {
            for_each_len(s, 2, |_| {
                count += 1;
                Ok(())
            })
        })
    });
    count
}

/// Calls `f` with every length-delimited field `number` of `msg`; other fields are only
/// checked to be well formed, and `number` with another wire type fails.
fn for_each_len<'a>(msg: &'a [u8], number: u32, mut f: impl FnMut(&'a [u8]) -> Scan) -> Scan {
    let mut walk = Walk(msg);
    while let Some(field) = walk.next()? {
        match field {
            (n, Value::Len(bytes)) if n == number => f(bytes)?,
            (n, _) if n == number => return Err(()),
            _ => {}
        }
    }
    Ok(())
}

/// ResourceSpans / ResourceLogs (`head` = [`Scanner::resource`], contents: scopes) and
/// ScopeSpans / ScopeLogs (`head` = [`Scanner::scope`], contents: items): 1 a header message
/// (at most once), 2 the contents (each handed to `f`), 3 a schema URL.
fn envelope<'a, 'l>(
    s: &Scanner<'l>,
    msg: &'a [u8],
    depth: usize,
    head: fn(&Scanner<'l>, &[u8], usize) -> Scan,
    mut f: impl FnMut(&'a [u8]) -> Scan,
) -> Scan {
    let mut seen = false;
    let mut walk = Walk(msg);
    while let Some(field) = walk.next()? {
        match field {
            (1, Value::Len(b)) => {
                once(&mut seen)?;
                head(s, b, depth + 1)?;
            }
            (2, Value::Len(b)) => f(b)?,
            (3, Value::Len(b)) => utf8(b)?,
            (1..=3, _) => return Err(()),
            _ => {}
        }
    }
    Ok(())
}

fn once(seen: &mut bool) -> Scan {
    if std::mem::replace(seen, true) {
        Err(())
    } else {
        Ok(())
    }
}

/// The check prost makes on every string field. Keys and most values are short ASCII: a
/// word-at-a-time check first; SIMD validation for the rest.
#[inline]
fn utf8(bytes: &[u8]) -> Scan {
    if bytes.is_ascii() {
        return Ok(());
    }
    simdutf8::basic::from_utf8(bytes)
        .map(|_| ())
        .map_err(|_| ())
}

fn nest(depth: usize) -> Scan {
    if depth > MAX_NESTING {
        Err(())
    } else {
        Ok(())
    }
}

/// Checks that a field's wire type matches its declared type.
fn expect_varint(v: Value<'_>) -> Scan {
    matches!(v, Value::Varint(_)).then_some(()).ok_or(())
}

fn expect_i64(v: Value<'_>) -> Scan {
    matches!(v, Value::I64(_)).then_some(()).ok_or(())
}

fn expect_i32(v: Value<'_>) -> Scan {
    matches!(v, Value::I32(_)).then_some(()).ok_or(())
}

fn expect_len(v: Value<'_>) -> Scan<&[u8]> {
    match v {
        Value::Len(b) => Ok(b),
        _ => Err(()),
    }
}

/// An id field: at most one occurrence (a repeated singular field means "last wins", which
/// the slow path handles), its bytes returned.
fn id_field<'a>(slot: &mut Option<&'a [u8]>, v: Value<'a>) -> Scan {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(expect_len(v)?);
    Ok(())
}

fn required_id(id: Option<&[u8]>, len: usize) -> Scan {
    match id {
        Some(id) if id.len() == len && id.iter().any(|&b| b != 0) => Ok(()),
        _ => Err(()),
    }
}

fn optional_id(id: Option<&[u8]>, len: usize) -> Scan {
    match id {
        None => Ok(()),
        Some(id) if id.is_empty() || id.len() == len => Ok(()),
        _ => Err(()),
    }
}

fn exact_id(id: Option<&[u8]>, len: usize) -> Scan {
    match id {
        Some(id) if id.len() == len => Ok(()),
        _ => Err(()),
    }
}

struct Scanner<'l> {
    limits: &'l Limits,
}

impl Scanner<'_> {
    /// Counts one more attribute of a list, failing past the limit.
    fn attribute(&self, count: &mut usize, kv: &[u8], depth: usize) -> Scan {
        *count += 1;
        if *count > self.limits.max_attributes {
            return Err(());
        }
        self.key_value(kv, 0, true, depth)
    }

    /// A list's attribute `first`, field `number` of the message `walk` reads, then the
    /// rest of their run: attributes come in a row, taken without the general dispatch.
    fn attribute_run<'a>(
        &self,
        count: &mut usize,
        first: Value<'a>,
        walk: &mut Walk<'a>,
        number: u32,
        depth: usize,
    ) -> Scan {
        self.attribute(count, expect_len(first)?, depth)?;
        while let Some(kv) = walk.next_in_run(number)? {
            self.attribute(count, kv, depth)?;
        }
        Ok(())
    }

    /// Resource: 1 attributes, 2 dropped_attributes_count, 3 entity_refs.
    fn resource(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let mut attributes = 0;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (2, v) => expect_varint(v)?,
                (3, v) => entity_ref(expect_len(v)?, depth + 1)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// InstrumentationScope: 1 name, 2 version, 3 attributes, 4 dropped_attributes_count.
    fn scope(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let mut attributes = 0;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1 | 2, v) => utf8(expect_len(v)?)?,
                (3, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (4, v) => expect_varint(v)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Span (opentelemetry/proto/trace/v1/trace.proto).
    fn span(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let (mut trace_id, mut span_id, mut parent) = (None, None, None);
        let mut attributes = 0;
        let mut status = false;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1, v) => id_field(&mut trace_id, v)?,
                (2, v) => id_field(&mut span_id, v)?,
                (3 | 5, v) => utf8(expect_len(v)?)?,
                (4, v) => id_field(&mut parent, v)?,
                (6 | 10 | 12 | 14, v) => expect_varint(v)?,
                (7 | 8, v) => expect_i64(v)?,
                (9, v) => self.attribute_run(&mut attributes, v, &mut walk, 9, depth + 1)?,
                (11, v) => self.event(expect_len(v)?, depth + 1)?,
                (13, v) => self.link(expect_len(v)?, depth + 1)?,
                (15, v) => {
                    once(&mut status)?;
                    span_status(expect_len(v)?, depth + 1)?;
                }
                (16, v) => expect_i32(v)?,
                _ => {}
            }
        }
        required_id(trace_id, 16)?;
        required_id(span_id, 8)?;
        optional_id(parent, 8)
    }

    /// Span.Event: 1 time_unix_nano, 2 name, 3 attributes, 4 dropped_attributes_count.
    fn event(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let mut attributes = 0;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1, v) => expect_i64(v)?,
                (2, v) => utf8(expect_len(v)?)?,
                (3, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (4, v) => expect_varint(v)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Span.Link: 1 trace_id, 2 span_id, 3 trace_state, 4 attributes,
    /// 5 dropped_attributes_count, 6 flags.
    fn link(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let (mut trace_id, mut span_id) = (None, None);
        let mut attributes = 0;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1, v) => id_field(&mut trace_id, v)?,
                (2, v) => id_field(&mut span_id, v)?,
                (3, v) => utf8(expect_len(v)?)?,
                (4, v) => self.attribute(&mut attributes, expect_len(v)?, depth + 1)?,
                (5, v) => expect_varint(v)?,
                (6, v) => expect_i32(v)?,
                _ => {}
            }
        }
        exact_id(trace_id, 16)?;
        exact_id(span_id, 8)
    }

    /// LogRecord (opentelemetry/proto/logs/v1/logs.proto).
    fn log_record(&self, msg: &[u8], depth: usize) -> Scan {
        nest(depth)?;
        let (mut trace_id, mut span_id) = (None, None);
        let mut attributes = 0;
        let mut body = false;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1 | 11, v) => expect_i64(v)?,
                (2 | 7, v) => expect_varint(v)?,
                (3 | 12, v) => utf8(expect_len(v)?)?,
                (5, v) => {
                    once(&mut body)?;
                    self.any_value(expect_len(v)?, 0, false, depth + 1)?;
                }
                (6, v) => self.attribute_run(&mut attributes, v, &mut walk, 6, depth + 1)?,
                (8, v) => expect_i32(v)?,
                (9, v) => id_field(&mut trace_id, v)?,
                (10, v) => id_field(&mut span_id, v)?,
                _ => {}
            }
        }
        optional_id(trace_id, 16)?;
        optional_id(span_id, 8)
    }

    /// KeyValue: 1 key, 2 value, 3 key_strindex. `level` counts the array/kvlist levels
    /// around it; `lengths` whether key and value lengths are limited (attributes) or not
    /// (log bodies).
    #[inline]
    fn key_value(&self, msg: &[u8], level: usize, lengths: bool, depth: usize) -> Scan {
        if self.plain_key_value(msg, lengths, depth) {
            return Ok(());
        }
        self.any_key_value(msg, level, lengths, depth)
    }

    /// The shape nearly every attribute has on the wire — its key, then a string, int,
    /// double or bool value, each once — checked without the general field walk: `true`
    /// when `msg` is such a KeyValue and passes every check [`Scanner::any_key_value`]
    /// makes; `false` sends it to the general walk, which gives the answer (so this never
    /// decides a rejection, and accepts only what the walk accepts).
    #[inline(always)]
    fn plain_key_value(&self, msg: &[u8], lengths: bool, depth: usize) -> bool {
        const KEY: u8 = 1 << 3 | LEN;
        const VALUE: u8 = 2 << 3 | LEN;
        const STRING: u8 = 1 << 3 | LEN;
        const BOOL: u8 = 2 << 3 | VARINT;
        const INT: u8 = 3 << 3 | VARINT;
        const DOUBLE: u8 = 4 << 3 | I64;
        if depth + 1 > MAX_NESTING {
            return false;
        }
        let mut rest = msg;
        let (Some(key), Some(value)) = (take_len(&mut rest, KEY), take_len(&mut rest, VALUE))
        else {
            return false;
        };
        let max = self.limits.max_value_bytes;
        if !rest.is_empty() || (lengths && key.len() > max) || utf8(key).is_err() {
            return false;
        }
        match value {
            [] => true,
            [STRING, ..] => {
                let mut rest = value;
                take_len(&mut rest, STRING).is_some_and(|s| {
                    rest.is_empty() && !(lengths && s.len() > max) && utf8(s).is_ok()
                })
            }
            [BOOL | INT, number @ ..] => {
                let mut rest = number;
                varint(&mut rest).is_ok() && rest.is_empty()
            }
            [DOUBLE, number @ ..] => number.len() == 8,
            _ => false,
        }
    }

    /// Any KeyValue, field by field (see [`Scanner::key_value`]).
    fn any_key_value(&self, msg: &[u8], level: usize, lengths: bool, depth: usize) -> Scan {
        nest(depth)?;
        let mut value = false;
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            match field {
                (1, v) => {
                    let key = expect_len(v)?;
                    if lengths && key.len() > self.limits.max_value_bytes {
                        return Err(());
                    }
                    utf8(key)?;
                }
                (2, v) => {
                    once(&mut value)?;
                    self.any_value(expect_len(v)?, level, lengths, depth + 1)?;
                }
                (3, v) => expect_varint(v)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// AnyValue: a oneof of 1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist, 7 bytes,
    /// 8 string_value_strindex. More than one of them present (protobuf keeps the last)
    /// leaves the fast subset.
    fn any_value(&self, msg: &[u8], level: usize, lengths: bool, depth: usize) -> Scan {
        nest(depth)?;
        let mut set = false;
        let too_long = |len: usize| lengths && len > self.limits.max_value_bytes;
        let nested = || {
            if level + 1 > self.limits.effective_max_depth() {
                Err(())
            } else {
                Ok(())
            }
        };
        let mut walk = Walk(msg);
        while let Some(field) = walk.next()? {
            let (number, v) = field;
            if (1..=8).contains(&number) {
                once(&mut set)?;
            }
            match number {
                1 => {
                    let s = expect_len(v)?;
                    if too_long(s.len()) {
                        return Err(());
                    }
                    utf8(s)?;
                }
                2 | 3 | 8 => expect_varint(v)?,
                4 => expect_i64(v)?,
                5 => {
                    nested()?;
                    // ArrayValue: 1 values.
                    nest(depth + 1)?;
                    for_each_len(expect_len(v)?, 1, |item| {
                        self.any_value(item, level + 1, lengths, depth + 2)
                    })?;
                }
                6 => {
                    nested()?;
                    // KeyValueList: 1 values.
                    nest(depth + 1)?;
                    for_each_len(expect_len(v)?, 1, |kv| {
                        self.key_value(kv, level + 1, lengths, depth + 2)
                    })?;
                }
                7 if too_long(expect_len(v)?.len()) => return Err(()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// A length-delimited field whose key is the single byte `key`, at the front of `buf`: its
/// bytes, `buf` moved past them; `None`, `buf` as it was, for anything else.
#[inline(always)]
fn take_len<'a>(buf: &mut &'a [u8], key: u8) -> Option<&'a [u8]> {
    next_len(buf, key).ok().flatten()
}

/// Like [`take_len`], for a run of one repeated field: `Ok(None)` with `buf` untouched when
/// the next field is another, `Err` when it is this one and malformed (as [`read_field`]).
#[inline(always)]
fn next_len<'a>(buf: &mut &'a [u8], key: u8) -> Scan<Option<&'a [u8]>> {
    let Some((&first, mut rest)) = buf.split_first() else {
        return Ok(None);
    };
    if first != key {
        return Ok(None);
    }
    let len = usize::try_from(varint(&mut rest)?).map_err(|_| ())?;
    if len > rest.len() {
        return Err(());
    }
    let (head, tail) = rest.split_at(len);
    *buf = tail;
    Ok(Some(head))
}

/// Status: 2 message, 3 code.
fn span_status(msg: &[u8], depth: usize) -> Scan {
    nest(depth)?;
    let mut walk = Walk(msg);
    while let Some(field) = walk.next()? {
        match field {
            (2, v) => utf8(expect_len(v)?)?,
            (3, v) => expect_varint(v)?,
            _ => {}
        }
    }
    Ok(())
}

/// EntityRef: 1 schema_url, 2 type, 3 id_keys, 4 description_keys (all strings).
fn entity_ref(msg: &[u8], depth: usize) -> Scan {
    nest(depth)?;
    let mut walk = Walk(msg);
    while let Some(field) = walk.next()? {
        if let (1..=4, v) = field {
            utf8(expect_len(v)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
