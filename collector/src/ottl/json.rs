//! JSON text straight into OTLP values, as `ParseJSON` converts it: every number is a double,
//! `null` is the empty value, objects are key/value lists and arrays are array values.
//!
//! serde walks the text once and the visitor builds the `AnyValue` tree as it goes: each
//! key and string is allocated once, and `set(body, ParseJSON(body))` then moves the tree
//! into the record ([`super::Value::into_any`]). Going through `serde_json::Value` instead
//! cost a tree, a conversion and two more copies of every string.
//!
//! An object's keys come out sorted, and a key given twice keeps its last value: what
//! `serde_json::Map` (a `BTreeMap` in this build) did before, so statements and exported
//! documents see the same maps. Nesting is bounded by serde_json's recursion limit (128).

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use weft_proto::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};

/// Parses one JSON document (any JSON value; trailing text is an error).
pub fn parse(text: &str) -> Result<AnyValue, serde_json::Error> {
    // The entries of the objects being read wait on one stack, reused from document to
    // document on this thread: each object's list is then allocated once, at its size,
    // instead of growing 4, 8, 16… (serde_json does not know an object's length).
    let entries = RefCell::new(ENTRIES.take());
    let mut de = serde_json::Deserializer::from_str(text);
    let result = Any { entries: &entries }
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value));
    let mut entries = entries.into_inner();
    if entries.capacity() <= MAX_KEPT_ENTRIES {
        // A failed document leaves its open objects' entries behind.
        entries.clear();
        ENTRIES.set(entries);
    }
    result
}

thread_local! {
    static ENTRIES: Cell<Vec<KeyValue>> = const { Cell::new(Vec::new()) };
}

/// The largest entry stack kept for the next document: a hostile document's million keys
/// are not held after it.
const MAX_KEPT_ENTRIES: usize = 1024;

/// The seed and visitor building one `AnyValue`; `entries` holds the entries of the objects
/// open at this point of the document, innermost last.
#[derive(Clone, Copy)]
struct Any<'s> {
    entries: &'s RefCell<Vec<KeyValue>>,
}

impl<'de> DeserializeSeed<'de> for Any<'_> {
    type Value = AnyValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AnyValue, D::Error> {
        d.deserialize_any(self)
    }
}

fn any(value: any_value::Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

impl<'de> Visitor<'de> for Any<'_> {
    type Value = AnyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::BoolValue(v)))
    }

    // Every number is a double, as `serde_json::Number::as_f64` gives it.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::DoubleValue(v as f64)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::DoubleValue(v as f64)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::DoubleValue(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::StringValue(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::StringValue(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<AnyValue, E> {
        Ok(AnyValue::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyValue, A::Error> {
        // The hint is bounded: a hostile hint must not reserve memory the text does not hold.
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(self)? {
            values.push(v);
        }
        Ok(any(any_value::Value::ArrayValue(ArrayValue { values })))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
        // Objects nested in a value push and take their own entries above this one's.
        let start = self.entries.borrow().len();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            self.entries.borrow_mut().push(KeyValue {
                key,
                value: Some(value),
                ..Default::default()
            });
        }
        let mut values: Vec<KeyValue> = self.entries.borrow_mut().drain(start..).collect();
        sort_keys(&mut values);
        Ok(any(any_value::Value::KvlistValue(KeyValueList { values })))
    }
}

/// Sorts entries by key and keeps the last value of a repeated key, in O(n log n) (a
/// 10 MB object with a million keys stays linear-ish, not quadratic).
fn sort_keys(values: &mut Vec<KeyValue>) {
    if values.windows(2).all(|w| w[0].key < w[1].key) {
        return;
    }
    // Stable: among equal keys the document's order stays, so the last one is the latest.
    values.sort_by(|a, b| a.key.cmp(&b.key));
    // `dedup_by` keeps the first of a run and hands each later one as `later`: its value
    // moves into the kept entry, so the kept entry ends with the last value.
    values.dedup_by(|later, kept| {
        if later.key == kept.key {
            std::mem::swap(&mut later.value, &mut kept.value);
            true
        } else {
            false
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ottl::Value;

    /// What `ParseJSON` stored before: `serde_json::Value`, then the OTTL value, then OTLP.
    fn through_serde_json_value(text: &str) -> AnyValue {
        let json: serde_json::Value = serde_json::from_str(text).expect("json");
        Value::from_json(json).to_any().expect("any")
    }

    #[test]
    fn parsing_straight_into_otlp_gives_what_the_serde_json_tree_gave() {
        for text in [
            r#"{"level":"info","ts":1764757730.5,"n":3,"big":18446744073709551615,"neg":-7}"#,
            r#"{"b":1,"a":{"z":[true,null,1.5,"s",{"y":2,"x":1}],"c":{}},"e":[],"é":"ü\n\"q\""}"#,
            r#"{"k":1,"a":2,"k":3,"a":{"n":1},"m":0}"#,
            r#"[{"b":2,"a":1},[],null,"x",-0.0,1e300]"#,
            r#""just a string""#,
            "12",
            "null",
            "  {\"x\" : [ 1 , 2 ] }  ",
        ] {
            assert_eq!(
                parse(text).expect("parses"),
                through_serde_json_value(text),
                "{text}"
            );
        }
    }

    #[test]
    fn keys_are_sorted_and_a_repeated_key_keeps_its_last_value() {
        let parsed = parse(r#"{"k":1,"b":"x","k":3,"a":true}"#).expect("parses");
        let Some(any_value::Value::KvlistValue(kv)) = parsed.value else {
            panic!("{parsed:?}")
        };
        let keys: Vec<&str> = kv.values.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "k"]);
        assert_eq!(
            kv.values[2].value,
            Some(any(any_value::Value::DoubleValue(3.0)))
        );
    }

    #[test]
    fn a_document_after_a_huge_or_a_broken_one_parses_whole() {
        let huge = format!(
            "{{{}}}",
            (0..3000)
                .map(|i| format!("\"k{i}\":{{\"n\":{i}}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let Some(any_value::Value::KvlistValue(kv)) = parse(&huge).expect("parses").value else {
            panic!("not a map")
        };
        assert_eq!(kv.values.len(), 3000);
        assert!(parse(r#"{"a":{"b":1,"c":[{"d":2}]},"e":"#).is_err());
        let text = r#"{"z":{"y":{"x":1},"w":2},"v":[{"u":3,"t":4}],"s":5}"#;
        assert_eq!(parse(text).expect("parses"), through_serde_json_value(text));
    }

    #[test]
    fn bad_text_is_an_error_with_serde_json_s_message() {
        for bad in ["{\"a\":", "{} x", "[1,]", "nope", ""] {
            let ours = parse(bad).expect_err(bad).to_string();
            let theirs = serde_json::from_str::<serde_json::Value>(bad)
                .expect_err(bad)
                .to_string();
            assert_eq!(ours, theirs, "{bad}");
        }
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(parse(&deep)
            .expect_err("too deep")
            .to_string()
            .contains("recursion limit"));
    }
}
