//! JSON parsing that rejects duplicate object members at any depth.
//!
//! RFC 7515 section 5.2 lets a JWS parser either reject duplicate header
//! members or keep the last one. serde_json keeps the last one silently, so
//! `{"alg":"ES256","alg":"none"}` would mean one thing here and another in a
//! parser that keeps the first. This module rejects such input instead.
//! Member names are compared after JSON unescaping, so `"alg"` and
//! `"\u0061lg"` count as the same name.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The reason a JSON text was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonFault {
    /// Not UTF-8, not JSON, trailing data, or nested too deeply.
    Syntax,
    /// An object contains the same member name twice.
    DuplicateMember,
    /// The text is valid JSON but its top level is not an object.
    NotObject,
}

/// Parses `bytes` as one JSON object, rejecting duplicate members anywhere.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonFault> {
    let duplicate = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = StrictSeed {
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JsonFault::NotObject),
        // The flag distinguishes a duplicate from a syntax error without
        // parsing serde_json's message text.
        Err(_) if duplicate.get() => Err(JsonFault::DuplicateMember),
        Err(_) => Err(JsonFault::Syntax),
    }
}

/// Builds a [`Value`] and sets `duplicate` before failing on a repeated member.
#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    duplicate: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        // serde_json rejects numbers that overflow f64, so `value` is finite.
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                self.duplicate.set(true);
                return Err(de::Error::custom("duplicate object member"));
            }
            let value = map.next_value_seed(self)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::{JsonFault, parse_object};

    #[test]
    fn accepts_plain_object() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x",{"c":-2.5}]}"#);
        assert!(map.is_ok_and(|map| map.len() == 2));
    }

    #[test]
    fn rejects_top_level_duplicate() {
        assert_eq!(
            parse_object(br#"{"alg":"ES256","alg":"none"}"#),
            Err(JsonFault::DuplicateMember)
        );
    }

    #[test]
    fn rejects_escaped_duplicate() {
        assert_eq!(
            parse_object(br#"{"alg":"ES256","\u0061lg":"none"}"#),
            Err(JsonFault::DuplicateMember)
        );
    }

    #[test]
    fn rejects_nested_duplicate() {
        assert_eq!(
            parse_object(br#"{"a":[{"b":1,"b":2}]}"#),
            Err(JsonFault::DuplicateMember)
        );
    }

    #[test]
    fn rejects_non_object_and_trailing_data() {
        assert_eq!(parse_object(b"[1]"), Err(JsonFault::NotObject));
        assert_eq!(parse_object(br#"{"a":1} x"#), Err(JsonFault::Syntax));
        assert_eq!(parse_object(br#"{"a":1}{"#), Err(JsonFault::Syntax));
        assert_eq!(parse_object(b""), Err(JsonFault::Syntax));
        assert_eq!(parse_object(b"{\"a\":\"\xff\"}"), Err(JsonFault::Syntax));
    }

    #[test]
    fn rejects_excessive_nesting() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse_object(deep.as_bytes()), Err(JsonFault::Syntax));
    }
}
