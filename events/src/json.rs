//! Strict JSON: an object holds each key once, at every nesting level. serde_json keeps the
//! last of duplicate keys silently, so signed bytes with `"value":1,…,"value":2` would mean
//! one thing to the ledger and maybe another to a reader that keeps the first; the ledger
//! refuses them instead.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Checks that no object in `json` holds a key twice (keys compared after unescaping, so
/// `"a"` and `"\u0061"` are the same key). The error names the duplicate as a JSON pointer
/// (`/data/value`). `json` should already be known to parse; a syntax error is reported too.
pub fn check_unique_keys(json: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    Unique { path: "" }.deserialize(&mut de)?;
    de.end()
}

/// Walks one value; `path` is its JSON pointer.
struct Unique<'a> {
    path: &'a str,
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let path = format!("{}/{index}", self.path);
            if seq.next_element_seed(Unique { path: &path })?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            // JSON pointer escaping (RFC 6901): `~` as `~0`, `/` as `~1`.
            let path = format!("{}/{}", self.path, key.replace('~', "~0").replace('/', "~1"));
            if !seen.insert(key) {
                return Err(A::Error::custom(format!("duplicate key {path}")));
            }
            map.next_value_seed(Unique { path: &path })?;
        }
        Ok(())
    }
}

/// Parses one JSON value into the `serde_json::Value` that `Value`'s own parse makes of it,
/// and fails where an object holds a key twice (keys compared after unescaping), so the
/// value and the duplicate-key check come from one pass. The error is only a signal: it says
/// neither where nor what (the caller that needs a message asks [`check_unique_keys`]).
///
/// It also fails, so that the caller falls back to `Value`'s own parse, on an object with a
/// member named as serde_json's private tokens (`$serde_json::private::RawValue`, or `…Number`
/// with its `arbitrary_precision` feature): `Value` reads such an object as something else.
pub(crate) struct StrictValue;

/// The member names that `Value`'s parse reads as a raw value or a number, not as a map.
const PRIVATE_TOKENS: [&str; 2] = ["$serde_json::private::RawValue", "$serde_json::private::Number"];

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Each `visit_*` makes what serde_json's own `Value` visitor makes.
impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Value, E> {
        Value::deserialize(serde::de::value::I128Deserializer::new(v))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        Value::deserialize(serde::de::value::U128Deserializer::new(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element_seed(StrictValue)? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut values = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if PRIVATE_TOKENS.contains(&key.as_str()) {
                return Err(A::Error::custom("a serde_json private token as a member name"));
            }
            let value = map.next_value_seed(StrictValue)?;
            // The map says whether it held the key already: the check costs nothing more.
            if values.insert(key, value).is_some() {
                return Err(A::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(values))
    }
}

#[cfg(test)]
mod tests {
    use super::check_unique_keys;

    #[test]
    fn duplicates_at_any_depth() {
        assert!(check_unique_keys(br#"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}"#).is_ok());
        for (json, path) in [
            (&br#"{"a":1,"a":2}"#[..], "/a"),
            (br#"{"a":1,"\u0061":2}"#, "/a"),
            (br#"{"data":{"value":1,"value":2}}"#, "/data/value"),
            (br#"{"x":[0,{"k/~":1,"k/~":1}]}"#, "/x/1/k~1~0"),
        ] {
            let e = check_unique_keys(json).unwrap_err().to_string();
            assert!(e.contains(&format!("duplicate key {path}")), "{e}");
        }
        assert!(check_unique_keys(b"{").is_err());
        assert!(check_unique_keys(b"{} {}").is_err());
    }
}
